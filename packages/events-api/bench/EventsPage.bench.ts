/**
 * What decoding a page costs next to the floor a bare script pays. Every group has its baseline in
 * the same run, so the ratio is what to read, not the absolute numbers (`pnpm vitest bench --run
 * packages/events-api/bench`).
 *
 * The body is bytes, as the HTTP layer hands it over; the floor decodes them to text and
 * `JSON.parse`s it (what `fetch(…).json()` does).
 */
import { bench, describe } from "vitest"
import * as Either from "effect/Either"
import * as Event from "../src/Event.js"
import * as PageDecoder from "../src/internal/pageDecoder.js"
import * as SeedOrg from "../src/testing/SeedOrg.js"

const items = SeedOrg.generateOrg({
  count: 1000,
  seed: 1,
  from: "2024-01-01T00:00:00.000Z",
  to: "2024-01-02T00:00:00.000Z"
})
// A 1000-item page as the service sends it (compact JSON), as bytes.
const body = new TextEncoder().encode(`{"items":[${items.join(",")}]}`)
const utf8 = new TextDecoder("utf-8")

// Measure the right thing: the page decodes fully, on the fast path, to the items as sent.
const decoded = PageDecoder.decodeBody(body)
if (Either.isLeft(decoded) || decoded.right.some((item, i) => item._tag !== "Decoded" || item.raw !== items[i])) {
  throw new Error("the bench page does not decode to its items")
}

const slow = (item: unknown) => Event.decodeUnknownEither(item, { onExcessProperty: "preserve" })

const options = { time: 1000, warmupTime: 200 }

// Sinks for results, so the engine cannot drop the work.
let kept = 0

describe("list(): a 1000-item page to its events", () => {
  bench("baseline: decode the bytes + JSON.parse", () => {
    kept += (JSON.parse(utf8.decode(body)) as { items: Array<unknown> }).items.length
  }, options)

  bench("PageDecoder.decodeBody: parse, then check and decode every item (created to DateTime)", () => {
    const result = PageDecoder.decodeBody(body)
    kept += Either.isRight(result) ? result.right.length : 0
  }, options)

  bench("reference: decode + JSON.parse + Schema.decodeUnknown per item (the slow path; every item before 0.2)", () => {
    const parsed = JSON.parse(utf8.decode(body)) as { items: Array<unknown> }
    for (const item of parsed.items) kept += Either.isRight(slow(item)) ? 1 : 0
  }, options)
})

describe("archive: a 1000-item page to one line per item", () => {
  bench("baseline: decode + JSON.parse + JSON.stringify per item (loses number spellings, escapes, big ints)", () => {
    const parsed = JSON.parse(utf8.decode(body)) as { items: Array<unknown> }
    for (const item of parsed.items) kept += JSON.stringify(item).length
  }, options)

  bench("PageDecoder.decodeBody + every item's bytes (exactly as sent, views into the body)", () => {
    const result = PageDecoder.decodeBody(body)
    if (Either.isRight(result)) for (const item of result.right) kept += item.bytes.length
  }, options)
})

export { kept }
