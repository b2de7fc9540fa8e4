import { bench, describe } from "vitest"
import { isUtf8 } from "node:buffer"
import * as SeedOrg from "../src/testing/SeedOrg.js"
const items = SeedOrg.generateOrg({ count: 1000, seed: 1, from: "2024-01-01T00:00:00.000Z", to: "2024-01-02T00:00:00.000Z" })
const body = `{"items":[${items.join(",")}]}`
const bytes = new TextEncoder().encode(body)
const strict = new TextDecoder("utf-8", { fatal: true })
const lossy = new TextDecoder("utf-8")
let kept = 0
const loopScan = (b: Uint8Array) => { let n = 0; let inStr = false; for (let i = 0; i < b.length; i++) { const c = b[i]!; if (inStr) { if (c === 0x5c) i++; else if (c === 0x22) inStr = false } else if (c === 0x22) inStr = true; else if (c === 0x7b) n++ } return n }
const o = { time: 500, warmupTime: 100 }
describe("parts", () => {
  bench("JSON.parse", () => { kept += JSON.parse(body).items.length }, o)
  bench("strict decode", () => { kept += strict.decode(bytes).length }, o)
  bench("lossy decode", () => { kept += lossy.decode(bytes).length }, o)
  bench("Buffer toString", () => { kept += Buffer.from(bytes.buffer, bytes.byteOffset, bytes.length).toString("utf8").length }, o)
  bench("isUtf8", () => { kept += isUtf8(bytes) ? 1 : 0 }, o)
  bench("fffd indexOf", () => { kept += body.indexOf("\uFFFD") }, o)
  bench("loop scan", () => { kept += loopScan(bytes) }, o)
})
export { kept }
