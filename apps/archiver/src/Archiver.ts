/**
 * The archiving loop: time windows in, durable NDJSON out, checkpoint last.
 *
 * Nothing here assumes an order of events. The range is cut into windows; a window is listed
 * page by page and each page is written and fsync'd before the next is fetched (so memory holds
 * one page, however large the backfill). Only when every page of a window is durable does the
 * window join the checkpoint's coverage. A crash anywhere re-fetches at most the windows not yet
 * checkpointed, and the sink's per-day id index turns the re-fetch into "add only what is
 * missing": exactly once, without trusting timestamps to be unique or to arrive in order.
 */
import { Event, EventsApi } from "@webex-compliance/events-api"
import { EventsApiError as ApiError } from "@webex-compliance/events-api"
import * as Clock from "effect/Clock"
import * as Context from "effect/Context"
import * as Data from "effect/Data"
import * as Duration from "effect/Duration"
import * as Effect from "effect/Effect"
import * as Layer from "effect/Layer"
import * as Option from "effect/Option"
import * as Ref from "effect/Ref"
import * as Stream from "effect/Stream"
import type { ArchiveLockLost, ArchiveUnsafe, ArchiveWriteError, CheckpointError } from "./ArchiveError.js"
import { Checkpoint, type CheckpointState } from "./Checkpoint.js"
import * as Coverage from "./Coverage.js"
import { extractId, isDay } from "./internal/archiveFs.js"
import { NdjsonSink } from "./NdjsonSink.js"

/** What the archive is restricted to. A checkpoint belongs to one scope. */
export interface Scope {
  readonly resource?: string | undefined
  readonly type?: string | undefined
  readonly actorId?: string | undefined
}

export interface Settings {
  readonly scope: Scope
  /** Page size, 1 to 1000. */
  readonly max: number
  /** Length of a checkpoint window. */
  readonly window: Duration.Duration
  /**
   * How far behind the clock the archive stays. The service refuses a `to` in its future, so a
   * local clock running ahead would fail every request near "now"; and the newest events may
   * still be settling. Default 0; the CLI uses 10 s.
   */
  readonly settle?: Duration.Duration | undefined
}

export class ArchiverSettings extends Context.Tag("@webex-compliance/archiver/ArchiverSettings")<
  ArchiverSettings,
  Settings
>() {}

/** The command cannot start as asked: a message for the user, and nothing written. */
export class ArchiverUsageError extends Data.TaggedError("ArchiverUsageError")<{ readonly message: string }> {}

export type ArchiverError =
  | ApiError.EventsApiError
  | ArchiveWriteError
  | ArchiveUnsafe
  | ArchiveLockLost
  | CheckpointError
  | ArchiverUsageError

/** What a run did. */
export interface Totals {
  readonly windows: number
  readonly pages: number
  /** Items the API listed, decodable or not. */
  readonly listed: number
  /** Events newly written to the archive. */
  readonly written: number
  /** Events already in the archive (repeated pages, overlaps, re-runs). */
  readonly duplicates: number
  /** Undecodable items kept in quarantine. */
  readonly quarantined: number
}

const emptyTotals: Totals = { windows: 0, pages: 0, listed: 0, written: 0, duplicates: 0, quarantined: 0 }

const plus = (a: Totals, b: Totals): Totals => ({
  windows: a.windows + b.windows,
  pages: a.pages + b.pages,
  listed: a.listed + b.listed,
  written: a.written + b.written,
  duplicates: a.duplicates + b.duplicates,
  quarantined: a.quarantined + b.quarantined
})

export interface Service {
  /** Archives every event created in `[from, to)`; `to` defaults to now. Resumes an interrupted run of the same range. */
  readonly backfill: (from: Date, to: Option.Option<Date>) => Effect.Effect<Totals, ArchiverError>
  /**
   * The daemon: from the checkpoint (or `from` on a first start) up to now, then every
   * `interval` again, re-reading the last `lookback` to catch late-arriving events. Never returns.
   */
  readonly run: (options: {
    readonly from: Option.Option<Date>
    readonly interval: Duration.Duration
    readonly lookback: Duration.Duration
  }) => Effect.Effect<never, ArchiverError>
}

export class Archiver extends Context.Tag("@webex-compliance/archiver/Archiver")<Archiver, Service>() {}

const iso = (ms: number) => new Date(ms).toISOString()

/** How far each window after the first re-reads into its predecessor (see `archiveWindow`). */
const BOUNDARY_OVERLAP_MILLIS = 1000

const sameScope = (a: Scope, b: Scope) =>
  (a.resource ?? null) === (b.resource ?? null) &&
  (a.type ?? null) === (b.type ?? null) &&
  (a.actorId ?? null) === (b.actorId ?? null)

const describeScope = (s: Scope) =>
  [
    s.resource !== undefined ? `--resource ${s.resource}` : "",
    s.type !== undefined ? `--type ${s.type}` : "",
    s.actorId !== undefined ? `--actor ${s.actorId}` : ""
  ].filter((x) => x !== "").join(" ") || "no filters"

export const make = Effect.gen(function*() {
  const api = yield* EventsApi.EventsApi
  const sink = yield* NdjsonSink
  const checkpoint = yield* Checkpoint
  const settings = yield* ArchiverSettings
  const windowMillis = Math.max(1000, Duration.toMillis(settings.window))
  const settleMillis = settings.settle === undefined ? 0 : Duration.toMillis(settings.settle)
  /** The latest instant the archive reaches for: now, less the settling margin. */
  const horizon = Effect.map(Clock.currentTimeMillis, (now) => now - settleMillis)

  const loaded = yield* checkpoint.load
  if (Option.isSome(loaded) && !sameScope(loaded.value.scope, settings.scope)) {
    return yield* new ArchiverUsageError({
      message: `This archive was built with ${describeScope(loaded.value.scope)}, not ${describeScope(settings.scope)}. ` +
        "Its checkpoint only vouches for that scope: use the same filters, or another --out directory."
    })
  }
  const now = yield* Clock.currentTimeMillis
  const state = yield* Ref.make<CheckpointState>(
    Option.getOrElse(loaded, () => ({
      version: 1 as const,
      scope: settings.scope,
      covered: [],
      updatedAt: iso(now)
    }))
  )

  const save = (update: (s: CheckpointState) => CheckpointState) =>
    Effect.gen(function*() {
      const at = yield* Clock.currentTimeMillis
      const next = { ...update(yield* Ref.get(state)), updatedAt: iso(at) }
      yield* checkpoint.save(next)
      yield* Ref.set(state, next)
    })

  /** Lists one window page by page, writing each page durably before asking for the next. */
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

  /**
   * Lists one window page by page, writing each page durably before asking for the next.
   * `overlap` widens the request backwards: whether the service's `from` is inclusive is not
   * documented, so abutting windows re-read a second of their neighbour rather than risk losing
   * an event that sits exactly on the boundary (the sink drops what is already there).
   */
  const archiveWindow = (start: number, end: number, overlap: number): Effect.Effect<Totals, ArchiverError> =>
    api.listPages({ ...settings.scope, from: new Date(start - overlap), to: new Date(end), max: settings.max }).pipe(
      Stream.runFoldEffect(emptyTotals, (totals, page) =>
        Effect.gen(function*() {
          const records = []
          const quarantine = []
          for (const item of page.items) {
            const problem = item._tag === "Decoded"
              ? unfileable(item.event.id, Event.utcDay(item.event), item.raw)
              : item.reason
            if (item._tag === "Decoded" && problem === undefined) {
              records.push({ id: item.event.id, day: Event.utcDay(item.event), raw: item.raw })
              continue
            }
            const id = item._tag === "Decoded" ? Option.some(item.event.id) : item.id
            quarantine.push({ raw: item.raw, reason: problem!, ...(Option.isSome(id) ? { id: id.value } : {}) })
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
          return plus(totals, {
            windows: 0,
            pages: 1,
            listed: page.items.length,
            written: result.written,
            duplicates: result.duplicates,
            quarantined: result.quarantined
          })
        }))
    )

  /**
   * Archives `[from, to)` window by window. After each window: coverage grows and `onWindow`
   * records progress in the same atomic checkpoint write.
   */
  const archiveRange = (
    from: number,
    to: number,
    label: string,
    onWindow: (s: CheckpointState, end: number) => CheckpointState
  ): Effect.Effect<Totals, ArchiverError> =>
    Effect.gen(function*() {
      const windows = Coverage.windows(from, to, windowMillis)
      let totals = emptyTotals
      const started = yield* Clock.currentTimeMillis
      for (const [i, [start, end]] of windows.entries()) {
        const t = yield* archiveWindow(start, end, i === 0 ? 0 : BOUNDARY_OVERLAP_MILLIS)
        yield* save((s) => onWindow({ ...s, covered: Coverage.add(s.covered, { from: iso(start), through: iso(end) }) }, end))
        totals = plus(totals, { ...t, windows: 1 })
        const elapsed = (yield* Clock.currentTimeMillis) - started
        yield* Effect.logInfo(`${label}: window ${i + 1}/${windows.length} archived`).pipe(
          Effect.annotateLogs({
            window: `${iso(start)}/${iso(end)}`,
            listed: t.listed,
            written: t.written,
            duplicates: t.duplicates,
            quarantined: t.quarantined,
            totalWritten: totals.written,
            percent: Math.round(((i + 1) / windows.length) * 100),
            elapsedSeconds: Math.round(elapsed / 1000)
          })
        )
      }
      return totals
    })

  const backfill: Service["backfill"] = (fromDate, toDate) =>
    Effect.gen(function*() {
      const now = yield* horizon
      const from = fromDate.getTime()
      const to = Math.min(Option.match(toDate, { onNone: () => now, onSome: (d) => d.getTime() }), now)
      if (from >= to) {
        return yield* new ArchiverUsageError({
          message: `Nothing to back-fill: --from ${iso(from)} is not before ${Option.isSome(toDate) && toDate.value.getTime() <= now ? "--to" : "now"} (${iso(to)})`
        })
      }
      const job = (yield* Ref.get(state)).backfill
      // The same command run again after a crash or a stop carries on where it left off.
      // The same range again (its end clamped to "now" then, perhaps later now) carries on from
      // where the interrupted run stopped: every window before `doneThrough` is durable.
      const resume = job !== undefined && Date.parse(job.from) === from && Date.parse(job.doneThrough) <= to &&
          (Option.isNone(toDate) || toDate.value.getTime() >= Date.parse(job.to))
        ? Date.parse(job.doneThrough)
        : from
      if (resume > from) yield* Effect.logInfo(`Resuming the back-fill at ${iso(resume)}`)
      yield* save((s) => ({ ...s, backfill: { from: iso(from), to: iso(to), doneThrough: iso(resume) } }))
      const totals = yield* archiveRange(resume, to, "backfill", (s, end) => ({
        ...s,
        backfill: { from: iso(from), to: iso(to), doneThrough: iso(end) }
      }))
      yield* save(({ backfill: _, ...s }) => s)
      yield* checkpoint.clearLastError
      return totals
    })

  const run: Service["run"] = (options) =>
    Effect.gen(function*() {
      const s = yield* Ref.get(state)
      let through: number
      if (s.live !== undefined) {
        through = Date.parse(s.live.through)
        if (Option.isSome(options.from)) {
          yield* Effect.logInfo(`Resuming from the checkpoint at ${s.live.through}; --from is only used on a first start`)
        }
      } else if (Option.isSome(options.from)) {
        through = options.from.value.getTime()
      } else {
        return yield* new ArchiverUsageError({
          message: "This archive has no daemon checkpoint yet: give --from <date-time> for the first start"
        })
      }
      const firstStart = Option.isSome(options.from) && s.live === undefined ? through : Number.NEGATIVE_INFINITY
      const lookback = Duration.toMillis(options.lookback)
      for (let pass = 0;; pass++) {
        const now = yield* horizon
        // Late-arriving events: re-read the last `lookback` on every pass, the first after a restart
        // included (events may have arrived late while the daemon was down); the sink skips what
        // is already there. Only a first start begins exactly at --from.
        const from = Math.max(firstStart, through - lookback)
        if (from < now) {
          const result = yield* archiveRange(from, now, pass === 0 ? "catch-up" : "poll", (st, end) => ({
            ...st,
            // A poll re-reads windows behind the position: they must not move it back.
            live: { through: iso(Math.max(end, st.live !== undefined ? Date.parse(st.live.through) : end)) }
          })).pipe(
            Effect.map(Option.some),
            // A daemon outlives an outage: once the retry policy gives up on a transient failure,
            // the pass ends and the next poll starts again from the checkpoint.
            Effect.catchIf(ApiError.isTransient, (e) =>
              Effect.logError(`Poll failed, will retry at the next interval: ${e.message}`).pipe(
                Effect.annotateLogs({ error: e._tag, trackingId: e.trackingId ?? "none" }),
                Effect.zipRight(checkpoint.recordError(`${e.message}${e.trackingId !== undefined ? ` (trackingId ${e.trackingId})` : ""}`)),
                Effect.as(Option.none<Totals>())
              ))
          )
          const live = (yield* Ref.get(state)).live
          if (live !== undefined) through = Date.parse(live.through)
          if (Option.isSome(result)) {
            // `status` shows the last error until a pass succeeds again.
            yield* checkpoint.clearLastError
            yield* Effect.logInfo(pass === 0 ? "Caught up" : "Poll done").pipe(
              Effect.annotateLogs({ through: iso(through), written: result.value.written, duplicates: result.value.duplicates })
            )
          }
        }
        yield* Effect.sleep(options.interval)
      }
    })

  return { backfill, run } satisfies Service
})

export const layer: Layer.Layer<
  Archiver,
  CheckpointError | ArchiverUsageError,
  EventsApi.EventsApi | NdjsonSink | Checkpoint | ArchiverSettings
> = Layer.effect(Archiver, make)
