/**
 * The id index's runs (`idIndex.ts`): immutable sorted files of 20-byte records (a key's four
 * words, then a day number), each with a Bloom filter and every FENCE_EVERY-th key in memory,
 * built as the records are written and rebuilt from the file when the index is opened; and the
 * link-refusing synchronous open (`openNoFollowSync`) they are read through.
 *
 * @internal
 */
import * as fs from "node:fs"
import * as path from "node:path"
import { promisify } from "node:util"
import { UnsafePath } from "./errors.js"
import { cmpAt, K, setKey, W } from "./idKey.js"

export const REC = W * 4
const FENCE_EVERY = 128
const BLOOM_BITS_PER_KEY = 10
const BLOOM_HASHES = 7

const { O_RDONLY, O_NOFOLLOW } = fs.constants

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

export const openNoFollowSync = (file: string, flags: number, mode?: number): number => {
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

export const readAtAsync = async (fd: number, buf: Uint8Array, pos: number): Promise<number> => {
  let off = 0
  while (off < buf.length) {
    const { bytesRead } = await readAsync(fd, buf, off, buf.length - off, pos + off)
    if (bytesRead === 0) break
    off += bytesRead
  }
  return off
}

/** One immutable sorted run: its file, and in memory its Bloom filter and sparse keys. */
export interface Run {
  readonly file: string
  readonly count: number
  readonly fd: number
  readonly bits: number
  readonly bloom: Uint8Array
  /** Every FENCE_EVERY-th key, four words each. */
  readonly fences: Uint32Array
}

/** Builds a run's Bloom filter and fences from its records as they go by, in key order. */
export class RunBuilder {
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
export const wordBuffer = (records: number) => {
  const ab = new ArrayBuffer(records * REC)
  return { bytes: Buffer.from(ab), words: new Uint32Array(ab) }
}

export const CHUNK = 4096

/** Opens a listed run and rebuilds its Bloom filter and fences from it (at start). */
export const loadRun = (dir: string, file: string, count: number): Run => {
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

const block = wordBuffer(FENCE_EVERY)

/** The day recorded for the current key K in `run`, or 0. */
export const findInRun = (run: Run): number => {
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

