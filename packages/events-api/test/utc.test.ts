import { describe, expect, it } from "@effect/vitest"
import * as DateTime from "effect/DateTime"
import * as Equal from "effect/Equal"
import * as FastCheck from "effect/FastCheck"
import * as Hash from "effect/Hash"
import { utcFromMillis } from "../src/internal/utc.js"

describe("utcFromMillis", () => {
  it.prop(
    "is DateTime.unsafeMake of the same millis in every respect DateTime uses",
    // Years 0000-9999: what an ISO date-time can spell.
    { millis: FastCheck.integer({ min: -62_167_219_200_000, max: 253_402_300_799_999 }) },
    ({ millis }) => {
      const ours = utcFromMillis(millis)
      const theirs = DateTime.unsafeMake(millis)
      expect(DateTime.isDateTime(ours)).toBe(true)
      expect(DateTime.isUtc(ours)).toBe(true)
      expect(Object.getPrototypeOf(ours)).toBe(Object.getPrototypeOf(theirs))
      expect(Object.getOwnPropertyDescriptors(ours)).toEqual(Object.getOwnPropertyDescriptors(theirs))
      expect(Equal.equals(ours, theirs)).toBe(true)
      expect(Hash.hash(ours)).toBe(Hash.hash(theirs))
      expect(ours).toEqual(theirs)
      expect(DateTime.formatIso(ours)).toBe(DateTime.formatIso(theirs))
      // The calendar parts DateTime caches lazily on the object work on ours too.
      expect(DateTime.toPartsUtc(ours)).toEqual(DateTime.toPartsUtc(theirs))
      expect(DateTime.unsafeMake(ours)).toBe(ours)
    }
  )
})
