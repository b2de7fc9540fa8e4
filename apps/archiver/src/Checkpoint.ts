/**
 * `state/checkpoint.json`: the archive's proof of coverage.
 *
 * Invariant: every event created in one of the `covered` intervals (for the recorded scope) is
 * durably in `events/`. So the checkpoint may only move forward after the sink acknowledged the
 * events, and it is replaced atomically (tmp, fsync, rename, fsync dir): a crash at any instant
 * leaves the old or the new checkpoint, never a mix or nothing.
 *
 * A corrupt checkpoint is a {@link CheckpointError}, never a silent reset: resetting would re-run
 * from scratch at best, or claim coverage that was never proven at worst.
 *
 * @since 0.1.0
 */
import * as fsp from "node:fs/promises"
import * as Context from "effect/Context"
import * as Effect from "effect/Effect"
import * as Either from "effect/Either"
import * as Layer from "effect/Layer"
import * as Option from "effect/Option"
import * as ParseResult from "effect/ParseResult"
import * as Schema from "effect/Schema"
import { type ArchiveWriteError, CheckpointError } from "./ArchiveError.js"
import { EpochMillisFromIso, toIso } from "./Instant.js"
import { ensureArchiveLayout, layout, readIfExists, tryWrite, writeFileAtomic } from "./internal/archiveFs.js"
import * as LastErrorFile from "./LastError.js"


/**
 * An instant of the checkpoint: ISO-8601 text on disk (as written since 0.1.0), epoch milliseconds
 * in memory, decoded once by the library's grammar (see `Instant.ts`).
 */
export const Instant = EpochMillisFromIso

/** The query filters the archive was built with: a checkpoint only proves coverage for them. */
export const CheckpointScope = Schema.Struct({
  resource: Schema.optional(Schema.String),
  type: Schema.optional(Schema.String),
  actorId: Schema.optional(Schema.String)
})
export interface CheckpointScope extends Schema.Schema.Type<typeof CheckpointScope> {}

const notAfter = (a: number, b: number, what: string) => a <= b || `${what}: ${toIso(a)} is after ${toIso(b)}`

/** A half-open interval of creation times, `[from, through)`. */
export const CoveredInterval = Schema.Struct({
  from: Instant,
  through: Instant
}).pipe(Schema.filter((i) => notAfter(i.from, i.through, "covered interval")))
export interface CoveredInterval extends Schema.Schema.Type<typeof CoveredInterval> {}

export const CheckpointState = Schema.Struct({
  version: Schema.Literal(1),
  scope: CheckpointScope,
  /**
   * Every event created in one of these intervals is durably archived (sorted, merged; see
   * `Coverage.ts`). This is the archive's claim of completeness.
   */
  covered: Schema.Array(CoveredInterval),
  /** When this checkpoint was written. */
  updatedAt: Instant,
  /** A back-fill in progress: `[from, to)`, done up to `doneThrough`. */
  backfill: Schema.optional(
    Schema.Struct({ from: Instant, to: Instant, doneThrough: Instant }).pipe(
      Schema.filter((b) => notAfter(b.from, b.to, "backfill range"))
    )
  ),
  /** The daemon's position: everything created before `through` has been polled. */
  live: Schema.optional(Schema.Struct({ through: Instant })),
  /** How many runs have advanced the checkpoint. */
  runs: Schema.optional(Schema.NonNegativeInt)
})
/** The checkpoint in memory: every instant in epoch milliseconds. */
export interface CheckpointState extends Schema.Schema.Type<typeof CheckpointState> {}
/** The checkpoint as stored in `state/checkpoint.json` (and shown by `status --json`): ISO text. */
export interface CheckpointJson extends Schema.Schema.Encoded<typeof CheckpointState> {}

const decode = Schema.decodeUnknownEither(CheckpointState)
const encode = Schema.encodeSync(CheckpointState)

/** The on-disk (ISO text) form of a checkpoint, e.g. for a report. */
export const toJson = (state: CheckpointState): CheckpointJson => encode(state)

/** `covered[0].through`: where in the checkpoint a decoding problem is, in the words of its JSON. */
const fieldOf = (path: ReadonlyArray<PropertyKey>): string =>
  path.reduce<string>((acc, k) => typeof k === "number" ? `${acc}[${k}]` : acc === "" ? String(k) : `${acc}.${String(k)}`, "")

const corrupt = (file: string, why: string) =>
  new CheckpointError({
    path: file,
    message: `The checkpoint ${file} is ${why}. The archive's coverage cannot be trusted, so nothing ` +
      "was changed: restore the file from a backup, or move it away to rebuild coverage from scratch " +
      "(already archived events are not duplicated)."
  })

/**
 * Reads the checkpoint of the archive at `dir`: `None` when there is none yet. Read-only: a leftover
 * `checkpoint.json.tmp` (a save interrupted before its rename) is ignored.
 */
export const loadCheckpoint = (dir: string): Effect.Effect<Option.Option<CheckpointState>, CheckpointError> => {
  const file = layout(dir).checkpoint
  return Effect.tryPromise({
    try: () => readIfExists(file),
    catch: (e) => corrupt(file, `unreadable (${e instanceof Error && e.cause instanceof Error ? e.cause.message : e})`)
  }).pipe(
    Effect.flatMap((text) => {
      if (text === undefined) return Effect.succeed(Option.none())
      let json: unknown
      try {
        json = JSON.parse(text)
      } catch (e) {
        return Effect.fail(corrupt(file, `not valid JSON (${e instanceof Error ? e.message : String(e)})`))
      }
      return Either.match(decode(json), {
        onLeft: (error) => {
          // The first issue, named by its field: enough to find and fix it by hand.
          const issue = ParseResult.ArrayFormatter.formatErrorSync(error)[0]
          const where = issue === undefined || issue.path.length === 0 ? "" : `field ${fieldOf(issue.path)}: `
          return Effect.fail(corrupt(file, `not a valid checkpoint (${where}${issue?.message ?? "invalid"})`))
        },
        onRight: (state) => Effect.succeed(Option.some(state))
      })
    })
  )
}

/** Replaces the checkpoint of the archive at `dir` atomically. The state directory must exist. */
export const saveCheckpoint = (dir: string, state: CheckpointState): Effect.Effect<void, ArchiveWriteError> => {
  const l = layout(dir)
  return Effect.flatMap(
    // An invalid state is a bug in the caller, not an I/O failure.
    Effect.sync(() => `${JSON.stringify(encode(state), null, 2)}\n`),
    (text) => tryWrite(l.checkpoint, "writing", () => writeFileAtomic(l.checkpoint, l.checkpointTmp, text))
  )
}

/** `state/last-error.json` helpers, re-exported so callers need only this module (see `LastError.ts`). */
export const recordError = LastErrorFile.recordError
export const readLastError = LastErrorFile.readLastError
export const clearLastError = LastErrorFile.clearLastError
export type LastError = LastErrorFile.LastError

export interface Service {
  readonly load: Effect.Effect<Option.Option<CheckpointState>, CheckpointError>
  readonly save: (state: CheckpointState) => Effect.Effect<void, ArchiveWriteError>
  /** Persists `state/last-error.json` ({ at, message }) atomically. */
  readonly recordError: (message: string) => Effect.Effect<void, ArchiveWriteError>
  readonly readLastError: Effect.Effect<Option.Option<LastErrorFile.LastError>>
  readonly clearLastError: Effect.Effect<void, ArchiveWriteError>
}

export class Checkpoint extends Context.Tag("@webex-compliance/archiver/Checkpoint")<Checkpoint, Service>() {}

/**
 * Opens the archive's state at `dir`: creates the layout (modes enforced) and removes `.tmp` files
 * left by a save that crashed before its rename. Saves are serialised.
 */
export const make = (dir: string): Effect.Effect<Service, ArchiveWriteError> =>
  Effect.gen(function*() {
    const l = layout(dir)
    yield* ensureArchiveLayout(l.root)
    yield* tryWrite(l.state, "removing leftovers in", async () => {
      for (const tmp of [l.checkpointTmp, l.lastErrorTmp]) await fsp.rm(tmp, { force: true })
    })
    const lock = yield* Effect.makeSemaphore(1)
    return Checkpoint.of({
      load: loadCheckpoint(l.root),
      save: (state) => lock.withPermits(1)(saveCheckpoint(l.root, state)),
      recordError: (message) => lock.withPermits(1)(LastErrorFile.recordError(l.root, message)),
      readLastError: LastErrorFile.readLastError(l.root),
      clearLastError: lock.withPermits(1)(LastErrorFile.clearLastError(l.root))
    })
  })

export const layer = (dir: string): Layer.Layer<Checkpoint, ArchiveWriteError> => Layer.effect(Checkpoint, make(dir))
