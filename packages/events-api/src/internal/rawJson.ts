/**
 * Finds the bytes of each element of a JSON body's top-level `items` array.
 *
 * `JSON.parse` followed by `JSON.stringify` is not what the server sent: number spellings
 * (`1.0`, `1e3`), escapes (`\u00e9`) and precision beyond 2^53 change. The archive must keep
 * the item exactly as sent, so each item is cut out of the body itself, and out of its BYTES,
 * not of a decoded string: a body that is not valid UTF-8 is decoded lossily (U+FFFD), and only
 * the bytes still hold what the server sent.
 *
 * Scanning bytes is sound for UTF-8 (valid or not): every structural character of JSON is ASCII,
 * and no byte of a multi-byte sequence (or a stray byte >= 0x80) is below 0x80.
 *
 * This scanner finds boundaries; it does not validate, which keeps it small. What it finds in a
 * body is what `JSON.parse` reads only when the body is valid JSON: callers parse the body first,
 * or check each piece the scan found with `JSON.parse` (`pageDecoder`'s grouped parse).
 */

import { nodeBuffer, view } from "./nodeBuffer.js"

/** 3 when `b` starts with a UTF-8 byte-order mark (which `TextDecoder` drops, as JSON readers do), else 0. */
export const bomLength = (b: Uint8Array): number => (b.length >= 3 && b[0] === 0xef && b[1] === 0xbb && b[2] === 0xbf ? 3 : 0)

const QUOTE = 0x22
const BACKSLASH = 0x5c

const isWs = (c: number) => c === 0x20 || c === 0x09 || c === 0x0a || c === 0x0d

/** Whether `b[from, to)` is JSON whitespace only. */
export const isBlank = (b: Uint8Array, from: number, to: number): boolean => {
  for (let i = from; i < to; i++) if (!isWs(b[i]!)) return false
  return true
}

const skipWs = (b: Uint8Array, i: number): number => {
  while (i < b.length && isWs(b[i]!)) i++
  return i
}

/**
 * Index just past the string literal starting at `i` (which holds `"`). Jumps from quote to quote
 * with the native `indexOf` (strings are most of a body's bytes); a quote is the closing one when
 * an even number of backslashes precede it.
 */
const endOfString = (b: Uint8Array, i: number): number => {
  let from = i + 1
  for (;;) {
    const q = b.indexOf(QUOTE, from)
    if (q === -1) return b.length
    let k = q - 1
    while (k > i && b[k] === BACKSLASH) k--
    if ((q - 1 - k) % 2 === 0) return q + 1
    from = q + 1
  }
}

/** Index just past the JSON value starting at `i`. */
const endOfValue = (b: Uint8Array, i: number): number => {
  const c = b[i]
  if (c === QUOTE) return endOfString(b, i)
  if (c === 0x7b /* { */ || c === 0x5b /* [ */) {
    let depth = 0
    while (i < b.length) {
      const ch = b[i]!
      if (ch === QUOTE) {
        i = endOfString(b, i)
        continue
      }
      if (ch === 0x7b || ch === 0x5b) depth++
      else if (ch === 0x7d /* } */ || ch === 0x5d /* ] */) {
        depth--
        if (depth === 0) return i + 1
      }
      i++
    }
    return i
  }
  // A number or a literal: up to the next delimiter.
  while (i < b.length) {
    const ch = b[i]!
    if (ch === 0x2c || ch === 0x7d || ch === 0x5d || isWs(ch)) break
    i++
  }
  return i
}

const ITEMS = [0x22, 0x69, 0x74, 0x65, 0x6d, 0x73, 0x22] // "items"

const utf8 = new TextDecoder("utf-8")

/** Whether the key literal in `b[start, end)` names `items` (spelt plainly or with escapes). */
const isItemsKey = (b: Uint8Array, start: number, end: number): boolean => {
  if (end - start === ITEMS.length) {
    let same = true
    for (let k = 0; k < ITEMS.length; k++) {
      if (b[start + k] !== ITEMS[k]) {
        same = false
        break
      }
    }
    if (same) return true
  }
  // `"\u0069tems"` is the same key to JSON.parse; rare enough to decode properly. A key that is
  // not a JSON string (a scan before any parse meets such bodies) is not `items`.
  if (!b.subarray(start, end).includes(BACKSLASH)) return false
  try {
    return JSON.parse(utf8.decode(b.subarray(start, end))) === "items"
  } catch {
    return false
  }
}

/**
 * What lies between the first two elements of an array of objects, from the first one's closing
 * `}` through the second one's first key (`},{"id"` in a compact page): undefined unless both are
 * objects and the second has a key. A page's items are written alike, so this one search per
 * element finds the next boundary where the byte scan takes one search per string (most of the
 * scan's time). Where it is wrong (a nested array of objects with the same first key, a layout
 * that varies), the span it gives does not parse alone, and the caller scans byte by byte.
 */
const separatorOf = (b: Uint8Array, spans: ReadonlyArray<number>): Uint8Array | undefined => {
  const end0 = spans[1]!
  const start1 = spans[2]!
  if (b[end0 - 1] !== 0x7d || b[start1] !== 0x7b) return undefined
  const key = skipWs(b, start1 + 1)
  return b[key] === QUOTE ? b.subarray(end0 - 1, endOfString(b, key)) : undefined
}

/** Where a body's top-level `items` array lies: its `[` and `]`, and its elements' spans. */
export interface ItemsArray {
  /** The index of the array's `[`. */
  readonly open: number
  /** The index of the array's `]`. */
  readonly close: number
  /** The byte spans of its elements, as `[start0, end0, start1, end1, …]`. */
  readonly spans: Array<number>
  /**
   * Whether some spans were found by the separator the first elements showed (`itemsArray`'s
   * `guess`) rather than byte by byte. Such spans are candidates: the caller parses each on its
   * own, and a span that parses alone, starting where an element starts, is that element exactly
   * (a shorter one leaves a string or a bracket open; a longer one has a comma after a value).
   */
  readonly guessed: boolean
}

/**
 * The top-level `items` array of a JSON object: where it opens and closes, and the byte span of
 * each element. `undefined` when the body is not an object with an `items` array. As with
 * `JSON.parse`, the last `items` key wins. A leading byte-order mark is skipped (`TextDecoder`
 * drops it too, so `JSON.parse` accepted the body).
 *
 * For valid JSON it finds what `JSON.parse` reads. Any other body gives `undefined` or spans that
 * do not stand for anything, but always in one pass: the elements must be separated by commas,
 * and each must take at least one byte (so that no input makes it loop). A caller that scans
 * before parsing (`pageDecoder`'s grouped parse) checks the result with `JSON.parse`.
 *
 * With `guess` (where `node:buffer` is there to search with), the elements after the second are
 * found by the separator the first two showed ({@link separatorOf}), one native search per
 * element, and the result is `guessed`: even for valid JSON its spans are only candidates, each
 * to be checked by parsing it alone ({@link ItemsArray.guessed}).
 */
export const itemsArray = (b: Uint8Array, guess = false): ItemsArray | undefined => {
  const search = guess && nodeBuffer !== undefined ? view(nodeBuffer, b) : undefined
  let i = bomLength(b)
  i = skipWs(b, i)
  if (b[i] !== 0x7b) return undefined
  i = skipWs(b, i + 1)
  let found: ItemsArray | undefined
  while (i < b.length && b[i] !== 0x7d) {
    const keyEnd = endOfString(b, i)
    const items = isItemsKey(b, i, keyEnd)
    // Only the array returned gets its guessed spans checked (by the caller's parse). A wrong
    // guess in an earlier one that a later `items` key replaces would go unchecked, and would
    // have thrown the scan out of step: inside an item, it can take a nested `items` for the
    // last. So past a guessed array, another `items` key means scanning again byte by byte.
    if (items && found?.guessed === true) return itemsArray(b)
    i = skipWs(b, skipWs(b, keyEnd) + 1) // past ':'
    if (items && b[i] === 0x5b) {
      const open = i
      const spans: Array<number> = []
      let separator: Uint8Array | undefined
      let guessed = false
      i = skipWs(b, i + 1)
      while (i < b.length && b[i] !== 0x5d) {
        if (separator !== undefined) {
          // Up to the next place the separator occurs: the element's closing `}` and what
          // follows it, through the next element's first key. Each step moves past the separator.
          const q = search!.indexOf(separator, i)
          if (q !== -1) {
            spans.push(i, q + 1)
            guessed = true
            i = q + 1 + (spans[2]! - spans[1]!)
            continue
          }
          // The last element (or a layout that changed): byte by byte from here.
          separator = undefined
        }
        const end = endOfValue(b, i)
        if (end === i) return undefined
        spans.push(i, end)
        i = skipWs(b, end)
        if (b[i] === 0x2c) i = skipWs(b, i + 1)
        else if (b[i] !== 0x5d) return undefined
        if (search !== undefined && spans.length === 4) separator = separatorOf(b, spans)
      }
      found = { open, close: i, spans, guessed }
      i++
    } else {
      if (items) found = undefined
      i = endOfValue(b, i)
    }
    i = skipWs(b, i)
    if (b[i] === 0x2c) i = skipWs(b, i + 1)
  }
  return found
}

/**
 * The byte spans of every element of the top-level `items` array of a valid JSON object, as
 * `[start0, end0, start1, end1, …]` ({@link itemsArray}'s).
 */
export const itemSpans = (b: Uint8Array): Array<number> | undefined => itemsArray(b)?.spans

/**
 * Whether `b` holds a line feed or a carriage return. In JSON they can only be whitespace between
 * tokens (a string literal must escape them), so a body without any has no item to compact.
 * `Buffer.indexOf` is a native byte search, ~50x a typed array's `includes` on a page.
 */
export const hasLineBreak: (b: Uint8Array) => boolean = ((native) =>
  native !== undefined
    ? (b: Uint8Array) => {
      const v = view(native, b)
      return v.indexOf(0x0a) !== -1 || v.indexOf(0x0d) !== -1
    }
    : (b: Uint8Array) => b.includes(0x0a) || b.includes(0x0d))(nodeBuffer)

/**
 * Removes insignificant whitespace outside string literals when an item spans lines (a
 * pretty-printed body): NDJSON needs one line per item. Every token keeps its exact bytes; an
 * item on one line is returned as is (the same view, no copy).
 */
export const compactBytes = (raw: Uint8Array): Uint8Array => {
  if (!hasLineBreak(raw)) return raw
  const out = new Uint8Array(raw.length)
  let n = 0
  let i = 0
  while (i < raw.length) {
    const ch = raw[i]!
    if (ch === QUOTE) {
      const end = endOfString(raw, i)
      out.set(raw.subarray(i, end), n)
      n += end - i
      i = end
    } else {
      if (!isWs(ch)) out[n++] = ch
      i++
    }
  }
  return out.subarray(0, n)
}

/** Strips leading and trailing JSON whitespace (and a leading byte-order mark). */
export const trimBytes = (b: Uint8Array): Uint8Array => {
  let start = bomLength(b)
  let end = b.length
  while (start < end && isWs(b[start]!)) start++
  while (end > start && isWs(b[end - 1]!)) end--
  return start === 0 && end === b.length ? b : b.subarray(start, end)
}
