/**
 * The fake Webex server and the org generator, exercised over real loopback HTTP: what they promise
 * is what the client and archiver tests build on, so each behaviour is pinned here.
 */
import * as HttpClient from "@effect/platform/HttpClient"
import type * as HttpClientError from "@effect/platform/HttpClientError"
import * as HttpClientRequest from "@effect/platform/HttpClientRequest"
import * as NodeHttpClient from "@effect/platform-node/NodeHttpClient"
import { assert, describe, it, layer } from "@effect/vitest"
import * as Effect from "effect/Effect"
import * as Either from "effect/Either"
import * as Layer from "effect/Layer"
import * as Redacted from "effect/Redacted"
import * as Schema from "effect/Schema"
import * as Stream from "effect/Stream"
import type * as Scope from "effect/Scope"
import * as Event from "../src/Event.js"
import { FakeWebex, SeedOrg } from "../src/testing.js"

// ---------------------------------------------------------------------------------------------
// Helpers
// ---------------------------------------------------------------------------------------------

const TOKEN = "fake-webex-token"
const FROM = "2024-03-01T00:00:00.000Z"
const TO = "2024-03-08T00:00:00.000Z"
const org = (count: number, seed = 7) => SeedOrg.generateOrg({ count, seed, from: FROM, to: TO })

interface Answer {
  readonly status: number
  readonly headers: Readonly<Record<string, string>>
  readonly body: string
}

/** One GET over real HTTP; the bearer token unless `token: null`. */
const get = (
  url: string,
  token: string | null = TOKEN
): Effect.Effect<Answer, HttpClientError.HttpClientError, HttpClient.HttpClient> =>
  Effect.gen(function*() {
    const client = yield* HttpClient.HttpClient
    const response = yield* client.get(url, token === null ? {} : { headers: { authorization: `Bearer ${token}` } })
    return { status: response.status, headers: response.headers, body: yield* response.text }
  })

const nextLinkOf = (answer: Answer): string | undefined => /^<([^>]+)>;\s*rel="next"$/.exec(answer.headers.link ?? "")?.[1]

const itemsOf = (answer: Answer): ReadonlyArray<any> => JSON.parse(answer.body).items

/** Follows next links as given, collecting every item, until a page has none. */
const walk = (url: string, repair: (link: string) => string = (link) => link) =>
  Effect.gen(function*() {
    const items: Array<any> = []
    let pages = 0
    let next: string | undefined = url
    while (next !== undefined) {
      const answer: Answer = yield* get(next)
      assert.strictEqual(answer.status, 200, answer.body)
      items.push(...itemsOf(answer))
      pages++
      const link = nextLinkOf(answer)
      next = link === undefined ? undefined : repair(link)
    }
    return { items, pages }
  })

const idsOf = (raws: ReadonlyArray<string>) => raws.map((raw) => JSON.parse(raw).id as string)

/** A test that talks HTTP: real undici transport, server scoped to the test. */
const withHttp = <A, E>(self: Effect.Effect<A, E, HttpClient.HttpClient | Scope.Scope>) =>
  Effect.provide(self, NodeHttpClient.layerUndici)

const event = (id: string, created: string, fields: Record<string, unknown> = {}) =>
  JSON.stringify({ id, resource: "messages", type: "created", actorId: "actor-a", created, data: {}, ...fields })

const assertWebexError = (answer: Answer, status: number) => {
  assert.strictEqual(answer.status, status, answer.body)
  const body = JSON.parse(answer.body)
  assert.isString(body.message)
  assert.isString(body.errors[0].description)
  assert.match(answer.headers.trackingid ?? "", /^ROUTER_/)
  assert.strictEqual(body.trackingId, answer.headers.trackingid)
  return body as { message: string; errors: ReadonlyArray<{ description: string }>; trackingId: string }
}

// ---------------------------------------------------------------------------------------------
// Listing and pagination
// ---------------------------------------------------------------------------------------------

describe("FakeWebex listing", () => {
  for (const order of ["newest-first", "oldest-first", "shuffled"] as const) {
    it.scoped(`pagination (${order}) serves every event exactly once`, () =>
      withHttp(Effect.gen(function*() {
        const events = org(250)
        const webex = yield* FakeWebex.make({ events, order, seed: 3 })
        const { items, pages } = yield* walk(`${webex.baseUrl}/events?max=37`)
        assert.strictEqual(pages, Math.ceil(250 / 37))
        assert.strictEqual(items.length, 250)
        assert.deepStrictEqual(new Set(items.map((e) => e.id)), new Set(idsOf(events)))

        const times = items.map((e) => Date.parse(e.created))
        const ascending = times.every((t, i) => i === 0 || times[i - 1]! <= t)
        const descending = times.every((t, i) => i === 0 || times[i - 1]! >= t)
        if (order === "newest-first") assert.isTrue(descending)
        if (order === "oldest-first") assert.isTrue(ascending)
        if (order === "shuffled") assert.isFalse(ascending || descending)
      })))
  }

  it.scoped("the shuffled order is stable for a seed and changes with it", () =>
    withHttp(Effect.gen(function*() {
      const events = org(60)
      const listing = (seed: number) =>
        Effect.flatMap(FakeWebex.make({ events, order: "shuffled", seed }), (webex) => walk(`${webex.baseUrl}/events?max=7`))
      const a = yield* listing(11)
      const b = yield* listing(11)
      const c = yield* listing(12)
      assert.deepStrictEqual(a.items.map((e) => e.id), b.items.map((e) => e.id))
      assert.notDeepEqual(a.items.map((e) => e.id), c.items.map((e) => e.id))
    })))

  it.scoped("next links are absolute, carry the filters and max, and hide only an offset in the cursor", () =>
    withHttp(Effect.gen(function*() {
      const webex = yield* FakeWebex.make({ events: org(100) })
      const first = yield* get(`${webex.baseUrl}/events?resource=messages&from=${FROM}&max=5`)
      const link = new URL(nextLinkOf(first)!)
      assert.strictEqual(`${link.origin}/v1`, webex.baseUrl)
      assert.strictEqual(link.pathname, "/v1/events")
      assert.strictEqual(link.searchParams.get("resource"), "messages")
      assert.strictEqual(link.searchParams.get("from"), FROM)
      assert.strictEqual(link.searchParams.get("max"), "5")
      const cursor = JSON.parse(Buffer.from(link.searchParams.get("cursor")!, "base64url").toString())
      assert.deepStrictEqual(cursor, { offset: 5 })

      const everything = yield* get(`${webex.baseUrl}/events?max=1000`)
      assert.strictEqual(itemsOf(everything).length, 100)
      assert.isUndefined(everything.headers.link)
    })))

  it.scoped("max defaults to 100", () =>
    withHttp(Effect.gen(function*() {
      const webex = yield* FakeWebex.make({ events: org(150) })
      const answer = yield* get(`${webex.baseUrl}/events`)
      assert.strictEqual(itemsOf(answer).length, 100)
      assert.isDefined(nextLinkOf(answer))
    })))

  it.scoped("filters by resource, type and actorId", () =>
    withHttp(Effect.gen(function*() {
      const events = org(400).map((raw) => JSON.parse(raw))
      const webex = yield* FakeWebex.make({ events })
      const count = (pred: (e: any) => boolean) => events.filter(pred).length

      const meetings = yield* walk(`${webex.baseUrl}/events?resource=meetings&max=10`)
      assert.isAbove(meetings.items.length, 0)
      assert.strictEqual(meetings.items.length, count((e) => e.resource === "meetings"))
      assert.isTrue(meetings.items.every((e) => e.resource === "meetings"))

      const deleted = yield* walk(`${webex.baseUrl}/events?resource=messages&type=deleted`)
      assert.isAbove(deleted.items.length, 0)
      assert.strictEqual(deleted.items.length, count((e) => e.resource === "messages" && e.type === "deleted"))

      const actorId = events[0].actorId as string
      const byActor = yield* walk(`${webex.baseUrl}/events?actorId=${encodeURIComponent(actorId)}`)
      assert.strictEqual(byActor.items.length, count((e) => e.actorId === actorId))
      assert.isTrue(byActor.items.every((e) => e.actorId === actorId))
    })))

  it.scoped("from is inclusive, to exclusive, both compared as instants whatever the text form", () =>
    withHttp(Effect.gen(function*() {
      const webex = yield* FakeWebex.make({
        events: [
          event("before", "2023-12-31T23:59:59.999Z"),
          event("at-from", "2024-01-01T00:00:00.000Z"),
          event("at-from-offset-form", "2024-01-01T00:00:00+00:00"),
          event("inside-plus-one", "2024-01-01T01:30:00+01:00"), // 00:30Z: text order would drop it
          event("last-ms", "2024-01-01T00:59:59.999Z"),
          event("at-to", "2024-01-01T01:00:00.000Z"),
          event("after-minus-one", "2024-01-01T00:30:00-01:00") // 01:30Z: text order would keep it
        ]
      })
      const answer = yield* get(`${webex.baseUrl}/events?from=2024-01-01T00:00:00.000Z&to=2024-01-01T01:00:00.000Z`)
      assert.deepStrictEqual(
        itemsOf(answer).map((e) => e.id).sort(),
        ["at-from", "at-from-offset-form", "inside-plus-one", "last-ms"]
      )
    })))

  it.scoped("serves stored items byte for byte, by concatenation", () =>
    withHttp(Effect.gen(function*() {
      // Re-serialising would change each of these: spacing, key order, escapes, 1.0, a big integer.
      const raws = [
        `{ "id" : "a",  "created":"2024-01-01T00:00:02.000Z", "resource":"messages", "data":{"n": 1.0} }`,
        `{"created":"2024-01-01T00:00:01+00:00","id":"b","data":{"text":"caf\\u00e9 \\ud83d\\ude00","big":12345678901234567890}}`
      ]
      const webex = yield* FakeWebex.make({ events: raws })
      const answer = yield* get(`${webex.baseUrl}/events`)
      assert.strictEqual(answer.body, `{"items":[${raws[0]},${raws[1]}]}`)
      assert.strictEqual(answer.headers["content-type"], "application/json")

      const one = yield* get(`${webex.baseUrl}/events/b`)
      assert.strictEqual(one.status, 200)
      assert.strictEqual(one.body, raws[1])
      assert.match(one.headers.trackingid ?? "", /^ROUTER_/)
      assert.deepStrictEqual(yield* webex.events, raws)
    })))

  it.scoped("malformed stored items are served first when unfiltered, never when filtered", () =>
    withHttp(Effect.gen(function*() {
      const good = org(10)
      const junk = [`{"id": 7, "created": "2024-03-02T00:00:00Z"}`, `{"id":"no-created"}`, `[1,2]`]
      const webex = yield* FakeWebex.make({ events: [...good, ...junk] })

      const first = yield* get(`${webex.baseUrl}/events?max=4`)
      assert.strictEqual(first.body.slice(0, `{"items":[${junk.join(",")},`.length), `{"items":[${junk.join(",")},`)
      const all = yield* walk(`${webex.baseUrl}/events?max=4`)
      assert.strictEqual(all.items.length, 13)

      const filtered = yield* walk(`${webex.baseUrl}/events?from=${FROM}&max=4`)
      assert.deepStrictEqual(new Set(filtered.items.map((e) => e.id)), new Set(idsOf(good)))
    })))

  it.scoped("addEvents: later requests see late events, and an offset cursor can repeat an item", () =>
    withHttp(Effect.gen(function*() {
      const webex = yield* FakeWebex.make({
        events: ["1", "2", "3", "4", "5"].map((n) => event(`e${n}`, `2024-01-01T00:00:0${n}.000Z`))
      })
      const first = yield* get(`${webex.baseUrl}/events?max=2`)
      assert.deepStrictEqual(itemsOf(first).map((e) => e.id), ["e5", "e4"])

      const late = { id: "e6", resource: "messages", type: "created", created: "2024-01-01T00:00:06.000Z", data: {} }
      yield* webex.addEvents([late])
      // The next page is computed on the current list: the new newest event shifts e4 onto it again.
      const second = yield* get(nextLinkOf(first)!)
      assert.deepStrictEqual(itemsOf(second).map((e) => e.id), ["e4", "e3"])

      const all = yield* walk(`${webex.baseUrl}/events`)
      assert.deepStrictEqual(all.items.map((e) => e.id), ["e6", "e5", "e4", "e3", "e2", "e1"])
      assert.strictEqual((yield* get(`${webex.baseUrl}/events/e6`)).body, JSON.stringify(late))
      assert.include(yield* webex.events, JSON.stringify(late))
    })))
})

// ---------------------------------------------------------------------------------------------
// Errors
// ---------------------------------------------------------------------------------------------

describe("FakeWebex errors", () => {
  it.scoped("401 without or with a wrong token, with a Webex body and tracking id", () =>
    withHttp(Effect.gen(function*() {
      const webex = yield* FakeWebex.make({ events: org(5), token: "right" })
      assert.strictEqual(Redacted.value(webex.token), "right")
      assertWebexError(yield* get(`${webex.baseUrl}/events`, null), 401)
      assertWebexError(yield* get(`${webex.baseUrl}/events`, "wrong"), 401)
      assertWebexError(yield* get(`${webex.baseUrl}/events/x`, "wrong"), 401)
      assert.strictEqual((yield* get(`${webex.baseUrl}/events`, "right")).status, 200)

      const log = yield* webex.requests
      assert.deepStrictEqual(log.map((r) => [r.hasAuthorization, r.authorized, r.status]), [
        [false, false, 401],
        [true, false, 401],
        [true, false, 401],
        [true, true, 200]
      ])
    })))

  it.scoped("403 when forbidden, even with the right token", () =>
    withHttp(Effect.gen(function*() {
      const webex = yield* FakeWebex.make({ events: org(5), faults: { forbidden: true } })
      assertWebexError(yield* get(`${webex.baseUrl}/events`), 403)
      yield* webex.setFaults({})
      assert.strictEqual((yield* get(`${webex.baseUrl}/events`)).status, 200)
    })))

  it.scoped("400 on a max outside 1..1000 or not an integer, including max=null", () =>
    withHttp(Effect.gen(function*() {
      const webex = yield* FakeWebex.make({ events: org(5) })
      for (const max of ["0", "1001", "abc", "null", "1.5", "-1", ""]) {
        const body = assertWebexError(yield* get(`${webex.baseUrl}/events?max=${max}`), 400)
        assert.include(body.errors[0]!.description, "max")
      }
      for (const max of ["1", "1000"]) {
        assert.strictEqual((yield* get(`${webex.baseUrl}/events?max=${max}`)).status, 200)
      }
    })))

  it.scoped("400 on a from/to that is no date, or a to in the future", () =>
    withHttp(Effect.gen(function*() {
      const webex = yield* FakeWebex.make({ events: org(5) })
      assertWebexError(yield* get(`${webex.baseUrl}/events?from=yesterday`), 400)
      assertWebexError(yield* get(`${webex.baseUrl}/events?to=2024-13-45`), 400)
      const future = new Date(Date.now() + 3_600_000).toISOString()
      const body = assertWebexError(yield* get(`${webex.baseUrl}/events?to=${future}`), 400)
      assert.include(body.errors[0]!.description, "future")
      const past = new Date(Date.now() - 60_000).toISOString()
      assert.strictEqual((yield* get(`${webex.baseUrl}/events?to=${past}`)).status, 200)
    })))

  it.scoped("404 for an unknown event or path; every response has its own tracking id", () =>
    withHttp(Effect.gen(function*() {
      const webex = yield* FakeWebex.make({ events: org(5) })
      assertWebexError(yield* get(`${webex.baseUrl}/events/nope`), 404)
      assertWebexError(yield* get(`${webex.baseUrl}/people`), 404)
      const ok = yield* get(`${webex.baseUrl}/events`)
      const ids = (yield* webex.requests).map((r) => r.trackingId)
      assert.strictEqual(new Set(ids).size, 3)
      assert.strictEqual(ok.headers.trackingid, ids[2])
    })))

  it.scoped("runs on the live clock inside a TestClock test", () =>
    withHttp(Effect.gen(function*() {
      // it.scoped's TestClock says 1970: a server on it would call every `to` "future" and never
      // finish its latency sleep.
      const webex = yield* FakeWebex.make({ events: org(5), faults: { latencyMs: 20 } })
      const past = new Date(Date.now() - 60_000).toISOString()
      assert.strictEqual((yield* get(`${webex.baseUrl}/events?to=${past}`)).status, 200)
    })))

  it.scoped("stops serving when its scope closes", () =>
    withHttp(Effect.gen(function*() {
      const baseUrl = yield* Effect.scoped(Effect.map(FakeWebex.make(), (webex) => webex.baseUrl))
      const result = yield* Effect.either(get(`${baseUrl}/events`))
      assert.isTrue(Either.isLeft(result))
    })))
})

// ---------------------------------------------------------------------------------------------
// Faults
// ---------------------------------------------------------------------------------------------

/** Status of each of `n` list requests; 0 for a dropped connection. */
const statuses = (url: string, n: number) =>
  Effect.forEach(Array.from({ length: n }), () =>
    Effect.map(Effect.either(get(url)), (r) => (Either.isRight(r) ? r.right.status : 0)))

describe("FakeWebex faults", () => {
  it.scoped("rateLimitEvery: every Nth request answers 429 with Retry-After in seconds", () =>
    withHttp(Effect.gen(function*() {
      const webex = yield* FakeWebex.make({ events: org(5), faults: { rateLimitEvery: 3 } })
      assert.deepStrictEqual(yield* statuses(`${webex.baseUrl}/events`, 7), [200, 200, 429, 200, 200, 429, 200])
      yield* webex.setFaults({ rateLimitEvery: 1, retryAfterSeconds: 7 })
      const answer = yield* get(`${webex.baseUrl}/events`)
      assertWebexError(answer, 429)
      assert.strictEqual(answer.headers["retry-after"], "7")
      const log = yield* webex.requests
      assert.deepStrictEqual(log.map((r) => r.fault), [undefined, undefined, "rateLimit", undefined, undefined, "rateLimit", undefined, "rateLimit"])
    })))

  it.scoped("retryAfter: seconds, HTTP-date, missing, garbage", () =>
    withHttp(Effect.gen(function*() {
      const webex = yield* FakeWebex.make({ events: org(5) })
      const retryAfter = (form: FakeWebex.Faults["retryAfter"]) =>
        Effect.gen(function*() {
          yield* webex.setFaults({ rateLimitEvery: 1, retryAfter: form, retryAfterSeconds: 30 })
          const answer = yield* get(`${webex.baseUrl}/events`)
          assert.strictEqual(answer.status, 429)
          return answer.headers["retry-after"]
        })
      assert.strictEqual(yield* retryAfter("seconds"), "30")
      const date = (yield* retryAfter("http-date"))!
      assert.match(date, /GMT$/)
      const wait = Date.parse(date) - Date.now()
      assert.isTrue(wait > 28_000 && wait <= 31_000, `wait ${wait}`)
      assert.isUndefined(yield* retryAfter("missing"))
      assert.strictEqual(yield* retryAfter("garbage"), "rand(30),add(30)")
    })))

  it.scoped("lockedEvery: every Nth request answers 423 with Retry-After", () =>
    withHttp(Effect.gen(function*() {
      const webex = yield* FakeWebex.make({ events: org(5), faults: { lockedEvery: 2, retryAfterSeconds: 2 } })
      assert.deepStrictEqual(yield* statuses(`${webex.baseUrl}/events`, 4), [200, 423, 200, 423])
      yield* webex.setFaults({ lockedEvery: 1, retryAfterSeconds: 2 })
      const answer = yield* get(`${webex.baseUrl}/events/whatever`)
      assertWebexError(answer, 423)
      assert.strictEqual(answer.headers["retry-after"], "2")
    })))

  it.scoped("serverErrorEvery: cycles 500, 502, 503, 504, the 504 advising a smaller max", () =>
    withHttp(Effect.gen(function*() {
      const webex = yield* FakeWebex.make({ events: org(5), faults: { serverErrorEvery: 2 } })
      assert.deepStrictEqual(
        yield* statuses(`${webex.baseUrl}/events`, 10),
        [200, 500, 200, 502, 200, 503, 200, 504, 200, 500]
      )
      yield* webex.setFaults({ serverErrorEvery: 1 })
      yield* statuses(`${webex.baseUrl}/events`, 3)
      const body = assertWebexError(yield* get(`${webex.baseUrl}/events`), 504)
      assert.include(body.message, "try reducing max")
    })))

  it.scoped("gatewayTimeoutAboveMax: 504 for pages larger than the limit, the default 100 included", () =>
    withHttp(Effect.gen(function*() {
      const webex = yield* FakeWebex.make({ events: org(5), faults: { gatewayTimeoutAboveMax: 50 } })
      assertWebexError(yield* get(`${webex.baseUrl}/events?max=51`), 504)
      assertWebexError(yield* get(`${webex.baseUrl}/events`), 504)
      assert.strictEqual((yield* get(`${webex.baseUrl}/events?max=50`)).status, 200)
      assert.deepStrictEqual((yield* webex.requests).map((r) => r.fault), ["gatewayTimeout", "gatewayTimeout", undefined])
    })))

  it.scoped("dropConnectionEvery: the Nth request gets no response at all", () =>
    withHttp(Effect.gen(function*() {
      const webex = yield* FakeWebex.make({ events: org(5), faults: { dropConnectionEvery: 3 } })
      const results = yield* Effect.forEach([1, 2, 3, 4], () => Effect.either(get(`${webex.baseUrl}/events`)))
      assert.deepStrictEqual(results.map(Either.isRight), [true, true, false, true])
      const failure = results[2]!
      assert.isTrue(Either.isLeft(failure) && failure.left._tag === "RequestError")
      const log = yield* webex.requests
      assert.deepStrictEqual(log.map((r) => [r.status, r.fault]), [[200, undefined], [200, undefined], [0, "drop"], [200, undefined]])
    })))

  it.scopedLive("latencyMs delays every answer", () =>
    withHttp(Effect.gen(function*() {
      const webex = yield* FakeWebex.make({ events: org(5), faults: { latencyMs: 150 } })
      const started = Date.now()
      assert.strictEqual((yield* get(`${webex.baseUrl}/events`)).status, 200)
      assert.isAtLeast(Date.now() - started, 145)
    })))

  it.scoped("faults are checked drop, 429, 423, 5xx, each on its own counter, before authentication", () =>
    withHttp(Effect.gen(function*() {
      const webex = yield* FakeWebex.make({ events: org(5), faults: { dropConnectionEvery: 2, rateLimitEvery: 2 } })
      // Dropped requests do not advance the 429 counter.
      assert.deepStrictEqual(yield* statuses(`${webex.baseUrl}/events`, 7), [200, 0, 429, 0, 200, 0, 429])

      yield* webex.setFaults({ rateLimitEvery: 1, lockedEvery: 1, serverErrorEvery: 1 })
      assert.deepStrictEqual(yield* statuses(`${webex.baseUrl}/events`, 1), [429])
      yield* webex.setFaults({ lockedEvery: 1, serverErrorEvery: 1 })
      assert.strictEqual((yield* get(`${webex.baseUrl}/events`, null)).status, 423)
    })))

  it.scoped("only /v1/events* requests count", () =>
    withHttp(Effect.gen(function*() {
      const webex = yield* FakeWebex.make({ events: org(5), faults: { rateLimitEvery: 2 } })
      assert.strictEqual((yield* get(`${webex.baseUrl}/people`)).status, 404)
      assert.strictEqual((yield* get(`${webex.baseUrl}/events`)).status, 200)
      assert.strictEqual((yield* get(`${webex.baseUrl}/events/nope`)).status, 429)
    })))

  it.scoped("setFaults replaces the configuration and restarts the counters", () =>
    withHttp(Effect.gen(function*() {
      const webex = yield* FakeWebex.make({ events: org(5), faults: { rateLimitEvery: 2 } })
      assert.strictEqual((yield* get(`${webex.baseUrl}/events`)).status, 200)
      yield* webex.setFaults({ rateLimitEvery: 2 })
      // Had the counter carried on, this request would have been the second one and got a 429.
      assert.deepStrictEqual(yield* statuses(`${webex.baseUrl}/events`, 2), [200, 429])
      yield* webex.setFaults({ lockedEvery: 2 })
      // Replaced, not merged: rateLimitEvery is off now.
      assert.deepStrictEqual(yield* statuses(`${webex.baseUrl}/events`, 4), [200, 423, 200, 423])
    })))

  it.scoped("unauthorized: 401 even for the right token", () =>
    withHttp(Effect.gen(function*() {
      const webex = yield* FakeWebex.make({ events: org(5), faults: { unauthorized: true } })
      assertWebexError(yield* get(`${webex.baseUrl}/events`), 401)
      const [request] = yield* webex.requests
      assert.isTrue(request!.authorized)
      assert.strictEqual(request!.fault, "unauthorized")
    })))

  it.scoped("nextLinkMaxNull: the link carries max=null, which the server refuses until repaired", () =>
    withHttp(Effect.gen(function*() {
      const webex = yield* FakeWebex.make({ events: org(30), faults: { nextLinkMaxNull: true } })
      const first = yield* get(`${webex.baseUrl}/events?max=10`)
      const link = nextLinkOf(first)!
      assert.strictEqual(new URL(link).searchParams.get("max"), "null")
      assertWebexError(yield* get(link), 400)

      const repaired = yield* walk(`${webex.baseUrl}/events?max=10`, (l) => {
        const url = new URL(l)
        url.searchParams.set("max", "10")
        return url.href
      })
      assert.strictEqual(repaired.items.length, 30)
    })))

  it.scoped("nextLinkDropsFilters: the link loses the filters and serves unfiltered results until repaired", () =>
    withHttp(Effect.gen(function*() {
      const events = org(300)
      const webex = yield* FakeWebex.make({ events, faults: { nextLinkDropsFilters: true } })
      const url = `${webex.baseUrl}/events?resource=messages&from=${FROM}&max=10`
      const first = yield* get(url)
      const link = new URL(nextLinkOf(first)!)
      for (const name of ["resource", "from", "to", "type", "actorId"]) assert.isFalse(link.searchParams.has(name))
      const broken = yield* get(link.href)
      assert.isTrue(itemsOf(broken).some((e) => e.resource !== "messages"))

      const repaired = yield* walk(url, (l) => {
        const next = new URL(l)
        next.searchParams.set("resource", "messages")
        next.searchParams.set("from", FROM)
        return next.href
      })
      const messages = events.map((raw) => JSON.parse(raw)).filter((e) => e.resource === "messages")
      assert.deepStrictEqual(new Set(repaired.items.map((e) => e.id)), new Set(messages.map((e) => e.id)))
      assert.strictEqual(repaired.items.length, messages.length)
    })))

  it.scoped("nextLinkOrigin: next links point at a foreign origin", () =>
    withHttp(Effect.gen(function*() {
      const webex = yield* FakeWebex.make({ events: org(30), faults: { nextLinkOrigin: "http://evil.example:1" } })
      const first = yield* get(`${webex.baseUrl}/events?max=10`)
      const link = nextLinkOf(first)!
      assert.isTrue(link.startsWith("http://evil.example:1/v1/events?"), link)
    })))

  it.scoped("malformedItemEvery: every Nth page gets a junk item", () =>
    withHttp(Effect.gen(function*() {
      const webex = yield* FakeWebex.make({ events: org(30), faults: { malformedItemEvery: 2 } })
      const { items } = yield* walk(`${webex.baseUrl}/events?max=10`)
      // Pages of 10, 10 + junk, 10.
      assert.strictEqual(items.length, 31)
      assert.deepStrictEqual(items[20], { id: 42, created: "yesterday" })
      assert.deepStrictEqual((yield* webex.requests).map((r) => r.fault), [undefined, "malformedItem", undefined])
    })))

  it.scoped("records every request", () =>
    withHttp(Effect.gen(function*() {
      const webex = yield* FakeWebex.make({ events: org(5) })
      const before = Date.now()
      yield* get(`${webex.baseUrl}/events?resource=messages&max=2`)
      const [request] = yield* webex.requests
      assert.deepStrictEqual(
        { ...request!, at: undefined, trackingId: undefined },
        {
          method: "GET",
          url: `${webex.baseUrl}/events?resource=messages&max=2`,
          path: "/v1/events",
          query: { resource: "messages", max: "2" },
          authorized: true,
          hasAuthorization: true,
          status: 200,
          fault: undefined,
          trackingId: undefined,
          at: undefined
        }
      )
      assert.isTrue(request!.at >= before - 5 && request!.at <= Date.now())
    })))
})

// ---------------------------------------------------------------------------------------------
// OAuth refresh-token grant
// ---------------------------------------------------------------------------------------------

const CLIENT = { clientId: "client-id-1", clientSecret: "client-secret-XYZ", refreshToken: "refresh-initial-ABC" }

/** The form a client sends; a field set to undefined is left out. */
const refreshForm = (refreshToken: string, overrides: Record<string, string | undefined> = {}) => {
  const form: Record<string, string | undefined> = {
    grant_type: "refresh_token",
    client_id: CLIENT.clientId,
    client_secret: CLIENT.clientSecret,
    refresh_token: refreshToken,
    ...overrides
  }
  return Object.fromEntries(Object.entries(form).filter(([, v]) => v !== undefined)) as Record<string, string>
}

/** `POST /v1/access_token`, form-encoded unless a raw body is given; never with a bearer token. */
const postToken = (
  baseUrl: string,
  body: Record<string, string> | { readonly raw: string; readonly contentType: string },
  query = ""
): Effect.Effect<Answer, HttpClientError.HttpClientError, HttpClient.HttpClient> =>
  Effect.gen(function*() {
    const client = yield* HttpClient.HttpClient
    const base = HttpClientRequest.post(`${baseUrl}/access_token${query}`)
    const request = "raw" in body
      ? HttpClientRequest.bodyText(base, body.raw, body.contentType)
      : HttpClientRequest.bodyUrlParams(base, body)
    const response = yield* client.execute(request)
    return { status: response.status, headers: response.headers, body: yield* response.text }
  })

const refresh = (baseUrl: string, refreshToken: string, overrides: Record<string, string | undefined> = {}) =>
  postToken(baseUrl, refreshForm(refreshToken, overrides))

interface Grant {
  readonly access_token: string
  readonly expires_in: number
  readonly refresh_token: string
  readonly refresh_token_expires_in: number
  readonly token_type: string
}

const assertGrant = (answer: Answer): Grant => {
  assert.strictEqual(answer.status, 200, answer.body)
  assert.strictEqual(answer.headers["content-type"], "application/json")
  assert.strictEqual(answer.headers["cache-control"], "no-store")
  assert.match(answer.headers.trackingid ?? "", /^ROUTER_/)
  return JSON.parse(answer.body)
}

const assertOAuthError = (answer: Answer, status: number, error: string) => {
  assert.strictEqual(answer.status, status, answer.body)
  const body = JSON.parse(answer.body)
  assert.deepStrictEqual(Object.keys(body).sort(), ["error", "error_description", "trackingId"])
  assert.strictEqual(body.error, error)
  assert.isString(body.error_description)
  assert.isNotEmpty(body.error_description)
  assert.match(answer.headers.trackingid ?? "", /^ROUTER_/)
  assert.strictEqual(body.trackingId, answer.headers.trackingid)
}

describe("FakeWebex oauth", () => {
  it.scoped("a refresh returns the documented shape and an access token the events endpoint accepts", () =>
    withHttp(Effect.gen(function*() {
      const webex = yield* FakeWebex.make({ events: [event("e1", "2024-01-01T00:00:00.000Z")], oauth: CLIENT })
      // Not accepted before it is issued: the server does not take any `fake-access-*` on trust.
      assertWebexError(yield* get(`${webex.baseUrl}/events`, "fake-access-1"), 401)

      const grant = assertGrant(yield* refresh(webex.baseUrl, CLIENT.refreshToken))
      assert.deepStrictEqual(Object.keys(grant).sort(), [
        "access_token",
        "expires_in",
        "refresh_token",
        "refresh_token_expires_in",
        "token_type"
      ])
      assert.strictEqual(grant.expires_in, 1209599)
      assert.strictEqual(grant.refresh_token_expires_in, 7775999)
      assert.strictEqual(grant.token_type, "Bearer")
      assert.isString(grant.access_token)
      assert.notStrictEqual(grant.access_token, TOKEN)
      assert.isString(grant.refresh_token)
      assert.notStrictEqual(grant.refresh_token, CLIENT.refreshToken)

      assert.strictEqual((yield* get(`${webex.baseUrl}/events`, grant.access_token)).status, 200)
      assert.strictEqual((yield* get(`${webex.baseUrl}/events/e1`, grant.access_token)).status, 200)
      // Issuing a new token does not end the old one early, as live.
      assert.strictEqual((yield* get(`${webex.baseUrl}/events`, TOKEN)).status, 200)
      assert.deepStrictEqual(yield* webex.oauth, {
        refreshes: 1,
        currentRefreshToken: grant.refresh_token,
        validAccessTokens: [TOKEN, grant.access_token]
      })
      const tokenRequest = (yield* webex.requests).find((r) => r.path === "/v1/access_token")!
      assert.isFalse(tokenRequest.hasAuthorization)
      assert.strictEqual(tokenRequest.status, 200)
    })))

  it.scoped("the refresh token rotates: a used one gets invalid_grant, the new one works", () =>
    withHttp(Effect.gen(function*() {
      const webex = yield* FakeWebex.make({ events: org(3), oauth: CLIENT })
      const first = assertGrant(yield* refresh(webex.baseUrl, CLIENT.refreshToken))
      assertOAuthError(yield* refresh(webex.baseUrl, CLIENT.refreshToken), 400, "invalid_grant")

      const second = assertGrant(yield* refresh(webex.baseUrl, first.refresh_token))
      assert.notStrictEqual(second.access_token, first.access_token)
      assert.notStrictEqual(second.refresh_token, first.refresh_token)
      assertOAuthError(yield* refresh(webex.baseUrl, first.refresh_token), 400, "invalid_grant")
      assertOAuthError(yield* refresh(webex.baseUrl, "never-issued"), 400, "invalid_grant")

      assert.strictEqual((yield* get(`${webex.baseUrl}/events`, second.access_token)).status, 200)
      const state = yield* webex.oauth
      assert.strictEqual(state.refreshes, 2)
      assert.strictEqual(state.currentRefreshToken, second.refresh_token)
    })))

  it.scoped("bad client credentials get 401 invalid_client and leave the refresh token usable", () =>
    withHttp(Effect.gen(function*() {
      const webex = yield* FakeWebex.make({ events: org(3), oauth: CLIENT })
      assertOAuthError(yield* refresh(webex.baseUrl, CLIENT.refreshToken, { client_secret: "wrong" }), 401, "invalid_client")
      assertOAuthError(yield* refresh(webex.baseUrl, CLIENT.refreshToken, { client_id: "other-app" }), 401, "invalid_client")
      assert.strictEqual((yield* webex.oauth).refreshes, 0)
      assertGrant(yield* refresh(webex.baseUrl, CLIENT.refreshToken))
    })))

  it.scoped("a wrong grant type, a missing field or a non-form body gets 400 invalid_request", () =>
    withHttp(Effect.gen(function*() {
      const webex = yield* FakeWebex.make({ events: org(3), oauth: CLIENT })
      const r = CLIENT.refreshToken
      for (const overrides of [
        { grant_type: "authorization_code" },
        { grant_type: "client_credentials" },
        { grant_type: undefined },
        { client_id: undefined },
        { client_secret: undefined },
        { refresh_token: undefined },
        { refresh_token: "" }
      ]) {
        assertOAuthError(yield* refresh(webex.baseUrl, r, overrides), 400, "invalid_request")
      }
      const asJson = { raw: JSON.stringify(refreshForm(r)), contentType: "application/json" }
      assertOAuthError(yield* postToken(webex.baseUrl, asJson), 400, "invalid_request")
      const repeated = { raw: `${new URLSearchParams(refreshForm(r))}&refresh_token=x`, contentType: "application/x-www-form-urlencoded" }
      assertOAuthError(yield* postToken(webex.baseUrl, repeated), 400, "invalid_request")

      // None of those consumed the refresh token.
      assert.strictEqual((yield* webex.oauth).refreshes, 0)
      assertGrant(yield* refresh(webex.baseUrl, r))
    })))

  it.scoped("without oauth configured the token endpoint answers 400 invalid_client", () =>
    withHttp(Effect.gen(function*() {
      const webex = yield* FakeWebex.make({ events: org(3) })
      assertOAuthError(yield* refresh(webex.baseUrl, CLIENT.refreshToken), 400, "invalid_client")
      assert.deepStrictEqual(yield* webex.oauth, { refreshes: 0, currentRefreshToken: undefined, validAccessTokens: [TOKEN] })
    })))

  it.scoped("expireAccessTokens: every known access token gets a Webex 401, a newly refreshed one works", () =>
    withHttp(Effect.gen(function*() {
      const webex = yield* FakeWebex.make({ events: [event("e1", "2024-01-01T00:00:00.000Z")], oauth: CLIENT })
      const first = assertGrant(yield* refresh(webex.baseUrl, CLIENT.refreshToken))
      assert.strictEqual((yield* get(`${webex.baseUrl}/events`, TOKEN)).status, 200)
      assert.strictEqual((yield* get(`${webex.baseUrl}/events`, first.access_token)).status, 200)

      yield* webex.expireAccessTokens
      assertWebexError(yield* get(`${webex.baseUrl}/events`, TOKEN), 401)
      assertWebexError(yield* get(`${webex.baseUrl}/events`, first.access_token), 401)
      assertWebexError(yield* get(`${webex.baseUrl}/events/e1`, first.access_token), 401)
      assert.deepStrictEqual((yield* webex.oauth).validAccessTokens, [])

      const second = assertGrant(yield* refresh(webex.baseUrl, first.refresh_token))
      assert.strictEqual((yield* get(`${webex.baseUrl}/events`, second.access_token)).status, 200)
      assertWebexError(yield* get(`${webex.baseUrl}/events`, first.access_token), 401)
      assert.deepStrictEqual((yield* webex.oauth).validAccessTokens, [second.access_token])
      assert.deepStrictEqual(
        (yield* webex.requests).filter((r) => r.path === "/v1/events").map((r) => r.authorized),
        [true, true, false, false, true, false]
      )
    })))

  it.scoped("revokeRefreshToken: the next refresh gets invalid_grant, access tokens keep working", () =>
    withHttp(Effect.gen(function*() {
      const webex = yield* FakeWebex.make({ events: org(3), oauth: CLIENT })
      const grant = assertGrant(yield* refresh(webex.baseUrl, CLIENT.refreshToken))
      yield* webex.revokeRefreshToken
      assertOAuthError(yield* refresh(webex.baseUrl, grant.refresh_token), 400, "invalid_grant")
      assert.deepStrictEqual(yield* webex.oauth, {
        refreshes: 1,
        currentRefreshToken: undefined,
        validAccessTokens: [TOKEN, grant.access_token]
      })
      assert.strictEqual((yield* get(`${webex.baseUrl}/events`, grant.access_token)).status, 200)
    })))

  it.scopedLive("an issued access token is refused once its expires_in has passed in real time", () =>
    withHttp(Effect.gen(function*() {
      const webex = yield* FakeWebex.make({ events: org(3), oauth: { ...CLIENT, accessTokenTtlSeconds: 1 } })
      const grant = assertGrant(yield* refresh(webex.baseUrl, CLIENT.refreshToken))
      assert.strictEqual(grant.expires_in, 1)
      assert.strictEqual((yield* get(`${webex.baseUrl}/events`, grant.access_token)).status, 200)

      yield* Effect.sleep("1200 millis")
      assertWebexError(yield* get(`${webex.baseUrl}/events`, grant.access_token), 401)
      // The initial token has no lifetime of its own; a fresh refresh gets a working token again.
      assert.strictEqual((yield* get(`${webex.baseUrl}/events`, TOKEN)).status, 200)
      assert.deepStrictEqual((yield* webex.oauth).validAccessTokens, [TOKEN])
      const next = assertGrant(yield* refresh(webex.baseUrl, grant.refresh_token))
      assert.strictEqual((yield* get(`${webex.baseUrl}/events`, next.access_token)).status, 200)
    })))

  it.scoped("token requests are logged without secrets, need no bearer and do not advance fault counters", () =>
    withHttp(Effect.gen(function*() {
      const webex = yield* FakeWebex.make({ events: org(3), oauth: CLIENT, faults: { rateLimitEvery: 2 } })
      assert.strictEqual((yield* get(`${webex.baseUrl}/events`)).status, 200)
      // A careless client also puts its secrets in the query string: that must not be logged either.
      const leakyQuery = `?client_secret=${CLIENT.clientSecret}&refresh_token=${CLIENT.refreshToken}`
      const grant = assertGrant(yield* postToken(webex.baseUrl, refreshForm(CLIENT.refreshToken), leakyQuery))
      assertOAuthError(yield* refresh(webex.baseUrl, grant.refresh_token, { client_secret: "wrong-secret-QQQ" }), 401, "invalid_client")
      assertOAuthError(yield* refresh(webex.baseUrl, grant.refresh_token, { grant_type: "password" }), 400, "invalid_request")
      // The second /v1/events* request: had the token requests counted, one of them would have been it.
      assert.strictEqual((yield* get(`${webex.baseUrl}/events`)).status, 429)

      const log = yield* webex.requests
      const origin = new URL(webex.baseUrl).origin
      assert.deepStrictEqual(
        log.filter((r) => r.path === "/v1/access_token").map((r) => ({
          method: r.method,
          url: r.url,
          query: r.query,
          status: r.status,
          grantType: r.grantType,
          fault: r.fault
        })),
        [200, 401, 400].map((status, i) => ({
          method: "POST",
          url: `${origin}/v1/access_token`,
          query: {},
          status,
          grantType: i === 2 ? "password" : "refresh_token",
          fault: undefined
        }))
      )
      const text = JSON.stringify(log)
      for (const secret of [CLIENT.clientSecret, CLIENT.refreshToken, "wrong-secret-QQQ", grant.refresh_token, grant.access_token]) {
        assert.notInclude(text, secret)
      }
    })))
})

// ---------------------------------------------------------------------------------------------
// SeedOrg
// ---------------------------------------------------------------------------------------------

describe("SeedOrg", () => {
  it("is deterministic for a seed and varies with it", () => {
    assert.deepStrictEqual(org(300, 5), org(300, 5))
    assert.notDeepEqual(org(300, 5), org(300, 6))
    const orgId = "T1JHLTEyMw"
    const own = SeedOrg.generateOrg({ count: 50, from: FROM, to: TO, orgId }).map((raw) => JSON.parse(raw))
    assert.isTrue(own.some((e) => e.orgId === orgId))
    assert.isTrue(own.every((e) => e.orgId === undefined || e.orgId === orgId))
  })

  it("produces count unique, single-line events inside [from, to), in both created forms", () => {
    const raws = org(1000)
    assert.strictEqual(raws.length, 1000)
    assert.isTrue(raws.every((raw) => !raw.includes("\n")))
    const events = raws.map((raw) => JSON.parse(raw))
    assert.strictEqual(new Set(events.map((e) => e.id)).size, 1000)
    assert.isTrue(events.every((e) => /^[A-Za-z0-9+/]+$/.test(e.id) && atob(e.id).startsWith("ciscospark://us/EVENT/")))
    const times = events.map((e) => Date.parse(e.created))
    assert.isTrue(times.every((t) => t >= Date.parse(FROM) && t < Date.parse(TO)))
    assert.isTrue(events.some((e) => /\.\d{3}Z$/.test(e.created)))
    assert.isTrue(events.some((e) => /\+00:00$/.test(e.created)))
    // Events sharing the exact same created millisecond.
    const perInstant = new Map<number, number>()
    for (const t of times) perInstant.set(t, (perInstant.get(t) ?? 0) + 1)
    assert.isAtLeast([...perInstant.values()].filter((n) => n > 1).length, 3)
  })

  it("covers every resource kind, even in a small org, and every event decodes", () => {
    const small = SeedOrg.generateOrg({ count: 17, from: FROM, to: TO }).map((raw) => JSON.parse(raw))
    assert.deepStrictEqual(new Set(small.map((e) => e.resource)), new Set(SeedOrg.RESOURCES))
    for (const resource of Object.keys(Event.DataSchemas)) assert.include(SeedOrg.RESOURCES, resource)
    assert.include(SeedOrg.RESOURCES, "webinarPolls")

    const raws = org(1000)
    for (const raw of raws) Schema.decodeUnknownSync(Event.Event)(JSON.parse(raw))
  })

  it("has the live service's quirks", () => {
    const events = org(1000).map((raw) => JSON.parse(raw))
    const of = (resource: string, type?: string) =>
      events.filter((e) => e.resource === resource && (type === undefined || e.type === type))
    assert.isTrue(events.some((e) => e.appId === "null"))
    assert.isTrue(events.some((e) => e.appId !== undefined && e.appId !== "null"))

    const deleted = of("messages", "deleted")
    assert.isTrue(deleted.length > 0 && deleted.every((e) => e.data.text === undefined))
    assert.isTrue(deleted.some((e) => e.orgId === undefined && e.appId === undefined))
    assert.isTrue(of("messages", "created").every((e) => typeof e.data.text === "string"))

    const meetings = of("meetings", "ended")
    assert.isTrue(meetings.length > 0)
    assert.isTrue(meetings.every((e) => ["yes", "no"].includes(e.data.recordingEnabled)))
    assert.isTrue(meetings.some((e) => e.data.recordingEnabled === "yes"))
    assert.isTrue(meetings.some((e) => e.data.recordingEnabled === "no"))

    const calls = of("call_records")
    assert.isTrue(calls.length > 0)
    assert.isTrue(calls.every((e) => typeof e.data.corelationId === "string" && /^\d+$/.test(e.data.callDurationSeconds)))
    assert.isTrue(calls.every((e) => ["true", "false"].includes(e.data.isCallAnswered)))

    for (const [resource, type] of [["memberships", "created"], ["attachmentActions", "created"], ["tabs", "created"], ["rooms", "updated"], ["meetingMessages", "created"], ["files", "created"]] as const) {
      assert.isAbove(of(resource, type).length, 0, `${resource} ${type}`)
    }
    assert.isTrue(of("rooms").every((e) => typeof e.data.classificationId === "string"))
    assert.isTrue(of("files").every((e) => typeof e.data.fileContentUrl === "string"))
    const polls = of("webinarPolls")
    assert.isTrue(polls.length > 0 && polls.every((e) => e.schemaVersion === 2))
  })

  it("refuses an empty window", () => {
    assert.throws(() => SeedOrg.generateOrg({ count: 1, from: TO, to: FROM }), RangeError)
  })
})

// ---------------------------------------------------------------------------------------------
// Hostile modes (issue 10)
// ---------------------------------------------------------------------------------------------

/** One GET whose body is kept as bytes. */
const getBytes = (url: string, token: string | null = TOKEN) =>
  Effect.gen(function*() {
    const client = yield* HttpClient.HttpClient
    const response = yield* client.get(url, token === null ? {} : { headers: { authorization: `Bearer ${token}` } })
    return { status: response.status, headers: response.headers, body: new Uint8Array(yield* response.arrayBuffer) }
  })

const strictUtf8 = new TextDecoder("utf-8", { fatal: true })

describe("FakeWebex hostile modes", () => {
  it.scoped("endlessBody: a 200 that never ends, and the server lets go when the client hangs up", () =>
    withHttp(Effect.gen(function*() {
      const webex = yield* FakeWebex.make({ events: org(20), faults: { endlessBody: true } })
      const client = yield* HttpClient.HttpClient
      const response = yield* client.get(`${webex.baseUrl}/events?max=10`, {
        headers: { authorization: `Bearer ${TOKEN}` }
      })
      assert.strictEqual(response.status, 200)
      const limit = 16 * 1024 * 1024
      let head = ""
      // Far more than the 20 stored events could fill, and still no end: the reader stops, not the body.
      const read = yield* response.stream.pipe(
        Stream.tap((chunk) => Effect.sync(() => {
          if (head.length < 64) head += new TextDecoder().decode(chunk.subarray(0, 64))
        })),
        Stream.mapAccum(0, (total, chunk) => [total + chunk.byteLength, total + chunk.byteLength] as const),
        Stream.takeUntil((total) => total >= limit),
        Stream.runLast
      )
      assert.isAtLeast(read._tag === "Some" ? read.value : 0, limit)
      assert.isTrue(head.startsWith(`{"items":[{`), head)
      // The scope of that response is gone with the stream; the server answers normally again.
      yield* webex.setFaults({})
      assert.strictEqual(itemsOf(yield* get(`${webex.baseUrl}/events?max=5`)).length, 5)
      assert.deepStrictEqual((yield* webex.requests).map((r) => r.fault), ["endlessBody", undefined])
    })))

  it.scoped("giantPageItems: one complete page of that many items whatever max says, no next link", () =>
    withHttp(Effect.gen(function*() {
      const events = org(50)
      const webex = yield* FakeWebex.make({ events, faults: { giantPageItems: 20_000 } })
      const answer = yield* get(`${webex.baseUrl}/events?max=10`)
      assert.strictEqual(answer.status, 200)
      const items = itemsOf(answer)
      assert.strictEqual(items.length, 20_000)
      assert.isUndefined(answer.headers.link)
      // The stored events, byte for byte, over and over in listing order.
      assert.isTrue(events.some((raw) => answer.body.startsWith(`{"items":[${raw},`)))
      assert.deepStrictEqual(new Set(items.map((e) => e.id)), new Set(idsOf(events)))
      assert.isTrue(items.every((e, i) => e.id === items[i % 50].id))
      assert.strictEqual((yield* webex.requests)[0]!.fault, "giantPage")
    })))

  it.scoped("onwardEmptyPages: empty pages whose next link always changes, for as long as one follows", () =>
    withHttp(Effect.gen(function*() {
      const webex = yield* FakeWebex.make({ events: org(20), faults: { onwardEmptyPages: true } })
      const seen = new Set<string>()
      let url = `${webex.baseUrl}/events?max=50&from=${FROM}`
      for (let i = 0; i < 40; i++) {
        const answer = yield* get(url)
        assert.strictEqual(answer.status, 200)
        assert.strictEqual(answer.body, `{"items":[]}`)
        const next = nextLinkOf(answer)!
        assert.isDefined(next)
        assert.isFalse(seen.has(next), `repeated ${next}`)
        assert.strictEqual(new URL(next).searchParams.get("from"), FROM)
        seen.add(next)
        url = next
      }
      assert.isTrue((yield* webex.requests).every((r) => r.fault === "onwardEmptyPage"))
    })))

  it.scoped("malformedPageEvery: every Nth list request answers 200 with a body cut off inside an item", () =>
    withHttp(Effect.gen(function*() {
      const webex = yield* FakeWebex.make({ events: org(20), faults: { malformedPageEvery: 2 } })
      const first = yield* get(`${webex.baseUrl}/events?max=5`)
      assert.strictEqual(itemsOf(first).length, 5)
      const second = yield* get(`${webex.baseUrl}/events?max=5`)
      assert.strictEqual(second.status, 200)
      assert.throws(() => JSON.parse(second.body))
      assert.isTrue(second.body.startsWith(`{"items":[{`), second.body)
      assert.strictEqual(itemsOf(yield* get(`${webex.baseUrl}/events?max=5`)).length, 5)
      assert.deepStrictEqual((yield* webex.requests).map((r) => r.fault), [undefined, "malformedPage", undefined])
    })))

  it.scoped("invalidUtf8Every: an extra event with bytes that are not UTF-8, dated inside the page's window", () =>
    withHttp(Effect.gen(function*() {
      const events = org(30)
      const webex = yield* FakeWebex.make({ events, order: "oldest-first", faults: { invalidUtf8Every: 2 } })
      const first = yield* getBytes(`${webex.baseUrl}/events?max=10`)
      assert.doesNotThrow(() => strictUtf8.decode(first.body))
      const second = yield* getBytes(`${webex.baseUrl}/events?max=10&cursor=${Buffer.from(`{"offset":10}`).toString("base64url")}`)
      assert.throws(() => strictUtf8.decode(second.body))
      // Still JSON to a lenient reader, with 11 items; the extra one carries the bad bytes verbatim.
      const items = JSON.parse(new TextDecoder().decode(second.body)).items
      assert.strictEqual(items.length, 11)
      const extra = items[10]
      assert.match(extra.id, /^invalid-utf8-\d+$/)
      assert.strictEqual(Date.parse(extra.created), Date.parse(items[0].created))
      assert.isTrue(Buffer.from(second.body).includes(Buffer.from([0xc3, 0x28, 0x20, 0xc0, 0xaf, 0x20, 0xff, 0xfe])))
      assert.deepStrictEqual((yield* webex.requests).map((r) => r.fault), [undefined, "invalidUtf8"])
    })))

  it.scoped("events given as bytes are served exactly as given, invalid UTF-8 included", () =>
    withHttp(Effect.gen(function*() {
      const head = Buffer.from(`{"id":"raw-1","resource":"messages","type":"created","created":"2024-01-01T00:00:00.000Z","data":{"text":"`)
      const raw = Buffer.concat([head, Buffer.from([0xff, 0x80, 0xe2, 0x82]), Buffer.from(`"}}`)])
      const webex = yield* FakeWebex.make({ events: [raw] })
      const page = yield* getBytes(`${webex.baseUrl}/events?from=2024-01-01T00:00:00.000Z&to=2024-01-02T00:00:00.000Z`)
      assert.deepStrictEqual(Buffer.from(page.body), Buffer.concat([Buffer.from(`{"items":[`), raw, Buffer.from(`]}`)]))
      const one = yield* getBytes(`${webex.baseUrl}/events/raw-1`)
      assert.deepStrictEqual(Buffer.from(one.body), raw)
    })))

  it.scoped("echoSecrets: 401, 403, 400 and 5xx bodies repeat the bearer token; token errors the refresh token and secret", () =>
    withHttp(Effect.gen(function*() {
      const webex = yield* FakeWebex.make({ events: org(5), oauth: CLIENT, faults: { echoSecrets: true } })
      const wrong = "leaky-wrong-token-123"
      assert.include(assertWebexError(yield* get(`${webex.baseUrl}/events`, wrong), 401).message, wrong)
      assert.include(assertWebexError(yield* get(`${webex.baseUrl}/events?max=0`), 400).errors[0]!.description, TOKEN)
      yield* webex.setFaults({ echoSecrets: true, forbidden: true })
      const forbidden = assertWebexError(yield* get(`${webex.baseUrl}/events`), 403)
      assert.include(forbidden.message, `Bearer ${TOKEN}`)
      yield* webex.setFaults({ echoSecrets: true, serverErrorEvery: 1 })
      assert.include(assertWebexError(yield* get(`${webex.baseUrl}/events`), 500).errors[0]!.description, TOKEN)

      const refused = yield* refresh(webex.baseUrl, CLIENT.refreshToken, { client_secret: "echoed-secret-777" })
      assertOAuthError(refused, 401, "invalid_client")
      assert.include(refused.body, "echoed-secret-777")
      assert.include(refused.body, CLIENT.refreshToken)
      // Off by default: the same mistakes echo nothing.
      yield* webex.setFaults({})
      assert.notInclude((yield* get(`${webex.baseUrl}/events`, wrong)).body, wrong)
      assert.notInclude((yield* refresh(webex.baseUrl, CLIENT.refreshToken, { client_secret: "echoed-secret-777" })).body, "echoed")
    })))

  it.scoped("hostileErrorText: control characters, forged log lines and 200 KiB in error texts", () =>
    withHttp(Effect.gen(function*() {
      const webex = yield* FakeWebex.make({ events: org(5), oauth: CLIENT, faults: { hostileErrorText: true, rateLimitEvery: 1 } })
      const answer = yield* get(`${webex.baseUrl}/events`)
      const body = assertWebexError(answer, 429)
      for (const text of [body.message, body.errors[0]!.description]) {
        assert.include(text, "\u001b[31m")
        assert.include(text, "\u0007")
        assert.include(text, "\u0000")
        assert.match(text, /\ntimestamp=\S+ level=ERROR /)
        assert.isAbove(text.length, 200 * 1024)
      }
      const refused = yield* refresh(webex.baseUrl, "never-issued")
      assertOAuthError(refused, 400, "invalid_grant")
      const description: string = JSON.parse(refused.body).error_description
      assert.include(description, "\u001b[31m")
      assert.match(description, /\ntimestamp=\S+ level=ERROR /)
    })))

  it.scoped("movedDayEvery: every Nth event is listed again, same id and bytes, one day later", () =>
    withHttp(Effect.gen(function*() {
      const events = [1, 2, 3, 4].map((d) =>
        event(`e${d}`, d === 3 ? `2024-01-0${d}T10:00:00+00:00` : `2024-01-0${d}T10:00:00.000Z`, { data: { created: `2024-01-0${d}T10:00:00.000Z` } })
      )
      const webex = yield* FakeWebex.make({ events, order: "oldest-first", faults: { movedDayEvery: 2 } })
      const all = yield* get(`${webex.baseUrl}/events?max=100`)
      assert.deepStrictEqual(itemsOf(all).map((e) => [e.id, e.created]), [
        ["e1", "2024-01-01T10:00:00.000Z"],
        ["e2", "2024-01-02T10:00:00.000Z"],
        ["e3", "2024-01-03T10:00:00+00:00"],
        ["e2", "2024-01-03T10:00:00.000Z"],
        ["e4", "2024-01-04T10:00:00.000Z"],
        ["e4", "2024-01-05T10:00:00.000Z"]
      ])
      // Only the top-level `created` moved: the nested one and every other byte are as stored.
      const copy = all.body.slice(all.body.lastIndexOf(`{"id":"e4"`), -2)
      assert.strictEqual(copy, events[3]!.replace(`"created":"2024-01-04T10:00:00.000Z","data"`, `"created":"2024-01-05T10:00:00.000Z","data"`))
      // The copy is found in its new day's window, next to that day's own events.
      const dayFive = yield* get(`${webex.baseUrl}/events?from=2024-01-05T00:00:00.000Z&to=2024-01-06T00:00:00.000Z`)
      assert.deepStrictEqual(itemsOf(dayFive).map((e) => e.id), ["e4"])
      assert.strictEqual((yield* get(`${webex.baseUrl}/events/e4`)).body, events[3])
      assert.deepStrictEqual(yield* webex.events, events)

      yield* webex.setFaults({})
      assert.strictEqual(itemsOf(yield* get(`${webex.baseUrl}/events?max=100`)).length, 4)
    })))
})

describe("FakeWebex at scale", () => {
  it.scoped("stores a generated org as it is generated and serves it, every event once, by concatenation", () =>
    withHttp(Effect.gen(function*() {
      const options = { count: 20_000, seed: 9, from: FROM, to: TO }
      const webex = yield* FakeWebex.make({ events: SeedOrg.iterateOrg(options), order: "oldest-first" })
      const { items, pages } = yield* walk(`${webex.baseUrl}/events?max=1000`)
      assert.strictEqual(pages, 20)
      // Sorted: `+00:00` times are whole seconds, so the listing's order by instant is not generation order.
      assert.deepStrictEqual(
        items.map((e) => JSON.stringify(e)).sort(),
        SeedOrg.generateOrg(options).map((raw) => JSON.stringify(JSON.parse(raw))).sort()
      )
    })))

  it("iterateOrg yields what generateOrg returns, and checks its options at once", () => {
    const options = { count: 500, seed: 4, from: FROM, to: TO }
    assert.deepStrictEqual([...SeedOrg.iterateOrg(options)], [...SeedOrg.generateOrg(options)])
    assert.throws(() => SeedOrg.iterateOrg({ count: -1, from: FROM, to: TO }), RangeError)
  })
})

// ---------------------------------------------------------------------------------------------
// As a layer (kept after the top-level tests: `layer` mutates the shared `it`)
// ---------------------------------------------------------------------------------------------

layer(Layer.merge(FakeWebex.layer({ events: org(20), order: "oldest-first" }), NodeHttpClient.layerUndici))(
  "FakeWebex.layer",
  (it) => {
    it.effect("serves the configured org through the FakeWebex tag", () =>
      Effect.gen(function*() {
        const webex = yield* FakeWebex.FakeWebex
        assert.match(webex.baseUrl, /^http:\/\/127\.0\.0\.1:\d+\/v1$/)
        const { items } = yield* walk(`${webex.baseUrl}/events?max=6`)
        assert.deepStrictEqual(items.map((e) => e.id), idsOf(org(20))) // generated in ascending order
      }))
  }
)
