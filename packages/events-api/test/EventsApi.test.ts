import * as HttpClient from "@effect/platform/HttpClient"
import * as HttpClientResponse from "@effect/platform/HttpClientResponse"
import { describe, expect, it, layer } from "@effect/vitest"
import * as Chunk from "effect/Chunk"
import * as ConfigProvider from "effect/ConfigProvider"
import * as DateTime from "effect/DateTime"
import * as Effect from "effect/Effect"
import * as Exit from "effect/Exit"
import * as FastCheck from "effect/FastCheck"
import * as Fiber from "effect/Fiber"
import * as Layer from "effect/Layer"
import * as Option from "effect/Option"
import * as Redacted from "effect/Redacted"
import * as Schema from "effect/Schema"
import * as Stream from "effect/Stream"
import * as TestClock from "effect/TestClock"
import * as EventsApi from "../src/EventsApi.js"
import * as Errors from "../src/EventsApiError.js"
import type { ListParams } from "../src/ListParams.js"
import type { Reply } from "./support/StubHttp.js"
import { BASE_URL, event, itemsBody, makeApi, page, stub, TOKEN, webexError } from "./support/StubHttp.js"

const DOCUMENTED_TAGS = [
  "Unauthorized",
  "Forbidden",
  "EventNotFound",
  "InvalidRequest",
  "RateLimited",
  "ServerError",
  "TransportError",
  "ResponseDecodeError",
  "UnsafeNextLink"
]

const isDocumentedError = Schema.is(Errors.EventsApiError)

/** Fails the test unless the error is one of the package's own, never a platform or parse error. */
const documented = <E extends { readonly _tag: string }>(error: E): E => {
  expect(DOCUMENTED_TAGS).toContain(error._tag)
  expect(isDocumentedError(error)).toBe(true)
  return error
}

const events = (n: number, prefix: string) => Array.from({ length: n }, (_, i) => event({ id: `${prefix}-${i + 1}` }))

/** Three pages of two events each, linked by absolute next URLs carrying an opaque cursor. */
const threePages = () =>
  stub((url) => {
    const cursor = url.searchParams.get("cursor")
    if (cursor === null) return page(events(2, "p1"), `${BASE_URL}/events?cursor=c2&max=2`)
    if (cursor === "c2") return page(events(2, "p2"), `${BASE_URL}/events?cursor=c3&max=2`)
    return page(events(2, "p3"))
  })

const failureOf = <A, E extends { readonly _tag: string }>(self: Effect.Effect<A, E>) =>
  Effect.map(Effect.flip(self), documented)

const listError = (api: EventsApi.Service, params?: ListParams) => failureOf(Stream.runDrain(api.list(params)))

describe("pagination", () => {
  it.effect("follows absolute next links, one request per page, in order", () =>
    Effect.gen(function*() {
      const s = threePages()
      const api = yield* makeApi(s)
      const ids = Chunk.toReadonlyArray(yield* Stream.runCollect(api.list({ max: 2 }))).map((e) => e.id)
      expect(ids).toEqual(["p1-1", "p1-2", "p2-1", "p2-2", "p3-1", "p3-2"])
      expect(s.urls()).toEqual([
        `${BASE_URL}/events?max=2`,
        `${BASE_URL}/events?cursor=c2&max=2`,
        `${BASE_URL}/events?cursor=c3&max=2`
      ])
    }))

  it.effect("listPages gives one element per page with its URL and next link", () =>
    Effect.gen(function*() {
      const s = threePages()
      const api = yield* makeApi(s)
      const pages = Chunk.toReadonlyArray(yield* Stream.runCollect(api.listPages({ max: 2 })))
      expect(pages.map((p) => p.url)).toEqual(s.urls())
      expect(pages.map((p) => p.next)).toEqual([
        Option.some(`${BASE_URL}/events?cursor=c2&max=2`),
        Option.some(`${BASE_URL}/events?cursor=c3&max=2`),
        Option.none()
      ])
      expect(pages.map((p) => p.events.length)).toEqual([2, 2, 2])
    }))

  it.effect("is lazy beyond one page ahead: taking the first events never requests the third page", () =>
    Effect.gen(function*() {
      const s = threePages()
      const api = yield* makeApi(s)
      yield* Stream.runDrain(Stream.take(api.list(), 2))
      // The second page may have been prefetched (and interrupted); the third is never asked for.
      expect(s.calls.length).toBeLessThanOrEqual(2)
      expect(s.urls().some((u) => u.includes("cursor=c3"))).toBe(false)
      s.calls.length = 0
      yield* Stream.runDrain(Stream.take(api.listPages(), 1))
      expect(s.calls.length).toBeLessThanOrEqual(2)
      s.calls.length = 0
      yield* Stream.runDrain(Stream.take(api.list(), 3))
      expect(s.calls.length).toBeGreaterThanOrEqual(2)
      expect(s.calls.length).toBeLessThanOrEqual(3)
      s.calls.length = 0
      // nothing is requested until the stream runs
      const stream = api.list()
      expect(s.calls).toHaveLength(0)
      yield* Stream.runDrain(stream)
      expect(s.calls).toHaveLength(3)
    }))

  it.effect("prefetches the next page while the current one is consumed, never more than one ahead", () =>
    Effect.gen(function*() {
      const s = threePages()
      const api = yield* makeApi(s)
      const requestedWhileConsuming: Array<number> = []
      yield* api.listPages().pipe(
        Stream.runForEach(() =>
          // A slow consumer: let every other fiber run before looking at what was requested.
          Effect.repeatN(Effect.yieldNow(), 50).pipe(Effect.map(() => void requestedWhileConsuming.push(s.calls.length)))
        )
      )
      expect(requestedWhileConsuming).toEqual([2, 3, 3])
    }))

  it.effect("resolves a relative next link against the page URL", () =>
    Effect.gen(function*() {
      const s = stub((url) => (url.searchParams.has("cursor") ? page([event()]) : page([event()], "/v1/events?cursor=rel")))
      const api = yield* makeApi(s)
      yield* Stream.runDrain(api.list())
      expect(s.urls()).toEqual([`${BASE_URL}/events`, `${BASE_URL}/events?cursor=rel`])
    }))

  it.effect("repairs next links that lost max (max=null) or the caller's filters", () =>
    Effect.gen(function*() {
      const s = stub((url) => {
        const cursor = url.searchParams.get("cursor")
        if (cursor === null) return page([event()], `${BASE_URL}/events?cursor=c2&max=null`)
        if (cursor === "c2") return page([event()], `${BASE_URL}/events?cursor=c3&resource=&type=null&max=3`)
        return page([event()])
      })
      yield* TestClock.setTime(Date.UTC(2024, 5, 1))
      const api = yield* makeApi(s)
      const params = { resource: "messages", type: "created", actorId: "person-1", from: "2024-01-01T00:00:00Z", to: "2024-02-01T00:00:00Z", max: 3 }
      yield* Stream.runDrain(api.list(params))
      const filters = { resource: "messages", type: "created", actorId: "person-1", from: "2024-01-01T00:00:00.000Z", to: "2024-02-01T00:00:00.000Z", max: "3" }
      expect(s.calls.map((c) => Object.fromEntries(c.url.searchParams))).toEqual([
        filters,
        { cursor: "c2", ...filters },
        { cursor: "c3", ...filters }
      ])
    }))

  it.effect("drops max=null from a next link when the caller gave no page size", () =>
    Effect.gen(function*() {
      const s = stub((url) => (url.searchParams.has("cursor") ? page([event()]) : page([event()], `${BASE_URL}/events?cursor=c2&max=null`)))
      const api = yield* makeApi(s)
      yield* Stream.runDrain(api.list())
      expect(s.urls()[1]).toBe(`${BASE_URL}/events?cursor=c2`)
    }))

  it.effect("ends on a page without a next link, including an empty one", () =>
    Effect.gen(function*() {
      const s = stub(() => page([]))
      const api = yield* makeApi(s)
      expect(Chunk.size(yield* Stream.runCollect(api.list()))).toBe(0)
      const pages = yield* Stream.runCollect(api.listPages())
      expect(Chunk.size(pages)).toBe(1)
      expect(s.calls).toHaveLength(2)
    }))
})

describe("listPagesWith", () => {
  const textOf = (body: Uint8Array) => new TextDecoder().decode(body)

  it.effect("hands each body to the caller's decoder, asynchronous or not, in order, and emits what it makes", () =>
    Effect.gen(function*() {
      const s = threePages()
      const api = yield* makeApi(s)
      const seen: Array<string> = []
      const listing = Stream.runCollect(api.listPagesWith({ max: 2 }, (raw) =>
        // A decoder elsewhere (a worker thread, say) answers later: the listing waits for it.
        Effect.sleep("1 millis").pipe(
          Effect.zipRight(Effect.sync(() => {
            seen.push(raw.url)
            const ids = (JSON.parse(textOf(raw.body)).items as Array<{ id: string }>).map((e) => e.id)
            return { count: ids.length, page: ids }
          }))
        )))
      const fiber = yield* Effect.fork(listing)
      yield* TestClock.adjust("1 second")
      const pages = yield* Fiber.join(fiber)
      expect(Chunk.toReadonlyArray(pages)).toEqual([["p1-1", "p1-2"], ["p2-1", "p2-2"], ["p3-1", "p3-2"]])
      expect(seen).toEqual(s.urls())
    }))

  it.effect("a decoder's failure fails the listing there with ResponseDecodeError naming the page", () =>
    Effect.gen(function*() {
      const s = threePages()
      const api = yield* makeApi(s)
      const error = yield* failureOf(Stream.runDrain(api.listPagesWith({ max: 2 }, (raw) =>
        raw.url.includes("cursor=c2") ? Effect.fail("no items array here") : Effect.succeed({ count: 2, page: raw.url })
      )))
      expect(error._tag).toBe("ResponseDecodeError")
      expect(error.message).toContain("no items array here")
      expect(s.urls().some((u) => u.includes("cursor=c3"))).toBe(false)
    }))

  it.effect("counts what the decoder reports: empty pages still run into maxEmptyPages", () =>
    Effect.gen(function*() {
      const s = stub((url) => page([], `${BASE_URL}/events?cursor=${Number(url.searchParams.get("cursor") ?? 0) + 1}`))
      const api = yield* makeApi(s, { maxEmptyPages: 3 })
      const error = yield* Effect.flip(Stream.runDrain(api.listPagesWith(undefined, () => Effect.succeed({ count: 0, page: 0 }))))
      expect(error._tag).toBe("PaginationRunaway")
      expect(s.calls).toHaveLength(3)
    }))

  it.effect("decodePageBody is listPages' decoding: the same items from the same body", () =>
    Effect.gen(function*() {
      const s = threePages()
      const api = yield* makeApi(s)
      const viaWith = yield* Stream.runCollect(api.listPagesWith({ max: 2 }, (raw) =>
        Effect.map(EventsApi.decodePageBody(raw.body), (items) => ({ count: items.length, page: items.map((i) => i.raw) }))))
      const viaPages = yield* Stream.runCollect(api.listPages({ max: 2 }))
      expect(Chunk.toReadonlyArray(viaWith)).toEqual(Chunk.toReadonlyArray(viaPages).map((p) => p.items.map((i) => i.raw)))
    }))
})

describe("undecodable items", () => {
  const bad = `{"id":"bad-1","resource":"messages","type":"created","created":"2024-01-01T00:00:00Z","data":{"text":42}}`
  const body = `{"items":[${JSON.stringify(event({ id: "good-1" }))},${bad},${JSON.stringify(event({ id: "good-2" }))}]}`
  const reply: Reply = { status: 200, body, headers: { trackingid: "track-page" } }

  it.effect("listPages keeps them with their raw text next to the good ones", () =>
    Effect.gen(function*() {
      const api = yield* makeApi(stub(() => reply))
      const [only] = Chunk.toReadonlyArray(yield* Stream.runCollect(api.listPages()))
      expect(only!.events.map((e) => e.id)).toEqual(["good-1", "good-2"])
      expect(only!.undecodable).toHaveLength(1)
      expect(only!.undecodable[0]!.raw).toBe(bad)
      expect(only!.undecodable[0]!.id).toEqual(Option.some("bad-1"))
      expect(only!.items.map((i) => i._tag)).toEqual(["Decoded", "Undecodable", "Decoded"])
      expect(only!.trackingId).toEqual(Option.some("track-page"))
    }))

  it.effect("list fails with ResponseDecodeError instead of skipping them", () =>
    Effect.gen(function*() {
      const api = yield* makeApi(stub(() => reply))
      const error = yield* listError(api)
      expect(error).toBeInstanceOf(Errors.ResponseDecodeError)
      expect(error.message).toContain("bad-1")
      expect(error.trackingId).toBe("track-page")
    }))
})

describe("origin safety", () => {
  for (
    const [label, next] of [
      ["another host", "https://evil.test/v1/events?cursor=c2"],
      ["a lookalike host", "https://api.test.evil.test/v1/events?cursor=c2"],
      ["plain http", "http://api.test/v1/events?cursor=c2"],
      ["another port", "https://api.test:8443/v1/events?cursor=c2"]
    ] as const
  ) {
    it.effect(`a next link to ${label} fails with UnsafeNextLink and is never requested`, () =>
      Effect.gen(function*() {
        const s = stub(() => page([event()], next, { trackingid: "track-1" }))
        const api = yield* makeApi(s)
        const error = yield* listError(api)
        expect(error).toBeInstanceOf(Errors.UnsafeNextLink)
        expect(error).toMatchObject({ nextUrl: next, expectedOrigin: "https://api.test", trackingId: "track-1" })
        expect(s.calls).toHaveLength(1)
        expect(s.calls.every((c) => c.url.origin === "https://api.test")).toBe(true)
      }))
  }

  it.effect("the page that carried a refused next link is still delivered before the failure", () =>
    Effect.gen(function*() {
      const s = stub(() => page([event({ id: "kept-1" }), event({ id: "kept-2" })], "https://evil.test/v1/events?c=1"))
      const api = yield* makeApi(s)
      const pages: Array<string> = []
      const exit = yield* Effect.exit(
        Stream.runForEach(api.listPages(), (p) => Effect.sync(() => pages.push(...p.events.map((e) => e.id))))
      )
      expect(pages).toEqual(["kept-1", "kept-2"])
      expect(Exit.isFailure(exit) && String(exit)).toContain("UnsafeNextLink")
      expect(s.calls).toHaveLength(1)
    }))

  it.effect("a next link pointing back to the same page stops instead of looping", () =>
    Effect.gen(function*() {
      const self = `${BASE_URL}/events?cursor=same`
      const s = stub(() => page([event()], self))
      const api = yield* makeApi(s)
      const error = yield* Effect.flip(Stream.runDrain(api.listPages({}).pipe(Stream.take(50))))
      expect(error).toBeInstanceOf(Errors.ResponseDecodeError)
      expect(error.message).toContain("already listed")
      expect(s.calls.length).toBeLessThanOrEqual(2)
    }))

  it.effect("a cycle of next links (A -> B -> A) stops instead of looping", () =>
    Effect.gen(function*() {
      const a = `${BASE_URL}/events?cursor=a`
      const b = `${BASE_URL}/events?cursor=b`
      const s = stub((url) => page([event()], url.searchParams.get("cursor") === "a" ? b : a))
      const api = yield* makeApi(s)
      const error = yield* Effect.flip(Stream.runDrain(api.listPages({}).pipe(Stream.take(50))))
      expect(error).toBeInstanceOf(Errors.ResponseDecodeError)
      expect(error.message).toContain("already listed")
      expect(s.calls.map((c) => c.url.searchParams.get("cursor"))).toEqual([null, "a", "b"])
    }))

  it.effect("sends the token as a bearer token, to the base origin only", () =>
    Effect.gen(function*() {
      const s = threePages()
      const api = yield* makeApi(s)
      yield* Stream.runDrain(api.list())
      yield* Effect.ignore(api.get("e1"))
      expect(s.calls).toHaveLength(4)
      for (const call of s.calls) {
        expect(call.url.origin).toBe("https://api.test")
        expect(call.headers["authorization"]).toBe(`Bearer ${TOKEN}`)
        expect(call.headers["accept"]).toBe("application/json")
      }
    }))

  it.effect("does not put the token into any error", () =>
    Effect.gen(function*() {
      const s = stub(() => webexError(401, { message: "The request requires a valid access token set in the Authorization header." }))
      const error = yield* listError(yield* makeApi(s))
      expect(JSON.stringify(error)).not.toContain(TOKEN)
      expect(String(error)).not.toContain(TOKEN)
    }))
})

describe("errors", () => {
  const noRetry = { retry: false } as const

  it.effect("401 is Unauthorized with the server's message and tracking id", () =>
    Effect.gen(function*() {
      const s = stub(() => webexError(401, { message: "Invalid access token", trackingId: "ROUTER_1" }))
      const error = yield* listError(yield* makeApi(s))
      expect(error).toBeInstanceOf(Errors.Unauthorized)
      expect(error).toMatchObject({ status: 401, detail: "Invalid access token", trackingId: "ROUTER_1", url: `${BASE_URL}/events` })
    }))

  it.effect("403 is Forbidden with a hint about the Compliance Officer role", () =>
    Effect.gen(function*() {
      const s = stub(() => webexError(403, { message: "Forbidden", trackingId: "ROUTER_2" }))
      const error = yield* listError(yield* makeApi(s))
      expect(error).toBeInstanceOf(Errors.Forbidden)
      expect(error).toMatchObject({ status: 403, trackingId: "ROUTER_2" })
      expect(error._tag === "Forbidden" && error.hint).toContain("Compliance Officer")
      expect(error._tag === "Forbidden" && error.hint).toContain("spark-compliance:events_read")
    }))

  it.effect("404 on get is EventNotFound with the id", () =>
    Effect.gen(function*() {
      const s = stub(() => webexError(404, { message: "The requested resource could not be found.", trackingId: "ROUTER_3" }))
      const error = yield* failureOf((yield* makeApi(s)).get("nope"))
      expect(error).toBeInstanceOf(Errors.EventNotFound)
      expect(error).toMatchObject({ status: 404, eventId: "nope", trackingId: "ROUTER_3", detail: "The requested resource could not be found." })
    }))

  it.effect("400 is InvalidRequest, with the description when the body has no message", () =>
    Effect.gen(function*() {
      const s = stub(() => webexError(400, { description: "to must not be in the future", trackingId: "ROUTER_4" }))
      const error = yield* listError(yield* makeApi(s))
      expect(error).toBeInstanceOf(Errors.InvalidRequest)
      expect(error).toMatchObject({ status: 400, detail: "to must not be in the future", trackingId: "ROUTER_4" })
    }))

  it.effect("takes the tracking id from the trackingid header when the body lacks it", () =>
    Effect.gen(function*() {
      const s = stub(() => webexError(401, { message: "expired" }, { trackingid: "HEADER_TRACKING" }))
      const error = yield* listError(yield* makeApi(s))
      expect(error).toMatchObject({ _tag: "Unauthorized", trackingId: "HEADER_TRACKING" })
    }))

  it.effect("prefers the body's tracking id over the header's", () =>
    Effect.gen(function*() {
      const s = stub(() => webexError(403, { message: "no", trackingId: "BODY" }, { trackingid: "HEADER" }))
      expect((yield* listError(yield* makeApi(s))).trackingId).toBe("BODY")
    }))

  it.effect("uses the body text as the message when it is not JSON", () =>
    Effect.gen(function*() {
      const s = stub(() => ({ status: 502, body: "<html>Bad Gateway</html>", headers: { trackingid: "EDGE_1" } }))
      const error = yield* listError(yield* makeApi(s, noRetry))
      expect(error).toMatchObject({ _tag: "ServerError", status: 502, detail: "<html>Bad Gateway</html>", trackingId: "EDGE_1" })
    }))

  it.effect("RateLimited once the retries are exhausted", () =>
    Effect.gen(function*() {
      const s = stub(() => webexError(429, { message: "Too Many Requests", trackingId: "ROUTER_5" }, { "retry-after": "2" }))
      // 429s spend no attempts: only the elapsed time bounds them (attempts at 0, 2 and 4 s).
      const api = yield* makeApi(s, { retry: { maxAttempts: 1, maxElapsed: "5 seconds" } })
      const fiber = yield* Effect.fork(listError(api))
      yield* TestClock.adjust("1 minute")
      const error = yield* Fiber.join(fiber)
      expect(s.calls).toHaveLength(3)
      expect(error).toBeInstanceOf(Errors.RateLimited)
      expect(error).toMatchObject({ status: 429, trackingId: "ROUTER_5", retryAfterMillis: 2_000 })
    }))

  it.effect("ServerError for 5xx", () =>
    Effect.gen(function*() {
      const s = stub(() => webexError(500, { message: "Internal Server Error", trackingId: "ROUTER_6" }))
      const error = yield* listError(yield* makeApi(s, noRetry))
      expect(error).toBeInstanceOf(Errors.ServerError)
      expect(error).toMatchObject({ status: 500, detail: "Internal Server Error", trackingId: "ROUTER_6" })
    }))

  it.effect("TransportError when there is no response", () =>
    Effect.gen(function*() {
      const s = stub(() => ({ transportError: "connect ECONNREFUSED" }))
      const error = yield* listError(yield* makeApi(s, noRetry))
      expect(error).toBeInstanceOf(Errors.TransportError)
      expect(error.status).toBeUndefined()
      expect(error.message).toContain("ECONNREFUSED")
    }))

  it.effect("TransportError, retried, when the connection drops in the middle of the body", () =>
    Effect.gen(function*() {
      let calls = 0
      const client = HttpClient.make((request) =>
        Effect.sync(() => {
          calls++
          const body = calls === 1
            ? new ReadableStream<Uint8Array>({
              start(controller) {
                controller.enqueue(new TextEncoder().encode(`{"items":[`))
                controller.error(new Error("socket hang up"))
              }
            })
            : itemsBody([event({ id: "after-drop" })])
          return HttpClientResponse.fromWeb(request, new Response(body, { status: 200 }))
        })
      )
      const api = yield* EventsApi.make({ token: Redacted.make(TOKEN), baseUrl: BASE_URL, retry: { baseDelay: "1 second" } }).pipe(
        Effect.provideService(HttpClient.HttpClient, client)
      )
      const fiber = yield* Effect.fork(Stream.runCollect(api.list()))
      yield* TestClock.adjust("1 second")
      expect(Chunk.toReadonlyArray(yield* Fiber.join(fiber)).map((e) => e.id)).toEqual(["after-drop"])
      expect(calls).toBe(2)

      const noRetryApi = yield* EventsApi.make({ token: Redacted.make(TOKEN), baseUrl: BASE_URL, retry: false }).pipe(
        Effect.provideService(HttpClient.HttpClient, client)
      )
      calls = 0
      const error = yield* listError(noRetryApi)
      expect(error._tag).toBe("TransportError")
    }))

  it.effect("TransportError when a request times out", () =>
    Effect.gen(function*() {
      const s = stub(() => Effect.as(Effect.never, page([])))
      const api = yield* makeApi(s, { retry: false, requestTimeout: "10 seconds" })
      const fiber = yield* Effect.fork(listError(api))
      yield* TestClock.adjust("10 seconds")
      const error = yield* Fiber.join(fiber)
      expect(error).toBeInstanceOf(Errors.TransportError)
      expect(error.message).toContain("timed out")
    }))

  for (
    const [label, reply] of [
      ["a non-JSON 200", { status: 200, body: "<html>maintenance</html>", headers: { trackingid: "T" } }],
      ["a 200 without items", { status: 200, body: `{"events":[]}`, headers: { trackingid: "T" } }],
      ["a 200 whose items is not an array", { status: 200, body: `{"items":{}}`, headers: { trackingid: "T" } }],
      ["an empty 200", { status: 200, body: "", headers: { trackingid: "T" } }]
    ] as const
  ) {
    it.effect(`ResponseDecodeError for ${label}`, () =>
      Effect.gen(function*() {
        const error = yield* listError(yield* makeApi(stub(() => reply), noRetry))
        expect(error).toBeInstanceOf(Errors.ResponseDecodeError)
        expect(error).toMatchObject({ trackingId: "T", url: `${BASE_URL}/events` })
      }))
  }

  it.effect("ResponseDecodeError when get receives something that is not an event", () =>
    Effect.gen(function*() {
      for (const body of ["not json", `{"items":[]}`, `{"id":"e1","resource":"messages","type":"created","created":"x","data":{}}`]) {
        const error = yield* failureOf((yield* makeApi(stub(() => ({ status: 200, body })), noRetry)).get("e1"))
        expect(error._tag, body).toBe("ResponseDecodeError")
      }
    }))

  it.effect.prop(
    "every response maps to a documented error (or a page): never an HttpClientError or ParseError",
    {
      status: FastCheck.integer({ min: 200, max: 599 }).filter((s) => ![204, 205, 304].includes(s)),
      body: FastCheck.oneof(
        FastCheck.string(),
        FastCheck.constant(`{"message":"m","errors":[{"description":"d"}],"trackingId":"t"}`),
        FastCheck.constant(`{"items":[]}`),
        FastCheck.jsonValue().map((v) => JSON.stringify(v))
      ),
      useGet: FastCheck.boolean()
    },
    ({ body, status, useGet }) =>
      Effect.gen(function*() {
        const api = yield* makeApi(stub(() => ({ status, body })), { retry: false })
        const exit = yield* Effect.exit(useGet ? api.get("e1") : Stream.runDrain(api.list()))
        if (Exit.isSuccess(exit)) {
          expect(status).toBeLessThan(300)
          return
        }
        const error = yield* Effect.flip(exit)
        documented(error)
        if (status >= 300) expect(error.status).toBe(status)
        // a 2xx fails only on its body; 3xx are not followed
        const expectedTag = status < 400
          ? "ResponseDecodeError"
          : status === 401
          ? "Unauthorized"
          : status === 403
          ? "Forbidden"
          : status === 404 && useGet
          ? "EventNotFound"
          : status === 429 || status === 423
          ? "RateLimited"
          : status >= 500
          ? "ServerError"
          : "InvalidRequest"
        expect(error._tag).toBe(expectedTag)
      }),
    // 200 exchanges: minutes on a loaded shared machine are not a failure of the mapping.
    { fastCheck: { numRuns: 200 }, timeout: 60_000 }
  )
})

describe("client-side validation", () => {
  const rejected: ReadonlyArray<[string, ListParams, string]> = [
    ["max 0", { max: 0 }, "max"],
    ["max 1001", { max: 1001 }, "max"],
    ["max 1.5", { max: 1.5 }, "max"],
    ["max NaN", { max: Number.NaN }, "max"],
    ["a from that is not a date", { from: "yesterday" }, "from"],
    ["a to that is not a date", { to: "2024-13-01T00:00:00Z" }, "to"],
    ["an impossible from", { from: "2024-02-30T00:00:00Z" }, "from"],
    ["an invalid Date", { from: new Date("nope") }, "from"],
    ["from after to", { from: "2024-02-01T00:00:00Z", to: "2024-01-01T00:00:00Z" }, "from"],
    ["an empty resource", { resource: "" }, "resource"],
    ["a blank type", { type: "  " }, "type"],
    ["an empty actorId", { actorId: "" }, "actorId"]
  ]

  for (const [label, params, param] of rejected) {
    it.effect(`rejects ${label} with zero requests sent`, () =>
      Effect.gen(function*() {
        const s = threePages()
        const api = yield* makeApi(s)
        const error = yield* listError(api, params)
        expect(error).toBeInstanceOf(Errors.InvalidRequest)
        expect(error).toMatchObject({ param })
        expect(error.status).toBeUndefined()
        const pagesError = yield* failureOf(Stream.runDrain(api.listPages(params)))
        expect(pagesError._tag).toBe("InvalidRequest")
        expect(s.calls).toHaveLength(0)
      }))
  }

  it.effect("accepts the bounds 1 and 1000 for max", () =>
    Effect.gen(function*() {
      const s = stub(() => page([]))
      const api = yield* makeApi(s)
      yield* Stream.runDrain(api.list({ max: 1 }))
      yield* Stream.runDrain(api.list({ max: 1000 }))
      expect(s.calls.map((c) => c.url.searchParams.get("max"))).toEqual(["1", "1000"])
    }))

  it.effect("rejects an empty eventId with zero requests sent", () =>
    Effect.gen(function*() {
      const s = threePages()
      const api = yield* makeApi(s)
      for (const id of ["", "   "]) {
        const error = yield* failureOf(api.get(id))
        expect(error).toMatchObject({ _tag: "InvalidRequest", param: "eventId" })
      }
      expect(s.calls).toHaveLength(0)
    }))

  it.effect("rejects a base URL that is not http(s) when the service is made, with zero requests sent", () =>
    Effect.gen(function*() {
      for (const baseUrl of ["not a url", "ftp://api.test/v1", "file:///etc", "http://api.test/v1", "http://10.0.0.1/v1"]) {
        const s = threePages()
        expect(yield* failureOf(makeApi(s, { baseUrl }))).toMatchObject({ _tag: "InvalidRequest", param: "baseUrl" })
        expect(s.calls).toHaveLength(0)
      }
    }))

  it.effect("rejects a token an HTTP header cannot carry when the service is made, with zero requests sent", () =>
    Effect.gen(function*() {
      for (const token of ["abc\u0000def", "abc\ndef", "tok en", "tökén"]) {
        const s = threePages()
        const exit = yield* Effect.exit(
          EventsApi.make({ token: Redacted.make(token), baseUrl: BASE_URL }).pipe(Effect.provide(s.layer))
        )
        expect(exit).toMatchObject({ _tag: "Failure", cause: { error: { _tag: "InvalidRequest", param: "token" } } })
        expect(String(exit)).not.toContain(token)
        expect(s.calls).toHaveLength(0)
      }
    }))
})

describe("time parameters", () => {
  const NOW = Date.UTC(2024, 5, 1, 12, 30, 15, 250)
  const paramsSent = (params: ListParams) =>
    Effect.gen(function*() {
      yield* TestClock.setTime(NOW)
      const s = stub(() => page([]))
      yield* Stream.runDrain((yield* makeApi(s)).list(params))
      expect(s.calls).toHaveLength(1)
      return Object.fromEntries(s.calls[0]!.url.searchParams)
    })

  it.effect("clamps a future to to now", () =>
    Effect.gen(function*() {
      const sent = yield* paramsSent({ from: "2024-06-01T00:00:00Z", to: "2030-01-01T00:00:00Z" })
      expect(sent).toEqual({ from: "2024-06-01T00:00:00.000Z", to: "2024-06-01T12:30:15.250Z" })
    }))

  it.effect("leaves a past to alone", () =>
    Effect.gen(function*() {
      expect((yield* paramsSent({ to: "2024-06-01T12:30:15.249Z" })).to).toBe("2024-06-01T12:30:15.249Z")
    }))

  it.effect("rejects a from later than now when to is clamped below it", () =>
    Effect.gen(function*() {
      yield* TestClock.setTime(NOW)
      const s = stub(() => page([]))
      const error = yield* listError(yield* makeApi(s), { from: "2025-01-01T00:00:00Z", to: "2030-01-01T00:00:00Z" })
      expect(error).toMatchObject({ _tag: "InvalidRequest", param: "from" })
      expect(s.calls).toHaveLength(0)
    }))

  it.effect("sends from and to as YYYY-MM-DDTHH:mm:ss.SSSZ whatever form they were given in", () =>
    Effect.gen(function*() {
      const pattern = /^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}\.\d{3}Z$/
      const cases: ReadonlyArray<[ListParams["from"], string]> = [
        ["2024-01-01T00:00:00Z", "2024-01-01T00:00:00.000Z"],
        ["2024-01-01T01:00:00+01:00", "2024-01-01T00:00:00.000Z"],
        ["2023-12-31T19:00:00.5-0500", "2024-01-01T00:00:00.500Z"],
        [new Date(Date.UTC(2024, 0, 1, 0, 0, 0, 7)), "2024-01-01T00:00:00.007Z"],
        [DateTime.unsafeMakeZoned(Date.UTC(2024, 0, 1), { timeZone: "Europe/Paris" }), "2024-01-01T00:00:00.000Z"]
      ]
      for (const [from, expected] of cases) {
        const sent = yield* paramsSent({ from, to: from })
        expect(sent.from).toMatch(pattern)
        expect(sent).toEqual({ from: expected, to: expected })
      }
    }))
})

describe("get", () => {
  it.effect("fetches one event by its id, escaping it in the path", () =>
    Effect.gen(function*() {
      const s = stub(() => ({ status: 200, body: JSON.stringify(event({ id: "a/b c" })) }))
      const found = yield* (yield* makeApi(s)).get("a/b c")
      expect(found.id).toBe("a/b c")
      expect(s.urls()).toEqual([`${BASE_URL}/events/a%2Fb%20c`])
    }))

  it.effect("tolerates a trailing slash on the base URL", () =>
    Effect.gen(function*() {
      const s = stub(() => ({ status: 200, body: JSON.stringify(event({ id: "e1" })) }))
      yield* (yield* makeApi(s, { baseUrl: `${BASE_URL}/` })).get("e1")
      expect(s.urls()).toEqual([`${BASE_URL}/events/e1`])
    }))
})

describe("layerConfig", () => {
  const withConfig = (entries: ReadonlyArray<[string, string]>) => Effect.withConfigProvider(ConfigProvider.fromMap(new Map(entries)))

  it.effect("reads WEBEX_TOKEN and WEBEX_BASE_URL", () =>
    Effect.gen(function*() {
      const s = stub(() => page([event({ id: "from-config" })]))
      const ids = yield* EventsApi.EventsApi.pipe(
        Effect.flatMap((api) => Stream.runCollect(api.list())),
        Effect.provide(EventsApi.layerConfig().pipe(Layer.provide(s.layer))),
        withConfig([["WEBEX_TOKEN", "config-token"], ["WEBEX_BASE_URL", "https://other.test/api"]])
      )
      expect(Chunk.toReadonlyArray(ids).map((e) => e.id)).toEqual(["from-config"])
      expect(s.urls()).toEqual(["https://other.test/api/events"])
      expect(s.calls[0]!.headers["authorization"]).toBe("Bearer config-token")
    }))

  it.effect("trims a pasted token and refuses an empty one", () =>
    Effect.gen(function*() {
      const s = stub(() => page([]))
      yield* EventsApi.EventsApi.pipe(
        Effect.flatMap((api) => Stream.runDrain(api.list())),
        Effect.provide(EventsApi.layerConfig().pipe(Layer.provide(s.layer))),
        withConfig([["WEBEX_TOKEN", "  pasted-token\n"]])
      )
      expect(s.calls[0]!.headers["authorization"]).toBe("Bearer pasted-token")
      const exit = yield* Effect.exit(
        Layer.build(EventsApi.layerConfig().pipe(Layer.provide(s.layer))).pipe(Effect.scoped, withConfig([["WEBEX_TOKEN", " \n"]]))
      )
      expect(Exit.isFailure(exit) && String(exit)).toContain("WEBEX_TOKEN is empty")
    }))

  it.effect("defaults the base URL to webexapis.com", () =>
    Effect.gen(function*() {
      const s = stub(() => page([]))
      yield* EventsApi.EventsApi.pipe(
        Effect.flatMap((api) => Stream.runDrain(api.list())),
        Effect.provide(EventsApi.layerConfig().pipe(Layer.provide(s.layer))),
        withConfig([["WEBEX_TOKEN", "config-token"]])
      )
      expect(s.urls()).toEqual(["https://webexapis.com/v1/events"])
    }))

  it.effect("rejects a base URL that is not an http(s) URL, and a missing token", () =>
    Effect.gen(function*() {
      const build = (entries: ReadonlyArray<[string, string]>) =>
        Effect.exit(Layer.build(EventsApi.layerConfig().pipe(Layer.provide(stub(() => page([])).layer))).pipe(
          Effect.scoped,
          withConfig(entries)
        ))
      for (const base of ["webexapis.com/v1", "not a url", "ftp://webexapis.com"]) {
        const exit = yield* build([["WEBEX_TOKEN", "t"], ["WEBEX_BASE_URL", base]])
        expect(Exit.isFailure(exit), base).toBe(true)
        expect(exit).toMatchObject({ _tag: "Failure", cause: { error: { _tag: "InvalidRequest", param: "baseUrl" } } })
      }
      expect(Exit.isFailure(yield* build([]))).toBe(true)
      expect(Exit.isSuccess(yield* build([["WEBEX_TOKEN", "t"]]))).toBe(true)
    }))
})

// `layer` blocks come after the top-level tests: in @effect/vitest 0.30 they mutate the shared `it`.
const layerStub = stub((url) => (url.pathname.endsWith("/events") ? page([event({ id: "via-layer" })]) : webexError(404)))

layer(EventsApi.layer({ token: Redacted.make(TOKEN), baseUrl: BASE_URL }).pipe(Layer.provide(layerStub.layer)))(
  "EventsApi.layer",
  (it) => {
    it.effect("provides the service on the given transport", () =>
      Effect.gen(function*() {
        const api = yield* EventsApi.EventsApi
        const ids = Chunk.toReadonlyArray(yield* Stream.runCollect(api.list())).map((e) => e.id)
        expect(ids).toEqual(["via-layer"])
        expect((yield* failureOf(api.get("e1")))._tag).toBe("EventNotFound")
        expect(layerStub.urls()).toEqual([`${BASE_URL}/events`, `${BASE_URL}/events/e1`])
      }))
  }
)
