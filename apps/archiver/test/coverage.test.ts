import { assert, describe, it } from "@effect/vitest"
import * as FastCheck from "effect/FastCheck"
import * as Schema from "effect/Schema"
import * as Checkpoint from "../src/Checkpoint.js"
import * as Coverage from "../src/Coverage.js"

// Instants are small integers of seconds after T0, so a reference model can count cells.
const T0 = Date.parse("2024-01-01T00:00:00.000Z")
const at = (s: number) => T0 + s * 1000
const iv = (from: number, through: number): Coverage.Interval => ({ from: at(from), through: at(through) })
const seconds = (ms: number) => (ms - T0) / 1000
const asSeconds = (c: ReadonlyArray<Coverage.Interval>) => c.map((i) => [seconds(i.from), seconds(i.through)])

const addAll = (intervals: ReadonlyArray<Coverage.Interval>) =>
  intervals.reduce<ReadonlyArray<Coverage.Interval>>(Coverage.add, [])

/** The reference model: which one-second cells `[s, s+1)` of `[0, span)` any interval covers. */
const cells = (intervals: ReadonlyArray<readonly [number, number]>, span: number) => {
  const covered = Array.from({ length: span }, () => false)
  for (const [a, b] of intervals) for (let s = a; s < b; s++) covered[s] = true
  return covered
}

/** Maximal runs of covered cells: the union the coverage must equal. */
const runs = (covered: ReadonlyArray<boolean>) => {
  const out: Array<[number, number]> = []
  covered.forEach((c, s) => {
    if (!c) return
    const last = out[out.length - 1]
    if (last !== undefined && last[1] === s) last[1] = s + 1
    else out.push([s, s + 1])
  })
  return out
}

const SPAN = 60
const arbInterval = FastCheck.tuple(FastCheck.integer({ min: 0, max: SPAN }), FastCheck.integer({ min: 0, max: SPAN }))
  .map(([a, b]) => [Math.min(a, b), Math.max(a, b)] as const)
const arbIntervals = FastCheck.array(arbInterval, { maxLength: 12 })

/** A seeded permutation, so a failing order is reported and replayable by fast-check. */
const permute = <A>(xs: ReadonlyArray<A>, keys: ReadonlyArray<number>): ReadonlyArray<A> =>
  xs.map((x, i) => [keys[i] ?? 0, i, x] as const).sort((a, b) => a[0] - b[0] || a[1] - b[1]).map(([, , x]) => x)

describe("Coverage.add", () => {
  it("merges overlapping and touching intervals and keeps the rest sorted", () => {
    assert.deepStrictEqual(asSeconds(addAll([iv(10, 20), iv(0, 5)])), [[0, 5], [10, 20]])
    assert.deepStrictEqual(asSeconds(addAll([iv(10, 20), iv(15, 30)])), [[10, 30]])
    // Half-open intervals that touch leave no gap between them: one interval.
    assert.deepStrictEqual(asSeconds(addAll([iv(0, 5), iv(5, 10)])), [[0, 10]])
    assert.deepStrictEqual(asSeconds(addAll([iv(0, 5), iv(20, 30), iv(4, 21)])), [[0, 30]])
    assert.deepStrictEqual(asSeconds(addAll([iv(0, 30), iv(5, 10)])), [[0, 30]])
  })

  it("ignores empty and inverted intervals", () => {
    const c = addAll([iv(0, 5)])
    assert.strictEqual(Coverage.add(c, iv(7, 7)), c)
    assert.strictEqual(Coverage.add(c, iv(9, 8)), c)
  })

  it("compares instants, not their spelling (decoded once, at the boundary)", () => {
    const decode = Schema.decodeSync(Checkpoint.CoveredInterval)
    const c = addAll([
      decode({ from: "2024-01-01T00:00:00+00", through: "2024-01-01T06:00:00+0000" }),
      decode({ from: "2024-01-01T06:00:00.000Z", through: "2024-01-01T12:00:00.000Z" }),
      // Text order would put this one after the first; as an instant it starts before it.
      decode({ from: "2024-01-01T01:00:00+02:00", through: "2024-01-01T00:30:00.000Z" })
    ])
    assert.strictEqual(c.length, 1)
    assert.strictEqual(c[0]!.from, Date.UTC(2023, 11, 31, 23))
    assert.strictEqual(c[0]!.through, Date.UTC(2024, 0, 1, 12))
  })

  it.prop(
    "adding intervals in any order gives the same sorted, disjoint, non-touching union",
    [arbIntervals, FastCheck.array(FastCheck.integer(), { minLength: 12, maxLength: 12 })],
    ([intervals, keys]) => {
      const inOrder = addAll(intervals.map(([a, b]) => iv(a, b)))
      const shuffled = addAll(permute(intervals, keys).map(([a, b]) => iv(a, b)))
      assert.deepStrictEqual(asSeconds(shuffled), asSeconds(inOrder))
      assert.deepStrictEqual(asSeconds(inOrder), runs(cells(intervals, SPAN)))
      for (let i = 1; i < inOrder.length; i++) {
        assert.isBelow(inOrder[i - 1]!.through, inOrder[i]!.from, "sorted and not touching")
      }
      for (const i of inOrder) assert.isBelow(i.from, i.through, "no empty interval")
    }
  )
})

describe("Coverage.covers", () => {
  it("holds only for a range inside one covered interval", () => {
    const c = addAll([iv(0, 10), iv(20, 30)])
    assert.isTrue(Coverage.covers(c, at(0), at(10)))
    assert.isTrue(Coverage.covers(c, at(2), at(8)))
    assert.isFalse(Coverage.covers(c, at(5), at(25)), "spans the gap")
    assert.isFalse(Coverage.covers(c, at(9), at(11)))
    assert.isFalse(Coverage.covers([], at(0), at(1)))
  })

  it.prop(
    "is true exactly when every second of a non-empty range is covered",
    [arbIntervals, arbInterval.filter(([a, b]) => a < b)],
    ([intervals, [from, through]]) => {
      const covered = cells(intervals, SPAN)
      const expected = covered.slice(from, through).every((c) => c)
      assert.strictEqual(Coverage.covers(addAll(intervals.map(([a, b]) => iv(a, b))), at(from), at(through)), expected)
    }
  )
})

describe("Coverage.gaps", () => {
  it("lists the uncovered parts of a range, in order", () => {
    const c = addAll([iv(10, 20), iv(30, 40)])
    assert.deepStrictEqual(asSeconds(Coverage.gaps(c, at(0), at(50))), [[0, 10], [20, 30], [40, 50]])
    assert.deepStrictEqual(asSeconds(Coverage.gaps(c, at(15), at(35))), [[20, 30]])
    assert.deepStrictEqual(Coverage.gaps(c, at(10), at(20)), [])
    assert.deepStrictEqual(asSeconds(Coverage.gaps([], at(0), at(5))), [[0, 5]])
  })

  it.prop(
    "gaps and coverage together are exactly the range, without overlap",
    [arbIntervals, arbInterval],
    ([intervals, [from, through]]) => {
      const coverage = addAll(intervals.map(([a, b]) => iv(a, b)))
      const gaps = asSeconds(Coverage.gaps(coverage, at(from), at(through)))
      const covered = cells(intervals, SPAN)
      const inGap = cells(gaps.map(([a, b]) => [a!, b!] as const), SPAN)
      for (let s = 0; s < SPAN; s++) {
        const inRange = s >= from && s < through
        // Inside the range a second is covered or in a gap, never both; outside, never in a gap.
        assert.strictEqual(inGap[s], inRange && !covered[s], `second ${s}`)
      }
      for (let i = 0; i < gaps.length; i++) {
        assert.isBelow(gaps[i]![0]!, gaps[i]![1]!, "no empty gap")
        if (i > 0) assert.isBelow(gaps[i - 1]![1]!, gaps[i]![0]!, "sorted, separated by coverage")
      }
    }
  )
})
