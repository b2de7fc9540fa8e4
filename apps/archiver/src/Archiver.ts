/**
 * The archiving loop: time windows in, durable NDJSON out, checkpoint last.
 *
 * Nothing here assumes an order of events. What to fetch is planned from the checkpoint's
 * coverage (`Planner.ts`): a covered stretch is not listed again unless asked for. Each planned
 * stretch is cut into windows, each window archived page by page (`ArchiveWindow.ts`); only when
 * every page of a window is durable does the window join the checkpoint's coverage. A crash
 * anywhere re-fetches at most the windows not yet checkpointed, and the sink's id index turns the
 * re-fetch into "add only what is missing": exactly once, without trusting timestamps to be unique
 * or to arrive in order.
 */
import { EventsApi } from "@webex-compliance/events-api"
import * as Clock from "effect/Clock"
import * as Context from "effect/Context"
import * as Duration from "effect/Duration"
import * as Effect from "effect/Effect"
import * as Layer from "effect/Layer"
import * as Option from "effect/Option"
import * as Ref from "effect/Ref"
import * as Schedule from "effect/Schedule"
import type { ArchiveLockLost, ArchiveUnsafe, ArchiveWriteError, CheckpointError } from "./ArchiveError.js"
import { ArchiverUsageError } from "./ArchiverError.js"
import { archiveWindows } from "./ArchiveWindow.js"
import { Checkpoint, type CheckpointState } from "./Checkpoint.js"
import * as Coverage from "./Coverage.js"
import { toIso } from "./Instant.js"
import { NdjsonSink } from "./NdjsonSink.js"
import * as PageSorter from "./PageSorter.js"
import * as Planner from "./Planner.js"
import * as Seal from "./Seal.js"
import { safeText } from "./Redaction.js"
import * as Totals from "./Totals.js"
import * as WindowPlan from "./WindowPlan.js"
import type { EventsApiError as ApiError } from "@webex-compliance/events-api"

export { ArchiverUsageError } from "./ArchiverError.js"
export type { Totals } from "./Totals.js"

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
  /** Length of a checkpoint window (where events are dense, see `WindowPlan`). */
  readonly window: Duration.Duration
  /**
   * How long a window may grow where events are sparse (`WindowPlan`): windows start at `window`
   * and grow toward about a thousand events each. Default (and at least) `window`: every window
   * the same length.
   */
  readonly longestWindow?: Duration.Duration | undefined
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

export type ArchiverError =
  | ApiError.EventsApiError
  | ArchiveWriteError
  | ArchiveUnsafe
  | ArchiveLockLost
  | CheckpointError
  | ArchiverUsageError

export interface BackfillOptions {
  /** Start of the range (inclusive), epoch millis. */
  readonly from: number
  /** End of the range (exclusive); default (and at most) now. */
  readonly to: Option.Option<number>
  /** Re-read windows already covered, to find events the API listed late. */
  readonly recheck?: boolean | undefined
}

export interface RunOptions {
  /** Where to start when the coverage does not say (a first start), epoch millis. */
  readonly from: Option.Option<number>
  readonly interval: Duration.Duration
  readonly lookback: Duration.Duration
  /** Where the daemon adds up what it did, pass after pass: read it for a final summary. */
  readonly totals?: Ref.Ref<Totals.Totals> | undefined
}

export interface Service {
  /** Archives what the coverage lacks of `[from, to)` (everything in it, with `recheck`). */
  readonly backfill: (options: BackfillOptions) => Effect.Effect<Totals.Totals, ArchiverError>
  /**
   * The daemon: from the covered end (or `from` on a first start) up to now, then every
   * `interval` again, re-reading the last `lookback` to catch late-arriving events. Never returns.
   */
  readonly run: (options: RunOptions) => Effect.Effect<never, ArchiverError>
}

export class Archiver extends Context.Tag("@webex-compliance/archiver/Archiver")<Archiver, Service>() {}

/** How far each window re-reads into its predecessor (see `ArchiveWindow.archiveWindows`). */
const BOUNDARY_OVERLAP_MILLIS = 1000

/**
 * Failures that end one daemon poll, not the daemon: the server or the network may do better at
 * the next interval (transient, after the retry policy gave up), or the next page may be sound
 * (a malformed page). Tags, so the library's newer errors count as soon as they exist.
 */
const POLL_RECOVERABLE: ReadonlySet<string> = new Set([
  "RateLimited",
  "ServerError",
  "TransportError",
  "ResponseDecodeError",
  "ResponseTooLarge",
  "PaginationRunaway"
])

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

/** The archive's checkpoint state in memory, loaded once, saved atomically after every window. */
const makeState = Effect.gen(function*() {
  const checkpoint = yield* Checkpoint
  const settings = yield* ArchiverSettings
  const loaded = yield* checkpoint.load
  if (Option.isSome(loaded) && !sameScope(loaded.value.scope, settings.scope)) {
    return yield* new ArchiverUsageError({
      problem: `This archive was built with ${describeScope(loaded.value.scope)}, not ${describeScope(settings.scope)}. ` +
        "Its checkpoint only vouches for that scope: use the same filters, or another --out directory."
    })
  }
  const now = yield* Clock.currentTimeMillis
  const state = yield* Ref.make<CheckpointState>(
    Option.getOrElse(loaded, () => ({ version: 1 as const, scope: settings.scope, covered: [], updatedAt: now }))
  )
  const save = (update: (s: CheckpointState) => CheckpointState) =>
    Effect.gen(function*() {
      const at = yield* Clock.currentTimeMillis
      const next = { ...update(yield* Ref.get(state)), updatedAt: at }
      yield* checkpoint.save(next)
      yield* Ref.set(state, next)
    })
  return { state, save, checkpoint }
})

export const make = Effect.gen(function*() {
  const api = yield* EventsApi.EventsApi
  const sink = yield* NdjsonSink
  const settings = yield* ArchiverSettings
  const { checkpoint, save, state } = yield* makeState
  const sealer = yield* Effect.serviceOption(Seal.Sealer)
  // Pages are sorted here, on this thread, unless a sorter is provided (the CLI's decoder thread).
  const sorter = Option.getOrElse(yield* Effect.serviceOption(PageSorter.PageSorter), () => PageSorter.inProcess)
  /** Seals the days the coverage now vouches for and that have settled (when sealing is on). */
  const sealSettled = Option.match(sealer, {
    onNone: () => Effect.void,
    onSome: (s) =>
      Effect.flatMap(Ref.get(state), (st) => s.sealCovered(st.covered.map((i) => [i.from, i.through] as const)))
  })
  const windowMillis = Math.max(1000, Duration.toMillis(settings.window))
  const longestMillis = settings.longestWindow === undefined
    ? windowMillis
    : Math.max(windowMillis, Duration.toMillis(settings.longestWindow))
  const settleMillis = settings.settle === undefined ? 0 : Duration.toMillis(settings.settle)
  /** The latest instant the archive reaches for: now, less the settling margin. */
  const horizon = Effect.map(Clock.currentTimeMillis, (now) => now - settleMillis)
  const query = { ...settings.scope, max: settings.max }

  /**
   * Archives the planned segments window by window (cut by `WindowPlan`). After each window:
   * coverage grows and `onWindow` records progress in the same atomic checkpoint write. A new
   * event created in time covered before this listing is counted as late.
   */
  const archiveSegments = (
    segments: ReadonlyArray<Planner.Segment>,
    label: string,
    onWindow: (s: CheckpointState, end: number) => CheckpointState,
    /** Also given each window's totals as it is done: a run's, which a failed or stopped poll keeps. */
    tally?: Ref.Ref<Totals.Totals>
  ): Effect.Effect<Totals.Totals, ArchiverError> =>
    Effect.gen(function*() {
      const coveredBefore = (yield* Ref.get(state)).covered
      const plan = WindowPlan.make(segments, {
        shortest: windowMillis,
        longest: longestMillis,
        overlap: BOUNDARY_OVERLAP_MILLIS
      })
      // An event written now into time the archive already vouched for (before this listing:
      // each poll's, for `run`) was listed late, or was missing from the archive.
      const isLate = (created: number) => Coverage.covers(coveredBefore, created, created + 1)
      let totals = Totals.empty
      let done = 0
      const started = yield* Clock.currentTimeMillis
      // One pipeline over every window: the next pages are fetched while a window is written and
      // checkpointed (see `archiveWindows`); each window joins the coverage only once it is durable.
      yield* archiveWindows(api, sorter, sink, query, plan.next, isLate, ({ end, start }, t) =>
        Effect.gen(function*() {
          yield* save((s) => onWindow({ ...s, covered: Coverage.add(s.covered, { from: start, through: end }) }, end))
          const windowTotals = { ...t, windows: 1 }
          totals = Totals.plus(totals, windowTotals)
          if (tally !== undefined) yield* Ref.update(tally, (x) => Totals.plus(x, windowTotals))
          done += end - start
          const elapsed = (yield* Clock.currentTimeMillis) - started
          yield* Effect.logInfo(`${label}: window ${totals.windows} archived`).pipe(
            Effect.annotateLogs({
              window: `${toIso(start)}/${toIso(end)}`,
              listed: t.listed,
              written: t.written,
              duplicates: t.duplicates,
              quarantined: t.quarantined,
              totalWritten: totals.written,
              percent: plan.total === 0 ? 100 : Math.floor((done / plan.total) * 100),
              elapsedSeconds: Math.round(elapsed / 1000)
            })
          )
        }))
      return totals
    })

  const backfill: Service["backfill"] = (options) =>
    Effect.gen(function*() {
      const now = yield* horizon
      const { from } = options
      const to = Math.min(Option.getOrElse(options.to, () => now), now)
      if (from >= to) {
        const byTo = Option.isSome(options.to) && options.to.value <= now
        return yield* new ArchiverUsageError({
          flag: "--from",
          problem: `nothing to back-fill: ${toIso(from)} is not before ${byTo ? "--to" : "now"} (${toIso(to)})`
        })
      }
      const segments = Planner.backfill((yield* Ref.get(state)).covered, { from, to, recheck: options.recheck === true })
      const skipped = to - from - segments.reduce((n, s) => n + s.to - s.from, 0)
      if (skipped > 0) {
        yield* Effect.logInfo("Skipping what the archive already covers (use --recheck to re-read it)").pipe(
          Effect.annotateLogs({ coveredSeconds: Math.round(skipped / 1000), segments: segments.length })
        )
      }
      // The job is recorded so `status` shows an unfinished back-fill; coverage alone makes a
      // re-run carry on where an interrupted one stopped.
      const job = (yield* Ref.get(state)).backfill
      const resumeAt = job !== undefined && job.from === from && job.doneThrough > from ? job.doneThrough : from
      if (resumeAt > from) yield* Effect.logInfo(`Resuming the back-fill at ${toIso(resumeAt)}`)
      yield* save((s) => ({ ...s, backfill: { from, to, doneThrough: resumeAt } }))
      const totals = yield* archiveSegments(segments, "backfill", (s, end) => ({
        ...s,
        backfill: { from, to, doneThrough: Math.max(end, s.backfill?.doneThrough ?? from) }
      }))
      yield* save(({ backfill: _, ...s }) => s)
      // What the back-fill completed is sealed before it exits.
      yield* sealSettled
      yield* checkpoint.clearLastError
      return totals
    })

  const run: Service["run"] = (options) =>
    Effect.gen(function*() {
      const lookback = Duration.toMillis(options.lookback)
      const first = Planner.run((yield* Ref.get(state)).covered, {
        from: Option.getOrUndefined(options.from),
        lookback,
        now: yield* horizon
      })
      if (first._tag === "NoStart") {
        return yield* new ArchiverUsageError({
          flag: "--from",
          problem: "this archive covers nothing yet: give --from <date-time> for the first start"
        })
      }
      const coveredEnd = Coverage.end((yield* Ref.get(state)).covered)
      if (coveredEnd !== undefined) {
        yield* Effect.logInfo(
          `Resuming from the checkpoint: covered through ${toIso(coveredEnd)}; only what it lacks${
            Option.isSome(options.from) ? ` after --from ${toIso(options.from.value)}` : ""
          } and the last --lookback are fetched`
        )
      }
      const passes = yield* Ref.make(0)
      const totals = options.totals ?? (yield* Ref.make(Totals.empty))

      /** One poll: plan against the coverage as it is now, archive, record or clear the last error. */
      const pass = Effect.gen(function*() {
        const n = yield* Ref.getAndUpdate(passes, (k) => k + 1)
        const now = yield* horizon
        const plan = Planner.run((yield* Ref.get(state)).covered, {
          // Once a pass succeeded the coverage reaches (almost) now: only the lookback is re-read.
          from: Option.getOrUndefined(options.from),
          lookback,
          now
        })
        if (plan._tag === "NoStart" || plan.segments.length === 0) return
        const result = yield* archiveSegments(plan.segments, n === 0 ? "catch-up" : "poll", (st, end) => ({
          ...st,
          // A poll re-reads windows behind the position: they must not move it back.
          live: { through: Math.max(end, st.live?.through ?? end) }
        }), totals).pipe(
          Effect.map(Option.some),
          Effect.catchIf(
            (e): e is ArchiverError => POLL_RECOVERABLE.has(e._tag),
            (e) => {
              const message = safeText(
                `${e.message}${"trackingId" in e && e.trackingId !== undefined ? ` (trackingId ${e.trackingId})` : ""}`
              )
              return Effect.logError(`Poll failed, will retry at the next interval: ${message}`).pipe(
                Effect.annotateLogs({ error: e._tag }),
                Effect.zipRight(checkpoint.recordError(message)),
                Effect.as(Option.none<Totals.Totals>())
              )
            }
          )
        )
        if (Option.isSome(result)) {
          // Days settle as the daemon goes: seal them between polls, never during a write.
          yield* sealSettled
          // `status` shows the last error until a pass succeeds again.
          yield* checkpoint.clearLastError
          yield* Effect.logInfo(n === 0 ? "Caught up" : "Poll done").pipe(
            Effect.annotateLogs({
              through: toIso(Coverage.end((yield* Ref.get(state)).covered) ?? now),
              written: result.value.written,
              late: result.value.late,
              duplicates: result.value.duplicates
            })
          )
        }
      })

      // A pass, then one every `interval` after the previous one ends, for ever.
      return yield* pass.pipe(Effect.repeat(Schedule.spaced(options.interval)), Effect.zipRight(Effect.never))
    })

  return { backfill, run } satisfies Service
})

export const layer: Layer.Layer<
  Archiver,
  CheckpointError | ArchiverUsageError,
  EventsApi.EventsApi | NdjsonSink | Checkpoint | ArchiverSettings
> = Layer.effect(Archiver, make)
