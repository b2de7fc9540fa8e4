/**
 * The files of `events/`: open day files and sealed segments (CONTRACTS C4).
 *
 * ```
 * events/YYYY-MM-DD.ndjson        the open (writable) day file
 * events/YYYY-MM-DD.ndjson.gz     the day's first sealed segment
 * events/YYYY-MM-DD.2.ndjson.gz   later segments (late events after the day was sealed), .3., …
 * ```
 * A day's events are the union of its sealed segments and its open file. Segments are written
 * once and never rewritten.
 *
 * @since 0.2.0
 */
import { createHash } from "node:crypto"
import * as fs from "node:fs"
import * as fsp from "node:fs/promises"
import * as path from "node:path"
import * as zlib from "node:zlib"
import { at, DAY_FILE, errnoCode, isDay, lstatIfExists, openNoFollow, SEGMENT_FILE, unlessGone, UnsafePath } from "./internal/archiveFs.js"

export const DAY_MS = 86_400_000

export interface EventFile {
  readonly day: string
  /** The file name inside `events/`. */
  readonly name: string
  /** Absolute path. */
  readonly file: string
  /** 0 for the open file; 1, 2, … for sealed segments. */
  readonly segment: number
}

/** `events/` name of a day's `n`th sealed segment (the first has no number). */
export const segmentName = (day: string, n: number): string => n === 1 ? `${day}.ndjson.gz` : `${day}.${n}.ndjson.gz`

/** Parses an `events/` file name; `undefined` for anything that is not an event file. */
export const parseName = (name: string): Omit<EventFile, "file"> | undefined => {
  const open = DAY_FILE.exec(name)
  if (open !== null && isDay(open[1]!)) return { day: open[1]!, name, segment: 0 }
  const sealed = SEGMENT_FILE.exec(name)
  if (sealed !== null && isDay(sealed[1]!)) {
    const n = sealed[2] === undefined ? 1 : Number(sealed[2])
    // `D.1.ndjson.gz` is not a name the archive writes: the first segment has no number.
    if (sealed[2] === "1") return undefined
    return { day: sealed[1]!, name, segment: n }
  }
  return undefined
}

/**
 * Every event file in `eventsDir`, ordered by day, then segments in order, then the open file.
 * Empty when the directory does not exist.
 */
export const listEventFiles = async (eventsDir: string): Promise<ReadonlyArray<EventFile>> => {
  let names: Array<string>
  try {
    // A planted `events/` link would have every reader (and sealing) work on files elsewhere.
    const st = await fsp.lstat(eventsDir)
    if (st.isSymbolicLink()) throw new UnsafePath(eventsDir, "is a symbolic link")
    if (!st.isDirectory()) throw new UnsafePath(eventsDir, "is not a directory")
    names = await fsp.readdir(eventsDir)
  } catch (e) {
    if (errnoCode(e) === "ENOENT") return []
    throw e
  }
  const out: Array<EventFile> = []
  for (const name of names) {
    const p = parseName(name)
    if (p !== undefined) out.push({ ...p, file: path.join(eventsDir, name) })
  }
  const rank = (f: EventFile) => f.segment === 0 ? Number.MAX_SAFE_INTEGER : f.segment
  return out.sort((a, b) => a.day < b.day ? -1 : a.day > b.day ? 1 : rank(a) - rank(b))
}

/** `[start, end)` of a UTC day in epoch milliseconds. */
export const dayRange = (day: string): readonly [number, number] => {
  const start = Date.parse(`${day}T00:00:00.000Z`)
  return [start, start + DAY_MS]
}

export const dayOf = (ms: number): string => new Date(ms).toISOString().slice(0, 10)

/**
 * Opens an archive file for reading without following a link at its name: a symbolic link (or a
 * FIFO, a device) planted there is an {@link UnsafePath}, never read through.
 */
export const openRead = (file: string): Promise<fsp.FileHandle> => openNoFollow(file, fs.constants.O_RDONLY)

/** A stream of `[start, end]` (inclusive) of a file opened with {@link openRead}; closes it when done. */
const readStream = async (file: string, options: { start?: number; end?: number; signal?: AbortSignal } = {}) => {
  const h = await openRead(file)
  return h.createReadStream({ autoClose: true, ...options })
}

/** A readable stream of a file's event bytes: gunzipped for a sealed segment. Links are refused. */
export const openContent = async (file: string, signal?: AbortSignal, start = 0): Promise<NodeJS.ReadableStream> => {
  const input = await readStream(file, { ...(signal !== undefined ? { signal } : {}), ...(start > 0 ? { start } : {}) })
  if (!file.endsWith(".gz")) return input
  const gunzip = zlib.createGunzip()
  input.on("error", (e) => gunzip.destroy(e))
  // Stopping early destroys the gunzip stream: the file must close with it.
  gunzip.on("close", () => input.destroy())
  return input.pipe(gunzip)
}

/**
 * The non-empty lines of an event file (sealed or open) as their exact bytes, streaming; stopping
 * early closes the file. A read or decompression error rejects (readline would not always pass
 * it on).
 */
export async function* eventLineBytes(file: string, signal?: AbortSignal, start = 0): AsyncGenerator<Buffer> {
  yield* contentLineBytes(await openContent(file, signal, start))
}

/** {@link eventLineBytes} of a stream {@link openContent} opened; destroys it when done or stopped. */
export async function* contentLineBytes(content: NodeJS.ReadableStream): AsyncGenerator<Buffer> {
  const input = content as NodeJS.ReadableStream & { destroy?: () => void }
  let rest: Buffer = Buffer.alloc(0)
  try {
    for await (const chunk of input as AsyncIterable<Buffer>) {
      let buf = rest.length > 0 ? Buffer.concat([rest, chunk]) : chunk
      let nl: number
      while ((nl = buf.indexOf(0x0a)) >= 0) {
        if (nl > 0) yield Buffer.from(buf.subarray(0, nl))
        buf = buf.subarray(nl + 1)
      }
      rest = Buffer.from(buf)
    }
    if (rest.length > 0) yield rest
  } finally {
    input.destroy?.()
  }
}

/** {@link eventLineBytes} decoded as UTF-8. */
export async function* eventLines(file: string, signal?: AbortSignal, start = 0): AsyncGenerator<string> {
  for await (const bytes of eventLineBytes(file, signal, start)) yield bytes.toString("utf8")
}

/** Calls `onLine` for each non-empty line of an event file (sealed or open), streaming. */
export const forEachEventLine = async (file: string, onLine: (line: string) => void, signal?: AbortSignal, start = 0) => {
  for await (const line of eventLines(file, signal, start)) onLine(line)
}

/** SHA-256 (hex) and length of a byte stream. */
export const digestStream = async (input: NodeJS.ReadableStream): Promise<{ sha256: string; bytes: number }> => {
  const hash = createHash("sha256")
  let bytes = 0
  for await (const chunk of input as AsyncIterable<Buffer>) {
    hash.update(chunk)
    bytes += chunk.length
  }
  return { sha256: hash.digest("hex"), bytes }
}

/** SHA-256 and length of a file's bytes as stored (compressed, for a segment). */
export const digestFile = async (file: string) => digestStream(await readStream(file))

/** SHA-256 and length of `[start, start + length)` of a file. */
export const digestRange = (file: string, start: number, length: number) =>
  length === 0
    ? Promise.resolve({ sha256: createHash("sha256").digest("hex"), bytes: 0 })
    : readStream(file, { start, end: start + length - 1 }).then(digestStream)

/**
 * How many leading bytes of an open day file (`size` of them complete) the day's recorded
 * segments already hold: each segment, in order, whose content is the file's next bytes. Sealing
 * copies the open file into a segment, records it, then removes the file; a crash (or a reader
 * looking) between the last two finds the file and its segment both. Sealing starts past them;
 * `status` does not count them twice.
 */
export const sealedPrefix = async (
  file: string,
  size: number,
  segments: ReadonlyArray<{ readonly content: { readonly sha256: string; readonly bytes: number } }>
): Promise<number> => {
  let offset = 0
  for (const e of segments) {
    if (e.content.bytes === 0 || offset + e.content.bytes > size) continue
    const d = await at(file, "reading", () => digestRange(file, offset, e.content.bytes))
    if (d.sha256 === e.content.sha256) offset += e.content.bytes
  }
  return offset
}

/** What {@link sealedPrefix} compares an open file with: a segment's decompressed content. */
interface SegmentContent {
  readonly content: { readonly sha256: string; readonly bytes: number }
}

/**
 * For readers that take no lock (`query`, `verify`): where each open day file of `files` (as
 * {@link listEventFiles} listed them) starts to hold events that no listed segment of its day
 * holds. Sealing copies an open file into a segment, links the segment into place, records it in
 * the manifest, then removes the file; a reader between the first and last steps (or after a crash
 * between them, until the next seal) finds the file and its segment both. A recorded segment is
 * judged by the manifest's digest of its content (`recorded`, by archive-relative path); one
 * linked but not recorded yet by its own content, read only then. Computed when asked, so a
 * reader that skips a file costs nothing for it. 0 when the file is gone (its reader finds that).
 */
export const sealedStarts = (
  files: ReadonlyArray<EventFile>,
  recorded: (path: string) => SegmentContent | undefined
): (open: EventFile) => Promise<number> => {
  const byDay = new Map<string, Array<EventFile>>()
  for (const f of files) if (f.segment > 0) byDay.set(f.day, [...byDay.get(f.day) ?? [], f])
  return async (open) => {
    const listed = byDay.get(open.day)
    if (listed === undefined) return 0
    const size = (await lstatIfExists(open.file))?.size
    if (size === undefined) return 0
    const segments: Array<SegmentContent> = []
    for (const g of listed) {
      const content = recorded(`events/${g.name}`)?.content ??
        // Unrecorded, and unreadable as a segment (damaged): it holds nothing to skip.
        await (async () => digestStream(await openContent(g.file)))().catch((e) => {
          if (e instanceof UnsafePath) throw e
          return undefined
        })
      if (content !== undefined) segments.push({ content })
    }
    return (await unlessGone(() => sealedPrefix(open.file, size, segments))) ?? 0
  }
}

/** The fields of an event the evidence commands look at (parsed, never re-serialised for output). */
export interface EventFields {
  readonly id?: string
  readonly created?: string
  readonly createdMs?: number
  readonly resource?: string
  readonly type?: string
  readonly actorId?: string
  readonly data?: Record<string, unknown>
}

const str = (v: unknown): string | undefined => typeof v === "string" ? v : undefined

/** The fields of one archived line; `undefined` when it is not a JSON object. */
export const fieldsOf = (line: string): EventFields | undefined => {
  let v: unknown
  try {
    v = JSON.parse(line)
  } catch {
    return undefined
  }
  if (typeof v !== "object" || v === null || Array.isArray(v)) return undefined
  const o = v as Record<string, unknown>
  const created = str(o.created)
  const createdMs = created !== undefined ? Date.parse(created) : Number.NaN
  const data = typeof o.data === "object" && o.data !== null && !Array.isArray(o.data)
    ? o.data as Record<string, unknown>
    : undefined
  return {
    ...(str(o.id) !== undefined ? { id: str(o.id)! } : {}),
    ...(created !== undefined ? { created } : {}),
    ...(Number.isNaN(createdMs) ? {} : { createdMs }),
    ...(str(o.resource) !== undefined ? { resource: str(o.resource)! } : {}),
    ...(str(o.type) !== undefined ? { type: str(o.type)! } : {}),
    ...(str(o.actorId) !== undefined ? { actorId: str(o.actorId)! } : {}),
    ...(data !== undefined ? { data } : {})
  }
}
