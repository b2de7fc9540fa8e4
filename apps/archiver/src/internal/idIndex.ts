/**
 * The persistent id -> day index (`state/ids.idx`): which day's file holds each archived event,
 * so that an id served again under another day (the service moved its `created`) is recognised
 * without keeping every id in memory.
 *
 * Layout: a 32-byte header (`WXIDX001`, slot count, entry count) then an open-addressing hash
 * table of 20-byte slots: the first 16 bytes of sha256(id) and the day (days since 1970 + 1;
 * 0 marks an empty slot). Lookups and inserts are positioned reads and writes of a few slots, so
 * memory stays flat whatever the archive's size; the kernel's page cache does the caching. When
 * the table is 60% full it is rebuilt at twice the size into a new file, renamed over the old.
 *
 * The index is derived data: the day files are the truth. `state/ids.json` records, per day, what
 * has been indexed (sealed segments by name, the open file by inode and length). It is written
 * only at sync points (every few batches, after the table is fsync'd), so after a crash the
 * index is behind by at most those batches and {@link IdIndex.reconcile} re-reads just the
 * files' tails. Entries are inserted only after their lines are durably appended, so the index
 * never claims an id the archive does not hold. A damaged index is rebuilt from the archive.
 *
 * The reads and writes are synchronous: each touches one page-cache page, and an async round
 * trip per slot would cost more than the I/O itself.
 *
 * @internal
 */
import { createHash, randomBytes } from "node:crypto"
import * as fs from "node:fs"
import * as path from "node:path"
import { UnsafePath } from "./errors.js"
import { FILE_MODE } from "./layout.js"

const MAGIC = "WXIDX001"
const HEADER = 32
const SLOT = 20
const KEY = 16
const WINDOW = 8
const INITIAL_SLOTS = 1 << 16
const MAX_LOAD = 0.6

const { O_RDWR, O_CREAT, O_EXCL, O_NOFOLLOW, O_RDONLY } = fs.constants

const DAY_MS = 86_400_000

/** `YYYY-MM-DD` as days since 1970 + 1 (so that 0 can mark an empty slot). */
export const dayNumber = (day: string): number => Date.parse(`${day}T00:00:00.000Z`) / DAY_MS + 1
export const dayOfNumber = (n: number): string => new Date((n - 1) * DAY_MS).toISOString().slice(0, 10)

/** The index key of an id: 128 bits of its sha256 (a collision only quarantines, never drops). */
export const keyOf = (id: string): Buffer => createHash("sha256").update(id, "utf8").digest().subarray(0, KEY)

const openNoFollowSync = (file: string, flags: number, mode?: number): number => {
  try {
    const fd = fs.openSync(file, flags | O_NOFOLLOW, mode)
    if (!fs.fstatSync(fd).isFile()) {
      fs.closeSync(fd)
      throw new UnsafePath(file, "is not a regular file")
    }
    return fd
  } catch (e) {
    const code = typeof e === "object" && e !== null && "code" in e ? e.code : undefined
    if (code === "ELOOP" || code === "EMLINK") throw new UnsafePath(file, "is a symbolic link")
    throw e
  }
}

const readFull = (fd: number, buf: Buffer, pos: number): number => {
  let off = 0
  while (off < buf.length) {
    const n = fs.readSync(fd, buf, off, buf.length - off, pos + off)
    if (n === 0) break
    off += n
  }
  // Past the end of the file (a table only partly written out): empty slots.
  if (off < buf.length) buf.fill(0, off)
  return off
}

const writeFull = (fd: number, buf: Uint8Array, pos: number) => {
  let off = 0
  while (off < buf.length) off += fs.writeSync(fd, buf, off, buf.length - off, pos + off)
}

/** What is indexed of one day (see the module comment). */
export interface DayMark {
  readonly segments: ReadonlyArray<string>
  readonly open?: { readonly ino: number; readonly size: number } | undefined
}

interface Meta {
  readonly version: 1
  readonly slots: number
  readonly days: Record<string, DayMark>
}

export interface IdIndex {
  /** The day holding `key`, or `undefined`. */
  readonly lookup: (key: Buffer) => string | undefined
  /**
   * Records `key` under `day` unless it is there already; returns the day it was already under
   * (so a caller indexing the archive learns of ids held by two days).
   */
  readonly insert: (key: Buffer, day: string) => string | undefined
  /** What is recorded as indexed for `day`. */
  readonly mark: (day: string) => DayMark | undefined
  /** Records what is now indexed for `day` (persisted at the next sync point). */
  readonly setMark: (day: string, mark: DayMark) => void
  /** fsyncs the table and persists the marks: after this, a restart need not re-read anything. */
  readonly sync: () => void
  /** Number of entries. */
  readonly size: () => number
  readonly close: () => void
}

/** Opens (or creates) the index in `stateDir`; a damaged one is discarded and started afresh. */
export const open = (stateDir: string): { readonly index: IdIndex; readonly rebuilt: boolean } => {
  const file = path.join(stateDir, "ids.idx")
  const metaFile = path.join(stateDir, "ids.json")
  let meta: Meta | undefined
  let rebuilt = false
  let fd: number
  let slots: number
  let count: number

  const readMeta = (): Meta | undefined => {
    let mfd: number
    try {
      mfd = openNoFollowSync(metaFile, O_RDONLY)
    } catch (e) {
      if (e instanceof UnsafePath) throw e
      return undefined
    }
    try {
      const v = JSON.parse(fs.readFileSync(mfd, "utf8")) as Meta
      return v.version === 1 && typeof v.slots === "number" && typeof v.days === "object" ? v : undefined
    } catch {
      return undefined
    } finally {
      fs.closeSync(mfd)
    }
  }

  const header = (n: number, c: number) => {
    const h = Buffer.alloc(HEADER)
    h.write(MAGIC, 0, "latin1")
    h.writeUInt32LE(n, 8)
    h.writeUInt32LE(c, 12)
    return h
  }

  const create = (target: string, n: number): number => {
    try {
      fs.unlinkSync(target)
    } catch {
      // absent
    }
    const f = openNoFollowSync(target, O_RDWR | O_CREAT | O_EXCL, FILE_MODE)
    fs.fchmodSync(f, FILE_MODE)
    // Sparse: the slots read as zeros (empty) until written.
    fs.ftruncateSync(f, HEADER + n * SLOT)
    writeFull(f, header(n, 0), 0)
    return f
  }

  meta = readMeta()
  let existing: number | undefined
  try {
    existing = openNoFollowSync(file, O_RDWR)
  } catch (e) {
    if (e instanceof UnsafePath) throw e
    existing = undefined
  }
  const h = Buffer.alloc(HEADER)
  if (existing !== undefined) readFull(existing, h, 0)
  const okHeader = existing !== undefined && h.toString("latin1", 0, 8) === MAGIC &&
    meta !== undefined && h.readUInt32LE(8) === meta.slots &&
    fs.fstatSync(existing).size === HEADER + meta.slots * SLOT
  if (okHeader) {
    fd = existing!
    slots = h.readUInt32LE(8)
    count = h.readUInt32LE(12)
  } else {
    if (existing !== undefined) fs.closeSync(existing)
    rebuilt = existing !== undefined || meta !== undefined
    fd = create(file, INITIAL_SLOTS)
    slots = INITIAL_SLOTS
    count = 0
    meta = { version: 1, slots, days: {} }
  }
  const fresh = !okHeader
  const days: Record<string, DayMark> = { ...(meta?.days ?? {}) }

  const win = Buffer.alloc(WINDOW * SLOT)

  /** The slot holding `key`, or the empty slot where it would go. */
  const probe = (f: number, n: number, key: Buffer): { readonly slot: number; readonly day: number } => {
    let slot = key.readUInt32LE(0) & (n - 1)
    for (let seen = 0; seen < n; seen += WINDOW) {
      const len = Math.min(WINDOW, n - slot)
      readFull(f, win.subarray(0, len * SLOT), HEADER + slot * SLOT)
      for (let i = 0; i < len; i++) {
        const off = i * SLOT
        const day = win.readUInt32LE(off + KEY)
        if (day === 0 || win.compare(key, 0, KEY, off, off + KEY) === 0) return { slot: slot + i, day }
      }
      slot = (slot + len) & (n - 1)
    }
    throw new Error("id index full")
  }

  const put = (f: number, n: number, key: Buffer, day: number) => {
    const at = probe(f, n, key)
    const s = Buffer.alloc(SLOT)
    key.copy(s, 0, 0, KEY)
    s.writeUInt32LE(day, KEY)
    writeFull(f, s, HEADER + at.slot * SLOT)
  }

  const writeMeta = () => {
    // A random name, swept by the archive's start-up like every temporary file of ours.
    const tmp = `${metaFile}.${randomBytes(6).toString("hex")}.tmp`
    const mfd = openNoFollowSync(tmp, fs.constants.O_WRONLY | O_CREAT | O_EXCL, FILE_MODE)
    try {
      fs.fchmodSync(mfd, FILE_MODE)
      fs.writeFileSync(mfd, JSON.stringify({ version: 1, slots, days } satisfies Meta))
      fs.fsyncSync(mfd)
    } finally {
      fs.closeSync(mfd)
    }
    fs.renameSync(tmp, metaFile)
  }

  const sync = () => {
    writeFull(fd, header(slots, count), 0)
    fs.fsyncSync(fd)
    writeMeta()
  }

  /** Rebuilds the table at twice the size, streaming the old one in chunks. */
  const grow = () => {
    const n = slots * 2
    const tmp = `${file}.grow`
    const f = create(tmp, n)
    const chunk = Buffer.alloc(4096 * SLOT)
    for (let s = 0; s < slots; s += 4096) {
      const len = Math.min(4096, slots - s)
      readFull(fd, chunk.subarray(0, len * SLOT), HEADER + s * SLOT)
      for (let i = 0; i < len; i++) {
        const day = chunk.readUInt32LE(i * SLOT + KEY)
        if (day !== 0) put(f, n, chunk.subarray(i * SLOT, i * SLOT + KEY), day)
      }
    }
    writeFull(f, header(n, count), 0)
    fs.fsyncSync(f)
    fs.renameSync(tmp, file)
    fs.closeSync(fd)
    fd = f
    slots = n
    writeMeta()
  }

  const index: IdIndex = {
    lookup: (key) => {
      const { day } = probe(fd, slots, key)
      return day === 0 ? undefined : dayOfNumber(day)
    },
    insert: (key, day) => {
      const at = probe(fd, slots, key)
      if (at.day !== 0) return dayOfNumber(at.day)
      const s = Buffer.alloc(SLOT)
      key.copy(s, 0, 0, KEY)
      s.writeUInt32LE(dayNumber(day), KEY)
      writeFull(fd, s, HEADER + at.slot * SLOT)
      count++
      if (count > slots * MAX_LOAD) grow()
      return undefined
    },
    mark: (day) => days[day],
    setMark: (day, mark) => {
      days[day] = mark
    },
    sync,
    size: () => count,
    close: () => {
      try {
        fs.closeSync(fd)
      } catch {
        // already closed
      }
    }
  }
  // A new table is described at once, so that the next open does not take it for a damaged one.
  if (fresh) sync()
  return { index, rebuilt }
}
