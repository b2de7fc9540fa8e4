/** What each command lists, from the checkpoint's coverage alone. */
import { assert, describe, it } from "@effect/vitest"
import * as Planner from "../src/Planner.js"

const H = 3_600_000
const iv = (from: number, through: number) => ({ from: from * H, through: through * H })
const seg = (from: number, to: number) => ({ from: from * H, to: to * H })

describe("Planner.backfill", () => {
  it("lists only the gaps; --recheck lists the whole range", () => {
    const coverage = [iv(10, 20), iv(30, 40)]
    assert.deepStrictEqual(Planner.backfill(coverage, { from: 10 * H, to: 20 * H, recheck: false }), [])
    assert.deepStrictEqual(Planner.backfill(coverage, { from: 0, to: 50 * H, recheck: false }), [seg(0, 10), seg(20, 30), seg(40, 50)])
    assert.deepStrictEqual(Planner.backfill(coverage, { from: 15 * H, to: 35 * H, recheck: false }), [seg(20, 30)])
    assert.deepStrictEqual(Planner.backfill(coverage, { from: 15 * H, to: 35 * H, recheck: true }), [seg(15, 35)])
    assert.deepStrictEqual(Planner.backfill([], { from: 0, to: 5 * H, recheck: false }), [seg(0, 5)])
  })
})

describe("Planner.run", () => {
  it("needs --from when nothing is covered", () => {
    assert.deepStrictEqual(Planner.run([], { from: undefined, lookback: H, now: 100 * H }), { _tag: "NoStart" })
    assert.deepStrictEqual(Planner.run([], { from: 90 * H, lookback: H, now: 100 * H }), { _tag: "Plan", segments: [seg(90, 100)] })
  })

  it("without --from continues from the covered end, re-reading only the lookback, as one listing", () => {
    assert.deepStrictEqual(Planner.run([iv(0, 50)], { from: undefined, lookback: H, now: 100 * H }), {
      _tag: "Plan",
      segments: [seg(49, 100)]
    })
  })

  it("with --from lists the gaps after it and the lookback, never before it", () => {
    const coverage = [iv(10, 20), iv(30, 50)]
    assert.deepStrictEqual(Planner.run(coverage, { from: 15 * H, lookback: 2 * H, now: 60 * H }), {
      _tag: "Plan",
      segments: [seg(20, 30), seg(48, 60)]
    })
    // The lookback stops at --from.
    assert.deepStrictEqual(Planner.run([iv(10, 20)], { from: 19 * H, lookback: 5 * H, now: 25 * H }), {
      _tag: "Plan",
      segments: [seg(19, 25)]
    })
  })
})
