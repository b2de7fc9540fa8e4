/**
 * The id index's keys (`idIndex.ts`): 128 bits of MurmurHash3 x86_128 over an id's UTF-16 code
 * units, under the index's random seed, and the in-memory table of new keys.
 *
 * The key being worked on lives in {@link K}, four unsigned words in a typed array (module-level
 * numbers this large would each be boxed: an allocation per word per id).
 *
 * @internal
 */

/** Words (uint32) per record: four of key, one of day. */
export const W = 5

/** The key last computed (or set). */
export const K = new Uint32Array(4)

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
export const hashKey = (id: string, seed: Uint32Array) => {
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
export const cmpAt = (w: Uint32Array, at: number): number => {
  let d = w[at]! - K[0]!
  if (d !== 0) return d
  d = w[at + 1]! - K[1]!
  if (d !== 0) return d
  d = w[at + 2]! - K[2]!
  if (d !== 0) return d
  return w[at + 3]! - K[3]!
}

export const setKey = (w: Uint32Array, at: number) => {
  K[0] = w[at]!
  K[1] = w[at + 1]!
  K[2] = w[at + 2]!
  K[3] = w[at + 3]!
}

/** An open-addressing hash table of key -> day over typed arrays, doubling as it fills. */
export class Memtable {
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

