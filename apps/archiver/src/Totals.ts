/**
 * What a run did, counted per page and summed per window, range and run. Also the shape of the
 * `--json` summary of `backfill` and `run`.
 */
export interface Totals {
  readonly windows: number
  readonly pages: number
  /** Items the API listed, decodable or not. */
  readonly listed: number
  /** Events newly written to the archive. */
  readonly written: number
  /** Events already in the archive (repeated pages, overlaps, re-runs). */
  readonly duplicates: number
  /** Undecodable items kept in quarantine. */
  readonly quarantined: number
  /**
   * Of `written`, those created in time the archive already covered before they were listed (by
   * the run, or for `run` by that poll): events the API listed late, or lines missing from a day
   * file, found by `--recheck` or a poll's lookback.
   */
  readonly late: number
}

export const empty: Totals = { windows: 0, pages: 0, listed: 0, written: 0, duplicates: 0, quarantined: 0, late: 0 }

export const plus = (a: Totals, b: Totals): Totals => ({
  windows: a.windows + b.windows,
  pages: a.pages + b.pages,
  listed: a.listed + b.listed,
  written: a.written + b.written,
  duplicates: a.duplicates + b.duplicates,
  quarantined: a.quarantined + b.quarantined,
  late: a.late + b.late
})
