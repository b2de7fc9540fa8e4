import { describe, expect, it } from "@effect/vitest"
import * as Effect from "effect/Effect"
import * as Either from "effect/Either"
import * as FastCheck from "effect/FastCheck"
import * as Option from "effect/Option"
import * as EventsPage from "../src/EventsPage.js"
import * as PageDecoder from "../src/internal/pageDecoder.js"

const good = (id: string, extra = "") =>
  `{"id":"${id}","resource":"messages","type":"created","created":"2024-01-01T00:00:00Z","data":{"text":"hi"}${extra}}`

const itemsOf = (body: string): ReadonlyArray<EventsPage.PageItem> => {
  const result = PageDecoder.decodeBody(body)
  if (Either.isLeft(result)) throw new Error(`expected items, got: ${result.left}`)
  return result.right
}

describe("decodeBody", () => {
  it("decodes every item and keeps its exact text", () => {
    const raw1 = good("e1", `,"score":1.0,"big":9223372036854775807,"name":"caf\\u00e9"`)
    const raw2 = good("e2", `,"odd":"]}\\"\\\\"`)
    const items = itemsOf(`{"items":[${raw1},${raw2}]}`)
    expect(items.map((i) => i._tag)).toEqual(["Decoded", "Decoded"])
    expect(items.map((i) => i.raw)).toEqual([raw1, raw2])
    const first = items[0]!
    if (first._tag !== "Decoded") throw new Error("expected Decoded")
    expect(first.event.id).toBe("e1")
    expect(first.event["name"]).toBe("café")
  })

  it("compacts pretty-printed items to one line and decodes them", () => {
    const body = JSON.stringify({ items: [JSON.parse(good("e1", `,"note":"a  b"`))] }, null, 2)
    const [item] = itemsOf(body)
    expect(item!._tag).toBe("Decoded")
    expect(item!.raw).not.toContain("\n")
    expect(item!.raw).toContain(`"note":"a  b"`)
    expect(JSON.parse(item!.raw)).toEqual(JSON.parse(body).items[0])
  })

  it("turns a malformed item into Undecodable with its raw text, reason and id; its neighbours decode", () => {
    const bad = `{"id":"bad-1","resource":"messages","type":"created","created":"2024-02-30T00:00:00Z","data":{"text":42}}`
    const noId = `{"resource":"messages"}`
    const items = itemsOf(`{"items":[${good("e1")},${bad},${noId},"just a string",${good("e2")}]}`)
    expect(items.map((i) => i._tag)).toEqual(["Decoded", "Undecodable", "Undecodable", "Undecodable", "Decoded"])
    const undecodable = items[1]!
    if (undecodable._tag !== "Undecodable") throw new Error("expected Undecodable")
    expect(undecodable.raw).toBe(bad)
    expect(undecodable.id).toEqual(Option.some("bad-1"))
    expect(undecodable.created).toEqual(Option.some("2024-02-30T00:00:00Z"))
    expect(undecodable.reason).toMatch(/text|created/)
    const third = items[2]!
    expect(third._tag === "Undecodable" && third.id).toEqual(Option.none())
    expect(items[3]!.raw).toBe(`"just a string"`)
  })

  it("is Left when the body is not JSON or has no items array", () => {
    for (const body of ["", "<html>502 Bad Gateway</html>", `{"items":[1,}`, "[]", "null", `{"item":[]}`, `{"items":{}}`]) {
      expect(Either.isLeft(PageDecoder.decodeBody(body)), body).toBe(true)
    }
  })

  it("decodes an empty page", () => {
    expect(itemsOf(`{"items":[]}`)).toEqual([])
  })

  it("lets the last items key win", () => {
    const items = itemsOf(`{"items":[${good("first")}],"items":[${good("last")}]}`)
    expect(items.map((i) => i._tag === "Decoded" && i.event.id)).toEqual(["last"])
  })

  it.prop(
    "keeps one item per element, in order, whatever the mix of good and bad ones",
    { kinds: FastCheck.array(FastCheck.boolean(), { maxLength: 20 }) },
    ({ kinds }) => {
      const raws = kinds.map((ok, i) => (ok ? good(`e${i}`) : `{"id":"e${i}","created":"nope"}`))
      const items = itemsOf(`{"items":[${raws.join(",")}]}`)
      expect(items.map((i) => i.raw)).toEqual(raws)
      expect(items.map((i) => i._tag === "Decoded")).toEqual(kinds)
    }
  )
})

describe("decodeItem", () => {
  it("decodes a single raw event and reports non-JSON as Undecodable", () => {
    expect(PageDecoder.decodeItem(`  ${good("e1")}\n`)._tag).toBe("Decoded")
    const item = PageDecoder.decodeItem("{not json")
    expect(item._tag).toBe("Undecodable")
    expect(item.raw).toBe("{not json")
    expect(item._tag === "Undecodable" && item.reason).toMatch(/^Not JSON/)
  })
})

describe("EventsPage", () => {
  const page = new EventsPage.EventsPage({
    url: "https://api.test/v1/events",
    items: itemsOf(`{"items":[${good("e1")},{"id":"x"},${good("e2")}]}`),
    next: Option.none(),
    trackingId: Option.some("track-1")
  })

  it("separates events from undecodable items", () => {
    expect(page.events.map((e) => e.id)).toEqual(["e1", "e2"])
    expect(page.undecodable.map((u) => u.raw)).toEqual([`{"id":"x"}`])
  })

  it.effect("eventsOrFail fails with ResponseDecodeError naming the bad item, with the tracking id", () =>
    Effect.gen(function*() {
      const error = yield* Effect.flip(PageDecoder.eventsOrFail(page))
      expect(error._tag).toBe("ResponseDecodeError")
      expect(error.message).toContain("id x")
      expect(error.trackingId).toBe("track-1")
      expect(error.url).toBe("https://api.test/v1/events")
      const ok = new EventsPage.EventsPage({ ...page, items: page.items.filter((i) => i._tag === "Decoded") })
      expect((yield* PageDecoder.eventsOrFail(ok)).map((e) => e.id)).toEqual(["e1", "e2"])
    }))
})

describe("PageBytes", () => {
  it("items built on a page read their bytes from it by index, once each, only when asked", () => {
    const raws = [good("p0"), good("p1", `,"n":1.0`)].map((s) => new TextEncoder().encode(s))
    const asked: Array<number> = []
    const page: EventsPage.PageBytes = {
      itemBytes: (index) => {
        asked.push(index)
        return raws[index]!
      }
    }
    const decoded = itemsOf(`{"items":[${good("p0")},${good("p1", `,"n":1.0`)}]}`)
    const events = decoded.map((item) => (item as EventsPage.Decoded).event)
    const items = [
      new EventsPage.Decoded({ event: events[0]!, invalidUtf8: false, bytes: page, index: 0 }),
      new EventsPage.Undecodable({
        invalidUtf8: false,
        reason: "r",
        id: Option.some("p1"),
        created: Option.none(),
        bytes: page,
        index: 1
      })
    ]
    expect(asked).toEqual([])
    expect(items[1]!.raw).toBe(good("p1", `,"n":1.0`))
    expect(items[0]!.bytes).toBe(raws[0])
    expect(items[0]!.bytes).toBe(raws[0])
    expect(items[1]!.bytes).toBe(raws[1])
    expect(asked).toEqual([1, 0])
  })

  it("decodeBody's items share one scan of the body: every item's bytes are views of it", () => {
    const body = new TextEncoder().encode(`{"items":[${good("a")},${good("b")},${good("c")}]}`)
    const result = PageDecoder.decodeBody(body)
    if (Either.isLeft(result)) throw new Error(result.left)
    const views = result.right.map((item) => item.bytes)
    expect(views.map((v) => new TextDecoder().decode(v))).toEqual([good("a"), good("b"), good("c")])
    expect(views.every((v) => v.buffer === body.buffer)).toBe(true)
  })
})
