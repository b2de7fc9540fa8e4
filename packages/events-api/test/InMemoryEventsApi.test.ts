import { describe, expect, it, layer } from "@effect/vitest"
import * as Chunk from "effect/Chunk"
import * as Effect from "effect/Effect"
import * as FastCheck from "effect/FastCheck"
import * as Option from "effect/Option"
import * as Stream from "effect/Stream"
import * as TestClock from "effect/TestClock"
import * as EventsApi from "../src/EventsApi.js"
import type { ListParams } from "../src/ListParams.js"
import * as InMemoryEventsApi from "../src/testing/InMemoryEventsApi.js"

const ev = (id: string, fields: { resource?: string; type?: string; actorId?: string; created?: string } = {}) => ({
  id,
  resource: fields.resource ?? "messages",
  type: fields.type ?? "created",
  actorId: fields.actorId ?? "alice",
  created: fields.created ?? "2024-01-01T00:00:00.000Z",
  data: { text: `text of ${id}` }
})

const seed = [
  ev("m1", { created: "2024-01-01T00:00:00.000Z" }),
  ev("m2", { type: "deleted", created: "2024-01-02T00:00:00.000Z" }),
  ev("r1", { resource: "rooms", type: "updated", actorId: "bob", created: "2024-01-03T00:00:00.000Z" }),
  ev("m3", { actorId: "bob", created: "2024-01-04T00:00:00.000Z" }),
  ev("t1", { resource: "tabs", created: "2024-01-05T00:00:00.000Z" })
]

const idsOf = (api: InMemoryEventsApi.InMemory, params?: ListParams) =>
  Effect.map(Stream.runCollect(api.list(params)), (events) => Chunk.toReadonlyArray(events).map((e) => e.id))

const pagesOf = (api: InMemoryEventsApi.InMemory, params?: ListParams) =>
  Effect.map(Stream.runCollect(api.listPages(params)), Chunk.toReadonlyArray)

// `to` is clamped to now, as by the real service, so the test clock is set past the seeded events.
const atNow = TestClock.setTime(Date.UTC(2024, 5, 1))

describe("InMemoryEventsApi", () => {
  it.effect("listPagesWith hands over each page as a body of its items' bytes, as sent, in pages", () =>
    Effect.gen(function*() {
      yield* atNow
      const raw = `{"id":"x1","resource":"messages","type":"created","actorId":"a","created":"2024-01-06T00:00:00.000Z","data":{"n":1.0}}`
      const api = yield* InMemoryEventsApi.make([...seed, raw, "not json"], { defaultPageSize: 3 })
      const bodies = yield* Stream.runCollect(api.listPagesWith(undefined, (page) =>
        Effect.map(EventsApi.decodePageBody(page.body), (items) => ({ count: items.length, page: items.map((i) => i.raw) }))))
      const viaPages = (yield* pagesOf(api)).map((p) => p.items.map((i) => i.raw))
      // Every item as sent; the one that is not JSON travels as a JSON string of its text.
      expect(Chunk.toReadonlyArray(bodies)).toEqual([viaPages[0], viaPages[1], [JSON.stringify("not json")]])
      expect(Chunk.toReadonlyArray(bodies)[1]![2]).toBe(raw)
      const failed = yield* Effect.flip(Stream.runDrain(api.listPagesWith(undefined, () => Effect.fail("unusable"))))
      expect(failed._tag).toBe("ResponseDecodeError")
    }))

  it.effect("lists every seeded event, in seeding order, without filters", () =>
    Effect.gen(function*() {
      const api = yield* InMemoryEventsApi.make(seed)
      expect(yield* idsOf(api)).toEqual(["m1", "m2", "r1", "m3", "t1"])
    }))

  it.effect("honours resource, type and actorId", () =>
    Effect.gen(function*() {
      const api = yield* InMemoryEventsApi.make(seed)
      expect(yield* idsOf(api, { resource: "messages" })).toEqual(["m1", "m2", "m3"])
      expect(yield* idsOf(api, { type: "deleted" })).toEqual(["m2"])
      expect(yield* idsOf(api, { actorId: "bob" })).toEqual(["r1", "m3"])
      expect(yield* idsOf(api, { resource: "messages", actorId: "bob" })).toEqual(["m3"])
      expect(yield* idsOf(api, { resource: "meetings" })).toEqual([])
    }))

  it.effect("honours from (inclusive) and to (exclusive)", () =>
    Effect.gen(function*() {
      yield* atNow
      const api = yield* InMemoryEventsApi.make(seed)
      expect(yield* idsOf(api, { from: "2024-01-02T00:00:00Z" })).toEqual(["m2", "r1", "m3", "t1"])
      expect(yield* idsOf(api, { to: "2024-01-03T00:00:00Z" })).toEqual(["m1", "m2"])
      expect(yield* idsOf(api, { from: "2024-01-02T00:00:00Z", to: "2024-01-04T00:00:00.001Z" })).toEqual(["m2", "r1", "m3"])
      expect(yield* idsOf(api, { from: new Date("2024-01-05T00:00:00.001Z") })).toEqual([])
    }))

  it.effect("clamps to to now, so events created after now are not listed with a future to", () =>
    Effect.gen(function*() {
      yield* TestClock.setTime(Date.UTC(2024, 0, 3))
      const api = yield* InMemoryEventsApi.make(seed)
      expect(yield* idsOf(api, { to: "2030-01-01T00:00:00Z" })).toEqual(["m1", "m2"])
    }))

  it.effect("splits into pages of max, or of the default page size", () =>
    Effect.gen(function*() {
      const many = Array.from({ length: 250 }, (_, i) => ev(`e${i}`))
      const api = yield* InMemoryEventsApi.make(many)
      expect((yield* pagesOf(api)).map((p) => p.items.length)).toEqual([100, 100, 50])
      expect((yield* pagesOf(api, { max: 120 })).map((p) => p.items.length)).toEqual([120, 120, 10])
      const small = yield* InMemoryEventsApi.make(many.slice(0, 7), { defaultPageSize: 3 })
      const pages = yield* pagesOf(small)
      expect(pages.map((p) => p.items.length)).toEqual([3, 3, 1])
      expect(pages.map((p) => Option.isSome(p.next))).toEqual([true, true, false])
    }))

  it.effect("rejects invalid parameters like the real client", () =>
    Effect.gen(function*() {
      const api = yield* InMemoryEventsApi.make(seed)
      for (const params of [{ max: 0 }, { max: 1001 }, { from: "nope" }, { resource: "" }] satisfies ReadonlyArray<ListParams>) {
        const error = yield* Effect.flip(Stream.runDrain(api.list(params)))
        expect(error._tag).toBe("InvalidRequest")
      }
    }))

  it.effect("gets an event by id, and fails with EventNotFound (404) otherwise", () =>
    Effect.gen(function*() {
      const api = yield* InMemoryEventsApi.make(seed)
      expect((yield* api.get("r1")).resource).toBe("rooms")
      const missing = yield* Effect.flip(api.get("nope"))
      expect(missing).toMatchObject({ _tag: "EventNotFound", eventId: "nope", status: 404 })
      expect((yield* Effect.flip(api.get("")))._tag).toBe("InvalidRequest")
    }))

  it.effect("add makes late-arriving events visible to later listings and get", () =>
    Effect.gen(function*() {
      const api = yield* InMemoryEventsApi.make(seed.slice(0, 1))
      expect(yield* idsOf(api)).toEqual(["m1"])
      yield* api.add([ev("late-1"), JSON.stringify(ev("late-2"))])
      expect(yield* idsOf(api)).toEqual(["m1", "late-1", "late-2"])
      expect((yield* api.get("late-2")).id).toBe("late-2")
    }))

  it.effect("keeps raw text seeds exactly, and lists undecodable ones like listPages does over HTTP", () =>
    Effect.gen(function*() {
      const raw = `{"id":"raw-1","resource":"messages","type":"created","created":"2024-01-01T00:00:00Z","data":{"n":1.0}}`
      const bad = `{"id":"bad-1","resource":"messages","type":"created","created":"never","data":{}}`
      const api = yield* InMemoryEventsApi.make([raw, bad])
      const [first] = yield* pagesOf(api)
      expect(first!.items.map((i) => i.raw)).toEqual([raw, bad])
      expect(first!.undecodable.map((u) => u.id)).toEqual([Option.some("bad-1")])
      expect((yield* Effect.flip(Stream.runDrain(api.list())))._tag).toBe("ResponseDecodeError")
      // an undecodable item cannot match a filter
      expect(yield* idsOf(api, { resource: "messages" })).toEqual(["raw-1"])
    }))

  it.effect.prop(
    "lists exactly the seeded events, in ceil(n / size) pages",
    {
      created: FastCheck.array(
        FastCheck.date({ min: new Date("2000-01-01T00:00:00Z"), max: new Date("2030-01-01T00:00:00Z"), noInvalidDate: true }),
        { maxLength: 120 }
      ),
      size: FastCheck.integer({ min: 1, max: 50 })
    },
    ({ created, size }) =>
      Effect.gen(function*() {
        const events = created.map((date, i) => ev(`id-${i}`, { created: date.toISOString() }))
        const api = yield* InMemoryEventsApi.make(events)
        const listed = yield* idsOf(api, { max: size })
        expect([...listed].sort()).toEqual(events.map((e) => e.id).sort())
        const pages = yield* pagesOf(api, { max: size })
        // like the service, an empty listing is one empty page
        expect(pages).toHaveLength(Math.max(1, Math.ceil(events.length / size)))
        expect(pages.every((p) => p.items.length <= size && p.undecodable.length === 0)).toBe(true)
        expect(pages.flatMap((p) => p.events.map((e) => e.id))).toEqual(listed)
      })
  )
})

// `layer` blocks come after the top-level tests: in @effect/vitest 0.30 they mutate the shared `it`.
layer(InMemoryEventsApi.layer(seed, { defaultPageSize: 2 }))("InMemoryEventsApi.layer", (it) => {
  it.effect("provides the EventsApi tag", () =>
    Effect.gen(function*() {
      const api = yield* EventsApi.EventsApi
      const pages = Chunk.toReadonlyArray(yield* Stream.runCollect(api.listPages()))
      expect(pages.map((p) => p.events.map((e) => e.id))).toEqual([["m1", "m2"], ["r1", "m3"], ["t1"]])
    }))
})
