/**
 * What an archive holds, read from disk: the report behind `webex-archiver status`.
 *
 * Sealed days are answered from `manifest.ndjson` (counts per resource, `created` range), and open
 * day files from the id index's per-day marks (`state/ids.json`: what the first `size` bytes of
 * the file with that inode hold, kept by the archiver as it appends), so no event file is read
 * but the part of an open file past its mark (appended since the archiver's last sync point) and
 * a file without a usable mark (streamed line by line, constant memory; one day's ids at a time,
 * to count duplicates). Checking the files themselves is `verify`'s job. An event's resource and
 * `created` are the first top-level ones in its line. Reading never changes the archive, so it
 * is safe while an archiver is running. Damage is reported, not thrown: unreadable lines, events
 * filed under the wrong day, duplicate ids and an invalid checkpoint all show up in the status.
 *
 * The status is plain data (no `Option`s): `JSON.stringify` of it is the `--json` output.
 *
 * @since 0.1.0
 */
import * as fsp from "node:fs/promises"
import * as path from "node:path"
import * as Effect from "effect/Effect"
import * as Option from "effect/Option"
import { ArchiveReadError, existingArchive } from "./ArchiveError.js"
import { isHolderAlive, readLock } from "./ArchiveLock.js"
import { type CheckpointJson, loadCheckpoint, toJson } from "./Checkpoint.js"
import {
  dayFiles,
  dayStorage,
  errnoCode,
  forEachLine,
  layout,
  lstatIfExists,
  StepFailure,
  tryRead,
  unlessGone,
  UnsafePath
} from "./internal/archiveFs.js"
import * as DayTally from "./internal/dayTally.js"
import * as IdIndex from "./internal/idIndex.js"
import { toIso } from "./Instant.js"
import { readLastError } from "./LastError.js"
import * as Manifest from "./Manifest.js"
import { sealedPrefix } from "./Segments.js"

/** Events of one day file. */
export interface DayCount {
  readonly day: string
  readonly total: number
  readonly byResource: Readonly<Record<string, number>>
}

export interface ArchiveStatus {
  /** The archive directory (absolute). */
  readonly dir: string
  /** Events in `events/` (lines that parse as JSON). */
  readonly totalEvents: number
  readonly byResource: Readonly<Record<string, number>>
  /** One entry per day file, in day order. */
  readonly byDay: ReadonlyArray<DayCount>
  /** The earliest and latest `created` seen, as written in the events. */
  readonly earliestCreated: string | null
  readonly latestCreated: string | null
  /** Lines that are not JSON objects (damage: the archive never writes such lines). */
  readonly unreadableLines: number
  /** Events whose `created` falls on another UTC day than their file's. */
  readonly misfiledEvents: number
  /** Sealed segments recorded in the manifest, and the manifest chain's head hash. */
  readonly sealed: { readonly files: number; readonly events: number; readonly head: string | null }
  /**
   * Symbolic links (or special files) found where the archive keeps its own files, each with why:
   * not read through, and worth a look (the archive never creates one; they may be planted).
   */
  readonly unsafePaths: ReadonlyArray<string>
  /** Lines whose id appeared earlier in the same open day file (should always be 0). */
  readonly duplicateIds: number
  readonly quarantine: {
    readonly total: number
    readonly byDay: Readonly<Record<string, number>>
    /**
     * Copies of an archived id the API served again under another day (`"kind":"movedDay"`): the
     * service moved the event's `created`. The first copy stays in `events/`, the later one here.
     */
    readonly movedDay: number
    /** Copies of an archived id served again with other bytes (`"kind":"variant"`). */
    readonly variants: number
  }
  /** The checkpoint, or `null` when there is none or it is invalid (see `checkpointError`). */
  readonly checkpoint: CheckpointJson | null
  readonly checkpointError: string | null
  readonly lastError: { readonly at: string; readonly message: string } | null
  /** Who holds `state/archiver.lock`; `running` is `null` when it cannot be checked (other host). */
  readonly lock: {
    readonly pid: number
    readonly host: string
    readonly startedAt: string
    readonly running: boolean | null
  } | null
  /** Total size of the archive's files, in bytes. */
  readonly sizeBytes: number
}

/**
 * Total size of the files under `dir`. `status` runs beside a running archiver, whose atomic
 * replaces rename temporary files away (and whose sealing removes day files) between the listing
 * and the lookup: what is gone by then counts for nothing, rather than failing the command.
 */
const sizeOf = async (dir: string): Promise<number> => {
  const entries = await unlessGone(() => fsp.readdir(dir, { withFileTypes: true }))
  let total = 0
  for (const entry of entries ?? []) {
    const p = path.join(dir, entry.name)
    if (entry.isDirectory()) total += await sizeOf(p)
    else if (entry.isFile()) total += (await lstatIfExists(p))?.size ?? 0
  }
  return total
}

/**
 * What an open day file holds. From the id index's mark when it still describes this file (same
 * inode, not shorter, the day not sealed since: `IdIndex.openMarkFor`), reading only what was
 * appended past it (after a crash, or while an archiver runs, since its last sync point);
 * otherwise the whole file. `segments` are the day's sealed segments (file names). A planted link
 * is an {@link UnsafePath}.
 */
const openDayTally = async (
  day: string,
  file: string,
  mark: IdIndex.DayMark | undefined,
  segments: ReadonlyArray<string>,
  signal: AbortSignal
): Promise<{ readonly tally: DayTally.DayTally; readonly size: number }> => {
  const st = mark?.open?.tally !== undefined ? await lstatIfExists(file) : undefined
  const covered = st !== undefined && st.isFile() ? IdIndex.openMarkFor(mark, segments, st) : undefined
  const prior = covered?.tally
  if (prior !== undefined && st!.size === covered!.size) return { tally: prior, size: covered!.size }
  // What the part read holds, added to what the mark says the part before holds.
  return DayTally.readOn(day, file, prior, prior !== undefined ? covered!.size : 0, signal)
}

/**
 * The events of the archive: its open day files, then the segments its manifest records. `status`
 * takes no lock, and a running archiver seals days meanwhile: it copies a day's open file into a
 * segment, records the segment in the manifest, then removes the file. So the open files are read
 * first and the manifest after them: a day sealed meanwhile is then in the manifest read, whether
 * its open file was still there to read (its sealed part is not counted twice: `sealedPrefix`, as
 * a crash between the last two steps leaves it too) or was gone already.
 */
const scanEvents = (
  l: ReturnType<typeof layout>,
  marks: Readonly<Record<string, IdIndex.DayMark>>,
  onUnsafe: (u: UnsafePath) => void,
  signal: AbortSignal
) =>
  (async () => {
    const byResource: Record<string, number> = {}
    const byDay: Array<DayCount> = []
    let totalEvents = 0
    let unreadableLines = 0
    let misfiledEvents = 0
    let duplicateIds = 0
    let earliest: { ms: number; text: string } | undefined
    let latest: { ms: number; text: string } | undefined
    const perDay = new Map<string, DayCount>()
    const see = (ms: number, text: string) => {
      if (earliest === undefined || ms < earliest.ms) earliest = { ms, text }
      if (latest === undefined || ms > latest.ms) latest = { ms, text }
    }
    /** Adds a segment's or an open file's counts to its day's. */
    const addDay = (day: string, events: number, counts: Readonly<Record<string, number>>) => {
      const prior = perDay.get(day)
      const dayByResource: Record<string, number> = { ...prior?.byResource }
      for (const [r, n] of Object.entries(counts)) DayTally.bump(dayByResource, r, n)
      perDay.set(day, { day, total: (prior?.total ?? 0) + events, byResource: dayByResource })
    }
    // The day files as reconcile lists them, so that both judge a mark alike (`IdIndex.openMarkFor`).
    const open: Array<{ day: string; file: string; read: { tally: DayTally.DayTally; size: number } }> = []
    for (const d of await unsafeDir(l.events, onUnsafe) ? [] : await dayStorage(l.events)) {
      if (d.open === undefined) continue
      const file = path.join(l.events, d.open)
      // Refused at the open (a link): not one line of it was counted.
      const read = await skippingUnsafe(() => unlessGone(() => openDayTally(d.day, file, marks[d.day], d.segments, signal)), onUnsafe, undefined)
      if (read !== undefined) open.push({ day: d.day, file, read })
    }
    /** Adds a recorded segment's counts and created range. */
    const addSegment = (e: Manifest.SegmentEntry) => {
      addDay(e.day, e.lines, e.byResource)
      for (const t of [e.minCreated, e.maxCreated]) if (t !== null && !Number.isNaN(Date.parse(t))) see(Date.parse(t), t)
    }
    const chain = await skippingUnsafe(() => Manifest.readEntries(l.root), onUnsafe, [])
    const sealed = new Map<string, Array<Manifest.SegmentEntry>>()
    for (const { entry: e } of chain) {
      if (e.kind !== "segment") continue
      sealed.set(e.day, [...sealed.get(e.day) ?? [], e])
      addSegment(e)
    }
    // Days whose open file a seal removed after the manifest was read (see below).
    const vanished = new Set<string>()
    for (const { day, file, read } of open) {
      // Usually nothing of it is sealed, and nothing is read to know it (no segment of the day).
      const daySegments = sealed.get(day) ?? []
      const from = daySegments.length === 0 ? 0 : await unlessGone(() => sealedPrefix(file, read.size, daySegments))
      if (from === undefined) {
        vanished.add(day)
        continue
      }
      if (from >= read.size) continue
      let tally = read.tally
      if (from > 0) {
        const tail = await DayTally.readOn(day, file, undefined, from, signal)
        // An open file only grows: read as empty, it is gone.
        if (tail.size === 0) {
          vanished.add(day)
          continue
        }
        tally = tail.tally
      }
      unreadableLines += tally.unreadable
      misfiledEvents += tally.misfiled
      duplicateIds += tally.duplicates
      if (tally.earliest !== null) see(tally.earliest.ms, tally.earliest.text)
      if (tally.latest !== null) see(tally.latest.ms, tally.latest.text)
      addDay(day, tally.events, tally.byResource)
    }
    // Sealing removes an open file only once its segment is recorded: a file gone after the
    // manifest was read is in the segments recorded since.
    if (vanished.size > 0) {
      const later = await skippingUnsafe(() => Manifest.readEntries(l.root), () => undefined, [])
      for (const { entry: e } of later.slice(chain.length)) if (e.kind === "segment" && vanished.has(e.day)) addSegment(e)
    }
    for (const d of [...perDay.values()].sort((a, b) => a.day < b.day ? -1 : 1)) {
      totalEvents += d.total
      for (const [r, n] of Object.entries(d.byResource)) DayTally.bump(byResource, r, n)
      byDay.push(d)
    }
    return {
      chain,
      totalEvents,
      byResource,
      byDay,
      earliestCreated: earliest?.text ?? null,
      latestCreated: latest?.text ?? null,
      unreadableLines,
      misfiledEvents,
      duplicateIds
    }
  })()

// The sink writes `kind` before `raw`, so the tag is found without parsing a large item.
const KIND = /^\{[^{]*?"kind":"(variant|movedDay)"/

/** Counts `quarantine/`'s lines per day and by kind (streaming; links refused by the line reader). */
export const scanQuarantine = async (quarantineDir: string, onUnsafe: (u: UnsafePath) => void, signal?: AbortSignal) => {
  const byDay: Record<string, number> = {}
  let total = 0
  let movedDay = 0
  let variants = 0
  for (const { day, file } of await unsafeDir(quarantineDir, onUnsafe) ? [] : await dayFiles(quarantineDir)) {
    let n = 0
    const read = await skippingUnsafe(() =>
      forEachLine(file, (line) => {
        n++
        const kind = KIND.exec(line)?.[1] ?? kindOf(line)
        if (kind === "movedDay") movedDay++
        else if (kind === "variant") variants++
      }, signal).then(() => true), onUnsafe, false)
    if (!read) continue
    if (n > 0) byDay[day] = n
    total += n
  }
  return { total, byDay, movedDay, variants }
}

/**
 * `read()`, or `skipped` when it refuses a planted link (reported to `onUnsafe`: links in the
 * archive are listed and never read through). Any other failure stays a failure.
 */
const skippingUnsafe = async <A, B>(
  read: () => Promise<A>,
  onUnsafe: (u: UnsafePath) => void,
  skipped: B
): Promise<A | B> => {
  try {
    return await read()
  } catch (e) {
    if (!(e instanceof UnsafePath)) throw e
    onUnsafe(e)
    return skipped
  }
}

/**
 * Whether `dir` is a link (reported to `onUnsafe`, and then not listed: its entries are elsewhere).
 * The readers' opens refuse links at the file level; this is the directory level.
 */
const unsafeDir = async (dir: string, onUnsafe: (u: UnsafePath) => void): Promise<boolean> => {
  const st = await lstatIfExists(dir)
  if (st === undefined || st.isDirectory()) return false
  onUnsafe(new UnsafePath(dir, st.isSymbolicLink() ? "is a symbolic link" : "is not a directory"))
  return true
}

/** The `kind` of a quarantine line whose fields are not in the sink's order (slow path). */
const kindOf = (line: string): string | undefined => {
  if (!line.includes("\"kind\"")) return undefined
  try {
    const v: unknown = JSON.parse(line)
    return typeof v === "object" && v !== null && "kind" in v && typeof v.kind === "string" ? v.kind : undefined
  } catch {
    return undefined
  }
}

/** Reads the status of the archive at `dir` (read-only). Fails if `dir` is not an archive directory. */
export const readStatus = (dir: string): Effect.Effect<ArchiveStatus, ArchiveReadError> =>
  Effect.gen(function*() {
    const l = layout(yield* existingArchive(dir))
    yield* tryRead(l.root, "opening the archive", async () => {
      try {
        const st = await fsp.stat(l.root)
        if (!st.isDirectory()) {
          throw Object.assign(new Error(`ENOTDIR: not a directory, ${l.root}`), { code: "ENOTDIR" })
        }
      } catch (e) {
        throw new StepFailure(
          l.root,
          errnoCode(e) === "ENOENT" ? "opening the archive (it does not exist)" : "opening the archive",
          e
        )
      }
    })
    // Links planted in the archive are never read through: they are listed, and skipped.
    const unsafePaths: Array<string> = []
    const onUnsafe = (u: UnsafePath) => unsafePaths.push(`${u.file} ${u.reason}`)
    // The index's marks say what the open day files hold, so that they need not be read.
    const marks = yield* tryRead(l.idIndex, "reading", () => skippingUnsafe(() => IdIndex.readMarks(l.state), onUnsafe, {}))
    const { chain, ...events } = yield* tryRead(l.events, "reading", (signal) => scanEvents(l, marks, onUnsafe, signal))
    const segments = chain.flatMap(({ entry }) => entry.kind === "segment" ? [entry] : [])
    const quarantine = yield* tryRead(l.quarantine, "reading", (signal) => scanQuarantine(l.quarantine, onUnsafe, signal))
    const sizeBytes = yield* tryRead(l.root, "measuring", () => sizeOf(l.root))
    const checkpoint = yield* Effect.either(loadCheckpoint(l.root))
    const lastError = yield* readLastError(l.root)
    const lock = yield* readLock(l.root)
    return {
      dir: l.root,
      ...events,
      quarantine,
      unsafePaths,
      sealed: {
        files: segments.length,
        events: segments.reduce((n, e) => n + e.lines, 0),
        head: chain.length > 0 ? Manifest.headOf(chain[chain.length - 1]!.line) : null
      },
      checkpoint: checkpoint._tag === "Right" ? Option.getOrNull(Option.map(checkpoint.right, toJson)) : null,
      checkpointError: checkpoint._tag === "Left" ? checkpoint.left.message : null,
      // Times are epoch millis in memory; the report (and its JSON) shows them as ISO-8601.
      lastError: Option.getOrNull(Option.map(lastError, (e) => ({ at: toIso(e.at), message: e.message }))),
      lock: Option.match(lock, {
        onNone: () => null,
        onSome: (info) => ({
          pid: info.pid,
          host: info.host,
          startedAt: info.startedAt === undefined ? "unknown" : toIso(info.startedAt),
          running: isHolderAlive(info) ?? null
        })
      }),
      sizeBytes
    }
  })

// ---------------------------------------------------------------------------------------------
// Report
// ---------------------------------------------------------------------------------------------

const bytes = (n: number): string => {
  const units = ["bytes", "KiB", "MiB", "GiB", "TiB"]
  let v = n
  let u = 0
  while (v >= 1024 && u < units.length - 1) {
    v /= 1024
    u++
  }
  return u === 0 ? `${n} bytes` : `${v.toFixed(1)} ${units[u]}`
}

const describeScope = (scope: CheckpointJson["scope"]): string => {
  const parts = [
    scope.resource !== undefined ? `resource=${scope.resource}` : undefined,
    scope.type !== undefined ? `type=${scope.type}` : undefined,
    scope.actorId !== undefined ? `actorId=${scope.actorId}` : undefined
  ].filter((p) => p !== undefined)
  return parts.length === 0 ? "all events" : parts.join(", ")
}

const table = (rows: ReadonlyArray<ReadonlyArray<string>>): ReadonlyArray<string> => {
  const widths = rows[0]!.map((_, i) => Math.max(...rows.map((r) => r[i]!.length)))
  return rows.map((r) => r.map((cell, i) => (i === 0 ? cell.padEnd(widths[i]!) : cell.padStart(widths[i]!))).join("  ").trimEnd())
}

/** A human-readable, multi-line report of {@link readStatus}. */
export const formatStatus = (s: ArchiveStatus): string => {
  const out: Array<string> = [`Archive: ${s.dir}`]
  const label = (name: string, value: string) => out.push(`${`${name}:`.padEnd(18)}${value}`)

  if (s.checkpointError !== null) {
    label("Checkpoint", `INVALID: ${s.checkpointError}`)
  } else if (s.checkpoint === null) {
    label("Covered", "nothing yet (no checkpoint)")
  } else {
    const c = s.checkpoint
    label("Scope", describeScope(c.scope))
    if (c.covered.length === 0) label("Covered", "nothing yet")
    c.covered.forEach((i, n) => label(n === 0 ? "Covered" : "", `${i.from} → ${i.through}`))
    if (c.backfill !== undefined) {
      label("Back-fill", `${c.backfill.from} → ${c.backfill.to}, done through ${c.backfill.doneThrough} (unfinished)`)
    }
    if (c.live !== undefined) label("Daemon", `polled through ${c.live.through}`)
    label("Last checkpoint", `${c.updatedAt}${c.runs !== undefined ? ` (${c.runs} runs)` : ""}`)
  }

  const resources = Object.keys(s.byResource).sort()
  label(
    "Events",
    `${s.totalEvents}` +
      (s.earliestCreated !== null && s.latestCreated !== null
        ? ` (created ${s.earliestCreated} … ${s.latestCreated})`
        : "")
  )
  if (resources.length > 0) label("By resource", resources.map((r) => `${r} ${s.byResource[r]}`).join(", "))
  const qDays = Object.keys(s.quarantine.byDay).sort()
  label(
    "Quarantined",
    s.quarantine.total === 0
      ? "0"
      : `${s.quarantine.total} (${qDays.map((d) => `${d}: ${s.quarantine.byDay[d]}`).join(", ")})`
  )
  if (s.quarantine.movedDay > 0) {
    label("Moved day", `${s.quarantine.movedDay} events the API served again under another day (the first copy is archived, the later one quarantined)`)
  }
  if (s.quarantine.variants > 0) {
    label("Variants", `${s.quarantine.variants} events the API served again with other bytes (the first copy is archived, the variant quarantined)`)
  }
  s.unsafePaths.forEach((p, i) => label(i === 0 ? "NOT READ" : "", `${p} (not read through; inspect it, it may have been planted)`))
  if (s.unreadableLines > 0) label("Unreadable lines", `${s.unreadableLines} (damaged lines in events/)`)
  if (s.misfiledEvents > 0) label("Misfiled events", `${s.misfiledEvents} (created on another day than their file)`)
  if (s.duplicateIds > 0) label("Duplicate ids", `${s.duplicateIds}`)
  label(
    "Sealed",
    s.sealed.files === 0
      ? "nothing yet"
      : `${s.sealed.files} files, ${s.sealed.events} events; manifest head ${s.sealed.head} (run verify to check them)`
  )
  label("Size", bytes(s.sizeBytes))
  label(
    "Lock",
    s.lock === null
      ? "not locked"
      : `pid ${s.lock.pid} on ${s.lock.host}, started ${s.lock.startedAt}` +
        (s.lock.running === null ? " (cannot check from here)" : s.lock.running ? " (running)" : " (stale: not running)")
  )
  label("Last error", s.lastError === null ? "none" : `${s.lastError.at}: ${s.lastError.message}`)

  if (s.byDay.length > 0) {
    out.push("")
    const rows = [
      ["Day", "Total", ...resources],
      ...s.byDay.map((d) => [d.day, `${d.total}`, ...resources.map((r) => `${Object.hasOwn(d.byResource, r) ? d.byResource[r] : 0}`)])
    ]
    out.push(...table(rows))
  }
  return out.join("\n")
}
