/**
 * A day's archived ids, as the sink remembers them (`NdjsonSink`'s per-day set): for each id, what
 * tells a repeat of its line from a variant. Either where this process appended the line in the
 * day's open file (offset and length packed into one number: the line is read back to compare, a
 * repeat being rare), or the sha256 of the line's bytes (a line read from disk).
 *
 * Kept in typed arrays, not a `Map` of id strings: an id is remembered by its key in the id index
 * (`IdIndex.hash`: 128 bits under the archive's secret seed), which the sink computes once per
 * event for both. A day costs about 40 bytes per event, outside the JavaScript heap, instead of
 * about 130 inside it, where the garbage collector's headroom multiplies them: two days of a dense
 * backfill (five times the events per day) held 20 MiB of peak RSS as strings.
 *
 * Every method works on the current key, `idKey.K`, which the caller sets.
 *
 * A key shared by two ids (a chance of 2^-128 per pair, with a seed unknown to whoever chooses
 * ids) makes the second look archived: its line differs from the first one's, so the sink keeps it
 * in quarantine as a variant. Never lost, as with the id index's own collisions.
 *
 * @internal
 */
import { Memtable } from "./idKey.js"

const DIGEST = 32

/** Positions pack a length below 1 MiB with an offset below 8 GiB: under 2^53, exact as a number. */
const LENGTH_RANGE = 2 ** 20
const OFFSET_RANGE = 2 ** 33

/** Whether a line of `length` bytes at `offset` can be remembered by its position. */
export const fitsPosition = (offset: number, length: number) => length < LENGTH_RANGE && offset < OFFSET_RANGE

/** The offset and length of a remembered position. */
export const unpackPosition = (position: number): { readonly offset: number; readonly length: number } => {
  const length = position % LENGTH_RANGE
  return { offset: (position - length) / LENGTH_RANGE, length }
}

export class DayIds {
  /** Key -> entry number + 1. */
  private readonly table = new Memtable(256)
  /** Per entry: a packed position (>= 0), or -(digest number + 1). */
  private values = new Float64Array(256)
  /** The digests, 32 bytes each; only days read from disk have any. */
  private digests = new Uint8Array(0)
  private digestCount = 0
  /** The inode of the open file the positions point into. */
  ino: number | undefined = undefined

  get size(): number {
    return this.table.size
  }

  /** Empties the set, keeping its storage for another day. */
  reset(): this {
    this.table.clear()
    this.digestCount = 0
    this.ino = undefined
    return this
  }

  /** What is remembered of the key's line: a packed position, its sha256, or `undefined`. */
  get(): number | Uint8Array | undefined {
    const entry = this.table.get()
    if (entry === 0) return undefined
    const v = this.values[entry - 1]!
    return v >= 0 ? v : this.digests.subarray((-v - 1) * DIGEST, -v * DIGEST)
  }

  /** Remembers the key's line at `offset`, `length` bytes long (see {@link fitsPosition}). */
  setPosition(offset: number, length: number): void {
    this.put(offset * LENGTH_RANGE + length)
  }

  /** Remembers the key's line by its sha256. */
  setDigest(digest: Uint8Array): void {
    const at = this.digestCount * DIGEST
    if (at + DIGEST > this.digests.length) {
      const grown = new Uint8Array(Math.max(64 * DIGEST, this.digests.length * 2))
      grown.set(this.digests)
      this.digests = grown
    }
    this.digests.set(digest, at)
    this.put(-(++this.digestCount))
  }

  private put(value: number): void {
    const entry = this.table.get()
    if (entry !== 0) {
      this.values[entry - 1] = value
      return
    }
    const n = this.table.size
    if (n === this.values.length) {
      const grown = new Float64Array(n * 2)
      grown.set(this.values)
      this.values = grown
    }
    this.values[n] = value
    this.table.set(n + 1)
  }
}
