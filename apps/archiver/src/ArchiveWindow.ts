/**
 * One window of time, listed and archived: page by page, each page written and fsync'd before the
 * next is fetched (so memory holds one page, however large the range).
 */
import { Event, type EventsApi, type EventsApiError, type EventsPage } from "@webex-compliance/events-api"
import * as Effect from "effect/Effect"
import * as Option from "effect/Option"
import * as Stream from "effect/Stream"
import { extractId, isDay } from "./internal/archiveFs.js"
import type * as NdjsonSink from "./NdjsonSink.js"
import * as Totals from "./Totals.js"

/** What the window's listing is restricted to (the archive's scope) and its page size. */
export interface Query {
  readonly resource?: string | undefined
  readonly type?: string | undefined
  readonly actorId?: string | undefined
  readonly max: number
}

/**
 * Where an event that decoded still cannot be filed exactly once: its id must be non-empty and
 * the one a reader of the line finds (duplicate `id` keys make them differ), and its day must be
 * a plain `YYYY-MM-DD`. Such items are kept in quarantine rather than stop the archive for good.
 */
const unfileable = (id: string, day: string, raw: string): string | undefined =>
  id === ""
    ? "the event's id is empty"
    : extractId(raw) !== id
    ? "the event's id is ambiguous (the line has more than one \"id\" key)"
    : !isDay(day)
    ? `the event's created instant falls on ${day}, outside the years 0000-9999`
    : undefined

/** Splits a page into events to file and items to quarantine, and writes both durably. */
export const archivePage = Effect.fn("Archiver.page")(function*(sink: NdjsonSink.Service, page: EventsPage.EventsPage) {
  const records = []
  const quarantine = []
  for (const item of page.items) {
    const problem = item._tag === "Decoded" ? unfileable(item.event.id, Event.utcDay(item.event), item.raw) : item.reason
    if (item._tag === "Decoded" && problem === undefined) {
      // The exact bytes the server sent are what is archived (invalid UTF-8 included).
      records.push({ id: item.event.id, day: Event.utcDay(item.event), raw: item.raw, bytes: item.bytes })
      continue
    }
    const id = item._tag === "Decoded" ? Option.some(item.event.id) : item.id
    quarantine.push({ raw: item.raw, bytes: item.bytes, reason: problem!, ...(Option.isSome(id) ? { id: id.value } : {}) })
    // The reason can quote the event's content: it goes to the (0600) quarantine file, not the log.
    yield* Effect.logWarning("An item that cannot be archived as an event is kept in quarantine").pipe(
      Effect.annotateLogs({ id: Option.getOrElse(id, () => "none") })
    )
  }
  // Each file's append is itself uninterruptible inside the sink; leaving the rest
  // interruptible lets a stop signal cut short the loading of a large day's id index.
  const result = yield* sink.writeBatch(records, quarantine)
  yield* Effect.logDebug("Page archived").pipe(
    Effect.annotateLogs({ items: page.items.length, written: result.written, duplicates: result.duplicates })
  )
  return {
    ...Totals.empty,
    pages: 1,
    listed: page.items.length,
    written: result.written,
    duplicates: result.duplicates,
    quarantined: result.quarantined
  } satisfies Totals.Totals
})

/**
 * Lists `[from, to)` page by page, writing each page durably before asking for the next. The
 * caller widens `from` backwards where a neighbouring window ends: whether the service's `from`
 * is inclusive is not documented, so abutting windows re-read a second of their neighbour rather
 * than risk losing an event sitting exactly on the boundary (the sink drops what is already there).
 */
export const archiveWindow: (
  api: EventsApi.Service,
  sink: NdjsonSink.Service,
  query: Query,
  from: number,
  to: number
) => Effect.Effect<Totals.Totals, EventsApiError.EventsApiError | NdjsonSink.WriteError> = Effect.fn("Archiver.window")(function*(
  api: EventsApi.Service,
  sink: NdjsonSink.Service,
  query: Query,
  from: number,
  to: number
) {
  yield* Effect.annotateCurrentSpan({ from, to })
  return yield* api.listPages({ ...query, from: new Date(from), to: new Date(to) }).pipe(
    Stream.runFoldEffect(Totals.empty, (totals, page) => Effect.map(archivePage(sink, page), (t) => Totals.plus(totals, t)))
  )
})
