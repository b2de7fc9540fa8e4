/**
 * The real client (`EventsApi.layer` over undici) against the real fake server, over loopback HTTP.
 *
 * The unit tests stub `HttpClient`; these prove the pieces fit: headers as undici delivers them,
 * Retry-After forms, dropped sockets, next links built by a server, byte-exact bodies. The server
 * runs on the live clock and so does the client here (`it.live`/`it.scopedLive`), so every retry
 * wait is kept tiny by the policy below, never by the server.
 */
import * as NodeHttpClient from "@effect/platform-node/NodeHttpClient"
import { assert, describe, it } from "@effect/vitest"
import * as Chunk from "effect/Chunk"
import * as DateTime from "effect/DateTime"
import * as Effect from "effect/Effect"
import * as Either from "effect/Either"
import * as FastCheck from "effect/FastCheck"
import * as Layer from "effect/Layer"
import * as Logger from "effect/Logger"
import * as LogLevel from "effect/LogLevel"
import * as Option from "effect/Option"
import * as Redacted from "effect/Redacted"
import * as Schema from "effect/Schema"
import * as Stream from "effect/Stream"
import * as TestClock from "effect/TestClock"
import type { AddressInfo } from "node:net"
import * as Net from "node:net"
import type * as AccessToken from "../src/AccessToken.js"
import * as Event from "../src/Event.js"
import * as EventsApi from "../src/EventsApi.js"
import type * as EventsApiError from "../src/EventsApiError.js"
import type * as EventsPage from "../src/EventsPage.js"
import { FakeWebex, SeedOrg } from "../src/testing.js"
import { loopback } from "./support/Loopback.js"

// ---------------------------------------------------------------------------------------------
// Helpers
// ---------------------------------------------------------------------------------------------

type Fake = FakeWebex.FakeWebex.Service
type ClientOptions = Omit<EventsApi.Options, "token" | "baseUrl">

/** Retries that take milliseconds: a 1-second Retry-After is capped at 30 ms. */
const FAST = { baseDelay: "2 millis", maxDelay: "10 millis", maxRetryAfter: "30 millis", maxAttempts: 20 } as const

const FROM = "2024-03-01T00:00:00.000Z"
const TO = "2024-03-08T00:00:00.000Z"
const org = (count: number, seed = 11) => SeedOrg.generateOrg({ count, seed, from: FROM, to: TO })

/** The fake's junk item (`malformedItemEvery`), byte for byte. */
const JUNK = `{"id": 42, "created": "yesterday"}`

/** Runs `f` with the real client pointed at `fake` (or at `baseUrl`), over undici. */
const withApi = <A, E, R>(
  fake: Fake,
  options: ClientOptions & { readonly baseUrl?: string; readonly token?: Redacted.Redacted<string> },
  f: (api: EventsApi.Service) => Effect.Effect<A, E, R>
): Effect.Effect<A, E | EventsApiError.EventsApiError, R> =>
  Effect.flatMap(EventsApi.EventsApi, f).pipe(
    Effect.provide(
      EventsApi.layer({ token: fake.token, baseUrl: fake.baseUrl, ...options }).pipe(
        Layer.provide(NodeHttpClient.layerUndici)
      )
    ),
    // Retries log a warning each; the assertions below read the server's request log instead.
    Effect.provide(Logger.remove(Logger.defaultLogger))
  )

interface Stored {
  readonly id: string
  readonly resource: string
  readonly type: string
  readonly created: number
  readonly raw: string
}

/** What the server stores, read back from `fake.events` (its raw text), well-formed items only. */
const storedEvents = (fake: Fake): Effect.Effect<ReadonlyArray<Stored>> =>
  Effect.map(fake.events, (raws) =>
    raws.flatMap((raw) => {
      const json = JSON.parse(raw)
      return typeof json.id === "string" && !Number.isNaN(Date.parse(json.created))
        ? [{ id: json.id, resource: json.resource, type: json.type, created: Date.parse(json.created), raw }]
        : []
    }))

const sortedIds = (events: Iterable<{ readonly id: string }>) => Array.from(events, (e) => e.id).sort()

/** The requests that reached `/v1/events` (list requests, not `get`s). */
const listRequests = (fake: Fake) => Effect.map(fake.requests, (rs) => rs.filter((r) => r.path === "/v1/events"))

/** Runs a stream to completion, keeping what it emitted before it failed. */
const collectUntilFailure = <A, E>(stream: Stream.Stream<A, E>) =>
  Effect.map(Stream.runCollect(Stream.either(stream)), (chunk) => {
    const all = Chunk.toReadonlyArray(chunk)
    const values = all.flatMap((e) => (Either.isRight(e) ? [e.right] : []))
    const failure = all.flatMap((e) => (Either.isLeft(e) ? [e.left] : []))[0]
    return { values, failure }
  })

/** A tiny `node:http` server on port 0 that records every request it receives. */
const recordingServer = Effect.suspend(() => {
  const received: Array<{ url: string; authorization: string | undefined }> = []
  return Effect.map(
    loopback((req, res) => {
      received.push({ url: req.url ?? "", authorization: req.headers.authorization })
      // An answer a client would happily accept, so following the link would make the run pass.
      res.writeHead(200, { "content-type": "application/json" })
      res.end(`{"items":[]}`)
    }),
    ({ origin }) => ({ origin, received })
  )
})

/** A port nothing listens on: bound, read, released. */
const closedPort = Effect.async<number>((resume) => {
  const server = Net.createServer()
  server.listen(0, "127.0.0.1", () => {
    const { port } = server.address() as AddressInfo
    server.close(() => resume(Effect.succeed(port)))
  })
})

// ---------------------------------------------------------------------------------------------
// Everything at once
// ---------------------------------------------------------------------------------------------

/** Events whose raw text a re-serialisation would change: fidelity has to come from the body. */
const oddEvents = [
  `{"id":"odd-1","resource":"messages","type":"created","actorId":"p1","appId":"null","created":"2024-03-05T10:00:00+00:00","data":{"text":"caf\\u00e9 \\"quoted\\" \\n line","weight":1.0,"big":12345678901234567890}}`,
  `{ "id" : "odd-2", "resource": "messages", "type": "deleted", "created": "2024-03-06T11:00:00.5Z", "data": { "id": "m2", "n": 1e3 } }`,
  `{"id":"odd-3","resource":"messages","type":"created","created":"2024-03-06T12:00:00.123Z","data":{"emoji":"\\ud83d\\ude4f 🙏","nested":[{"a":[]},{}]},"futureField":{"x":null}}`
]

/** Every request-level fault, each on its own counter, plus broken next links and latency. */
const allFaults = (retryAfter: FakeWebex.Faults["retryAfter"]): Partial<FakeWebex.Faults> => ({
  rateLimitEvery: 5,
  lockedEvery: 7,
  serverErrorEvery: 4,
  dropConnectionEvery: 9,
  retryAfter,
  retryAfterSeconds: 1,
  latencyMs: 2,
  nextLinkMaxNull: true,
  nextLinkDropsFilters: true
})

/** Filters in the request, so that a next link that lost them would serve the wrong events. */
const FILTER = { resource: "messages", from: "2024-03-02T00:00:00.000Z", max: 9 } as const
const matchesFilter = (e: Stored) => e.resource === FILTER.resource && e.created >= Date.parse(FILTER.from)

describe("every fault at once", () => {
  for (const retryAfter of ["seconds", "http-date", "missing", "garbage"] as const) {
    it.scopedLive(`Retry-After ${retryAfter}: list yields exactly the matching events; junk surfaces as Undecodable`, () =>
      Effect.gen(function*() {
        const fake = yield* FakeWebex.make({
          events: [...org(300), ...oddEvents],
          order: "shuffled",
          seed: 5,
          faults: allFaults(retryAfter)
        })
        const stored = yield* storedEvents(fake)
        const expected = stored.filter(matchesFilter)
        assert.isAbove(expected.length, 10 * FILTER.max, "enough matching events for many pages")
        assert.isBelow(expected.length, stored.length, "the filter excludes events, so losing it would show")

        // 1. list: exactly the server's matching events, despite everything.
        const logs: Array<string> = []
        const capture = Logger.make(({ message }) => {
          logs.push(Array.isArray(message) ? message.join(" ") : String(message))
        })
        const events = yield* withApi(fake, { retry: FAST }, (api) =>
          Stream.runCollect(api.list(FILTER)).pipe(
            Effect.provide(Logger.add(capture)),
            Logger.withMinimumLogLevel(LogLevel.Debug)
          ))
        assert.deepStrictEqual(sortedIds(events), sortedIds(expected))

        const requests = yield* fake.requests
        // The faults really fired: this is not a run that got lucky.
        for (const fault of ["drop", "rateLimit", "locked", "serverError"] as const) {
          assert.isTrue(requests.some((r) => r.fault === fault), `fault ${fault} fired`)
        }
        // Every next link was repaired: the filters and the page size were on every request sent.
        for (const r of requests) {
          assert.strictEqual(r.query.resource, "messages", r.url)
          assert.strictEqual(r.query.from, FILTER.from, r.url)
          assert.strictEqual(r.query.max, String(FILTER.max), r.url)
          assert.isTrue(r.authorized, `bearer token on ${r.url}`)
        }
        assert.isTrue(logs.some((line) => line.includes("Repaired the next-page link")), "repairs are logged")
        assert.isTrue(logs.some((line) => line.includes("Rate limited (429)")), "429s are logged")
        if (retryAfter === "seconds" || retryAfter === "http-date") {
          // The server asked for >= 1 s, capped at 30 ms: each retry after a 429/423 waited the cap
          // (a backoff would have waited at most 10 ms).
          requests.forEach((r, i) => {
            const next = requests[i + 1]
            if ((r.status === 429 || r.status === 423) && next !== undefined) {
              assert.isAtLeast(next.at - r.at, 28, `wait after the ${r.status} at request ${i}`)
            }
          })
        }

        // 2. listPages with junk items: every good event, every junk item kept as Undecodable.
        yield* fake.setFaults({ ...allFaults(retryAfter), malformedItemEvery: 4 })
        const pages = yield* withApi(fake, { retry: FAST }, (api) => Stream.runCollect(api.listPages(FILTER)))
        const items = Chunk.toReadonlyArray(pages).flatMap((page) => page.items)
        const decoded = items.filter((i): i is EventsPage.Decoded => i._tag === "Decoded")
        const undecodable = items.filter((i): i is EventsPage.Undecodable => i._tag === "Undecodable")
        assert.deepStrictEqual(sortedIds(decoded.map((d) => d.event)), sortedIds(expected))
        const junkPages = (yield* fake.requests).filter((r) => r.fault === "malformedItem")
        assert.isAbove(junkPages.length, 0)
        assert.strictEqual(undecodable.length, junkPages.length)
        for (const u of undecodable) {
          assert.strictEqual(u.raw, JUNK)
          assert.isTrue(Option.isNone(u.id), "a number id is no id")
          assert.deepStrictEqual(u.created, Option.some("yesterday"))
        }
        // Byte fidelity: each item's raw text is exactly what the server stores for its id.
        const rawById = new Map(stored.map((e) => [e.id, e.raw]))
        for (const d of decoded) assert.strictEqual(d.raw, rawById.get(d.event.id), d.event.id)
        for (const odd of ["odd-1", "odd-2", "odd-3"]) {
          assert.isTrue(decoded.some((d) => d.event.id === odd), `${odd} was listed`)
        }

        // 3. list with junk present: fails on the junk page, with that page's tracking id.
        yield* fake.setFaults({ ...allFaults(retryAfter), malformedItemEvery: 3 })
        const { failure } = yield* withApi(fake, { retry: FAST }, (api) => collectUntilFailure(api.list(FILTER)))
        assert.strictEqual(failure?._tag, "ResponseDecodeError")
        // The stream stops at the first junk page, so it is the last one the server served.
        const junkPage = (yield* fake.requests).filter((r) => r.fault === "malformedItem").at(-1)
        assert.isDefined(junkPage)
        assert.strictEqual(failure?.trackingId, junkPage?.trackingId)
        assert.strictEqual(failure?.url, junkPage?.url)
      }))
  }
})

// ---------------------------------------------------------------------------------------------
// Property: any event set, any page size, any order
// ---------------------------------------------------------------------------------------------

const ANCHOR = Date.parse("2024-06-01T00:00:00.000Z")

const arbitraryEvent = FastCheck.record({
  id: FastCheck.stringMatching(/^[A-Za-z0-9_-]{1,24}$/),
  // Small offsets make events share a millisecond; large ones spread them over years.
  ageMs: FastCheck.oneof(FastCheck.integer({ min: 0, max: 3 }), FastCheck.integer({ min: 0, max: 3 * 365 * 86_400_000 })),
  plusOffset: FastCheck.boolean(),
  resource: FastCheck.oneof(
    FastCheck.constantFrom(...Event.KNOWN_RESOURCES),
    FastCheck.stringMatching(/^[a-z][A-Za-z_]{0,15}$/)
  ),
  type: FastCheck.constantFrom(...Event.KNOWN_TYPES)
})

const toRaw = (e: typeof arbitraryEvent extends FastCheck.Arbitrary<infer T> ? T : never) => {
  const iso = new Date(ANCHOR - e.ageMs).toISOString()
  return JSON.stringify({
    id: e.id,
    resource: e.resource,
    type: e.type,
    actorId: "actor",
    created: e.plusOffset ? iso.replace(/Z$/, "+00:00") : iso,
    data: {}
  })
}

describe("pagination property", () => {
  it.scopedLive.prop(
    "list yields exactly the server's events, one request per page",
    {
      // `size: "max"`: without it fast-check keeps arrays to about ten elements.
      events: FastCheck.uniqueArray(arbitraryEvent, { selector: (e) => e.id, maxLength: 300, size: "max" }),
      size: FastCheck.integer({ min: 1, max: 50 }),
      order: FastCheck.constantFrom<Array<FakeWebex.Order>>("newest-first", "oldest-first", "shuffled"),
      seed: FastCheck.integer({ min: 1, max: 1000 })
    },
    ({ events, order, seed, size }) =>
      Effect.gen(function*() {
        const fake = yield* FakeWebex.make({ events: events.map(toRaw), order, seed })
        const listed = yield* withApi(fake, { retry: false }, (api) => Stream.runCollect(api.list({ max: size })))
        assert.deepStrictEqual(sortedIds(listed), sortedIds(events))
        const requests = yield* listRequests(fake)
        assert.strictEqual(requests.length, Math.max(1, Math.ceil(events.length / size)))
        assert.isTrue(requests.every((r) => r.status === 200 && r.query.max === String(size)))
      }),
    { fastCheck: { numRuns: 15 }, timeout: 20_000 }
  )

  // The boundaries a random run may miss: nothing at all, an exact multiple of the page size, one more.
  it.scopedLive("no events is one empty page; an exact multiple needs no trailing empty page", () =>
    Effect.gen(function*() {
      for (const [n, size, pages] of [[0, 10, 1], [1, 1, 1], [40, 20, 2], [41, 20, 3], [300, 1000, 1]] as const) {
        const events = Array.from({ length: n }, (_, i) =>
          toRaw({ id: `e${i}`, ageMs: i % 4, plusOffset: i % 2 === 0, resource: "messages", type: "created" }))
        const fake = yield* FakeWebex.make({ events, order: "oldest-first" })
        const listed = yield* withApi(fake, { retry: false }, (api) => Stream.runCollect(api.list({ max: size })))
        assert.strictEqual(Chunk.size(listed), n)
        assert.strictEqual((yield* listRequests(fake)).length, pages, `${n} events in pages of ${size}`)
      }
    }))
})

describe("list reads every page into one buffer", () => {
  it.scopedLive("the events of earlier pages do not change as longer and shorter pages overwrite it", () =>
    Effect.gen(function*() {
      // Pages of very different lengths (a long non-ASCII text now and then), so later bodies
      // both outgrow the buffer and leave stale bytes of earlier ones past their end.
      const events = org(90, 5).map((raw, i) => {
        if (i % 7 !== 3) return raw
        const json = JSON.parse(raw)
        return JSON.stringify({ ...json, data: { ...json.data, text: `é€😀 ${"x".repeat(2_000 * (i % 3))}` } })
      })
      const fake = yield* FakeWebex.make({ events, order: "shuffled", seed: 3 })
      const encode = (e: Event.Event) => JSON.stringify(Schema.encodeSync(Event.Event)(e))
      const { listed, pages } = yield* withApi(fake, { retry: false }, (api) =>
        Effect.all({
          listed: Effect.map(Stream.runCollect(api.list({ max: 4 })), (c) => Chunk.toReadonlyArray(c).map(encode)),
          // listPages keeps a buffer per page (its items view it): the reference.
          pages: Effect.map(Stream.runCollect(api.listPages({ max: 4 })), (c) =>
            Chunk.toReadonlyArray(c).flatMap((p) => p.events.map(encode)))
        }))
      assert.strictEqual(listed.length, 90)
      assert.deepStrictEqual(listed, pages)
      const requests = yield* listRequests(fake)
      assert.isTrue(requests.every((r) => r.status === 200))
    }))
})

// ---------------------------------------------------------------------------------------------
// The token stays home
// ---------------------------------------------------------------------------------------------

describe("origin safety end to end", () => {
  it.scopedLive("a next link to another origin fails with UnsafeNextLink and that origin sees no request", () =>
    Effect.gen(function*() {
      const foreign = yield* recordingServer
      const fake = yield* FakeWebex.make({ events: org(5), faults: { nextLinkOrigin: foreign.origin } })
      const { failure, values } = yield* withApi(fake, { retry: FAST }, (api) => collectUntilFailure(api.list({ max: 2 })))

      // The page that carried the link was fetched safely: its events arrive, then the refusal.
      assert.strictEqual(values.length, 2)

      assert.strictEqual(failure?._tag, "UnsafeNextLink")
      if (failure?._tag !== "UnsafeNextLink") return
      assert.isTrue(failure.nextUrl.startsWith(`${foreign.origin}/`), failure.nextUrl)
      assert.strictEqual(failure.expectedOrigin, new URL(fake.baseUrl).origin)
      assert.notInclude(failure.message, Redacted.value(fake.token))
      assert.deepStrictEqual(foreign.received, [])

      const requests = yield* fake.requests
      assert.strictEqual(requests.length, 1)
      assert.strictEqual(failure.trackingId, requests[0]!.trackingId)
    }))

  it.scopedLive("the token goes to the fake as a Bearer token, on every request", () =>
    Effect.gen(function*() {
      const fake = yield* FakeWebex.make({ events: org(30) })
      const events = yield* withApi(fake, {}, (api) => Stream.runCollect(api.list({ max: 10 })))
      assert.strictEqual(Chunk.size(events), 30)
      const requests = yield* fake.requests
      assert.strictEqual(requests.length, 3)
      assert.isTrue(requests.every((r) => r.authorized && r.status === 200))
    }))
})

// ---------------------------------------------------------------------------------------------
// Every error tag, over real HTTP
// ---------------------------------------------------------------------------------------------

/** The failure of `list`, which must fail. */
const listFailure = (api: EventsApi.Service, params: Parameters<EventsApi.Service["list"]>[0] = {}) =>
  Effect.flip(Stream.runDrain(api.list(params)))

const lastRequest = (fake: Fake) => Effect.map(fake.requests, (rs) => rs.at(-1))

const assertTracked = (fake: Fake, error: EventsApiError.EventsApiError) =>
  Effect.gen(function*() {
    const last = yield* lastRequest(fake)
    assert.isDefined(last)
    assert.match(error.trackingId ?? "", /^ROUTER_/)
    assert.strictEqual(error.trackingId, last?.trackingId)
  })

describe("errors over HTTP", () => {
  it.scopedLive("Unauthorized: a wrong token", () =>
    Effect.gen(function*() {
      const fake = yield* FakeWebex.make({ events: org(3) })
      const error = yield* withApi(fake, { token: Redacted.make("not-the-token"), retry: FAST }, listFailure)
      assert.strictEqual(error._tag, "Unauthorized")
      assert.strictEqual(error.status, 401)
      yield* assertTracked(fake, error)
      assert.strictEqual((yield* fake.requests).length, 1, "401 is not retried")
    }))

  it.scopedLive("Forbidden: a token without the compliance role, with a hint", () =>
    Effect.gen(function*() {
      const fake = yield* FakeWebex.make({ events: org(3), faults: { forbidden: true } })
      const error = yield* withApi(fake, { retry: FAST }, listFailure)
      assert.strictEqual(error._tag, "Forbidden")
      if (error._tag !== "Forbidden") return
      assert.strictEqual(error.status, 403)
      assert.include(error.hint, "Compliance Officer")
      yield* assertTracked(fake, error)
    }))

  it.scopedLive("EventNotFound: get of an unknown id", () =>
    Effect.gen(function*() {
      const fake = yield* FakeWebex.make({ events: org(3) })
      const error = yield* withApi(fake, { retry: FAST }, (api) => Effect.flip(api.get("no-such-event")))
      assert.strictEqual(error._tag, "EventNotFound")
      if (error._tag !== "EventNotFound") return
      assert.strictEqual(error.status, 404)
      assert.strictEqual(error.eventId, "no-such-event")
      yield* assertTracked(fake, error)
      assert.strictEqual((yield* fake.requests).length, 1, "404 is not retried")
    }))

  it.scopedLive("InvalidRequest on the client: nothing is sent", () =>
    Effect.gen(function*() {
      const fake = yield* FakeWebex.make({ events: org(3) })
      const errors = yield* withApi(fake, { retry: FAST }, (api) =>
        Effect.all([
          listFailure(api, { max: 1001 }),
          listFailure(api, { max: 0 }),
          listFailure(api, { from: "yesterday" }),
          listFailure(api, { from: "2024-02-01T00:00:00Z", to: "2024-01-01T00:00:00Z" }),
          Effect.flip(api.get(" "))
        ]))
      assert.deepStrictEqual(
        errors.map((e) => [e._tag, e._tag === "InvalidRequest" ? e.param : undefined, e.status]),
        [
          ["InvalidRequest", "max", undefined],
          ["InvalidRequest", "max", undefined],
          ["InvalidRequest", "from", undefined],
          ["InvalidRequest", "from", undefined],
          ["InvalidRequest", "eventId", undefined]
        ]
      )
      assert.deepStrictEqual(yield* fake.requests, [])
    }))

  // The client clamps `to` to *its* now. A client clock ahead of the server's makes that instant
  // "the future" for the server, which answers 400: a real server 400 the client cannot prevent.
  it.scoped("InvalidRequest from the server: a 400 (client clock ahead of the server's)", () =>
    Effect.gen(function*() {
      const fake = yield* FakeWebex.make({ events: org(3) })
      yield* TestClock.setTime(Date.now() + 3_600_000)
      const error = yield* withApi(fake, { retry: false }, (api) => listFailure(api, { to: "2999-01-01T00:00:00Z" }))
      assert.strictEqual(error._tag, "InvalidRequest")
      assert.strictEqual(error.status, 400)
      assert.strictEqual((error as EventsApiError.InvalidRequest).detail, "The request was invalid or cannot be otherwise served.")
      yield* assertTracked(fake, error)
    }))

  it.scopedLive("InvalidRequest from the server: a list URL it has no route for (404)", () =>
    Effect.gen(function*() {
      const fake = yield* FakeWebex.make({ events: org(3) })
      const baseUrl = fake.baseUrl.replace(/\/v1$/, "/v2")
      const error = yield* withApi(fake, { baseUrl, retry: FAST }, listFailure)
      assert.strictEqual(error._tag, "InvalidRequest")
      assert.strictEqual(error.status, 404)
      assert.strictEqual(error.url, `${baseUrl}/events`)
      yield* assertTracked(fake, error)
    }))

  it.scopedLive("RateLimited: 429 on every attempt, with the Retry-After the server asked for", () =>
    Effect.gen(function*() {
      const fake = yield* FakeWebex.make({ events: org(3), faults: { rateLimitEvery: 1, retryAfterSeconds: 1 } })
      // Rate limits spend no attempts; the elapsed-time bound ends them (waits capped at 30 ms).
      const error = yield* withApi(fake, { retry: { ...FAST, maxElapsed: "200 millis" } }, listFailure)
      assert.strictEqual(error._tag, "RateLimited")
      if (error._tag !== "RateLimited") return
      assert.strictEqual(error.status, 429)
      assert.strictEqual(error.retryAfterMillis, 1000)
      yield* assertTracked(fake, error)
      assert.isAtLeast((yield* fake.requests).length, 2)
    }))

  it.scopedLive("RateLimited: 423 Locked, retries disabled", () =>
    Effect.gen(function*() {
      const fake = yield* FakeWebex.make({ events: org(3), faults: { lockedEvery: 1, retryAfter: "garbage" } })
      const error = yield* withApi(fake, { retry: false }, listFailure)
      assert.strictEqual(error._tag, "RateLimited")
      if (error._tag !== "RateLimited") return
      assert.strictEqual(error.status, 423)
      assert.isUndefined(error.retryAfterMillis, "garbage is no wait")
      yield* assertTracked(fake, error)
      assert.strictEqual((yield* fake.requests).length, 1)
    }))

  it.scopedLive("ServerError: 5xx on every attempt", () =>
    Effect.gen(function*() {
      const fake = yield* FakeWebex.make({ events: org(3), faults: { serverErrorEvery: 1 } })
      const error = yield* withApi(fake, { retry: { ...FAST, maxAttempts: 3 } }, listFailure)
      assert.strictEqual(error._tag, "ServerError")
      assert.strictEqual(error.status, 503, "the third of 500, 502, 503")
      yield* assertTracked(fake, error)
      assert.deepStrictEqual((yield* fake.requests).map((r) => r.status), [500, 502, 503])
    }))

  it.scopedLive("TransportError: the server drops every connection", () =>
    Effect.gen(function*() {
      const fake = yield* FakeWebex.make({ events: org(3), faults: { dropConnectionEvery: 1 } })
      const error = yield* withApi(fake, { retry: { ...FAST, maxAttempts: 2 } }, listFailure)
      assert.strictEqual(error._tag, "TransportError")
      assert.isUndefined(error.status)
      assert.isUndefined(error.trackingId, "no response, no tracking id")
      assert.deepStrictEqual((yield* fake.requests).map((r) => r.status), [0, 0])
    }))

  it.scopedLive("TransportError: nothing listens on the base URL's port", () =>
    Effect.gen(function*() {
      const fake = yield* FakeWebex.make({ events: org(3) })
      const port = yield* closedPort
      const baseUrl = `http://127.0.0.1:${port}/v1`
      const [listError, getError] = yield* withApi(fake, { baseUrl, retry: { ...FAST, maxAttempts: 2 } }, (api) =>
        Effect.all([listFailure(api), Effect.flip(api.get("some-id"))]))
      assert.strictEqual(listError._tag, "TransportError")
      assert.strictEqual(listError.url, `${baseUrl}/events`)
      assert.strictEqual(getError._tag, "TransportError")
      assert.strictEqual(getError.url, `${baseUrl}/events/some-id`)
    }))

  it.scopedLive("TransportError: a server slower than requestTimeout", () =>
    Effect.gen(function*() {
      const fake = yield* FakeWebex.make({ events: org(3), faults: { latencyMs: 400 } })
      const started = Date.now()
      const error = yield* withApi(fake, { requestTimeout: "20 millis", retry: { ...FAST, maxAttempts: 2 } }, listFailure)
      assert.strictEqual(error._tag, "TransportError")
      assert.include(error.message, "timed out after 20ms")
      assert.isBelow(Date.now() - started, 300, "gave up before the server answered")
    }))

  it.scopedLive("ResponseDecodeError: a junk item in a page, and a stored event that does not decode", () =>
    Effect.gen(function*() {
      const fake = yield* FakeWebex.make({
        events: [...org(3), `{"id":"broken-1","resource":"messages","created":"not a date","data":{}}`],
        faults: { malformedItemEvery: 1 }
      })
      const listError = yield* withApi(fake, { retry: FAST }, (api) => listFailure(api, { resource: "messages" }))
      assert.strictEqual(listError._tag, "ResponseDecodeError")
      yield* assertTracked(fake, listError)

      const getError = yield* withApi(fake, { retry: FAST }, (api) => Effect.flip(api.get("broken-1")))
      assert.strictEqual(getError._tag, "ResponseDecodeError")
      assert.include(getError.message, "broken-1")
      yield* assertTracked(fake, getError)
    }))

  it.scopedLive("UnsafeNextLink: even to another port of the same host", () =>
    Effect.gen(function*() {
      const fake = yield* FakeWebex.make({ events: org(3), faults: { nextLinkOrigin: "http://127.0.0.1:1" } })
      const error = yield* withApi(fake, { retry: FAST }, (api) => listFailure(api, { max: 1 }))
      assert.strictEqual(error._tag, "UnsafeNextLink")
      yield* assertTracked(fake, error)
    }))
})

// ---------------------------------------------------------------------------------------------
// Page-size shrinking, late events, get
// ---------------------------------------------------------------------------------------------

describe("504 shrinking end to end", () => {
  it.scopedLive("pages above the server's limit time out until max has halved down to it", () =>
    Effect.gen(function*() {
      const fake = yield* FakeWebex.make({ events: org(250), faults: { gatewayTimeoutAboveMax: 100 } })
      const events = yield* withApi(fake, { retry: FAST }, (api) => Stream.runCollect(api.list({ max: 400 })))
      assert.deepStrictEqual(sortedIds(events), sortedIds(yield* storedEvents(fake)))
      const requests = yield* fake.requests
      assert.deepStrictEqual(
        requests.map((r) => [r.query.max, r.status]),
        [["400", 504], ["400", 504], ["200", 504], ["100", 200], ["100", 200], ["100", 200]]
      )
    }))

  it.scopedLive("without a max, shrinking starts from the service's default page size of 100", () =>
    Effect.gen(function*() {
      const fake = yield* FakeWebex.make({ events: org(120), faults: { gatewayTimeoutAboveMax: 50 } })
      const events = yield* withApi(fake, { retry: FAST }, (api) => Stream.runCollect(api.list()))
      assert.strictEqual(Chunk.size(events), 120)
      const requests = yield* fake.requests
      assert.deepStrictEqual(
        requests.map((r) => [r.query.max, r.status]),
        [[undefined, 504], [undefined, 504], ["50", 200], ["50", 200], ["50", 200]]
      )
    }))
})

describe("late-arriving events", () => {
  const late = (n: number) =>
    Array.from({ length: n }, (_, i) =>
      JSON.stringify({
        id: `late-${i}`,
        resource: "messages",
        type: "created",
        created: new Date(Date.parse(TO) + 60_000 * (i + 1)).toISOString(),
        data: {}
      }))

  /** Lists in pages of 10, adding events after the first and the second page. */
  const listWhileAdding = (fake: Fake) =>
    withApi(fake, { retry: FAST }, (api) =>
      api.listPages({ max: 10 }).pipe(
        Stream.zipWithIndex,
        Stream.tap(([, i]) => (i < 2 ? fake.addEvents(late(3).map((raw) => raw.replace(/late-/, `late-${i}-`))) : Effect.void)),
        Stream.flatMap(([page]) => Stream.fromIterable(page.events)),
        Stream.runCollect,
        Effect.map(Chunk.toReadonlyArray)
      ))

  it.scopedLive("newest first: later pages shift, an item repeats, none is lost, the stream ends", () =>
    Effect.gen(function*() {
      const original = org(35)
      const fake = yield* FakeWebex.make({ events: original, order: "newest-first" })
      const originalIds = (yield* storedEvents(fake)).map((e) => e.id)
      const listed = yield* listWhileAdding(fake)
      const ids = listed.map((e) => e.id)
      for (const id of originalIds) assert.include(ids, id)
      assert.isAbove(ids.length, new Set(ids).size, "the shifted pages served an item twice")
      assert.strictEqual((yield* fake.events).length, 35 + 6)
    }))

  it.scopedLive("oldest first: the late events come in the last pages", () =>
    Effect.gen(function*() {
      const fake = yield* FakeWebex.make({ events: org(35), order: "oldest-first" })
      const listed = yield* listWhileAdding(fake)
      assert.deepStrictEqual(sortedIds(listed), sortedIds(yield* storedEvents(fake)))
    }))
})

describe("get", () => {
  it.scopedLive("returns the decoded event, whichever form its created has", () =>
    Effect.gen(function*() {
      const fake = yield* FakeWebex.make({ events: [...org(20), ...oddEvents] })
      const [plus, fraction, someSeed] = yield* withApi(fake, { retry: FAST }, (api) =>
        Effect.all([api.get("odd-1"), api.get("odd-2"), api.get(JSON.parse(org(20)[7]!).id)]))

      assert.strictEqual(plus.id, "odd-1")
      assert.isTrue(DateTime.Equivalence(plus.created, DateTime.unsafeMake("2024-03-05T10:00:00.000Z")))
      assert.isTrue(Option.isNone(Event.appIdOf(plus)), `appId "null" reads as none`)
      assert.isTrue(Event.isResource(plus, "messages"))
      if (Event.isResource(plus, "messages")) assert.strictEqual(plus.data.text, "café \"quoted\" \n line")

      assert.isTrue(DateTime.Equivalence(fraction.created, DateTime.unsafeMake("2024-03-06T11:00:00.500Z")))
      assert.strictEqual(fraction.type, "deleted")

      const expected = JSON.parse(org(20)[7]!)
      assert.strictEqual(someSeed.id, expected.id)
      assert.strictEqual(someSeed.resource, expected.resource)
      assert.strictEqual(DateTime.toEpochMillis(someSeed.created), Date.parse(expected.created))

      const requests = yield* fake.requests
      assert.deepStrictEqual(requests.map((r) => [r.path.startsWith("/v1/events/"), r.status, r.authorized]), [
        [true, 200, true],
        [true, 200, true],
        [true, 200, true]
      ])
    }))

  it.scopedLive("escapes the id into the path: ids with reserved characters are found", () =>
    Effect.gen(function*() {
      const ids = ["a+b", "a/b", "é", "a b", "a%20b", "a?b", "a#b", "Y2lz=="]
      const fake = yield* FakeWebex.make({
        events: ids.map((id) => ({ id, resource: "messages", type: "created", created: "2024-01-01T00:00:00Z", data: {} }))
      })
      const found = yield* withApi(fake, { retry: false }, (api) => Effect.forEach(ids, (id) => api.get(id)))
      assert.deepStrictEqual(found.map((e) => e.id), ids)
    }))

  it.scopedLive("keeps fields no schema knows, at the top level and in data", () =>
    Effect.gen(function*() {
      const fake = yield* FakeWebex.make({ events: oddEvents })
      const event = yield* withApi(fake, {}, (api) => api.get("odd-3"))
      assert.deepStrictEqual(event["futureField"], { x: null })
      assert.deepStrictEqual(event.data["nested"], [{ a: [] }, {}])
    }))
})

// ---------------------------------------------------------------------------------------------
// Token refresh, end to end
// ---------------------------------------------------------------------------------------------

describe("token refresh over HTTP", () => {
  const oauth = { clientId: "client-1", clientSecret: "secret-1", refreshToken: "refresh-0" }
  const refresh = (rotated: Array<string>) => ({
    clientId: oauth.clientId,
    clientSecret: Redacted.make(oauth.clientSecret),
    refreshToken: Redacted.make(oauth.refreshToken),
    onRotate: (tokens: AccessToken.Rotated) => Effect.sync(() => void rotated.push(Redacted.value(tokens.refreshToken)))
  })

  it.scopedLive("an expired token is refreshed once, the refused request repeated, the new refresh token handed over", () =>
    Effect.gen(function*() {
      const fake = yield* FakeWebex.make({ events: org(30), oauth })
      const rotated: Array<string> = []
      const [before, after] = yield* withApi(fake, { refresh: refresh(rotated), retry: FAST }, (api) =>
        Effect.gen(function*() {
          const before = yield* Stream.runCollect(api.list({ max: 10 }))
          yield* fake.expireAccessTokens
          const after = yield* Stream.runCollect(api.list({ max: 10 }))
          return [before, after] as const
        }))
      assert.strictEqual(Chunk.size(before), 30)
      assert.deepStrictEqual(sortedIds(after), sortedIds(before))
      assert.deepStrictEqual(rotated, ["fake-refresh-1"])
      assert.strictEqual((yield* fake.oauth).refreshes, 1)

      const requests = yield* fake.requests
      assert.deepStrictEqual(requests.map((r) => `${r.method} ${r.path} ${r.status}`), [
        ...Array(3).fill("GET /v1/events 200"),
        "GET /v1/events 401",
        "POST /v1/access_token 200",
        ...Array(3).fill("GET /v1/events 200")
      ])
      const grant = requests.find((r) => r.path === "/v1/access_token")
      assert.strictEqual(grant?.grantType, "refresh_token")
      assert.isFalse(grant?.hasAuthorization, "the grant carries no bearer token")
    }))

  it.scopedLive("TokenRefreshFailed: the refresh token was revoked (invalid_grant)", () =>
    Effect.gen(function*() {
      const fake = yield* FakeWebex.make({ events: org(3), oauth })
      yield* fake.expireAccessTokens
      yield* fake.revokeRefreshToken
      const rotated: Array<string> = []
      // The token has expired and the refresh after the 401 is refused.
      const error = yield* withApi(fake, { refresh: refresh(rotated), retry: FAST }, listFailure)
      assert.strictEqual(error._tag, "TokenRefreshFailed")
      if (error._tag !== "TokenRefreshFailed") return
      assert.strictEqual(error.error, "invalid_grant")
      assert.strictEqual(error.status, 400)
      assert.notInclude(JSON.stringify(error), oauth.clientSecret)
      assert.notInclude(JSON.stringify(error), oauth.refreshToken)
      yield* assertTracked(fake, error)
      assert.deepStrictEqual(rotated, [])
      assert.deepStrictEqual(
        (yield* fake.requests).map((r) => `${r.path} ${r.status}`),
        ["/v1/events 401", "/v1/access_token 400"],
        "a refused grant is not retried"
      )
    }))

  it.scopedLive("without an access token, the first request waits for a refresh", () =>
    Effect.gen(function*() {
      const fake = yield* FakeWebex.make({ events: org(5), oauth })
      const rotated: Array<string> = []
      const events = yield* Effect.flatMap(EventsApi.EventsApi, (api) => Stream.runCollect(api.list())).pipe(
        Effect.provide(
          EventsApi.layer({ baseUrl: fake.baseUrl, refresh: refresh(rotated) }).pipe(Layer.provide(NodeHttpClient.layerUndici))
        ),
        Effect.provide(Logger.remove(Logger.defaultLogger))
      )
      assert.strictEqual(Chunk.size(events), 5)
      assert.deepStrictEqual(rotated, ["fake-refresh-1"])
      const requests = yield* fake.requests
      assert.deepStrictEqual(requests.map((r) => `${r.path} ${r.status} ${r.authorized}`), [
        "/v1/access_token 200 false",
        "/v1/events 200 true"
      ])
    }))
})
