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

// `DateTime` caches its calendar parts in `partsUtc`, lazily: a non-enumerable slot as it makes
// one. One frozen descriptor for every call (a fresh literal per call costs a third more).
const partsSlot: PropertyDescriptor = Object.freeze({ value: undefined, enumerable: false, writable: true })

/** The `DateTime.Utc` of `millis`, a finite integer within `Date`'s range (the caller vouches). */
export const utcFromMillis = (millis: number): DateTime.Utc => {
  const self = Object.create(proto) as { epochMillis: number }
  self.epochMillis = millis
  Object.defineProperty(self, "partsUtc", partsSlot)
  return self as unknown as DateTime.Utc
}
