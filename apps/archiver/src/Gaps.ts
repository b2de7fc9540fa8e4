/**
 * `webex-archiver gaps`: the stretches of time the archive does not prove complete.
 *
 * @since 0.2.0
 */
import * as Option from "effect/Option"
import type { CheckpointState } from "./Checkpoint.js"
import * as Coverage from "./Coverage.js"

/**
 * The checkpoint's coverage as `[from, through)` epoch-millisecond pairs, sorted and merged.
 * The one place the evidence modules read the checkpoint's representation of time.
 */
export const coveredMillis = (state: CheckpointState): Array<readonly [number, number]> =>
  state.covered.map((i) => [i.from, i.through] as const)

export interface Gap {
  readonly start: string
  readonly end: string
}

/**
 * The uncovered intervals of `[from, to)`; `from` defaults to the first covered instant (or `to`
 * when nothing is covered, so an empty archive has no gaps to list before it starts).
 */
export const gapsOf = (
  state: Option.Option<CheckpointState>,
  from: number | undefined,
  to: number
): ReadonlyArray<Gap> => {
  const covered = Option.match(state, { onNone: (): ReadonlyArray<Coverage.Interval> => [], onSome: (s) => s.covered })
  const start = from ?? covered[0]?.from ?? to
  if (start >= to) return []
  return Coverage.gaps(covered, start, to)
    .map((g) => ({ start: new Date(g.from).toISOString(), end: new Date(g.through).toISOString() }))
}
