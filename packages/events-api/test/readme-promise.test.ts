/**
 * The README's Promise API section: its `ts` blocks, verbatim, run against the fake Webex, and its
 * method table checked against `EventsClient`. Edit the blocks here and in the README together.
 */
import { afterAll, assert, describe, it } from "@effect/vitest"
import { EventNotFound, EventsClient } from "@webex-compliance/events-api/promise"
import * as Effect from "effect/Effect"
import * as Exit from "effect/Exit"
import * as Redacted from "effect/Redacted"
import * as Scope from "effect/Scope"
import { readFileSync } from "node:fs"
import { fileURLToPath } from "node:url"
import { FakeWebex, SeedOrg } from "../src/testing.js"

// ---------------------------------------------------------------------------------------------
// README: Promise API
// ---------------------------------------------------------------------------------------------

export async function januaryDeletions(eventId: string) {
  // WEBEX_BASE_URL is optional (default https://webexapis.com/v1).
  const client = new EventsClient({ token: process.env.WEBEX_TOKEN!, baseUrl: process.env.WEBEX_BASE_URL })
  try {
    let deletions = 0
    // Lazy: a page is fetched when the loop needs it, one page in memory.
    for await (const event of client.list({
      resource: "messages",
      type: "deleted",
      from: "2024-01-01T00:00:00Z",
      to: "2024-02-01T00:00:00Z"
    })) {
      console.log(`${event.id} deleted by ${event.actorId ?? "?"}`)
      deletions++
    }
    try {
      const event = await client.get(eventId)
      return { deletions, found: event.id }
    } catch (error) {
      // The library's own error classes: instanceof, _tag, status and trackingId all work.
      if (error instanceof EventNotFound) return { deletions, found: `none (trackingId ${error.trackingId})` }
      throw error
    }
  } finally {
    await client.close()
  }
}

export async function firstUndecodable(client: EventsClient) {
  // Give up after 30 seconds; leaving the loop early stops the listing.
  for await (const page of client.listPages({ max: 1000 }, { signal: AbortSignal.timeout(30_000) })) {
    const junk = page.items.find((item) => item._tag === "Undecodable")
    if (junk !== undefined) return junk.raw
  }
  return undefined
}

// ---------------------------------------------------------------------------------------------
// The examples, run
// ---------------------------------------------------------------------------------------------

const SEASON = SeedOrg.generateOrg({ count: 400, seed: 3, from: "2023-12-20T00:00:00Z", to: "2024-02-10T00:00:00Z" })
const deletedInJanuary = SEASON.map((raw) => JSON.parse(raw) as { id: string; resource: string; type: string; created: string })
  .filter((e) =>
    e.resource === "messages" && e.type === "deleted" && Date.parse(e.created) >= Date.parse("2024-01-01T00:00:00Z") &&
    Date.parse(e.created) < Date.parse("2024-02-01T00:00:00Z")
  )

const scope = Effect.runSync(Scope.make())
afterAll(() => Effect.runPromise(Scope.close(scope, Exit.void)))
const fake = (options: FakeWebex.Options) => Effect.runPromise(Scope.extend(FakeWebex.make({ events: SEASON, ...options }), scope))

const README = readFileSync(fileURLToPath(new URL("../README.md", import.meta.url)), "utf8")
const SECTION = /\n## Promise API[\s\S]*?(?=\n## )/.exec(README)?.[0] ?? ""

describe("README: Promise API", () => {
  it("januaryDeletions counts January's deletions through 429s, then reports EventNotFound", async () => {
    assert.isAbove(deletedInJanuary.length, 2, "the org has deletions to find")
    const webex = await fake({ faults: { rateLimitEvery: 2, retryAfterSeconds: 0 } })
    const saved = { token: process.env.WEBEX_TOKEN, baseUrl: process.env.WEBEX_BASE_URL, log: console.log }
    const printed: Array<string> = []
    process.env.WEBEX_TOKEN = Redacted.value(webex.token)
    process.env.WEBEX_BASE_URL = webex.baseUrl
    console.log = (...args: Array<unknown>) => void printed.push(args.join(" "))
    try {
      const found = await januaryDeletions(deletedInJanuary[0]!.id)
      assert.deepStrictEqual(found, { deletions: deletedInJanuary.length, found: deletedInJanuary[0]!.id })
      assert.strictEqual(printed.filter((l) => / deleted by /.test(l)).length, deletedInJanuary.length)
      const missing = await januaryDeletions("no-such-event")
      assert.match(missing.found, /^none \(trackingId ROUTER_[0-9A-F-]+\)$/)
    } finally {
      console.log = saved.log
      if (saved.token === undefined) delete process.env.WEBEX_TOKEN
      else process.env.WEBEX_TOKEN = saved.token
      if (saved.baseUrl === undefined) delete process.env.WEBEX_BASE_URL
      else process.env.WEBEX_BASE_URL = saved.baseUrl
    }
    assert.isTrue((await Effect.runPromise(webex.requests)).some((r) => r.status === 429))
  })

  it("firstUndecodable returns the junk item's raw text, or undefined when there is none", async () => {
    const webex = await fake({ faults: { malformedItemEvery: 1 } })
    const client = new EventsClient({ token: webex.token, baseUrl: webex.baseUrl })
    assert.strictEqual(await firstUndecodable(client), `{"id": 42, "created": "yesterday"}`)
    await client.close()
    const clean = await fake({})
    const cleanClient = new EventsClient({ token: clean.token, baseUrl: clean.baseUrl })
    assert.isUndefined(await firstUndecodable(cleanClient))
    await cleanClient.close()
  })

  it("holds the section's ts blocks verbatim, and its table names every method", () => {
    const self = readFileSync(fileURLToPath(import.meta.url), "utf8")
    const blocks = [...SECTION.matchAll(/```ts\n([\s\S]*?)```/g)].map((m) => m[1]!)
    assert.strictEqual(blocks.length, 2)
    for (const block of blocks) {
      for (const line of block.split("\n").filter((l) => l.startsWith("import "))) assert.include(self, line)
      assert.include(self, block.split("\n").filter((l) => !l.startsWith("import ")).join("\n").trim())
    }
    const methods = [...SECTION.matchAll(/^\| `(\w+)\(/gm)].map((m) => m[1]!)
    const own = Object.getOwnPropertyNames(EventsClient.prototype).filter((n) => n !== "constructor")
    assert.deepStrictEqual(methods.sort(), own.sort())
  })
})
