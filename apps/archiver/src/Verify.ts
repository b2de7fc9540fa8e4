/**
 * `webex-archiver verify`: recomputes the archive's evidence and names every problem.
 *
 * - The manifest chain: every entry's `prev` must be the SHA-256 of the line before it and `seq`
 *   must count up from 0, so an entry edited, removed or reordered is named; with `--public-key`,
 *   every entry's Ed25519 signature; with `--head`, the given head must be one of the chain's.
 * - Every sealed file, streamed: its SHA-256 and size against its entry (edited, truncated), files
 *   the manifest lists but the disk lacks (removed), segment files it does not list (added), and a
 *   removed file whose bytes reappear under another name (renamed).
 * - Every event line, sealed or open: duplicate ids (a day's events are partitioned by `created`,
 *   so only one day's ids are held at a time) and lines that are not JSON.
 * - Quarantine files recorded by a seal: removed, truncated or edited since. What `quarantine/`
 *   holds is reported too (moved-day copies and variants), as evidence, not as damage.
 * - Links or special files where the archive keeps its own: reported (`unsafe-path`), never read.
 * - The checkpoint's coverage: every hole between its first and last covered instant.
 *
 * The last entry's own bytes are covered only by a signature or a kept head: say so in the docs.
 *
 * @since 0.2.0
 */
import type { KeyObject } from "node:crypto"
import * as fsp from "node:fs/promises"
import { join, relative } from "node:path"
import * as Duration from "effect/Duration"
import * as Effect from "effect/Effect"
import * as Either from "effect/Either"
import * as Option from "effect/Option"
import * as Schema from "effect/Schema"
import { ArchiveReadError } from "./ArchiveError.js"
import { loadCheckpoint } from "./Checkpoint.js"
import { coveredMillis } from "./Gaps.js"
import { errnoCode, layout, tryRead, UnsafePath } from "./internal/archiveFs.js"
import * as Manifest from "./Manifest.js"
import { scanQuarantine } from "./ArchiveStatus.js"
import { digestFile, type EventFile, fieldsOf, forEachEventLine, listEventFiles, sealedStarts } from "./Segments.js"

export type ProblemKind =
  | "file-edited"
  | "file-truncated"
  | "file-removed"
  | "file-added"
  | "file-renamed"
  | "file-unreadable"
  | "entry-edited"
  | "entry-removed"
  | "entry-reordered"
  | "entry-unreadable"
  | "bad-signature"
  | "unsigned-entry"
  | "head-not-found"
  | "duplicate-id"
  | "unreadable-line"
  | "window-not-covered"
  | "checkpoint"
  | "unsafe-path"

export interface Problem {
  readonly kind: ProblemKind
  readonly message: string
  /** The file concerned, relative to the archive root. */
  readonly path?: string
  /** The manifest line concerned (1-based). */
  readonly line?: number
}

export interface VerifyReport {
  readonly dir: string
  readonly intact: boolean
  /** SHA-256 of the manifest's last line (64 zeros when there is none): keep it to pass as `--head`. */
  readonly head: string
  readonly entries: number
  readonly sealedFiles: number
  readonly openFiles: number
  readonly events: number
  /**
   * What `quarantine/` holds. Not damage (the archive kept what it could not file), but evidence to
   * look at: `movedDay` counts ids the API served again under another day, `variants` ids served
   * again with other bytes; the first copy of each is in `events/`.
   */
  readonly quarantine: { readonly total: number; readonly movedDay: number; readonly variants: number }
  readonly problems: ReadonlyArray<Problem>
}

export interface VerifyOptions {
  readonly dir: string
  readonly publicKey?: KeyObject | undefined
  readonly head?: string | undefined
  /** Called after each file with (files done, files in all), for a progress line. */
  readonly progress?: ((done: number, total: number) => void) | undefined
}

/** `verify` found damage: the archive is not intact (the report lists each problem). */
export class ArchiveNotIntact extends Schema.TaggedError<ArchiveNotIntact>()("ArchiveNotIntact", {
  path: Schema.String,
  problems: Schema.Number,
  message: Schema.String
}) {}

const rel = (name: string) => `events/${name}`

const sortKeys = (o: Readonly<Record<string, number>>) => Object.fromEntries(Object.entries(o).sort(([a], [b]) => a < b ? -1 : 1))

/**
 * A file's SHA-256 and size as stored (a sealed segment's, to compare with its entry; an open file
 * is recorded nowhere, so it is not hashed), then its event lines from `start` (gunzipped if
 * sealed), streaming.
 */
const scanFile = async (
  f: EventFile,
  start: number,
  onLine: (line: string) => void
): Promise<{ sha256: string; bytes: number; error?: string }> => {
  const stored = f.segment > 0 ? await digestFile(f.file) : { sha256: "", bytes: 0 }
  try {
    await forEachEventLine(f.file, onLine, undefined, start)
    return stored
  } catch (e) {
    // Gone, not damaged: `verify` looks again (a seal removed it).
    if (errnoCode(e) === "ENOENT") throw e
    return { ...stored, error: e instanceof Error ? e.message : String(e) }
  }
}

const checkChain = (lines: ReadonlyArray<string>, options: VerifyOptions, problems: Array<Problem>) => {
  const parsed = lines.map((line, i) => ({ line, n: i + 1, entry: Manifest.parseLine(line) }))
  const seqs: Array<number | undefined> = []
  for (const p of parsed) {
    if (Either.isLeft(p.entry)) {
      problems.push({ kind: "entry-unreadable", line: p.n, message: `Manifest line ${p.n} is ${p.entry.left}: it was edited or damaged` })
      seqs.push(undefined)
    } else {
      seqs.push(p.entry.right.seq)
    }
  }
  // Removed: a seq that never appears below the highest one; reordered: a seq lower than the one before.
  const present = new Set(seqs.filter((s): s is number => s !== undefined))
  const max = Math.max(-1, ...present)
  let gapStart: number | undefined
  for (let s = 0; s <= max + 1; s++) {
    if (s <= max && !present.has(s)) gapStart ??= s
    else if (gapStart !== undefined) {
      problems.push({
        kind: "entry-removed",
        message: gapStart === s - 1
          ? `Manifest entry ${gapStart} was removed`
          : `Manifest entries ${gapStart} to ${s - 1} were removed`
      })
      gapStart = undefined
    }
  }
  let lastSeq: number | undefined
  for (let i = 0; i < parsed.length; i++) {
    const s = seqs[i]
    if (s === undefined) continue
    if (lastSeq !== undefined && s <= lastSeq) {
      problems.push({
        kind: "entry-reordered",
        line: parsed[i]!.n,
        message: `Manifest entry ${s} (line ${parsed[i]!.n}) comes after entry ${lastSeq}: entries were reordered or repeated`
      })
    }
    lastSeq = s
  }
  // Edited: the next entry's hash of this line no longer matches (and nothing else explains it).
  for (let i = 0; i < parsed.length; i++) {
    const p = parsed[i]!
    if (Either.isLeft(p.entry)) continue
    const e = p.entry.right
    const expected = i === 0 ? Manifest.GENESIS : Manifest.hashLine(parsed[i - 1]!.line)
    if (e.prev === expected) continue
    const before = i === 0 ? undefined : seqs[i - 1]
    if (i === 0 ? e.seq === 0 : before !== undefined && e.seq === before + 1) {
      problems.push(i === 0
        ? { kind: "entry-edited", line: 1, message: "Manifest entry 0 (line 1) was edited: its link to the start of the chain is wrong" }
        : {
          kind: "entry-edited",
          line: i,
          message: `Manifest entry ${before} (line ${i}) was edited: entry ${e.seq} recorded a different hash of it`
        })
    }
  }
  if (options.publicKey !== undefined) {
    for (const p of parsed) {
      const { body, sig } = Manifest.splitSignature(p.line)
      if (sig === undefined) {
        problems.push({ kind: "unsigned-entry", line: p.n, message: `Manifest line ${p.n} is not signed` })
      } else if (!Manifest.verifyLine(body, sig, options.publicKey)) {
        problems.push({ kind: "bad-signature", line: p.n, message: `Manifest line ${p.n} has a bad signature: it was altered or signed with another key` })
      }
    }
  }
  const hashes = new Set([Manifest.GENESIS, ...lines.map(Manifest.hashLine)])
  const head = Manifest.headOf(lines[lines.length - 1])
  if (options.head !== undefined && !hashes.has(options.head.trim().toLowerCase())) {
    problems.push({
      kind: "head-not-found",
      message: `The head ${options.head} is not in the manifest's chain (now ${head}): the manifest was rewritten since that head was taken`
    })
  }
  return { parsed, head }
}

/** Verifications of an archive that a seal kept changing, before the last one is reported as is. */
const ATTEMPTS = 5
/** How long a verification that raced a seal waits, at most, for the manifest to stop growing. */
const SETTLE_POLLS = 600
const SETTLE_POLL = Duration.millis(100)

/**
 * Verifies the archive at `dir` (read-only); the report lists every problem.
 *
 * It takes no lock, so a running archiver may seal days meanwhile: link a segment, record it in
 * the manifest, remove the open file. Caught between those steps, one verification sees a segment
 * the manifest it read does not record, or a day twice, or an open file gone. So when the
 * manifest grew while a verification ran and that verification found problems (or an open file
 * vanished), it is run again; what persists is reported.
 */
export const verify = (options: VerifyOptions): Effect.Effect<VerifyReport, ArchiveReadError> =>
  Effect.gen(function*() {
    const manifest = () =>
      Effect.promise(() => Manifest.readManifestText(options.dir).catch(() => undefined))
    for (let attempt = 1;; attempt++) {
      const before = yield* manifest()
      const result = yield* Effect.either(verifyOnce(options))
      // A file gone while it was read was removed by a seal (the archive removes nothing else),
      // whether or not the manifest changed while this pass ran: the seal may have recorded its
      // segment just before.
      const vanished = Either.isLeft(result) && result.left.code === "ENOENT"
      const raced = vanished || (Either.isRight(result) && result.right.problems.length > 0)
      let now = raced ? yield* manifest() : before
      if (attempt === ATTEMPTS || !raced || (now === before && !vanished)) return yield* result
      // A seal is running: its days follow each other quickly. Wait until one poll finds the
      // manifest as the last one did, then verify again.
      for (let poll = 0; poll < SETTLE_POLLS; poll++) {
        yield* Effect.sleep(SETTLE_POLL)
        const later = yield* manifest()
        if (later === now) break
        now = later
      }
    }
  }).pipe(Effect.withSpan("Verify.verify"))

/** One verification of the archive, as the files and the manifest were while it read them. */
const verifyOnce = (options: VerifyOptions): Effect.Effect<VerifyReport, ArchiveReadError> =>
  Effect.gen(function*() {
    const l = layout(options.dir)
    yield* tryRead(l.root, "opening the archive", () => fsp.stat(l.root).then((st) => {
      if (!st.isDirectory()) throw Object.assign(new Error(`ENOTDIR: not a directory, ${l.root}`), { code: "ENOTDIR" })
    }))
    const problems: Array<Problem> = []
    // A link planted in the archive is never read through: it is a problem to report, by name.
    const unsafeProblem = (u: UnsafePath): Problem => ({
      kind: "unsafe-path",
      path: relative(l.root, u.file),
      message: `${u.file} ${u.reason}: it was not read (the archive never creates one; it may have been planted)`
    })
    const unsafe = async <A>(fallback: A, f: () => Promise<A>): Promise<A> => {
      try {
        return await f()
      } catch (e) {
        if (!(e instanceof UnsafePath)) throw e
        problems.push(unsafeProblem(e))
        return fallback
      }
    }
    const manifestText = yield* tryRead(Manifest.manifestPath(l.root), "reading", () =>
      unsafe("", async () => (await Manifest.readManifestText(l.root)) ?? ""))
    if (manifestText.length > 0 && !manifestText.endsWith("\n")) {
      problems.push({ kind: "entry-unreadable", message: "The manifest's last line is incomplete (truncated, or a seal was interrupted and not yet repaired)" })
    }
    const lines = manifestText.split("\n").filter((line) => line.length > 0)
    const { head, parsed } = checkChain(lines, options, problems)

    // The latest entry for each path; a path recorded twice is itself suspicious.
    const expected = new Map<string, Manifest.SegmentEntry & { readonly line: number }>()
    for (const p of parsed) {
      if (Either.isLeft(p.entry) || p.entry.right.kind !== "segment") continue
      const e = p.entry.right
      if (expected.has(e.path)) {
        problems.push({ kind: "entry-edited", line: p.n, path: e.path, message: `${e.path} is recorded twice in the manifest (line ${p.n})` })
      }
      expected.set(e.path, { ...e, line: p.n })
    }

    const files = yield* tryRead(l.events, "listing", () => unsafe([] as ReadonlyArray<EventFile>, () => listEventFiles(l.events)))
    // An open file whose start a listed segment holds (a seal interrupted before it removed the
    // file, or running meanwhile) is checked past it, so its events are not reported as duplicates.
    const startOf = sealedStarts(files, (p) => expected.get(p))
    const sealedOnDisk = new Set(files.filter((f) => f.segment > 0).map((f) => rel(f.name)))
    const added: Array<{ path: string; sha256: string }> = []
    let events = 0
    let done = 0
    let day: string | undefined
    let ids = new Map<string, string>()
    for (const f of files) {
      if (f.day !== day) {
        day = f.day
        ids = new Map()
      }
      const path = rel(f.name)
      let fileLines = 0
      const fileByResource: Record<string, number> = {}
      const scanned = yield* tryRead(f.file, "reading", () =>
        unsafe(undefined, async () => scanFile(f, f.segment === 0 ? await startOf(f) : 0, (line) => {
          events++
          fileLines++
          const fields = fieldsOf(line)
          const r = fields?.resource ?? "(no resource)"
          fileByResource[r] = (fileByResource[r] ?? 0) + 1
          if (fields === undefined) {
            problems.push({ kind: "unreadable-line", path, message: `${path} holds a line that is not a JSON object` })
            return
          }
          if (fields.id === undefined) return
          const first = ids.get(fields.id)
          if (first !== undefined) {
            problems.push({
              kind: "duplicate-id",
              path,
              message: first === path
                ? `Event ${fields.id} appears twice in ${path}`
                : `Event ${fields.id} appears in both ${first} and ${path}`
            })
          } else {
            ids.set(fields.id, path)
          }
        })))
      if (scanned === undefined) {
        options.progress?.(++done, files.length)
        continue
      }
      if (f.segment > 0) {
        const e = expected.get(path)
        if (e === undefined) {
          added.push({ path, sha256: scanned.sha256 })
        } else if (e.sha256 !== scanned.sha256 || e.bytes !== scanned.bytes) {
          problems.push(scanned.bytes < e.bytes
            ? { kind: "file-truncated", path, message: `${path} was truncated: ${scanned.bytes} bytes, the manifest recorded ${e.bytes}` }
            : { kind: "file-edited", path, message: `${path} was edited: its SHA-256 is ${scanned.sha256}, the manifest recorded ${e.sha256}` })
        } else if (
          scanned.error === undefined &&
          (e.lines !== fileLines || JSON.stringify(sortKeys(e.byResource)) !== JSON.stringify(sortKeys(fileByResource)))
        ) {
          // The file is the one recorded, so its entry's counts were changed (the last entry has
          // no successor whose link would show it).
          problems.push({
            kind: "entry-edited",
            line: e.line,
            path,
            message: `Manifest entry ${e.seq} (line ${e.line}) was edited: it records ${e.lines} events for ${path}, which holds ${fileLines}` +
              (e.lines === fileLines ? " with other counts by resource" : "")
          })
        } else if (scanned.error !== undefined) {
          problems.push({ kind: "file-unreadable", path, message: `${path} matches its hash but does not decompress: ${scanned.error}` })
        }
      } else if (scanned.error !== undefined) {
        problems.push({ kind: "file-unreadable", path, message: `${path} cannot be read: ${scanned.error}` })
      }
      options.progress?.(++done, files.length)
    }
    const missing = [...expected.values()].filter((e) => !sealedOnDisk.has(e.path))
    for (const a of added) {
      const from = missing.findIndex((m) => m.sha256 === a.sha256)
      if (from >= 0) {
        problems.push({ kind: "file-renamed", path: a.path, message: `${missing[from]!.path} was renamed to ${a.path}` })
        missing.splice(from, 1)
      } else {
        problems.push({ kind: "file-added", path: a.path, message: `${a.path} is not in the manifest: it was added (or its entry removed)` })
      }
    }
    for (const m of missing) {
      problems.push({ kind: "file-removed", path: m.path, message: `${m.path} was removed (manifest line ${m.line})` })
    }

    // Quarantine files recorded by a seal: still there, and still the bytes recorded.
    for (const p of parsed) {
      if (Either.isLeft(p.entry) || p.entry.right.kind !== "quarantine") continue
      const e = p.entry.right
      // Only the archive's own quarantine names: an edited entry must not steer verify elsewhere.
      if (!/^quarantine\/\d{4}-\d{2}-\d{2}\.ndjson$/.test(e.path)) {
        problems.push({ kind: "entry-edited", line: p.n, message: `Manifest line ${p.n} records ${JSON.stringify(e.path)}, not a quarantine file` })
        continue
      }
      const file = join(l.root, e.path)
      const stored = yield* tryRead(file, "reading", () =>
        unsafe(null, async () => {
          try {
            return await digestFile(file)
          } catch (err) {
            if (errnoCode(err) === "ENOENT") return undefined
            throw err
          }
        }))
      if (stored === null) continue
      if (stored === undefined) {
        problems.push({ kind: "file-removed", path: e.path, message: `${e.path} was removed (manifest line ${p.n})` })
      } else if (stored.sha256 !== e.sha256 || stored.bytes !== e.bytes) {
        problems.push(stored.bytes < e.bytes
          ? { kind: "file-truncated", path: e.path, message: `${e.path} was truncated: ${stored.bytes} bytes, the manifest recorded ${e.bytes}` }
          : { kind: "file-edited", path: e.path, message: `${e.path} was edited: its SHA-256 is ${stored.sha256}, the manifest recorded ${e.sha256}` })
      }
    }

    const checkpoint = yield* Effect.either(loadCheckpoint(l.root))
    if (Either.isLeft(checkpoint)) {
      problems.push({ kind: "checkpoint", message: checkpoint.left.message })
    } else if (Option.isNone(checkpoint.right)) {
      if (parsed.length > 0) problems.push({ kind: "checkpoint", message: "The manifest records sealed days but state/checkpoint.json is missing" })
    } else {
      const covered = coveredMillis(checkpoint.right.value)
      for (let i = 1; i < covered.length; i++) {
        const from = new Date(covered[i - 1]![1]).toISOString()
        const to = new Date(covered[i]![0]).toISOString()
        problems.push({ kind: "window-not-covered", message: `${from}/${to} was never covered: events created then may be missing` })
      }
    }

    const q = yield* tryRead(l.quarantine, "reading", (signal) =>
      scanQuarantine(l.quarantine, (u) => problems.push(unsafeProblem(u)), signal))

    return {
      dir: l.root,
      intact: problems.length === 0,
      head,
      entries: lines.length,
      sealedFiles: sealedOnDisk.size,
      openFiles: files.filter((f) => f.segment === 0).length,
      events,
      quarantine: { total: q.total, movedDay: q.movedDay, variants: q.variants },
      problems
    }
  })

/** The human-readable report. */
export const formatReport = (r: VerifyReport): string => {
  const out = [
    `Archive: ${r.dir}`,
    `Manifest: ${r.entries} entries; head ${r.head}`,
    `Files: ${r.sealedFiles} sealed, ${r.openFiles} open; ${r.events} events`
  ]
  if (r.quarantine.total > 0) {
    out.push(
      `Quarantine: ${r.quarantine.total} items; ${r.quarantine.movedDay} moved-day copies (ids the API served again under another day), ` +
        `${r.quarantine.variants} variants (ids served again with other bytes); the first copy of each is archived`
    )
  }
  if (r.intact) out.push("INTACT: every sealed file matches the manifest, the chain is unbroken, no duplicate ids, no coverage holes.")
  else {
    out.push(`NOT INTACT: ${r.problems.length} problem${r.problems.length === 1 ? "" : "s"}`)
    for (const p of r.problems) out.push(`  ${p.kind.padEnd(18)} ${p.message}`)
  }
  return out.join("\n")
}
