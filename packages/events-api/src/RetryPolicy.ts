/**
 * When and how long to wait before trying a failed request again.
 *
 * - 429 and 423 wait for `Retry-After` (seconds or an HTTP-date). A missing or garbage value
 *   (the service has sent `rand(30),add(30)`) falls back to jittered exponential backoff. Waits
 *   are capped, so an absurd value cannot stall a daemon for a day.
 * - 5xx and transport failures back off exponentially with jitter.
 * - Attempts and total elapsed time are bounded; then the last error is returned.
 * - Repeated 504s halve the page size (the 504 text itself says "try reducing max").
 *
 * The policy is plain data; {@link run} applies it, sleeping on the Effect `Clock`, so tests
 * prove a 30-second `Retry-After` with `TestClock.adjust` instead of waiting.
 *
 * @since 0.1.0
 */
import * as Clock from "effect/Clock"
import * as Duration from "effect/Duration"
import * as Effect from "effect/Effect"
import * as Option from "effect/Option"
import * as Random from "effect/Random"
import type { EventsApiError } from "./EventsApiError.js"
import { isTransient } from "./EventsApiError.js"
import type { RateGate } from "./internal/rateGate.js"
import * as Pagination from "./Pagination.js"

/** The service's page size when a request names none. */
const DEFAULT_PAGE_SIZE = 100

/** Settings of the default policy; every field is optional. */
export interface Options {
  /**
   * Attempts that may fail with a 5xx or a transport error, the first included. Default 10. 429s
   * and 423s do not count: they are waited out for as long as `maxElapsed` allows.
   */
  readonly maxAttempts?: number | undefined
  /** Give up once this much time has passed since the first attempt. Default 15 minutes. */
  readonly maxElapsed?: Duration.DurationInput | undefined
  /** First backoff delay; doubles with every retry. Default 500 ms. */
  readonly baseDelay?: Duration.DurationInput | undefined
  /** Cap on a backoff delay. Default 30 s. */
  readonly maxDelay?: Duration.DurationInput | undefined
  /** Cap on a wait the server asked for with `Retry-After`. Default 5 minutes. */
  readonly maxRetryAfter?: Duration.DurationInput | undefined
  /** Halve `max` on every 504 after the first, down to 1. Default true. */
  readonly shrinkPageOn504?: boolean | undefined
}

/** A resolved policy. */
export interface RetryPolicy {
  readonly maxAttempts: number
  readonly maxElapsed: Duration.Duration
  readonly baseDelay: Duration.Duration
  readonly maxDelay: Duration.Duration
  readonly maxRetryAfter: Duration.Duration
  readonly shrinkPageOn504: boolean
}

/** The default policy, with any settings overridden. */
export const make = (options: Options = {}): RetryPolicy => ({
  maxAttempts: Math.max(1, Math.floor(options.maxAttempts ?? 10)),
  maxElapsed: Duration.decode(options.maxElapsed ?? "15 minutes"),
  baseDelay: Duration.decode(options.baseDelay ?? "500 millis"),
  maxDelay: Duration.decode(options.maxDelay ?? "30 seconds"),
  maxRetryAfter: Duration.decode(options.maxRetryAfter ?? "5 minutes"),
  shrinkPageOn504: options.shrinkPageOn504 ?? true
})

/** No retries: every failure is returned at once. */
export const disabled: RetryPolicy = { ...make(), maxAttempts: 1, maxElapsed: Duration.zero, shrinkPageOn504: false }

/**
 * Reads a `Retry-After` value: delta-seconds (`"30"`, also `"1.5"`) or an HTTP-date. None for
 * anything else, so the caller falls back to backoff. A date in the past means "now".
 */
export const parseRetryAfter = (value: string | null | undefined, nowMillis: number): Option.Option<Duration.Duration> => {
  if (value === undefined || value === null) return Option.none()
  const v = value.trim()
  if (/^\d+(\.\d+)?$/.test(v)) return Option.some(Duration.millis(Math.round(Number(v) * 1000)))
  // HTTP-dates always name a weekday or a month: this keeps Date.parse from accepting junk.
  if (/[a-z]{3}/i.test(v) && /\d{2}:\d{2}:\d{2}/.test(v)) {
    const at = Date.parse(v)
    if (!Number.isNaN(at)) return Option.some(Duration.millis(Math.max(0, at - nowMillis)))
  }
  return Option.none()
}

/** The jittered exponential delay before retry number `retry` (1-based), `random` in [0, 1). */
export const backoff = (policy: RetryPolicy, retry: number, random: number): Duration.Duration => {
  const exp = Duration.toMillis(policy.baseDelay) * 2 ** Math.max(0, retry - 1)
  const capped = Math.min(exp, Duration.toMillis(policy.maxDelay))
  // "Equal jitter": never less than half the delay, so waits grow, yet clients spread out.
  return Duration.millis(Math.round(capped / 2 + (random * capped) / 2))
}

/** How long to wait before retry number `retry` after `error`. */
export const delayFor = (
  policy: RetryPolicy,
  error: EventsApiError,
  retry: number,
  random: number
): Duration.Duration =>
  error._tag === "RateLimited" && error.retryAfterMillis !== undefined
    // Never less than the first backoff step: `Retry-After: 0`, or an HTTP-date already past by
    // a clock skew, would otherwise fire request after request with no pause at all.
    ? Duration.max(Duration.min(Duration.millis(error.retryAfterMillis), policy.maxRetryAfter), backoff(policy, 1, random))
    : backoff(policy, retry, random)

/**
 * Runs `attempt` against `url` under the policy. 429/423 pause the shared gate, so every request
 * on the same client waits the server's time, not just this one. Returns the result and the URL
 * finally used (its `max` may have shrunk).
 */
export const run = <A>(
  policy: RetryPolicy,
  gate: RateGate,
  url: string,
  attempt: (url: string) => Effect.Effect<A, EventsApiError>,
  options: { readonly shrinkable: boolean }
): Effect.Effect<{ readonly value: A; readonly url: string }, EventsApiError> =>
  Effect.gen(function*() {
    const start = yield* Clock.currentTimeMillis
    let current = url
    let gatewayTimeouts = 0
    // Failures (5xx, transport) spend attempts; rate limits do not. The server said when to come
    // back, so a storm of 429s is ridden out for as long as `maxElapsed` allows.
    let failures = 0
    for (let n = 1;; n++) {
      yield* gate.wait
      const result = yield* Effect.either(attempt(current))
      if (result._tag === "Right") return { value: result.right, url: current }
      const error = result.left
      if (!isTransient(error)) return yield* Effect.fail(error)
      if (error._tag !== "RateLimited" && ++failures >= policy.maxAttempts) return yield* Effect.fail(error)
      const delay = delayFor(policy, error, n, yield* Random.next)
      const now = yield* Clock.currentTimeMillis
      if (now + Duration.toMillis(delay) - start > Duration.toMillis(policy.maxElapsed)) {
        return yield* Effect.fail(error)
      }
      if (error._tag === "ServerError" && error.status === 504) {
        gatewayTimeouts++
        // Without an explicit `max` the service's default page size (100) is in force.
        const max = Option.getOrElse(Pagination.maxOf(current), () => DEFAULT_PAGE_SIZE)
        if (options.shrinkable && policy.shrinkPageOn504 && gatewayTimeouts > 1 && max > 1) {
          const smaller = Math.max(1, Math.floor(max / 2))
          yield* Effect.logInfo(`Repeated 504s: reducing the page size from ${max} to ${smaller}`)
          current = Pagination.withMax(current, smaller)
        }
      }
      yield* Effect.logWarning(
        `${describe(error)}; retry ${n} in ${Duration.format(delay)}` +
          (error._tag === "RateLimited" ? "" : ` (failure ${failures} of at most ${policy.maxAttempts})`)
      ).pipe(Effect.annotateLogs({ trackingId: error.trackingId ?? "none", status: error.status ?? "none" }))
      if (error._tag === "RateLimited") yield* gate.pauseFor(delay)
      else yield* Effect.sleep(delay)
    }
  })

const describe = (error: EventsApiError): string => {
  switch (error._tag) {
    case "RateLimited":
      return error.status === 423 ? "Locked (423)" : "Rate limited (429)"
    case "ServerError":
      return `Server error (${error.status ?? "5xx"})`
    default:
      return `${error._tag}: ${error.message}`
  }
}
