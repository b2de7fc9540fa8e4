/**
 * The persistent id index at archive scale: 1,000,000 ids already indexed. What one 1000-event
 * page costs it (looking up 1000 fresh ids and adding them; looking up 1000 present ones), against
 * a baseline in the same run (hashing the 1000 ids alone), and the memory it holds for the million.
 */
import * as fs from "node:fs"
import * as os from "node:os"
import * as path from "node:path"
import { afterAll, bench, describe } from "vitest"
import * as IdIndex from "../src/internal/idIndex.js"

const MILLION = 1_000_000
const PAGE = 1000
const root = fs.mkdtempSync(path.join(os.tmpdir(), "archiver-idindex-bench-"))
afterAll(() => fs.rmSync(root, { recursive: true, force: true }))

const idOf = (i: number) => `Y2lzY29zcGFyazovL3VzL0VWRU5UL${i.toString(36).padStart(12, "0")}`
const day = (i: number) => IdIndex.dayOfNumber(19_000 + Math.floor(i / 2000))

// Built as a backfill would: a sync point every 32 pages.
{
  const { index } = IdIndex.open(root)
  for (let i = 0; i < MILLION; i++) {
    index.add(idOf(i), day(i))
    if (i % (32 * PAGE) === 32 * PAGE - 1) await index.sync()
  }
  await index.sync()
  index.close()
}
globalThis.gc?.()
const before = process.memoryUsage()
const { index } = IdIndex.open(root)
globalThis.gc?.()
const after = process.memoryUsage()
const held = after.heapUsed + after.arrayBuffers - before.heapUsed - before.arrayBuffers
const runs = fs.readdirSync(root).filter((f) => f.endsWith(".run")).length
console.log(`id index of ${index.size()} ids in ${runs} runs: ${(held / 1024 / 1024).toFixed(2)} MB held in memory`)

let next = MILLION
let present = 0
const options = { time: 800, warmupTime: 150 }

describe("the id index with 1,000,000 ids, per 1000-event page", () => {
  const seed = Uint32Array.of(1, 2, 3, 4)
  bench("baseline: making the page's 1000 ids and hashing them", () => {
    for (let i = 0; i < PAGE; i++) IdIndex.keyOf(idOf(next + i), seed)
  }, options)

  bench("a fresh page: 1000 lookups (absent) and 1000 adds", () => {
    for (let i = 0; i < PAGE; i++) {
      const id = idOf(next++)
      if (index.lookup(id) !== undefined) throw new Error("a fresh id was found")
      index.add(id, "2030-01-01")
    }
  }, options)

  bench("a page already indexed: 1000 lookups (present, one block read each)", () => {
    for (let i = 0; i < PAGE; i++) {
      const id = (present = (present + 7919) % MILLION)
      if (index.lookup(idOf(id)) !== day(id)) throw new Error(`id ${id} not found under its day`)
    }
  }, options)
})
