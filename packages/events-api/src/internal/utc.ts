/**
 * A `DateTime.Utc` straight from epoch millis, for the one per decoded event.
 *
 * `DateTime.unsafeMake(millis)` tests its input against every kind of input it takes and goes
 * through a `Date` (allocated, then dropped) to reach the same object; at one per event that
 * shows in a listing's profile. This builds what it builds (its prototype taken from a real one,
 * the same own fields), and the tests hold the two equal in every respect `DateTime` uses.
 */
import * as DateTime from "effect/DateTime"

const proto: object = Object.getPrototypeOf(DateTime.unsafeMake(0))

/** The `DateTime.Utc` of `millis`, a finite integer within `Date`'s range (the caller vouches). */
export const utcFromMillis = (millis: number): DateTime.Utc => {
  const self = Object.create(proto) as { epochMillis: number }
  self.epochMillis = millis
  // `DateTime` caches its calendar parts here, lazily; a non-enumerable slot as it makes one.
  Object.defineProperty(self, "partsUtc", { value: undefined, enumerable: false, writable: true })
  return self as unknown as DateTime.Utc
}
