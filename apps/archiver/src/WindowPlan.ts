/**
 * The windows a plan's segments are listed in, each sized by what the windows before it listed.
 *
 * A window is the archive's unit of progress: listed page by page, written, then checkpointed.
 * Each costs at least one request, a write with its fsync, and an atomic checkpoint save, so a
 * sparse stretch cut into fixed windows spends nearly all its time on windows that hold a handful
 * of events (issue 8: 100,000 events over four years in 6-hour windows is 6,000 windows, ten
 * times slower per event than the same events over a month). So windows start at the configured
 * length and, where the events are sparse, grow toward about {@link TARGET_ITEMS} events each (at
 * most doubling from one window to the next, and never past `longest`); where they are dense,
 * they fall straight back, never below the configured length. No order of events is assumed: the
 * estimate is only a count of what a finished window listed, and a wrong guess costs speed (more
 * pages in one window, or more windows), never completeness: every window still lists all of
 * `[listFrom, end)` and joins the coverage only once written.
 *
 * Pure: `next` is told what the previous window listed and returns the window after it, so each
 * plan is pinned by tests; `ArchiveWindow.ts` asks for a window only once the previous one's
 * listing has ended.
 */
import type { Segment } from "./Planner.js"

/** About this many events per window: one batch of the sink (one write and one fsync per file). */
export const TARGET_ITEMS = 1000

export interface Window {
  /** Start of the window's coverage (inclusive), epoch millis. */
  readonly start: number
  /** End of the window (exclusive). */
  readonly end: number
  /** Where its listing starts: `start`, or `overlap` earlier when it follows a window of the same segment. */
  readonly listFrom: number
}

export interface Options {
  /** The configured window length: every window's length, where events are dense. */
  readonly shortest: number
  /** The longest a window may grow to; equal to `shortest`, every window has that length. */
  readonly longest: number
  /** How far a window re-reads into its predecessor (the service's `from` may be exclusive). */
  readonly overlap: number
}

export interface Plan {
  /**
   * The next window, given how many events the previous one listed (ignored for the first);
   * `undefined` once every segment is cut.
   */
  readonly next: (listedByPrevious: number) => Window | undefined
  /** Milliseconds the plan spans in all, for progress. */
  readonly total: number
}

/**
 * The length to try after a window that was to be `tried` long, spanned `spanned` (less, when
 * its segment ended first) and listed `listed` events: what would have held about
 * {@link TARGET_ITEMS} at that density, at most twice `tried`, within the bounds.
 */
export const nextLength = (tried: number, spanned: number, listed: number, options: Options): number => {
  // A count that is not one (never from a listing) says nothing: back to the shortest.
  if (!(Number.isFinite(listed) && listed >= 0)) return options.shortest
  const wanted = listed === 0 ? Infinity : (spanned * TARGET_ITEMS) / listed
  return Math.max(options.shortest, Math.min(options.longest, 2 * tried, Math.floor(wanted)))
}

/** Cuts `segments` (in order, not overlapping) into windows, lazily. */
export const make = (segments: ReadonlyArray<Segment>, options: Options): Plan => {
  const shortest = Number.isNaN(options.shortest) ? 1 : Math.max(1, options.shortest)
  const bounds = { ...options, shortest, longest: Number.isNaN(options.longest) ? shortest : Math.max(shortest, options.longest) }
  let segment = 0
  let cursor = segments[0]?.from ?? 0
  let length = shortest
  let previous: Window | undefined
  return {
    total: segments.reduce((n, s) => n + Math.max(0, s.to - s.from), 0),
    next: (listedByPrevious) => {
      if (previous !== undefined) {
        // The density of what was just listed; a window clipped short by its segment's end says
        // as much per millisecond as a whole one.
        length = nextLength(length, previous.end - previous.start, listedByPrevious, bounds)
      }
      while (segment < segments.length && cursor >= segments[segment]!.to) {
        segment++
        cursor = segments[segment]?.from ?? cursor
      }
      const seg = segments[segment]
      if (seg === undefined) return (previous = undefined)
      const start = cursor
      const end = Math.min(seg.to, start + length)
      cursor = end
      // The first window of a segment starts where asked; the others re-read their predecessor's last second.
      previous = { start, end, listFrom: start === seg.from ? start : Math.max(seg.from, start - bounds.overlap) }
      return previous
    }
  }
}
