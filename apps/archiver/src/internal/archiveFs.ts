/**
 * The archive's storage primitives, by concern:
 * - `layout.ts`: where files live, modes, the calendar-day check;
 * - `errors.ts`: failures labelled by step and file, errno turned into sentences;
 * - `safeFs.ts`: opens that never follow a link, atomic replace, torn-tail repair, durable append;
 * - `lines.ts`: the one NDJSON line reader (plain and gzip'd), the id of a line;
 * - `idIndex.ts`: the persistent id -> day index.
 * This module opens an archive directory as a whole and re-exports the rest for the app's modules.
 *
 * @internal
 */
import * as fsp from "node:fs/promises"
import * as path from "node:path"
import * as Effect from "effect/Effect"
import type { ArchiveUnsafe, ArchiveWriteError } from "../ArchiveError.js"
import { at, errnoCode, StepFailure, trySafeWrite, tryWrite } from "./errors.js"
import { DAY_FILE, layout, SEGMENT_FILE } from "./layout.js"
import { ensureDir, type Tightened, tightenFiles } from "./safeFs.js"

export * from "./errors.js"
export * from "./layout.js"
export * from "./lines.js"
export * from "./safeFs.js"

// Temporary files of `writeFileAtomic` (random names): one left by a crash is garbage.
const STALE_TMP = /\.[0-9a-f]{12}\.tmp$/

const prepare = async (dir: string): Promise<ReadonlyArray<Tightened>> => {
  const l = layout(dir)
  const tightened: Array<Tightened> = []
  await ensureDir(l.root, tightened, true)
  for (const sub of [l.events, l.quarantine, l.state]) {
    await ensureDir(sub, tightened)
    await tightenFiles(sub, tightened, true)
  }
  return tightened
}

/**
 * Removes the temporary files a crash left in `state/` (random names: nobody else's). Only the
 * lock holder may: another archiver's in-flight temporary file is not garbage.
 */
export const sweepTemporaryFiles = (dir: string): Effect.Effect<void, ArchiveWriteError | ArchiveUnsafe> => {
  const state = layout(dir).state
  return trySafeWrite(state, "cleaning", async () => {
    for (const name of await at(state, "listing", () => fsp.readdir(state))) {
      // Unlinking removes a planted link itself, never its target.
      if (STALE_TMP.test(name)) await fsp.unlink(path.join(state, name)).catch(() => undefined)
    }
  })
}

const warnTightened = (tightened: ReadonlyArray<Tightened>) =>
  Effect.forEach(tightened, (t) =>
    Effect.logWarning(
      `${t.path} had mode ${t.from.toString(8).padStart(4, "0")}, broader than the archive's ` +
        `${t.to.toString(8).padStart(4, "0")}: tightened (if you did not loosen it, someone else may have had access)`
    ).pipe(Effect.annotateLogs({ path: t.path, mode: t.from.toString(8) })), { discard: true })

/**
 * Opens the archive directory for writing: creates its directories (0700), refuses planted links
 * and an archive made read-only, warns about and tightens broader modes.
 */
export const openArchiveLayout = (dir: string): Effect.Effect<void, ArchiveWriteError | ArchiveUnsafe> =>
  trySafeWrite(layout(dir).root, "preparing", () => prepare(dir)).pipe(Effect.flatMap(warnTightened))

/** {@link openArchiveLayout} for callers whose error type predates `ArchiveUnsafe` (same checks). */
export const ensureArchiveLayout = (dir: string): Effect.Effect<void, ArchiveWriteError> =>
  tryWrite(layout(dir).root, "preparing", () => prepare(dir)).pipe(Effect.flatMap(warnTightened))

/** The names in `dir`; empty if `dir` does not exist. */
const namesIn = async (dir: string): Promise<Array<string>> => {
  try {
    return await fsp.readdir(dir)
  } catch (e) {
    if (errnoCode(e) === "ENOENT") return []
    throw new StepFailure(dir, "listing", e)
  }
}

/** The `.ndjson` day files directly in `dir`, sorted by day; empty if `dir` does not exist. */
export const dayFiles = async (dir: string): Promise<ReadonlyArray<{ day: string; file: string }>> => {
  const names = await namesIn(dir)
  const out: Array<{ day: string; file: string }> = []
  for (const name of names.sort()) {
    const m = DAY_FILE.exec(name)
    if (m !== null) out.push({ day: m[1]!, file: path.join(dir, name) })
  }
  return out
}

/** A day's storage (CONTRACTS C4): its sealed segments in order, and its open file if any. */
export interface DayStorage {
  readonly day: string
  /** Sealed segment file names (`DAY.ndjson.gz`, `DAY.2.ndjson.gz`, …), by segment number. */
  readonly segments: ReadonlyArray<string>
  /** The open day file's name, when it exists. */
  readonly open: string | undefined
}

/**
 * Every day under `events/`, with its segments and open file; sorted by day. With `only`, that day
 * alone (or nothing): the sink asks for each day it loads, and a long sparse archive holds
 * thousands of days, whose names are then skipped by their first characters (issue 8: the full
 * parse of every name, for each day loaded, grew with the square of the archive's days).
 */
export const dayStorage = async (eventsDir: string, only?: string): Promise<ReadonlyArray<DayStorage>> => {
  const names = await namesIn(eventsDir)
  // Every name of a day's storage starts with the day and a dot (DAY_FILE, SEGMENT_FILE).
  const prefix = only === undefined ? undefined : `${only}.`
  const days = new Map<string, { segments: Array<[number, string]>; open: string | undefined }>()
  const entry = (day: string) => {
    let d = days.get(day)
    if (d === undefined) days.set(day, d = { segments: [], open: undefined })
    return d
  }
  for (const name of names) {
    if (prefix !== undefined && !name.startsWith(prefix)) continue
    const plain = DAY_FILE.exec(name)
    if (plain !== null) {
      entry(plain[1]!).open = name
      continue
    }
    const seg = SEGMENT_FILE.exec(name)
    if (seg !== null) entry(seg[1]!).segments.push([seg[2] === undefined ? 1 : Number(seg[2]), name])
  }
  return [...days.entries()].sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0)).map(([day, d]) => ({
    day,
    segments: d.segments.sort((a, b) => a[0] - b[0]).map(([, name]) => name),
    open: d.open
  }))
}
