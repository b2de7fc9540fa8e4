/**
 * The sink's cost per 1000-event page, against a baseline in the same run: what durability and
 * exactly-once add to a bare append + fsync of the same bytes, and what a page that is already
 * archived (a re-run, a lookback overlap) costs next to a fresh one.
 */
import * as fs from "node:fs"
import * as os from "node:os"
import * as path from "node:path"
import { afterAll, bench, describe } from "vitest"
import * as Effect from "effect/Effect"
import * as NdjsonSink from "../src/NdjsonSink.js"

const PAGE = 1000
const DAY = "2024-01-01"
const root = fs.mkdtempSync(path.join(os.tmpdir(), "archiver-bench-"))
afterAll(() => fs.rmSync(root, { recursive: true, force: true }))

// A realistic event (~400 bytes), with the id first as the API sends it.
const rest = `,"resource":"messages","type":"created","actorId":"Y2lzY29zcGFyazovL3VzL1BFT1BMRS8xMjM0NTY3OC05YWJj",` +
  `"orgId":"Y2lzY29zcGFyazovL3VzL09SR0FOSVpBVElPTi85ODc2NTQzMg","appId":"null","created":"${DAY}T10:00:00.000Z",` +
  `"data":{"id":"Y2lzY29zcGFyazovL3VzL01FU1NBR0UvYWJjZGVm","roomId":"Y2lzY29zcGFyazovL3VzL1JPT00vMTIz",` +
  `"roomType":"group","text":"The contract draft is in the shared folder.","personEmail":"ada.andersen@example.com"}}`

/** Page `n`: 1000 events with ids never used before. */
const page = (n: number): ReadonlyArray<NdjsonSink.ArchiveRecord> =>
  Array.from({ length: PAGE }, (_, i) => {
    const id = `p${n}-e${i}`
    return { id, day: DAY, raw: `{"id":"${id}"${rest}` }
  })
const bytesOf = (records: ReadonlyArray<NdjsonSink.ArchiveRecord>) =>
  Buffer.from(records.map((r) => `${r.raw}\n`).join(""), "utf8")

const openSink = (name: string) => Effect.runPromise(NdjsonSink.make(path.join(root, name)))
const [sink, dedupeSink] = await Promise.all([openSink("sink"), openSink("dedupe")])
const write = (s: NdjsonSink.Service, records: ReadonlyArray<NdjsonSink.ArchiveRecord>) =>
  Effect.runPromise(s.writeBatch(records, []))

const baselineFile = path.join(root, "baseline.ndjson")
// Each bench builds its page the same way, so the comparison is of the writing alone.
let sinkPages = 0
let baselinePages = 0
let freshPages = 0

// A page that is already in the archive: every id is a duplicate.
const present = page(-1)
const first = await write(dedupeSink, present)
if (first.written !== PAGE) throw new Error("the bench page was not written")

const options = { time: 800, warmupTime: 150 }

describe("writing a 1000-event page durably", () => {
  bench("baseline: fs.appendFileSync + fsyncSync of the same bytes", () => {
    const data = bytesOf(page(baselinePages++))
    const fd = fs.openSync(baselineFile, "a", 0o600)
    try {
      fs.appendFileSync(fd, data)
      fs.fsyncSync(fd)
    } finally {
      fs.closeSync(fd)
    }
  }, options)

  bench("NdjsonSink.writeBatch (validate, dedupe against the day's ids and the id index, append, fsync)", async () => {
    const result = await write(sink, page(sinkPages++))
    if (result.written !== PAGE) throw new Error(`wrote ${result.written} of ${PAGE}`)
  }, options)
})

describe("deduplication: a page already archived vs a fresh one", () => {
  bench("baseline: a fresh page (all new, appended and fsync'd)", async () => {
    const result = await write(dedupeSink, page(freshPages++))
    if (result.written !== PAGE) throw new Error(`wrote ${result.written} of ${PAGE}`)
  }, options)

  bench("a page already present (all duplicates: no write, no fsync)", async () => {
    const result = await write(dedupeSink, present)
    if (result.duplicates !== PAGE) throw new Error(`only ${result.duplicates} of ${PAGE} seen as duplicates`)
  }, options)
})
