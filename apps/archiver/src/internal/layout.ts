/**
 * Where everything lives inside an archive directory, and the one calendar-day check.
 *
 * @internal
 */
import * as path from "node:path"

export const FILE_MODE = 0o600
export const DIR_MODE = 0o700

/** Where everything lives inside an archive directory (see `NdjsonSink.ts` for the layout). */
export const layout = (dir: string) => {
  const root = path.resolve(dir)
  const state = path.join(root, "state")
  return {
    root,
    events: path.join(root, "events"),
    quarantine: path.join(root, "quarantine"),
    state,
    checkpoint: path.join(state, "checkpoint.json"),
    checkpointTmp: path.join(state, "checkpoint.json.tmp"),
    lock: path.join(state, "archiver.lock"),
    lastError: path.join(state, "last-error.json"),
    lastErrorTmp: path.join(state, "last-error.json.tmp"),
    idIndex: path.join(state, "ids.json")
  } as const
}

export const DAY = /^\d{4}-\d{2}-\d{2}$/
export const DAY_FILE = /^(\d{4}-\d{2}-\d{2})\.ndjson$/
/** A sealed segment of a day (CONTRACTS C4): `DAY.ndjson.gz` is segment 1, `DAY.N.ndjson.gz` segment N. */
export const SEGMENT_FILE = /^(\d{4}-\d{2}-\d{2})(?:\.([1-9]\d*))?\.ndjson\.gz$/

/** `YYYY-MM-DD` and a real calendar day (no `2024-02-30`). */
export const isDay = (day: string): boolean => {
  if (!DAY.test(day)) return false
  const d = new Date(`${day}T00:00:00.000Z`)
  return !Number.isNaN(d.getTime()) && d.toISOString().slice(0, 10) === day
}
