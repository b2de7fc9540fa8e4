// A/B of the page decoder of two builds on one page, in one process: what `list()` pays per page
// (`decodeEvents`) and what the archiver pays (`decodeBody`, then every item's `bytes`). A
// 1000-event page as the e2e bench's server sends it (SeedOrg, compact JSON, some non-ASCII text).
// Best of 40 batches each, alternated: on a shared machine the minimum is the steady number.
//
// usage: node --expose-gc decode-ab.mjs [dist-a] [dist-b]   (directories of packages/events-api; default dist)
import * as path from "node:path"
import { fileURLToPath, pathToFileURL } from "node:url"

const lib = path.resolve(path.dirname(fileURLToPath(import.meta.url)), "../..")
const builds = process.argv.slice(2).length > 0 ? process.argv.slice(2) : ["dist"]
const load = (dist, module) => import(pathToFileURL(path.join(lib, dist, module)).href)

const { SeedOrg } = await load(builds[0], "testing.js")
const items = SeedOrg.generateOrg({ count: 1000, seed: 1, from: "2026-01-01T00:00:00.000Z", to: "2026-01-31T00:00:00.000Z" })
const body = new TextEncoder().encode(`{"items":[${items.join(",")}]}`)
const decoders = await Promise.all(builds.map((b) => load(b, "internal/pageDecoder.js")))

const cases = {
  "decodeEvents (list)": (d) => () => d.decodeEvents(body),
  "decodeBody (listPages)": (d) => () => d.decodeBody(body),
  "decodeBody + every item's bytes (archiver)": (d) => () => {
    let n = 0
    for (const item of d.decodeBody(body).right) n += item.bytes.length
    return n
  }
}
const batch = (f, n = 10) => {
  // Each batch starts from a collected heap (with --expose-gc), so no batch pays for another's garbage.
  globalThis.gc?.()
  const t = performance.now()
  for (let i = 0; i < n; i++) f()
  return (performance.now() - t) / n
}
console.log(`page: ${items.length} events, ${body.length} bytes`)
console.log(`| per page (best of 40 × 10) | ${builds.join(" | ")} |`)
console.log(`| --- |${builds.map(() => " --- |").join("")}`)
for (const [name, make] of Object.entries(cases)) {
  const fs = decoders.map(make)
  for (let i = 0; i < 10; i++) for (const f of fs) f()
  const best = fs.map(() => Infinity)
  for (let r = 0; r < 40; r++) fs.forEach((f, k) => (best[k] = Math.min(best[k], batch(f))))
  console.log(`| ${name} | ${best.map((ms) => `${ms.toFixed(2)} ms`).join(" | ")} |`)
}
