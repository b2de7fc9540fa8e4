/**
 * One HTTP page of `GET /events`, item by item, with the exact bytes of each item kept.
 *
 * A malformed item does not sink its page: it becomes an {@link Undecodable} next to the
 * {@link Decoded} ones, carrying the item's bytes and the reason it failed, so the caller
 * (the archiver's quarantine, say) can keep it.
 *
 * @since 0.1.0
 */
import * as Data from "effect/Data"
import type * as Option from "effect/Option"
import type { Event as EventT } from "./Event.js"

const utf8 = new TextDecoder("utf-8")

/**
 * `raw` is computed from `bytes` when read (most consumers of `list` never read it), and kept per
 * item outside the instance so that structural equality still compares only the fields.
 */
const rawCache = new WeakMap<object, string>()
const rawOf = (item: { readonly bytes: Uint8Array }): string => {
  let raw = rawCache.get(item)
  if (raw === undefined) {
    raw = utf8.decode(item.bytes)
    rawCache.set(item, raw)
  }
  return raw
}

/** What every item carries: the item exactly as the server sent it. */
interface ItemBytes {
  /**
   * The item's bytes as the server sent them, on one line: a view into the response body (do not
   * mutate it). Only a pretty-printed item that spans lines is copied, without the insignificant
   * whitespace between its tokens; every token keeps its exact bytes.
   */
  readonly bytes: Uint8Array
  /** True when `bytes` is not valid UTF-8: `raw` is then a lossy decoding (U+FFFD) and `bytes` the truth. */
  readonly invalidUtf8: boolean
}

/** An item that decoded. */
export class Decoded extends Data.TaggedClass("Decoded")<ItemBytes & { readonly event: EventT }> {
  /** The item's JSON text: `bytes` decoded as UTF-8 (lossily when `invalidUtf8`). */
  get raw(): string {
    return rawOf(this)
  }
}

/** An item that did not decode. Nothing is dropped: `bytes` is the item as the server sent it. */
export class Undecodable extends Data.TaggedClass("Undecodable")<
  ItemBytes & {
    /** Why it failed to decode, as a readable message. */
    readonly reason: string
    /** The item's `id`, when it had a string one. */
    readonly id: Option.Option<string>
    /** The item's `created` text, when it had a string one. */
    readonly created: Option.Option<string>
  }
> {
  /** The item's JSON text: `bytes` decoded as UTF-8 (lossily when `invalidUtf8`). */
  get raw(): string {
    return rawOf(this)
  }
}

/** One item of a page. */
export type Item = Decoded | Undecodable
/** The same as {@link Item} (its name before 0.2). */
export type PageItem = Item

/** One page: its items in the order the server sent them, and where the next page is. */
export class EventsPage extends Data.Class<{
  /** The URL this page was fetched from (no credentials in it). */
  readonly url: string
  readonly items: ReadonlyArray<Item>
  /** The (repaired, origin-checked) next page URL; none on the last page or when the link was refused. */
  readonly next: Option.Option<string>
  readonly trackingId: Option.Option<string>
}> {
  /** The events of the items that decoded. */
  get events(): ReadonlyArray<EventT> {
    const events: Array<EventT> = []
    for (const item of this.items) if (item._tag === "Decoded") events.push(item.event)
    return events
  }
  /** The items that did not decode. */
  get undecodable(): ReadonlyArray<Undecodable> {
    return this.items.filter((item): item is Undecodable => item._tag === "Undecodable")
  }
}
