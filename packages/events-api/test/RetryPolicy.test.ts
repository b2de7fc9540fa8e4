import { describe, expect, it } from "@effect/vitest"
import * as Duration from "effect/Duration"
import * as Effect from "effect/Effect"
import * as Exit from "effect/Exit"
import * as FastCheck from "effect/FastCheck"
import * as Fiber from "effect/Fiber"
import * as Option from "effect/Option"
import * as Stream from "effect/Stream"
import * as TestClock from "effect/TestClock"
import type * as EventsApi from "../src/EventsApi.js"
import * as Errors from "../src/EventsApiError.js"
import { retryAfterDelay } from "../src/internal/retry.js"
import { parseRetryAfter } from "../src/internal/retryAfter.js"
import * as RetryPolicy from "../src/RetryPolicy.js"
import type { Answer, Stub } from "./support/StubHttp.js"
import { BASE_URL, event, makeApi, page, stub, webexError } from "./support/StubHttp.js"

const NOW = Date.UTC(2024, 0, 1, 0, 0, 0)
const millis = (d: Option.Option<Duration.Duration>) => Option.map(d, Duration.toMillis)

describe("parseRetryAfter", () => {
  it("reads delta-seconds, whole and decimal", () => {
    expect(millis(parseRetryAfter("30", NOW))).toEqual(Option.some(30_000))
    expect(millis(parseRetryAfter(" 7 ", NOW))).toEqual(Option.some(7_000))
    expect(millis(parseRetryAfter("1.5", NOW))).toEqual(Option.some(1_500))
    expect(millis(parseRetryAfter("0", NOW))).toEqual(Option.some(0))
  })

  it("reads an HTTP-date relative to now, a past one meaning now", () => {
    expect(millis(parseRetryAfter("Mon, 01 Jan 2024 00:01:00 GMT", NOW))).toEqual(Option.some(60_000))
    expect(millis(parseRetryAfter(new Date(NOW + 3_600_000).toUTCString(), NOW))).toEqual(Option.some(3_600_000))
    expect(millis(parseRetryAfter("Sun, 31 Dec 2023 23:00:00 GMT", NOW))).toEqual(Option.some(0))
  })

  it("is none for missing, garbage and negative values, so backoff applies", () => {
    for (const value of [undefined, null, "", "rand(30),add(30)", "-5", "-1.5", "soon", "30s", "1e3", "Infinity", "NaN", "12:00:00", "2024-01-01T00:01:00Z"]) {
      expect(parseRetryAfter(value, NOW), String(value)).toEqual(Option.none())
    }
  })
})

describe("backoff", () => {
  const policy = RetryPolicy.make({ baseDelay: "500 millis", maxDelay: "30 seconds" })
  const at = (retry: number, random: number) => Duration.toMillis(RetryPolicy.backoffDelay(policy, retry, random))

  it("doubles with every retry", () => {
    expect([1, 2, 3, 4].map((r) => at(r, 0))).toEqual([250, 500, 1_000, 2_000])
    expect([1, 2, 3, 4].map((r) => at(r, 0.999_999))).toEqual([500, 1_000, 2_000, 4_000])
  })

  it("is capped at maxDelay", () => {
    expect(at(7, 0.999_999)).toBe(30_000) // 500 * 2^6 = 32 s, capped
    expect(at(1_000, 0.999_999)).toBe(30_000)
    expect(at(1_000, 0)).toBe(15_000)
  })

  it.prop(
    "stays between half the capped delay and the capped delay",
    { retry: FastCheck.integer({ min: 1, max: 200 }), random: FastCheck.double({ min: 0, max: 1, maxExcluded: true, noNaN: true }) },
    ({ random, retry }) => {
      const capped = Math.min(500 * 2 ** (retry - 1), 30_000)
      const delay = at(retry, random)
      expect(delay).toBeGreaterThanOrEqual(Math.floor(capped / 2))
      expect(delay).toBeLessThanOrEqual(capped)
    }
  )
})

describe("retryAfterDelay", () => {
  const policy = RetryPolicy.make({ baseDelay: "1 second", maxRetryAfter: "1 minute" })
  const millis = (d: Option.Option<Duration.Duration>) => Option.map(d, Duration.toMillis)

  it("waits what Retry-After asked for, capped, and leaves the schedule's delay otherwise", () => {
    const limited = (retryAfterMillis?: number) =>
      new Errors.RateLimited({ status: 429, detail: "slow down", ...(retryAfterMillis !== undefined ? { retryAfterMillis } : {}) })
    expect(millis(retryAfterDelay(policy, limited(30_000), 0))).toEqual(Option.some(30_000))
    expect(millis(retryAfterDelay(policy, limited(86_400_000), 0))).toEqual(Option.some(60_000))
    expect(millis(retryAfterDelay(policy, limited(0), 0))).toEqual(Option.some(500))
    expect(retryAfterDelay(policy, limited(), 0)).toEqual(Option.none())
    expect(retryAfterDelay(policy, new Errors.ServerError({ status: 503, detail: "busy" }), 0)).toEqual(Option.none())
  })
})

describe("make", () => {
  it("fills in defaults and never allows fewer than one attempt", () => {
    const policy = RetryPolicy.make()
    expect(policy.maxAttempts).toBe(10)
    expect(Duration.toMillis(policy.maxRetryAfter)).toBe(300_000)
    expect(RetryPolicy.make({ maxAttempts: 0 }).maxAttempts).toBe(1)
    expect(RetryPolicy.disabled.maxAttempts).toBe(1)
  })
})

// ---------------------------------------------------------------------------------------------
// The policy applied by the service, on the TestClock
// ---------------------------------------------------------------------------------------------

/** Lets forked fibers run until they all wait on the clock. */
const settle = TestClock.adjust(Duration.zero)

/** Answers `failures` in turn, then a page with one event. */
const failing = (...failures: ReadonlyArray<Answer>) => (_: URL, i: number): Answer => failures[i] ?? page([event()])

const tooMany = (retryAfter?: string, status = 429) =>
  webexError(status, { message: "Too many requests", trackingId: `track-${status}` }, retryAfter === undefined ? {} : { "retry-after": retryAfter })

const listAll = (s: Stub, retry?: EventsApi.Options["retry"]) =>
  Effect.gen(function*() {
    const api = yield* makeApi(s, retry === undefined ? {} : { retry })
    return yield* Effect.fork(Stream.runCollect(api.list()))
  })

/** Advances the clock to `t` millis after the start, then returns how many requests were sent. */
const callsAt = (s: Stub, start: number) => (t: number) =>
  Effect.gen(function*() {
    const now = yield* TestClock.currentTimeMillis
    yield* TestClock.adjust(Duration.millis(start + t - now))
    return s.calls.length
  })

describe("retries through the service", () => {
  it.effect("a 429 with Retry-After: 30 is retried at 30 s, not before", () =>
    Effect.gen(function*() {
      const s = stub(failing(tooMany("30")))
      const fiber = yield* listAll(s)
      const at = callsAt(s, 0)
      expect(yield* at(0)).toBe(1)
      expect(yield* at(29_999)).toBe(1)
      expect(yield* at(30_000)).toBe(2)
      expect(s.calls.map((c) => c.at)).toEqual([0, 30_000])
      expect(Array.from(yield* Fiber.join(fiber))).toHaveLength(1)
    }))

  it.effect("a Retry-After HTTP-date is waited for until that instant", () =>
    Effect.gen(function*() {
      const start = Date.UTC(2024, 5, 1, 12, 0, 0)
      yield* TestClock.setTime(start)
      const s = stub(failing(tooMany(new Date(start + 45_000).toUTCString())))
      const fiber = yield* listAll(s)
      const at = callsAt(s, start)
      expect(yield* at(44_999)).toBe(1)
      expect(yield* at(45_000)).toBe(2)
      yield* Fiber.join(fiber)
    }))

  for (const [label, retryAfter] of [["garbage", "rand(30),add(30)"], ["missing", undefined], ["negative", "-5"]] as const) {
    it.effect(`a ${label} Retry-After falls back to backoff`, () =>
      Effect.gen(function*() {
        const s = stub(failing(tooMany(retryAfter)))
        const fiber = yield* listAll(s, { baseDelay: "1 second" })
        const at = callsAt(s, 0)
        // equal jitter: the first retry comes after 0.5 to 1 s
        expect(yield* at(499)).toBe(1)
        expect(yield* at(1_000)).toBe(2)
        yield* Fiber.join(fiber)
      }))
  }

  it.effect("an absurd Retry-After is capped at maxRetryAfter", () =>
    Effect.gen(function*() {
      const s = stub(failing(tooMany("86400")))
      const fiber = yield* listAll(s, { maxRetryAfter: "1 minute" })
      const at = callsAt(s, 0)
      expect(yield* at(59_999)).toBe(1)
      expect(yield* at(60_000)).toBe(2)
      yield* Fiber.join(fiber)
    }))

  it.effect("423 Locked is retried like 429, honouring its Retry-After", () =>
    Effect.gen(function*() {
      const s = stub(failing(tooMany("5", 423)))
      const fiber = yield* listAll(s)
      const at = callsAt(s, 0)
      expect(yield* at(4_999)).toBe(1)
      expect(yield* at(5_000)).toBe(2)
      yield* Fiber.join(fiber)
    }))

  for (const status of [500, 502, 503, 504]) {
    it.effect(`${status} is retried with backoff`, () =>
      Effect.gen(function*() {
        const s = stub(failing(webexError(status, { message: "oops" }), webexError(status, { message: "oops" })))
        const fiber = yield* listAll(s, { baseDelay: "1 second" })
        const at = callsAt(s, 0)
        expect(yield* at(499)).toBe(1)
        expect(yield* at(1_000)).toBe(2)
        // the second retry waits longer: 1 to 2 s after the first one
        const first = s.calls[1]!.at
        expect(yield* at(first + 999)).toBe(2)
        expect(yield* at(first + 2_000)).toBe(3)
        expect(Array.from(yield* Fiber.join(fiber))).toHaveLength(1)
      }))
  }

  it.effect("a transport failure is retried with backoff", () =>
    Effect.gen(function*() {
      const s = stub(failing({ transportError: "ECONNRESET" }))
      const fiber = yield* listAll(s, { baseDelay: "1 second" })
      const at = callsAt(s, 0)
      expect(yield* at(499)).toBe(1)
      expect(yield* at(1_000)).toBe(2)
      expect(Array.from(yield* Fiber.join(fiber))).toHaveLength(1)
    }))

  it.effect("maxAttempts bounds the retries and the last error is returned with its status and tracking id", () =>
    Effect.gen(function*() {
      const s = stub((_, i) => webexError(503, { message: `busy ${i}`, trackingId: `track-${i}` }))
      const fiber = yield* listAll(s, { maxAttempts: 3 })
      yield* TestClock.adjust("1 hour")
      expect(Exit.isFailure(yield* Fiber.await(fiber))).toBe(true)
      expect(s.calls).toHaveLength(3)
      const error = yield* Effect.flip(Fiber.join(fiber))
      expect(error).toBeInstanceOf(Errors.ServerError)
      expect(error).toMatchObject({ _tag: "ServerError", status: 503, detail: "busy 2", trackingId: "track-2" })
    }))

  it.effect("maxElapsed bounds the retries: no retry is started that would end past it", () =>
    Effect.gen(function*() {
      const s = stub((_, i) => webexError(429, { message: "slow down" }, { "retry-after": "3", trackingid: `hdr-${i}` }))
      const fiber = yield* listAll(s, { maxElapsed: "10 seconds" })
      yield* TestClock.adjust("1 hour")
      // attempts at 0, 3, 6 and 9 s; a fifth at 12 s would exceed 10 s
      expect(s.calls.map((c) => c.at)).toEqual([0, 3_000, 6_000, 9_000])
      const error = yield* Effect.flip(Fiber.join(fiber))
      expect(error).toMatchObject({ _tag: "RateLimited", status: 429, trackingId: "hdr-3", retryAfterMillis: 3_000 })
    }))

  it.effect("exhausted 429s report the wait the server asked for, uncapped", () =>
    Effect.gen(function*() {
      const s = stub(() => tooMany("86400"))
      // Waits are capped at maxRetryAfter (5 min): attempts at 0 and 5 min, a third would end past 6 min.
      const fiber = yield* listAll(s, { maxElapsed: "6 minutes" })
      yield* TestClock.adjust("1 hour")
      const error = yield* Effect.flip(Fiber.join(fiber))
      expect(s.calls).toHaveLength(2)
      expect(error).toMatchObject({ _tag: "RateLimited", status: 429, retryAfterMillis: 86_400_000, trackingId: "track-429" })
    }))

  it.effect("a 429 storm is ridden out: rate limits spend no attempts, only elapsed time", () =>
    Effect.gen(function*() {
      const s = stub((_, i) => (i < 25 ? tooMany("4") : page([event({ id: "after-the-storm" })])))
      const fiber = yield* listAll(s, { maxAttempts: 3 })
      yield* TestClock.adjust("1 hour")
      expect(Array.from(yield* Fiber.join(fiber), (e) => e.id)).toEqual(["after-the-storm"])
      expect(s.calls).toHaveLength(26)
      expect(s.calls[25]!.at).toBe(25 * 4_000)
    }))

  it.effect("Retry-After: 0 (or a date already past) still waits at least the first backoff step", () =>
    Effect.gen(function*() {
      const s = stub((_, i) => (i < 3 ? tooMany("0") : page([event()])))
      const fiber = yield* listAll(s, { baseDelay: "1 second" })
      yield* TestClock.adjust("1 hour")
      yield* Fiber.join(fiber)
      const gaps = s.calls.slice(1).map((c, i) => c.at - s.calls[i]!.at)
      expect(gaps).toHaveLength(3)
      // Equal jitter of the first step: between half and all of 1 s.
      for (const gap of gaps) {
        expect(gap).toBeGreaterThanOrEqual(500)
        expect(gap).toBeLessThanOrEqual(1000)
      }
    }))

  it.effect("retry: false sends a single request", () =>
    Effect.gen(function*() {
      const s = stub(() => webexError(503, { message: "busy" }))
      const fiber = yield* listAll(s, false)
      yield* TestClock.adjust("1 hour")
      const error = yield* Effect.flip(Fiber.join(fiber))
      expect(s.calls).toHaveLength(1)
      expect(error._tag).toBe("ServerError")
    }))

  for (const [status, tag] of [[400, "InvalidRequest"], [401, "Unauthorized"], [403, "Forbidden"], [404, "InvalidRequest"]] as const) {
    it.effect(`${status} is never retried`, () =>
      Effect.gen(function*() {
        const s = stub(() => webexError(status, { message: "no" }))
        const fiber = yield* listAll(s)
        yield* TestClock.adjust("1 hour")
        const error = yield* Effect.flip(Fiber.join(fiber))
        expect(s.calls).toHaveLength(1)
        expect(error._tag).toBe(tag)
      }))
  }

  it.effect("404 on get is EventNotFound and not retried", () =>
    Effect.gen(function*() {
      const s = stub(() => webexError(404, { message: "not found" }))
      const api = yield* makeApi(s)
      const fiber = yield* Effect.fork(api.get("missing"))
      yield* TestClock.adjust("1 hour")
      const error = yield* Effect.flip(Fiber.join(fiber))
      expect(s.calls).toHaveLength(1)
      expect(error).toMatchObject({ _tag: "EventNotFound", eventId: "missing", status: 404 })
    }))

  it.effect("a 429 on one request holds back the other requests of the same service", () =>
    Effect.gen(function*() {
      const s = stub((url) => {
        const id = url.pathname.split("/").pop()!
        const earlier = s.calls.filter((c) => c.url.pathname === url.pathname).length
        return id === "a" && earlier === 1 ? tooMany("20") : { status: 200, body: JSON.stringify(event({ id })) }
      })
      const api = yield* makeApi(s)
      const requestsFor = (id: string) => s.calls.filter((c) => c.url.pathname.endsWith(`/${id}`)).map((c) => c.at)

      expect((yield* api.get("b1")).id).toBe("b1")
      const a = yield* Effect.fork(api.get("a"))
      yield* settle
      expect(requestsFor("a")).toEqual([0])
      // b2 starts after a's 429: it waits out the same Retry-After instead of hitting the limit too
      const b = yield* Effect.fork(api.get("b2"))
      yield* settle
      expect(requestsFor("b2")).toEqual([])
      yield* TestClock.adjust("19999 millis")
      expect(requestsFor("b2")).toEqual([])
      expect(requestsFor("a")).toEqual([0])
      yield* TestClock.adjust("1 millis")
      expect(requestsFor("b2")).toEqual([20_000])
      expect(requestsFor("a")).toEqual([0, 20_000])
      expect((yield* Fiber.join(a)).id).toBe("a")
      expect((yield* Fiber.join(b)).id).toBe("b2")
    }))

  it.effect("another service instance has its own gate", () =>
    Effect.gen(function*() {
      const s = stub((url) => (url.pathname.endsWith("/a") ? tooMany("20") : { status: 200, body: JSON.stringify(event({ id: "b" })) }))
      const first = yield* makeApi(s)
      const second = yield* makeApi(s)
      const a = yield* Effect.fork(first.get("a"))
      yield* settle
      expect((yield* second.get("b")).id).toBe("b")
      yield* Fiber.interrupt(a)
    }))

  it.effect("repeated 504s halve the page size of the retried request, and later pages keep the smaller size", () =>
    Effect.gen(function*() {
      const gatewayTimeout = webexError(504, { message: "Gateway Timeout: try reducing max" })
      const s = stub((_, i) =>
        i < 4
          ? gatewayTimeout
          : i === 4
          ? page([event()], `${BASE_URL}/events?cursor=abc%20def&max=null`)
          : page([event()])
      )
      const api = yield* makeApi(s, { retry: { baseDelay: "1 second" } })
      const fiber = yield* Effect.fork(Stream.runCollect(api.list({ max: 100, resource: "messages" })))
      yield* TestClock.adjust("1 hour")
      expect(Array.from(yield* Fiber.join(fiber))).toHaveLength(2)
      const maxes = s.calls.map((c) => c.url.searchParams.get("max"))
      expect(maxes).toEqual(["100", "100", "50", "25", "12", "12"])
      // the filters and the cursor are untouched
      expect(s.calls.every((c) => c.url.searchParams.get("resource") === "messages")).toBe(true)
      expect(s.calls[5]!.url.search).toContain("cursor=abc%20def")
    }))

  it.effect("repeated 504s shrink from the service default of 100 when the caller gave no max", () =>
    Effect.gen(function*() {
      const s = stub((_, i) => (i < 2 ? webexError(504, { message: "Gateway Timeout" }) : page([event()])))
      const api = yield* makeApi(s, { retry: { baseDelay: "1 second" } })
      const fiber = yield* Effect.fork(Stream.runCollect(api.list()))
      yield* TestClock.adjust("1 hour")
      expect(Array.from(yield* Fiber.join(fiber))).toHaveLength(1)
      expect(s.calls.map((c) => c.url.searchParams.get("max"))).toEqual([null, null, "50"])
    }))

  it.effect("504 shrinking can be turned off", () =>
    Effect.gen(function*() {
      const s = stub(failing(...Array(3).fill(webexError(504, { message: "Gateway Timeout" }))))
      const api = yield* makeApi(s, { retry: { shrinkPageOn504: false } })
      const fiber = yield* Effect.fork(Stream.runCollect(api.list({ max: 100 })))
      yield* TestClock.adjust("1 hour")
      yield* Fiber.join(fiber)
      expect(s.calls.map((c) => c.url.searchParams.get("max"))).toEqual(["100", "100", "100", "100"])
    }))
})
