/**
 * The one NDJSON line reader of the archive (plain day files and gzip'd sealed segments alike),
 * and the id of an archived line.
 *
 * Lines are handed out as bytes, not text: an event the server sent with invalid UTF-8 is kept
 * byte-exact, and decoding it would turn it into a different line (U+FFFD) with a different digest.
 *
 * @internal
 */
import * as fs from "node:fs"
import type * as fsp from "node:fs/promises"
import { createGunzip } from "node:zlib"
import { at, errnoCode, StepFailure, UnsafePath } from "./errors.js"
import { openNoFollow } from "./safeFs.js"

const NL = 0x0a

/**
 * Calls `onLine` for every non-empty line of a file, streaming (constant memory however large the
 * file), gunzipping when `gzip` is set. A missing file has no lines; a link or a non-regular file
 * there is an {@link UnsafePath}. `onLine` receives a view valid only during the call: copy it
 * to keep it. Returns the number of bytes read from the file (its length when fully read).
 */
export const forEachLineBytes = async (
  file: string,
  onLine: (line: Buffer) => void,
  options: { readonly signal?: AbortSignal | undefined; readonly gzip?: boolean | undefined; readonly start?: number | undefined } = {}
): Promise<number> => {
  let h: fsp.FileHandle
  try {
    h = await openNoFollow(file, fs.constants.O_RDONLY)
  } catch (e) {
    if (errnoCode(e) === "ENOENT") return 0
    if (e instanceof UnsafePath) throw e
    throw new StepFailure(file, "reading", e)
  }
  return at(file, "reading", async () => {
    const { size } = await h.stat()
    const input = h.createReadStream({
      start: options.start ?? 0,
      autoClose: true,
      ...(options.signal !== undefined ? { signal: options.signal } : {})
    })
    const source: AsyncIterable<Buffer> = options.gzip === true ? input.pipe(createGunzip()) : input
    let carry: Buffer | undefined
    try {
      for await (const chunk of source) {
        let buf = carry === undefined ? chunk : Buffer.concat([carry, chunk])
        let from = 0
        let nl = buf.indexOf(NL, from)
        while (nl >= 0) {
          if (nl > from) onLine(buf.subarray(from, nl))
          from = nl + 1
          nl = buf.indexOf(NL, from)
        }
        // Copied so that one long-lived carry never pins a whole chunk.
        carry = from < buf.length ? Buffer.from(buf.subarray(from)) : undefined
        buf = Buffer.alloc(0)
      }
      // A last line without `\n` (a sealed segment may end so; a torn tail is cut before reading).
      if (carry !== undefined && carry.length > 0) onLine(carry)
    } finally {
      input.destroy()
      await h.close().catch(() => undefined)
    }
    return size
  })
}

/**
 * {@link forEachLineBytes} with each line decoded as UTF-8 (a trailing `\r` dropped), for
 * reports that read text. The write path reads bytes.
 */
export const forEachLine = async (file: string, onLine: (line: string) => void, signal?: AbortSignal): Promise<void> => {
  await forEachLineBytes(file, (line) => {
    const text = line.toString("utf8")
    onLine(text.endsWith("\r") ? text.slice(0, -1) : text)
  }, { signal })
}

// Events archived as the API sent them almost always start with their id: read it without parsing.
const LEADING_ID = /^\{\s*"id"\s*:\s*"([^"\\]*)"\s*[,}]/

/**
 * Whether `line`'s top-level id is `id`: the leading-id fast path without copying, else
 * {@link extractId}.
 */
export const hasId = (line: string | Uint8Array, id: string): boolean => {
  if (typeof line === "string") {
    const m = LEADING_ID.exec(line)
    if (m !== null) return m[1] === id
  } else if (leadsWithId(line, id)) {
    return true
  }
  return extractId(line) === id
}

const LEADING_ID_PREFIX = Buffer.from("{\"id\":\"")
const QUOTE = 0x22
const COMMA = 0x2c
const CLOSE = 0x7d

/**
 * Whether the bytes begin `{"id":"<id>",` (or `}`): the compact form the API sends, tested
 * without decoding the line (once per archived event). Equivalent to {@link LEADING_ID} finding
 * `id`: an id with no quote or backslash is its own JSON text, and its UTF-8 encoding is the only
 * byte sequence that decodes to it. Anything else (spaces, escapes) is left to {@link extractId}.
 */
const leadsWithId = (line: Uint8Array, id: string): boolean => {
  const p = LEADING_ID_PREFIX.length
  if (line.length < p + id.length + 2) return false
  for (let i = 0; i < p; i++) if (line[i] !== LEADING_ID_PREFIX[i]) return false
  let at = p
  for (let i = 0; i < id.length; i++) {
    const c = id.charCodeAt(i)
    // Non-ASCII (or a quote/backslash): the general path decides.
    if (c >= 0x80 || c === QUOTE || c === 0x5c) return false
    if (line[at++] !== c) return false
  }
  return line[at] === QUOTE && (line[at + 1] === COMMA || line[at + 1] === CLOSE)
}

/** The top-level `id` of a JSON object text, or `undefined` if it has none or is not JSON. */
export const extractId = (line: string | Uint8Array): string | undefined => {
  const text = typeof line === "string" ? line : Buffer.from(line.buffer, line.byteOffset, line.byteLength).toString("utf8")
  const m = LEADING_ID.exec(text)
  // A regex match is a slice that keeps its whole line alive in V8: copy it, or a day's id index
  // would hold the day file itself in memory.
  if (m !== null) return Buffer.from(m[1]!, "utf8").toString("utf8")
  try {
    const v: unknown = JSON.parse(text)
    if (typeof v === "object" && v !== null && !Array.isArray(v) && "id" in v && typeof v.id === "string") {
      return v.id
    }
  } catch {
    // not JSON
  }
  return undefined
}
