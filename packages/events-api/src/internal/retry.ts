/**
 * Applies a {@link RetryPolicy} to one request: the policy's schedule with the server-driven
 * rules composed around it (`Retry-After`, the `maxElapsed` deadline, the shared rate gate, the
 * 504 page-size shrink).
 */
import * as Clock from "effect/Clock"
import * as Duration from "effect/Duration"
import * as Effect from "effect/Effect"
import * as Option from "effect/Option"
import * as Random from "effect/Random"
import * as Schedule from "effect/Schedule"
import * as ScheduleDecision from "effect/ScheduleDecision"
import * as ScheduleInterval from "effect/ScheduleInterval"
import * as ScheduleIntervals from "effect/ScheduleIntervals"
import type { EventsApiError } from "../EventsApiError.js"
import { isTransient } from "../EventsApiError.js"
import type { RetryPolicy } from "../RetryPolicy.js"
import { backoff, backoffDelay } from "../RetryPolicy.js"
import * as Pagination from "./pagination.js"
import type { RateGate } from "./rateGate.js"

/** The service's page size when a request names none. */
const DEFAULT_PAGE_SIZE = 100

/**
 * The wait the server asked for, when it asked: capped at `maxRetryAfter`, and never less than
 * the first backoff step (`Retry-After: 0`, or an HTTP-date already past by a clock skew, would
 * otherwise fire request after request with no pause at all).
 */
export const retryAfterDelay = (
  policy: RetryPolicy,
  error: EventsApiError,
  random: number
): Option.Option<Duration.Duration> =>
  error._tag === "RateLimited" && error.retryAfterMillis !== undefined
    ? Option.some(
      Duration.max(
        Duration.min(Duration.millis(error.retryAfterMillis), policy.maxRetryAfter),
        backoffDelay(policy, 1, random)
      )
    )
    : Option.none()

/** What one retry decision produced, for the side effects that follow it. */
interface Step {
  readonly error: EventsApiError
  readonly delay: Duration.Duration
  /** False when the policy gave up: the error is then returned. */
  readonly retrying: boolean
}

/**
 * Wraps a schedule: its delay is replaced by `Retry-After` when the server sent one, and no retry
 * is started that would end past `maxElapsed` after `start`.
 */
const serverAware = <Out, R>(
  self: Schedule.Schedule<Out, EventsApiError, R>,
  policy: RetryPolicy,
  start: number
): Schedule.Schedule<Step, EventsApiError, R> =>
  Schedule.makeWithState(self.initial, (now, error: EventsApiError, state) =>
    Effect.flatMap(self.step(now, error, state), ([next, , decision]) =>
      Effect.map(Random.next, (random) => {
        const out = (delay: Duration.Duration, retrying = true): Step => ({ error, delay, retrying })
        if (ScheduleDecision.isDone(decision)) return [next, out(Duration.zero, false), decision] as const
        const planned = Duration.millis(Math.max(0, ScheduleIntervals.start(decision.intervals) - now))
        const delay = Option.getOrElse(retryAfterDelay(policy, error, random), () => planned)
        if (now + Duration.toMillis(delay) - start > Duration.toMillis(policy.maxElapsed)) {
          return [next, out(delay, false), ScheduleDecision.done] as const
        }
        return [next, out(delay), ScheduleDecision.continueWith(ScheduleInterval.after(now + Duration.toMillis(delay)))] as const
      })))

const describe = (error: EventsApiError): string => {
  switch (error._tag) {
    case "RateLimited":
      return error.status === 423 ? "Locked (423)" : "Rate limited (429)"
    case "ServerError":
      return `Server error (${error.status ?? "5xx"})`
    default:
      return error.message
  }
}

/**
 * Runs `attempt` against `url` under the policy. A 429/423 pauses the shared gate, so every
 * request on the same client waits the server's time, not just this one. Returns the result and
 * the URL finally used (its `max` may have shrunk).
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
    let retry = 0
    const schedule = serverAware(
      Schedule.whileInput(policy.schedule ?? backoff(policy), (error: EventsApiError) => isTransient(error)),
      policy,
      start
    ).pipe(
      Schedule.tapOutput(({ delay, error, retrying }) =>
        Effect.gen(function*() {
          if (!retrying) return
          retry++
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
          yield* Effect.logWarning(`${describe(error)}; retry ${retry} in ${Duration.format(delay)}`).pipe(
            Effect.annotateLogs({ trackingId: error.trackingId ?? "none", status: error.status ?? "none" })
          )
          // The server's wait holds back every request of this client, not just this one.
          if (error._tag === "RateLimited") yield* gate.pause(delay)
        })
      )
    )
    const value = yield* Effect.retry(
      Effect.suspend(() => Effect.zipRight(gate.wait, attempt(current))),
      schedule
    )
    return { value, url: current }
  })
