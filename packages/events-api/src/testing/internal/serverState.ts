/**
 * The fake server's mutable state apart from events: the active faults, their counters, tracking
 * ids and the request log.
 *
 * @internal
 */
import type { Faults, RecordedRequest } from "../FakeWebex.js"

const MAX_LOG = 100_000
const SERVER_ERRORS = [500, 502, 503, 504] as const

/** The faults whose firing is decided by a counter ("every Nth"). */
export type CountedFault = "drop" | "rateLimit" | "locked" | "serverError" | "page" | "invalidUtf8" | "malformedPage"

const zeroCounters = (): Record<CountedFault | "serverErrorCycle" | "injected", number> => ({
  drop: 0,
  rateLimit: 0,
  locked: 0,
  serverError: 0,
  serverErrorCycle: 0,
  page: 0,
  invalidUtf8: 0,
  malformedPage: 0,
  injected: 0
})

export class ServerState {
  faults: Faults
  private counters = zeroCounters()
  private tracking = 0
  private readonly log: Array<RecordedRequest> = []

  constructor(
    private readonly defaults: Faults,
    faults: Partial<Faults> | undefined,
    private readonly trackingPrefix: string
  ) {
    this.faults = { ...defaults, ...faults }
  }

  setFaults(faults: Partial<Faults>): void {
    this.faults = { ...this.defaults, ...faults }
    // A test that switches a fault on means "the Nth request from now".
    this.counters = zeroCounters()
  }

  /** Advances the counter of a fault that is on; true when this is its Nth request. */
  fires(kind: CountedFault, every: number): boolean {
    if (every <= 0) return false
    this.counters[kind] += 1
    return this.counters[kind] % every === 0
  }

  nextServerError(): (typeof SERVER_ERRORS)[number] {
    return SERVER_ERRORS[this.counters.serverErrorCycle++ % SERVER_ERRORS.length]!
  }

  /** A serial number for an injected item, so each has its own id. */
  nextInjected(): number {
    return ++this.counters.injected
  }

  nextTrackingId(): string {
    // Shaped like the live ones (`ROUTER_<uuid>`), but a counter: reproducible and easy to assert.
    this.tracking += 1
    return `${this.trackingPrefix}-${this.tracking.toString(16).toUpperCase().padStart(12, "0")}`
  }

  record(request: RecordedRequest): void {
    this.log.push(request)
    // Trim in batches: splicing a 100k array on every request would be quadratic.
    if (this.log.length > MAX_LOG + MAX_LOG / 10) this.log.splice(0, this.log.length - MAX_LOG)
  }

  requests(): ReadonlyArray<RecordedRequest> {
    return this.log.slice()
  }
}
