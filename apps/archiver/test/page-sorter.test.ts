/**
 * PageSorter: a page body sorted for the sink, the same on the calling thread and on the decoder
 * thread (the bundle's real `dist/sortWorker.mjs`, built by the global setup), and a decoder
 * thread that breaks fails loudly instead of losing pages.
 */
import { assert, describe, it } from "@effect/vitest"
import { Event, EventsApi } from "@webex-compliance/events-api"
import { SeedOrg } from "@webex-compliance/events-api/testing"
import * as Cause from "effect/Cause"
import * as Effect from "effect/Effect"
import * as Either from "effect/Either"
import * as Exit from "effect/Exit"
import * as Option from "effect/Option"
import * as fs from "node:fs"
import * as os from "node:os"
import * as path from "node:path"
import { pathToFileURL } from "node:url"
import * as PageSorter from "../src/PageSorter.js"

const script = new URL("../dist/sortWorker.mjs", import.meta.url)
const encode = (text: string) => new TextEncoder().encode(text)
const concat = (...parts: ReadonlyArray<Uint8Array>) => Uint8Array.from(Buffer.concat(parts))

const [a, b, c] = SeedOrg.generateOrg({ count: 3, seed: 5, from: new Date("2024-03-01T00:00:00Z"), to: new Date("2024-03-03T00:00:00Z") })
const spelled = `{"id":"spelled","resource":"messages","type":"created","actorId":"p","created":"2024-03-01T10:00:00.000Z","data":{"n":1.0,"e":1e3,"t":"caf\\u00e9 \\"q\\" [x] {y}"}}`
const ambiguous = `{"id":"amb-1","id":"amb-2","resource":"messages","type":"created","actorId":"p","created":"2024-03-01T11:00:00.000Z","data":{}}`
const missing = `{"id":"missing-created","resource":"messages","type":"created","actorId":"p","data":{}}`

/** Bodies in every shape a page can take, each with what it holds. */
const bodies: ReadonlyArray<readonly [string, Uint8Array]> = [
  ["compact", encode(`{"items":[${a},${spelled},${b}]}`)],
  ["pretty-printed", encode(`{\n  "items": [\n    ${JSON.stringify(JSON.parse(c!), null, 2).replace(/\n/g, "\n    ")},\n    ${a}\n  ]\n}\n`)],
  ["undecodable items", encode(`{"items":[${missing},"just text",42,${ambiguous},${b}]}`)],
  ["invalid UTF-8", concat(encode(`{"items":[${a},{"id":"bad-utf8","resource":"messages","type":"created","actorId":"p","created":"2024-03-02T00:00:00.000Z","data":{"text":"`), new Uint8Array([0xff, 0xfe]), encode(`"}}]}`))],
  ["byte-order mark", concat(new Uint8Array([0xef, 0xbb, 0xbf]), encode(`{"items":[${c}],"other":{"items":1}}`))],
  ["empty", encode(`{"items":[]}`)]
]

/** What the sink must get from a body, read straight off the library's own decoding of it. */
const expected = (body: Uint8Array) => {
  const items = Either.getOrThrow(EventsApi.decodePageBody(body))
  const records: Array<unknown> = []
  const quarantine: Array<unknown> = []
  for (const item of items) {
    if (item._tag === "Decoded" && item.event.id !== "amb-2") {
      records.push({ id: item.event.id, day: Event.utcDay(item.event), bytes: [...item.bytes], resource: item.event.resource, createdMillis: item.event.created.epochMillis })
    } else {
      const id = item._tag === "Decoded" ? item.event.id : Option.getOrUndefined(item.id)
      quarantine.push({ raw: item.raw, bytes: [...item.bytes], id })
    }
  }
  return { records, quarantine, listed: items.length }
}

const plain = (page: PageSorter.SortedPage) => ({
  records: page.records.map((r) => ({ id: r.id, day: r.day, bytes: [...r.bytes!], resource: r.resource, createdMillis: r.createdMillis })),
  quarantine: page.quarantine.map((q) => ({ raw: q.raw, bytes: [...q.bytes!], id: q.id })),
  listed: page.listed
})

const raw = (body: Uint8Array): EventsApi.RawPage => ({ url: "http://127.0.0.1/v1/events", body, trackingId: Option.none() })

describe("PageSorter", () => {
  it.effect("files each event's exact bytes under its day and quarantines what cannot be filed, with a reason", () =>
    Effect.gen(function*() {
      for (const [name, body] of bodies) {
        const sorted = yield* PageSorter.inProcess.sort(raw(body))
        assert.deepStrictEqual(plain(sorted.page), expected(body), name)
        assert.strictEqual(sorted.count, sorted.page.listed, name)
        for (const q of sorted.page.quarantine) assert.isNotEmpty(q.reason, name)
      }
      const ambiguousReason = (yield* PageSorter.inProcess.sort(raw(bodies[2]![1]))).page.quarantine.find((q) => q.id === "amb-2")!.reason
      assert.match(ambiguousReason, /ambiguous/)
    }))

  it.effect("an unusable body fails with the reason, on either thread", () =>
    Effect.scoped(Effect.gen(function*() {
      const thread = yield* Effect.provide(PageSorter.PageSorter, PageSorter.layerWorker(script))
      for (const body of [encode("not json"), encode(`{"items":{}}`)]) {
        const here = yield* Effect.flip(PageSorter.inProcess.sort(raw(body)))
        const there = yield* Effect.flip(thread.sort(raw(body)))
        assert.strictEqual(there, here)
        assert.match(here, /not JSON|no "items" array/)
      }
    })))

  it.effect("the decoder thread sorts exactly as the calling thread does, and leaves the caller's buffers alone", () =>
    Effect.scoped(Effect.gen(function*() {
      const thread = yield* Effect.provide(PageSorter.PageSorter, PageSorter.layerWorker(script))
      for (const [name, body] of bodies) {
        // A body that is a view into a larger buffer: only its own bytes may travel, as a copy.
        const big = concat(encode("prefix"), body, encode("suffix"))
        const view = big.subarray(6, 6 + body.length)
        const there = yield* thread.sort(raw(view))
        assert.deepStrictEqual(plain(there.page), expected(body), name)
        assert.strictEqual(big.byteLength, 6 + body.length + 6, `${name}: the caller's buffer is intact`)
      }
      // Pages sent together come back each to its own caller.
      const all = yield* Effect.forEach(bodies, ([, body]) => thread.sort(raw(body.slice())), { concurrency: "unbounded" })
      assert.deepStrictEqual(all.map((s) => plain(s.page)), bodies.map(([, body]) => expected(body)))
    })))

  it.effect("a decoder thread that fails is a defect of every page sent to it, never a silent loss", () =>
    Effect.scoped(Effect.gen(function*() {
      const dir = fs.mkdtempSync(path.join(os.tmpdir(), "sorter-"))
      const broken = path.join(dir, "broken.mjs")
      fs.writeFileSync(broken, `throw new Error("cannot load the decoder")\n`)
      const thread = yield* Effect.provide(PageSorter.PageSorter, PageSorter.layerWorker(pathToFileURL(broken)))
      for (let i = 0; i < 2; i++) {
        const exit = yield* Effect.exit(thread.sort(raw(bodies[0]![1].slice())))
        assert.isTrue(Exit.isFailure(exit) && Cause.isDie(exit.cause))
        if (Exit.isFailure(exit)) assert.match(String(Cause.squash(exit.cause)), /the page decoder thread failed: .*cannot load the decoder/)
      }
      fs.rmSync(dir, { recursive: true, force: true })
    })))
})
