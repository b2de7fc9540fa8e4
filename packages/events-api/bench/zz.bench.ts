import { bench, describe } from "vitest"
import * as PageDecoder from "../src/internal/pageDecoder.js"
import * as EventsPage from "../src/EventsPage.js"
import { itemSpans, compactBytes } from "../src/internal/rawJson.js"
import * as SeedOrg from "../src/testing/SeedOrg.js"
const items = SeedOrg.generateOrg({ count: 1000, seed: 1, from: "2024-01-01T00:00:00.000Z", to: "2024-01-02T00:00:00.000Z" })
const body = `{"items":[${items.join(",")}]}`
const bytes = new TextEncoder().encode(body)
const strict = new TextDecoder("utf-8", { fatal: true })
let kept = 0
const parsed = (JSON.parse(body) as any).items
console.log("fast", PageDecoder.fastDecode(parsed[0]) !== undefined, PageDecoder.compiled.envelope !== undefined, bytes.length)
const o = { time: 500, warmupTime: 100 }
describe("parts", () => {
  bench("JSON.parse", () => { kept += JSON.parse(body).items.length }, o)
  bench("strict decode", () => { kept += strict.decode(bytes).length }, o)
  bench("encode", () => { kept += new TextEncoder().encode(body).length }, o)
  bench("itemSpans", () => { kept += itemSpans(bytes)!.length }, o)
  bench("spans+compact", () => { const s = itemSpans(bytes)!; for (let k = 0; k < s.length; k += 2) kept += compactBytes(bytes.subarray(s[k]!, s[k+1]!)).length }, o)
  bench("fastDecode x1000", () => { for (const p of parsed) kept += PageDecoder.fastDecode(p) ? 1 : 0 }, o)
  bench("new Decoded x1000", () => { for (const p of parsed) kept += new EventsPage.Decoded({ event: p, bytes, invalidUtf8: false }) ? 1 : 0 }, o)
  bench("decodeBody bytes", () => { const r = PageDecoder.decodeBody(bytes); kept += r._tag === "Right" ? r.right.length : 0 }, o)
})
export { kept }
