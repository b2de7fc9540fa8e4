/**
 * The archive's event store: NDJSON day files written durably and exactly once.
 *
 * ## Archive layout
 * ```
 * <dir>/                          0700
 *   events/YYYY-MM-DD.ndjson      0600  one event per line: the event's JSON text exactly as the API
 *                                       sent it (never re-serialised), partitioned by the UTC day of
 *                                       its `created`
 *   quarantine/YYYY-MM-DD.ndjson  0600  undecodable items, one JSON object per line:
 *                                       {"quarantinedAt": ISO, "reason": string, "id"?: string,
 *                                        "raw": <the original item text as a JSON string>}
 *                                       partitioned by the UTC day they were quarantined
 *   state/checkpoint.json         0600  coverage proof, replaced atomically (`Checkpoint.ts`)
 *   state/archiver.lock           0600  single-writer lock (`ArchiveLock.ts`)
 *   state/last-error.json         0600  the last failure, for `status` (`LastError.ts`)
 * ```
 * Files are 0600 and directories 0700 whatever the umask: modes are set explicitly after
 * creation, and looser existing ones are tightened when the archive is opened.
 *
 * ## Guarantees
 * - When `writeBatch` succeeds every new line is on disk: data fsync'd on each touched file, and the
 *   directory fsync'd after creating a file (before writing into it).
 * - Exactly once: an event's day is fixed by its `created`, so a duplicate can only live in the same
 *   day file. A per-day id set, loaded lazily by streaming that file, is kept in a small LRU so
 *   memory stays flat over a years-long backfill. Quarantined items are deduplicated by sha256 of
 *   their raw text across all quarantine files.
 * - Nothing altered goes unnoticed: the index keeps a digest of each archived line. An id served
 *   again with *different* text is not a duplicate: the archived copy stays, and the variant is
 *   kept in quarantine with the reason, and counted.
 * - Crash safety: each file gets one append per batch. A crash mid-append can leave only a torn last
 *   line, which was never acknowledged (so never checkpointed) and is cut off on the next start.
 *
 * The sink assumes it is the only writer: hold `ArchiveLock.acquire` while it is in use.
 *
 * @since 0.1.0
 */
import { createHash } from "node:crypto"
import * as path from "node:path"
import * as Cause from "effect/Cause"
import * as Clock from "effect/Clock"
import * as Context from "effect/Context"
import * as Effect from "effect/Effect"
import * as Layer from "effect/Layer"
import type { ArchiveWriteError } from "./ArchiveError.js"
import {
  appendLines,
  dayFiles,
  ensureArchiveLayout,
  extractId,
  forEachLine,
  isDay,
  layout,
  repairTail,
  tryWrite
} from "./internal/archiveFs.js"

/** An event to archive. */
export interface ArchiveRecord {
  /** The event's `id`; must equal the top-level `id` inside `raw`. */
  readonly id: string
  /** The UTC day of the event's `created`, `YYYY-MM-DD`: the day file it belongs to. */
  readonly day: string
  /** The event's JSON text as received, on a single line (no `\n` or `\r`). */
  readonly raw: string
}

/** An item that could not be decoded as an event, kept so nothing the API sent is lost. */
export interface QuarantineRecord {
  /** The item's original text (any content; it is stored as a JSON string). */
  readonly raw: string
  /** Why it was quarantined (the decode error, summarised). */
  readonly reason: string
  /** Its `id`, if one could be read. */
  readonly id?: string
}

export interface WriteResult {
  /** New events appended. */
  readonly written: number
  /** Events skipped because their id was already archived (or repeated in the batch). */
  readonly duplicates: number
  /** New quarantine lines appended. */
  readonly quarantined: number
  /** Quarantine records skipped because the same raw text was already quarantined. */
  readonly quarantineDuplicates: number
  /**
   * Events whose id was archived already with different text: kept in quarantine (and counted in
   * `quarantined` when new there), never silently dropped.
   */
  readonly variants: number
}

export interface Options {
  /** How many day id sets to keep in memory (LRU). Default 3. */
  readonly cachedDays?: number
}

export interface Service {
  /** The archive directory (absolute). */
  readonly dir: string
  /**
   * Appends the batch's new events and quarantine records durably, skipping duplicates.
   *
   * Dies (a programming error) if a record's `day` is not a `YYYY-MM-DD` day, its `raw` contains a
   * line break, or its `id` differs from the `id` inside `raw`; nothing is written then. On
   * failure, the files already completed in this batch stay written (and are deduplicated on a
   * retry); the failing file is rolled back.
   */
  readonly writeBatch: (
    records: ReadonlyArray<ArchiveRecord>,
    quarantine: ReadonlyArray<QuarantineRecord>
  ) => Effect.Effect<WriteResult, ArchiveWriteError>
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
export const repairTornTails = (dir: string): Effect.Effect<ReadonlyArray<TailRepair>, ArchiveWriteError> => {
  const l = layout(dir)
  return tryWrite(l.root, "repairing", async () => {
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

const sha256 = (text: string) => createHash("sha256").update(text, "utf8").digest("hex")

/** A short digest of an archived line: 128 bits are plenty to tell two versions of one event apart. */
const digest = (line: string) => createHash("sha256").update(line, "utf8").digest("base64").slice(0, 22)

const illegal = (message: string) => Effect.die(new Cause.IllegalArgumentException(message))

const validate = (records: ReadonlyArray<ArchiveRecord>): Effect.Effect<void> => {
  for (const r of records) {
    if (!isDay(r.day)) return illegal(`NdjsonSink: day ${JSON.stringify(r.day)} of event ${r.id} is not YYYY-MM-DD`)
    if (/[\r\n]/.test(r.raw)) {
      return illegal(`NdjsonSink: the raw text of event ${r.id} contains a line break; compact it first`)
    }
    const inner = extractId(r.raw)
    if (r.id.length === 0 || inner !== r.id) {
      return illegal(
        `NdjsonSink: record id ${JSON.stringify(r.id)} does not match the id inside its raw text ` +
          `(${inner === undefined ? "none" : JSON.stringify(inner)})`
      )
    }
  }
  return Effect.void
}

/**
 * Opens the archive at `dir` for writing: creates the directories (0700), tightens modes, and cuts
 * torn tails left by a crash.
 */
export const make = (dir: string, options: Options = {}): Effect.Effect<Service, ArchiveWriteError> =>
  Effect.gen(function*() {
    const l = layout(dir)
    const cachedDays = Math.max(1, Math.floor(options.cachedDays ?? 3))
    yield* ensureArchiveLayout(l.root)
    yield* repairTornTails(l.root)

    const lock = yield* Effect.makeSemaphore(1)
    // day -> (id -> digest of its line) in events/<day>.ndjson. Map order is recency order:
    // re-inserted on each use.
    const days = new Map<string, Map<string, string>>()
    // sha256 of every quarantined raw text; loaded on the first quarantine write.
    let quarantined: Set<string> | undefined

    const eventsFile = (day: string) => path.join(l.events, `${day}.ndjson`)

    const loadIds = <C>(file: string, empty: () => C, read: (line: string, into: C) => boolean) =>
      tryWrite(file, "reading", async (signal) => {
        // A torn tail must not count as archived: cut it before reading.
        const bytesRemoved = await repairTail(file)
        const ids = empty()
        let unreadable = 0
        await forEachLine(file, (line) => {
          if (!read(line, ids)) unreadable++
        }, signal)
        return { ids, unreadable, bytesRemoved }
      }).pipe(
        Effect.tap(({ bytesRemoved }) => bytesRemoved > 0 ? logRepair(file, bytesRemoved) : Effect.void),
        Effect.tap(({ unreadable }) =>
          unreadable > 0
            ? Effect.logWarning(
              `${file} has ${unreadable} unreadable line(s) (not JSON, or no id); they are kept but ignored ` +
                "for duplicate detection"
            ).pipe(Effect.annotateLogs({ file, unreadable }))
            : Effect.void
        ),
        Effect.map(({ ids }) => ids)
      )

    const dayIds = (day: string): Effect.Effect<Map<string, string>, ArchiveWriteError> => {
      const cached = days.get(day)
      if (cached !== undefined) {
        days.delete(day)
        days.set(day, cached)
        return Effect.succeed(cached)
      }
      return loadIds(eventsFile(day), () => new Map<string, string>(), (line, ids) => {
        const id = extractId(line)
        if (id === undefined) return false
        ids.set(id, digest(line))
        return true
      }).pipe(Effect.tap((ids) =>
        Effect.sync(() => {
          days.set(day, ids)
          while (days.size > cachedDays) days.delete(days.keys().next().value!)
        })
      ))
    }

    const quarantineHashes = (): Effect.Effect<Set<string>, ArchiveWriteError> => {
      if (quarantined !== undefined) return Effect.succeed(quarantined)
      return tryWrite(l.quarantine, "listing", () => dayFiles(l.quarantine)).pipe(
        Effect.flatMap((files) =>
          Effect.reduce(files, new Set<string>(), (all, { file }) =>
            loadIds(file, () => new Set<string>(), (line, hashes) => {
              try {
                const v: unknown = JSON.parse(line)
                if (typeof v === "object" && v !== null && "raw" in v && typeof v.raw === "string") {
                  hashes.add(sha256(v.raw))
                  return true
                }
              } catch {
                // counted as unreadable
              }
              return false
            }).pipe(Effect.map((hashes) => {
              for (const h of hashes) all.add(h)
              return all
            })))
        ),
        Effect.tap((all) => Effect.sync(() => (quarantined = all)))
      )
    }

    // Uninterruptible: once bytes may have reached the file, the in-memory index must learn about
    // them (success) or be dropped so it is reloaded from disk (failure), never left behind.
    const append = (file: string, lines: ReadonlyArray<string>, onSuccess: () => void, onFailure: () => void) =>
      tryWrite(file, "appending to", () => appendLines(file, Buffer.from(lines.join(""), "utf8"))).pipe(
        Effect.tapBoth({
          onFailure: () => Effect.sync(onFailure),
          onSuccess: ({ repairedBytes }) =>
            Effect.zipRight(
              Effect.sync(onSuccess),
              repairedBytes > 0 ? logRepair(file, repairedBytes) : Effect.void
            )
        }),
        Effect.uninterruptible
      )

    const writeEvents = (records: ReadonlyArray<ArchiveRecord>) =>
      Effect.gen(function*() {
        const byDay = new Map<string, Array<ArchiveRecord>>()
        for (const r of records) {
          const group = byDay.get(r.day)
          if (group === undefined) byDay.set(r.day, [r])
          else group.push(r)
        }
        let written = 0
        let duplicates = 0
        const variants: Array<QuarantineRecord> = []
        for (const [day, group] of byDay) {
          const ids = yield* dayIds(day)
          const fresh = new Map<string, { readonly line: string; readonly digest: string }>()
          for (const r of group) {
            const d = digest(r.raw)
            const known = ids.get(r.id) ?? fresh.get(r.id)?.digest
            if (known === undefined) fresh.set(r.id, { line: `${r.raw}\n`, digest: d })
            else if (known === d) duplicates++
            else {
              variants.push({
                raw: r.raw,
                id: r.id,
                reason: `The API served event ${r.id} again with different content; the first copy stays in ` +
                  `events/${day}.ndjson and this one is kept here`
              })
            }
          }
          if (fresh.size === 0) continue
          yield* append(
            eventsFile(day),
            [...fresh.values()].map((f) => f.line),
            () => {
              for (const [id, f] of fresh) ids.set(id, f.digest)
            },
            () => days.delete(day)
          )
          written += fresh.size
        }
        for (const v of variants) {
          yield* Effect.logWarning("An archived event was served again with different content; the variant is quarantined")
            .pipe(Effect.annotateLogs({ id: v.id ?? "none" }))
        }
        return { written, duplicates, variants }
      })

    const writeQuarantine = (records: ReadonlyArray<QuarantineRecord>) =>
      Effect.gen(function*() {
        if (records.length === 0) return { quarantined: 0, quarantineDuplicates: 0 }
        const hashes = yield* quarantineHashes()
        const quarantinedAt = new Date(yield* Clock.currentTimeMillis).toISOString()
        const fresh = new Map<string, string>()
        let quarantineDuplicates = 0
        for (const q of records) {
          const hash = sha256(q.raw)
          if (hashes.has(hash) || fresh.has(hash)) {
            quarantineDuplicates++
            continue
          }
          const line = JSON.stringify({
            quarantinedAt,
            reason: q.reason,
            ...(q.id !== undefined ? { id: q.id } : {}),
            raw: q.raw
          })
          fresh.set(hash, `${line}\n`)
        }
        if (fresh.size > 0) {
          yield* append(
            path.join(l.quarantine, `${quarantinedAt.slice(0, 10)}.ndjson`),
            [...fresh.values()],
            () => {
              for (const h of fresh.keys()) hashes.add(h)
            },
            () => (quarantined = undefined)
          )
        }
        return { quarantined: fresh.size, quarantineDuplicates }
      })

    const writeBatch: Service["writeBatch"] = (records, quarantine) =>
      Effect.gen(function*() {
        yield* validate(records)
        const events = yield* writeEvents(records)
        const q = yield* writeQuarantine([...quarantine, ...events.variants])
        return { written: events.written, duplicates: events.duplicates, ...q, variants: events.variants.length }
      }).pipe(lock.withPermits(1))

    return NdjsonSink.of({ dir: l.root, writeBatch })
  })

/** The sink as a layer; see {@link make}. */
export const layer = (dir: string, options: Options = {}): Layer.Layer<NdjsonSink, ArchiveWriteError> =>
  Layer.effect(NdjsonSink, make(dir, options))
