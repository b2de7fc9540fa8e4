/**
 * The reference check of an archive against the fake server: written once, used by every e2e test.
 *
 * It reads the archive directly from disk (not through any archiver code): every line of every
 * `events/*.ndjson` file, byte for byte, and compares with the server's raw event texts.
 */
import * as fs from "node:fs"
import * as path from "node:path"
import * as zlib from "node:zlib"

export interface Range {
  /** Inclusive. */
  readonly from: Date
  /** Exclusive. */
  readonly to: Date
}

export interface Scope {
  readonly resource?: string
  readonly type?: string
  readonly actorId?: string
}

export interface ServerEvent {
  readonly id: string
  readonly raw: string
  readonly createdMs: number
  readonly resource: string | undefined
  readonly type: string | undefined
  readonly actorId: string | undefined
  /** `YYYY-MM-DD` of `created`, UTC. */
  readonly day: string
}

/** Parses the server's raw events (the fake keeps them as text). Every seeded event has an id and a `created`. */
export const serverEvents = (raws: ReadonlyArray<string>): ReadonlyArray<ServerEvent> =>
  raws.map((raw) => {
    const v = JSON.parse(raw) as { id: string; created: string; resource?: string; type?: string; actorId?: string }
    const createdMs = Date.parse(v.created)
    if (typeof v.id !== "string" || Number.isNaN(createdMs)) throw new Error(`unexpected server event: ${raw}`)
    return {
      id: v.id,
      raw,
      createdMs,
      resource: v.resource,
      type: v.type,
      actorId: v.actorId,
      day: new Date(createdMs).toISOString().slice(0, 10)
    }
  })

export const inScope = (e: ServerEvent, scope: Scope = {}) =>
  (scope.resource === undefined || e.resource === scope.resource) &&
  (scope.type === undefined || e.type === scope.type) &&
  (scope.actorId === undefined || e.actorId === scope.actorId)

export const inRange = (e: ServerEvent, range: Range) =>
  e.createdMs >= range.from.getTime() && e.createdMs < range.to.getTime()

export interface ArchivedLine {
  readonly file: string
  readonly line: string
  readonly id: string | undefined
}

export interface ArchiveContents {
  /** Complete lines (ending in `\n`) of every regular `events/*.ndjson` file. */
  readonly lines: ReadonlyArray<ArchivedLine>
  /** id -> the lines holding it. */
  readonly byId: ReadonlyMap<string, ReadonlyArray<ArchivedLine>>
  /** Files whose last line has no `\n` (a torn write), with the torn bytes. */
  readonly torn: ReadonlyArray<{ readonly file: string; readonly tail: string }>
  /** Entries of `events/` that are not regular `YYYY-MM-DD.ndjson` files (skipped). */
  readonly skipped: ReadonlyArray<string>
}

const idOf = (line: string): string | undefined => {
  try {
    const v = JSON.parse(line) as { id?: unknown }
    return typeof v.id === "string" ? v.id : undefined
  } catch {
    return undefined
  }
}

/** A file's bytes, decompressed when it is a sealed (gzip) segment. */
const readMaybeGzip = (file: string): Buffer =>
  file.endsWith(".gz") ? zlib.gunzipSync(fs.readFileSync(file)) : fs.readFileSync(file)

/** Reads every event line of the archive. Symlinks and other non-regular entries are skipped (listed). */
export const readArchive = (dir: string): ArchiveContents => {
  const eventsDir = path.join(dir, "events")
  const lines: Array<ArchivedLine> = []
  const byId = new Map<string, Array<ArchivedLine>>()
  const torn: Array<{ file: string; tail: string }> = []
  const skipped: Array<string> = []
  const names = fs.existsSync(eventsDir) ? fs.readdirSync(eventsDir).sort() : []
  for (const name of names) {
    const file = path.join(eventsDir, name)
    const st = fs.lstatSync(file)
    // The open day file and its sealed segments (DAY.ndjson.gz, DAY.2.ndjson.gz, …) alike.
    if (!st.isFile() || !/^\d{4}-\d{2}-\d{2}(?:\.\d+)?\.ndjson(?:\.gz)?$/.test(name)) {
      skipped.push(name)
      continue
    }
    const text = readMaybeGzip(file).toString("utf8")
    const parts = text.split("\n")
    const tail = parts.pop()!
    if (tail !== "") torn.push({ file: name, tail })
    for (const line of parts) {
      const entry = { file: name, line, id: idOf(line) }
      lines.push(entry)
      if (entry.id !== undefined) {
        const list = byId.get(entry.id)
        if (list === undefined) byId.set(entry.id, [entry])
        else list.push(entry)
      }
    }
  }
  return { lines, byId, torn, skipped }
}

/** Files not 0600 and directories not 0700 anywhere in the archive (symlinks are not ours: skipped). */
export const badModes = (dir: string): ReadonlyArray<string> => {
  const bad: Array<string> = []
  const walk = (p: string, rel: string) => {
    const st = fs.lstatSync(p)
    if (st.isSymbolicLink()) return
    const mode = st.mode & 0o777
    if (st.isDirectory()) {
      if (mode !== 0o700) bad.push(`${rel || "."}/ ${mode.toString(8)}`)
      for (const name of fs.readdirSync(p)) walk(path.join(p, name), path.join(rel, name))
    } else if (mode !== 0o600) {
      bad.push(`${rel} ${mode.toString(8)}`)
    }
  }
  walk(dir, "")
  return bad
}

/** Every archive file (not symlinks) that contains `needle`, read as bytes. */
export const filesContaining = (dir: string, needle: string): ReadonlyArray<string> => {
  const hits: Array<string> = []
  const bytes = Buffer.from(needle, "utf8")
  const walk = (p: string) => {
    const st = fs.lstatSync(p)
    if (st.isDirectory()) for (const name of fs.readdirSync(p)) walk(path.join(p, name))
    else if (st.isFile() && readMaybeGzip(p).includes(bytes)) hits.push(p)
  }
  if (fs.existsSync(dir)) walk(dir)
  return hits
}

export interface Report {
  readonly expected: number
  readonly archivedLines: number
  readonly missing: ReadonlyArray<string>
  readonly duplicated: ReadonlyArray<string>
  readonly altered: ReadonlyArray<string>
  readonly misfiled: ReadonlyArray<string>
  /** Lines that are not an expected event: unknown id, out of range or scope, or not JSON. */
  readonly extra: ReadonlyArray<string>
  readonly torn: ReadonlyArray<string>
  readonly skipped: ReadonlyArray<string>
  readonly badModes: ReadonlyArray<string>
  readonly tokenLeaks: ReadonlyArray<string>
}

export interface CheckOptions {
  readonly range: Range
  readonly scope?: Scope
  /** When given, no archive file may contain it. */
  readonly token?: string
}

/** Compares the archive at `dir` with the server's events restricted to the range and scope. */
export const compareArchive = (dir: string, raws: ReadonlyArray<string>, options: CheckOptions): Report => {
  const expected = serverEvents(raws).filter((e) => inRange(e, options.range) && inScope(e, options.scope))
  const expectedById = new Map(expected.map((e) => [e.id, e]))
  const archive = readArchive(dir)
  const missing: Array<string> = []
  const duplicated: Array<string> = []
  const altered: Array<string> = []
  const misfiled: Array<string> = []
  for (const e of expected) {
    const found = archive.byId.get(e.id) ?? []
    if (found.length === 0) missing.push(e.id)
    if (found.length > 1) duplicated.push(`${e.id} x${found.length}`)
    for (const f of found) {
      if (f.line !== e.raw) altered.push(`${e.id} in ${f.file}`)
      if (f.file.slice(0, 10) !== e.day) misfiled.push(`${e.id} (created ${e.day}) in ${f.file}`)
    }
  }
  const extra = archive.lines
    .filter((l) => l.id === undefined || !expectedById.has(l.id))
    .map((l) => `${l.file}: ${l.line.slice(0, 120)}`)
  return {
    expected: expected.length,
    archivedLines: archive.lines.length,
    missing,
    duplicated,
    altered,
    misfiled,
    extra,
    torn: archive.torn.map((t) => `${t.file}: ${t.tail.slice(0, 80)}`),
    skipped: archive.skipped,
    badModes: badModes(dir),
    tokenLeaks: options.token === undefined ? [] : filesContaining(dir, options.token)
  }
}

const summary = (r: Report): string => {
  const parts: Array<string> = []
  for (const key of ["missing", "duplicated", "altered", "misfiled", "extra", "torn", "skipped", "badModes", "tokenLeaks"] as const) {
    const list = r[key]
    if (list.length > 0) parts.push(`${list.length} ${key}: ${list.slice(0, 5).join("; ")}`)
  }
  return parts.join("\n")
}

/**
 * Throws unless the archive holds exactly the server's events in range and scope: each once, byte
 * for byte, in the file of its UTC day; nothing else; no torn line; modes 0600/0700; no token.
 */
export const assertExactArchive = (dir: string, raws: ReadonlyArray<string>, options: CheckOptions): Report => {
  const r = compareArchive(dir, raws, options)
  const problems = summary(r)
  if (problems !== "") {
    throw new Error(`archive ${dir} does not match the server (${r.expected} expected, ${r.archivedLines} lines):\n${problems}`)
  }
  if (r.expected === 0) throw new Error("nothing expected: the test's range or scope selects no event")
  return r
}

// ---------------------------------------------------------------------------------------------
// Checkpoint
// ---------------------------------------------------------------------------------------------

export interface Covered {
  readonly from: string
  readonly through: string
}

export interface CheckpointFile {
  readonly covered: ReadonlyArray<Covered>
  readonly backfill?: { readonly from: string; readonly to: string; readonly doneThrough: string }
  readonly live?: { readonly through: string }
  readonly scope: Scope
  readonly updatedAt: string
}

export const readCheckpoint = (dir: string): CheckpointFile | undefined => {
  const file = path.join(dir, "state", "checkpoint.json")
  return fs.existsSync(file) ? (JSON.parse(fs.readFileSync(file, "utf8")) as CheckpointFile) : undefined
}

/**
 * The checkpoint's promise, checked: every server event (in scope) created inside a covered
 * interval is in the archive as a complete line. Returns the ids that break it.
 */
export const coverageViolations = (dir: string, raws: ReadonlyArray<string>, scope: Scope = {}): ReadonlyArray<string> => {
  const cp = readCheckpoint(dir)
  if (cp === undefined) return []
  const archive = readArchive(dir)
  const covered = cp.covered.map((c) => [Date.parse(c.from), Date.parse(c.through)] as const)
  return serverEvents(raws)
    .filter((e) => inScope(e, scope) && covered.some(([a, b]) => e.createdMs >= a && e.createdMs < b))
    .filter((e) => !(archive.byId.get(e.id) ?? []).some((l) => l.line === e.raw))
    .map((e) => `${e.id} created ${new Date(e.createdMs).toISOString()}`)
}

/** Whether any covered interval intersects `[from, to)`. */
export const coversAnyOf = (cp: CheckpointFile | undefined, from: number, to: number) =>
  (cp?.covered ?? []).some((c) => Date.parse(c.from) < to && Date.parse(c.through) > from)

/** Every file under `dir` with its bytes (symlinks as `-> target`), for before/after comparisons. */
export const snapshotTree = (dir: string): ReadonlyMap<string, string> => {
  const out = new Map<string, string>()
  const walk = (p: string, rel: string) => {
    const st = fs.lstatSync(p)
    if (st.isSymbolicLink()) out.set(rel, `-> ${fs.readlinkSync(p)}`)
    else if (st.isDirectory()) {
      out.set(`${rel}/`, `dir ${(st.mode & 0o777).toString(8)}`)
      for (const name of fs.readdirSync(p).sort()) walk(path.join(p, name), rel === "" ? name : `${rel}/${name}`)
    } else out.set(rel, `${(st.mode & 0o777).toString(8)} ${fs.readFileSync(p).toString("base64")}`)
  }
  if (fs.existsSync(dir)) walk(dir, "")
  return out
}
