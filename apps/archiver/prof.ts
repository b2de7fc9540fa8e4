import * as fs from "node:fs"
import * as os from "node:os"
import * as path from "node:path"
import * as Effect from "effect/Effect"
import * as NdjsonSink from "./src/NdjsonSink.js"
const rest = `,"resource":"messages","type":"created","actorId":"Y2lzY29zcGFyazovL3VzL1BFT1BMRS8xMjM0NTY3OC05YWJj","orgId":"Y2lzY29zcGFyazovL3VzL09SR0FOSVpBVElPTi85ODc2NTQzMg","appId":"null","created":"2024-01-01T10:00:00.000Z","data":{"id":"Y2lzY29zcGFyazovL3VzL01FU1NBR0UvYWJjZGVm","roomId":"Y2lzY29zcGFyazovL3VzL1JPT00vMTIz","roomType":"group","text":"The contract draft is in the shared folder.","personEmail":"ada.andersen@example.com"}}`
const page = (n: number) => Array.from({ length: 1000 }, (_, i) => ({ id: `p${n}-e${i}`, day: "2024-01-01", raw: `{"id":"p${n}-e${i}"${rest}` }))
const dir = fs.mkdtempSync(path.join(os.tmpdir(), "store-prof-"))
const sink = await Effect.runPromise(NdjsonSink.make(dir))
for (let k = 0; k < 3; k++) {
  const pages = Array.from({ length: 20 }, (_, i) => page(k * 100 + i))
  let t = performance.now()
  for (const p of pages) await Effect.runPromise(sink.writeBatch(p, []))
  console.log("fresh page ms", (performance.now() - t) / 20)
  t = performance.now()
  for (const p of pages) await Effect.runPromise(sink.writeBatch(p, []))
  console.log("dup page ms", (performance.now() - t) / 20)
}
const base = path.join(dir, "base.ndjson")
let t = performance.now()
for (let i = 0; i < 20; i++) { const d = Buffer.from(page(900+i).map(r => r.raw + "\n").join("")); const fd = fs.openSync(base, "a"); fs.appendFileSync(fd, d); fs.fsyncSync(fd); fs.closeSync(fd) }
console.log("baseline ms", (performance.now() - t) / 20)
fs.rmSync(dir, { recursive: true })
