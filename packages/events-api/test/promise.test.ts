/**
 * The Promise API (`@webex-compliance/events-api/promise`) against the fake Webex over loopback
 * HTTP, used the way a non-Effect application uses it: `for await`, `try`/`catch`, `instanceof`.
 */
import { afterAll, assert, describe, it } from "@effect/vitest"
import { EventNotFound, EventsClient, InvalidRequest, Unauthorized } from "@webex-compliance/events-api/promise"
import * as Effect from "effect/Effect"
import * as Exit from "effect/Exit"
import * as Redacted from "effect/Redacted"
import * as Scope from "effect/Scope"
import { inspect } from "node:util"
import { FakeWebex, SeedOrg } from "../src/testing.js"

const ORG = SeedOrg.generateOrg({ count: 250, seed: 11, from: "2024-01-01T00:00:00Z", to: "2024-01-08T00:00:00Z" })
const ids = (raws: ReadonlyArray<string>) => raws.map((raw) => (JSON.parse(raw) as { id: string }).id)

const scopes: Array<Scope.CloseableScope> = []
afterAll(() => Promise.all(scopes.map((scope) => Effect.runPromise(Scope.close(scope, Exit.void)))))

/** A fake server for one test, closed after the file. */
const fake = async (options: FakeWebex.Options = {}) => {
  const scope = Effect.runSync(Scope.make())
  scopes.push(scope)
  const webex = await Effect.runPromise(Scope.extend(FakeWebex.make({ events: ORG, ...options }), scope))
  return {
    webex,
    token: Redacted.value(webex.token),
    requests: () => Effect.runPromise(webex.requests)
  }
}

/** Retries in milliseconds, so the faults cost no time. */
const fast = { baseDelay: "1 millis", maxDelay: "5 millis", maxRetryAfter: "5 millis" } as const

const rejection = async (promise: Promise<unknown>): Promise<unknown> => {
  try {
    await promise
  } catch (error) {
    return error
  }
  assert.fail("expected a rejection")
}

describe("EventsClient (Promise API)", () => {
  it("lists every event with for await, through rate limits, and closes", async () => {
    const { webex, token, requests } = await fake({ faults: { rateLimitEvery: 2, retryAfterSeconds: 0 } })
    const client = new EventsClient({ token, baseUrl: webex.baseUrl, retry: fast, logLevel: "error" })
    const seen: Array<string> = []
    for await (const event of client.list({ max: 40 })) seen.push(event.id)
    await client.close()
    assert.deepStrictEqual(seen.sort(), ids(ORG).sort())
    const served = await requests()
    assert.isTrue(served.some((r) => r.status === 429), "the listing met rate limits")
    assert.strictEqual(served.filter((r) => r.status === 200).length, Math.ceil(ORG.length / 40))
  })

  it("is lazy: one page per need, and leaving the loop stops the listing", async () => {
    const { webex, token, requests } = await fake()
    const client = new EventsClient({ token, baseUrl: webex.baseUrl })
    const iterable = client.list({ max: 10 })
    assert.strictEqual((await requests()).length, 0, "nothing is fetched before the loop starts")
    let n = 0
    for await (const _ of iterable) {
      if (++n === 15) break
    }
    await new Promise((r) => setTimeout(r, 50))
    assert.strictEqual((await requests()).length, 2, "15 events of 10-event pages: two pages, no more")
    await client.close()
  })

  it("listPages keeps undecodable items with their raw text", async () => {
    const { webex, token } = await fake({ faults: { malformedItemEvery: 1 } })
    const client = new EventsClient({ token, baseUrl: webex.baseUrl })
    let decoded = 0
    const junk: Array<string> = []
    for await (const page of client.listPages({ max: 100 })) {
      for (const item of page.items) {
        if (item._tag === "Decoded") decoded++
        else junk.push(item.raw)
      }
    }
    await client.close()
    assert.strictEqual(decoded, ORG.length)
    assert.isAbove(junk.length, 0)
  })

  it("get resolves an event, and rejects with the library's own error classes", async () => {
    const { webex, token } = await fake()
    const client = new EventsClient({ token, baseUrl: webex.baseUrl })
    const id = ids(ORG)[7]!
    assert.strictEqual((await client.get(id)).id, id)

    const missing = await rejection(client.get("no-such-event"))
    assert.instanceOf(missing, EventNotFound)
    assert.instanceOf(missing, Error)
    const notFound = missing as EventNotFound
    assert.strictEqual(notFound._tag, "EventNotFound")
    assert.strictEqual(notFound.status, 404)
    assert.strictEqual(notFound.eventId, "no-such-event")
    assert.match(notFound.trackingId ?? "", /^ROUTER_/)
    assert.notInclude(String(notFound), "FiberFailure")

    const stranger = new EventsClient({ token: "not-the-token", baseUrl: webex.baseUrl, retry: false })
    const refused = await rejection(stranger.get(id))
    assert.instanceOf(refused, Unauthorized)
    assert.strictEqual((refused as Unauthorized).status, 401)
    assert.notInclude(JSON.stringify(refused) + String(refused), "not-the-token")
    await Promise.all([client.close(), stranger.close()])
  })

  it("a failing listing rejects the loop with the tagged error", async () => {
    const { webex } = await fake()
    const client = new EventsClient({ token: "wrong", baseUrl: webex.baseUrl, retry: false })
    const error = await rejection((async () => {
      for await (const _ of client.list()) assert.fail("no event with a wrong token")
    })())
    assert.instanceOf(error, Unauthorized)
    await client.close()
  })

  it("an AbortSignal cancels a call in flight and a listing between pages", async () => {
    const { webex, token } = await fake({ faults: { latencyMs: 2_000 } })
    const client = new EventsClient({ token, baseUrl: webex.baseUrl })
    const started = Date.now()
    const controller = new AbortController()
    setTimeout(() => controller.abort(new Error("user gave up")), 100)
    const aborted = await rejection(client.get(ids(ORG)[0]!, { signal: controller.signal }))
    assert.strictEqual((aborted as Error).message, "user gave up")
    assert.isBelow(Date.now() - started, 1_500, "the 2 s response was not awaited")

    const already = await rejection(client.get("x", { signal: AbortSignal.abort() }))
    assert.strictEqual((already as Error).name, "AbortError")

    const fastClient = new EventsClient({ token, baseUrl: (await fake()).webex.baseUrl })
    const stop = new AbortController()
    let n = 0
    const error = await rejection((async () => {
      for await (const _ of fastClient.list({ max: 10 }, { signal: stop.signal })) {
        if (++n === 10) stop.abort()
      }
    })())
    assert.strictEqual((error as Error).name, "AbortError")
    assert.strictEqual(n, 10)
    await Promise.all([client.close(), fastClient.close()])
  })

  it("close ends open listings and refuses further calls; a token is required", async () => {
    const { webex, token } = await fake()
    const client = new EventsClient({ token, baseUrl: webex.baseUrl })
    const iterator = client.list({ max: 5 })[Symbol.asyncIterator]()
    assert.isFalse((await iterator.next()).done)
    await client.close()
    assert.match(String(await rejection(iterator.next())), /closed/)
    assert.match(String(await rejection(client.get("x"))), /closed/)
    assert.throws(() => new EventsClient({ token: " " }), TypeError)
  })

  it("a bad baseUrl rejects with InvalidRequest naming it; the token never shows on the client", async () => {
    const client = new EventsClient({ token: "secret-token-value", baseUrl: "ftp://example.com/v1" })
    const error = await rejection(client.get("e1"))
    assert.instanceOf(error, InvalidRequest)
    assert.strictEqual((error as InvalidRequest).param, "baseUrl")
    assert.notInclude(inspect(client, { depth: 10, showHidden: true }) + JSON.stringify(client), "secret-token-value")
    await client.close()
  })

  it("refresh: gets tokens with the refresh-token grant and hands each rotation to onRotate as strings", async () => {
    const oauth = { clientId: "client-1", clientSecret: "secret-1", refreshToken: "refresh-0" }
    const { webex } = await fake({ oauth })
    const rotations: Array<{ refreshToken: string; expiresAt: Date }> = []
    const client = new EventsClient({
      baseUrl: webex.baseUrl,
      refresh: {
        ...oauth,
        onRotate: async ({ refreshToken, expiresAt }) => void rotations.push({ refreshToken, expiresAt })
      },
      logLevel: "none"
    })
    let n = 0
    for await (const _ of client.list({ max: 100 })) n++
    await client.close()
    assert.strictEqual(n, ORG.length)
    assert.deepStrictEqual(rotations.map((r) => r.refreshToken), ["fake-refresh-1"])
    assert.isAbove(rotations[0]!.expiresAt.getTime(), Date.now())
  })
})
