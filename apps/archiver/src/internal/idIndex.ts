/**
 * The persistent id -> day index: which day holds each archived event, so that an id served again
 * under another day (the service moved its `created`) is recognised without keeping every id in
 * memory.
 *
 * A small log-structured index. An id's key is 128 bits of a fast hash of its UTF-16 code units
 * (four 32-bit multiply-rotate lanes, MurmurHash3's x86_128 rounds), seeded with a random 128-bit
 * seed made when the index is created and kept in `state/ids.json`. New entries go to a bounded
 * in-memory table (typed arrays: about 40 bytes per entry, no strings); at each sync point that
 * table is sorted and written out as an immutable run (`state/ids-N.run`: 20-byte records, the
 * key as four 32-bit words then the day as days since 1970 + 1, in the byte order `ids.json`
 * names), and runs of similar size are merged, so there are O(log n) of them. Per run, memory
 * holds only a Bloom filter (10 bits per id) and every 128th key, built as the run is written:
 * about 1.3 bytes per archived id, against ~100 for a set of the ids. A lookup of an absent id
 * (the common case: a fresh event) touches no disk; a present one reads one 2.5 KB block.
 *
 * Collisions: two ids with one key would make the second look archived under the first one's
 * day. The sink then keeps it in quarantine as a `movedDay` copy (or, same day, archives it: the
 * day's own id set decides duplicates), so a collision never drops an event. The seed makes keys
 * unpredictable to whoever chooses ids, and 128 bits make an accidental one negligible.
 *
 * The index is derived data: the day files are the truth. `state/ids.json` lists the runs and
 * records, per day, what has been indexed (sealed segments by name, the open file by inode and
 * length, with what that length holds: {@link DayTally}, which lets `status` answer without
 * reading the file). It is written only at sync points, after the runs it names are fsync'd, so
 * after a crash the index is behind by at most the batches since, and the sink's reconcile
 * re-reads just those files' tails. Entries are added only after their lines are durably
 * appended, so the index never claims an id the archive does not hold. A damaged index, or one
 * of an older version, is rebuilt from the archive.
 *
 * A sync point's writes (runs, merges, the list) are asynchronous, so the event loop keeps
 * fetching while they reach the disk; the caller holds off adding entries until it completes.
 * Lookups stay synchronous: they read one block, rarely.
 *
 * Keys and the in-memory table are in `idKey.ts`, run files in `idRun.ts`.
 *
 * @internal
 */
import { randomBytes } from "node:crypto"
import * as fs from "node:fs"
import * as fsp from "node:fs/promises"
import * as os from "node:os"
import * as path from "node:path"
import * as DayTally from "./dayTally.js"
import { UnsafePath } from "./errors.js"
import { type FileWriter, fsyncDirSync, readIfExists, writeAll, writeFileAtomic } from "./safeFs.js"
import { cmpAt, hashKey, K, Memtable, setKey, W } from "./idKey.js"
import {
  CHUNK,
  findInRun,
  loadRun,
  openNoFollowSync,
  readAtAsync,
  REC,
  type Run,
  RunBuilder,
  wordBuffer
} from "./idRun.js"
import { FILE_MODE } from "./layout.js"

export { keyOf } from "./idKey.js"

/** Entries kept in memory before a sync point is due, whatever the batch count. */
const MAX_MEMTABLE = 100_000
const VERSION = 3
/** The byte order the runs' words are written in (this machine's; another one rebuilds). */
const ENDIAN = os.endianness()

const { O_RDONLY, O_WRONLY, O_CREAT, O_EXCL } = fs.constants

const DAY_MS = 86_400_000

/** `YYYY-MM-DD` as days since 1970 + 1. */
const dayNumber = (day: string): number => {
  // Called once per archived event, and a page's events share a day or two: parse each day once.
  if (day !== lastDay) {
    lastDay = day
    lastDayNumber = Date.parse(`${day}T00:00:00.000Z`) / DAY_MS + 1
  }
  return lastDayNumber
}
let lastDay = ""
let lastDayNumber = NaN
export const dayOfNumber = (n: number): string => new Date((n - 1) * DAY_MS).toISOString().slice(0, 10)

/** What is indexed of one day (see the module comment). */
export interface DayMark {
  readonly segments: ReadonlyArray<string>
  readonly open?: OpenMark | undefined
}

/**
 * The open day file as far as it is indexed: its inode, its length, and (when known) what those
 * bytes hold. A file with this inode and at least this length starts with exactly those bytes
 * (the archive only appends to it; sealing replaces it).
 */
export interface OpenMark {
  readonly ino: number
  readonly size: number
  readonly tally?: DayTally.DayTally | undefined
}

/**
 * The part of a day's `mark` that still describes its open file `st`, given the day's sealed
 * segments now: `undefined` unless it is the same file, not shorter since (the archive only
 * appends to it), and no segment was sealed since the mark was taken. Sealing moves the open
 * file's lines into a new segment and removes the file; the next open file may get the same inode
 * number, and would then seem to start with lines that were indexed when they were not.
 */
export const openMarkFor = (
  mark: DayMark | undefined,
  segments: ReadonlyArray<string>,
  st: { readonly ino: number; readonly size: number } | undefined
): OpenMark | undefined => {
  const open = mark?.open
  if (open === undefined || st === undefined || st.ino !== open.ino || st.size < open.size) return undefined
  const known = new Set(mark!.segments)
  return segments.every((s) => known.has(s)) ? open : undefined
}

interface Meta {
  readonly version: typeof VERSION
  readonly endian: string
  readonly seed: string
  readonly seq: number
  readonly runs: ReadonlyArray<{ readonly file: string; readonly count: number }>
  readonly days: Record<string, DayMark>
}

export interface IdIndex {
  /** The day holding `id`, or `undefined`. */
  readonly lookup: (id: string) => string | undefined
  /**
   * Makes `id`'s key the current one (`idKey.K`): for {@link lookupHashed}, and for a
   * {@link DayIds} (keyed by this index's keys), so that an id is hashed once for both.
   */
  readonly hash: (id: string) => void
  /** {@link lookup} of the id whose key {@link hash} just made current. */
  readonly lookupHashed: (id: string) => string | undefined
  /**
   * Records `id` under `day` unless it is there already; returns the day it was already under
   * (so a caller indexing the archive learns of ids held by two days).
   */
  readonly insert: (id: string, day: string) => string | undefined
  /** Records `id` under `day`, known to be absent (just looked up, under the same lock). */
  readonly add: (id: string, day: string) => void
  /** What is recorded as indexed for `day`. */
  readonly mark: (day: string) => DayMark | undefined
  /** Records what is now indexed for `day` (persisted at the next sync point). */
  readonly setMark: (day: string, mark: DayMark) => void
  /** Whether enough is held in memory that a sync point is due. */
  readonly full: () => boolean
  /**
   * A sync point: writes what is in memory as a run, merges runs, persists the marks. Entries
   * must not be added until it completes (the sink holds its lock across it).
   */
  readonly sync: () => Promise<void>
  /** Number of entries (an id re-added after a crash counts until its runs merge). */
  readonly size: () => number
  readonly close: () => void
}

const RUN_FILE = /^ids-\d+\.run$/
/** Keys remembered from lookups for the adds that follow (a power of two, above a batch's events). */
const RING = 8192
const SEED = /^[0-9a-f]{32}$/

const isMark = (v: unknown): v is DayMark => {
  if (typeof v !== "object" || v === null) return false
  const m = v as { segments?: unknown; open?: unknown }
  if (!Array.isArray(m.segments) || !m.segments.every((s) => typeof s === "string")) return false
  if (m.open === undefined) return true
  const o = m.open as { ino?: unknown; size?: unknown; tally?: unknown }
  return typeof o === "object" && o !== null && typeof o.ino === "number" && typeof o.size === "number" &&
    (o.tally === undefined || DayTally.isDayTally(o.tally))
}

const parseMeta = (text: string): Meta | undefined => {
  const v = JSON.parse(text) as Meta
  return typeof v === "object" && v !== null && v.version === VERSION && v.endian === ENDIAN &&
      typeof v.seed === "string" && SEED.test(v.seed) && typeof v.seq === "number" && Array.isArray(v.runs) &&
      typeof v.days === "object" && v.days !== null && Object.values(v.days).every(isMark)
    ? v
    : undefined
}

/**
 * The per-day marks of the index in `stateDir`, read-only (for `status`): empty when there is
 * no index or it is damaged or of another version. A link at `ids.json` is an {@link UnsafePath}.
 */
export const readMarks = async (stateDir: string): Promise<Readonly<Record<string, DayMark>>> => {
  let text: string | undefined
  try {
    text = await readIfExists(path.join(stateDir, "ids.json"))
  } catch (e) {
    if (e instanceof UnsafePath) throw e
    return {}
  }
  if (text === undefined) return {}
  try {
    return parseMeta(text)?.days ?? {}
  } catch {
    return {}
  }
}

/** Opens (or creates) the index in `stateDir`; a damaged or older one is discarded and started afresh. */
export const open = (stateDir: string): { readonly index: IdIndex; readonly rebuilt: boolean } => {
  const metaFile = path.join(stateDir, "ids.json")
  let rebuilt = false

  const readMeta = (): Meta | undefined => {
    let fd: number
    try {
      fd = openNoFollowSync(metaFile, O_RDONLY)
    } catch (e) {
      if (e instanceof UnsafePath) throw e
      return undefined
    }
    try {
      const meta = parseMeta(fs.readFileSync(fd, "utf8"))
      if (meta === undefined) rebuilt = true
      return meta
    } catch {
      rebuilt = true
      return undefined
    } finally {
      fs.closeSync(fd)
    }
  }

  let meta = readMeta()
  let runs: Array<Run> = []
  if (meta !== undefined) {
    try {
      for (const r of meta.runs) runs.push(loadRun(stateDir, r.file, r.count))
    } catch (e) {
      for (const r of runs) fs.closeSync(r.fd)
      if (e instanceof UnsafePath) throw e
      runs = []
      meta = undefined
      rebuilt = true
    }
  }
  const seedText = meta?.seed ?? randomBytes(16).toString("hex")
  const seed = new Uint32Array(4)
  for (let i = 0; i < 4; i++) seed[i] = Number.parseInt(seedText.slice(i * 8, i * 8 + 8), 16)
  let seq = meta?.seq ?? 0
  const days: Record<string, DayMark> = { ...(meta?.days ?? {}) }
  const memtable = new Memtable(1024)
  let marksChanged = meta === undefined
  let syncing = false

  // Runs no list names: left by a crash between writing a run and recording it (or an older index).
  const named = new Set(runs.map((r) => r.file))
  for (const name of fs.readdirSync(stateDir)) {
    if (RUN_FILE.test(name) && !named.has(name)) fs.rmSync(path.join(stateDir, name), { force: true })
  }

  /** The day of the current key K, or 0. */
  const lookupDay = (): number => {
    const m = memtable.get()
    if (m !== 0) return m
    // Newest first: a key is in at most one run, unless re-added after a crash (same day then).
    for (let i = runs.length - 1; i >= 0; i--) {
      const d = findInRun(runs[i]!)
      if (d !== 0) return d
    }
    return 0
  }

  // Keys `lookup` computed, in order: the sink adds the fresh ids of a batch in the order it
  // looked them up, so `add` finds each key here instead of hashing the id again.
  const ringIds: Array<string | undefined> = new Array(RING)
  const ringKeys = new Uint32Array(RING * 4)
  let ringHead = 0
  let ringTail = 0
  const remember = (id: string) => {
    ringIds[ringHead] = id
    ringKeys.set(K, ringHead * 4)
    ringHead = (ringHead + 1) & (RING - 1)
    if (ringHead === ringTail) {
      ringIds[ringTail] = undefined
      ringTail = (ringTail + 1) & (RING - 1)
    }
  }
  /** Sets K to the key of `id`: remembered from a lookup a few entries ahead, or hashed. */
  const keyFor = (id: string) => {
    for (let t = ringTail, steps = 0; t !== ringHead && steps < 64; t = (t + 1) & (RING - 1), steps++) {
      if (ringIds[t] !== id) continue
      setKey(ringKeys, t * 4)
      // Skipped entries were looked up and not added (copies kept in quarantine): dropped.
      for (let u = ringTail; u !== t; u = (u + 1) & (RING - 1)) ringIds[u] = undefined
      ringIds[t] = undefined
      ringTail = (t + 1) & (RING - 1)
      return
    }
    // Not looked up just before (or many lookups since were not added): forget the ring, so that
    // the next adds do not scan stale entries in vain.
    for (; ringTail !== ringHead; ringTail = (ringTail + 1) & (RING - 1)) ringIds[ringTail] = undefined
    hashKey(id, seed)
  }

  /** The day of `id`, whose key is the current one (K). */
  const lookupHashed = (id: string): string | undefined => {
    remember(id)
    const d = lookupDay()
    return d === 0 ? undefined : dayOfNumber(d)
  }

  const adding = () => {
    if (syncing) throw new Error("IdIndex: an entry was added during a sync point")
  }

  /** Writes a new run file from `write` and opens it for lookups. */
  const writeRun = async (builder: RunBuilder, write: FileWriter): Promise<Run> => {
    const file = `ids-${++seq}.run`
    const full = path.join(stateDir, file)
    // No directory fsync here: the list that names the run is written next, and fsyncs it.
    await writeFileAtomic(full, undefined, write, { syncDir: false })
    return builder.run(file, openNoFollowSync(full, O_RDONLY))
  }

  /** Streams the records of two runs, merged by key (the older run's entry wins a tie), into a new run. */
  const merge = (older: Run, newer: Run): Promise<Run> => {
    const builder = new RunBuilder(older.count + newer.count)
    return writeRun(builder, async (h) => {
      const cursors = [older, newer].map((run) => ({ run, pos: 0, buf: wordBuffer(CHUNK), at: 0, len: 0 }))
      type Cursor = (typeof cursors)[number]
      /** Reads the cursor's next chunk once it has used up the last (the only await per chunk). */
      const refill = async (c: Cursor) => {
        const n = Math.min(CHUNK, c.run.count - c.pos)
        if (await readAtAsync(c.run.fd, c.buf.bytes.subarray(0, n * REC), c.pos * REC) !== n * REC) {
          throw new Error(`${c.run.file} is short`)
        }
        c.len = n * W
        c.at = 0
      }
      const out = wordBuffer(CHUNK)
      let used = 0
      const [a, b] = cursors as [Cursor, Cursor]
      for (;;) {
        if (a.at >= a.len && a.pos < a.run.count) await refill(a)
        if (b.at >= b.len && b.pos < b.run.count) await refill(b)
        const ra = a.pos < a.run.count
        const rb = b.pos < b.run.count
        if (!ra && !rb) break
        let from: Cursor
        if (ra && rb) {
          setKey(b.buf.words, b.at)
          const c = cmpAt(a.buf.words, a.at)
          from = c <= 0 ? a : b
          // The same key in the newer run (an entry re-added after a crash): skipped.
          if (c === 0) {
            b.pos++
            b.at += W
          }
        } else {
          from = ra ? a : b
        }
        const src = from.buf.words
        const o = used * W
        const i = from.at
        out.words[o] = src[i]!
        out.words[o + 1] = src[i + 1]!
        out.words[o + 2] = src[i + 2]!
        out.words[o + 3] = src[i + 3]!
        out.words[o + 4] = src[i + 4]!
        from.pos++
        from.at += W
        if (++used === CHUNK) {
          builder.push(out.words, 0, used)
          await writeAll(h, out.bytes)
          used = 0
        }
      }
      if (used > 0) {
        builder.push(out.words, 0, used)
        await writeAll(h, out.bytes.subarray(0, used * REC))
      }
    })
  }

  const metaOf = (): Meta => ({
    version: VERSION,
    endian: ENDIAN,
    seed: seedText,
    seq,
    runs: runs.map((r) => ({ file: r.file, count: r.count })),
    days
  })

  const persistMeta = async () => {
    const m = metaOf()
    marksChanged = false
    try {
      // Also fsyncs stateDir: the renames of the runs it names are durable with it.
      await writeFileAtomic(metaFile, undefined, JSON.stringify(m))
    } catch (e) {
      marksChanged = true
      throw e
    }
  }

  const sync = async () => {
    if (syncing) throw new Error("IdIndex: sync points must not overlap")
    syncing = true
    const dropped: Array<Run> = []
    try {
      if (memtable.size > 0) {
        const records = memtable.sorted()
        const builder = new RunBuilder(memtable.size)
        builder.push(records, 0, memtable.size)
        const run = await writeRun(
          builder,
          (h) => writeAll(h, Buffer.from(records.buffer, records.byteOffset, records.byteLength))
        )
        // Lookups find these entries in the run from here on.
        runs.push(run)
        memtable.clear()
        marksChanged = true
        // Like a binary counter: merge while the newest run is at least half its predecessor.
        while (runs.length >= 2 && runs[runs.length - 1]!.count * 2 >= runs[runs.length - 2]!.count) {
          const older = runs[runs.length - 2]!
          const newer = runs[runs.length - 1]!
          const merged = await merge(older, newer)
          runs.splice(runs.length - 2, 2, merged)
          dropped.push(older, newer)
        }
      }
      if (marksChanged) await persistMeta()
    } finally {
      syncing = false
    }
    // Only once the list no longer names them.
    for (const r of dropped) {
      fs.closeSync(r.fd)
      await fsp.rm(path.join(stateDir, r.file), { force: true })
    }
  }

  const index: IdIndex = {
    lookup: (id) => {
      hashKey(id, seed)
      return lookupHashed(id)
    },
    hash: (id) => hashKey(id, seed),
    lookupHashed,
    insert: (id, day) => {
      adding()
      hashKey(id, seed)
      const d = lookupDay()
      if (d !== 0) return dayOfNumber(d)
      memtable.set(dayNumber(day))
      return undefined
    },
    add: (id, day) => {
      adding()
      keyFor(id)
      memtable.set(dayNumber(day))
    },
    mark: (day) => days[day],
    setMark: (day, mark) => {
      days[day] = mark
      marksChanged = true
    },
    full: () => memtable.size >= MAX_MEMTABLE,
    sync,
    size: () => memtable.size + runs.reduce((n, r) => n + r.count, 0),
    close: () => {
      for (const r of runs) {
        try {
          fs.closeSync(r.fd)
        } catch {
          // already closed
        }
      }
    }
  }
  // A new index is described at once, so that the next open does not take it for a damaged one.
  if (meta === undefined) persistMetaSync()
  return { index, rebuilt }

  function persistMetaSync() {
    // No runs yet: a new index, or one discarded above.
    const m = metaOf()
    const tmp = `${metaFile}.${randomBytes(6).toString("hex")}.tmp`
    const fd = openNoFollowSync(tmp, O_WRONLY | O_CREAT | O_EXCL, FILE_MODE)
    try {
      fs.fchmodSync(fd, FILE_MODE)
      fs.writeSync(fd, JSON.stringify(m))
      fs.fsyncSync(fd)
    } catch (e) {
      fs.closeSync(fd)
      fs.rmSync(tmp, { force: true })
      throw e
    }
    fs.closeSync(fd)
    fs.renameSync(tmp, metaFile)
    fsyncDirSync(stateDir)
    marksChanged = false
  }
}

/**
 * The mark of an open day file after the sink appended `lines` to it, leaving it `{ ino, size }`:
 * the previous mark's tally plus the new lines when that mark covered exactly the bytes before
 * them (or the file was new), else a mark without a tally (`status` then reads the file).
 * `hints[k]`, when given, is what the caller decoded of line k (read from the line otherwise).
 */
export const appendedMark = (
  previous: OpenMark | undefined,
  day: string,
  after: { readonly ino: number; readonly size: number },
  lines: ReadonlyArray<Uint8Array>,
  appendedBytes: number,
  hints?: ReadonlyArray<DayTally.Known | undefined>
): OpenMark => {
  const before = after.size - appendedBytes
  const known = before === 0 ||
    (previous !== undefined && previous.ino === after.ino && previous.size === before && previous.tally !== undefined)
  if (!known) return { ino: after.ino, size: after.size }
  const t = DayTally.start(day, before === 0 ? undefined : previous!.tally)
  DayTally.appendedAll(t, lines, hints)
  return { ino: after.ino, size: after.size, tally: DayTally.done(t) }
}
