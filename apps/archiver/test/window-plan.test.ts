import { assert, describe, it } from "@effect/vitest"
import * as FastCheck from "effect/FastCheck"
import * as WindowPlan from "../src/WindowPlan.js"

const H = 3_600_000
const D = 24 * H

/** Every window of `plan`, each told that the previous listed what `listed` says of it. */
const drain = (plan: WindowPlan.Plan, listed: (w: WindowPlan.Window) => number = () => 0) => {
  const out: Array<WindowPlan.Window> = []
  let count = 0
  for (let w = plan.next(count); w !== undefined; w = plan.next(count)) {
    out.push(w)
    count = listed(w)
  }
  return out
}

const fixed = { shortest: 6 * H, longest: 6 * H, overlap: 1000 }
const growing = { shortest: 6 * H, longest: 7 * D, overlap: 1000 }

describe("WindowPlan", () => {
  it("with longest equal to shortest, cuts each segment into windows of that length, the last one shorter", () => {
    const plan = WindowPlan.make([{ from: 0, to: 20 * H }], fixed)
    const ws = drain(plan, () => 0)
    assert.deepStrictEqual(ws.map((w) => [w.start / H, w.end / H]), [[0, 6], [6, 12], [12, 18], [18, 20]])
    // The first window lists from where it starts; the others re-read a second of their predecessor.
    assert.deepStrictEqual(ws.map((w) => w.start - w.listFrom), [0, 1000, 1000, 1000])
    assert.strictEqual(plan.total, 20 * H)
  })

  it("where nothing is listed, each window doubles, up to the longest", () => {
    const ws = drain(WindowPlan.make([{ from: 0, to: 60 * D }], growing))
    assert.deepStrictEqual(ws.slice(0, 7).map((w) => (w.end - w.start) / H), [6, 12, 24, 48, 96, 168, 168])
  })

  it("sizes a window for about a thousand events at the density the previous one listed", () => {
    // 100 events per day, evenly: windows settle at ten days' worth (capped at seven).
    const perDay = (n: number) => (w: WindowPlan.Window) => Math.round(((w.end - w.start) / D) * n)
    const sparse = drain(WindowPlan.make([{ from: 0, to: 200 * D }], growing), perDay(100))
    assert.strictEqual((sparse[sparse.length - 2]!.end - sparse[sparse.length - 2]!.start) / D, 7)
    // 400 a day: 2.5 days per window.
    const medium = drain(WindowPlan.make([{ from: 0, to: 200 * D }], growing), perDay(400))
    assert.strictEqual(medium[10]!.end - medium[10]!.start, 2.5 * D)
    // 100,000 a day: never below the configured length.
    const dense = drain(WindowPlan.make([{ from: 0, to: 3 * D }], growing), perDay(100_000))
    assert.isTrue(dense.every((w) => w.end - w.start === 6 * H))
  })

  it("falls straight back to the configured length where the events turn dense", () => {
    let dense = false
    const ws = drain(WindowPlan.make([{ from: 0, to: 100 * D }], growing), (w) => {
      dense = w.start >= 20 * D
      return dense ? 1_000_000 : 0
    })
    const firstDense = ws.findIndex((w) => w.start >= 20 * D)
    assert.isAbove(ws[firstDense]!.end - ws[firstDense]!.start, 6 * H, "the window that meets them is long")
    assert.strictEqual(ws[firstDense + 1]!.end - ws[firstDense + 1]!.start, 6 * H, "the next one is not")
  })

  it("skips between segments; each segment's first window starts where asked", () => {
    const ws = drain(WindowPlan.make([{ from: 0, to: 5 * H }, { from: 10 * D, to: 10 * D + 3 * H }], growing))
    assert.deepStrictEqual(ws.map((w) => [w.start, w.end, w.listFrom]), [
      [0, 5 * H, 0],
      [10 * D, 10 * D + 3 * H, 10 * D]
    ])
    assert.strictEqual(WindowPlan.make([], growing).next(0), undefined)
  })

  it("a count that is not one (NaN, negative) sends the next window back to the shortest", () => {
    for (const bad of [Number.NaN, -1]) {
      const ws = drain(WindowPlan.make([{ from: 0, to: 10 * D }], growing), (w) => (w.start === 0 ? 0 : bad))
      assert.isTrue(ws.slice(2).every((w) => w.end - w.start === 6 * H || w.end === 10 * D), String(bad))
    }
  })

  it.prop(
    "whatever is listed, the windows tile every segment exactly, within the bounds, in order",
    [
      FastCheck.array(
        FastCheck.tuple(FastCheck.integer({ min: 0, max: 50 * D }), FastCheck.integer({ min: 1, max: 20 * D })),
        { minLength: 0, maxLength: 4 }
      ),
      FastCheck.array(FastCheck.integer({ min: 0, max: 5000 }), { minLength: 1, maxLength: 50 }),
      FastCheck.integer({ min: H, max: 2 * D }),
      FastCheck.integer({ min: 0, max: 10 * D })
    ],
    ([spans, counts, shortest, extra]) => {
      // Segments in order and apart, as the planner gives them.
      let cursor = 0
      const segments = spans.map(([gap, length]) => {
        const from = cursor + gap + 1
        cursor = from + length
        return { from, to: cursor }
      })
      const options = { shortest, longest: shortest + extra, overlap: 1000 }
      let k = 0
      const ws = drain(WindowPlan.make(segments, options), () => counts[k++ % counts.length]!)
      let i = 0
      for (const seg of segments) {
        let at = seg.from
        for (; i < ws.length && ws[i]!.start < seg.to; i++) {
          const w = ws[i]!
          assert.strictEqual(w.start, at, "no gap, no overlap")
          assert.isTrue(w.end > w.start && w.end <= seg.to && w.end - w.start <= options.longest)
          if (w.end < seg.to) assert.isAtLeast(w.end - w.start, shortest, "only a segment's last window is short")
          assert.strictEqual(w.listFrom, w.start === seg.from ? w.start : Math.max(seg.from, w.start - 1000))
          at = w.end
        }
        assert.strictEqual(at, seg.to, "the segment is covered to its end")
      }
      assert.strictEqual(i, ws.length, "no window outside the segments")
    }
  )
})
