/**
 * Query parameters of `GET /events`, validated on the client before any request is sent.
 *
 * @since 0.1.0
 */
import * as DateTime from "effect/DateTime"
import * as Effect from "effect/Effect"
import * as Option from "effect/Option"
import * as Schema from "effect/Schema"
import type { EventType, Resource } from "./Event.js"
import { IsoDateTime } from "./Event.js"
import { InvalidRequest } from "./EventsApiError.js"

/** A point in time: a `DateTime`, a `Date` or an ISO-8601 string. */
export type TimeInput = DateTime.DateTime | Date | string

/** What a caller may filter `GET /events` by. Every field is optional. */
export interface ListParams {
  /** Only events of this resource, e.g. `"messages"`. */
  readonly resource?: Resource | undefined
  /** Only events of this type, e.g. `"deleted"`. */
  readonly type?: EventType | undefined
  /** Only events performed by this person id. */
  readonly actorId?: string | undefined
  /** Only events created at or after this instant. */
  readonly from?: TimeInput | undefined
  /** Only events created before this instant; clamped to now (the service refuses the future). */
  readonly to?: TimeInput | undefined
  /** Page size, 1 to 1000 (the service's default is 100). Not a cap on the total. */
  readonly max?: number | undefined
}

/** Validated parameters, ready to go on the wire. */
export interface Normalized {
  readonly resource: Option.Option<string>
  readonly type: Option.Option<string>
  readonly actorId: Option.Option<string>
  readonly from: Option.Option<DateTime.Utc>
  readonly to: Option.Option<DateTime.Utc>
  readonly max: Option.Option<number>
}

export const MAX_PAGE_SIZE = 1000

const invalid = (param: string, reason: string) => InvalidRequest.param(param, reason)

const decodeIso = Schema.decodeUnknownOption(IsoDateTime)

const toUtc = (param: string, input: TimeInput | undefined): Effect.Effect<Option.Option<DateTime.Utc>, InvalidRequest> => {
  if (input === undefined) return Effect.succeedNone
  if (typeof input === "string") {
    const parsed = decodeIso(input.trim())
    return Option.isSome(parsed)
      ? Effect.succeed(parsed)
      : Effect.fail(invalid(param, `${JSON.stringify(input)} is not an ISO-8601 date-time such as 2024-01-31T00:00:00Z`))
  }
  if (input instanceof Date) {
    return Number.isNaN(input.getTime())
      ? Effect.fail(invalid(param, "the Date is invalid"))
      : Effect.succeed(Option.some(DateTime.unsafeMake(input)))
  }
  if (DateTime.isDateTime(input)) return Effect.succeed(Option.some(DateTime.toUtc(input)))
  return Effect.fail(invalid(param, "expected a DateTime, a Date or an ISO-8601 string"))
}

const text = (param: string, value: string | undefined): Effect.Effect<Option.Option<string>, InvalidRequest> => {
  if (value === undefined) return Effect.succeedNone
  if (typeof value !== "string" || value.trim() === "") return Effect.fail(invalid(param, "must be a non-empty string"))
  return Effect.succeed(Option.some(value))
}

/**
 * Validates and normalises parameters. `to` later than now is clamped to now, because the
 * service refuses a future `to`; `from` after `to` fails.
 */
export const normalize = (params: ListParams = {}): Effect.Effect<Normalized, InvalidRequest> =>
  Effect.gen(function*() {
    const max = params.max
    if (max !== undefined && (!Number.isInteger(max) || max < 1 || max > MAX_PAGE_SIZE)) {
      return yield* invalid("max", `the page size must be an integer from 1 to ${MAX_PAGE_SIZE}, got ${max}`)
    }
    const now = yield* DateTime.now
    const from = yield* toUtc("from", params.from)
    const requestedTo = yield* toUtc("to", params.to)
    const to = Option.map(requestedTo, (t) => DateTime.min(t, now))
    if (Option.isSome(from) && Option.isSome(to) && DateTime.greaterThan(from.value, to.value)) {
      return yield* invalid(
        "from",
        `${DateTime.formatIso(from.value)} is after ${Option.isSome(requestedTo) && DateTime.greaterThan(requestedTo.value, now) ? "now" : "to"} (${DateTime.formatIso(to.value)})`
      )
    }
    return {
      resource: yield* text("resource", params.resource),
      type: yield* text("type", params.type),
      actorId: yield* text("actorId", params.actorId),
      from,
      to,
      max: Option.fromNullable(max)
    }
  })

/** The filter parameters as the service expects them (`from`/`to` as `YYYY-MM-DDTHH:mm:ss.SSSZ`). */
export const filterParams = (p: Normalized): Record<string, string> => {
  const out: Record<string, string> = {}
  if (Option.isSome(p.resource)) out.resource = p.resource.value
  if (Option.isSome(p.type)) out.type = p.type.value
  if (Option.isSome(p.actorId)) out.actorId = p.actorId.value
  if (Option.isSome(p.from)) out.from = DateTime.formatIso(p.from.value)
  if (Option.isSome(p.to)) out.to = DateTime.formatIso(p.to.value)
  return out
}

/** Whether an event matches the filters (used by the in-memory layer; bounds as `from <= t < to`). */
export const matches = (
  p: Normalized,
  event: { readonly resource: string; readonly type: string; readonly actorId?: string | undefined; readonly created: DateTime.Utc }
): boolean =>
  (Option.isNone(p.resource) || p.resource.value === event.resource) &&
  (Option.isNone(p.type) || p.type.value === event.type) &&
  (Option.isNone(p.actorId) || p.actorId.value === event.actorId) &&
  (Option.isNone(p.from) || !DateTime.lessThan(event.created, p.from.value)) &&
  (Option.isNone(p.to) || DateTime.lessThan(event.created, p.to.value))
