import { bench, describe } from "vitest"
import * as PageDecoder from "../src/internal/pageDecoder.js"
import * as Event from "../src/Event.js"
import * as DateTime from "effect/DateTime"
import * as SeedOrg from "../src/testing/SeedOrg.js"
const items = SeedOrg.generateOrg({ count: 1000, seed: 1, from: "2024-01-01T00:00:00.000Z", to: "2024-01-02T00:00:00.000Z" })
const parsed = items.map((i) => JSON.parse(i))
const created = parsed.map((p) => p.created as string)
let kept = 0
const o = { time: 1500, warmupTime: 300 }
describe("fast", () => {
  bench.skip("fastDecode x1000", () => { for (const p of parsed) kept += PageDecoder.fastDecode(p) ? 1 : 0 }, o)
  bench.skip("envelope x1000", () => { for (const p of parsed) kept += PageDecoder.compiled.envelope!(p) ? 1 : 0 }, o)
  bench("parseIso x1000", () => { for (const c of created) kept += Event.parseIsoMillis(c)! }, o)
  bench("DateTime.unsafeMake x1000", () => { for (let i = 0; i < 1000; i++) kept += DateTime.unsafeMake(1700000000000 + i).epochMillis }, o)
  bench("spread x1000", () => { for (const p of parsed) kept += ({ ...p }).id.length }, o)
})
export { kept }
