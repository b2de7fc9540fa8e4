/**
 * What to fetch, decided by the checkpoint's coverage: a covered stretch is never listed again
 * unless asked for (the daemon's lookback, `backfill --recheck`). Pure functions of epoch
 * milliseconds, so each plan is pinned by tests; `Archiver.ts` only carries them out.
 *
 * Plans are merged: stretches that touch are listed as one, since every listing costs requests
 * against the organisation's rate limit.
 */
import * as Coverage from "./Coverage.js"

/** One stretch to list, `[from, to)`. */
export interface Segment {
  readonly from: number
  readonly to: number
}

const merge = (intervals: ReadonlyArray<Coverage.Interval>): ReadonlyArray<Segment> =>
  intervals.reduce<ReadonlyArray<Coverage.Interval>>(Coverage.add, []).map((i) => ({ from: i.from, to: i.through }))

/**
 * `backfill [from, to)`: only the parts the coverage lacks; with `recheck`, the whole range (the
 * covered parts to find events the API listed late).
 */
export const backfill = (
  coverage: ReadonlyArray<Coverage.Interval>,
  range: { readonly from: number; readonly to: number; readonly recheck: boolean }
): ReadonlyArray<Segment> =>
  range.recheck
    ? merge([{ from: range.from, through: range.to }])
    : merge(Coverage.gaps(coverage, range.from, range.to))

/** A daemon pass: what to list, or nowhere to start. */
export type RunPlan =
  | { readonly _tag: "Plan"; readonly segments: ReadonlyArray<Segment> }
  | { readonly _tag: "NoStart" }

/**
 * One daemon pass up to `now`: every uncovered part from the start (`--from`, else the covered
 * end), plus the last `lookback` of coverage re-read for late arrivals (never before `--from`).
 * Without `--from` and without coverage there is nowhere to start.
 */
export const run = (
  coverage: ReadonlyArray<Coverage.Interval>,
  options: { readonly from: number | undefined; readonly lookback: number; readonly now: number }
): RunPlan => {
  const coveredEnd = Coverage.end(coverage)
  const start = options.from ?? (coveredEnd === undefined ? undefined : coveredEnd - options.lookback)
  if (start === undefined) return { _tag: "NoStart" }
  const tailEnd = Math.min(coveredEnd ?? start, options.now)
  return {
    _tag: "Plan",
    segments: merge([
      ...Coverage.gaps(coverage, start, options.now),
      ...Coverage.overlap(coverage, Math.max(start, tailEnd - options.lookback), tailEnd)
    ])
  }
}
