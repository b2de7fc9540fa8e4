/**
 * The README's `ts` blocks, verbatim, and the README's tables checked against the library: if the
 * documentation drifts from the code, this file stops compiling or a test fails.
 *
 * The blocks sit at the top level below, in README order, without their imports (the imports of
 * this file cover them, which a test checks). Edit them here and in the README together.
 */
import * as HttpClient from "@effect/platform/HttpClient"
import * as HttpClientResponse from "@effect/platform/HttpClientResponse"
import { NodeHttpClient, NodeRuntime } from "@effect/platform-node"
import { assert, describe, it } from "@effect/vitest"
import {
  AccessToken,
  Event,
  EventsApi,
  EventsApiError,
  EventsPage,
  ListParams,
  RetryPolicy
} from "@webex-compliance/events-api"
import { FakeWebex, InMemoryEventsApi, SeedOrg } from "@webex-compliance/events-api/testing"
import {
  Chunk,
  ConfigProvider,
  Console,
  DateTime,
  Duration,
  Effect,
  Either,
  Fiber,
  Layer,
  Logger,
  LogLevel,
  Option,
  Redacted,
  Stream,
  TestClock
} from "effect"
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs"
import { tmpdir } from "node:os"
import { join } from "node:path"
import { fileURLToPath } from "node:url"

// ---------------------------------------------------------------------------------------------
// README: Quick start
// ---------------------------------------------------------------------------------------------

export const program = (eventId: string) =>
  Effect.gen(function*() {
    const api = yield* EventsApi.EventsApi

    // `list` is lazy: each page is fetched when the stream needs it.
    const deletions = yield* api.list({
      resource: "messages",
      type: "deleted",
      from: "2024-01-01T00:00:00Z",
      to: "2024-02-01T00:00:00Z",
      max: 500 // the page size, not a cap on the total
    }).pipe(
      Stream.tap((event) =>
        // `resource` is an open string: narrowing gives the typed `data` of a messages event.
        Event.isResource(event, "messages")
          ? Console.log(`${DateTime.formatIso(event.created)} ${event.actorId ?? "?"} deleted ${event.data.id ?? "?"}`)
          : Effect.void
      ),
      Stream.runCount
    )
    yield* Console.log(`${deletions} messages deleted in January`)

    const event = yield* api.get(eventId).pipe(
      Effect.map(Option.some),
      Effect.catchTag("EventNotFound", (error) =>
        Console.log(`No event ${error.eventId} (trackingId ${error.trackingId ?? "none"})`).pipe(
          Effect.as(Option.none())
        ))
    )
    return { deletions, event }
  })

// Node's own `http`, with connections kept open from page to page. (`NodeHttpClient.layer`
// closes each one after its response: over https, a new TLS handshake for every page.)
export const HttpLive = NodeHttpClient.layerWithoutAgent.pipe(
  Layer.provide(NodeHttpClient.makeAgentLayer({ keepAlive: true }))
)

// WEBEX_TOKEN (required) and WEBEX_BASE_URL (optional) are read from the environment.
export const MainLive = EventsApi.layerConfig().pipe(Layer.provide(HttpLive))

// `WEBEX_TOKEN=... npx tsx main.ts <eventId>`
if (process.argv[1] === fileURLToPath(import.meta.url)) {
  NodeRuntime.runMain(program(process.argv[2] ?? "").pipe(Effect.provide(MainLive)))
}

// ---------------------------------------------------------------------------------------------
// README: Expiring tokens
// ---------------------------------------------------------------------------------------------

export const RefreshingApi = (options: {
  readonly baseUrl: string
  readonly clientId: string
  readonly clientSecret: Redacted.Redacted<string>
  readonly refreshTokenFile: string
}) =>
  EventsApi.layer({
    baseUrl: options.baseUrl,
    refresh: {
      clientId: options.clientId,
      clientSecret: options.clientSecret,
      refreshToken: Redacted.make(readFileSync(options.refreshTokenFile, "utf8").trim()),
      // The presented refresh token is now spent: keep the new one before anything else happens.
      onRotate: ({ refreshToken }) =>
        Effect.try(() => writeFileSync(options.refreshTokenFile, Redacted.value(refreshToken), { mode: 0o600 }))
    }
  })

// ---------------------------------------------------------------------------------------------
// README: Pages, raw JSON and undecodable items
// ---------------------------------------------------------------------------------------------

export const archiveAll = (
  append: (raw: string) => Effect.Effect<void>,
  quarantine: (raw: string, reason: string) => Effect.Effect<void>
) =>
  Effect.gen(function*() {
    const api = yield* EventsApi.EventsApi
    yield* api.listPages({ from: "2024-01-01T00:00:00Z", max: 1000 }).pipe(
      Stream.runForEach((page) =>
        Effect.forEach(
          page.items,
          (item) => item._tag === "Decoded" ? append(item.raw) : quarantine(item.raw, item.reason),
          { discard: true }
        )
      )
    )
  })

// ---------------------------------------------------------------------------------------------
// README: Decoding elsewhere: `listPagesWith`
// ---------------------------------------------------------------------------------------------

// Ids and the undecodable items' reasons, page by page, from the library's own decoding.
export const idsByPage = Effect.gen(function*() {
  const api = yield* EventsApi.EventsApi
  return api.listPagesWith({ from: "2024-01-01T00:00:00Z", max: 1000 }, (raw) =>
    Either.map(EventsApi.decodePageBody(raw.body), (items) => ({
      count: items.length,
      page: items.map((item) => (item._tag === "Decoded" ? item.event.id : `undecodable: ${item.reason}`))
    })))
})

// ---------------------------------------------------------------------------------------------
// README: Retries
// ---------------------------------------------------------------------------------------------

const token = Redacted.make(process.env.WEBEX_TOKEN ?? "")

// A nightly backfill that may wait out long rate limits.
export const Patient = EventsApi.layer({
  token,
  retry: { maxAttempts: 30, maxElapsed: "2 hours", maxRetryAfter: "15 minutes" }
})

// An interactive tool that would rather report a 429 than wait.
export const Impatient = EventsApi.layer({ token, retry: false, requestTimeout: "10 seconds" })

// A complete policy works too: here the defaults, with more attempts.
export const Custom = EventsApi.layer({ token, retry: { ...RetryPolicy.make(), maxAttempts: 20 } })

// ---------------------------------------------------------------------------------------------
// README: Testing
// ---------------------------------------------------------------------------------------------

// The code under test.
const countMessages = Effect.gen(function*() {
  const api = yield* EventsApi.EventsApi
  return yield* api.list({ resource: "messages" }).pipe(Stream.runCount)
})

const org = SeedOrg.generateOrg({ count: 1_000, seed: 7, from: "2024-01-01T00:00:00Z", to: "2024-01-08T00:00:00Z" })
const messages = org.filter((raw) => JSON.parse(raw).resource === "messages").length

// A unit test: the service held in memory.
it.effect("counts messages (in memory)", () =>
  Effect.gen(function*() {
    assert.strictEqual(yield* countMessages, messages)
  }).pipe(Effect.provide(InMemoryEventsApi.layer(org))))

// The real client over loopback HTTP, against a server that rate-limits every other request.
const FakeApi = Layer.unwrapEffect(
  Effect.map(FakeWebex.FakeWebex, (webex) =>
    EventsApi.layer({ token: webex.token, baseUrl: webex.baseUrl, retry: { baseDelay: "10 millis" } }))
).pipe(
  Layer.provideMerge(FakeWebex.layer({ events: org, faults: { rateLimitEvery: 2, retryAfter: "garbage" } })),
  Layer.provide(NodeHttpClient.layer)
)

// `it.live`: the retries wait on the real clock (milliseconds here).
it.live("counts messages (fake server, through 429s)", () =>
  Effect.gen(function*() {
    assert.strictEqual(yield* countMessages, messages)
    const webex = yield* FakeWebex.FakeWebex
    assert.isTrue((yield* webex.requests).some((request) => request.status === 429))
  }).pipe(Effect.provide(FakeApi), Logger.withMinimumLogLevel(LogLevel.Error)))

// ---------------------------------------------------------------------------------------------
// The examples, run
// ---------------------------------------------------------------------------------------------

/** An org spanning January 2024 and some days either side. */
const SEASON = SeedOrg.generateOrg({ count: 600, seed: 3, from: "2023-12-20T00:00:00Z", to: "2024-02-10T00:00:00Z" })
const seasonEvents = SEASON.map((raw) => ({ raw, json: JSON.parse(raw) as { id: string; resource: string; type: string; created: string } }))
const inJanuary = (created: string) =>
  Date.parse(created) >= Date.parse("2024-01-01T00:00:00Z") && Date.parse(created) < Date.parse("2024-02-01T00:00:00Z")
const deletedInJanuary = seasonEvents.filter(({ json }) =>
  json.resource === "messages" && json.type === "deleted" && inJanuary(json.created)
)

/** A `Console` that records what `Console.log` prints, instead of printing it. */
const recordingConsole = Effect.map(Effect.console, (base) => {
  const lines: Array<string> = []
  const console: Console.Console = {
    ...base,
    log: (...args) =>
      Effect.sync(() => {
        lines.push(args.join(" "))
      })
  }
  return { lines, console }
})

describe("README examples, run against the fake server", () => {
  it.scopedLive("quick start: January's deleted messages, then get with EventNotFound handled", () =>
    Effect.gen(function*() {
      assert.isAbove(deletedInJanuary.length, 3, "the org has deletions to find")
      const webex = yield* FakeWebex.make({
        events: SEASON,
        order: "shuffled",
        // Faults the example must ride through: 429s (Retry-After 0 keeps the test fast) and next
        // links that lose the filters.
        faults: { rateLimitEvery: 2, retryAfterSeconds: 0, nextLinkDropsFilters: true }
      })
      const env = ConfigProvider.fromMap(
        new Map([["WEBEX_TOKEN", Redacted.value(webex.token)], ["WEBEX_BASE_URL", webex.baseUrl]])
      )
      const { console, lines } = yield* recordingConsole
      const run = (eventId: string) =>
        program(eventId).pipe(
          Effect.provide(MainLive),
          Effect.withConfigProvider(env),
          Effect.withConsole(console),
          Logger.withMinimumLogLevel(LogLevel.Error)
        )

      const target = deletedInJanuary[0]!.json
      const found = yield* run(target.id)
      assert.strictEqual(found.deletions, deletedInJanuary.length)
      assert.strictEqual(Option.getOrThrow(found.event).id, target.id)
      const deletionLines = lines.filter((line) => /^\d{4}-\d{2}-\d{2}T\S+ \S+ deleted \S+$/.test(line))
      assert.strictEqual(deletionLines.length, deletedInJanuary.length)
      assert.include(lines, `${deletedInJanuary.length} messages deleted in January`)

      const missing = yield* run("no-such-event")
      assert.isTrue(Option.isNone(missing.event))
      assert.match(lines.at(-1)!, /^No event no-such-event \(trackingId ROUTER_[0-9A-F-]+\)$/)

      const requests = yield* webex.requests
      assert.isTrue(requests.some((r) => r.status === 429), "the run met rate limits")
      assert.isTrue(requests.every((r) => r.authorized), "WEBEX_TOKEN was sent as the bearer token")
    }))

  it.scopedLive("listPages: every item archived as sent, junk quarantined with its reason", () =>
    Effect.gen(function*() {
      const webex = yield* FakeWebex.make({ events: SEASON, faults: { malformedItemEvery: 1 } })
      const archived: Array<string> = []
      const quarantined: Array<{ raw: string; reason: string }> = []
      yield* archiveAll(
        (raw) => Effect.sync(() => void archived.push(raw)),
        (raw, reason) => Effect.sync(() => void quarantined.push({ raw, reason }))
      ).pipe(
        Effect.provide(EventsApi.layer({ token: webex.token, baseUrl: webex.baseUrl }).pipe(
          Layer.provide(NodeHttpClient.layer)
        ))
      )
      const expected = seasonEvents.filter(({ json }) => Date.parse(json.created) >= Date.parse("2024-01-01T00:00:00Z"))
      assert.deepStrictEqual([...archived].sort(), expected.map(({ raw }) => raw).sort())
      assert.isAbove(quarantined.length, 0)
      for (const item of quarantined) {
        assert.strictEqual(item.raw, `{"id": 42, "created": "yesterday"}`)
        assert.isNotEmpty(item.reason)
      }
    }))

  it.scopedLive("listPagesWith: the ids of every page and a reason for each junk item, decoded by the caller", () =>
    Effect.gen(function*() {
      const webex = yield* FakeWebex.make({ events: SEASON, faults: { malformedItemEvery: 1 } })
      const pages = yield* Effect.flatMap(idsByPage, Stream.runCollect).pipe(
        Effect.provide(EventsApi.layer({ token: webex.token, baseUrl: webex.baseUrl }).pipe(
          Layer.provide(NodeHttpClient.layer)
        ))
      )
      const all = Chunk.toReadonlyArray(pages).flat()
      const expected = seasonEvents.filter(({ json }) => Date.parse(json.created) >= Date.parse("2024-01-01T00:00:00Z"))
      assert.deepStrictEqual(all.filter((x) => !x.startsWith("undecodable: ")).sort(), expected.map(({ json }) => json.id).sort())
      assert.isAbove(all.filter((x) => x.startsWith("undecodable: ")).length, 0)
    }))

  it.scopedLive("expiring tokens: refreshes, and keeps the rotated refresh token in the file", () =>
    Effect.gen(function*() {
      const oauth = { clientId: "client-1", clientSecret: "secret-1", refreshToken: "refresh-0" }
      const webex = yield* FakeWebex.make({ events: SEASON.slice(0, 50), oauth })
      const dir = mkdtempSync(join(tmpdir(), "readme-"))
      yield* Effect.addFinalizer(() => Effect.sync(() => rmSync(dir, { recursive: true, force: true })))
      const refreshTokenFile = join(dir, "refresh-token")
      writeFileSync(refreshTokenFile, "refresh-0\n")
      const ApiLive = RefreshingApi({
        baseUrl: webex.baseUrl,
        clientId: oauth.clientId,
        clientSecret: Redacted.make(oauth.clientSecret),
        refreshTokenFile
      }).pipe(Layer.provide(NodeHttpClient.layer))
      const count = yield* Effect.flatMap(EventsApi.EventsApi, (api) => Stream.runCount(api.list())).pipe(
        Effect.provide(ApiLive),
        Logger.withMinimumLogLevel(LogLevel.Error)
      )
      assert.strictEqual(count, 50)
      assert.strictEqual(readFileSync(refreshTokenFile, "utf8"), "fake-refresh-1")
      assert.strictEqual((yield* webex.oauth).currentRefreshToken, "fake-refresh-1")
    }))

  it.effect("retries: each example layer gives up after the attempts it configures", () =>
    Effect.gen(function*() {
      for (const [name, layer, attempts] of [["Impatient", Impatient, 1], ["Custom", Custom, 20], ["Patient", Patient, 30]] as const) {
        const calls: Array<string> = []
        // A server that always answers 503: every attempt is a failure that spends one.
        const alwaysFailing = HttpClient.make((request) =>
          Effect.sync(() => {
            calls.push(request.url)
            return HttpClientResponse.fromWeb(
              request,
              new Response(`{"message":"Service Unavailable","trackingId":"T-${name}"}`, { status: 503 })
            )
          })
        )
        const fiber = yield* Effect.fork(
          Effect.flip(Effect.flatMap(EventsApi.EventsApi, (api) => api.get("e1"))).pipe(
            Effect.provide(layer.pipe(Layer.provide(Layer.succeed(HttpClient.HttpClient, alwaysFailing))))
          )
        )
        yield* TestClock.adjust("3 hours")
        const error = yield* Fiber.join(fiber)
        assert.strictEqual(error._tag, "ServerError", name)
        assert.strictEqual(error.trackingId, `T-${name}`)
        assert.strictEqual(calls.length, attempts, name)
        assert.isTrue(calls.every((url) => url === `${EventsApi.DEFAULT_BASE_URL}/events/e1`))
      }
    }))
})

// ---------------------------------------------------------------------------------------------
// The README against the library
// ---------------------------------------------------------------------------------------------

const README = readFileSync(fileURLToPath(new URL("../README.md", import.meta.url)), "utf8")
const SELF = readFileSync(fileURLToPath(import.meta.url), "utf8")

const IMPORT = /^import (?:type )?\{([^}]*)\} from "([^"]+)"/gm

/** `module name` for every name a piece of code imports with `import { ... } from "module"`. */
const importsOf = (code: string): Set<string> => {
  const names = new Set<string>()
  for (const [, list, from] of code.matchAll(IMPORT)) {
    for (const name of list!.split(",").map((n) => n.trim()).filter((n) => n !== "")) names.add(`${from} ${name}`)
  }
  return names
}

/** The README's section under a `## ` heading, up to the next one. */
const section = (heading: string): string => {
  const start = README.indexOf(`\n## ${heading}\n`)
  assert.isAtLeast(start, 0, `README section ${heading}`)
  const end = README.indexOf("\n## ", start + 1)
  return README.slice(start, end < 0 ? undefined : end)
}

/** The first cells of the rows of the table whose header row is `header`. */
const tableRows = (text: string, header: string): Array<Array<string>> => {
  const start = text.indexOf(header)
  assert.isAtLeast(start, 0, `table ${header}`)
  const rows: Array<Array<string>> = []
  for (const line of text.slice(start).split("\n").slice(2)) {
    if (!line.startsWith("|")) break
    rows.push(line.split("|").slice(1, -1).map((cell) => cell.trim().replace(/^`|`$/g, "")))
  }
  return rows
}

/** Names the README documents that exist only as types: checked by the compiler, here. */
export type DocumentedTypes = [
  ListParams.ListParams,
  RetryPolicy.Options,
  RetryPolicy.RetryPolicy,
  EventsApiError.EventsApiError,
  FakeWebex.RecordedRequest,
  FakeWebex.Faults,
  EventsApi.Options,
  EventsApi.Service,
  AccessToken.RefreshOptions,
  AccessToken.Rotated,
  FakeWebex.OAuthOptions
]
const TYPE_ONLY = new Set([
  "ListParams.ListParams",
  "EventsPage.Item",
  "RetryPolicy.Options",
  "RetryPolicy.RetryPolicy",
  "FakeWebex.RecordedRequest",
  "AccessToken.RefreshOptions",
  "AccessToken.Rotated"
])

describe("README", () => {
  it("holds its ts blocks in this file, verbatim, with imports this file has", () => {
    // The Promise API section's blocks are checked and run by readme-promise.test.ts.
    const blocks = [...README.replace(/\n## Promise API[\s\S]*?(?=\n## )/, "\n").matchAll(/```ts\n([\s\S]*?)```/g)].map((m) => m[1]!)
    assert.strictEqual(blocks.length, 6)
    const own = importsOf(SELF)
    for (const block of blocks) {
      const lines = block.split("\n")
      const importLines = lines.filter((line) => line.startsWith("import "))
      assert.strictEqual(importLines.length, [...block.matchAll(IMPORT)].length, "only `import { ... } from` imports")
      for (const name of importsOf(block)) assert.isTrue(own.has(name), `README imports ${name}; this file does not`)
      const body = lines.filter((line) => !line.startsWith("import ")).join("\n").trim()
      assert.include(SELF, body)
    }
  })

  it("names only exports that exist", () => {
    const modules: Record<string, object> = {
      AccessToken,
      Event,
      EventsApi,
      EventsApiError,
      EventsPage,
      ListParams,
      RetryPolicy,
      FakeWebex,
      SeedOrg,
      InMemoryEventsApi
    }
    const mentioned = new Set(
      [...README.matchAll(/\b(AccessToken|Event|EventsApi|EventsApiError|EventsPage|ListParams|Pagination|RetryPolicy|FakeWebex|SeedOrg|InMemoryEventsApi)\.([A-Za-z_]+)/g)]
        .map(([, module, name]) => `${module}.${name}`)
    )
    assert.isAbove(mentioned.size, 30)
    for (const name of mentioned) {
      if (TYPE_ONLY.has(name)) continue
      const [module, member] = name.split(".") as [string, string]
      assert.property(modules[module], member, `README names ${name}`)
    }
  })

  it("lists exactly the error tags of the union", () => {
    const tags = tableRows(section("Errors"), "| `_tag` | when | extra fields |").map((row) => row[0])
    assert.deepStrictEqual(tags.sort(), EventsApiError.EventsApiError.members.map((m) => m._tag).sort())
  })

  it("lists exactly the fake server's faults", () => {
    const faults = tableRows(section("Testing: `@webex-compliance/events-api/testing`"), "| fault | effect |")
      .map((row) => row[0])
    assert.deepStrictEqual(faults.sort(), Object.keys(FakeWebex.noFaults).sort())
  })

  it("states the retry policy's real defaults", () => {
    const defaults = RetryPolicy.make()
    const rows = tableRows(section("Retries"), "| option | default | meaning |")
    assert.deepStrictEqual(rows.map((row) => row[0]).sort(), Object.keys(defaults).sort())
    for (const [option, documented] of rows) {
      const actual = defaults[option as keyof RetryPolicy.RetryPolicy]
      if (typeof actual === "number" || typeof actual === "boolean") {
        assert.strictEqual(String(actual), documented, option)
      } else {
        assert.isTrue(
          Duration.equals(actual as Duration.Duration, Duration.decode(documented as Duration.DurationInput)),
          `${option}: ${documented}`
        )
      }
    }
    assert.include(README, EventsApi.DEFAULT_BASE_URL)
  })

  it("states the page-size bounds the client enforces", () => {
    assert.include(section("The service"), `an integer from 1 to ${ListParams.MAX_PAGE_SIZE}`)
  })
})
