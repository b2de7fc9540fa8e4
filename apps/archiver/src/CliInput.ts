/**
 * Parsing of the human inputs of the CLI: instants and durations. Pure, so every accepted and
 * refused spelling is pinned by tests; the messages say what would have been accepted.
 */
import * as Duration from "effect/Duration"
import * as Either from "effect/Either"

const DATE = /^\d{4}-\d{2}-\d{2}$/
const DATE_TIME = /^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}(?::\d{2}(?:\.\d{1,9})?)?(?:Z|[+-]\d{2}:?\d{2})$/i

const isCalendarDay = (day: string): boolean => {
  const ms = Date.parse(`${day}T00:00:00Z`)
  return !Number.isNaN(ms) && new Date(ms).toISOString().slice(0, 10) === day
}

/**
 * An instant: an ISO-8601 date-time with a zone (`2024-05-01T00:00:00Z`, `...+02:00`) or a bare
 * date, read as midnight UTC. A date-time without a zone is refused: its meaning would depend on
 * the machine's time zone, and a compliance range must not.
 */
export const parseInstant = (input: string): Either.Either<Date, string> => {
  const s = input.trim()
  // `T24:00` is valid ISO-8601 for "end of day", but Date reads it as the next day: refuse it.
  const ok = DATE.test(s)
    ? `${s}T00:00:00Z`
    : DATE_TIME.test(s) && !/T24/i.test(s)
    ? s.replace(/([+-]\d{2})(\d{2})$/, "$1:$2")
    : undefined
  const ms = ok === undefined ? NaN : Date.parse(ok)
  // `Date` rolls 2024-02-30 over to 1 March: a compliance range must not be guessed.
  return Number.isNaN(ms) || !isCalendarDay(s.slice(0, 10))
    ? Either.left(
      `${JSON.stringify(input)} is not a date-time: use ISO-8601 with a zone, e.g. 2024-05-01T00:00:00Z, or a date, e.g. 2024-05-01 (midnight UTC)`
    )
    : Either.right(new Date(ms))
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
