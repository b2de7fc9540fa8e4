/**
 * When and how long to wait before trying a failed request again.
 *
 * A policy is a `Schedule` (which failures to retry and the backoff between them) plus the
 * server-driven rules the client composes around it:
 * - 429 and 423 wait for `Retry-After` (seconds or an HTTP-date) instead of the schedule's delay,
 *   capped at `maxRetryAfter`; a missing or garbage value falls back to the schedule. Every
 *   request of the client waits with it (a shared rate gate).
 * - No retry starts that would end more than `maxElapsed` after the first attempt.
 * - Repeated 504s halve the page size (the 504 text itself says "try reducing max").
 *
 * The default schedule backs off exponentially with jitter, bounds failed attempts (5xx,
 * transport) and lets rate limits ride on elapsed time alone. Replace it with `schedule`:
 *
 * @example
 * ```ts
 * import { Schedule } from "effect"
 * EventsApi.layer({ token, retry: { schedule: Schedule.spaced("2 seconds").pipe(Schedule.intersect(Schedule.recurs(5))) } })
 * ```
 *
 * Delays are slept on the Effect `Clock`, so tests prove a 30-second `Retry-After` with
 * `TestClock.adjust` instead of waiting.
 *
 * @since 0.1.0
 */
import * as Duration from "effect/Duration"
import * as Effect from "effect/Effect"
import * as Random from "effect/Random"
import * as Schedule from "effect/Schedule"
import * as ScheduleDecision from "effect/ScheduleDecision"
import * as ScheduleInterval from "effect/ScheduleInterval"
import type { EventsApiError } from "./EventsApiError.js"

/** A retry schedule: stepped with each transient failure (`RateLimited`, `ServerError`, `TransportError`). */
export type RetrySchedule = Schedule.Schedule<unknown, EventsApiError>

/** Settings of a policy; every field is optional. */
export interface Options {
  /**
   * Attempts that may fail with a 5xx or a transport error, the first included. Default 10. 429s
   * and 423s do not count: they are waited out for as long as `maxElapsed` allows. (Default
   * schedule only.)
   */
  readonly maxAttempts?: number | undefined
  /** Give up once this much time has passed since the first attempt. Default 15 minutes. */
  readonly maxElapsed?: Duration.DurationInput | undefined
  /** First backoff delay; doubles with every retry. Default 500 ms. Also the least wait after a 429. */
  readonly baseDelay?: Duration.DurationInput | undefined
  /** Cap on a backoff delay. Default 30 s. (Default schedule only.) */
  readonly maxDelay?: Duration.DurationInput | undefined
  /** Cap on a wait the server asked for with `Retry-After`. Default 5 minutes. */
  readonly maxRetryAfter?: Duration.DurationInput | undefined
  /** Halve `max` on every 504 after the first, down to 1. Default true. */
  readonly shrinkPageOn504?: boolean | undefined
  /**
   * Replaces the default schedule. It sees every transient failure, rate limits included, and
   * decides whether to retry and after how long; `Retry-After`, `maxElapsed`, the rate gate and
   * the 504 shrink still apply around it. Non-transient errors are never retried.
   */
  readonly schedule?: RetrySchedule | undefined
}

/** A resolved policy. */
export interface RetryPolicy {
  /**
   * The schedule; absent for the default one, which is built from `maxAttempts`, `baseDelay` and
   * `maxDelay` when used (so `{ ...RetryPolicy.make(), maxAttempts: 20 }` means what it says).
   */
  readonly schedule?: RetrySchedule | undefined
  readonly maxAttempts: number
  readonly maxElapsed: Duration.Duration
  readonly baseDelay: Duration.Duration
  readonly maxDelay: Duration.Duration
  readonly maxRetryAfter: Duration.Duration
  readonly shrinkPageOn504: boolean
}

/** The jittered exponential delay before retry number `retry` (1-based), `random` in [0, 1). */
export const backoffDelay = (
  settings: { readonly baseDelay: Duration.Duration; readonly maxDelay: Duration.Duration },
  retry: number,
  random: number
): Duration.Duration => {
  const exp = Duration.toMillis(settings.baseDelay) * 2 ** Math.max(0, retry - 1)
  const capped = Math.min(exp, Duration.toMillis(settings.maxDelay))
  // "Equal jitter": never less than half the delay, so waits grow, yet clients spread out.
  return Duration.millis(Math.round(capped / 2 + (random * capped) / 2))
}

/**
 * The default schedule: jittered exponential backoff from `baseDelay` up to `maxDelay`, stopping
 * once `maxAttempts` attempts failed with a 5xx or a transport error. Rate limits do not spend
 * attempts: the server said when to come back, so a storm of 429s is ridden out on elapsed time.
 */
export const backoff = (
  settings: { readonly maxAttempts: number; readonly baseDelay: Duration.Duration; readonly maxDelay: Duration.Duration }
): RetrySchedule =>
  Schedule.makeWithState(
    { retries: 0, failures: 0 },
    (now, error: EventsApiError, state) =>
      Effect.map(Random.next, (random) => {
        const retries = state.retries + 1
        const failures = state.failures + (error._tag === "RateLimited" ? 0 : 1)
        const next = { retries, failures }
        if (failures >= settings.maxAttempts) return [next, retries, ScheduleDecision.done] as const
        const delay = Duration.toMillis(backoffDelay(settings, retries, random))
        return [next, retries, ScheduleDecision.continueWith(ScheduleInterval.after(now + delay))] as const
      })
  )

/** A policy: the default one, with any settings overridden. */
export const make = (options: Options = {}): RetryPolicy => {
  const maxAttempts = Math.max(1, Math.floor(options.maxAttempts ?? 10))
  const baseDelay = Duration.decode(options.baseDelay ?? "500 millis")
  const maxDelay = Duration.decode(options.maxDelay ?? "30 seconds")
  return {
    ...(options.schedule !== undefined ? { schedule: options.schedule } : {}),
    maxAttempts,
    maxElapsed: Duration.decode(options.maxElapsed ?? "15 minutes"),
    baseDelay,
    maxDelay,
    maxRetryAfter: Duration.decode(options.maxRetryAfter ?? "5 minutes"),
    shrinkPageOn504: options.shrinkPageOn504 ?? true
  }
}

/** No retries: every failure is returned at once. */
export const disabled: RetryPolicy = {
  ...make(),
  schedule: Schedule.stop,
  maxAttempts: 1,
  maxElapsed: Duration.zero,
  shrinkPageOn504: false
}
