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
 * @internal
 */
import { randomBytes } from "node:crypto"
import * as fs from "node:fs"
import * as fsp from "node:fs/promises"
import * as os from "node:os"
import * as path from "node:path"
import { promisify } from "node:util"
import * as DayTally from "./dayTally.js"
import { UnsafePath } from "./errors.js"
import { FILE_MODE } from "./layout.js"


/** Words (uint32) per record: four of key, one of day. */
const W = 5
const REC = W * 4
const FENCE_EVERY = 128
const BLOOM_BITS_PER_KEY = 10
const BLOOM_HASHES = 7
/** Entries kept in memory before a sync point is due, whatever the batch count. */
const MAX_MEMTABLE = 100_000
const VERSION = 3
/** The byte order the runs' words are written in (this machine's; another one rebuilds). */
const ENDIAN = os.endianness()

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

// ---------------------------------------------------------------------------------------------
// Keys
// ---------------------------------------------------------------------------------------------

// The key last computed, as four unsigned words: in a typed array, as module-level numbers this
// large would each be boxed (an allocation per word per id).
const K = new Uint32Array(4)

const C1 = 0x239b961b
const C2 = 0xab0e9789
const C3 = 0x38b34ae5
const C4 = 0xa1e38b93

const codeAt = (s: string, i: number, n: number) => (i < n ? s.charCodeAt(i) : 0)
const rotl = (x: number, r: number) => (x << r) | (x >>> (32 - r))
const fmix = (h: number) => {
  h ^= h >>> 16
  h = Math.imul(h, 0x85ebca6b)
  h ^= h >>> 13
  h = Math.imul(h, 0xc2b2ae35)
  return h ^ (h >>> 16)
}

/**
 * Sets K to the key of `id` under `seed`: MurmurHash3 x86_128 over the id's UTF-16 code
 * units, two per 32-bit word, the last block zero-padded (the length, mixed in, tells paddings
 * apart).
 */
const hashKey = (id: string, seed: Uint32Array) => {
  let h1 = seed[0]!
  let h2 = seed[1]!
  let h3 = seed[2]!
  let h4 = seed[3]!
  const n = id.length
  const whole = n & ~7
  let a: number
  let b: number
  let c: number
  let d: number
  for (let i = 0; i <= whole; i += 8) {
    if (i < whole) {
      a = id.charCodeAt(i) | (id.charCodeAt(i + 1) << 16)
      b = id.charCodeAt(i + 2) | (id.charCodeAt(i + 3) << 16)
      c = id.charCodeAt(i + 4) | (id.charCodeAt(i + 5) << 16)
      d = id.charCodeAt(i + 6) | (id.charCodeAt(i + 7) << 16)
    } else if (i < n) {
      // The last, partial block, zero-padded (reading past the end would deoptimise the loop).
      a = codeAt(id, i, n) | (codeAt(id, i + 1, n) << 16)
      b = codeAt(id, i + 2, n) | (codeAt(id, i + 3, n) << 16)
      c = codeAt(id, i + 4, n) | (codeAt(id, i + 5, n) << 16)
      d = codeAt(id, i + 6, n) | (codeAt(id, i + 7, n) << 16)
    } else {
      break
    }
    a = Math.imul(rotl(Math.imul(a, C1), 15), C2)
    h1 ^= a
    h1 = (Math.imul(rotl(h1, 19) + h2, 5) + 0x561ccd1b) | 0
    b = Math.imul(rotl(Math.imul(b, C2), 16), C3)
    h2 ^= b
    h2 = (Math.imul(rotl(h2, 17) + h3, 5) + 0x0bcaa747) | 0
    c = Math.imul(rotl(Math.imul(c, C3), 17), C4)
    h3 ^= c
    h3 = (Math.imul(rotl(h3, 15) + h4, 5) + 0x96cd1c35) | 0
    d = Math.imul(rotl(Math.imul(d, C4), 18), C1)
    h4 ^= d
    h4 = (Math.imul(rotl(h4, 13) + h1, 5) + 0x32ac3b17) | 0
  }
  h1 ^= n
  h2 ^= n
  h3 ^= n
  h4 ^= n
  h1 = (h1 + h2 + h3 + h4) | 0
  h2 = (h2 + h1) | 0
  h3 = (h3 + h1) | 0
  h4 = (h4 + h1) | 0
  h1 = fmix(h1)
  h2 = fmix(h2)
  h3 = fmix(h3)
  h4 = fmix(h4)
  h1 = (h1 + h2 + h3 + h4) | 0
  h2 = (h2 + h1) | 0
  h3 = (h3 + h1) | 0
  h4 = (h4 + h1) | 0
  K[0] = h1
  K[1] = h2
  K[2] = h3
  K[3] = h4
}

/** The key of `id` under `seed` (four unsigned words); for tests. */
export const keyOf = (id: string, seed: Uint32Array): readonly [number, number, number, number] => {
  hashKey(id, seed)
  return [K[0]!, K[1]!, K[2]!, K[3]!]
}

/** Compares the record (or fence) at word `at` of `w` with the current key K. */
const cmpAt = (w: Uint32Array, at: number): number => {
  let d = w[at]! - K[0]!
  if (d !== 0) return d
  d = w[at + 1]! - K[1]!
  if (d !== 0) return d
  d = w[at + 2]! - K[2]!
  if (d !== 0) return d
  return w[at + 3]! - K[3]!
}

// The key's words are independent hashes: double hashing over the first two.
const bloomBitsFor = (count: number) => Math.max(64, count * BLOOM_BITS_PER_KEY)

// A 32-bit hash scaled to [0, bits) by a multiplication (exact in a double), not a division.
const TWO_32 = 4294967296
const bloomAdd = (bloom: Uint8Array, bits: number, h1: number, h2: number) => {
  h2 |= 1
  for (let i = 0; i < BLOOM_HASHES; i++) {
    const b = Math.floor(((h1 + Math.imul(i, h2)) >>> 0) * bits / TWO_32)
    bloom[b >>> 3]! |= 1 << (b & 7)
  }
}

const bloomHas = (bloom: Uint8Array, bits: number): boolean => {
  const h1 = K[0]!
  const h2 = K[1]! | 1
  for (let i = 0; i < BLOOM_HASHES; i++) {
    const b = Math.floor(((h1 + Math.imul(i, h2)) >>> 0) * bits / TWO_32)
    if ((bloom[b >>> 3]! & (1 << (b & 7))) === 0) return false
  }
  return true
}

// ---------------------------------------------------------------------------------------------
// Files
// ---------------------------------------------------------------------------------------------

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

const readAt = (fd: number, buf: Uint8Array, pos: number): number => {
  let off = 0
  while (off < buf.length) {
    const n = fs.readSync(fd, buf, off, buf.length - off, pos + off)
    if (n === 0) break
    off += n
  }
  return off
}

const readAsync = promisify(fs.read)

const readAtAsync = async (fd: number, buf: Uint8Array, pos: number): Promise<number> => {
  let off = 0
  while (off < buf.length) {
    const { bytesRead } = await readAsync(fd, buf, off, buf.length - off, pos + off)
    if (bytesRead === 0) break
    off += bytesRead
  }
  return off
}

/**
 * Writes a new file durably (random temporary name, O_EXCL so nothing planted is written through,
 * fsync, rename), asynchronously.
 */
const writeDurably = async (target: string, write: (h: fsp.FileHandle) => Promise<void>) => {
  const tmp = `${target}.${randomBytes(6).toString("hex")}.tmp`
  const h = await fsp.open(tmp, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW, FILE_MODE)
  try {
    await h.chmod(FILE_MODE)
    await write(h)
    await h.sync()
  } catch (e) {
    await h.close().catch(() => undefined)
    await fsp.rm(tmp, { force: true })
    throw e
  }
  await h.close()
  await fsp.rename(tmp, target)
}

const writeAll = async (h: fsp.FileHandle, buf: Uint8Array) => {
  let off = 0
  while (off < buf.length) off += (await h.write(buf, off, buf.length - off)).bytesWritten
}

const fsyncDir = async (dir: string) => {
  const h = await fsp.open(dir, O_RDONLY | fs.constants.O_DIRECTORY)
  try {
    await h.sync()
  } catch {
    // A few file systems refuse fsync on directories.
  } finally {
    await h.close()
  }
}

// ---------------------------------------------------------------------------------------------
// Runs
// ---------------------------------------------------------------------------------------------

/** One immutable sorted run: its file, and in memory its Bloom filter and sparse keys. */
interface Run {
  readonly file: string
  readonly count: number
  readonly fd: number
  readonly bits: number
  readonly bloom: Uint8Array
  /** Every FENCE_EVERY-th key, four words each. */
  readonly fences: Uint32Array
}

/** Builds a run's Bloom filter and fences from its records as they go by, in key order. */
class RunBuilder {
  readonly bits: number
  readonly bloom: Uint8Array
  readonly fences: Uint32Array
  count = 0
  constructor(maxCount: number) {
    this.bits = bloomBitsFor(maxCount)
    this.bloom = new Uint8Array(Math.ceil(this.bits / 8))
    this.fences = new Uint32Array(Math.ceil(maxCount / FENCE_EVERY) * 4)
  }
  /** Records `n` records of `w` from word `at`. */
  push(w: Uint32Array, at: number, n: number) {
    for (let i = 0; i < n; i++, at += W) {
      bloomAdd(this.bloom, this.bits, w[at]!, w[at + 1]!)
      if (this.count % FENCE_EVERY === 0) this.fences.set(w.subarray(at, at + 4), (this.count / FENCE_EVERY) * 4)
      this.count++
    }
  }
  run(file: string, fd: number): Run {
    const fences = this.fences.subarray(0, Math.ceil(this.count / FENCE_EVERY) * 4)
    return { file, count: this.count, fd, bits: this.bits, bloom: this.bloom, fences }
  }
}

/** Words over a fresh buffer, so that a Uint32Array view is aligned. */
const wordBuffer = (records: number) => {
  const ab = new ArrayBuffer(records * REC)
  return { bytes: Buffer.from(ab), words: new Uint32Array(ab) }
}

const CHUNK = 4096

/** Opens a listed run and rebuilds its Bloom filter and fences from it (at start). */
const loadRun = (dir: string, file: string, count: number): Run => {
  const full = path.join(dir, file)
  const fd = openNoFollowSync(full, O_RDONLY)
  try {
    if (fs.fstatSync(fd).size !== count * REC) throw new Error(`${full} is not ${count} records long`)
    const b = new RunBuilder(count)
    const chunk = wordBuffer(CHUNK)
    for (let start = 0; start < count; start += CHUNK) {
      const n = Math.min(CHUNK, count - start)
      if (readAt(fd, chunk.bytes.subarray(0, n * REC), start * REC) !== n * REC) throw new Error(`${full} is short`)
      // Keys must be strictly increasing (K carries the previous one across chunks): a run out
      // of order would hide ids from lookups.
      for (let i = 0; i < n; i++) {
        const at = i * W
        if ((start > 0 || i > 0) && cmpAt(chunk.words, at) <= 0) throw new Error(`${full} is out of order`)
        setKey(chunk.words, at)
      }
      b.push(chunk.words, 0, n)
    }
    return b.run(file, fd)
  } catch (e) {
    fs.closeSync(fd)
    throw e
  }
}

const setKey = (w: Uint32Array, at: number) => {
  K[0] = w[at]!
  K[1] = w[at + 1]!
  K[2] = w[at + 2]!
  K[3] = w[at + 3]!
}

const block = wordBuffer(FENCE_EVERY)

/** The day recorded for the current key K in `run`, or 0. */
const findInRun = (run: Run): number => {
  if (!bloomHas(run.bloom, run.bits)) return 0
  // The last fence not after the key: its block is the only one that can hold it.
  let lo = 0
  let hi = run.fences.length / 4 - 1
  if (hi < 0 || cmpAt(run.fences, 0) > 0) return 0
  while (lo < hi) {
    const mid = (lo + hi + 1) >>> 1
    if (cmpAt(run.fences, mid * 4) <= 0) lo = mid
    else hi = mid - 1
  }
  const first = lo * FENCE_EVERY
  const n = Math.min(FENCE_EVERY, run.count - first)
  if (readAt(run.fd, block.bytes.subarray(0, n * REC), first * REC) !== n * REC) return 0
  let a = 0
  let b = n - 1
  while (a <= b) {
    const mid = (a + b) >>> 1
    const c = cmpAt(block.words, mid * W)
    if (c === 0) return block.words[mid * W + 4]!
    if (c < 0) a = mid + 1
    else b = mid - 1
  }
  return 0
}

// ---------------------------------------------------------------------------------------------
// The in-memory table
// ---------------------------------------------------------------------------------------------

/** An open-addressing hash table of key -> day over typed arrays, doubling as it fills. */
class Memtable {
  private records: Uint32Array
  private slots: Int32Array
  private mask: number
  size = 0
  constructor(private capacity: number) {
    this.records = new Uint32Array(capacity * W)
    this.slots = new Int32Array(tableSize(capacity))
    this.mask = this.slots.length - 1
  }
  /** The slot of the current key, holding its entry + 1, or 0 where it would go. */
  private slotOf(): number {
    let s = K[2]! & this.mask
    for (;;) {
      const e = this.slots[s]!
      if (e === 0 || cmpAt(this.records, (e - 1) * W) === 0) return s
      s = (s + 1) & this.mask
    }
  }
  get(): number {
    if (this.size === 0) return 0
    const e = this.slots[this.slotOf()]!
    return e === 0 ? 0 : this.records[(e - 1) * W + 4]!
  }
  set(day: number) {
    const s = this.slotOf()
    const e = this.slots[s]!
    if (e !== 0) {
      this.records[(e - 1) * W + 4] = day
      return
    }
    if (this.size === this.capacity) return this.grow(day)
    const at = this.size * W
    const r = this.records
    r[at] = K[0]!
    r[at + 1] = K[1]!
    r[at + 2] = K[2]!
    r[at + 3] = K[3]!
    r[at + 4] = day
    this.slots[s] = ++this.size
  }
  private grow(day: number) {
    const old = this.records
    const n = this.size
    const key = K.slice()
    this.capacity *= 2
    this.records = new Uint32Array(this.capacity * W)
    this.records.set(old)
    this.slots = new Int32Array(tableSize(this.capacity))
    this.mask = this.slots.length - 1
    this.size = 0
    for (let i = 0; i < n; i++) {
      setKey(old, i * W)
      this.set(old[i * W + 4]!)
    }
    K.set(key)
    this.set(day)
  }
  /** The entries sorted by key, as run records. */
  sorted(): Uint32Array {
    const n = this.size
    const r = this.records
    const order = new Float64Array(n)
    // Sorted natively by the first word, the entry number riding in the low bits (exact below
    // 2^53); equal first words (rare) are put in order after.
    const shift = 2 ** Math.max(1, Math.ceil(Math.log2(n + 1)))
    if (shift <= 2 ** 21) {
      for (let i = 0; i < n; i++) order[i] = r[i * W]! * shift + i
      order.sort()
    } else {
      for (let i = 0; i < n; i++) order[i] = i
      order.sort((a, b) => r[a * W]! - r[b * W]!)
    }
    const out = new Uint32Array(n * W)
    const packed = shift <= 2 ** 21
    for (let j = 0, o = 0; j < n; j++, o += W) {
      const i = (packed ? order[j]! % shift : order[j]!) * W
      out[o] = r[i]!
      out[o + 1] = r[i + 1]!
      out[o + 2] = r[i + 2]!
      out[o + 3] = r[i + 3]!
      out[o + 4] = r[i + 4]!
    }
    for (let j = 1; j < n; j++) {
      if (out[j * W] !== out[(j - 1) * W]) continue
      let end = j + 1
      while (end < n && out[end * W] === out[(j - 1) * W]) end++
      const group: Array<Uint32Array> = []
      for (let g = j - 1; g < end; g++) group.push(out.slice(g * W, g * W + W))
      group.sort((a, b) => a[1]! - b[1]! || a[2]! - b[2]! || a[3]! - b[3]!)
      group.forEach((g, x) => out.set(g, (j - 1 + x) * W))
      j = end - 1
    }
    return out
  }
  clear() {
    this.slots.fill(0)
    this.size = 0
  }
}

const tableSize = (capacity: number) => 2 ** Math.ceil(Math.log2(capacity * 2.5))

// ---------------------------------------------------------------------------------------------
// The index
// ---------------------------------------------------------------------------------------------

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
  const file = path.join(stateDir, "ids.json")
  let h: fsp.FileHandle
  try {
    h = await fsp.open(file, O_RDONLY | O_NOFOLLOW | fs.constants.O_NONBLOCK)
  } catch (e) {
    const code = typeof e === "object" && e !== null && "code" in e ? e.code : undefined
    if (code === "ELOOP" || code === "EMLINK") throw new UnsafePath(file, "is a symbolic link")
    return {}
  }
  try {
    if (!(await h.stat()).isFile()) throw new UnsafePath(file, "is not a regular file")
    return parseMeta(await h.readFile("utf8"))?.days ?? {}
  } catch (e) {
    if (e instanceof UnsafePath) throw e
    return {}
  } finally {
    await h.close()
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

  const adding = () => {
    if (syncing) throw new Error("IdIndex: an entry was added during a sync point")
  }

  /** Writes a new run file from `write` and opens it for lookups. */
  const writeRun = async (builder: RunBuilder, write: (h: fsp.FileHandle) => Promise<void>): Promise<Run> => {
    const file = `ids-${++seq}.run`
    const full = path.join(stateDir, file)
    await writeDurably(full, write)
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

  const persistMeta = async () => {
    const m: Meta = {
      version: VERSION,
      endian: ENDIAN,
      seed: seedText,
      seq,
      runs: runs.map((r) => ({ file: r.file, count: r.count })),
      days
    }
    marksChanged = false
    try {
      await writeDurably(metaFile, (h) => writeAll(h, Buffer.from(JSON.stringify(m))))
      await fsyncDir(stateDir)
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
      remember(id)
      const d = lookupDay()
      return d === 0 ? undefined : dayOfNumber(d)
    },
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
    const m: Meta = { version: VERSION, endian: ENDIAN, seed: seedText, seq, runs: [], days }
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
    marksChanged = false
  }
}

/**
 * The mark of an open day file after the sink appended `lines` to it, leaving it `{ ino, size }`:
 * the previous mark's tally plus the new lines when that mark covered exactly the bytes before
 * them (or the file was new), else a mark without a tally (`status` then reads the file).
 */
export const appendedMark = (
  previous: OpenMark | undefined,
  day: string,
  after: { readonly ino: number; readonly size: number },
  lines: ReadonlyArray<string | Uint8Array>
): OpenMark => {
  let bytes = 0
  for (const l of lines) bytes += (typeof l === "string" ? Buffer.byteLength(l, "utf8") : l.byteLength) + 1
  const before = after.size - bytes
  const known = before === 0 ||
    (previous !== undefined && previous.ino === after.ino && previous.size === before && previous.tally !== undefined)
  if (!known) return { ino: after.ino, size: after.size }
  const t = DayTally.start(day, before === 0 ? undefined : previous!.tally)
  for (const l of lines) DayTally.appended(t, l)
  return { ino: after.ino, size: after.size, tally: DayTally.done(t) }
}
