/**
 * The persistent id -> day index: which day holds each archived event, so that an id served again
 * under another day (the service moved its `created`) is recognised without keeping every id in
 * memory.
 *
 * A small log-structured index. New entries go to a bounded in-memory table; at each sync point
 * that table is written out as an immutable sorted run (`state/ids-N.run`: 20-byte records, the
 * first 16 bytes of sha256(id) then the day as days since 1970 + 1), and runs of similar size are
 * merged, so there are O(log n) of them. Per run, memory holds only a Bloom filter (10 bits per
 * id) and every 128th key: about 1.3 bytes per archived id, against ~100 for a set of the ids.
 * A lookup of an absent id (the common case: a fresh event) touches no disk; a present one reads
 * one 2.5 KB block. Per page the cost is one hash and a few bit tests per event.
 *
 * The index is derived data: the day files are the truth. `state/ids.json` lists the runs and
 * records, per day, what has been indexed (sealed segments by name, the open file by inode and
 * length). It is written only at sync points, after the runs it names are fsync'd, so after a
 * crash the index is behind by at most the batches since, and the sink's reconcile re-reads just
 * those files' tails. Entries are added only after their lines are durably appended, so the index
 * never claims an id the archive does not hold. A damaged index is rebuilt from the archive.
 *
 * File I/O here is synchronous: sequential writes of whole runs and the odd 2.5 KB block read,
 * cheaper than an async round trip each.
 *
 * @internal
 */
import { randomBytes } from "node:crypto"
import * as fs from "node:fs"
import * as path from "node:path"
import { UnsafePath } from "./errors.js"
import { FILE_MODE } from "./layout.js"
import { sha256Bytes } from "./sha256.js"

const REC = 20
const KEY = 16
const FENCE_EVERY = 128
const BLOOM_BITS_PER_KEY = 10
const BLOOM_HASHES = 7
/** Entries kept in memory before a sync point is forced, whatever the batch count. */
const MAX_MEMTABLE = 100_000

const { O_RDONLY, O_WRONLY, O_CREAT, O_EXCL, O_NOFOLLOW } = fs.constants

const DAY_MS = 86_400_000

/** `YYYY-MM-DD` as days since 1970 + 1. */
export const dayNumber = (day: string): number => {
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

/** The index key of an id: 128 bits of its sha256 (a collision only quarantines, never drops). */
export const keyOf = (id: string): Buffer => sha256Bytes(id).subarray(0, KEY)

const openNoFollowSync = (file: string, flags: number, mode?: number): number => {
  let fd: number
  try {
    // O_NONBLOCK: a planted FIFO must not hang the open; no effect on a regular file.
    fd = fs.openSync(file, flags | O_NOFOLLOW | fs.constants.O_NONBLOCK, mode)
  } catch (e) {
    const code = typeof e === "object" && e !== null && "code" in e ? e.code : undefined
    if (code === "ELOOP" || code === "EMLINK") throw new UnsafePath(file, "is a symbolic link")
    throw e
  }
  if (!fs.fstatSync(fd).isFile()) {
    fs.closeSync(fd)
    throw new UnsafePath(file, "is not a regular file")
  }
  return fd
}

const readAt = (fd: number, buf: Buffer, pos: number): number => {
  let off = 0
  while (off < buf.length) {
    const n = fs.readSync(fd, buf, off, buf.length - off, pos + off)
    if (n === 0) break
    off += n
  }
  return off
}

const writeAll = (fd: number, buf: Uint8Array) => {
  let off = 0
  while (off < buf.length) off += fs.writeSync(fd, buf, off, buf.length - off)
}

/** Writes a new file durably (random temporary name, O_EXCL, fsync, rename). */
const writeDurably = (target: string, write: (fd: number) => void) => {
  const tmp = `${target}.${randomBytes(6).toString("hex")}.tmp`
  const fd = openNoFollowSync(tmp, O_WRONLY | O_CREAT | O_EXCL, FILE_MODE)
  try {
    fs.fchmodSync(fd, FILE_MODE)
    write(fd)
    fs.fsyncSync(fd)
  } catch (e) {
    fs.closeSync(fd)
    fs.rmSync(tmp, { force: true })
    throw e
  }
  fs.closeSync(fd)
  fs.renameSync(tmp, target)
}

const fsyncDir = (dir: string) => {
  const fd = fs.openSync(dir, O_RDONLY | fs.constants.O_DIRECTORY)
  try {
    fs.fsyncSync(fd)
  } catch {
    // A few file systems refuse fsync on directories.
  } finally {
    fs.closeSync(fd)
  }
}

/** What is indexed of one day (see the module comment). */
export interface DayMark {
  readonly segments: ReadonlyArray<string>
  readonly open?: { readonly ino: number; readonly size: number } | undefined
}

interface Meta {
  readonly version: 2
  readonly seq: number
  readonly runs: ReadonlyArray<{ readonly file: string; readonly count: number }>
  readonly days: Record<string, DayMark>
}

/** One immutable sorted run: its file, and in memory its Bloom filter and sparse keys. */
interface Run {
  readonly file: string
  readonly count: number
  readonly fd: number
  readonly bloom: Uint8Array
  readonly fences: Buffer
}

// The key is a slice of a sha256: its words are independent hashes (double hashing).
const bloomAdd = (bloom: Uint8Array, bits: number, buf: Buffer, at: number) => {
  const h1 = buf.readUInt32LE(at)
  const h2 = buf.readUInt32LE(at + 4) | 1
  for (let i = 0; i < BLOOM_HASHES; i++) {
    const b = ((h1 + Math.imul(i, h2)) >>> 0) % bits
    bloom[b >>> 3]! |= 1 << (b & 7)
  }
}

const bloomHas = (bloom: Uint8Array, bits: number, key: Buffer): boolean => {
  const h1 = key.readUInt32LE(0)
  const h2 = key.readUInt32LE(4) | 1
  for (let i = 0; i < BLOOM_HASHES; i++) {
    const b = ((h1 + Math.imul(i, h2)) >>> 0) % bits
    if ((bloom[b >>> 3]! & (1 << (b & 7))) === 0) return false
  }
  return true
}

const loadRun = (dir: string, file: string, count: number): Run => {
  const full = path.join(dir, file)
  const fd = openNoFollowSync(full, O_RDONLY)
  if (fs.fstatSync(fd).size !== count * REC) {
    fs.closeSync(fd)
    throw new Error(`${full} is not ${count} records long`)
  }
  const bits = Math.max(64, count * BLOOM_BITS_PER_KEY)
  const bloom = new Uint8Array(Math.ceil(bits / 8))
  const fences = Buffer.alloc(Math.ceil(count / FENCE_EVERY) * KEY)
  const chunk = Buffer.alloc(FENCE_EVERY * REC * 64)
  for (let start = 0; start < count; start += FENCE_EVERY * 64) {
    const n = Math.min(FENCE_EVERY * 64, count - start)
    readAt(fd, chunk.subarray(0, n * REC), start * REC)
    for (let i = 0; i < n; i++) {
      bloomAdd(bloom, bits, chunk, i * REC)
      if ((start + i) % FENCE_EVERY === 0) chunk.copy(fences, ((start + i) / FENCE_EVERY) * KEY, i * REC, i * REC + KEY)
    }
  }
  return { file, count, fd, bloom, fences }
}

const block = Buffer.alloc(FENCE_EVERY * REC)

/** The day recorded for `key` in `run`, or 0. */
const findInRun = (run: Run, key: Buffer): number => {
  if (!bloomHas(run.bloom, Math.max(64, run.count * BLOOM_BITS_PER_KEY), key)) return 0
  // The last fence not after the key: its block is the only one that can hold it.
  let lo = 0
  let hi = run.fences.length / KEY - 1
  while (lo < hi) {
    const mid = (lo + hi + 1) >>> 1
    if (run.fences.compare(key, 0, KEY, mid * KEY, mid * KEY + KEY) <= 0) lo = mid
    else hi = mid - 1
  }
  const first = lo * FENCE_EVERY
  const n = Math.min(FENCE_EVERY, run.count - first)
  readAt(run.fd, block.subarray(0, n * REC), first * REC)
  let a = 0
  let b = n - 1
  while (a <= b) {
    const mid = (a + b) >>> 1
    const c = block.compare(key, 0, KEY, mid * REC, mid * REC + KEY)
    if (c === 0) return block.readUInt32LE(mid * REC + KEY)
    if (c < 0) a = mid + 1
    else b = mid - 1
  }
  return 0
}

/** Streams the records of runs, merged by key (the oldest run's entry wins), into `fd`. */
const mergeRuns = (runs: ReadonlyArray<Run>, fd: number): number => {
  const CH = 4096
  const cursors = runs.map((run) => ({ run, pos: 0, buf: Buffer.alloc(CH * REC), at: 0, len: 0 }))
  /** Whether the cursor has a record, refilling its chunk when it is used up. */
  const ready = (c: (typeof cursors)[number]): boolean => {
    if (c.pos >= c.run.count) return false
    if (c.at >= c.len) {
      const n = Math.min(CH, c.run.count - c.pos)
      c.len = readAt(c.run.fd, c.buf.subarray(0, n * REC), c.pos * REC)
      c.at = 0
    }
    return true
  }
  const out = Buffer.alloc(CH * REC)
  let used = 0
  let count = 0
  for (;;) {
    let best: (typeof cursors)[number] | undefined
    for (const c of cursors) {
      if (!ready(c)) continue
      // Strictly smaller only: on a tie the earlier (older) run's record is kept.
      if (best === undefined || c.buf.compare(best.buf, best.at, best.at + KEY, c.at, c.at + KEY) < 0) best = c
    }
    if (best === undefined) break
    best.buf.copy(out, used * REC, best.at, best.at + REC)
    // Skip the same key in every other run (an entry re-added after a crash).
    for (const c of cursors) {
      if (c !== best && ready(c) && c.buf.compare(out, used * REC, used * REC + KEY, c.at, c.at + KEY) === 0) {
        c.pos++
        c.at += REC
      }
    }
    best.pos++
    best.at += REC
    used++
    count++
    if (used === CH) {
      writeAll(fd, out)
      used = 0
    }
  }
  if (used > 0) writeAll(fd, out.subarray(0, used * REC))
  return count
}

export interface IdIndex {
  /** The day holding `key`, or `undefined`. */
  readonly lookup: (key: Buffer) => string | undefined
  /**
   * Records `key` under `day` unless it is there already; returns the day it was already under
   * (so a caller indexing the archive learns of ids held by two days).
   */
  readonly insert: (key: Buffer, day: string) => string | undefined
  /** Records `key` under `day`, known to be absent (just looked up, under the same lock). */
  readonly add: (key: Buffer, day: string) => void
  /** What is recorded as indexed for `day`. */
  readonly mark: (day: string) => DayMark | undefined
  /** Records what is now indexed for `day` (persisted at the next sync point). */
  readonly setMark: (day: string, mark: DayMark) => void
  /** Whether enough is held in memory that a sync point is due. */
  readonly full: () => boolean
  /** A sync point: writes what is in memory as a run and persists the marks. */
  readonly sync: () => void
  /** Number of entries. */
  readonly size: () => number
  readonly close: () => void
}

const RUN_FILE = /^ids-\d+\.run$/

/** Opens (or creates) the index in `stateDir`; a damaged one is discarded and started afresh. */
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
      const v = JSON.parse(fs.readFileSync(fd, "utf8")) as Meta
      return v.version === 2 && Array.isArray(v.runs) && typeof v.days === "object" && typeof v.seq === "number"
        ? v
        : (rebuilt = true, undefined)
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
      runs = meta.runs.map((r) => loadRun(stateDir, r.file, r.count))
    } catch (e) {
      if (e instanceof UnsafePath) throw e
      for (const r of runs) fs.closeSync(r.fd)
      runs = []
      meta = undefined
      rebuilt = true
    }
  }
  let seq = meta?.seq ?? 0
  const days: Record<string, DayMark> = { ...(meta?.days ?? {}) }
  const memtable = new Map<string, number>()
  let marksChanged = meta === undefined

  // Runs no list names: left by a crash between writing a run and recording it.
  const named = new Set(runs.map((r) => r.file))
  for (const name of fs.readdirSync(stateDir)) {
    if (RUN_FILE.test(name) && !named.has(name)) fs.rmSync(path.join(stateDir, name), { force: true })
  }

  const lookupDay = (key: Buffer): number => {
    const m = memtable.get(key.toString("latin1"))
    if (m !== undefined) return m
    // Newest first: a key is in at most one run, unless re-added after a crash (same day then).
    for (let i = runs.length - 1; i >= 0; i--) {
      const d = findInRun(runs[i]!, key)
      if (d !== 0) return d
    }
    return 0
  }

  const writeRun = (write: (fd: number) => number): Run => {
    const file = `ids-${++seq}.run`
    let count = 0
    writeDurably(path.join(stateDir, file), (fd) => {
      count = write(fd)
    })
    return loadRun(stateDir, file, count)
  }

  const persistMeta = () => {
    const m: Meta = { version: 2, seq, runs: runs.map((r) => ({ file: r.file, count: r.count })), days }
    writeDurably(metaFile, (fd) => writeAll(fd, Buffer.from(JSON.stringify(m))))
    fsyncDir(stateDir)
    marksChanged = false
  }

  const sync = () => {
    const dropped: Array<Run> = []
    if (memtable.size > 0) {
      // Latin-1 strings compare by code unit, i.e. byte by byte: the runs' key order.
      const keys = [...memtable.keys()].sort()
      runs.push(writeRun((fd) => {
        const buf = Buffer.alloc(keys.length * REC)
        keys.forEach((k, i) => {
          buf.write(k, i * REC, KEY, "latin1")
          buf.writeUInt32LE(memtable.get(k)!, i * REC + KEY)
        })
        writeAll(fd, buf)
        return keys.length
      }))
      memtable.clear()
      // Like a binary counter: merge while the newest run is at least half its predecessor.
      while (runs.length >= 2 && runs[runs.length - 1]!.count * 2 >= runs[runs.length - 2]!.count) {
        const pair = runs.splice(runs.length - 2, 2)
        runs.push(writeRun((fd) => mergeRuns(pair, fd)))
        dropped.push(...pair)
      }
      marksChanged = true
    }
    if (marksChanged) persistMeta()
    // Only once the list no longer names them.
    for (const r of dropped) {
      fs.closeSync(r.fd)
      fs.rmSync(path.join(stateDir, r.file), { force: true })
    }
  }

  const index: IdIndex = {
    lookup: (key) => {
      const d = lookupDay(key)
      return d === 0 ? undefined : dayOfNumber(d)
    },
    insert: (key, day) => {
      const d = lookupDay(key)
      if (d !== 0) return dayOfNumber(d)
      memtable.set(key.toString("latin1"), dayNumber(day))
      return undefined
    },
    add: (key, day) => {
      memtable.set(key.toString("latin1"), dayNumber(day))
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
  if (meta === undefined) persistMeta()
  return { index, rebuilt }
}
