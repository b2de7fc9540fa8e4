/**
 * Time at the archiver's boundaries (CLI flags, the checkpoint, the lock) is decoded once, here,
 * into epoch milliseconds; nothing downstream parses a string again. The grammar is the library's
 * `Event.IsoDateTime`, so an offset it accepts (`+00`, `+0000`, `+00:00`) is the same instant
 * everywhere: `Date.parse` rejects `+00`, which once made a valid checkpoint read as `NaN`.
 */
import { Event } from "@webex-compliance/events-api"
import * as DateTime from "effect/DateTime"
import * as ParseResult from "effect/ParseResult"
import * as Schema from "effect/Schema"

/** An ISO-8601 date-time on the wire, epoch milliseconds in memory; encoded back as `…Z` ISO text. */
export const EpochMillisFromIso = Schema.transformOrFail(Schema.String, Schema.Number, {
  strict: true,
  decode: (s, _, ast) => {
    const ms = Event.parseIsoMillis(s)
    return ms === undefined
      ? ParseResult.fail(new ParseResult.Type(ast, s, `not an ISO-8601 date-time: ${JSON.stringify(s)}`))
      : ParseResult.succeed(ms)
  },
  encode: (ms, _, ast) =>
    Number.isFinite(ms)
      ? ParseResult.succeed(toIso(ms))
      : ParseResult.fail(new ParseResult.Type(ast, ms, `not a finite instant: ${ms}`))
}).annotations({ identifier: "EpochMillisFromIso" })

/** The instant `input` names, or `undefined`: for inputs the caller reports in its own words. */
export const parseMillis: (input: string) => number | undefined = Event.parseIsoMillis

/** Formats epoch milliseconds as ISO-8601 UTC (`2024-05-01T00:00:00.000Z`). */
export const toIso = (ms: number): string => DateTime.formatIso(DateTime.unsafeMake(ms))
