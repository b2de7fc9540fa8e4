/**
 * The heavy half of sorting a page body (`PageSorter`), and what crosses between threads: a body
 * decoded as `listPages` does, kept as plain, transferable parts. A module of its own so that the
 * decoder thread (`sortWorker.ts`) loads the library's decoding and nothing of the sink.
 */
import { EventsApi } from "@webex-compliance/events-api"
import * as Either from "effect/Either"
import * as Option from "effect/Option"

/**
 * A page body decoded into plain parts, all structured-cloneable and the large ones transferable:
 * what the worker sends back. Item `k`'s bytes are `(spans[3k] === 0 ? body : extra)` from
 * `spans[3k + 1]` to `spans[3k + 2]`: a view of the body as sent, or, for an item of a
 * pretty-printed body, its one-line copy (`EventsPage.Decoded.bytes`) in `extra`.
 */
export interface Compact {
  readonly count: number
  readonly body: Uint8Array
  readonly extra: Uint8Array
  readonly spans: Int32Array
  /** Epoch millis of each decoded event's `created`; NaN for an item that did not decode. */
  readonly created: Float64Array
  /** Each item's id: the event's, or an undecodable item's when it had a string one. */
  readonly ids: ReadonlyArray<string | undefined>
  /** Each decoded event's resource; `undefined` for an item that did not decode. */
  readonly resources: ReadonlyArray<string | undefined>
  /** Why an item did not decode; `undefined` for one that did. */
  readonly reasons: ReadonlyArray<string | undefined>
}

/**
 * The first half, where the work is: decodes a body as `listPages` does and keeps of each item only
 * what the sink needs. `Left` with the reason when the body is unusable (not JSON, no `items`).
 */
export const compact = (body: Uint8Array): Either.Either<Compact, string> =>
  Either.map(EventsApi.decodePageBody(body), (items) => {
    const count = items.length
    const spans = new Int32Array(3 * count)
    const created = new Float64Array(count)
    const ids: Array<string | undefined> = new Array(count)
    const resources: Array<string | undefined> = new Array(count)
    const reasons: Array<string | undefined> = new Array(count)
    const copies: Array<Uint8Array> = []
    let extraLength = 0
    for (let k = 0; k < count; k++) {
      const item = items[k]!
      const bytes = item.bytes
      if (bytes.buffer === body.buffer) {
        spans[3 * k + 1] = bytes.byteOffset - body.byteOffset
      } else {
        spans[3 * k] = 1
        spans[3 * k + 1] = extraLength
        copies.push(bytes)
        extraLength += bytes.length
      }
      spans[3 * k + 2] = spans[3 * k + 1]! + bytes.length
      if (item._tag === "Decoded") {
        created[k] = item.event.created.epochMillis
        ids[k] = item.event.id
        resources[k] = item.event.resource
      } else {
        created[k] = NaN
        ids[k] = Option.getOrUndefined(item.id)
        reasons[k] = item.reason
      }
    }
    const extra = new Uint8Array(extraLength)
    let at = 0
    for (const copy of copies) {
      extra.set(copy, at)
      at += copy.length
    }
    return { count, body, extra, spans, created, ids, resources, reasons }
  })

/** A message to the worker: a body to decode, under a number its answer carries back. */
export interface Request {
  readonly seq: number
  readonly body: Uint8Array
}

/** The worker's answer: the page, the reason its body is unusable, or what broke in the decoder. */
export type Reply =
  | { readonly seq: number; readonly _tag: "Page"; readonly page: Compact }
  | { readonly seq: number; readonly _tag: "Unusable"; readonly reason: string }
  | { readonly seq: number; readonly _tag: "Defect"; readonly message: string }

/** The buffers of a reply that move to the other thread rather than being copied (four distinct ones). */
export const transferables = (c: Compact): Array<ArrayBuffer> =>
  [c.body.buffer, c.extra.buffer, c.spans.buffer, c.created.buffer] as Array<ArrayBuffer>

