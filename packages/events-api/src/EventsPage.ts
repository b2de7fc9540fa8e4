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
import * as Equal from "effect/Equal"
import type * as Option from "effect/Option"
import type { Event as EventT } from "./Event.js"

const utf8 = new TextDecoder("utf-8")

/**
 * The bytes of the items of one page, found when first asked for and shared by all its items: an
 * item built with `bytes: page, index: k` reads `page.itemBytes(k)`. The page decoder finds item
 * boundaries only when some consumer reads `bytes` or `raw` (a `list()` user never does, and the
 * scan is most of the cost of decoding a page beyond `JSON.parse`); one object per page, not one
 * closure per item.
 *
 * @since 0.1.0
 */
export interface PageBytes {
  readonly itemBytes: (index: number) => Uint8Array
}

/** What an item is built with: its bytes, or where to get them (a page's with an `index`). */
interface BytesArgs {
  readonly bytes: Uint8Array | PageBytes
  /** The item's index in `bytes` when that is a {@link PageBytes}. */
  readonly index?: number
}

/** What every item carries besides its fields: the item exactly as the server sent it. */
interface ItemFields {
  /** True when the item's bytes are not valid UTF-8: `raw` is then a lossy decoding (U+FFFD) and `bytes` the truth. */
  readonly invalidUtf8: boolean
}

const sameBytes = (a: Uint8Array, b: Uint8Array): boolean => {
  if (a === b) return true
  if (a.length !== b.length) return false
  for (let i = 0; i < a.length; i++) if (a[i] !== b[i]) return false
  return true
}

/** The bytes of a source that is not bytes yet. */
const resolve = (source: PageBytes, index: number): Uint8Array => source.itemBytes(index)

/** The fields of an item that did not decode. */
interface UndecodableFields extends ItemFields {
  /** Why it failed to decode, as a readable message. */
  readonly reason: string
  /** The item's `id`, when it had a string one. */
  readonly id: Option.Option<string>
  /** The item's `created` text, when it had a string one. */
  readonly created: Option.Option<string>
}

// The bytes live in a private field, outside the structural fields (inspecting an item does not
// dump its page), but they are part of equality: two items are equal only when they were sent as
// the same bytes. (The structural hash of the other fields stays valid: equal items have equal fields.)

/** An item that decoded. */
export class Decoded extends Data.TaggedClass("Decoded")<ItemFields & { readonly event: EventT }> {
  #bytes: Uint8Array | PageBytes
  #index: number
  #raw: string | undefined
  constructor(args: ItemFields & { readonly event: EventT } & BytesArgs) {
    super({ event: args.event, invalidUtf8: args.invalidUtf8 })
    this.#bytes = args.bytes
    this.#index = args.index ?? 0
  }
  /**
   * The item's bytes as the server sent them, on one line: a view into the response body (do not
   * mutate it). Only a pretty-printed item that spans lines is copied, without the insignificant
   * whitespace between its tokens; every token keeps its exact bytes.
   */
  get bytes(): Uint8Array {
    const source = this.#bytes
    return ArrayBuffer.isView(source) ? source : (this.#bytes = resolve(source, this.#index))
  }
  /** The item's JSON text: `bytes` decoded as UTF-8 (lossily when `invalidUtf8`). */
  get raw(): string {
    return this.#raw ??= utf8.decode(this.bytes)
  }
  [Equal.symbol](that: Equal.Equal): boolean {
    return that instanceof Decoded && Equal.equals(this.event, that.event) && this.invalidUtf8 === that.invalidUtf8 &&
      sameBytes(this.bytes, that.bytes)
  }
}

/** An item that did not decode. Nothing is dropped: `bytes` is the item as the server sent it. */
export class Undecodable extends Data.TaggedClass("Undecodable")<UndecodableFields> {
  #bytes: Uint8Array | PageBytes
  #index: number
  #raw: string | undefined
  constructor(args: UndecodableFields & BytesArgs) {
    super({ invalidUtf8: args.invalidUtf8, reason: args.reason, id: args.id, created: args.created })
    this.#bytes = args.bytes
    this.#index = args.index ?? 0
  }
  /** The item's bytes as the server sent them, on one line (see {@link Decoded.bytes}). */
  get bytes(): Uint8Array {
    const source = this.#bytes
    return ArrayBuffer.isView(source) ? source : (this.#bytes = resolve(source, this.#index))
  }
  /** The item's JSON text: `bytes` decoded as UTF-8 (lossily when `invalidUtf8`). */
  get raw(): string {
    return this.#raw ??= utf8.decode(this.bytes)
  }
  [Equal.symbol](that: Equal.Equal): boolean {
    return that instanceof Undecodable && this.reason === that.reason && this.invalidUtf8 === that.invalidUtf8 &&
      Equal.equals(this.id, that.id) && Equal.equals(this.created, that.created) && sameBytes(this.bytes, that.bytes)
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
