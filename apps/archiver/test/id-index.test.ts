/**
 * The persistent id -> day index on its own: runs, merges, reopening, crash leftovers, and the
 * memory it holds per id.
 */
import * as fs from "node:fs"
import * as os from "node:os"
import * as path from "node:path"
import { afterAll, describe, expect, it } from "vitest"
import * as IdIndex from "../src/internal/idIndex.js"

const root = fs.mkdtempSync(path.join(os.tmpdir(), "archiver-idindex-"))
afterAll(() => fs.rmSync(root, { recursive: true, force: true }))
let n = 0
const stateDir = () => {
  const dir = path.join(root, `s${n++}`)
  fs.mkdirSync(dir, { mode: 0o700 })
  return dir
}
const day = (i: number) => IdIndex.dayOfNumber(19_000 + (i % 50))

describe("IdIndex", () => {
  it("finds every id under its first day through many runs and merges, and after reopening", async () => {
    const dir = stateDir()
    const { index } = IdIndex.open(dir)
    const N = 60_000
    for (let i = 0; i < N; i++) {
      expect(index.insert(`id-${i}`, day(i))).toBeUndefined()
      // A sync point every 5,000 ids: runs of uneven sizes, merged as they go.
      if (i % 5_000 === 4_999) await index.sync()
    }
    // Re-inserting under another day keeps the first, and says so.
    expect(index.insert("id-5", "2030-01-01")).toBe(day(5))
    await index.sync()
    const runs = fs.readdirSync(dir).filter((f) => f.endsWith(".run"))
    expect(runs.length).toBeLessThanOrEqual(Math.ceil(Math.log2(N / 5_000)) + 1)
    const check = (ix: IdIndex.IdIndex) => {
      for (let i = 0; i < N; i += 7) expect(ix.lookup(`id-${i}`)).toBe(day(i))
      // Absent ids: a Bloom false positive reads a block, and still finds nothing.
      for (let i = 0; i < 20_000; i++) expect(ix.lookup(`absent-${i}`)).toBeUndefined()
      expect(ix.size()).toBe(N)
    }
    check(index)
    index.close()
    const reopened = IdIndex.open(dir)
    expect(reopened.rebuilt).toBe(false)
    check(reopened.index)
    reopened.index.close()
  })

  it("entries not yet at a sync point are gone after a restart; the marks say so", async () => {
    const dir = stateDir()
    const { index } = IdIndex.open(dir)
    index.insert("a", "2024-01-01")
    index.setMark("2024-01-01", { segments: [], open: { ino: 1, size: 10 } })
    await index.sync()
    index.insert("b", "2024-01-01")
    index.setMark("2024-01-01", { segments: [], open: { ino: 1, size: 20 } })
    index.close()
    const { index: again } = IdIndex.open(dir)
    expect(again.lookup("a")).toBe("2024-01-01")
    expect(again.lookup("b")).toBeUndefined()
    expect(again.mark("2024-01-01")).toEqual({ segments: [], open: { ino: 1, size: 10 } })
  })

  it("a damaged list or run is discarded (rebuilt), and an unlisted run left by a crash is removed", async () => {
    const dir = stateDir()
    const { index } = IdIndex.open(dir)
    index.insert("a", "2024-01-01")
    await index.sync()
    index.close()
    fs.writeFileSync(path.join(dir, "ids-99.run"), Buffer.alloc(40))
    fs.truncateSync(path.join(dir, "ids-1.run"), 7)
    const { index: again, rebuilt } = IdIndex.open(dir)
    expect(rebuilt).toBe(true)
    expect(again.lookup("a")).toBeUndefined()
    expect(fs.existsSync(path.join(dir, "ids-99.run"))).toBe(false)
  })

  it("refuses a run planted as a symbolic link", async () => {
    const dir = stateDir()
    const { index } = IdIndex.open(dir)
    index.insert("a", "2024-01-01")
    await index.sync()
    index.close()
    const run = path.join(dir, "ids-1.run")
    fs.renameSync(run, path.join(root, `moved-${n}.run`))
    fs.symlinkSync(path.join(root, `moved-${n}.run`), run)
    expect(() => IdIndex.open(dir)).toThrow(/is a symbolic link/)
  })

  it("adds what was looked up, in order or not, with ids skipped between, and ids never looked up", async () => {
    const dir = stateDir()
    const { index } = IdIndex.open(dir)
    const ids = Array.from({ length: 300 }, (_, i) => `page-${i}`)
    for (const id of ids) expect(index.lookup(id)).toBeUndefined()
    // Most were looked up and not added (copies kept in quarantine); some are added out of order.
    const added = [ids[0]!, ids[1]!, ids[100]!, ids[299]!, ids[5]!, "never-looked-up", ids[2]!]
    added.forEach((id, i) => index.add(id, day(i)))
    const check = () => {
      added.forEach((id, i) => expect(index.lookup(id)).toBe(day(i)))
      for (const id of ids) if (!added.includes(id)) expect(index.lookup(id)).toBeUndefined()
    }
    check()
    await index.sync()
    check()
    index.close()
  })

  it("an index of an older version is discarded, and its runs removed", async () => {
    const dir = stateDir()
    fs.writeFileSync(path.join(dir, "ids.json"), JSON.stringify({ version: 2, seq: 1, runs: [{ file: "ids-1.run", count: 1 }], days: {} }))
    fs.writeFileSync(path.join(dir, "ids-1.run"), Buffer.alloc(20))
    const { index, rebuilt } = IdIndex.open(dir)
    expect(rebuilt).toBe(true)
    expect(fs.existsSync(path.join(dir, "ids-1.run"))).toBe(false)
    expect(index.size()).toBe(0)
    index.close()
  })

  it("keys depend on the index's seed, kept across reopening", async () => {
    const seed = Uint32Array.of(1, 2, 3, 4)
    expect(IdIndex.keyOf("abc", seed)).toEqual(IdIndex.keyOf("abc", Uint32Array.of(1, 2, 3, 4)))
    expect(IdIndex.keyOf("abc", seed)).not.toEqual(IdIndex.keyOf("abc", Uint32Array.of(1, 2, 3, 5)))
    expect(IdIndex.keyOf("abc", seed)).not.toEqual(IdIndex.keyOf("abc\u0000", seed))
    const dir = stateDir()
    const first = IdIndex.open(dir)
    const meta = () => JSON.parse(fs.readFileSync(path.join(dir, "ids.json"), "utf8")) as { seed: string }
    const s1 = meta().seed
    expect(s1).toMatch(/^[0-9a-f]{32}$/)
    first.index.add("x", "2024-01-01")
    await first.index.sync()
    first.index.close()
    const again = IdIndex.open(dir)
    expect(meta().seed).toBe(s1)
    expect(again.index.lookup("x")).toBe("2024-01-01")
    again.index.close()
    // Another index, another seed.
    const other = stateDir()
    IdIndex.open(other).index.close()
    expect((JSON.parse(fs.readFileSync(path.join(other, "ids.json"), "utf8")) as { seed: string }).seed).not.toBe(s1)
  })

  it("holds about a byte and a half per id in memory, not the ids", async () => {
    const dir = stateDir()
    const { index } = IdIndex.open(dir)
    const N = 200_000
    for (let i = 0; i < N; i++) {
      index.insert(`Y2lzY29zcGFyazovL3VzL0VWRU5UL${i.toString(36).padStart(12, "0")}`, day(i))
      if (i % 25_000 === 24_999) await index.sync()
    }
    await index.sync()
    globalThis.gc?.()
    const before = process.memoryUsage()
    const { index: reopened } = IdIndex.open(dir)
    globalThis.gc?.()
    const after = process.memoryUsage()
    // Heap plus off-heap buffers (Bloom filters, sparse keys): well under what 200,000 id strings
    // would take (~20 MB).
    const grown = after.heapUsed + after.arrayBuffers - before.heapUsed - before.arrayBuffers
    expect(grown).toBeLessThan(2 * 1024 * 1024)
    expect(reopened.size()).toBe(N)
    reopened.close()
    index.close()
  })
})
