/**
 * What an open day file holds, as `status` reports it: events per resource, the `created` range,
 * damage. Kept in the id index's per-day mark (`idIndex.ts`) for the file's first `size` bytes, so
 * `status` answers without reading event files (issue 8), and computed here in one place for all
 * three who keep it: the sink as it appends, the sink's reconcile as it reads, `status` for the
 * tail of a file past its mark (or a whole file without a usable mark).
 *
 * @internal
 */
import { forEachLineBytes } from "./lines.js"

/** The counts of (a prefix of) one open day file. Plain data: it is stored as JSON. */
export interface DayTally {
  /** Lines that are JSON objects. */
  readonly events: number
  readonly byResource: Readonly<Record<string, number>>
  /** Lines that are not JSON objects. */
  readonly unreadable: number
  /** Events whose `created` falls on another UTC day than the file's. */
  readonly misfiled: number
  /** Lines whose id appeared earlier in the same counted part of the file. */
  readonly duplicates: number
  /** The earliest and latest `created`, as written, with their instants (first seen wins a tie). */
  readonly earliest: Created | null
  readonly latest: Created | null
}

export interface Created {
  readonly ms: number
  readonly text: string
}

/** A resource of an event without a string `resource`. */
export const UNKNOWN_RESOURCE = "(no resource)"

/** A tally being built (the same shape, mutable). */
export interface Tally {
  events: number
  byResource: Record<string, number>
  unreadable: number
  misfiled: number
  duplicates: number
  earliest: Created | null
  latest: Created | null
  readonly day: string
  /** `day`'s first instant; an event outside [dayStart, dayStart + 1 day) is misfiled. */
  readonly dayStart: number
}

const DAY_MS = 86_400_000

/**
 * Adds `by` to `counts[key]`. Own properties only: a resource named like an `Object.prototype`
 * member (`valueOf`, `__proto__`) is a count like any other.
 */
export const bump = (counts: Record<string, number>, key: string, by: number) => {
  if (Object.hasOwn(counts, key)) counts[key]! += by
  else Object.defineProperty(counts, key, { value: by, writable: true, enumerable: true, configurable: true })
}

/** An empty tally for a file of `day` (`YYYY-MM-DD`), or one continuing `from`. */
export const start = (day: string, from?: DayTally): Tally => ({
  events: from?.events ?? 0,
  byResource: { ...from?.byResource },
  unreadable: from?.unreadable ?? 0,
  misfiled: from?.misfiled ?? 0,
  duplicates: from?.duplicates ?? 0,
  earliest: from?.earliest ?? null,
  latest: from?.latest ?? null,
  day,
  dayStart: Date.parse(`${day}T00:00:00.000Z`)
})

/** The stored form of a tally. */
export const done = (t: Tally): DayTally => ({
  events: t.events,
  byResource: t.byResource,
  unreadable: t.unreadable,
  misfiled: t.misfiled,
  duplicates: t.duplicates,
  earliest: t.earliest,
  latest: t.latest
})

const digits = (s: string, at: number, n: number): number => {
  let v = 0
  for (let i = at; i < at + n; i++) {
    const c = s.charCodeAt(i) - 0x30
    if (c < 0 || c > 9) return -1
    v = v * 10 + c
  }
  return v
}

/**
 * The instant of the `created` text `s[at, end)` when it is in the API's usual layout on the
 * file's own day (`DAYTHH:MM:SS.sssZ`), by arithmetic: what `Date.parse` gives for it, without
 * its cost. NaN for any other text (which `Date.parse` then judges).
 */
const onDayMs = (t: Tally, s: string, at: number, end: number): number => {
  if (
    end - at !== 24 || s.charCodeAt(at + 23) !== 0x5a || s.charCodeAt(at + 10) !== 0x54 ||
    s.charCodeAt(at + 13) !== 0x3a || s.charCodeAt(at + 16) !== 0x3a || s.charCodeAt(at + 19) !== 0x2e ||
    !s.startsWith(t.day, at)
  ) return NaN
  const h = digits(s, at + 11, 2)
  const m = digits(s, at + 14, 2)
  const sec = digits(s, at + 17, 2)
  const milli = digits(s, at + 20, 3)
  // Hour 24 is a valid instant of the next day for Date.parse: left to it.
  if (h < 0 || h > 23 || m < 0 || m > 59 || sec < 0 || sec > 59 || milli < 0) return NaN
  return t.dayStart + h * 3_600_000 + m * 60_000 + sec * 1000 + milli
}

/**
 * Counts an event of `resource` created at the text `s[at, end)` (`end` < 0: no string
 * `created`). The text is only copied out when it becomes an end of the range.
 */
const see = (t: Tally, resource: string, s: string, at: number, end: number) => {
  t.events++
  bump(t.byResource, resource, 1)
  if (end < 0) return
  let ms = onDayMs(t, s, at, end)
  if (Number.isNaN(ms)) {
    ms = Date.parse(at === 0 && end === s.length ? s : s.slice(at, end))
    if (Number.isNaN(ms)) return
    if (ms < t.dayStart || ms >= t.dayStart + DAY_MS) t.misfiled++
  }
  const newEarliest = t.earliest === null || ms < t.earliest.ms
  const newLatest = t.latest === null || ms > t.latest.ms
  if (!newEarliest && !newLatest) return
  const created = at === 0 && end === s.length ? s : s.slice(at, end)
  if (newEarliest) t.earliest = { ms, text: created }
  if (newLatest) t.latest = { ms, text: created }
}

const seeText = (t: Tally, resource: string, created: string | undefined) =>
  see(t, resource, created ?? "", 0, created === undefined ? -1 : created.length)

/**
 * Counts one line read from a file: parsed in full, so that damage is seen. `ids` holds the ids
 * of the lines counted before it, for duplicates.
 */
export const lineBytes = (t: Tally, bytes: Buffer, ids: Set<string> | undefined) => {
  let text = bytes.toString("utf8")
  if (text.endsWith("\r")) text = text.slice(0, -1)
  let v: unknown
  try {
    v = JSON.parse(text)
  } catch {
    t.unreadable++
    return
  }
  if (typeof v !== "object" || v === null || Array.isArray(v)) {
    t.unreadable++
    return
  }
  const e = v as { id?: unknown }
  if (ids !== undefined && typeof e.id === "string") {
    if (ids.has(e.id)) t.duplicates++
    else ids.add(e.id)
  }
  fields(t, bytes, v)
}

/**
 * Counts one line the sink has just appended: a JSON object the library decoded, whose id the
 * day did not hold. Once per archived event, so not parsed: see {@link fields}.
 */
export const appended = (t: Tally, line: Uint8Array) => fields(t, asBuffer(line))

/** A Buffer over the same memory (the line scanners use Buffer's latin1 and indexOf). */
const asBuffer = (b: Uint8Array): Buffer => Buffer.isBuffer(b) ? b : Buffer.from(b.buffer, b.byteOffset, b.byteLength)

/** What the caller may already know of an appended event (its decoded `resource` and `created`). */
export interface Known {
  readonly resource?: string | undefined
  readonly createdMillis?: number | undefined
}

/**
 * {@link appended} for lines the sink just appended, with what the caller decoded of each
 * (`hints[k]` for `lines[k]`): counted from the hints, and only the batch's earliest and latest
 * lines read (for their `created` text as written, which the tally keeps). A backfill appends in
 * `created` order, so nearly every line is a new latest: reading each one's text, as
 * {@link appended} does, was most of the tally's cost. Lines without a complete hint send the
 * whole batch through {@link appended}. The same counts, for any line without duplicate keys.
 */
export const appendedAll = (
  t: Tally,
  lines: ReadonlyArray<Uint8Array>,
  hints: ReadonlyArray<Known | undefined> | undefined
) => {
  const complete = hints !== undefined && hints.length === lines.length &&
    hints.every((h) => h?.resource !== undefined && h.createdMillis !== undefined)
  if (!complete) {
    for (const l of lines) appended(t, l)
    return
  }
  let minK = -1
  let maxK = -1
  let minMs = Infinity
  let maxMs = -Infinity
  for (let k = 0; k < lines.length; k++) {
    // Both present: checked above.
    const ms = hints[k]!.createdMillis as number
    const resource = hints[k]!.resource as string
    t.events++
    bump(t.byResource, resource, 1)
    if (ms < t.dayStart || ms >= t.dayStart + DAY_MS) t.misfiled++
    // Strictly: of equal instants the first seen stays, as in `see`.
    if (ms < minMs) (minMs = ms), (minK = k)
    if (ms > maxMs) (maxMs = ms), (maxK = k)
  }
  if (minK >= 0 && (t.earliest === null || minMs < t.earliest.ms)) {
    const text = createdText(lines[minK]!)
    if (text !== undefined) t.earliest = { ms: minMs, text }
  }
  if (maxK >= 0 && (t.latest === null || maxMs > t.latest.ms)) {
    const text = createdText(lines[maxK]!)
    if (text !== undefined) t.latest = { ms: maxMs, text }
  }
}

/** The `created` text of a line as written (the first top-level one), found as {@link fields} finds it. */
const createdText = (line: Uint8Array): string | undefined => {
  const b = asBuffer(line)
  if (prefixFields(b) || walkFields(b)) return foundEnd < 0 ? undefined : foundIn.slice(foundAt, foundEnd)
  try {
    const e = JSON.parse(b.toString("utf8")) as { created?: unknown }
    return typeof e.created === "string" ? e.created : undefined
  } catch {
    return undefined
  }
}

/**
 * Counts the event of a JSON object line by its top-level `resource` and `created`. Found without
 * parsing the line: the first top-level occurrence of each (as a reader scanning the line meets
 * them; for the duplicate keys no sound event has, `JSON.parse` would take the last). Only when
 * the line has escapes or spacing where those keys are does it fall back to `parsed` (made if
 * not given): the same answer for any line without duplicate keys.
 */
const fields = (t: Tally, b: Buffer, parsed?: unknown) => {
  if (prefixFields(b) || walkFields(b)) {
    see(t, foundResource ?? UNKNOWN_RESOURCE, foundIn, foundAt, foundEnd)
    return
  }
  let e = parsed
  if (e === undefined) {
    try {
      e = JSON.parse(b.toString("utf8"))
    } catch {
      e = undefined
    }
    if (typeof e !== "object" || e === null || Array.isArray(e)) {
      t.unreadable++
      return
    }
  }
  const { created, resource } = e as { resource?: unknown; created?: unknown }
  seeText(t, typeof resource === "string" ? resource : UNKNOWN_RESOURCE, typeof created === "string" ? created : undefined)
}

// What the last extraction found: the values of the first top-level `resource` and `created`,
// `undefined` when absent or not a string.
let foundResource: string | undefined
// The text of `created` is foundIn[foundAt, foundEnd); foundEnd < 0 when there is none.
let foundIn = ""
let foundAt = 0
let foundEnd = -1

/** How much of a line is searched first (the keys come early in the API's events), then 8 times as much. */
const PREFIX = 512

/**
 * The common case, with a few string searches: both keys, compact (`,"key":"`), with plain ASCII
 * string values, in the line's first 512 bytes (or 4 KB), and no `{` before them (so they are at the top
 * level: in valid JSON, `,"key":` cannot occur inside a string, whose quotes are escaped).
 */
const prefixFields = (b: Buffer): boolean => {
  if (b.length > PREFIX && prefixOf(b, PREFIX)) return true
  return prefixOf(b, Math.min(b.length, 8 * PREFIX))
}

// Buffer's own latin1Slice: `toString("latin1", …)` is the same call behind argument checks
// that cost as much as the copy for a short prefix.
const latin1: (b: Buffer, end: number) => string =
  typeof (Buffer.prototype as { latin1Slice?: unknown }).latin1Slice === "function"
    ? (b, end) => (b as unknown as { latin1Slice: (start: number, end: number) => string }).latin1Slice(0, end)
    : (b, end) => b.toString("latin1", 0, end)

const prefixOf = (b: Buffer, length: number): boolean => {
  const s = latin1(b, length)
  const r = resourceValue(s)
  if (r < 0) return false
  const c = valueAt(s, s.indexOf("\"created\":\""), 11)
  if (c < 0) return false
  const re = s.indexOf("\"", r)
  const ce = s.indexOf("\"", c)
  if (re < 0 || ce < 0) return false
  const last = re > ce ? re : ce
  // A key inside a nested value has that object's `{` before it (an array holds keys only in
  // objects), so one search tells whether both are at the top level.
  const brace = s.indexOf("{", 1)
  if (brace >= 0 && brace < last) return false
  if (!plain(s, r, re) || !plain(s, c, ce)) return false
  foundResource = resourceAt(s, r, re)
  foundIn = s
  foundAt = c
  foundEnd = ce
  return true
}

// The few resource names recur on every line: found again in place, not copied out each time.
const names: Array<string> = []
const resourceAt = (s: string, at: number, end: number): string => {
  for (const name of names) if (name.length === end - at && s.startsWith(name, at)) return name
  const name = s.slice(at, end)
  if (names.length >= 32) names.shift()
  names.push(name)
  return name
}

/**
 * Where the value of the first `"resource":"` key starts, or -1. The API sends it right after the
 * id (`{"id":"…","resource":"`), found there without a search; else searched for.
 */
const resourceValue = (s: string): number => {
  if (s.startsWith("{\"id\":\"")) {
    const q = s.indexOf("\"", 7)
    // No quote in a string is unescaped, so this is the id's end unless the id has an escaped
    // quote, and then the test below fails on its backslash.
    if (q > 0 && s.charCodeAt(q + 1) === 0x2c && s.startsWith("\"resource\":\"", q + 2)) return q + 14
  }
  return valueAt(s, s.indexOf("\"resource\":\""), 12)
}

/** Where the value of the key found at `at` (the key's text `len` long) starts, or -1. */
const valueAt = (s: string, at: number, len: number): number => {
  if (at <= 0) return -1
  const before = s.charCodeAt(at - 1)
  return before === 0x2c || (before === 0x7b && at === 1) ? at + len : -1
}

/** No escape and no non-ASCII byte (whose latin1 reading would differ from its UTF-8 one). */
const plain = (s: string, from: number, to: number): boolean => {
  for (let i = from; i < to; i++) {
    const c = s.charCodeAt(i)
    if (c === 0x5c || c >= 0x80) return false
  }
  return true
}

const QUOTE = 0x22
const BACKSLASH = 0x5c
const RESOURCE = Buffer.from("resource")
const CREATED = Buffer.from("created")

const isWs = (c: number | undefined) => c === 0x20 || c === 0x09 || c === 0x0a || c === 0x0d
const keyIs = (b: Uint8Array, at: number, len: number, key: Uint8Array) => {
  if (len !== key.length) return false
  for (let i = 0; i < len; i++) if (b[at + i] !== key[i]) return false
  return true
}

/**
 * The general case: walks the top level of the object (nested values skipped by bracket depth)
 * until both keys are met or it ends. False if the line is not the simple case (an escaped key, an
 * escaped value of interest): the caller parses it.
 */
const walkFields = (b: Buffer): boolean => {
  let res: string | undefined | null = null
  let cre: string | undefined | null = null
  const n = b.length
  let i = 0
  while (isWs(b[i])) i++
  if (b[i] !== 0x7b) return false
  i++
  while (isWs(b[i])) i++
  if (b[i] !== 0x7d) {
    for (;;) {
      if (b[i] !== QUOTE) return false
      const ks = ++i
      while (i < n && b[i] !== QUOTE) {
        if (b[i] === BACKSLASH) return false
        i++
      }
      if (i >= n) return false
      const kl = i - ks
      const which = res === null && keyIs(b, ks, kl, RESOURCE) ? 1 : cre === null && keyIs(b, ks, kl, CREATED) ? 2 : 0
      i++
      while (isWs(b[i])) i++
      if (b[i] !== 0x3a) return false
      i++
      while (isWs(b[i])) i++
      const c = b[i]
      let value: string | undefined = undefined
      if (c === QUOTE) {
        const vs = ++i
        let escaped = false
        while (i < n && b[i] !== QUOTE) {
          if (b[i] === BACKSLASH) {
            escaped = true
            i++
          }
          i++
        }
        if (i >= n) return false
        // An escaped value of interest is decoded by JSON.parse (the caller's fallback).
        if (escaped && which !== 0) return false
        if (which !== 0) value = b.toString("utf8", vs, i)
        i++
      } else if (c === 0x7b || c === 0x5b) {
        let depth = 1
        i++
        while (depth > 0) {
          if (i >= n) return false
          const d = b[i]
          if (d === QUOTE) {
            i++
            while (i < n && b[i] !== QUOTE) {
              if (b[i] === BACKSLASH) i++
              i++
            }
          } else if (d === 0x7b || d === 0x5b) {
            depth++
          } else if (d === 0x7d || d === 0x5d) {
            depth--
          }
          i++
        }
      } else {
        // A number or a literal: up to the next separator.
        const s = i
        while (i < n && b[i] !== 0x2c && b[i] !== 0x7d && !isWs(b[i])) i++
        if (i === s) return false
      }
      if (which === 1) res = value
      else if (which === 2) cre = value
      if (res !== null && cre !== null) break
      while (isWs(b[i])) i++
      if (b[i] === 0x2c) {
        i++
        while (isWs(b[i])) i++
        continue
      }
      if (b[i] !== 0x7d) return false
      break
    }
  }
  foundResource = res ?? undefined
  foundIn = cre ?? ""
  foundAt = 0
  foundEnd = cre === null || cre === undefined ? -1 : cre.length
  return true
}

/** Whether `v` (read back from disk) has the shape of a {@link DayTally}. */
export const isDayTally = (v: unknown): v is DayTally => {
  if (typeof v !== "object" || v === null) return false
  const t = v as Record<string, unknown>
  const count = (x: unknown) => typeof x === "number" && Number.isSafeInteger(x) && x >= 0
  const created = (x: unknown) =>
    x === null ||
    (typeof x === "object" && typeof (x as Created).ms === "number" && typeof (x as Created).text === "string" &&
      Date.parse((x as Created).text) === (x as Created).ms)
  return count(t.events) && count(t.unreadable) && count(t.misfiled) && count(t.duplicates) &&
    typeof t.byResource === "object" && t.byResource !== null && !Array.isArray(t.byResource) &&
    Object.values(t.byResource).every(count) && created(t.earliest) && created(t.latest)
}

/**
 * `prior` (what a mark says the file's first `from` bytes hold; none: counting from the start)
 * continued over the lines of `file` past `from`, each line also handed to `onLine`. Duplicates are
 * counted within the part read (the sink never appends one). Returns the tally and how far the
 * file was read: the one reading of an open day file for its counts, by `status` and by reconcile.
 */
export const readOn = async (
  day: string,
  file: string,
  prior: DayTally | undefined,
  from: number,
  signal: AbortSignal,
  onLine?: (line: Buffer) => void
): Promise<{ readonly tally: DayTally; readonly size: number }> => {
  const t = start(day, prior)
  const ids = new Set<string>()
  const size = await forEachLineBytes(file, (line) => {
    onLine?.(line)
    lineBytes(t, line, ids)
  }, { signal, start: from })
  return { tally: done(t), size }
}
