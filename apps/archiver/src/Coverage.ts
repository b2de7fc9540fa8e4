/**
 * Which stretches of time the archive holds completely.
 *
 * A window joins the coverage only once every page of it is durably written, so coverage is
 * the archive's claim of completeness: "every event the API listed as created in these
 * intervals is on disk". Intervals are half-open, `[from, through)`, in epoch milliseconds
 * (decoded once from the checkpoint, see `Instant.ts`), kept sorted and merged.
 */
export interface Interval {
  readonly from: number
  readonly through: number
}

/** Adds an interval, merging it with every interval it overlaps or touches. */
export const add = (coverage: ReadonlyArray<Interval>, interval: Interval): ReadonlyArray<Interval> => {
  if (interval.through <= interval.from) return coverage
  const all = [...coverage, interval].sort((a, b) => a.from - b.from)
  const merged: Array<Interval> = []
  for (const next of all) {
    const last = merged[merged.length - 1]
    if (last !== undefined && next.from <= last.through) {
      if (next.through > last.through) merged[merged.length - 1] = { from: last.from, through: next.through }
    } else {
      merged.push(next)
    }
  }
  return merged
}

/** Whether `[from, through)` lies entirely inside one covered interval. */
export const covers = (coverage: ReadonlyArray<Interval>, from: number, through: number): boolean =>
  coverage.some((i) => i.from <= from && through <= i.through)

/** The parts of `[from, through)` not covered, in order. */
export const gaps = (coverage: ReadonlyArray<Interval>, from: number, through: number): ReadonlyArray<Interval> => {
  const out: Array<Interval> = []
  let cursor = from
  for (const i of coverage) {
    if (i.through <= cursor || i.from >= through) continue
    if (i.from > cursor) out.push({ from: cursor, through: i.from })
    cursor = Math.max(cursor, i.through)
  }
  if (cursor < through) out.push({ from: cursor, through })
  return out
}

/** The parts of `[from, through)` that are covered, in order (the complement of {@link gaps}). */
export const overlap = (coverage: ReadonlyArray<Interval>, from: number, through: number): ReadonlyArray<Interval> =>
  coverage.flatMap((i) => {
    const a = Math.max(i.from, from)
    const b = Math.min(i.through, through)
    return a < b ? [{ from: a, through: b }] : []
  })

/** The end of the latest covered interval, if anything is covered. */
export const end = (coverage: ReadonlyArray<Interval>): number | undefined =>
  coverage.length === 0 ? undefined : Math.max(...coverage.map((i) => i.through))
