/**
 * A pause shared by every request of one client. When the service answers 429, everyone waits
 * out the `Retry-After` together instead of each request discovering the limit on its own.
 */
import * as Clock from "effect/Clock"
import * as Duration from "effect/Duration"
import * as Effect from "effect/Effect"
import * as Ref from "effect/Ref"

export interface RateGate {
  /** Waits until no pause is in force (re-checking, since a pause can be extended meanwhile). */
  readonly wait: Effect.Effect<void>
  /** Pauses the gate for at least `duration` from now, without waiting. */
  readonly pause: (duration: Duration.Duration) => Effect.Effect<void>
}

export const make: Effect.Effect<RateGate> = Effect.map(Ref.make(0), (until) => {
  const wait: Effect.Effect<void> = Effect.gen(function*() {
    for (;;) {
      const now = yield* Clock.currentTimeMillis
      const deadline = yield* Ref.get(until)
      if (deadline <= now) return
      yield* Effect.sleep(Duration.millis(deadline - now))
    }
  })
  const pause = (duration: Duration.Duration) =>
    Effect.flatMap(Clock.currentTimeMillis, (now) => Ref.update(until, (d) => Math.max(d, now + Duration.toMillis(duration))))
  return { wait, pause }
})
