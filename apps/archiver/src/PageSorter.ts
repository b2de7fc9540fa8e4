/**
 * A page body sorted for the sink: the events to file (id, day, exact bytes, resource, instant)
 * and the items to quarantine. Decoding a body (`JSON.parse`, the schema checks, finding each
 * item's exact bytes) is most of a backfill's CPU, so the {@link layerWorker} sorter does it on a
 * thread of its own: the main thread writes one page while the next is decoded (issue 8: the
 * archiver at the raw floor's speed). What crosses between threads is plain data
 * (`PageCompact.Compact`): the body's buffer, moved rather than copied, a few typed arrays and the ids'
 * strings. The same two halves run in-process without the thread ({@link inProcess}), so both
 * sorters file exactly the same records.
 */
import { Event, type EventsApi } from "@webex-compliance/events-api"
import * as Context from "effect/Context"
import * as Effect from "effect/Effect"
import * as Either from "effect/Either"
import * as Layer from "effect/Layer"
import { Worker } from "node:worker_threads"
import * as NdjsonSink from "./NdjsonSink.js"
import { type Compact, compact, type Reply, type Request } from "./PageCompact.js"
import { DAY_MS } from "./Segments.js"

/** A page sorted for the sink: what to file, what to quarantine. Holds no parsed event. */
export interface SortedPage {
  readonly records: ReadonlyArray<NdjsonSink.ArchiveRecord>
  readonly quarantine: ReadonlyArray<NdjsonSink.QuarantineRecord>
  /** Items the page listed. */
  readonly listed: number
}

const utf8 = new TextDecoder("utf-8")

/**
 * The second half, cheap, on the thread that writes: each event checked for the sink (an event that
 * decoded may still not be fileable exactly once: an empty or ambiguous id, a day outside
 * 0000-9999, and is then quarantined rather than stop the archive for good).
 */
const sort = (page: Compact): SortedPage => {
  const { body, created, extra, ids, reasons, resources, spans } = page
  // The events of a page fall on a day or two: each day's text is made once, and shared.
  let dayFrom = 1
  let dayTo = 0
  let dayText = ""
  const records: Array<NdjsonSink.ArchiveRecord> = []
  const quarantine: Array<NdjsonSink.QuarantineRecord> = []
  for (let k = 0; k < page.count; k++) {
    // The exact bytes the server sent are what is archived (invalid UTF-8 included); the text is
    // made only for an item kept in quarantine.
    const bytes = (spans[3 * k] === 0 ? body : extra).subarray(spans[3 * k + 1]!, spans[3 * k + 2]!)
    const id = ids[k]
    const reason = reasons[k]
    if (reason === undefined) {
      const millis = created[k]!
      if (!(millis >= dayFrom && millis < dayTo)) {
        dayFrom = Math.floor(millis / DAY_MS) * DAY_MS
        dayTo = dayFrom + DAY_MS
        dayText = Event.utcDayOfMillis(millis)
      }
      const record = NdjsonSink.checkedRecord(id!, dayText, bytes, resources[k], millis)
      if (typeof record !== "string") records.push(record)
      else quarantine.push({ raw: utf8.decode(bytes), bytes, reason: record, id: id! })
      continue
    }
    quarantine.push({ raw: utf8.decode(bytes), bytes, reason, ...(id !== undefined ? { id } : {}) })
  }
  return { records, quarantine, listed: page.count }
}

/** Sorts a listing's pages: what `EventsApi.listPagesWith` is given. */
export interface Service {
  readonly sort: (page: EventsApi.RawPage) => Effect.Effect<EventsApi.DecodedPage<SortedPage>, string>
}

export class PageSorter extends Context.Tag("@webex-compliance/archiver/PageSorter")<PageSorter, Service>() {}

const sorted = (c: Compact): EventsApi.DecodedPage<SortedPage> => ({ count: c.count, page: sort(c) })

/** Both halves on the calling thread: what `Archiver` uses when no sorter is provided (the default). */
export const inProcess: Service = {
  sort: (page) => Effect.suspend(() => Either.map(compact(page.body), sorted))
}

/** A buffer holding exactly these bytes, which can move to another thread without taking anything else with it. */
const ownBuffer = (bytes: Uint8Array): Uint8Array =>
  bytes.byteOffset === 0 && bytes.byteLength === bytes.buffer.byteLength && bytes.buffer instanceof ArrayBuffer
    ? bytes
    : bytes.slice()

/** Why the decoder thread is gone, as the defect every waiting and later page fails with. */
class DecoderThreadError extends Error {
  constructor(readonly detail: string) {
    super(`the page decoder thread failed: ${detail}`)
    this.name = "DecoderThreadError"
  }
}

/**
 * Sorting on a worker thread running `script` (the bundle's `sortWorker.mjs`), started on the first
 * page, so commands that list nothing never start it, and stopped with the layer's scope. Pages are
 * answered in the order they are sent. A body's buffer moves to the worker and back with the
 * page's records, which view it: the listing owns it (`RawPage.body`). A thread that fails or exits
 * fails every page waiting and every later one with a defect: a fault of this program, not of the
 * server's data, and nothing is written from a page that did not come back.
 */
export const layerWorker = (script: URL): Layer.Layer<PageSorter> =>
  Layer.scoped(
    PageSorter,
    Effect.gen(function*() {
      let worker: Worker | undefined
      let broken: DecoderThreadError | undefined
      let seq = 0
      const waiting = new Map<number, (reply: Reply | DecoderThreadError) => void>()
      const fail = (error: DecoderThreadError) => {
        broken ??= error
        for (const resume of waiting.values()) resume(broken)
        waiting.clear()
      }
      const start = (): Worker => {
        const w = new Worker(script)
        w.on("message", (reply: Reply) => {
          const resume = waiting.get(reply.seq)
          waiting.delete(reply.seq)
          resume?.(reply)
        })
        w.on("error", (e) => fail(new DecoderThreadError(e instanceof Error ? e.message : String(e))))
        w.on("exit", (code) => fail(new DecoderThreadError(`it exited (code ${code})`)))
        // Idle between listings, the thread must not keep a finished command's process alive.
        w.unref()
        return w
      }
      yield* Effect.addFinalizer(() =>
        Effect.promise(async () => {
          const w = worker
          worker = undefined
          if (w !== undefined) {
            broken ??= new DecoderThreadError("it was stopped")
            await w.terminate()
          }
        })
      )
      const sortOnThread = (page: EventsApi.RawPage) =>
        Effect.async<Reply, never>((resume) => {
          if (broken !== undefined) return resume(Effect.die(broken))
          const n = ++seq
          waiting.set(n, (reply) => resume(reply instanceof DecoderThreadError ? Effect.die(reply) : Effect.succeed(reply)))
          const body = ownBuffer(page.body)
          try {
            ;(worker ??= start()).postMessage({ seq: n, body } satisfies Request, [body.buffer as ArrayBuffer])
          } catch (e) {
            fail(new DecoderThreadError(e instanceof Error ? e.message : String(e)))
          }
          // An interrupted wait (the run stopping) leaves the answer to be dropped when it comes.
          return Effect.sync(() => void waiting.delete(n))
        })
      return {
        sort: (page) =>
          Effect.flatMap(sortOnThread(page), (reply) =>
            reply._tag === "Page"
              ? Effect.succeed(sorted(reply.page))
              : reply._tag === "Unusable"
              ? Effect.fail(reply.reason)
              : Effect.die(new DecoderThreadError(reply.message)))
      }
    })
  )
