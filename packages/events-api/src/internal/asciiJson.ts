/**
 * A UTF-8 JSON body as ASCII text that `JSON.parse` reads to the same value, for speed.
 *
 * Turning a page of UTF-8 into a JavaScript string costs more than parsing it as soon as one
 * character is not ASCII (the whole page then becomes a two-byte string, built by a slow path):
 * ~12 ms against ~1 ms for the same page in ASCII, on a page of 1000 events. So the ASCII stretches
 * are decoded as they are (the fast path), and each run of non-ASCII bytes, validated as UTF-8 on
 * its own, is written as `\uXXXX` escapes: the same string to `JSON.parse`. That holds because in
 * JSON a non-ASCII character can only sit inside a string literal, where it and its escape mean
 * the same; one right after an odd number of backslashes (an invalid escape) is not transcoded,
 * since `\` + `\u00e9` would turn that invalid escape into a valid one.
 *
 * On Node (≥ 20.16, which has `process.getBuiltinModule`), `node:buffer`'s native `isUtf8` and
 * `isAscii` (SIMD) do the validation and the search for non-ASCII bytes, and a latin1 slice the
 * decoding of the ASCII stretches; elsewhere a portable JavaScript scan does the same.
 */

import { type NodeBuffer, nodeBuffer, view } from "./nodeBuffer.js"
import { bomLength } from "./rawJson.js"

/** For the runs: fatal (so invalid UTF-8 is seen), and a U+FEFF inside a string kept, not taken for a BOM. */
const runDecoder = new TextDecoder("utf-8", { fatal: true, ignoreBOM: true })
/** For ASCII stretches, which any decoder reads exactly. */
const asciiDecoder = new TextDecoder("utf-8", { ignoreBOM: true })

const BACKSLASH = 0x5c

const hex = (code: number): string => (code < 0x1000 ? (code < 0x100 ? "\\u00" : "\\u0") : "\\u") + code.toString(16)

const escapeAll = (s: string): string => {
  let out = ""
  for (let k = 0; k < s.length; k++) out += hex(s.charCodeAt(k))
  return out
}

/**
 * A finder of the next non-ASCII byte of `b`, four bytes at a time: pages are mostly ASCII, and
 * looking at them a byte at a time in JavaScript costs more than the decoding saved.
 */
const highFinder = (b: Uint8Array): (from: number) => number => {
  const n = b.length
  const head = Math.min(n, (4 - (b.byteOffset & 3)) & 3)
  const words = new Uint32Array(b.buffer, b.byteOffset + head, (n - head) >> 2)
  const wordsEnd = head + words.length * 4
  return (from) => {
    let i = from
    for (; i < head; i++) if (b[i]! >= 0x80) return i
    for (; i < wordsEnd && ((i - head) & 3) !== 0; i++) if (b[i]! >= 0x80) return i
    if (i < wordsEnd) {
      let w = (i - head) >> 2
      while (w < words.length && (words[w]! & 0x80808080) === 0) w++
      i = head + w * 4
    }
    for (; i < n; i++) if (b[i]! >= 0x80) return i
    return n
  }
}

/** {@link asciiJsonText} in plain JavaScript, for runtimes without `node:buffer`. */
export const portableAsciiJsonText = (bytes: Uint8Array, shifts?: Array<number>): string | undefined => {
  const n = bytes.length
  const start = bomLength(bytes)
  let shift = -start
  if (start > 0) shifts?.push(start, shift)
  let parts: Array<string> | undefined
  let from = start
  const nextHigh = highFinder(bytes)
  let i = start
  while (i < n) {
    i = nextHigh(i)
    if (i >= n) break
    let end = i + 1
    while (end < n && bytes[end]! >= 0x80) end++
    let slashes = 0
    while (i - slashes - 1 >= from && bytes[i - slashes - 1] === BACKSLASH) slashes++
    if (slashes % 2 === 1) return undefined
    let run: string
    try {
      run = runDecoder.decode(bytes.subarray(i, end))
    } catch {
      return undefined
    }
    parts ??= []
    const escaped = escapeAll(run)
    parts.push(asciiDecoder.decode(bytes.subarray(from, i)), escaped)
    shift += escaped.length - (end - i)
    shifts?.push(end, shift)
    from = end
    i = end
  }
  if (parts === undefined) return asciiDecoder.decode(start === 0 ? bytes : bytes.subarray(start))
  parts.push(asciiDecoder.decode(bytes.subarray(from)))
  return parts.join("")
}

/** Below this many bytes a non-ASCII byte is looked for in JavaScript rather than by halving. */
const SCAN = 64

/**
 * Where a transcoded body is assembled before it becomes one string: kept between pages (a body is
 * most of a MiB), dropped when an unusually large one has grown it past {@link SCRATCH_KEPT}.
 */
let scratch = new Uint8Array(0)
const SCRATCH_KEPT = 4 * 1024 * 1024

/**
 * {@link portableAsciiJsonText} on `node:buffer`. The whole body is validated at once (the runs
 * are then whole characters, which the run decoder cannot refuse), and each next non-ASCII byte
 * found by `isAscii` over spans that double while they stay ASCII, halved down to a few bytes
 * around it.
 */
const nativeAsciiJsonText = (native: NodeBuffer, bytes: Uint8Array, shifts?: Array<number>): string | undefined => {
  if (!native.isUtf8(bytes)) return undefined
  const n = bytes.length
  const start = bomLength(bytes)
  let shift = -start
  if (start > 0) shifts?.push(start, shift)
  // The runs of non-ASCII bytes and their escapes: a page has a few hundred at most.
  let runs: Array<number> | undefined
  let escapes: Array<string> | undefined
  let from = start
  let i = start
  let span = 512
  while (i < n) {
    let end = Math.min(n, i + span)
    if (native.isAscii(bytes.subarray(i, end))) {
      i = end
      if (span < 65536) span *= 2
      continue
    }
    // A non-ASCII byte in [i, end): halve down to a few bytes, then look at them.
    while (end - i > SCAN) {
      const mid = (i + end) >>> 1
      if (native.isAscii(bytes.subarray(i, mid))) i = mid
      else end = mid
    }
    while (bytes[i]! < 0x80) i++
    span = 512
    let runEnd = i + 1
    while (runEnd < n && bytes[runEnd]! >= 0x80) runEnd++
    let slashes = 0
    while (i - slashes - 1 >= from && bytes[i - slashes - 1] === BACKSLASH) slashes++
    if (slashes % 2 === 1) return undefined
    const escaped = escapeAll(runDecoder.decode(bytes.subarray(i, runEnd)))
    ;(runs ??= []).push(i, runEnd)
    ;(escapes ??= []).push(escaped)
    shift += escaped.length - (runEnd - i)
    shifts?.push(runEnd, shift)
    from = runEnd
    i = runEnd
  }
  if (runs === undefined || escapes === undefined) return view(native, bytes).toString("latin1", start, n)
  // One string for the whole body, made once from bytes: decoding the ASCII stretches one by one
  // and joining them made the body's text twice (issue 8: a page's worth of garbage per page).
  let length = n - start
  for (let k = 0; k < escapes.length; k++) length += escapes[k]!.length - (runs[2 * k + 1]! - runs[2 * k]!)
  if (scratch.length < length) scratch = new Uint8Array(Math.max(length, scratch.length * 2))
  let at = 0
  from = start
  for (let k = 0; k < escapes.length; k++) {
    const runStart = runs[2 * k]!
    scratch.set(bytes.subarray(from, runStart), at)
    at += runStart - from
    const escape = escapes[k]!
    for (let c = 0; c < escape.length; c++) scratch[at++] = escape.charCodeAt(c)
    from = runs[2 * k + 1]!
  }
  scratch.set(bytes.subarray(from, n), at)
  at += n - from
  const text = view(native, scratch).toString("latin1", 0, at)
  if (scratch.length > SCRATCH_KEPT) scratch = new Uint8Array(0)
  return text
}

/**
 * `bytes` as ASCII JSON text with the value `JSON.parse` would read from their UTF-8 decoding (a
 * leading byte-order mark dropped, as `TextDecoder` drops it), or undefined when the bytes are not
 * valid UTF-8 or a non-ASCII byte follows an odd run of backslashes (the caller then decodes the
 * whole body the ordinary way, and its verdict stands).
 *
 * With `shifts`, where the text's offsets move away from the bytes' is appended to it: past a
 * leading byte-order mark, and past each run of non-ASCII bytes, the offset and by how many
 * characters the text is then ahead of the bytes (pairs, in order). {@link textOffsets} reads
 * them: the text of a piece of `bytes` can then be sliced out of the text of all of them.
 */
export const asciiJsonText: (bytes: Uint8Array, shifts?: Array<number>) => string | undefined = ((native) =>
  native !== undefined
    ? (bytes: Uint8Array, shifts?: Array<number>) => nativeAsciiJsonText(native, bytes, shifts)
    : portableAsciiJsonText)(nodeBuffer)

/**
 * Where byte `p` of the bytes {@link asciiJsonText} was given lies in its text, from the `shifts`
 * it reported; `p` outside a run of non-ASCII bytes, and asked in increasing order (each call goes
 * on from the last).
 */
export const textOffsets = (shifts: ReadonlyArray<number>): (p: number) => number => {
  let r = 0
  let shift = 0
  return (p) => {
    while (r < shifts.length && shifts[r]! <= p) {
      shift = shifts[r + 1]!
      r += 2
    }
    return p + shift
  }
}
