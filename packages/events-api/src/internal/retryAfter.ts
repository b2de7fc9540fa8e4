/** Reading the `Retry-After` header (RFC 9110 §10.2.3). */
import * as Duration from "effect/Duration"
import * as Option from "effect/Option"

/**
 * Reads a `Retry-After` value: delta-seconds (`"30"`, also `"1.5"`) or an HTTP-date. None for
 * anything else (the service has sent `rand(30),add(30)`), so the caller falls back to backoff.
 * A date in the past means "now".
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
