/**
 * Sealing: settled day files become compressed, chained, never-rewritten segments.
 *
 * A day is sealed once the checkpoint covers all of it and it ended at least `settle` ago. Its open
 * file `events/D.ndjson` is streamed through gzip into a temp file (O_EXCL, random name), fsync'd,
 * hard-linked to its segment name (a link never replaces an existing file, so no sealed file is
 * ever rewritten), the directory fsync'd, the manifest entry appended (fsync'd), and only then the
 * open file removed. A covered, settled day with no events gets an `empty` entry, so the windows
 * Webex was asked about and had nothing for are on record too.
 *
 * Crash safety (kill -9 at any point), repaired by the next call:
 * - before the link: a leftover `.seal-*.tmp` is removed; the open file is intact.
 * - after the link, before the manifest entry (or with the entry torn): the segment is an orphan.
 *   It is adopted (its entry written) only if its content is exactly the next bytes of the open
 *   file, which is what an interrupted seal leaves; anything else is left for `verify` to report.
 * - after the entry, before the open file is removed: the open file starts with bytes already
 *   sealed (proved by the entries' content hashes); only what follows them (late events the sink
 *   appended meanwhile) is sealed, as the next segment, and the open file is removed.
 * So nothing is lost or sealed twice. While an open file and a segment overlap (only between a
 * crash and the next seal), `verify` reports the duplicate ids.
 *
 * Quarantine files (`quarantine/DAY.ndjson`, named by the day items were set aside) are recorded
 * too, once their day is over (plus the settle time, at least an hour): a `quarantine` entry with
 * their SHA-256, size and line count, so `verify` catches them edited or removed like segments.
 * They stay where they are, uncompressed: the sink reads them to skip re-quarantining an item.
 *
 * The caller holds the archive lock and does not write through the sink meanwhile.
 *
 * @since 0.2.0
 */
import { createHash, randomBytes, type KeyObject } from "node:crypto"
import * as fs from "node:fs"
import * as fsp from "node:fs/promises"
import * as path from "node:path"
import { Transform, Writable } from "node:stream"
import { pipeline } from "node:stream/promises"
import * as zlib from "node:zlib"
import * as Clock from "effect/Clock"
import * as Context from "effect/Context"
import * as Duration from "effect/Duration"
import * as Effect from "effect/Effect"
import * as Layer from "effect/Layer"
import type { ArchiveUnsafe, ArchiveWriteError } from "./ArchiveError.js"
import { at, completeLength, dayFiles, errnoCode, FILE_MODE, fsyncDir, layout, lstatIfExists, openNoFollow, trySafeWrite, UnsafePath, writeAll } from "./internal/archiveFs.js"
import * as DayTally from "./internal/dayTally.js"
import * as Manifest from "./Manifest.js"
import { dayOf, dayRange, type EventFile, fieldsOf, listEventFiles, openContent, openRead, segmentName, digestFile, digestRange, DAY_MS, sealedPrefix } from "./Segments.js"

/** A point of a seal, reported to `onStep` (tests kill the process there). */
export type SealStep = "tempWritten" | "linked" | "recorded" | "openRemoved"

export interface SealOptions {
  /** The archive directory. */
  readonly dir: string
  /** What the checkpoint proves covered: `[from, through)` intervals in epoch milliseconds. */
  readonly coverage: ReadonlyArray<readonly [number, number]>
  /** The current time, epoch milliseconds. */
  readonly now: number
  /** How long after its end a covered day is left open for late events (the daemon's lookback). */
  readonly settle: Duration.DurationInput
  /** Signs every manifest entry (Ed25519). */
  readonly signingKey?: KeyObject | undefined
  /**
   * Called at each step of each seal, for tests: crash tests kill the process there; race tests
   * return a promise, awaited before the seal goes on, to hold a step open as a slow disk would.
   */
  readonly onStep?: ((step: SealStep, day: string) => void | Promise<void>) | undefined
}

export interface SealResult {
  /** Segments written (including late segments of days sealed before). */
  readonly sealed: ReadonlyArray<string>
  /** Covered days without events, recorded as `empty` entries. */
  readonly emptyDays: number
  /** Orphan segments of an interrupted seal, adopted into the manifest. */
  readonly adopted: ReadonlyArray<string>
  /** Open files removed because everything in them was already sealed (an interrupted seal). */
  readonly removedOpen: ReadonlyArray<string>
  /** Quarantine files of past days recorded in the manifest (`quarantine/DAY.ndjson`). */
  readonly quarantine: ReadonlyArray<string>
}

/** How long after its day a quarantine file is recorded at the earliest. */
const QUARANTINE_GRACE_MS = 3_600_000

/** Line statistics of event bytes as they stream past (content hash, counts, created range). */
class LineStats {
  readonly hash = createHash("sha256")
  bytes = 0
  lines = 0
  readonly byResource: Record<string, number> = {}
  min: { ms: number; text: string } | undefined
  max: { ms: number; text: string } | undefined
  private rest: Buffer = Buffer.alloc(0)

  push(chunk: Buffer) {
    this.hash.update(chunk)
    this.bytes += chunk.length
    let buf = this.rest.length > 0 ? Buffer.concat([this.rest, chunk]) : chunk
    let nl: number
    while ((nl = buf.indexOf(0x0a)) >= 0) {
      this.line(buf.subarray(0, nl).toString("utf8"))
      buf = buf.subarray(nl + 1)
    }
    this.rest = Buffer.from(buf)
  }

  end() {
    if (this.rest.length > 0) this.line(this.rest.toString("utf8"))
    this.rest = Buffer.alloc(0)
  }

  private line(text: string) {
    if (text.length === 0) return
    this.lines++
    const f = fieldsOf(text)
    DayTally.bump(this.byResource, f?.resource ?? DayTally.UNKNOWN_RESOURCE, 1)
    if (f?.createdMs !== undefined && f.created !== undefined) {
      if (this.min === undefined || f.createdMs < this.min.ms) this.min = { ms: f.createdMs, text: f.created }
      if (this.max === undefined || f.createdMs > this.max.ms) this.max = { ms: f.createdMs, text: f.created }
    }
  }

  transform(): Transform {
    return new Transform({
      transform: (chunk: Buffer, _enc, cb) => {
        this.push(chunk)
        cb(null, chunk)
      },
      flush: (cb) => {
        this.end()
        cb()
      }
    })
  }

  summary() {
    return {
      content: { sha256: this.hash.digest("hex"), bytes: this.bytes },
      lines: this.lines,
      byResource: this.byResource,
      minCreated: this.min?.text ?? null,
      maxCreated: this.max?.text ?? null
    }
  }
}

/** The windows of `coverage` inside `day`, as ISO intervals. */
export const coveredWithin = (coverage: ReadonlyArray<readonly [number, number]>, day: string): Array<Manifest.Window> => {
  const [start, end] = dayRange(day)
  const out: Array<Manifest.Window> = []
  for (const [from, through] of coverage) {
    const a = Math.max(from, start)
    const b = Math.min(through, end)
    if (a < b) out.push({ from: new Date(a).toISOString(), through: new Date(b).toISOString() })
  }
  return out
}

const fullyCovered = (coverage: ReadonlyArray<readonly [number, number]>, start: number, end: number) =>
  coverage.some(([from, through]) => from <= start && end <= through)

/** Statistics of a sealed segment's decompressed content (to adopt an orphan). */
const statsOfSegment = async (file: string) => {
  const stats = new LineStats()
  for await (const chunk of (await openContent(file)) as AsyncIterable<Buffer>) stats.push(chunk)
  stats.end()
  return stats.summary()
}

/**
 * Seals every settled day (see the module comment); returns what it did. Safe to call at any
 * time under the archive lock; repairs what an interrupted call left.
 *
 * Nothing is read or written through a symbolic link: a link planted as `events/`, a day file,
 * a segment or `manifest.ndjson` fails the seal with {@link ArchiveUnsafe} naming it (exit 74),
 * before anything is written for that day.
 */
export const sealSettled = (options: SealOptions): Effect.Effect<SealResult, ArchiveWriteError | ArchiveUnsafe> => {
  const l = layout(options.dir)
  const settleMs = Duration.toMillis(Duration.decode(options.settle))
  const step = (s: SealStep, day: string) => options.onStep?.(s, day)
  return Effect.withSpan(trySafeWrite(l.events, "sealing day files in", async () => {
    const sealed: Array<string> = []
    const adopted: Array<string> = []
    const removedOpen: Array<string> = []
    let emptyDays = 0

    // `events/` itself first: a link there would have everything below written elsewhere.
    const eventsDir = await at(l.events, "checking", () => lstatIfExists(l.events))
    if (eventsDir?.isSymbolicLink() === true) throw new UnsafePath(l.events, "is a symbolic link")
    // The manifest: appending and repairing refuse a link already; a dangling one must not be
    // taken for "no manifest yet".
    const manifest = await at(Manifest.manifestPath(l.root), "checking", () => lstatIfExists(Manifest.manifestPath(l.root)))
    if (manifest !== undefined && !manifest.isFile()) {
      throw new UnsafePath(Manifest.manifestPath(l.root), manifest.isSymbolicLink() ? "is a symbolic link" : "is not a regular file")
    }
    if (eventsDir === undefined) return { sealed: [], emptyDays: 0, adopted: [], removedOpen: [], quarantine: [] }

    // Leftovers of a seal killed before its link: never a segment, always safe to remove.
    for (const name of await at(l.events, "listing", () => fsp.readdir(l.events))) {
      if (name.startsWith(".seal-") && name.endsWith(".tmp")) {
        await at(path.join(l.events, name), "removing a leftover", () => fsp.rm(path.join(l.events, name), { force: true }))
      }
    }
    await at(Manifest.manifestPath(l.root), "repairing", () => Manifest.repairManifest(l.root))
    const chain = await at(Manifest.manifestPath(l.root), "reading", () => Manifest.readEntries(l.root))
    let lastLine = chain.length > 0 ? chain[chain.length - 1]!.line : undefined
    let seq = chain.length > 0 ? chain[chain.length - 1]!.entry.seq + 1 : 0
    const append = async (drafts: ReadonlyArray<Manifest.Draft>) => {
      lastLine = await at(Manifest.manifestPath(l.root), "appending to", () =>
        Manifest.appendEntries(l.root, lastLine, seq, drafts, options.signingKey))
      seq += drafts.length
    }

    const entriesByDay = new Map<string, Array<Manifest.SegmentEntry | Manifest.EmptyDayEntry>>()
    for (const { entry } of chain) {
      // A quarantine entry's day is when items were set aside, not a day of events.
      if (entry.kind === "quarantine") continue
      const list = entriesByDay.get(entry.day) ?? []
      list.push(entry)
      entriesByDay.set(entry.day, list)
    }
    const filesByDay = new Map<string, Array<EventFile>>()
    for (const f of await at(l.events, "listing", () => listEventFiles(l.events))) {
      const list = filesByDay.get(f.day) ?? []
      list.push(f)
      filesByDay.set(f.day, list)
    }
    const settled = (day: string) => {
      const [start, end] = dayRange(day)
      return end + settleMs <= options.now && fullyCovered(options.coverage, start, end)
    }
    const sealedAt = new Date(options.now).toISOString()
    const recordedNow = new Set<string>()
    const openRemoved = new Set<string>()

    for (const [day, files] of [...filesByDay].sort(([a], [b]) => a < b ? -1 : 1)) {
      const open = files.find((f) => f.segment === 0)
      if (open === undefined || !settled(day)) continue
      const entries = entriesByDay.get(day) ?? []
      const recorded = new Set(entries.flatMap((e) => e.kind === "segment" ? [e.path] : []))
      const orphans = files.filter((f) => f.segment > 0 && !recorded.has(`events/${f.name}`))
      const h = await at(open.file, "opening", () => openRead(open.file))
      let size: number
      try {
        await at(open.file, "syncing", () => h.sync())
        const st = await at(open.file, "checking", () => h.stat())
        // Only complete lines: a torn tail was never acknowledged (the sink cuts it on start).
        size = await at(open.file, "reading the end of", () => completeLength(h, st.size))
      } finally {
        await h.close().catch(() => undefined)
      }
      const covered = coveredWithin(options.coverage, day)

      // How much of the open file is already sealed (an interrupted seal): recorded segments first.
      let offset = await sealedPrefix(open.file, size, entries.flatMap((e) => e.kind === "segment" ? [e] : []))
      for (const o of orphans.sort((a, b) => a.segment - b.segment)) {
        const stats = await statsOfSegment(o.file).catch((e) => {
          // A planted link is refused, not skipped as an unreadable orphan.
          if (e instanceof UnsafePath) throw e
          return undefined
        })
        if (stats === undefined || stats.content.bytes === 0 || offset + stats.content.bytes > size) continue
        const d = await at(open.file, "reading", () => digestRange(open.file, offset, stats.content.bytes))
        if (d.sha256 !== stats.content.sha256) continue
        const stored = await at(o.file, "reading", () => digestFile(o.file))
        await append([{ kind: "segment", day, covered, sealedAt, path: `events/${o.name}`, segment: o.segment, ...stored, ...stats }])
        adopted.push(`events/${o.name}`)
        recordedNow.add(day)
        offset += stats.content.bytes
      }

      if (offset < size) {
        const n = Math.max(0, ...files.map((f) => f.segment), ...entries.flatMap((e) => e.kind === "segment" ? [e.segment] : [])) + 1
        const name = segmentName(day, n)
        const target = path.join(l.events, name)
        const tmp = path.join(l.events, `.seal-${randomBytes(8).toString("hex")}.tmp`)
        const stats = new LineStats()
        const stored = new LineStats()
        const source = await at(open.file, "opening", () => openRead(open.file))
        // O_EXCL: a random name that exists already (planted) is refused, never written through.
        const out = await at(tmp, "creating", () =>
          openNoFollow(tmp, fs.constants.O_WRONLY | fs.constants.O_CREAT | fs.constants.O_EXCL, FILE_MODE)).catch(async (e) => {
            await source.close().catch(() => undefined)
            throw e
          })
        try {
          await at(tmp, "compressing into", () =>
            pipeline(
              source.createReadStream({ start: offset, end: size - 1, autoClose: true }),
              stats.transform(),
              zlib.createGzip({ level: 6 }),
              new Transform({
                transform: (chunk: Buffer, _enc, cb) => {
                  stored.hash.update(chunk)
                  stored.bytes += chunk.length
                  cb(null, chunk)
                }
              }),
              new Writable({
                write: (chunk: Buffer, _enc, cb) => {
                  writeAll(out, chunk).then(() => cb(), cb)
                }
              })
            ))
          await at(tmp, "syncing", () => out.sync())
        } catch (e) {
          await out.close().catch(() => undefined)
          await source.close().catch(() => undefined)
          await fsp.rm(tmp, { force: true })
          throw e
        }
        await out.close()
        await step("tempWritten", day)
        // link(2) fails with EEXIST instead of replacing: a sealed file is never rewritten.
        await at(target, "creating", () => fsp.link(tmp, target))
        await at(tmp, "removing", () => fsp.rm(tmp, { force: true }))
        await fsyncDir(l.events)
        await step("linked", day)
        await append([{
          kind: "segment",
          day,
          covered,
          sealedAt,
          path: `events/${name}`,
          segment: n,
          sha256: stored.hash.digest("hex"),
          bytes: stored.bytes,
          ...stats.summary()
        }])
        sealed.push(`events/${name}`)
        recordedNow.add(day)
        await step("recorded", day)
      } else {
        removedOpen.push(`events/${open.name}`)
      }
      await at(open.file, "removing", async () => {
        try {
          await fsp.unlink(open.file)
        } catch (e) {
          if (errnoCode(e) !== "ENOENT") throw e
        }
      })
      await fsyncDir(l.events)
      await step("openRemoved", day)
      openRemoved.add(day)
    }

    // Covered, settled days that never had an event: an `empty` entry each, so the windows asked
    // about are on record.
    const empty: Array<Manifest.Draft> = []
    for (const [from, through] of options.coverage) {
      for (let start = Math.ceil(from / DAY_MS) * DAY_MS; start + DAY_MS <= through; start += DAY_MS) {
        const day = dayOf(start)
        // A day whose only file was an empty open file (removed above) is an empty day too.
        const hasFiles = filesByDay.has(day) && !(openRemoved.has(day) && filesByDay.get(day)!.length === 1)
        if (entriesByDay.has(day) || recordedNow.has(day) || hasFiles || !settled(day)) continue
        empty.push({ kind: "empty", day, covered: coveredWithin(options.coverage, day), sealedAt })
      }
    }
    await append(empty)
    emptyDays = empty.length

    // Quarantine files of days that are over: recorded once, so that evidence is chained too.
    const recordedQuarantine = new Set(chain.flatMap(({ entry }) => entry.kind === "quarantine" ? [entry.path] : []))
    const quarantine: Array<Manifest.Draft> = []
    const qDir = await at(l.quarantine, "checking", () => lstatIfExists(l.quarantine))
    if (qDir !== undefined && !qDir.isDirectory()) {
      throw new UnsafePath(l.quarantine, qDir.isSymbolicLink() ? "is a symbolic link" : "is not a directory")
    }
    for (const { day, file } of qDir === undefined ? [] : await at(l.quarantine, "listing", () => dayFiles(l.quarantine))) {
      const rel = `quarantine/${path.basename(file)}`
      // A file is appended to while its day lasts (the sink names it by the wall clock); the grace
      // covers a batch stamped just before midnight.
      if (recordedQuarantine.has(rel) || dayRange(day)[1] + Math.max(settleMs, QUARANTINE_GRACE_MS) > options.now) continue
      const h = await at(file, "opening", () => openRead(file))
      const stats = new LineStats()
      try {
        await at(file, "reading", async () => {
          for await (const chunk of h.createReadStream({ autoClose: false }) as AsyncIterable<Buffer>) stats.push(chunk)
        })
      } finally {
        await h.close().catch(() => undefined)
      }
      stats.end()
      const { content, lines } = stats.summary()
      quarantine.push({ kind: "quarantine", day, sealedAt, path: rel, sha256: content.sha256, bytes: content.bytes, lines })
    }
    await append(quarantine)
    return { sealed, emptyDays, adopted, removedOpen, quarantine: quarantine.map((q) => (q as Manifest.QuarantineEntry).path) }
  }), "Seal.sealSettled")
}

/**
 * Sealing as the archiver goes: after a back-fill and after every daemon poll, with the coverage
 * the archiver holds in memory (the checkpoint it has just saved). Optional for the archiver: a
 * test or an embedding that leaves it out archives without sealing.
 */
export class Sealer extends Context.Tag("@webex-compliance/archiver/Sealer")<Sealer, {
  readonly sealCovered: (coverage: ReadonlyArray<readonly [number, number]>) => Effect.Effect<SealResult, ArchiveWriteError | ArchiveUnsafe>
}>() {}

/** The archive at `dir` sealed with {@link sealSettled}, `now` from the `Clock`. */
export const layer = (options: Omit<SealOptions, "coverage" | "now">): Layer.Layer<Sealer> =>
  Layer.succeed(Sealer, {
    sealCovered: (coverage) =>
      Clock.currentTimeMillis.pipe(
        Effect.flatMap((now) => sealSettled({ ...options, coverage, now })),
        Effect.tap((r) =>
          r.sealed.length + r.emptyDays + r.adopted.length + r.quarantine.length > 0
            ? Effect.logInfo("Sealed settled days").pipe(
              Effect.annotateLogs({
                segments: r.sealed.join(" "),
                emptyDays: r.emptyDays,
                adopted: r.adopted.length,
                quarantineFiles: r.quarantine.length
              })
            )
            : Effect.void
        )
      )
  })
