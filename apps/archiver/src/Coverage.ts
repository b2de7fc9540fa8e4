/**
 * Which stretches of time the archive holds completely.
 *
 * A window joins the coverage only once every page of it is durably written, so coverage is
 * the archive's claim of completeness: "every event the API listed as created in these
 * intervals is on disk". Intervals are half-open, `[from, through)`, kept sorted and merged.
 * Instants are compared as epoch milliseconds, never as text.
 */
export interface Interval {
  readonly from: string
  readonly through: string
}

const ms = (iso: string): number => Date.parse(iso)

/** Adds an interval, merging it with every interval it overlaps or touches. */
export const add = (coverage: ReadonlyArray<Interval>, interval: Interval): ReadonlyArray<Interval> => {
  if (ms(interval.through) <= ms(interval.from)) return coverage
  const all = [...coverage, interval].sort((a, b) => ms(a.from) - ms(b.from))
  const merged: Array<Interval> = []
  for (const next of all) {
    const last = merged[merged.length - 1]
    if (last !== undefined && ms(next.from) <= ms(last.through)) {
      if (ms(next.through) > ms(last.through)) merged[merged.length - 1] = { from: last.from, through: next.through }
    } else {
      merged.push(next)
    }
  }
  return merged
}

/** Whether `[from, through)` lies entirely inside one covered interval. */
export const covers = (coverage: ReadonlyArray<Interval>, from: string, through: string): boolean =>
  coverage.some((i) => ms(i.from) <= ms(from) && ms(through) <= ms(i.through))

/** The parts of `[from, through)` not covered, in order. */
export const gaps = (coverage: ReadonlyArray<Interval>, from: string, through: string): ReadonlyArray<Interval> => {
  const out: Array<Interval> = []
  let cursor = ms(from)
  const end = ms(through)
  for (const i of coverage) {
    if (ms(i.through) <= cursor || ms(i.from) >= end) continue
    if (ms(i.from) > cursor) out.push({ from: new Date(cursor).toISOString(), through: i.from })
    cursor = Math.max(cursor, ms(i.through))
  }
  if (cursor < end) out.push({ from: new Date(cursor).toISOString(), through: new Date(end).toISOString() })
  return out
}

/** Splits `[from, to)` into consecutive windows of at most `sizeMillis`. */
export const windows = (from: number, to: number, sizeMillis: number): ReadonlyArray<readonly [number, number]> => {
  const out: Array<readonly [number, number]> = []
  for (let start = from; start < to; start += sizeMillis) out.push([start, Math.min(to, start + sizeMillis)])
  return out
}
