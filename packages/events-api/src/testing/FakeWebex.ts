/**
 * A fake Webex compliance Events API served over real loopback HTTP, with switchable faults.
 *
 * It answers `GET /v1/events` and `GET /v1/events/{id}` the way the live service does (see
 * API-NOTES.md): bearer auth, `max` as a page size, opaque absolute `Link: <...>; rel="next"` URLs, a
 * `trackingid` header on every response, Webex-shaped error bodies, `to` in the future refused. On top
 * of that it can misbehave on purpose, deterministically: 429/423 with every `Retry-After` form seen in
 * the wild, 5xx, 504 above a page size, dropped connections, latency, broken next links (`max=null`,
 * lost filters, a foreign origin) and junk items.
 *
 * With {@link Options.oauth} it also grants tokens like `POST /v1/access_token` (refresh-token grant):
 * each refresh issues a new access token and rotates the refresh token, issued access tokens expire
 * in real time, and a test can expire every access token or revoke the refresh token at will.
 *
 * Events are kept as the raw JSON text they were given and served by concatenation, never
 * re-serialised, so a test can check that what the client archives is byte-for-byte what was sent.
 *
 * It listens on `127.0.0.1`, port 0 by default, so it works for tests in the same process and for a
 * child process (hand it {@link FakeWebex.Service.baseUrl}). It always runs on the live clock, so it
 * behaves the same inside `it.effect` (whose `TestClock` starts at 1970) as outside.
 *
 * @example
 * ```ts
 * import { FakeWebex, SeedOrg } from "@webex-compliance/events-api/testing"
 * import { Effect } from "effect"
 *
 * const program = Effect.gen(function*() {
 *   const webex = yield* FakeWebex.FakeWebex
 *   yield* webex.setFaults({ rateLimitEvery: 3, retryAfter: "garbage" })
 *   // ... run the client against webex.baseUrl with webex.token ...
 *   const requests = yield* webex.requests
 *   console.log(requests.filter((r) => r.status === 429).length)
 * }).pipe(
 *   Effect.provide(FakeWebex.layer({
 *     events: SeedOrg.generateOrg({ count: 1_000, from: "2024-01-01T00:00:00Z", to: "2024-02-01T00:00:00Z" })
 *   }))
 * )
 * ```
 *
 * @since 0.1.0
 */
import type * as HttpServer from "@effect/platform/HttpServer"
import type { ServeError } from "@effect/platform/HttpServerError"
import * as HttpRouter from "@effect/platform/HttpRouter"
import * as HttpServerRequest from "@effect/platform/HttpServerRequest"
import * as HttpServerResponse from "@effect/platform/HttpServerResponse"
import * as NodeHttpServer from "@effect/platform-node/NodeHttpServer"
import * as NodeHttpServerRequest from "@effect/platform-node/NodeHttpServerRequest"
import * as Clock from "effect/Clock"
import * as Context from "effect/Context"
import * as Data from "effect/Data"
import * as Effect from "effect/Effect"
import * as Layer from "effect/Layer"
import * as Redacted from "effect/Redacted"
import type * as Scope from "effect/Scope"
import * as Http from "node:http"
import { mulberry32 } from "./SeedOrg.js"

// ---------------------------------------------------------------------------------------------
// Public types
// ---------------------------------------------------------------------------------------------

/**
 * Switchable misbehaviour. All off by default. Counters, not randomness, decide when a fault fires,
 * so a test knows exactly which request gets it.
 *
 * Only requests to `/v1/events*` count. The request-level faults are checked in a fixed order —
 * drop, 429, 423, 5xx — and each has its own counter, advanced only by requests that reach its
 * check (a dropped request does not advance the 429 counter). They fire before authentication, the
 * way a gateway in front of the service answers.
 */
export interface Faults {
  /** Every Nth request answers 429 with a `Retry-After` in the {@link Faults.retryAfter} form. */
  readonly rateLimitEvery: number
  /** The form of `Retry-After` on 429 and 423. `garbage` is the literal `rand(30),add(30)` seen live. */
  readonly retryAfter: "seconds" | "http-date" | "missing" | "garbage"
  /** The wait `Retry-After` announces, in seconds. Default 1. */
  readonly retryAfterSeconds: number
  /** Every Nth request answers 423 Locked, with `Retry-After` like a 429. */
  readonly lockedEvery: number
  /** Every Nth request answers a 5xx, cycling 500, 502, 503, 504. */
  readonly serverErrorEvery: number
  /** When > 0, a list request whose `max` exceeds it answers 504 ("try reducing max"). */
  readonly gatewayTimeoutAboveMax: number
  /** Every Nth request: the socket is destroyed without any response. */
  readonly dropConnectionEvery: number
  /** Delay before every response, in milliseconds. */
  readonly latencyMs: number
  /** Next links carry `max=null` instead of the page size (a defect seen on Webex list endpoints). */
  readonly nextLinkMaxNull: boolean
  /**
   * Next links omit `resource`, `type`, `actorId`, `from` and `to` (another seen defect). Followed as
   * given, such a link serves unfiltered results: the client has to repair it.
   */
  readonly nextLinkDropsFilters: boolean
  /** When set (e.g. `"http://evil.example:1"`), next links point at this foreign origin. */
  readonly nextLinkOrigin: string | undefined
  /** Every Nth served page gets one extra junk item: `{"id": 42, "created": "yesterday"}`. */
  readonly malformedItemEvery: number
  /** Every `/v1/events*` request answers 403, as for a token without the compliance role. */
  readonly forbidden: boolean
  /** Every `/v1/events*` request answers 401, as for an expired token. */
  readonly unauthorized: boolean
}

/** The defaults every {@link FakeWebex.Service.setFaults} merges over: nothing misbehaves. */
export const noFaults: Faults = {
  rateLimitEvery: 0,
  retryAfter: "seconds",
  retryAfterSeconds: 1,
  lockedEvery: 0,
  serverErrorEvery: 0,
  gatewayTimeoutAboveMax: 0,
  dropConnectionEvery: 0,
  latencyMs: 0,
  nextLinkMaxNull: false,
  nextLinkDropsFilters: false,
  nextLinkOrigin: undefined,
  malformedItemEvery: 0,
  forbidden: false,
  unauthorized: false
}

/** The injected fault a recorded request met, if any. */
export type FaultKind =
  | "drop"
  | "rateLimit"
  | "locked"
  | "serverError"
  | "gatewayTimeout"
  | "malformedItem"
  | "forbidden"
  | "unauthorized"

/** One request the server received. */
export interface RecordedRequest {
  readonly method: string
  /** The full URL, origin included, as the request addressed it. */
  readonly url: string
  readonly path: string
  /** Query parameters; the first value wins when a name repeats (as it does for the handler). */
  readonly query: Readonly<Record<string, string>>
  /** Whether the request carried `Authorization: Bearer <an access token valid at that moment>`. */
  readonly authorized: boolean
  /** Whether the request carried any `Authorization` header (to prove a token never leaked). */
  readonly hasAuthorization: boolean
  /** The response status; `0` when the connection was dropped. */
  readonly status: number
  readonly fault: FaultKind | undefined
  readonly trackingId: string
  /** Arrival time, epoch milliseconds. */
  readonly at: number
  /**
   * Only on `/v1/access_token` requests: the `grant_type` of the body, if any. Nothing else of that
   * body is kept (it carries the client secret and the refresh token), and their `url` and `query`
   * are recorded without a query string for the same reason.
   */
  readonly grantType?: string | undefined
}

/** The order in which listings return events. The real API documents none. */
export type Order = "newest-first" | "oldest-first" | "shuffled"

/** Options of {@link make} and {@link layer}. */
export interface Options {
  /** The bearer token the server accepts. Default `"fake-webex-token"`. */
  readonly token?: string | undefined
  /**
   * The events stored at start, raw JSON text or objects (which are `JSON.stringify`'d). An item
   * without a string `id` and a parseable `created` is still served, first, in every unfiltered
   * listing: it is the junk a client must survive. Text that is not JSON at all makes the whole page
   * body invalid JSON, which is a different test.
   */
  readonly events?: Iterable<string | object> | undefined
  /** Listing order. Default `"newest-first"`. */
  readonly order?: Order | undefined
  /** Seed of the `"shuffled"` order. Default `1`. */
  readonly seed?: number | undefined
  /** Faults active from the start, merged over {@link noFaults}. */
  readonly faults?: Partial<Faults> | undefined
  /** Port to listen on. Default 0 (any free port); a fixed one suits a demo. */
  readonly port?: number | undefined
  /**
   * Enables the refresh-token grant on `POST /v1/access_token`. Without it that endpoint answers
   * 400 `invalid_client`, and only {@link Options.token} is ever accepted.
   */
  readonly oauth?: OAuthOptions | undefined
}

/** The integration the fake grants tokens to. See {@link Options.oauth}. */
export interface OAuthOptions {
  readonly clientId: string
  readonly clientSecret: string
  /** The initially valid refresh token. Each successful refresh replaces it (rotation). */
  readonly refreshToken: string
  /** `expires_in` of issued access tokens, in seconds, enforced in real time. Default 1209599 (~14 days). */
  readonly accessTokenTtlSeconds?: number | undefined
}

/** What {@link FakeWebex.Service.oauth} reports. */
export interface OAuthState {
  /** Successful refreshes so far. */
  readonly refreshes: number
  /** The refresh token the next refresh must present; undefined when revoked or without `oauth`. */
  readonly currentRefreshToken: string | undefined
  /** The access tokens accepted right now, the initial token first if still valid, then in issue order. */
  readonly validAccessTokens: ReadonlyArray<string>
}

/**
 * The running fake server.
 *
 * @since 0.1.0
 */
export class FakeWebex extends Context.Tag("@webex-compliance/events-api/testing/FakeWebex")<
  FakeWebex,
  FakeWebex.Service
>() {}

export declare namespace FakeWebex {
  export interface Service {
    /** `http://127.0.0.1:<port>/v1`: what a client uses as its base URL. */
    readonly baseUrl: string
    /** The token the server accepts. */
    readonly token: Redacted.Redacted<string>
    /** Stores late-arriving events; later requests see them (and pages may shift, as live). */
    readonly addEvents: (events: Iterable<string | object>) => Effect.Effect<void>
    /** Replaces the fault configuration (merged over {@link noFaults}) and restarts every counter. */
    readonly setFaults: (faults: Partial<Faults>) => Effect.Effect<void>
    /** Every request received so far (the most recent 100,000), oldest first. */
    readonly requests: Effect.Effect<ReadonlyArray<RecordedRequest>>
    /** Every stored event as raw JSON text, in the order it was added. */
    readonly events: Effect.Effect<ReadonlyArray<string>>
    /**
     * Every access token known so far, the initial {@link FakeWebex.Service.token} included, stops
     * being accepted (401, as on expiry). Tokens issued by later refreshes work.
     */
    readonly expireAccessTokens: Effect.Effect<void>
    /** The current refresh token stops being accepted: the next refresh gets 400 `invalid_grant`. */
    readonly revokeRefreshToken: Effect.Effect<void>
    /** The token grant's state, for assertions. */
    readonly oauth: Effect.Effect<OAuthState>
  }
}

// ---------------------------------------------------------------------------------------------
// Event store
// ---------------------------------------------------------------------------------------------

interface Entry {
  readonly raw: string
  /** Insertion order: the tie-breaker that keeps an order stable across requests. */
  readonly seq: number
  /** Drawn from the seeded PRNG on insertion: sorting by it is a shuffle that stays put. */
  readonly shuffleKey: number
  readonly id: string | undefined
  readonly resource: string | undefined
  readonly type: string | undefined
  readonly actorId: string | undefined
  /** Epoch ms; undefined for a malformed item (no string `id`, or `created` missing or not a date). */
  readonly created: number | undefined
}

interface Filter {
  readonly resource: string | undefined
  readonly type: string | undefined
  readonly actorId: string | undefined
  readonly from: number | undefined
  readonly to: number | undefined
}

const parseEntry = (input: string | object, seq: number, shuffleKey: number): Entry => {
  const raw = typeof input === "string" ? input : (JSON.stringify(input) ?? "null")
  let parsed: unknown
  try {
    parsed = JSON.parse(raw)
  } catch {
    parsed = undefined
  }
  const fields = typeof parsed === "object" && parsed !== null ? (parsed as Record<string, unknown>) : {}
  const text = (key: string) => (typeof fields[key] === "string" ? (fields[key] as string) : undefined)
  const id = text("id")
  const created = parseInstant(text("created"))
  return {
    raw,
    seq,
    shuffleKey,
    id,
    resource: text("resource"),
    type: text("type"),
    actorId: text("actorId"),
    created: id === undefined ? undefined : created
  }
}

const ISO_8601 = /^\d{4}-\d{2}-\d{2}(?:T\d{2}:\d{2}(?::\d{2}(?:\.\d{1,9})?)?(?:Z|[+-]\d{2}:?\d{2})?)?$/i

/** Epoch ms of an ISO-8601 date-time (either form the service uses), or undefined. */
const parseInstant = (text: string | undefined): number | undefined => {
  if (text === undefined || !ISO_8601.test(text)) return undefined
  const ms = Date.parse(text.replace(/([+-]\d{2})(\d{2})$/, "$1:$2"))
  return Number.isNaN(ms) ? undefined : ms
}

const isFiltered = (f: Filter) =>
  f.resource !== undefined || f.type !== undefined || f.actorId !== undefined || f.from !== undefined ||
  f.to !== undefined

class EventStore {
  private readonly entries: Array<Entry> = []
  private readonly byId = new Map<string, Entry>()
  private readonly random: () => number
  private ordered: ReadonlyArray<Entry> | undefined
  // Walking a large org page by page asks for the same filtered list again and again.
  private readonly cache = new Map<string, ReadonlyArray<Entry>>()

  constructor(private readonly order: Order, seed: number) {
    this.random = mulberry32(seed)
  }

  add(events: Iterable<string | object>): void {
    for (const event of events) {
      const entry = parseEntry(event, this.entries.length, this.random())
      this.entries.push(entry)
      if (entry.id !== undefined && !this.byId.has(entry.id)) this.byId.set(entry.id, entry)
    }
    this.ordered = undefined
    this.cache.clear()
  }

  get(id: string): Entry | undefined {
    return this.byId.get(id)
  }

  raws(): ReadonlyArray<string> {
    return this.entries.map((e) => e.raw)
  }

  /** The current filtered, ordered list. Malformed items come first, and only when unfiltered. */
  list(filter: Filter): ReadonlyArray<Entry> {
    const key = JSON.stringify([filter.resource, filter.type, filter.actorId, filter.from, filter.to])
    const cached = this.cache.get(key)
    if (cached !== undefined) return cached
    const all = this.sorted()
    const result = isFiltered(filter)
      ? all.filter((e) =>
        e.created !== undefined &&
        (filter.resource === undefined || e.resource === filter.resource) &&
        (filter.type === undefined || e.type === filter.type) &&
        (filter.actorId === undefined || e.actorId === filter.actorId) &&
        // Compared as instants: `created` may be `...Z` or `+00:00`, and text order would lie.
        (filter.from === undefined || e.created >= filter.from) &&
        (filter.to === undefined || e.created < filter.to)
      )
      : all
    if (this.cache.size >= 32) this.cache.clear()
    this.cache.set(key, result)
    return result
  }

  private sorted(): ReadonlyArray<Entry> {
    if (this.ordered !== undefined) return this.ordered
    const malformed = this.entries.filter((e) => e.created === undefined)
    const wellFormed = this.entries.filter((e) => e.created !== undefined)
    const byCreated = (a: Entry, b: Entry) => a.created! - b.created! || a.seq - b.seq
    wellFormed.sort(
      this.order === "oldest-first"
        ? byCreated
        : this.order === "newest-first"
        ? (a, b) => byCreated(b, a)
        : (a, b) => a.shuffleKey - b.shuffleKey || a.seq - b.seq
    )
    this.ordered = [...malformed, ...wellFormed]
    return this.ordered
  }
}

// ---------------------------------------------------------------------------------------------
// Server state: faults, counters, request log
// ---------------------------------------------------------------------------------------------

const MAX_LOG = 100_000
const SERVER_ERRORS = [500, 502, 503, 504] as const

class ServerState {
  faults: Faults
  private counters = { drop: 0, rateLimit: 0, locked: 0, serverError: 0, serverErrorCycle: 0, page: 0 }
  private tracking = 0
  private readonly log: Array<RecordedRequest> = []

  constructor(faults: Partial<Faults> | undefined, private readonly trackingPrefix: string) {
    this.faults = { ...noFaults, ...faults }
  }

  setFaults(faults: Partial<Faults>): void {
    this.faults = { ...noFaults, ...faults }
    // A test that switches a fault on means "the Nth request from now".
    this.counters = { drop: 0, rateLimit: 0, locked: 0, serverError: 0, serverErrorCycle: 0, page: 0 }
  }

  /** Advances the counter of a fault that is on; true when this is its Nth request. */
  fires(kind: "drop" | "rateLimit" | "locked" | "serverError" | "page", every: number): boolean {
    if (every <= 0) return false
    this.counters[kind] += 1
    return this.counters[kind] % every === 0
  }

  nextServerError(): (typeof SERVER_ERRORS)[number] {
    return SERVER_ERRORS[this.counters.serverErrorCycle++ % SERVER_ERRORS.length]!
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

// ---------------------------------------------------------------------------------------------
// Tokens
// ---------------------------------------------------------------------------------------------

/** The server's clock, whatever the caller's (see the end of `makeApp`). */
const liveClock = Clock.make()

const DEFAULT_ACCESS_TOKEN_TTL_SECONDS = 1_209_599
// Reported as live, not enforced: no test waits 90 days.
const REFRESH_TOKEN_TTL_SECONDS = 7_775_999

interface Grant {
  readonly accessToken: string
  readonly refreshToken: string
  readonly expiresIn: number
}

/** Accepted access tokens and the refresh-token chain. All times are live epoch milliseconds. */
class Tokens {
  /** Access token → expiry. The initial token never expires by itself, only by {@link expireAll}. */
  private readonly access = new Map<string, number>()
  private refreshes = 0
  private currentRefreshToken: string | undefined

  constructor(initialToken: string, private readonly oauth: OAuthOptions | undefined) {
    this.access.set(initialToken, Number.POSITIVE_INFINITY)
    this.currentRefreshToken = oauth?.refreshToken
  }

  accepts(token: string, now: number): boolean {
    const expiry = this.access.get(token)
    return expiry !== undefined && now < expiry
  }

  expireAll(): void {
    this.access.clear()
  }

  revoke(): void {
    this.currentRefreshToken = undefined
  }

  /** Redeems `refreshToken` if it is the current one, rotating it; undefined otherwise. */
  refresh(refreshToken: string, now: number): Grant | undefined {
    if (this.currentRefreshToken === undefined || refreshToken !== this.currentRefreshToken) return undefined
    this.refreshes += 1
    const expiresIn = this.oauth?.accessTokenTtlSeconds ?? DEFAULT_ACCESS_TOKEN_TTL_SECONDS
    const grant = {
      accessToken: `fake-access-${this.refreshes}`,
      refreshToken: `fake-refresh-${this.refreshes}`,
      expiresIn
    }
    this.access.set(grant.accessToken, now + expiresIn * 1000)
    this.currentRefreshToken = grant.refreshToken
    return grant
  }

  state(now: number): OAuthState {
    return {
      refreshes: this.refreshes,
      currentRefreshToken: this.currentRefreshToken,
      validAccessTokens: [...this.access].filter(([, expiry]) => now < expiry).map(([token]) => token)
    }
  }
}

// ---------------------------------------------------------------------------------------------
// Request handling
// ---------------------------------------------------------------------------------------------

/** An error answer, rendered as a Webex error body by {@link errorResponse}. */
class Reply extends Data.TaggedError("Reply")<{
  readonly status: number
  readonly message: string
  readonly description: string
  readonly headers?: Record<string, string>
  readonly fault?: FaultKind
}> {}

/** An error answer of the token endpoint, which uses the OAuth body shape, not the Webex one. */
class OAuthReply extends Data.TaggedError("OAuthReply")<{
  readonly status: 400 | 401
  readonly error: "invalid_request" | "invalid_client" | "invalid_grant"
  readonly description: string
}> {}

/**
 * What one request carries through the handlers. Mutable only in `fault`, set by the list handler,
 * and `grantType`, set by the token handler.
 */
interface RequestContext {
  readonly trackingId: string
  readonly faults: Faults
  readonly url: URL
  fault: FaultKind | undefined
  grantType: string | undefined
}
const RequestContext = Context.GenericTag<RequestContext>("@webex-compliance/events-api/testing/FakeWebex/Request")

const MESSAGES = {
  400: "The request was invalid or cannot be otherwise served.",
  401: "The request requires a valid access token set in the Authorization request header.",
  403: "The server understood the request, but refused to fulfill it because the access token is missing required scopes or the user is missing required roles or licenses.",
  404: "The requested resource could not be found.",
  423: "The resource is locked. Retry after the time given in the Retry-After header.",
  429: "Too many requests have been sent in a given amount of time and the request has been rate limited.",
  500: "Something went wrong on the server.",
  502: "The server received an invalid response from an upstream server while processing the request.",
  503: "Server is overloaded with requests. Try again later.",
  504: "An upstream server failed to respond on time. If your query uses max parameter, try reducing max."
} as const

const badRequest = (description: string) => new Reply({ status: 400, message: MESSAGES[400], description })

const jsonResponse = (status: number, body: string, trackingId: string, headers: Record<string, string> = {}) =>
  HttpServerResponse.text(body, {
    status,
    contentType: "application/json",
    headers: { ...headers, trackingid: trackingId }
  })

const errorResponse = (reply: Reply, trackingId: string) =>
  jsonResponse(
    reply.status,
    JSON.stringify({ message: reply.message, errors: [{ description: reply.description }], trackingId }),
    trackingId,
    reply.headers
  )

const oauthErrorResponse = (reply: OAuthReply, trackingId: string) =>
  jsonResponse(
    reply.status,
    JSON.stringify({ error: reply.error, error_description: reply.description, trackingId }),
    trackingId,
    { "cache-control": "no-store" }
  )

const retryAfterHeader = (faults: Faults, now: number): Record<string, string> => {
  switch (faults.retryAfter) {
    case "seconds":
      return { "retry-after": String(faults.retryAfterSeconds) }
    case "http-date":
      // HTTP-dates have whole seconds: round up so the announced time is never before the wait ends.
      return {
        "retry-after": new Date(Math.ceil((now + faults.retryAfterSeconds * 1000) / 1000) * 1000).toUTCString()
      }
    case "missing":
      return {}
    case "garbage":
      return { "retry-after": "rand(30),add(30)" }
  }
}

const FILTER_PARAMS = ["resource", "type", "actorId", "from", "to"] as const

const encodeCursor = (offset: number) => Buffer.from(JSON.stringify({ offset })).toString("base64url")

const decodeCursor = (cursor: string): number | undefined => {
  try {
    const parsed: unknown = JSON.parse(Buffer.from(cursor, "base64url").toString("utf8"))
    const offset = typeof parsed === "object" && parsed !== null ? (parsed as { offset?: unknown }).offset : undefined
    return typeof offset === "number" && Number.isSafeInteger(offset) && offset >= 0 ? offset : undefined
  } catch {
    return undefined
  }
}

/** Junk that no schema accepts: a number id and a `created` that is no date. */
const JUNK_ITEM = `{"id": 42, "created": "yesterday"}`

const makeApp = (
  store: EventStore,
  state: ServerState,
  tokens: Tokens,
  oauth: OAuthOptions | undefined,
  origin: string
) => {
  const listEvents = Effect.gen(function*() {
    const ctx = yield* RequestContext
    const params = ctx.url.searchParams
    const param = (name: string) => params.get(name) ?? undefined

    let offset = 0
    const cursor = param("cursor")
    if (cursor !== undefined) {
      const decoded = decodeCursor(cursor)
      if (decoded === undefined) return yield* badRequest("Invalid cursor.")
      offset = decoded
    }

    const maxText = param("max")
    const max = maxText === undefined ? 100 : /^\d{1,4}$/.test(maxText) ? Number(maxText) : NaN
    if (!(max >= 1 && max <= 1000)) {
      return yield* badRequest(`max must be an integer between 1 and 1000, got ${JSON.stringify(maxText)}.`)
    }

    const instant = (name: "from" | "to") => {
      const text = param(name)
      if (text === undefined) return Effect.succeed(undefined)
      const ms = parseInstant(text)
      return ms === undefined
        ? Effect.fail(badRequest(`${name} must be an ISO-8601 date-time, got ${JSON.stringify(text)}.`))
        : Effect.succeed(ms)
    }
    const from = yield* instant("from")
    const to = yield* instant("to")
    const now = yield* Clock.currentTimeMillis
    if (to !== undefined && to > now) {
      // The live API refuses a future `to` (older docs said it clamped): clients must clamp.
      return yield* badRequest("to must not be in the future.")
    }

    if (ctx.faults.gatewayTimeoutAboveMax > 0 && max > ctx.faults.gatewayTimeoutAboveMax) {
      return yield* new Reply({ status: 504, message: MESSAGES[504], description: MESSAGES[504], fault: "gatewayTimeout" })
    }

    // Offsets index the *current* list, as a live cursor over a changing data set does: events that
    // arrive between pages shift later pages, and an item already served can be served again.
    const list = store.list({ resource: param("resource"), type: param("type"), actorId: param("actorId"), from, to })
    const items = list.slice(offset, offset + max).map((e) => e.raw)
    if (state.fires("page", ctx.faults.malformedItemEvery)) {
      items.push(JUNK_ITEM)
      ctx.fault = "malformedItem"
    }

    const headers: Record<string, string> = {}
    if (offset + max < list.length) headers.link = `<${nextLink(ctx, max, offset + max)}>; rel="next"`
    // Concatenated, not re-serialised: each item goes out byte for byte as it was stored.
    return jsonResponse(200, `{"items":[${items.join(",")}]}`, ctx.trackingId, headers)
  })

  /** The next page's URL. The cursor holds only the offset, so lost filters really are lost. */
  const nextLink = (ctx: RequestContext, max: number, offset: number): string => {
    const next = new URLSearchParams()
    if (!ctx.faults.nextLinkDropsFilters) {
      for (const name of FILTER_PARAMS) {
        const value = ctx.url.searchParams.get(name)
        if (value !== null) next.set(name, value)
      }
    }
    next.set("max", ctx.faults.nextLinkMaxNull ? "null" : String(max))
    next.set("cursor", encodeCursor(offset))
    const linkOrigin = ctx.faults.nextLinkOrigin?.replace(/\/+$/, "") ?? origin
    return `${linkOrigin}/v1/events?${next.toString()}`
  }

  const getEvent = Effect.gen(function*() {
    const ctx = yield* RequestContext
    const { id } = yield* HttpRouter.params
    const entry = id === undefined ? undefined : store.get(id)
    if (entry === undefined) {
      return yield* new Reply({ status: 404, message: MESSAGES[404], description: `Event not found: ${id ?? ""}` })
    }
    return jsonResponse(200, entry.raw, ctx.trackingId)
  })

  /** `POST /v1/access_token`, refresh-token grant only. Checks run in the order a client can fix them. */
  const accessToken = Effect.gen(function*() {
    const ctx = yield* RequestContext
    const request = yield* HttpServerRequest.HttpServerRequest
    const invalid = (status: OAuthReply["status"], error: OAuthReply["error"], description: string) =>
      new OAuthReply({ status, error, description })
    const contentType = (request.headers["content-type"] ?? "").split(";")[0]!.trim().toLowerCase()
    const isForm = contentType === "application/x-www-form-urlencoded"
    const form = new URLSearchParams(isForm ? yield* Effect.orElseSucceed(request.text, () => "") : "")
    const field = (name: string) => form.get(name) ?? undefined
    // Read first so that even a refused request logs its grant type.
    ctx.grantType = field("grant_type")

    if (oauth === undefined) return yield* invalid(400, "invalid_client", "No OAuth integration is configured.")
    if (!isForm) return yield* invalid(400, "invalid_request", "The body must be application/x-www-form-urlencoded.")

    if (ctx.grantType !== "refresh_token") {
      return yield* invalid(
        400,
        "invalid_request",
        `grant_type must be refresh_token, got ${JSON.stringify(ctx.grantType ?? null)}.`
      )
    }
    for (const name of ["client_id", "client_secret", "refresh_token"]) {
      // RFC 6749 §3.2: a repeated parameter is as invalid as a missing one.
      if (form.getAll(name).length !== 1 || form.get(name) === "") {
        return yield* invalid(400, "invalid_request", `${name} is required, exactly once.`)
      }
    }
    if (field("client_id") !== oauth.clientId || field("client_secret") !== oauth.clientSecret) {
      return yield* invalid(401, "invalid_client", "Client authentication failed.")
    }
    const now = yield* Clock.currentTimeMillis
    const grant = tokens.refresh(field("refresh_token")!, now)
    if (grant === undefined) {
      return yield* invalid(400, "invalid_grant", "The refresh token is invalid, expired, revoked or already used.")
    }
    return jsonResponse(
      200,
      JSON.stringify({
        access_token: grant.accessToken,
        expires_in: grant.expiresIn,
        refresh_token: grant.refreshToken,
        refresh_token_expires_in: REFRESH_TOKEN_TTL_SECONDS,
        token_type: "Bearer"
      }),
      ctx.trackingId,
      { "cache-control": "no-store" }
    )
  })

  const router = HttpRouter.empty.pipe(
    HttpRouter.get("/v1/events", listEvents),
    HttpRouter.get("/v1/events/:id", getEvent),
    HttpRouter.post("/v1/access_token", accessToken)
  )

  /** Request-level faults, then authentication: everything that happens before a handler runs. */
  const guard = (ctx: RequestContext, authorized: boolean): Effect.Effect<void, Reply> =>
    Effect.gen(function*() {
      const { faults } = ctx
      const now = yield* Clock.currentTimeMillis
      if (state.fires("rateLimit", faults.rateLimitEvery)) {
        return yield* new Reply({
          status: 429,
          message: MESSAGES[429],
          description: "Rate limit exceeded.",
          headers: retryAfterHeader(faults, now),
          fault: "rateLimit"
        })
      }
      if (state.fires("locked", faults.lockedEvery)) {
        return yield* new Reply({
          status: 423,
          message: MESSAGES[423],
          description: "Locked.",
          headers: retryAfterHeader(faults, now),
          fault: "locked"
        })
      }
      if (state.fires("serverError", faults.serverErrorEvery)) {
        const status = state.nextServerError()
        return yield* new Reply({ status, message: MESSAGES[status], description: MESSAGES[status], fault: "serverError" })
      }
      if (faults.unauthorized || !authorized) {
        return yield* new Reply({
          status: 401,
          message: MESSAGES[401],
          description: "Invalid or expired access token.",
          ...(faults.unauthorized ? { fault: "unauthorized" as const } : {})
        })
      }
      if (faults.forbidden) {
        return yield* new Reply({
          status: 403,
          message: MESSAGES[403],
          description: "Missing the spark-compliance:events_read scope or the Compliance Officer role.",
          fault: "forbidden"
        })
      }
    })

  const handle = Effect.gen(function*() {
    const request = yield* HttpServerRequest.HttpServerRequest
    const at = yield* Clock.currentTimeMillis
    const url = new URL(request.url, origin)
    const faults = state.faults
    const ctx: RequestContext = {
      trackingId: state.nextTrackingId(),
      faults,
      url,
      fault: undefined,
      grantType: undefined
    }
    const authorization = request.headers["authorization"]
    const authorized = authorization !== undefined && authorization.startsWith("Bearer ") &&
      tokens.accepts(authorization.slice("Bearer ".length), at)
    // A client may misplace its secrets in the token request's query string: never log that one.
    const isTokenRequest = url.pathname === "/v1/access_token"
    const query: Record<string, string> = {}
    if (!isTokenRequest) for (const [name, value] of url.searchParams) if (!(name in query)) query[name] = value
    const record = (status: number, fault: FaultKind | undefined) =>
      state.record({
        method: request.method,
        url: isTokenRequest ? `${url.origin}${url.pathname}` : url.href,
        path: url.pathname,
        query,
        authorized,
        hasAuthorization: authorization !== undefined,
        status,
        fault,
        trackingId: ctx.trackingId,
        at,
        ...(isTokenRequest ? { grantType: ctx.grantType } : {})
      })

    if (faults.latencyMs > 0) yield* Effect.sleep(faults.latencyMs)

    const isEvents = url.pathname === "/v1/events" || url.pathname.startsWith("/v1/events/")
    if (isEvents && state.fires("drop", faults.dropConnectionEvery)) {
      record(0, "drop")
      // Like a load balancer resetting the connection: no status line, no body.
      NodeHttpServerRequest.toIncomingMessage(request).socket.destroy()
      return yield* Effect.interrupt
    }

    const response = yield* (isEvents ? guard(ctx, authorized) : Effect.void).pipe(
      Effect.zipRight(router),
      Effect.provideService(RequestContext, ctx),
      Effect.catchTags({
        RouteNotFound: () =>
          Effect.succeed(errorResponse(
            new Reply({ status: 404, message: MESSAGES[404], description: `No route for ${request.method} ${url.pathname}` }),
            ctx.trackingId
          )),
        Reply: (reply) => {
          if (reply.fault !== undefined) ctx.fault = reply.fault
          return Effect.succeed(errorResponse(reply, ctx.trackingId))
        },
        OAuthReply: (reply) => Effect.succeed(oauthErrorResponse(reply, ctx.trackingId))
      })
    )
    record(response.status, ctx.fault)
    return response
  })

  // The live clock, whatever the caller's: under `TestClock` the time is 1970, every `to` would be
  // "in the future", latency would never elapse, and issued tokens would never expire.
  return Effect.withClock(handle, liveClock)
}

// ---------------------------------------------------------------------------------------------
// Constructors
// ---------------------------------------------------------------------------------------------

/**
 * Starts a fake server in the current scope; it stops when the scope closes.
 *
 * @example
 * ```ts
 * const webex = yield* FakeWebex.make({ events: [event1, event2], order: "shuffled", seed: 7 })
 * const response = yield* HttpClient.get(`${webex.baseUrl}/events?max=1`, {
 *   headers: { authorization: `Bearer ${Redacted.value(webex.token)}` }
 * })
 * ```
 *
 * @since 0.1.0
 */
export const make = (options: Options = {}): Effect.Effect<FakeWebex.Service, ServeError, Scope.Scope> =>
  Effect.gen(function*() {
    const nodeServer = Http.createServer()
    const server: HttpServer.HttpServer = yield* NodeHttpServer.make(() => nodeServer, {
      port: options.port ?? 0,
      host: "127.0.0.1"
    })
    // Runs before the server's own close: a client's idle keep-alive socket or a request stuck in
    // `latencyMs` must not hold the scope open.
    yield* Effect.addFinalizer(() => Effect.sync(() => nodeServer.closeAllConnections()))

    const port = server.address._tag === "TcpAddress" ? server.address.port : 0
    const origin = `http://127.0.0.1:${port}`
    const token = options.token ?? "fake-webex-token"
    const store = new EventStore(options.order ?? "newest-first", options.seed ?? 1)
    store.add(options.events ?? [])
    const state = new ServerState(
      options.faults,
      `ROUTER_${port.toString(16).toUpperCase().padStart(8, "0")}-0000-4000-8000`
    )

    const tokens = new Tokens(token, options.oauth)

    yield* server.serve(makeApp(store, state, tokens, options.oauth, origin))

    return FakeWebex.of({
      baseUrl: `${origin}/v1`,
      token: Redacted.make(token),
      addEvents: (events) => Effect.sync(() => store.add(events)),
      setFaults: (faults) => Effect.sync(() => state.setFaults(faults)),
      requests: Effect.sync(() => state.requests()),
      events: Effect.sync(() => store.raws()),
      expireAccessTokens: Effect.sync(() => tokens.expireAll()),
      revokeRefreshToken: Effect.sync(() => tokens.revoke()),
      oauth: Effect.sync(() => tokens.state(liveClock.unsafeCurrentTimeMillis()))
    })
  })

/**
 * A layer running a fake server for as long as the layer is alive.
 *
 * @example
 * ```ts
 * it.layer(FakeWebex.layer({ events: SeedOrg.generateOrg({ count: 100, from, to }) }))("archiver", (it) => {
 *   it.effect("archives every event", () => Effect.gen(function*() {
 *     const webex = yield* FakeWebex.FakeWebex
 *     // ...
 *   }))
 * })
 * ```
 *
 * @since 0.1.0
 */
export const layer = (options: Options = {}): Layer.Layer<FakeWebex, ServeError> =>
  Layer.scoped(FakeWebex, make(options))
