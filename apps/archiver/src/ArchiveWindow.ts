/**
 * Windows of time, listed and archived page by page: each page written and fsync'd before the
 * window it belongs to is reported done, while the next page is already being fetched (so memory
 * holds a few pages, however large the range, and the network waits hide behind the disk's).
 */
import type { EventsApi, EventsApiError } from "@webex-compliance/events-api"
import * as Effect from "effect/Effect"
import * as Option from "effect/Option"
import * as Stream from "effect/Stream"
import type * as NdjsonSink from "./NdjsonSink.js"
import type * as PageSorter from "./PageSorter.js"
import * as Totals from "./Totals.js"

/** What the window's listing is restricted to (the archive's scope) and its page size. */
export interface Query {
  readonly resource?: string | undefined
  readonly type?: string | undefined
  readonly actorId?: string | undefined
  readonly max: number
}

/**
 * Writes sorted pages durably in one batch of the sink: one append and one fsync per file
 * touched, however many pages.
 */
const archivePages = Effect.fn("Archiver.pages")(function*(
  sink: NdjsonSink.Service,
  pages: ReadonlyArray<PageSorter.SortedPage>,
  isLate: (createdMillis: number) => boolean
) {
  const records = pages.flatMap((p) => p.records)
  const quarantine = pages.flatMap((p) => p.quarantine)
  let listed = 0
  for (const page of pages) listed += page.listed
  for (const q of quarantine) {
    // The reason can quote the event's content: it goes to the (0600) quarantine file, not the log.
    yield* Effect.logWarning("An item that cannot be archived as an event is kept in quarantine").pipe(
      Effect.annotateLogs({ id: q.id ?? "none" })
    )
  }
  // Each file's append is itself uninterruptible inside the sink; leaving the rest
  // interruptible lets a stop signal cut short the loading of a large day's id index.
  const result = yield* sink.writeBatch(records, quarantine)
  // Late: a new event created in time the archive already vouched for, counted one by one (a
  // window may reach past what was covered, as a poll past the covered end does).
  let late = 0
  for (const r of result.appended) if (r.createdMillis !== undefined && isLate(r.createdMillis)) late++
  yield* Effect.logDebug("Pages archived").pipe(
    Effect.annotateLogs({ pages: pages.length, items: listed, written: result.written, duplicates: result.duplicates })
  )
  return {
    ...Totals.empty,
    pages: pages.length,
    listed,
    written: result.written,
    duplicates: result.duplicates,
    quarantined: result.quarantined,
    late
  } satisfies Totals.Totals
})

/** A window to archive: listed from `listFrom` (which may reach into its predecessor) to `end`. */
export interface WindowSpec {
  readonly listFrom: number
  readonly end: number
}

/**
 * Pages fetched ahead of the one being written, across window boundaries (the library itself
 * keeps one more in flight). One keeps the network busy through a write's fsync and checkpoint;
 * two or four measured no faster on a 200k backfill, and each page held is most of a MiB that
 * lives long enough to reach V8's old generation (5 MiB more peak RSS for the pair).
 */
const PREFETCH_PAGES = 1

/**
 * A window's pages are written together, one append and one fsync per file (issue 8: "one write
 * and one fsync per window"), up to this many items; a denser window is written in several
 * batches of about this size (a full page each, at the service's largest page size), so memory
 * holds a few pages whatever the window's length.
 */
const BATCH_ITEMS = 1000

type Step<W> =
  | { readonly _tag: "Page"; readonly page: PageSorter.SortedPage }
  | { readonly _tag: "End"; readonly window: W }
  | { readonly _tag: "Failed"; readonly error: EventsApiError.EventsApiError }

/**
 * Archives the windows `next` gives, in order, each listed from `listFrom` to `end`. `next` is
 * asked for a window only once the previous window's listing has ended (possibly before that
 * window is written: the listing runs ahead), and is told how many items it listed (`WindowPlan`
 * sizes windows by it; the count must come from one window, so the windows' `flatMap` stays
 * sequential and unchunked). The planner widens `listFrom` backwards
 * where a neighbouring window ends: whether the service's `from` is inclusive is not documented,
 * so abutting windows re-read a second of their neighbour rather than risk losing an event sitting
 * exactly on the boundary (the sink drops what is already there).
 *
 * One pipeline over every window: while a window's pages are written (and its checkpoint saved by
 * `onWindow`), the next pages, of the same window or the following ones, are being fetched. A
 * window's pages are written as one batch (several for a dense one, see `BATCH_ITEMS`).
 * `onWindow(window, totals)` runs once every page of that window is durable, before anything of
 * the next window is written; a failure to fetch a later page surfaces only after the pages
 * before it were written and their windows reported. So the checkpoint's guarantee is unchanged:
 * a window is recorded only after its events are on disk. Pages held but not yet written when
 * the run stops are simply not written: their window is not checkpointed, and the next run
 * fetches it again.
 */
export const archiveWindows = <W extends WindowSpec, E, R>(
  api: EventsApi.Service,
  sorter: PageSorter.Service,
  sink: NdjsonSink.Service,
  query: Query,
  next: (listedByPrevious: number) => W | undefined,
  isLate: (createdMillis: number) => boolean,
  onWindow: (window: W, totals: Totals.Totals) => Effect.Effect<void, E, R>
): Effect.Effect<void, EventsApiError.EventsApiError | NdjsonSink.WriteError | E, R> =>
  // Suspended: each run of the effect starts with nothing held.
  Effect.suspend(() => {
    // The pages of the current window not yet written, and their item count.
    let held: Array<PageSorter.SortedPage> = []
    let heldItems = 0
    // Items the window being listed has listed so far: told to `next` once its listing ends.
    let listing = 0
    const flush = (totals: Totals.Totals) => {
      if (held.length === 0) return Effect.succeed(totals)
      const pages = held
      held = []
      heldItems = 0
      return Effect.map(archivePages(sink, pages, isLate), (t) => Totals.plus(totals, t))
    }
    // Lazily, one window per pull: `flatMap` pulls the next only once the previous one's listing ended.
    const windows = Stream.unfold(undefined, () => {
      const w = next(listing)
      listing = 0
      return w === undefined ? Option.none() : Option.some([w, undefined] as const)
    })
    return windows.pipe(
      Stream.flatMap((w) =>
        // Sorted as each body arrives (on the decoder thread when there is one), before the
        // buffer: no parsed page is held, only its bytes and records.
        api.listPagesWith({ ...query, from: new Date(w.listFrom), to: new Date(w.end) }, sorter.sort).pipe(
          Stream.map((page): Step<W> => {
            listing += page.listed
            return { _tag: "Page", page }
          }),
          Stream.concat(Stream.succeed<Step<W>>({ _tag: "End", window: w }))
        )
      ),
      // A listing that fails still has the pages it delivered written first (as when each page
      // was written on arrival): they are durable, only their window is not checkpointed.
      Stream.catchAll((error) => Stream.succeed<Step<W>>({ _tag: "Failed", error })),
      Stream.buffer({ capacity: PREFETCH_PAGES }),
      Stream.runFoldEffect(Totals.empty, (totals, step): Effect.Effect<
        Totals.Totals,
        EventsApiError.EventsApiError | NdjsonSink.WriteError | E,
        R
      > => {
        if (step._tag === "End") {
          return flush(totals).pipe(Effect.flatMap((t) => onWindow(step.window, t)), Effect.as(Totals.empty))
        }
        if (step._tag === "Failed") return Effect.zipRight(flush(totals), Effect.fail(step.error))
        held.push(step.page)
        heldItems += step.page.listed
        return heldItems >= BATCH_ITEMS ? flush(totals) : Effect.succeed(totals)
      }),
      Effect.asVoid
    )
  })
