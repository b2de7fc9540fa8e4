/**
 * A hostile (or badly broken) server, issue 10: endless and oversized bodies over a real loopback
 * socket, pagination that never ends, error texts that echo secrets and terminal escapes, and a
 * failing token endpoint that must not multiply the retry budget.
 */
import { NodeHttpClient } from "@effect/platform-node"
import * as FetchHttpClient from "@effect/platform/FetchHttpClient"
import type * as HttpClient from "@effect/platform/HttpClient"
import { describe, expect, it } from "@effect/vitest"
import * as Cause from "effect/Cause"
import * as Config from "effect/Config"
import * as Effect from "effect/Effect"
import * as Exit from "effect/Exit"
import * as Fiber from "effect/Fiber"
import * as Layer from "effect/Layer"
import * as Logger from "effect/Logger"
import * as Redacted from "effect/Redacted"
import * as Schedule from "effect/Schedule"
import * as Stream from "effect/Stream"
import * as TestClock from "effect/TestClock"
import type * as Tracer from "effect/Tracer"
import * as Http from "node:http"
import * as Inspect from "node:util"
import * as EventsApi from "../src/EventsApi.js"
import type * as Errors from "../src/EventsApiError.js"
import { loopback } from "./support/Loopback.js"
import { BASE_URL, event, makeApi, page, stub, TOKEN, webexError } from "./support/StubHttp.js"

/** A loopback server for the test's scope, answering with `handler`; counts requests and bytes written. */
const serve = (handler: (req: Http.IncomingMessage, res: Http.ServerResponse) => void) =>
  Effect.suspend(() => {
    let requests = 0
    let written = 0
    return Effect.map(
      loopback((req, res) => {
        requests++
        const write = res.write.bind(res)
        res.write = ((chunk: Uint8Array | string, ...rest: Array<unknown>) => {
          written += typeof chunk === "string" ? Buffer.byteLength(chunk) : chunk.length
          return (write as (...args: Array<unknown>) => boolean)(chunk, ...rest)
        }) as typeof res.write
        handler(req, res)
      }),
      ({ origin }) => ({ baseUrl: `${origin}/v1`, requests: () => requests, written: () => written })
    )
  })

/**
 * The transports a body is read through: Node's `http` (the body read from its `IncomingMessage`),
 * `fetch` (from its web `Response`), and undici (whose responses are read through their `Stream`).
 */
const transports: ReadonlyArray<readonly [string, Layer.Layer<HttpClient.HttpClient>]> = [
  ["node:http", NodeHttpClient.layer],
  ["fetch", FetchHttpClient.layer],
  ["undici", NodeHttpClient.layerUndici]
]

/** The real service over a real transport (undici unless told); it lives as long as the test's scope. */
const realApi = (
  baseUrl: string,
  options: EventsApi.CommonOptions = {},
  transport: Layer.Layer<HttpClient.HttpClient> = NodeHttpClient.layerUndici
) =>
  Effect.flatMap(
    Layer.build(transport),
    (context) => EventsApi.make({ token: Redacted.make(TOKEN), baseUrl, ...options }).pipe(Effect.provide(context))
  )

const failure = <A, E, R>(effect: Effect.Effect<A, E, R>) => Effect.flip(effect)

describe.each(transports)("response size cap (real sockets, %s)", (_, transport) => {
  it.live("an endless 200 body fails fast with ResponseTooLarge naming the cap, not retried, memory bounded", () =>
    Effect.scoped(Effect.gen(function*() {
      const chunk = Buffer.alloc(64 * 1024, 0x20)
      const s = yield* serve((_, res) => {
        res.writeHead(200, { "content-type": "application/json" })
        res.write(`{"items":[`)
        // Writes for as long as the client reads: without a cap this never ends.
        const pump = () => {
          while (res.write(chunk)) { /* keep the socket full */ }
        }
        res.on("drain", pump)
        res.on("close", () => res.off("drain", pump))
        pump()
      })
      const api = yield* realApi(s.baseUrl, { maxResponseBytes: 1024 * 1024 }, transport)
      const error = yield* failure(Stream.runDrain(api.list()))
      expect(error._tag).toBe("ResponseTooLarge")
      expect((error as Errors.ResponseTooLarge).limitBytes).toBe(1024 * 1024)
      expect(error.message).toContain("1048576")
      expect(s.requests()).toBe(1)
    })), 20_000)

  it.live("a declared Content-Length over the cap is refused before the body is read", () =>
    Effect.scoped(Effect.gen(function*() {
      const s = yield* serve((_, res) => {
        res.writeHead(200, { "content-type": "application/json", "content-length": String(10 * 1024 * 1024) })
        res.write(`{"items":[]}`)
        // Never finishes: the client must not wait for the rest.
      })
      const api = yield* realApi(s.baseUrl, { maxResponseBytes: 1024 }, transport)
      const error = yield* failure(api.get("e1"))
      expect(error).toMatchObject({ _tag: "ResponseTooLarge", limitBytes: 1024, status: 200 })
    })), 20_000)

  it.live("a body just under the cap is read whole, its bytes decoded", () =>
    Effect.scoped(Effect.gen(function*() {
      const body = JSON.stringify({ items: [event({ id: "fits", data: { text: "x".repeat(2000) } })] })
      const s = yield* serve((_, res) => {
        res.writeHead(200, { "content-type": "application/json" })
        res.end(body)
      })
      const api = yield* realApi(s.baseUrl, { maxResponseBytes: Buffer.byteLength(body) }, transport)
      const pages = yield* Stream.runCollect(api.listPages())
      expect(Array.from(pages, (p) => p.events.map((e) => e.id))).toEqual([["fits"]])
    })), 20_000)

  it.live("an endless error body is read only as far as its message needs, and the error is still mapped", () =>
    Effect.scoped(Effect.gen(function*() {
      const s = yield* serve((_, res) => {
        res.writeHead(400, { "content-type": "text/plain" })
        const pump = () => {
          while (res.write("junk ".repeat(1000))) { /* keep the socket full */ }
        }
        res.on("drain", pump)
        pump()
      })
      const api = yield* realApi(s.baseUrl, { retry: false }, transport)
      const error = yield* failure(api.get("e1"))
      expect(error._tag).toBe("InvalidRequest")
      expect((error as Errors.InvalidRequest).detail!.length).toBeLessThan(400)
    })), 20_000)

  it.live("a body sent in many pieces is read whole, its bytes unchanged", () =>
    Effect.scoped(Effect.gen(function*() {
      const text = "grüße 👋 ".repeat(3000)
      const bytes = Buffer.from(JSON.stringify({ items: [event({ id: "pieces", data: { text } })] }))
      const s = yield* serve((_, res) => {
        res.writeHead(200, { "content-type": "application/json" })
        // Pieces of 1000 bytes: many cut a character in two.
        for (let at = 0; at < bytes.length; at += 1000) res.write(bytes.subarray(at, at + 1000))
        res.end()
      })
      const api = yield* realApi(s.baseUrl, {}, transport)
      const pages = yield* Stream.runCollect(api.listPages())
      const [only] = Array.from(pages, (p) => p.events)
      expect(only!.map((e) => [e.id, (e.data as { text?: unknown }).text])).toEqual([["pieces", text]])
    })), 20_000)

  it.live("a connection dropped mid-body is a TransportError", () =>
    Effect.scoped(Effect.gen(function*() {
      const s = yield* serve((_, res) => {
        res.writeHead(200, { "content-type": "application/json", "content-length": "100000" })
        res.write(`{"items":[`, () => res.socket?.destroy())
      })
      const api = yield* realApi(s.baseUrl, { retry: false }, transport)
      const error = yield* failure(Stream.runDrain(api.list()))
      expect(error._tag).toBe("TransportError")
      expect(s.requests()).toBe(1)
    })), 20_000)
})

describe("server text in errors", () => {
  it.effect("the token is redacted, control characters escaped and long text cut", () =>
    Effect.gen(function*() {
      const evil = `bad token ${TOKEN} \u001b[31mred\u001b[0m\r\nInjected: yes ${"x".repeat(5000)}`
      const s = stub(() => webexError(400, { message: evil, trackingId: `t\u0007${TOKEN}` }))
      const error = yield* failure((yield* makeApi(s, { retry: false })).get("e1"))
      const text = `${error.message} ${JSON.stringify(error)}`
      expect(text).not.toContain(TOKEN)
      expect(text).not.toMatch(/[\u0000-\u0008\u000b-\u001f]/)
      expect(error.message).toContain("<redacted>")
      expect(error.message).toContain("\\u001b[31mred")
      expect(error.message).toContain("\\r\\nInjected")
      expect((error as Errors.InvalidRequest).detail!.length).toBeLessThan(350)
    }))

  it.effect("a transport error keeps its HttpClientError cause, and no rendering of it shows the token", () =>
    Effect.gen(function*() {
      const s = stub(() => ({ transportError: "socket hang up" }))
      const exit = yield* Effect.exit((yield* makeApi(s, { retry: false })).get("e1"))
      const error = yield* Effect.flip(exit)
      expect(error._tag).toBe("TransportError")
      expect((error as Errors.TransportError).reason).toContain("socket hang up")
      expect((error.cause as { _tag?: string })._tag).toBe("RequestError")
      expect((error.cause as { reason?: string }).reason).toBe("Transport")
      for (const text of [JSON.stringify(error), String(exit), Cause.pretty(Cause.fail(error)), Inspect.inspect(error, { depth: 10 })]) {
        expect(text).not.toContain(TOKEN)
      }
    }))

  it.effect("the client secret and refresh token echoed by the token endpoint are redacted", () =>
    Effect.gen(function*() {
      const s = stub((url, _i) =>
        url.pathname.endsWith("/access_token")
          ? {
            status: 400,
            body: JSON.stringify({
              error: "invalid_grant",
              error_description: `refresh_token=refresh-secret-0 client_secret=client-secret-0 (${encodeURIComponent("client-secret-0")})`
            })
          }
          : page([])
      )
      const error = yield* failure(
        EventsApi.make({
          baseUrl: BASE_URL,
          refresh: { clientId: "c", clientSecret: Redacted.make("client-secret-0"), refreshToken: Redacted.make("refresh-secret-0") }
        }).pipe(Effect.provide(s.layer), Effect.flatMap((api) => Stream.runDrain(api.list())))
      )
      expect(error._tag).toBe("TokenRefreshFailed")
      const text = `${error.message} ${JSON.stringify(error)}`
      expect(text).toContain("invalid_grant")
      expect(text).not.toContain("client-secret-0")
      expect(text).not.toContain("refresh-secret-0")
    }))
})

describe("pagination that never ends", () => {
  it.effect("stops with PaginationRunaway after maxEmptyPages empty pages that still link onward", () =>
    Effect.gen(function*() {
      const s = stub((_, i) => page([], `${BASE_URL}/events?cursor=${i + 1}`))
      const api = yield* makeApi(s, { maxEmptyPages: 5 })
      const pages: Array<number> = []
      const error = yield* failure(Stream.runForEach(api.listPages(), (p) => Effect.sync(() => void pages.push(p.items.length))))
      expect(error).toMatchObject({ _tag: "PaginationRunaway", reason: "emptyPages", limit: 5 })
      expect(s.calls).toHaveLength(5)
      expect(pages).toEqual([0, 0, 0, 0, 0])
    }))

  it.effect("a page with items resets the empty-page count", () =>
    Effect.gen(function*() {
      const s = stub((_, i) =>
        i >= 12 ? page([]) : page(i % 3 === 2 ? [event()] : [], `${BASE_URL}/events?cursor=${i + 1}`)
      )
      const api = yield* makeApi(s, { maxEmptyPages: 3 })
      yield* Stream.runDrain(api.listPages())
      expect(s.calls).toHaveLength(13)
    }))

  it.effect("stops with PaginationRunaway beyond maxPages pages in one listing", () =>
    Effect.gen(function*() {
      const s = stub((_, i) => page([event()], `${BASE_URL}/events?cursor=${i + 1}`))
      const api = yield* makeApi(s, { maxPages: 7 })
      const error = yield* failure(Stream.runDrain(api.list()))
      expect(error).toMatchObject({ _tag: "PaginationRunaway", reason: "pageLimit", limit: 7 })
      expect(s.calls).toHaveLength(7)
    }))

  it.effect("a page with more items than max is kept, and logged as a warning", () =>
    Effect.gen(function*() {
      const logs: Array<string> = []
      const capture = Logger.replace(
        Logger.defaultLogger,
        Logger.make(({ logLevel, message }) => void logs.push(`${logLevel.label} ${String(message)}`))
      )
      const s = stub(() => page([event(), event(), event()]))
      const api = yield* makeApi(s)
      const events = yield* Stream.runCollect(api.list({ max: 2 })).pipe(Effect.provide(capture))
      expect(events.length).toBe(3)
      expect(logs.some((l) => l.startsWith("WARN") && l.includes("3 items on a page of at most 2"))).toBe(true)
    }))
})

describe("bad options fail make once", () => {
  it.effect("a bad maxResponseBytes, maxEmptyPages or maxPages is InvalidRequest naming it", () =>
    Effect.gen(function*() {
      for (const [param, options] of [["maxResponseBytes", { maxResponseBytes: 0 }], ["maxEmptyPages", { maxEmptyPages: 1.5 }], ["maxPages", { maxPages: -1 }]] as const) {
        const exit = yield* Effect.exit(makeApi(stub(() => page([])), options))
        expect(exit).toMatchObject({ _tag: "Failure", cause: { error: { _tag: "InvalidRequest", param } } })
      }
    }))
})

describe("one retry budget covers the token endpoint", () => {
  it.effect("a 500 from /access_token costs maxAttempts requests, not maxAttempts squared", () =>
    Effect.gen(function*() {
      const s = stub((url) => url.pathname.endsWith("/access_token") ? webexError(500, { message: "down" }) : page([]))
      const api = yield* EventsApi.make({
        baseUrl: BASE_URL,
        retry: { maxAttempts: 4, baseDelay: "1 second" },
        refresh: { clientId: "c", clientSecret: Redacted.make("client-secret"), refreshToken: Redacted.make("refresh-0") }
      }).pipe(Effect.provide(s.layer))
      const fiber = yield* Effect.fork(failure(Stream.runDrain(api.list())))
      yield* TestClock.adjust("1 hour")
      const error = yield* Fiber.join(fiber)
      expect(error).toMatchObject({ _tag: "ServerError", status: 500 })
      expect(s.calls.filter((c) => c.url.pathname.endsWith("/access_token"))).toHaveLength(4)
      expect(s.calls.filter((c) => c.url.pathname.endsWith("/events"))).toHaveLength(0)
    }))
})

describe("a replaced retry schedule", () => {
  it.effect("decides the attempts and the delays", () =>
    Effect.gen(function*() {
      const s = stub(() => webexError(503, { message: "busy" }))
      const api = yield* makeApi(s, {
        retry: { schedule: Schedule.spaced("10 seconds").pipe(Schedule.intersect(Schedule.recurs(2))) }
      })
      const fiber = yield* Effect.fork(failure(api.get("e1")))
      yield* TestClock.adjust("9 seconds")
      expect(s.calls).toHaveLength(1)
      yield* TestClock.adjust("1 second")
      expect(s.calls).toHaveLength(2)
      yield* TestClock.adjust("10 seconds")
      expect(s.calls).toHaveLength(3)
      yield* TestClock.adjust("1 hour")
      expect((yield* Fiber.join(fiber))._tag).toBe("ServerError")
      expect(s.calls.map((c) => c.at)).toEqual([0, 10_000, 20_000])
    }))

  it.effect("Retry-After still overrides its delay, and non-transient errors are still not retried", () =>
    Effect.gen(function*() {
      const s = stub((_, i) =>
        i === 0 ? webexError(429, { message: "slow" }, { "retry-after": "30" }) : i === 1 ? webexError(403) : page([])
      )
      const api = yield* makeApi(s, { retry: { schedule: Schedule.spaced("1 second") } })
      const fiber = yield* Effect.fork(Effect.exit(api.get("e1")))
      yield* TestClock.adjust("29 seconds")
      expect(s.calls).toHaveLength(1)
      yield* TestClock.adjust("1 second")
      const exit = yield* Fiber.join(fiber)
      expect(Exit.isFailure(exit)).toBe(true)
      expect(s.calls.map((c) => c.at)).toEqual([0, 30_000])
    }))
})

describe("layerConfig with Config values", () => {
  it.effect("reads the token and base URL from the Configs given", () =>
    Effect.gen(function*() {
      const s = stub(() => page([]))
      yield* EventsApi.EventsApi.pipe(
        Effect.flatMap((api) => Stream.runDrain(api.list())),
        Effect.provide(
          EventsApi.layerConfig({
            token: Config.succeed(Redacted.make("from-config")),
            baseUrl: Config.succeed("https://elsewhere.test/v1")
          }).pipe(Layer.provide(s.layer))
        )
      )
      expect(s.urls()).toEqual(["https://elsewhere.test/v1/events"])
      expect(s.calls[0]!.headers["authorization"]).toBe("Bearer from-config")
    }))
})

describe("tracing", () => {
  /** The names of the span a request is sent in and of its ancestors, innermost first. */
  const spanChain = Effect.map(Effect.currentSpan, (span) => {
    const names: Array<string> = []
    let current: Tracer.AnySpan | undefined = span
    while (current !== undefined) {
      names.push(current._tag === "Span" ? current.name : "external")
      current = current._tag === "Span" && current.parent._tag === "Some" ? current.parent.value : undefined
    }
    return names
  })

  it.effect("requests hang from EventsApi.get, and from EventsApi.fetchPage under EventsApi.listPages and EventsApi.list", () =>
    Effect.gen(function*() {
      const chains: Array<ReadonlyArray<string>> = []
      const s = stub((_, i) =>
        Effect.map(
          Effect.orElseSucceed(spanChain, () => ["none"]),
          (chain) => {
            chains.push(chain)
            return i === 0 ? { status: 200, body: JSON.stringify(event({ id: "e1" })) } : page([event()])
          }
        )
      )
      const api = yield* makeApi(s)
      yield* api.get("e1")
      yield* Stream.runDrain(api.list())
      expect(chains[0]).toContain("EventsApi.get")
      const listing = chains[1]!
      expect(listing).toContain("EventsApi.fetchPage")
      expect(listing.indexOf("EventsApi.fetchPage")).toBeLessThan(listing.indexOf("EventsApi.listPages"))
      expect(listing.indexOf("EventsApi.listPages")).toBeLessThan(listing.indexOf("EventsApi.list"))
    }))
})
