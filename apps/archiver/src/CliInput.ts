/**
 * Parsing of the human inputs of the CLI: instants and durations. Pure, so every accepted and
 * refused spelling is pinned by tests; the messages say what would have been accepted.
 */
import { Event } from "@webex-compliance/events-api"
import * as Duration from "effect/Duration"
import * as Either from "effect/Either"

const DATE = /^\d{4}-\d{2}-\d{2}$/

/**
 * An instant: an ISO-8601 date-time with a zone (`2024-05-01T00:00:00Z`, `...+02:00`) or a bare
 * date, read as midnight UTC. A date-time without a zone is refused: its meaning would depend on
 * the machine's time zone, and a compliance range must not. The date-time grammar and its range
 * checks (no 2024-02-30, no T24:00) are the library's own `Event.IsoDateTime`; the CLI asks in
 * addition for a full `±hh:mm` offset, as its help says. Decoded once, to epoch milliseconds.
 */
export const parseInstant = (input: string): Either.Either<number, string> => {
  const s = input.trim()
  const ms = DATE.test(s)
    ? Event.parseIsoMillis(`${s}T00:00:00Z`)
    : /[+-]\d{2}$/.test(s)
    ? undefined
    : Event.parseIsoMillis(s)
  return ms === undefined
    ? Either.left(
      `${JSON.stringify(input)} is not a date-time: use ISO-8601 with a zone, e.g. 2024-05-01T00:00:00Z, or a date, e.g. 2024-05-01 (midnight UTC)`
    )
    : Either.right(ms)
}

const UNITS: Record<string, number> = {
  ms: 1,
  s: 1000,
  sec: 1000,
  m: 60_000,
  min: 60_000,
  h: 3_600_000,
  d: 86_400_000
}

/** A positive duration: `90s`, `5m`, `1h`, `2d`, `500ms`, `1h30m`, or Effect's `"5 minutes"`. */
export const parseDuration = (input: string): Either.Either<Duration.Duration, string> => {
  const s = input.trim().toLowerCase()
  let ms: number | undefined
  if (/^(\d+(\.\d+)?(ms|sec|min|s|m|h|d))+$/.test(s)) {
    ms = 0
    for (const [, n, unit] of s.matchAll(/(\d+(?:\.\d+)?)(ms|sec|min|s|m|h|d)/g)) ms += Number(n) * UNITS[unit!]!
  } else {
    const d = Duration.decodeUnknown(s)
    if (d._tag === "Some") ms = Duration.toMillis(d.value)
  }
  return ms === undefined || !Number.isFinite(ms) || ms <= 0
    ? Either.left(`${JSON.stringify(input)} is not a positive duration: use e.g. 30s, 5m, 1h, 1h30m or 2d`)
    : Either.right(Duration.millis(ms))
}
