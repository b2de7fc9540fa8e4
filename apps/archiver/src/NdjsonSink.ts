/**
 * The archive's event store: NDJSON day files written durably and exactly once.
 *
 * ## Archive layout
 * ```
 * <dir>/                          0700
 *   events/YYYY-MM-DD.ndjson      0600  one event per line: the event's bytes exactly as the API
 *                                       sent them (never re-serialised, never re-encoded: invalid
 *                                       UTF-8 stays as it came), partitioned by the UTC day of
 *                                       its `created`
 *   events/YYYY-MM-DD[.N].ndjson.gz     sealed segments of a day (created by `seal`); a day's
 *                                       events are its segments plus its open file
 *   quarantine/YYYY-MM-DD.ndjson  0600  items kept aside, one JSON object per line:
 *                                       {"quarantinedAt": ISO, "reason": string, "id"?: string,
 *                                        "kind"?: "variant" | "movedDay", "firstDay"?: DAY,
 *                                        "raw": <the original item text as a JSON string>,
 *                                        "rawBase64"?: <its exact bytes, when not valid UTF-8>}
 *                                       partitioned by the UTC day they were quarantined
 *   state/checkpoint.json         0600  coverage proof, replaced atomically (`Checkpoint.ts`)
 *   state/archiver.lock           0600  single-writer lock (`ArchiveLock.ts`)
 *   state/last-error.json         0600  the last failure, for `status` (`LastError.ts`)
 *   state/ids.json, ids-N.run     0600  the persistent id -> day index (`internal/idIndex.ts`)
 * ```
 * Files are 0600 and directories 0700 whatever the umask: modes are set explicitly after
 * creation; broader existing ones are reported, then tightened when the archive is opened. An
 * archive its owner made read-only is refused ({@link ArchiveUnsafe}), and so is a symbolic link
 * or special file anywhere below the root: nothing is ever written through one.
 *
 * ## Guarantees
 * - When `writeBatch` succeeds every new line is on disk: data fsync'd on each touched file, and the
 *   directory fsync'd after creating a file (before writing into it).
 * - Exactly once, within a day: an event's day is fixed by its `created`, so a duplicate normally
 *   lives in the same day. A per-day id set, loaded lazily by streaming that day's sealed segments
 *   and open file, is kept in a small LRU so memory stays flat over a years-long backfill.
 * - Exactly once, across days: the service can move an event's `created` to another day. The
 *   persistent id index knows the day of every archived id without holding them in memory; a copy
 *   filed under another day is kept in quarantine as a `movedDay` variant naming the first day.
 * - Nothing altered goes unnoticed: the day set remembers each archived line (where this process
 *   appended it, or the digest of its bytes), in typed arrays keyed by the index's keys. An id
 *   served again with *different* bytes is not a duplicate: the archived copy stays, and the
 *   variant is kept in quarantine with the reason, and counted.
 * - Crash safety: each file gets one append per batch. A crash mid-append can leave only a torn last
 *   line, which was never acknowledged (so never checkpointed) and is cut off on the next start.
 * - Single writer: before each batch, the lock this process holds on the archive (if any) is checked
 *   to be still its own; if not, the batch fails with {@link ArchiveLockLost} before writing.
 *
 * @since 0.1.0
 */
import { isUtf8 } from "node:buffer"
import * as path from "node:path"
import * as Cause from "effect/Cause"
import * as Clock from "effect/Clock"
import * as Context from "effect/Context"
import * as Effect from "effect/Effect"
import * as Layer from "effect/Layer"
import type { ArchiveLockLost, ArchiveUnsafe, ArchiveWriteError } from "./ArchiveError.js"
import { verifyHeld } from "./ArchiveLock.js"
import {
  appendLines,
  dayFiles,
  dayStorage,
  extractId,
  forEachLineBytes,
  hasId,
  isDay,
  layout,
  openArchiveLayout,
  repairTail,
  trySafeWrite
} from "./internal/archiveFs.js"
import { DayIds, fitsPosition, unpackPosition } from "./internal/dayIds.js"
import { K, setKey } from "./internal/idKey.js"
import * as IdIndex from "./internal/idIndex.js"
import { reconcile } from "./internal/reconcile.js"
import { sha256Bytes, sha256Text } from "./internal/sha256.js"
import { openRead } from "./Segments.js"

/**
 * An event to archive: its exact bytes, or its text (or both; the bytes then are what is written,
 * digested and compared, and the text only what a quarantined variant shows).
 */
export type ArchiveRecord = RecordKey & (
  | {
    /** The event's JSON text as received, on a single line (no `\n` or `\r`). */
    readonly raw: string
    readonly bytes?: Uint8Array | undefined
  }
  | {
    readonly raw?: string | undefined
    /**
     * The event's exact bytes as the server sent them, on a single line (a view into the response
     * body is fine: they are only read). Invalid UTF-8 stays as it came.
     */
    readonly bytes: Uint8Array
  }
)

interface RecordKey {
  /** The event's `id`; must equal the top-level `id` inside its bytes. */
  readonly id: string
  /** The UTC day of the event's `created`, `YYYY-MM-DD`: the day file it belongs to. */
  readonly day: string
  /**
   * The event's decoded `resource` and `created` instant, when the caller has them (both): the
   * day's counts for `status` are then kept without reading them out of the bytes again.
   */
  readonly resource?: string | undefined
  readonly createdMillis?: number | undefined
}

/** An item that could not be decoded as an event, kept so nothing the API sent is lost. */
export interface QuarantineRecord {
  /** The item's original text (any content; it is stored as a JSON string). */
  readonly raw: string
  /** Why it was quarantined (the decode error, summarised). */
  readonly reason: string
  /** Its `id`, if one could be read. */
  readonly id?: string
  /** The item's exact bytes, when known; kept base64'd alongside `raw` when they are not UTF-8. */
  readonly bytes?: Uint8Array | undefined
}

export interface WriteResult {
  /** New events appended. */
  readonly written: number
  /** The records of the events appended (`written` of them), as given: what the batch added. */
  readonly appended: ReadonlyArray<ArchiveRecord>
  /** Events skipped because their id was already archived (or repeated in the batch). */
  readonly duplicates: number
  /** New quarantine lines appended. */
  readonly quarantined: number
  /** Quarantine records skipped because the same raw text was already quarantined. */
  readonly quarantineDuplicates: number
  /**
   * Events whose id was archived already with different text: kept in quarantine (and counted in
   * `quarantined` when new there), never silently dropped. Includes `movedDay`.
   */
  readonly variants: number
  /** Of `variants`, those whose id is archived under another day (the service moved `created`). */
  readonly movedDay: number
}

export interface Options {
  /**
   * How many day id sets to keep in memory (LRU). Default 2: the day being written and the one
   * before it (a window re-reads a second of its predecessor); each holds every id of its day.
   * A batch that touches more days keeps them all while it lasts, up to 8.
   */
  readonly cachedDays?: number
  /**
   * How many batches between sync points of the id index (it is derived data; see idIndex.ts).
   * Default 128: each sync point writes a run (and merges runs), with fsyncs, while the batch
   * waits; a crash costs only re-reading the tails appended since, and the index forces a
   * sync point of its own when its in-memory table is full, so memory stays bounded either way.
   */
  readonly indexSyncEvery?: number
}

export type WriteError = ArchiveWriteError | ArchiveUnsafe | ArchiveLockLost

export interface Service {
  /** The archive directory (absolute). */
  readonly dir: string
  /**
   * Appends the batch's new events and quarantine records durably, skipping duplicates.
   *
   * Dies (a programming error) if a record's `day` is not a `YYYY-MM-DD` day, its bytes contain a
   * line break, or its `id` differs from the `id` inside them; nothing is written then. On
   * failure, the files already completed in this batch stay written (and are deduplicated on a
   * retry); the failing file is rolled back.
   */
  readonly writeBatch: (
    records: ReadonlyArray<ArchiveRecord>,
    quarantine: ReadonlyArray<QuarantineRecord>
  ) => Effect.Effect<WriteResult, WriteError>
}

export class NdjsonSink extends Context.Tag("@webex-compliance/archiver/NdjsonSink")<NdjsonSink, Service>() {}

/** A torn line cut off a file. */
export interface TailRepair {
  readonly file: string
  readonly bytesRemoved: number
}

const logRepair = (file: string, bytesRemoved: number) =>
  Effect.logWarning(
    `Cut a torn last line (${bytesRemoved} bytes) off ${file}, left by an interrupted write; ` +
      "those events were never checkpointed and will be fetched again"
  ).pipe(Effect.annotateLogs({ file, bytesRemoved }))

/**
 * Cuts the torn last line off every `.ndjson` file under `events/` and `quarantine/` (reading only
 * the files' tails) and logs each repair. `make` runs it on start.
 */
export const repairTornTails = (dir: string): Effect.Effect<ReadonlyArray<TailRepair>, ArchiveWriteError | ArchiveUnsafe> => {
  const l = layout(dir)
  return trySafeWrite(l.root, "repairing", async () => {
    const repairs: Array<TailRepair> = []
    for (const sub of [l.events, l.quarantine]) {
      for (const { file } of await dayFiles(sub)) {
        const bytesRemoved = await repairTail(file)
        if (bytesRemoved > 0) repairs.push({ file, bytesRemoved })
      }
    }
    return repairs
  }).pipe(Effect.tap(Effect.forEach(({ bytesRemoved, file }) => logRepair(file, bytesRemoved))))
}

const utf8 = (text: string) => Buffer.from(text, "utf8")
const view = (b: Uint8Array) => Buffer.isBuffer(b) ? b : Buffer.from(b.buffer, b.byteOffset, b.byteLength)
const decoder = new TextDecoder()

/** The bytes a record's line holds. */
const bytesOf = (r: { readonly raw: string; readonly bytes?: Uint8Array | undefined }): Buffer =>
  r.bytes !== undefined ? view(r.bytes) : utf8(r.raw)

/** A record's line as given: its exact bytes, or its text (for the filing checks, which take either). */
const lineOf = (r: ArchiveRecord): string | Uint8Array => r.bytes ?? (r as { readonly raw: string }).raw

/** A record's text, for a variant kept in quarantine (a lossy decoding of invalid UTF-8; the bytes stay exact). */
const rawOf = (r: ArchiveRecord): string => r.raw ?? decoder.decode(r.bytes!)

/** Buffer's native byte search, on any Uint8Array (a plain one's `includes` is many times slower). */
const indexOfByte = (bytes: Uint8Array, byte: number): number => Buffer.prototype.indexOf.call(bytes, byte)

const sha256 = (bytes: Uint8Array) => sha256Text(bytes, "hex")

/**
 * The digest of an archived line's bytes (sha256), what a day's set remembers of a line read from
 * disk (`DayIds`). Text is hashed as its UTF-8 encoding, so both forms of one line agree. A line
 * this process appends is remembered by its place instead: hashing every line as it is written
 * cost more than anything else the sink does, and a repeat is the rare case (compared then with
 * the line's bytes on disk).
 */
const digest = (line: string | Uint8Array) => sha256Bytes(line)

/** A line of the batch whose id the day holds at a position: decided once that line is read back. */
interface Pending {
  readonly record: ArchiveRecord
  readonly line: Uint8Array
  readonly position: number
}

/**
 * The lines at `positions` of `file`, read back to compare with a repeat; `undefined` when the file
 * is no longer the one they were appended to (sealed away meanwhile).
 */
const readBack = async (file: string, ino: number | undefined, positions: ReadonlyArray<number>) => {
  const h = await openRead(file).catch(() => undefined)
  if (h === undefined) return undefined
  try {
    if ((await h.stat()).ino !== ino) return undefined
    const out: Array<Buffer> = []
    for (const p of positions) {
      const { length, offset } = unpackPosition(p)
      const buffer = Buffer.allocUnsafe(length)
      const { bytesRead } = await h.read(buffer, 0, length, offset)
      out.push(buffer.subarray(0, bytesRead))
    }
    return out
  } finally {
    await h.close().catch(() => undefined)
  }
}

const sameBytes = (a: Uint8Array, b: Uint8Array) => a.length === b.length && Buffer.compare(a, b) === 0

/** Whether the record's bytes are valid UTF-8 (a record given as text always is). */
const validUtf8 = (r: { readonly bytes?: Uint8Array | undefined }, line: Uint8Array) => r.bytes === undefined || isUtf8(line)

const illegal = (message: string) => Effect.die(new Cause.IllegalArgumentException(message))

const CR = 0x0d
const LF = 0x0a

/** The mark of a record made by {@link checkedRecord}: module-private, so no other code can set it. */
const CHECKED: unique symbol = Symbol("NdjsonSink.checked")

// A page spans a day or two: the calendar check (a regex and a Date round trip) runs once per day.
let lastGoodDay = ""

/**
 * Why an event cannot be filed, or `undefined` when it can: its id must be non-empty and the one a
 * reader of its line finds (duplicate `id` keys make them differ), its day a plain `YYYY-MM-DD`,
 * its line one line. The one set of checks for records made by `checkedRecord` and for any other.
 */
const unfileable = (id: string, day: string, line: string | Uint8Array): string | undefined => {
  if (id === "") return "the event's id is empty"
  if (!hasId(line, id)) {
    const inner = extractId(line)
    return `the event's id is ambiguous: it is ${JSON.stringify(id)}, a reader of its line finds ` +
      `${inner === undefined ? "none" : JSON.stringify(inner)} (more than one "id" key, or another id)`
  }
  if (day !== lastGoodDay) {
    if (!isDay(day)) return `the event's day ${JSON.stringify(day)} is not a calendar day YYYY-MM-DD within the years 0000-9999`
    lastGoodDay = day
  }
  if (typeof line === "string" ? /[\r\n]/.test(line) : indexOfByte(line, LF) >= 0 || indexOfByte(line, CR) >= 0) {
    return "the event's bytes hold a line break"
  }
  return undefined
}

/**
 * An event record checked for filing, once ({@link unfileable}). Returns the record, marked so that
 * `writeBatch` does not check it again (the per-event checks would otherwise run twice on every
 * archived event), or why it cannot be filed, for the caller to keep the item in quarantine rather
 * than stop the archive for good.
 */
export const checkedRecord = (
  id: string,
  day: string,
  bytes: Uint8Array,
  resource?: string,
  createdMillis?: number
): ArchiveRecord | string => {
  const reason = unfileable(id, day, bytes)
  if (reason !== undefined) return reason
  const record: ArchiveRecord & { readonly [CHECKED]: true } = { id, day, bytes, resource, createdMillis, [CHECKED]: true }
  return record
}

/** Records not made by `checkedRecord` are a caller's promise: one that does not hold is a defect. */
const validate = (records: ReadonlyArray<ArchiveRecord>): Effect.Effect<void> => {
  for (const r of records) {
    if ((r as { readonly [CHECKED]?: true })[CHECKED] === true) continue
    const reason = unfileable(r.id, r.day, lineOf(r))
    if (reason !== undefined) return illegal(`NdjsonSink: event ${JSON.stringify(r.id)} cannot be filed: ${reason}`)
  }
  return Effect.void
}

/**
 * Opens the archive at `dir` for writing: creates the directories (0700), refuses planted links
 * and a read-only archive, tightens modes (with a warning), cuts torn tails left by a crash, and
 * brings the id index up to date with what is on disk.
 */
export const make = (dir: string, options: Options = {}): Effect.Effect<Service, ArchiveWriteError | ArchiveUnsafe> =>
  Effect.map(open(dir, options), ({ service }) => service)

/**
 * The most day sets kept for one batch (see `capacity` in `open`): the days a 7-day window
 * (`--max-window`'s default) can touch. More days in one batch are read again as needed, so a
 * server spreading a page over years costs time, not memory.
 */
const MAX_BATCH_DAYS = 8

/** The sink and its closing step: a sync point of the id index, so the next start re-reads nothing. */
const open = (dir: string, options: Options) =>
  Effect.gen(function*() {
    const l = layout(dir)
    const cachedDays = Math.max(1, Math.floor(options.cachedDays ?? 2))
    // Day sets kept while a batch is written: `cachedDays`, or as many days as the batch touches,
    // up to MAX_BATCH_DAYS. A long window listed in no order has every batch touch each of its
    // days; with only two kept, each batch would read the others' files again (7-day windows over
    // a dense month, shuffled: 45 s against 11).
    let capacity = cachedDays
    const syncEvery = Math.max(1, Math.floor(options.indexSyncEvery ?? 128))
    yield* openArchiveLayout(l.root)
    yield* repairTornTails(l.root)

    const { index, rebuilt } = yield* trySafeWrite(l.idIndex, "opening", async () => IdIndex.open(l.state))
    if (rebuilt) {
      yield* Effect.logWarning(`The id index ${l.idIndex} was damaged or out of date; rebuilding it from the archive`)
    }
    yield* reconcile(l.events, index)

    const lock = yield* Effect.makeSemaphore(1)
    // day -> its ids, with what is remembered of their lines (`DayIds`), over the day's segments
    // and open file. Map order is recency order: re-inserted on each use.
    const days = new Map<string, DayIds>()
    // sha256 of every quarantined item's bytes; loaded on the first quarantine write.
    let quarantined: Set<string> | undefined
    let batchesSinceSync = 0
    // What this process's last append left in each file: lets the next append skip re-reading it.
    const appended = new Map<string, { readonly ino: number; readonly size: number }>()

    const eventsFile = (day: string) => path.join(l.events, `${day}.ndjson`)

    const dayIds = (day: string): Effect.Effect<DayIds, ArchiveWriteError | ArchiveUnsafe> => {
      const cached = days.get(day)
      if (cached !== undefined) {
        days.delete(day)
        days.set(day, cached)
        return Effect.succeed(cached)
      }
      const file = eventsFile(day)
      return trySafeWrite(file, "reading", async (signal) => {
        // The least recently used day makes room first, and its set's storage is reused: a dense
        // day's tables are MiBs, and growing new ones each day only adds to what malloc keeps
        // (1-2 MiB of peak RSS at five times the events per day).
        let spare: DayIds | undefined
        while (days.size >= capacity) {
          const oldest = days.keys().next().value!
          spare = days.get(oldest)
          days.delete(oldest)
        }
        // A torn tail must not count as archived: cut it before reading.
        const bytesRemoved = await repairTail(file)
        const ids = spare?.reset() ?? new DayIds()
        let unreadable = 0
        const onLine = (line: Buffer) => {
          const id = extractId(line)
          if (id === undefined) {
            unreadable++
          } else {
            index.hash(id)
            ids.setDigest(digest(line))
          }
        }
        const storage = (await dayStorage(l.events, day)).find((d) => d.day === day)
        for (const seg of storage?.segments ?? []) {
          await forEachLineBytes(path.join(l.events, seg), onLine, { signal, gzip: true })
        }
        await forEachLineBytes(file, onLine, { signal })
        return { ids, unreadable, bytesRemoved }
      }).pipe(
        Effect.tap(({ bytesRemoved, ids }) =>
          Effect.zipRight(
            Effect.logDebug("Read a day's ids from its files").pipe(Effect.annotateLogs({ day, ids: ids.size })),
            bytesRemoved > 0 ? logRepair(file, bytesRemoved) : Effect.void
          )
        ),
        Effect.tap(({ unreadable }) =>
          unreadable > 0
            ? Effect.logWarning(
              `Day ${day} has ${unreadable} unreadable line(s) (not JSON, or no id); they are kept but ignored ` +
                "for duplicate detection"
            ).pipe(Effect.annotateLogs({ day, unreadable }))
            : Effect.void
        ),
        Effect.map(({ ids }) => ids),
        Effect.tap((ids) => Effect.sync(() => days.set(day, ids)))
      )
    }

    const quarantineHashes = (): Effect.Effect<Set<string>, ArchiveWriteError | ArchiveUnsafe> => {
      if (quarantined !== undefined) return Effect.succeed(quarantined)
      return trySafeWrite(l.quarantine, "reading", async (signal) => {
        const all = new Set<string>()
        for (const { file } of await dayFiles(l.quarantine)) {
          await repairTail(file)
          await forEachLineBytes(file, (line) => {
            try {
              const v: unknown = JSON.parse(line.toString("utf8"))
              if (typeof v === "object" && v !== null && "raw" in v && typeof v.raw === "string") {
                const exact = "rawBase64" in v && typeof v.rawBase64 === "string"
                  ? Buffer.from(v.rawBase64, "base64")
                  : utf8(v.raw)
                all.add(sha256(exact))
              }
            } catch {
              // Not a quarantine line: kept, ignored for deduplication.
            }
          }, { signal })
        }
        return all
      }).pipe(Effect.tap((all) => Effect.sync(() => (quarantined = all))))
    }

    // Uninterruptible: once bytes may have reached the file, the in-memory index must learn about
    // them (success) or be dropped so it is reloaded from disk (failure), never left behind.
    const append = (
      file: string,
      data: Uint8Array,
      onSuccess: (appended: { readonly ino: number; readonly size: number }) => void,
      onFailure: () => void
    ) =>
      trySafeWrite(file, "appending to", () => appendLines(file, data, appended.get(file))).pipe(
        Effect.tapBoth({
          onFailure: () =>
            Effect.sync(() => {
              appended.delete(file)
              onFailure()
            }),
          onSuccess: (result) =>
            Effect.zipRight(
              Effect.sync(() => {
                appended.set(file, { ino: result.ino, size: result.size })
                onSuccess(result)
              }),
              result.repairedBytes > 0 ? logRepair(file, result.repairedBytes) : Effect.void
            )
        }),
        Effect.uninterruptible
      )

    const writeEvents = Effect.fn("NdjsonSink.writeEvents")(function*(records: ReadonlyArray<ArchiveRecord>) {
      const byDay = new Map<string, Array<ArchiveRecord>>()
      for (const r of records) {
        const group = byDay.get(r.day)
        if (group === undefined) byDay.set(r.day, [r])
        else group.push(r)
      }
      capacity = Math.max(cachedDays, Math.min(MAX_BATCH_DAYS, byDay.size))
      // The records appended, in order: their count is the batch's `written`.
      const appendedRecords: Array<ArchiveRecord> = []
      let duplicates = 0
      let movedDay = 0
      const variants: Array<QuarantineRecord & { readonly kind: "variant" | "movedDay"; readonly firstDay: string }> = []
      /** Keeps a copy of an archived event in quarantine (`firstDay` holds the first copy). */
      const keepCopy = (r: ArchiveRecord, kind: "variant" | "movedDay", firstDay: string, reason: string) =>
        variants.push({ raw: rawOf(r), ...(r.bytes !== undefined ? { bytes: r.bytes } : {}), id: r.id, kind, firstDay, reason })
      const variant = (r: ArchiveRecord, day: string) =>
        keepCopy(
          r,
          "variant",
          day,
          `The API served event ${r.id} again with different content; the first copy stays in ` +
            `events/${day}.ndjson and this one is kept here`
        )
      // Ids first filed in this batch, by day: a batch can hold one id under two days.
      const batchDay = new Map<string, string>()
      for (const [day, group] of byDay) {
        let state = yield* dayIds(day)
        // The new events of the day, in order: their ids (to their place), lines and records.
        const fresh = new Map<string, number>()
        const lines: Array<Uint8Array> = []
        const kept: Array<ArchiveRecord> = []
        const pending: Array<Pending> = []
        // The kept events' keys (4 words each), for the day's set once they are appended.
        const keys = new Uint32Array(group.length * 4)
        for (const r of group) {
          const line = r.bytes ?? utf8(r.raw!)
          // The id's key, for the day's set and the index alike: hashed once.
          index.hash(r.id)
          const known = state.get()
          if (known !== undefined) {
            // Archived before: a repeat if the bytes are the same, else a variant.
            if (typeof known === "number") pending.push({ record: r, line, position: known })
            else if (sameBytes(known, digest(line))) duplicates++
            else variant(r, day)
            continue
          }
          const inBatch = fresh.get(r.id)
          if (inBatch !== undefined) {
            if (sameBytes(lines[inBatch]!, line)) duplicates++
            else variant(r, day)
            continue
          }
          const elsewhere = batchDay.get(r.id) ?? index.lookupHashed(r.id)
          if (elsewhere !== undefined && elsewhere !== day) {
            movedDay++
            keepCopy(
              r,
              "movedDay",
              elsewhere,
              `The API served event ${r.id} again under day ${day} (its created instant moved); the first ` +
                `copy stays under day ${elsewhere} (events/${elsewhere}.ndjson or its sealed segments) and this one ` +
                "is kept here"
            )
            continue
          }
          keys.set(K, lines.length * 4)
          fresh.set(r.id, lines.length)
          lines.push(line)
          kept.push(r)
          batchDay.set(r.id, day)
        }
        if (pending.length > 0) {
          const file = eventsFile(day)
          const archived = yield* trySafeWrite(file, "reading", () => readBack(file, state.ino, pending.map((p) => p.position)))
          if (archived === undefined) {
            // The open file was sealed away since: the day's lines are read again, with digests.
            days.delete(day)
            state = yield* dayIds(day)
          }
          pending.forEach(({ line, record }, k) => {
            let same: boolean
            if (archived !== undefined) {
              same = sameBytes(archived[k]!, line)
            } else {
              index.hash(record.id)
              const known = state.get()
              same = known instanceof Uint8Array && sameBytes(known, digest(line))
            }
            if (same) duplicates++
            else variant(record, day)
          })
        }
        if (fresh.size === 0) continue
        const data = joinLines(lines)
        // One check of the whole append; only when it fails are the lines looked at one by one.
        if (!isUtf8(data)) {
          for (let k = 0; k < lines.length; k++) {
            if (isUtf8(lines[k]!)) continue
            const id = kept[k]!.id
            yield* Effect.logWarning("An event's bytes are not valid UTF-8; archived byte-exact as sent").pipe(
              Effect.annotateLogs({ id, day })
            )
          }
        }
        yield* append(
          eventsFile(day),
          data,
          (after) => {
            // A new open file (the old one was sealed away): another inode, or one that held
            // nothing before these lines (a file system may give it the old file's inode number).
            // Positions in the old one mean nothing now; the day is read again when next needed.
            if (state.ino !== undefined && (state.ino !== after.ino || after.size === data.length)) {
              days.delete(day)
            } else {
              state.ino = after.ino
              let offset = after.size - data.length
              for (let k = 0; k < lines.length; k++) {
                const line = lines[k]!
                setKey(keys, k * 4)
                if (fitsPosition(offset, line.length)) state.setPosition(offset, line.length)
                else state.setDigest(digest(line))
                offset += line.length + 1
              }
            }
            for (const r of kept) index.add(r.id, day)
            const mark = index.mark(day)
            index.setMark(day, { segments: mark?.segments ?? [], open: IdIndex.appendedMark(mark?.open, day, after, lines, data.length, kept) })
          },
          () => days.delete(day)
        )
        for (const r of kept) appendedRecords.push(r)
      }
      for (const v of variants) {
        yield* Effect.logWarning(
          v.kind === "movedDay"
            ? "An archived event was served again under another day; the copy is quarantined"
            : "An archived event was served again with different content; the variant is quarantined"
        ).pipe(Effect.annotateLogs({ id: v.id ?? "none", firstDay: v.firstDay }))
      }
      return { written: appendedRecords.length, appended: appendedRecords, duplicates, variants, movedDay }
    })

    const writeQuarantine = Effect.fn("NdjsonSink.writeQuarantine")(function*(
      records: ReadonlyArray<QuarantineRecord & { readonly kind?: string; readonly firstDay?: string }>
    ) {
      if (records.length === 0) return { quarantined: 0, quarantineDuplicates: 0 }
      const hashes = yield* quarantineHashes()
      const quarantinedAt = new Date(yield* Clock.currentTimeMillis).toISOString()
      const fresh = new Map<string, Buffer>()
      let quarantineDuplicates = 0
      for (const q of records) {
        const exact = bytesOf(q)
        const hash = sha256(exact)
        if (hashes.has(hash) || fresh.has(hash)) {
          quarantineDuplicates++
          continue
        }
        const line = JSON.stringify({
          quarantinedAt,
          reason: q.reason,
          ...(q.id !== undefined ? { id: q.id } : {}),
          ...(q.kind !== undefined ? { kind: q.kind } : {}),
          ...(q.firstDay !== undefined ? { firstDay: q.firstDay } : {}),
          raw: q.raw,
          ...(!validUtf8(q, exact) ? { rawBase64: exact.toString("base64") } : {})
        })
        fresh.set(hash, utf8(line))
      }
      if (fresh.size > 0) {
        yield* append(
          path.join(l.quarantine, `${quarantinedAt.slice(0, 10)}.ndjson`),
          joinLines([...fresh.values()]),
          () => {
            for (const h of fresh.keys()) hashes.add(h)
          },
          () => (quarantined = undefined)
        )
      }
      return { quarantined: fresh.size, quarantineDuplicates }
    })

    const syncIndex = trySafeWrite(l.idIndex, "syncing", async () => index.sync())

    const writeBatch: Service["writeBatch"] = Effect.fn("NdjsonSink.writeBatch")(
      function*(records: ReadonlyArray<ArchiveRecord>, quarantine: ReadonlyArray<QuarantineRecord>) {
        yield* validate(records)
        // Another archiver may have taken the archive over (the lock deleted by hand): stop before
        // writing anything, so the two never interleave.
        yield* verifyHeld(l.root)
        const events = yield* writeEvents(records)
        const q = yield* writeQuarantine([...quarantine, ...events.variants])
        if (++batchesSinceSync >= syncEvery || index.full()) {
          batchesSinceSync = 0
          yield* syncIndex
        }
        return {
          written: events.written,
          appended: events.appended,
          duplicates: events.duplicates,
          ...q,
          variants: events.variants.length,
          movedDay: events.movedDay
        }
      },
      (self) => lock.withPermits(1)(self)
    )

    const close = syncIndex.pipe(
      Effect.catchAll((e) => Effect.logWarning(`Could not sync the id index on close (the next start re-reads the recent files): ${e.message}`)),
      Effect.ensuring(Effect.sync(() => index.close())),
      lock.withPermits(1)
    )
    return { service: NdjsonSink.of({ dir: l.root, writeBatch }), close }
  })

/** One buffer for one append: the lines' bytes, each ended by a newline. */
const joinLines = (lines: ReadonlyArray<Uint8Array>): Buffer => {
  let total = 0
  for (const line of lines) total += line.length + 1
  const out = Buffer.allocUnsafe(total)
  let at = 0
  for (const line of lines) {
    out.set(line, at)
    at += line.length
    out[at++] = LF
  }
  return out
}


/** The sink as a layer; see {@link make}. Closing it ends with a sync point of the id index. */
export const layer = (dir: string, options: Options = {}): Layer.Layer<NdjsonSink, ArchiveWriteError | ArchiveUnsafe> =>
  Layer.scoped(
    NdjsonSink,
    Effect.acquireRelease(open(dir, options), ({ close }) => close).pipe(Effect.map(({ service }) => service))
  )
