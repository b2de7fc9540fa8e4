/**
 * The fake server's event store: every item kept as the exact bytes it was given, in large shared
 * slabs, with a few columns of metadata beside them. A million events cost their bytes plus a few
 * dozen bytes each, pages are index ranges over a cached ordering, and a page body is a
 * concatenation of byte ranges: nothing is parsed or re-encoded per request.
 *
 * @internal
 */
import type { Order } from "../FakeWebex.js"
import { mulberry32 } from "../SeedOrg.js"
import { movedCreated } from "./hostile.js"
import { parseInstant } from "./instant.js"

/** The filters of `GET /v1/events`, `from`/`to` already parsed to epoch ms. */
export interface Filter {
  readonly resource: string | undefined
  readonly type: string | undefined
  readonly actorId: string | undefined
  readonly from: number | undefined
  readonly to: number | undefined
}

export const isFiltered = (f: Filter) =>
  f.resource !== undefined || f.type !== undefined || f.actorId !== undefined || f.from !== undefined ||
  f.to !== undefined

/** What an entry is: stored by a caller, a moved-day copy the server made, or a copy switched off. */
const STORED = 0
const MOVED = 1
const RETIRED = 2

const SLAB_BYTES = 16 * 1024 * 1024
const DAY_MS = 86_400_000

/** A growable column of numbers in a typed array (a plain array of a million doubles costs twice as much). */
class Column<A extends Float64Array | Uint32Array | Uint8Array> {
  length = 0
  constructor(private data: A, private readonly make: (n: number) => A) {}
  push(value: number): void {
    if (this.length === this.data.length) {
      const grown = this.make(Math.max(1024, this.data.length * 2))
      grown.set(this.data)
      this.data = grown
    }
    this.data[this.length++] = value
  }
  get(i: number): number {
    return this.data[i]!
  }
  set(i: number, value: number): void {
    this.data[i] = value
  }
}

const f64 = () => new Column(new Float64Array(0), (n) => new Float64Array(n))
const u32 = () => new Column(new Uint32Array(0), (n) => new Uint32Array(n))
const u8 = () => new Column(new Uint8Array(0), (n) => new Uint8Array(n))

const encoder = new TextEncoder()
// Lossy on purpose: metadata of an item with invalid UTF-8 is still read; its bytes are kept as given.
const decoder = new TextDecoder("utf-8", { fatal: false })

export class EventStore {
  private readonly slabs: Array<Buffer> = []
  private slabUsed = SLAB_BYTES
  private readonly slabOf = u32()
  private readonly start = u32()
  private readonly size = u32()
  /** Epoch ms; NaN for a malformed item (no string `id`, or `created` missing or not a date). */
  private readonly created = f64()
  private readonly shuffleKey = f64()
  private readonly kind = u8()
  /** Interned strings: a few distinct values shared by a million entries. */
  private readonly resource: Array<string | undefined> = []
  private readonly type: Array<string | undefined> = []
  private readonly actorId: Array<string | undefined> = []
  private readonly interned = new Map<string, string>()
  private readonly random: () => number
  /** Built on the first `GET /v1/events/{id}` only: listing never needs it. */
  private byId: Map<string, number> | undefined
  private ordered: Uint32Array | undefined
  // Walking a large org page by page asks for the same filtered list again and again.
  private readonly cache = new Map<string, Uint32Array>()
  private wellFormedSeen = 0
  private movedEvery = 0

  constructor(private readonly order: Order, seed: number) {
    this.random = mulberry32(seed)
  }

  get length(): number {
    return this.kind.length
  }

  add(events: Iterable<string | object | Uint8Array>): void {
    for (const event of events) {
      const bytes = event instanceof Uint8Array
        ? event
        : typeof event === "string"
        ? event
        : (JSON.stringify(event) ?? "null")
      const index = this.push(bytes, STORED)
      if (this.isWellFormed(index)) {
        this.wellFormedSeen += 1
        if (this.movedEvery > 0 && this.wellFormedSeen % this.movedEvery === 0) this.addMovedCopy(index)
      }
    }
    this.invalidate()
  }

  /**
   * Every `every`th well-formed stored event (in insertion order) gets a copy with the same id and
   * its top-level `created` one day later, listed like any event: the service moved it to another
   * day. `0` retires the copies.
   */
  setMovedEvery(every: number): void {
    if (every === this.movedEvery) return
    for (let i = 0; i < this.length; i++) if (this.kind.get(i) === MOVED) this.kind.set(i, RETIRED)
    this.movedEvery = every
    if (every > 0) {
      let seen = 0
      const stored = this.length
      for (let i = 0; i < stored; i++) {
        if (this.kind.get(i) !== STORED || !this.isWellFormed(i)) continue
        seen += 1
        if (seen % every === 0) this.addMovedCopy(i)
      }
    }
    this.invalidate()
  }

  /** The bytes of entry `index`: a view into a slab, never to be mutated. */
  bytes(index: number): Uint8Array {
    const start = this.start.get(index)
    return this.slabs[this.slabOf.get(index)]!.subarray(start, start + this.size.get(index))
  }

  text(index: number): string {
    return decoder.decode(this.bytes(index))
  }

  createdOf(index: number): number {
    return this.created.get(index)
  }

  /** The stored entry with this id (the first stored, as before), or undefined. */
  get(id: string): number | undefined {
    if (this.byId === undefined) {
      this.byId = new Map()
      for (let i = 0; i < this.length; i++) {
        if (this.kind.get(i) !== STORED) continue
        const id = idOf(this.text(i))
        if (id !== undefined && !this.byId.has(id)) this.byId.set(id, i)
      }
    }
    return this.byId.get(id)
  }

  /** Every stored event as text, in the order it was added (moved copies are the server's, not stored). */
  raws(): ReadonlyArray<string> {
    const out: Array<string> = []
    for (let i = 0; i < this.length; i++) if (this.kind.get(i) === STORED) out.push(this.text(i))
    return out
  }

  /** The current filtered, ordered list of entry indices. Malformed items come first, and only when unfiltered. */
  list(filter: Filter): Uint32Array {
    const key = `${filter.resource}\u0000${filter.type}\u0000${filter.actorId}\u0000${filter.from}\u0000${filter.to}`
    const cached = this.cache.get(key)
    if (cached !== undefined) return cached
    const all = this.sorted()
    let result = all
    if (isFiltered(filter)) {
      const out = new Uint32Array(all.length)
      let n = 0
      for (let k = 0; k < all.length; k++) {
        const i = all[k]!
        const created = this.created.get(i)
        // Compared as instants: `created` may be `...Z` or `+00:00`, and text order would lie.
        if (
          !Number.isNaN(created) &&
          (filter.from === undefined || created >= filter.from) &&
          (filter.to === undefined || created < filter.to) &&
          (filter.resource === undefined || this.resource[i] === filter.resource) &&
          (filter.type === undefined || this.type[i] === filter.type) &&
          (filter.actorId === undefined || this.actorId[i] === filter.actorId)
        ) out[n++] = i
      }
      result = out.slice(0, n)
    }
    if (this.cache.size >= 32) this.cache.clear()
    this.cache.set(key, result)
    return result
  }

  private sorted(): Uint32Array {
    if (this.ordered !== undefined) return this.ordered
    const malformed: Array<number> = []
    const wellFormed: Array<number> = []
    for (let i = 0; i < this.length; i++) {
      if (this.kind.get(i) === RETIRED) continue
      ;(Number.isNaN(this.created.get(i)) ? malformed : wellFormed).push(i)
    }
    // Index order is insertion order: the tie-breaker that keeps an order stable across requests.
    const created = (i: number) => this.created.get(i)
    const byCreated = (a: number, b: number) => created(a) - created(b) || a - b
    wellFormed.sort(
      this.order === "oldest-first"
        ? byCreated
        : this.order === "newest-first"
        ? (a, b) => byCreated(b, a)
        : (a, b) => this.shuffleKey.get(a) - this.shuffleKey.get(b) || a - b
    )
    const ordered = new Uint32Array(malformed.length + wellFormed.length)
    ordered.set(malformed)
    ordered.set(wellFormed, malformed.length)
    this.ordered = ordered
    return ordered
  }

  private invalidate(): void {
    this.ordered = undefined
    this.cache.clear()
  }

  private isWellFormed(index: number): boolean {
    return !Number.isNaN(this.created.get(index))
  }

  private addMovedCopy(index: number): void {
    const moved = movedCreated(this.text(index), DAY_MS)
    // The copy shuffles next to its original and draws nothing from the PRNG, so switching the
    // mode on does not reshuffle what later `addEvents` store.
    if (moved !== undefined) this.push(moved, MOVED, this.shuffleKey.get(index))
  }

  private intern(value: string | undefined): string | undefined {
    if (value === undefined) return undefined
    const known = this.interned.get(value)
    if (known !== undefined) return known
    if (this.interned.size < 100_000) this.interned.set(value, value)
    return value
  }

  /** Appends one item: its bytes into the current slab, its metadata into the columns. */
  private push(input: string | Uint8Array, kind: number, shuffleKey?: number): number {
    const byteLength = typeof input === "string" ? Buffer.byteLength(input) : input.byteLength
    if (this.slabUsed + byteLength > SLAB_BYTES || this.slabs.length === 0) {
      this.slabs.push(Buffer.allocUnsafeSlow(Math.max(SLAB_BYTES, byteLength)))
      this.slabUsed = 0
    }
    const slab = this.slabs[this.slabs.length - 1]!
    if (typeof input === "string") slab.write(input, this.slabUsed, "utf8")
    else slab.set(input, this.slabUsed)
    const index = this.length
    this.slabOf.push(this.slabs.length - 1)
    this.start.push(this.slabUsed)
    this.size.push(byteLength)
    this.slabUsed += byteLength

    const meta = metadataOf(typeof input === "string" ? input : decoder.decode(input))
    this.created.push(meta.created ?? Number.NaN)
    this.shuffleKey.push(shuffleKey ?? this.random())
    this.kind.push(kind)
    this.resource.push(this.intern(meta.resource))
    this.type.push(this.intern(meta.type))
    // Not interned: hashing a million long ids costs more than the strings. Filters compare by value.
    this.actorId.push(meta.actorId)
    const id = meta.id
    if (this.byId !== undefined && kind === STORED && id !== undefined && !this.byId.has(id)) this.byId.set(id, index)
    return index
  }
}

interface Metadata {
  readonly id: string | undefined
  readonly resource: string | undefined
  readonly type: string | undefined
  readonly actorId: string | undefined
  /** Epoch ms; undefined without a string `id`, or when `created` is missing or no date. */
  readonly created: number | undefined
}

/**
 * An item's metadata, parsed once when it is stored (in full: a prefix scan would disagree with JSON
 * on duplicate keys and on items that are not JSON at all, which tests store on purpose).
 */
const metadataOf = (text: string): Metadata => {
  let parsed: unknown
  try {
    parsed = JSON.parse(text)
  } catch {
    parsed = undefined
  }
  const fields = typeof parsed === "object" && parsed !== null ? (parsed as Record<string, unknown>) : {}
  const field = (key: string) => (typeof fields[key] === "string" ? (fields[key] as string) : undefined)
  const id = field("id")
  return {
    id,
    resource: field("resource"),
    type: field("type"),
    actorId: field("actorId"),
    created: id === undefined ? undefined : parseInstant(field("created"))
  }
}

/** The string `id` of an item's text, or undefined. */
const idOf = (text: string): string | undefined => {
  try {
    const parsed: unknown = JSON.parse(text)
    const value = typeof parsed === "object" && parsed !== null ? (parsed as { id?: unknown }).id : undefined
    return typeof value === "string" ? value : undefined
  } catch {
    return undefined
  }
}

/** The fixed parts of a page body as bytes, for assembling pages without strings. */
const PAGE_OPEN = encoder.encode(`{"items":[`)
const PAGE_CLOSE = encoder.encode(`]}`)
const COMMA = 0x2c

/**
 * A list response body holding `parts`, each item as the exact bytes given (no re-encoding):
 * `{"items":[`, the parts separated by commas, `]}`.
 */
export const pageBody = (parts: ReadonlyArray<Uint8Array>): Uint8Array => {
  let length = PAGE_OPEN.length + PAGE_CLOSE.length + Math.max(0, parts.length - 1)
  for (const part of parts) length += part.length
  const body = new Uint8Array(length)
  body.set(PAGE_OPEN, 0)
  let at = PAGE_OPEN.length
  for (let k = 0; k < parts.length; k++) {
    if (k > 0) body[at++] = COMMA
    body.set(parts[k]!, at)
    at += parts[k]!.length
  }
  body.set(PAGE_CLOSE, at)
  return body
}
