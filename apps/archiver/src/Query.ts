/**
 * `webex-archiver query`: matching events, exactly as archived, from open and sealed files alike.
 *
 * Output is one archived line per event, byte for byte (never re-serialised), or a flat CSV table.
 * Files are read in day order (segments, then the open file); a file whose day, or whose manifest
 * range of `created` and resources, cannot match is not opened, so a query of one day of a year's
 * archive reads one day. A closed output pipe (`| head -1`) stops the query quietly.
 *
 * @since 0.2.0
 */
import * as Effect from "effect/Effect"
import { ArchiveReadError } from "./ArchiveError.js"
import { at, layout, lstatIfExists, tryRead, unlessGone } from "./internal/archiveFs.js"
import * as Manifest from "./Manifest.js"
import {
  contentLineBytes,
  dayRange,
  type EventFields,
  type EventFile,
  eventLineBytes,
  fieldsOf,
  listEventFiles,
  openContent,
  sealedStarts
} from "./Segments.js"
import * as fsp from "node:fs/promises"

export interface Filter {
  /** Created at or after, epoch milliseconds. */
  readonly from?: number | undefined
  /** Created before, epoch milliseconds. */
  readonly to?: number | undefined
  readonly resource?: string | undefined
  readonly type?: string | undefined
  readonly actorId?: string | undefined
  readonly id?: string | undefined
  /** Case-insensitive substring of any content field (see {@link CONTENT_FIELDS}). */
  readonly text?: string | undefined
}

/** The fields of `data` that hold what people wrote or named: what `--text` searches. */
export const CONTENT_FIELDS = [
  "text",
  "markdown",
  "html",
  "title",
  "displayName",
  "personEmail",
  "personDisplayName",
  "fileName",
  "contentUrl"
] as const

const contentMatches = (data: Record<string, unknown> | undefined, needle: string): boolean => {
  if (data === undefined) return false
  for (const k of CONTENT_FIELDS) {
    const v = data[k]
    if (typeof v === "string" && v.toLowerCase().includes(needle)) return true
  }
  return false
}

/** Whether an event matches every given filter. */
export const matches = (f: EventFields, filter: Filter, needle = filter.text?.toLowerCase()): boolean =>
  (filter.from === undefined || (f.createdMs !== undefined && f.createdMs >= filter.from)) &&
  (filter.to === undefined || (f.createdMs !== undefined && f.createdMs < filter.to)) &&
  (filter.resource === undefined || f.resource === filter.resource) &&
  (filter.type === undefined || f.type === filter.type) &&
  (filter.actorId === undefined || f.actorId === filter.actorId) &&
  (filter.id === undefined || f.id === filter.id) &&
  (needle === undefined || contentMatches(f.data, needle))

/** The columns of `--format csv`. */
export const CSV_COLUMNS = ["id", "created", "resource", "type", "actorId", "personId", "personEmail", "roomId", "text"] as const

const csvCell = (v: unknown): string => {
  let s = typeof v === "string" ? v : v === undefined || v === null ? "" : JSON.stringify(v)
  // A cell starting with = + - @ is a formula to a spreadsheet: keep it text.
  if (/^[=+\-@\t\r]/.test(s)) s = `'${s}`
  return /[",\r\n]/.test(s) ? `"${s.replace(/"/g, "\"\"")}"` : s
}

/** One CSV row (RFC 4180 quoting, no line end) of an archived event line. */
export const csvRow = (line: string): string => {
  const o = JSON.parse(line) as Record<string, unknown>
  const data = (typeof o.data === "object" && o.data !== null ? o.data : {}) as Record<string, unknown>
  return [
    o.id,
    o.created,
    o.resource,
    o.type,
    o.actorId,
    data.personId,
    data.personEmail,
    data.roomId,
    data.text ?? data.markdown ?? data.title ?? data.displayName
  ].map(csvCell).join(",")
}

export interface QueryStats {
  readonly filesRead: number
  readonly filesSkipped: number
  readonly matched: number
}

/**
 * Calls `emit` with each matching line (its archived bytes, without the newline) and its fields; `emit` returns `false` to
 * stop (the reader went away).
 */
export const run = (
  dir: string,
  filter: Filter,
  emit: (line: Buffer, fields: EventFields) => boolean | Promise<boolean>
): Effect.Effect<QueryStats, ArchiveReadError> => {
  const l = layout(dir)
  return tryRead(l.events, "reading", async (signal) => {
    await at(l.root, "opening the archive", () => fsp.stat(l.root))
    const chain = await at(Manifest.manifestPath(l.root), "reading", () => Manifest.readEntries(l.root))
    const entries = new Map<string, Manifest.SegmentEntry>()
    for (const { entry } of chain) if (entry.kind === "segment") entries.set(entry.path, entry)
    const needle = filter.text?.toLowerCase()
    let filesRead = 0
    let filesSkipped = 0
    let matched = 0
    let stopped = false
    const listed = await listEventFiles(l.events)
    const listedNames = new Set(listed.map((f) => f.name))
    // An open file that a listed segment already holds the start of (a seal interrupted, or
    // running meanwhile) is read past it: each event once.
    const startOf = sealedStarts(listed, (p) => entries.get(p))
    // Each open file as listed: a seal meanwhile removes it, and a later event may make another.
    const listedIno = new Map<string, number>()
    for (const f of listed) {
      if (f.segment === 0) {
        const st = await lstatIfExists(f.file)
        if (st !== undefined) listedIno.set(f.name, st.ino)
      }
    }
    /** `file`'s content, or `undefined` when it is gone. */
    const openIfThere = (file: string, start = 0) => unlessGone(() => openContent(file, signal, start))
    /**
     * A file's lines. An open file sealed since the listing (gone, or another file by now) is read
     * from the day's segments listed now and not then, which hold what it held; then from the open
     * file that late events made since, if any.
     */
    async function* linesOf(f: EventFile): AsyncGenerator<Buffer> {
      if (f.segment > 0) return yield* eventLineBytes(f.file, signal)
      const st = await lstatIfExists(f.file)
      const same = st !== undefined && st.ino === listedIno.get(f.name)
      const content = same ? await openIfThere(f.file, await startOf(f)) : undefined
      if (content !== undefined) return yield* contentLineBytes(content)
      for (const g of await listEventFiles(l.events)) {
        if (g.day === f.day && g.segment > 0 && !listedNames.has(g.name)) yield* eventLineBytes(g.file, signal)
      }
      const later = await lstatIfExists(f.file)
      const after = later !== undefined && later.ino !== listedIno.get(f.name) ? await openIfThere(f.file) : undefined
      if (after !== undefined) yield* contentLineBytes(after)
    }
    for (const f of listed) {
      if (stopped) break
      const [start, end] = dayRange(f.day)
      const e = entries.get(`events/${f.name}`)
      const min = e?.minCreated != null ? Date.parse(e.minCreated) : start
      const max = e?.maxCreated != null ? Date.parse(e.maxCreated) : end - 1
      const canMatch = (filter.from === undefined || max >= filter.from) &&
        (filter.to === undefined || min < filter.to) &&
        (filter.resource === undefined || e === undefined || (e.byResource[filter.resource] ?? 0) > 0) &&
        (e === undefined || e.lines > 0)
      if (!canMatch) {
        filesSkipped++
        continue
      }
      filesRead++
      // Bytes, not text: the output is the archived line exactly, even were it not valid UTF-8.
      for await (const line of linesOf(f)) {
        const fields = fieldsOf(line.toString("utf8"))
        if (fields === undefined || !matches(fields, filter, needle)) continue
        matched++
        // Awaited: a slow reader slows the query down instead of filling memory.
        if (!(await emit(line, fields))) {
          stopped = true
          break
        }
      }
    }
    return { filesRead, filesSkipped, matched }
  }).pipe(Effect.mapError((e) => e.code === UNSAFE ? refused(e) : e))
}

/** `ArchiveReadError.code` of a planted link or special file (see `internal/errors.ts`). */
const UNSAFE = "EUNSAFE"

/** A link planted in the archive: the query stops before printing anything of it (exit 74). */
const refused = (e: ArchiveReadError) =>
  new ArchiveReadError({
    path: e.path,
    operation: e.operation,
    code: UNSAFE,
    message: `Refusing to read ${e.path}: it is a link or special file, which the archive never creates. Nothing was read ` +
      "through it; inspect it (it may have been planted), then remove or fix it and query again"
  })
