/**
 * One HTTP page of `GET /events`, item by item, with the raw JSON of each item kept.
 *
 * A malformed item does not sink its page: it becomes an {@link Undecodable} next to the
 * {@link Decoded} ones, carrying the item's raw text and the reason it failed, so the caller
 * (the archiver's quarantine, say) can keep it.
 *
 * @since 0.1.0
 */
import * as Data from "effect/Data"
import * as Effect from "effect/Effect"
import * as Either from "effect/Either"
import * as Option from "effect/Option"
import * as ParseResult from "effect/ParseResult"
import * as Schema from "effect/Schema"
import type { Event as EventT } from "./Event.js"
import * as Event from "./Event.js"
import { ResponseDecodeError } from "./EventsApiError.js"
import { compact, rawItems } from "./internal/rawJson.js"

/** An item that decoded. `raw` is its JSON text exactly as the server sent it, on one line. */
export class Decoded extends Data.TaggedClass("Decoded")<{
  readonly event: EventT
  readonly raw: string
}> {}

/** An item that did not decode. Nothing is dropped: `raw` is the item as the server sent it. */
export class Undecodable extends Data.TaggedClass("Undecodable")<{
  readonly raw: string
  /** Why it failed to decode, as a readable message. */
  readonly reason: string
  /** The item's `id`, when it had a string one. */
  readonly id: Option.Option<string>
  /** The item's `created` text, when it had a string one. */
  readonly created: Option.Option<string>
}> {}

export type PageItem = Decoded | Undecodable

/** One page: its items in the order the server sent them, and where the next page is. */
export class EventsPage extends Data.Class<{
  /** The URL this page was fetched from (no credentials in it). */
  readonly url: string
  readonly items: ReadonlyArray<PageItem>
  /** The (repaired, origin-checked) next page URL; none on the last page or when the link was refused. */
  readonly next: Option.Option<string>
  readonly trackingId: Option.Option<string>
}> {
  /** The events of the items that decoded. */
  get events(): ReadonlyArray<EventT> {
    return this.items.flatMap((item) => (item._tag === "Decoded" ? [item.event] : []))
  }
  /** The items that did not decode. */
  get undecodable(): ReadonlyArray<Undecodable> {
    return this.items.filter((item): item is Undecodable => item._tag === "Undecodable")
  }
}

const stringField = (json: unknown, key: string): Option.Option<string> =>
  typeof json === "object" && json !== null && typeof (json as Record<string, unknown>)[key] === "string"
    ? Option.some((json as Record<string, string>)[key]!)
    : Option.none()

const issues = (error: ParseResult.ParseError, prefix: string): string => {
  // One issue per field: an optional field's failure also reports "Expected undefined".
  const byPath = new Map<string, string>()
  for (const issue of ParseResult.ArrayFormatter.formatErrorSync(error)) {
    const path = [prefix, ...issue.path.map(String)].filter((p) => p !== "").join(".") || "event"
    if (!byPath.has(path)) byPath.set(path, issue.message)
  }
  return [...byPath].map(([path, message]) => `${path}: ${message}`).join("; ")
}

/**
 * A one-line reason naming the field at fault. The union of every resource's schema yields a
 * wall of alternatives; checking the common fields, then the resource's own `data` schema,
 * says what is actually wrong.
 */
const explain = (json: unknown, error: ParseResult.ParseError): string => {
  const envelope = Schema.decodeUnknownEither(Event.Envelope)(json, { errors: "all" })
  if (Either.isLeft(envelope)) return issues(envelope.left, "")
  const resource = envelope.right.resource
  if (Object.hasOwn(Event.DataSchemas, resource)) {
    const schema = Event.DataSchemas[resource as Event.TypedResource] as Schema.Schema<unknown, unknown>
    const data = Schema.decodeUnknownEither(schema)(envelope.right.data, { errors: "all" })
    if (Either.isLeft(data)) return issues(data.left, "data")
  }
  return ParseResult.TreeFormatter.formatErrorSync(error)
}

/** Decodes one item, given its parsed JSON and its raw text. */
export const decodeItem = (json: unknown, raw: string): PageItem => {
  const result = Event.decodeUnknownEither(json, { onExcessProperty: "preserve" })
  return Either.isRight(result)
    ? new Decoded({ event: result.right, raw })
    : new Undecodable({
      raw,
      reason: explain(json, result.left),
      id: stringField(json, "id"),
      created: stringField(json, "created")
    })
}

/** Decodes one item from its raw JSON text (the in-memory layer and archive readers use this). */
export const decodeRaw = (rawText: string): PageItem => {
  const raw = compact(rawText.trim())
  let json: unknown
  try {
    json = JSON.parse(raw)
  } catch (e) {
    return new Undecodable({
      raw,
      reason: `Not JSON: ${(e as Error).message}`,
      id: Option.none(),
      created: Option.none()
    })
  }
  return decodeItem(json, raw)
}

/**
 * Splits a list response body into items. `Left` with a reason when the body is not JSON or has
 * no `items` array (the whole response is then unusable).
 */
export const decodeBody = (body: string): Either.Either<ReadonlyArray<PageItem>, string> => {
  let json: unknown
  try {
    json = JSON.parse(body)
  } catch (e) {
    return Either.left(`the body is not JSON (${(e as Error).message})`)
  }
  const items = (json as { items?: unknown } | null)?.items
  const raws = Array.isArray(items) ? rawItems(body) : undefined
  if (!Array.isArray(items) || raws === undefined || raws.length !== items.length) {
    return Either.left("the body has no \"items\" array")
  }
  return Either.right(items.map((item, i) => decodeItem(item, raws[i]!)))
}

/**
 * The events of a page, or a `ResponseDecodeError` naming its first undecodable item: what
 * `list` uses, so that an item is never skipped silently.
 */
export const eventsOrFail = (page: EventsPage): Effect.Effect<ReadonlyArray<EventT>, ResponseDecodeError> => {
  const bad = page.undecodable[0]
  return bad === undefined
    ? Effect.succeed(page.events)
    : Effect.fail(
      new ResponseDecodeError({
        url: page.url,
        reason: `an item does not decode` +
          `${Option.isSome(bad.id) ? ` (id ${bad.id.value})` : ""}: ${bad.reason}. ` +
          "Use listPages to keep undecodable items and carry on.",
        ...(Option.isSome(page.trackingId) ? { trackingId: page.trackingId.value } : {})
      })
    )
}
