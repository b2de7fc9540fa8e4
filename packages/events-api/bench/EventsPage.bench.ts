/**
 * What keeping each item's raw text costs, next to the approaches that lose it. Every group has
 * its baseline in the same run, so the ratio is what to read, not the absolute numbers.
 */
import { bench, describe } from "vitest"
import * as Either from "effect/Either"
import * as PageDecoder from "../src/internal/pageDecoder.js"
import { rawItems } from "../src/internal/rawJson.js"
import * as SeedOrg from "../src/testing/SeedOrg.js"

const items = SeedOrg.generateOrg({
  count: 1000,
  seed: 1,
  from: "2024-01-01T00:00:00.000Z",
  to: "2024-01-02T00:00:00.000Z"
})
// A 1000-item page as the service sends it (compact JSON).
const body = `{"items":[${items.join(",")}]}`

// Measure the right thing: both sides produce the 1000 items, and the page decodes fully.
const sliced = rawItems(body)
if (sliced === undefined || sliced.length !== 1000 || sliced.some((s, i) => s !== items[i])) {
  throw new Error("rawItems does not return the page's items as sent")
}
const decoded = PageDecoder.decodeBody(body)
if (Either.isLeft(decoded) || decoded.right.some((item) => item._tag !== "Decoded")) {
  throw new Error("the bench page does not decode")
}

const options = { time: 600, warmupTime: 100 }

// Sinks for results, so the engine cannot drop the work.
let kept = 0

describe("raw text of each item, 1000-item page", () => {
  bench("baseline: JSON.parse + JSON.stringify per item (loses number spellings, escapes, big ints)", () => {
    const parsed = JSON.parse(body) as { items: Array<unknown> }
    kept += parsed.items.map((item) => JSON.stringify(item)).length
  }, options)

  bench("JSON.parse + rawItems slicing (keeps the text as sent; what decodeBody does)", () => {
    const parsed = JSON.parse(body) as { items: Array<unknown> }
    kept += parsed.items.length + rawItems(body)!.length
  }, options)
})

describe("decoding a 1000-item SeedOrg page", () => {
  bench("baseline: bare JSON.parse", () => {
    kept += (JSON.parse(body) as { items: Array<unknown> }).items.length
  }, options)

  bench("EventsPage.decodeBody (parse, raw slices, schema decode of every item)", () => {
    const result = PageDecoder.decodeBody(body)
    kept += Either.isRight(result) ? result.right.length : 0
  }, options)
})

export { kept }
