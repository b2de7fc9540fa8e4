/**
 * The orchestration with swapped layers: an in-memory (or recording, or failing) `EventsApi`, the
 * real sink and checkpoint on a temp directory, and `TestClock` for "now" and the daemon's polls.
 */
import * as fs from "node:fs"
import * as path from "node:path"
import { assert, describe, it } from "@effect/vitest"
import { EventsApi, EventsApiError, EventsPage } from "@webex-compliance/events-api"
import type { ListParams } from "@webex-compliance/events-api"
import { InMemoryEventsApi, SeedOrg } from "@webex-compliance/events-api/testing"
import * as Cause from "effect/Cause"
import * as Chunk from "effect/Chunk"
import * as DateTime from "effect/DateTime"
import * as Duration from "effect/Duration"
import * as Effect from "effect/Effect"
import * as Exit from "effect/Exit"
import * as Fiber from "effect/Fiber"
import * as Layer from "effect/Layer"
import * as Option from "effect/Option"
import * as Ref from "effect/Ref"
import * as Stream from "effect/Stream"
import * as TestClock from "effect/TestClock"
import * as Archiver from "../src/Archiver.js"
import * as Checkpoint from "../src/Checkpoint.js"
import * as NdjsonSink from "../src/NdjsonSink.js"
import * as Totals from "../src/Totals.js"
import { tmpArchives } from "./support/tmpArchive.js"

// ---------------------------------------------------------------------------------------------
// Fixtures
// ---------------------------------------------------------------------------------------------

const tmpDir = tmpArchives("archiver-orchestration-")

const ms = (iso: string) => Date.parse(iso)
const iso = (millis: number) => new Date(millis).toISOString()
const HOUR = 3_600_000
const DAY = 24 * HOUR

/** A hand-written event, so a test can place it exactly. */
const ev = (id: string, created: string, resource = "messages") =>
  `{"id":"${id}","resource":"${resource}","type":"created","actorId":"p1","created":"${created}","data":{"text":"${id}"}}`

const createdOf = (raw: string) => ms((JSON.parse(raw) as { created: string }).created)
const idOf = (raw: string) => (JSON.parse(raw) as { id: string }).id
const within = (events: ReadonlyArray<string>, from: number, to: number) =>
  events.filter((e) => createdOf(e) >= from && createdOf(e) < to)

// The backfill scenario: a generated org over a week, and a range that starts and ends mid-week
// (and mid-day, so the last window is shorter than the others).
const ORG_FROM = "2024-03-01T00:00:00.000Z"
const ORG_TO = "2024-03-08T00:00:00.000Z"
const FROM = ms("2024-03-02T00:00:00.000Z")
const TO = ms("2024-03-05T12:00:00.000Z")
const NOW = ms("2024-06-01T00:00:00.000Z")

const ORG: ReadonlyArray<string> = [
  ...SeedOrg.generateOrg({ count: 300, seed: 7, from: ORG_FROM, to: ORG_TO }),
  // On the bounds: `from` is in, `to` is out.
  ev("at-from", iso(FROM)),
  ev("before-from", iso(FROM - 1)),
  ev("before-to", iso(TO - 1)),
  ev("at-to", iso(TO)),
  // Spacing, number spellings and escapes that a re-serialisation would change.
  `{ "id": "quirky", "resource": "messages", "type": "created", "created": "2024-03-03T10:00:00+00:00", "n": 1.0, "big": 12345678901234567890, "data": { "text": "caf\\u00e9 \\"q\\"" } }`
]
const EXPECTED = within(ORG, FROM, TO)

const settings = (overrides: Partial<Archiver.Settings> = {}): Archiver.Settings => ({
  scope: {},
  max: 7,
  window: Duration.days(1),
  ...overrides
})

// ---------------------------------------------------------------------------------------------
// A recording EventsApi, optionally failing
// ---------------------------------------------------------------------------------------------

interface Call {
  readonly from: string
  readonly to: string
  readonly max: number | undefined
  readonly resource: string | undefined
}

const timeText = (t: ListParams.TimeInput | undefined): string =>
  t === undefined ? "none" : t instanceof Date ? t.toISOString() : typeof t === "string" ? t : DateTime.formatIso(t)

interface Recording {
  readonly calls: Array<Call>
  readonly layer: Layer.Layer<EventsApi.EventsApi>
}

/** `body` (a list response of the in-memory service, `{"items":[…]}`) with `items` appended to its items. */
const withItems = (body: Uint8Array, items: ReadonlyArray<EventsPage.PageItem>): Uint8Array => {
  const text = new TextDecoder().decode(body)
  const close = text.lastIndexOf("]")
  const extra = items.map((i) => i.raw).join(",")
  return new TextEncoder().encode(`${text.slice(0, close)}${text[close - 1] === "[" ? "" : ","}${extra}${text.slice(close)}`)
}

/**
 * Wraps a service, recording the params of every listing (`listPages` or `listPagesWith`).
 * `failOnCall: n` makes the n-th call fail with a 503 after `pagesBeforeFailure` pages;
 * `extraOnCall` adds items to the first page of the n-th call.
 */
const recording = (
  inner: EventsApi.Service,
  options: {
    readonly failOnCall?: number
    readonly pagesBeforeFailure?: number
    readonly extraOnCall?: { readonly call: number; readonly items: ReadonlyArray<EventsPage.PageItem> }
    /** What the failing call fails with (default a 503 `ServerError`). */
    readonly failWith?: EventsApiError.EventsApiError
  } = {}
): Recording => {
  const calls: Array<Call> = []
  const record = (params: ListParams.ListParams | undefined) => {
    calls.push({
      from: timeText(params?.from),
      to: timeText(params?.to),
      max: params?.max,
      resource: params?.resource
    })
    return calls.length
  }
  const failing = <A>(n: number, pages: Stream.Stream<A, EventsApiError.EventsApiError>) =>
    options.failOnCall === n
      ? Stream.concat(
        Stream.take(pages, options.pagesBeforeFailure ?? 0),
        Stream.fail(options.failWith ?? new EventsApiError.ServerError({ status: 503, detail: "injected outage" }))
      )
      : pages
  const listPages: EventsApi.Service["listPages"] = (params) =>
    Stream.suspend(() => {
      const n = record(params)
      let pages = inner.listPages(params)
      const extra = options.extraOnCall
      if (extra !== undefined && extra.call === n) {
        pages = pages.pipe(
          Stream.zipWithIndex,
          Stream.map(([page, i]) =>
            i === 0
              ? new EventsPage.EventsPage({
                url: page.url,
                items: [...page.items, ...extra.items],
                next: page.next,
                trackingId: page.trackingId
              })
              : page
          )
        )
      }
      return failing(n, pages)
    })
  const listPagesWith: EventsApi.Service["listPagesWith"] = (params, decode) =>
    Stream.suspend(() => {
      const n = record(params)
      const extra = options.extraOnCall
      let first = true
      return failing(
        n,
        inner.listPagesWith(params, (raw) => {
          const body = first && extra !== undefined && extra.call === n ? withItems(raw.body, extra.items) : raw.body
          first = false
          return decode({ ...raw, body })
        })
      )
    })
  return { calls, layer: Layer.succeed(EventsApi.EventsApi, { ...inner, listPages, listPagesWith }) }
}

// ---------------------------------------------------------------------------------------------
// Running the archiver and reading the archive
// ---------------------------------------------------------------------------------------------

const archiverLayer = (dir: string, api: Layer.Layer<EventsApi.EventsApi>, s: Archiver.Settings = settings()) =>
  Archiver.layer.pipe(
    Layer.provide(
      Layer.mergeAll(api, NdjsonSink.layer(dir), Checkpoint.layer(dir), Layer.succeed(Archiver.ArchiverSettings, s))
    )
  )

/** Opens the archive at `dir` (as a fresh process would) and runs `f` with the archiver. */
const withArchiver = <A, E>(
  dir: string,
  api: Layer.Layer<EventsApi.EventsApi>,
  f: (archiver: Archiver.Service) => Effect.Effect<A, E>,
  s?: Archiver.Settings
) => Effect.flatMap(Archiver.Archiver, f).pipe(Effect.provide(archiverLayer(dir, api, s)))

const backfill = (
  dir: string,
  api: Layer.Layer<EventsApi.EventsApi>,
  from = FROM,
  to = TO,
  s?: Archiver.Settings,
  recheck = false
) => withArchiver(dir, api, (a) => a.backfill({ from, to: Option.some(to), recheck }), s)

const lines = (file: string) => fs.readFileSync(file, "utf8").split("\n").filter((l) => l !== "")
const dayFiles = (dir: string, sub = "events") =>
  fs.existsSync(path.join(dir, sub)) ? fs.readdirSync(path.join(dir, sub)).sort() : []
/** Every archived line, file by file. */
const archived = (dir: string) => dayFiles(dir).flatMap((f) => lines(path.join(dir, "events", f)))
/** The archive as day file -> sorted lines: equal for equal archives, whatever the write order. */
const snapshot = (dir: string) =>
  Object.fromEntries(dayFiles(dir).map((f) => [f, lines(path.join(dir, "events", f)).sort()]))

const sorted = (xs: ReadonlyArray<string>) => [...xs].sort()

const assertExactlyOnce = (dir: string, expected: ReadonlyArray<string>) => {
  const got = archived(dir)
  assert.strictEqual(new Set(got.map(idOf)).size, got.length, "no event archived twice")
  assert.deepStrictEqual(sorted(got), sorted(expected))
  // Each event sits in the file of the UTC day of its `created`.
  for (const f of dayFiles(dir)) {
    for (const line of lines(path.join(dir, "events", f))) {
      assert.strictEqual(`${iso(createdOf(line)).slice(0, 10)}.ndjson`, f, idOf(line))
    }
  }
}

/** The checkpoint as stored (ISO text), so assertions read like the file. */
const checkpointOf = (dir: string) =>
  Checkpoint.loadCheckpoint(dir).pipe(
    Effect.map(Option.getOrThrowWith(() => new Error("no checkpoint"))),
    Effect.map(Checkpoint.toJson)
  )

const assertWindows = (calls: ReadonlyArray<Call>, from: number, to: number, size: number) => {
  assert.isAbove(calls.length, 0)
  assert.strictEqual(ms(calls[0]!.from), from, "the first window starts at from")
  assert.strictEqual(ms(calls[calls.length - 1]!.to), to, "the last window ends at to")
  calls.forEach((c, i) => {
    // Each window after the first re-reads the last second of its predecessor: whether the
    // service's `from` is inclusive is undocumented, and a boundary event must not be lost.
    if (i > 0) assert.strictEqual(ms(c.from), ms(calls[i - 1]!.to) - 1000, "windows overlap by exactly one second")
    const length = ms(c.to) - ms(c.from) - (i > 0 ? 1000 : 0)
    if (i < calls.length - 1) assert.strictEqual(length, size, "a full window")
    else assert.isTrue(length > 0 && length <= size, "the last window may be shorter")
  })
}

const realSleep = (millis: number) => Effect.promise(() => new Promise<void>((r) => setTimeout(r, millis)))

/**
 * Waits (in real time: the sink does real I/O) until the daemon sleeps until `now + interval`,
 * i.e. it finished its pass. Fails if the daemon stopped instead.
 */
const untilSleeping = <E>(daemon: Fiber.RuntimeFiber<never, E>, interval: Duration.Duration) =>
  Effect.gen(function*() {
    const wakeAt = (yield* TestClock.currentTimeMillis) + Duration.toMillis(interval)
    for (let i = 0; i < 5000; i++) {
      const exit = yield* Fiber.poll(daemon)
      if (Option.isSome(exit)) {
        return yield* Effect.dieMessage(`the daemon stopped: ${Cause.pretty(Exit.isFailure(exit.value) ? exit.value.cause : Cause.empty)}`)
      }
      if (Chunk.some(yield* TestClock.sleeps(), (t) => t === wakeAt)) return
      yield* realSleep(2)
    }
    return yield* Effect.dieMessage("the daemon never finished its pass")
  })

// ---------------------------------------------------------------------------------------------
// Backfill
// ---------------------------------------------------------------------------------------------

/** Raw items decoded as the library decodes them (its decoder is internal): an unfiltered in-memory listing. */
const decodedItems = (raws: ReadonlyArray<string>): Effect.Effect<ReadonlyArray<EventsPage.PageItem>> =>
  InMemoryEventsApi.make(raws).pipe(
    Effect.flatMap((api) => Stream.runCollect(api.listPages())),
    Effect.map((pages) => Chunk.toReadonlyArray(pages).flatMap((page) => page.items)),
    Effect.orDie
  )

describe("Archiver.backfill", () => {
  it.effect("archives exactly the events of [from, to), byte for byte, window by window", () =>
    Effect.gen(function*() {
      yield* TestClock.setTime(NOW)
      const dir = tmpDir()
      const api = recording(yield* InMemoryEventsApi.make(ORG))
      const totals = yield* backfill(dir, api.layer)

      assertExactlyOnce(dir, EXPECTED)
      const texts = archived(dir)
      for (const id of ["at-from", "before-to", "quirky"]) {
        assert.isTrue(texts.includes(ORG.find((e) => e.includes(`"${id}"`))!), `${id} is archived as sent`)
      }
      for (const id of ["before-from", "at-to"]) assert.isFalse(texts.some((l) => idOf(l) === id), `${id} is out of range`)

      // 1 day windows over 3.5 days: three full ones and a half one, with the page size asked for.
      assertWindows(api.calls, FROM, TO, DAY)
      assert.strictEqual(api.calls.length, 4)
      for (const c of api.calls) assert.strictEqual(c.max, 7)
      assert.deepStrictEqual(totals, {
        windows: 4,
        pages: totals.pages,
        listed: EXPECTED.length,
        written: EXPECTED.length,
        duplicates: 0,
        quarantined: 0,
        late: 0
      })
      assert.isAtLeast(totals.pages, Math.ceil(EXPECTED.length / 7))

      const cp = yield* checkpointOf(dir)
      assert.deepStrictEqual(cp.covered, [{ from: iso(FROM), through: iso(TO) }])
      assert.isUndefined(cp.backfill, "a finished backfill leaves no job behind")
      assert.deepStrictEqual(cp.scope, {})
    }))

  it.effect("gives the same archive whatever order and page size the API uses", () =>
    Effect.gen(function*() {
      yield* TestClock.setTime(NOW)
      const random = SeedOrg.mulberry32(42)
      const shuffled = ORG.map((e) => [random(), e] as const).sort((a, b) => a[0] - b[0]).map(([, e]) => e)
      assert.notDeepEqual(shuffled, [...ORG])

      const a = tmpDir()
      const b = tmpDir()
      yield* backfill(a, InMemoryEventsApi.layer(ORG))
      yield* backfill(b, InMemoryEventsApi.layer(shuffled), FROM, TO, settings({ max: 3 }))
      assert.deepStrictEqual(snapshot(b), snapshot(a))
      assertExactlyOnce(b, EXPECTED)
      assert.deepStrictEqual((yield* checkpointOf(b)).covered, (yield* checkpointOf(a)).covered)
    }))

  it.effect("after a failure, checkpoints exactly the completed windows and resumes at doneThrough", () =>
    Effect.gen(function*() {
      yield* TestClock.setTime(NOW)
      const dir = tmpDir()
      const inner = yield* InMemoryEventsApi.make(ORG)
      // The third window fails after its first page was written.
      const failing = recording(inner, { failOnCall: 3, pagesBeforeFailure: 1 })
      const error = yield* Effect.flip(backfill(dir, failing.layer))
      assert.strictEqual(error._tag, "ServerError", error.message)

      const done = FROM + 2 * DAY
      const cp = yield* checkpointOf(dir)
      assert.deepStrictEqual(cp.covered, [{ from: iso(FROM), through: iso(done) }])
      assert.deepStrictEqual(cp.backfill, { from: iso(FROM), to: iso(TO), doneThrough: iso(done) })
      // What the checkpoint vouches for is on disk; what it does not is at most the unfinished page.
      const before = archived(dir)
      for (const e of within(ORG, FROM, done)) assert.isTrue(before.includes(e), idOf(e))
      const unvouched = before.filter((l) => createdOf(l) >= done)
      assert.strictEqual(unvouched.length, 7, "the failing window's first page")
      assert.isTrue(unvouched.every((l) => createdOf(l) < done + DAY))

      // The same command again: it starts at doneThrough and finishes the job once.
      const resumed = recording(inner)
      const totals = yield* backfill(dir, resumed.layer)
      assertWindows(resumed.calls, done, TO, DAY)
      assert.isTrue(resumed.calls.every((c) => ms(c.from) >= done), "no request for a completed window")
      assert.strictEqual(totals.windows, 2)
      assert.strictEqual(totals.written, EXPECTED.length - before.length)
      assert.strictEqual(totals.duplicates, 7)
      assertExactlyOnce(dir, EXPECTED)
      const after = yield* checkpointOf(dir)
      assert.deepStrictEqual(after.covered, [{ from: iso(FROM), through: iso(TO) }])
      assert.isUndefined(after.backfill)
    }))

  it.effect("an interrupted back-fill whose --to lay in the future resumes too, up to the new now", () =>
    Effect.gen(function*() {
      // NOW - 1 day .. NOW + 5 days: the end is clamped to NOW on each run.
      const start = NOW - 3 * DAY
      const future = NOW + 5 * DAY
      yield* TestClock.setTime(NOW)
      const dir = tmpDir()
      const inner = yield* InMemoryEventsApi.make(ORG)
      const failing = recording(inner, { failOnCall: 2, pagesBeforeFailure: 0 })
      yield* Effect.flip(backfill(dir, failing.layer, start, future))
      const cp = yield* checkpointOf(dir)
      assert.deepStrictEqual(cp.backfill, { from: iso(start), to: iso(NOW), doneThrough: iso(start + DAY) })

      yield* TestClock.adjust("1 hour")
      const resumed = recording(inner)
      yield* backfill(dir, resumed.layer, start, future)
      assert.strictEqual(ms(resumed.calls[0]!.from), start + DAY, "resumed at doneThrough, not at --from")
      assert.strictEqual(ms(resumed.calls[resumed.calls.length - 1]!.to), NOW + 3_600_000, "up to the new now")
    }))

  it.effect("stays `settle` behind the clock: never asks for, nor claims, the last seconds", () =>
    Effect.gen(function*() {
      yield* TestClock.setTime(NOW)
      const dir = tmpDir()
      const api = recording(yield* InMemoryEventsApi.make(ORG))
      yield* withArchiver(dir, api.layer, (a) => a.backfill({ from: NOW - 2 * DAY, to: Option.none() }), settings({ settle: Duration.seconds(10) }))
      assert.strictEqual(ms(api.calls[api.calls.length - 1]!.to), NOW - 10_000)
      const cp = yield* checkpointOf(dir)
      assert.strictEqual(cp.covered[cp.covered.length - 1]!.through, iso(NOW - 10_000))
    }))

  it.effect("a re-run lists nothing the archive covers; --recheck lists it again and writes only what is missing", () =>
    Effect.gen(function*() {
      yield* TestClock.setTime(NOW)
      const dir = tmpDir()
      const inner = yield* InMemoryEventsApi.make(ORG)
      yield* backfill(dir, Layer.succeed(EventsApi.EventsApi, inner))

      // The same range again: covered, so not a single request.
      const skipped = recording(inner)
      const t0 = yield* backfill(dir, skipped.layer)
      assert.strictEqual(skipped.calls.length, 0, "a covered range is not listed again")
      assert.deepStrictEqual(t0, { ...t0, windows: 0, listed: 0, written: 0 })

      // A wider range: only the uncovered ends are listed.
      const wider = recording(inner)
      yield* backfill(dir, wider.layer, FROM - DAY, TO + DAY)
      assert.deepStrictEqual(wider.calls.map((c) => [c.from, c.to]), [[iso(FROM - DAY), iso(FROM)], [iso(TO), iso(TO + DAY)]])
      assertExactlyOnce(dir, within(ORG, FROM - DAY, TO + DAY))

      // Re-checked: everything is listed, everything a duplicate.
      const again = recording(inner)
      const t1 = yield* backfill(dir, again.layer, FROM, TO, undefined, true)
      assert.strictEqual(again.calls.length, 4, "--recheck lists the range again")
      assert.deepStrictEqual([t1.written, t1.duplicates, t1.listed, t1.late], [0, EXPECTED.length, EXPECTED.length, 0])

      // Lines lost from a day file, and late events the API now lists: only those are written.
      const file = path.join(dir, "events", dayFiles(dir)[1]!)
      const kept = lines(file)
      fs.writeFileSync(file, kept.slice(3).map((l) => `${l}\n`).join(""))
      const late = [ev("late-1", "2024-03-02T05:00:00.000Z"), ev("late-2", "2024-03-04T23:00:00.000Z")]
      yield* inner.add(late)
      const t2 = yield* backfill(dir, Layer.succeed(EventsApi.EventsApi, inner), FROM, TO, undefined, true)
      assert.deepStrictEqual([t2.written, t2.duplicates, t2.listed, t2.late], [5, EXPECTED.length - 3, EXPECTED.length + 2, 5])
      assertExactlyOnce(dir, [...within(ORG, FROM - DAY, TO + DAY), ...late])
    }))

  it.effect("--recheck with grown windows: late events are counted one by one, also in a window reaching past what was covered", () =>
    Effect.gen(function*() {
      yield* TestClock.setTime(NOW)
      const dir = tmpDir()
      // Sparse: a few events over 40 days, so windows grow from 1 day toward 7 (WindowPlan).
      const T = ms("2024-01-01T00:00:00.000Z")
      const sparse = Array.from({ length: 40 }, (_, i) => ev(`sparse-${i}`, iso(T + i * DAY + 3_600_000)))
      const inner = yield* InMemoryEventsApi.make(sparse)
      const grown = settings({ longestWindow: Duration.days(7) })
      yield* backfill(dir, Layer.succeed(EventsApi.EventsApi, inner), T, T + 20 * DAY, grown)
      // Late events in the covered part, near its end, where a window grown across the bound
      // [.., T + 20d) would otherwise start.
      const late = [ev("late-a", iso(T + 18 * DAY + 5_000)), ev("late-b", iso(T + 19 * DAY + 7_000))]
      yield* inner.add(late)
      const calls = recording(inner)
      const t = yield* backfill(dir, calls.layer, T, T + 40 * DAY, grown, true)
      assert.deepStrictEqual([t.written, t.late], [2 + 20, 2], "the 2 late ones, and the 20 never archived")
      // A window did reach across the bound: late is not a matter of whole windows.
      assert.isTrue(calls.calls.some((c) => ms(c.from) < T + 20 * DAY - 1000 && ms(c.to) > T + 20 * DAY))
      assert.isBelow(calls.calls.length, 20, "the windows grew")
      assertExactlyOnce(dir, [...sparse, ...late])
    }))

  it.effect("keeps undecodable items in quarantine, out of the events, and counts them", () =>
    Effect.gen(function*() {
      yield* TestClock.setTime(NOW)
      const dir = tmpDir()
      const junk = [
        `{"id":"bad-1","resource":"messages","type":"created","created":"not a date","data":{}}`,
        `{"created":"2024-03-02T01:00:00.000Z","note":"no id, no type"}`
      ]
      const inner = yield* InMemoryEventsApi.make(ORG)
      const api = recording(inner, { extraOnCall: { call: 1, items: yield* decodedItems(junk) } })
      const totals = yield* backfill(dir, api.layer)
      assert.deepStrictEqual(
        [totals.quarantined, totals.written, totals.listed],
        [2, EXPECTED.length, EXPECTED.length + 2]
      )
      assertExactlyOnce(dir, EXPECTED)

      const quarantined = dayFiles(dir, "quarantine").flatMap((f) => lines(path.join(dir, "quarantine", f)))
        .map((l) => JSON.parse(l) as { raw: string; reason: string; id?: string })
      assert.deepStrictEqual(quarantined.map((q) => q.raw), junk)
      assert.strictEqual(quarantined[0]!.id, "bad-1")
      assert.isUndefined(quarantined[1]!.id)
      for (const q of quarantined) assert.isAbove(q.reason.length, 0)

      // Listed again on a re-check: already quarantined, not again.
      const again = recording(inner, { extraOnCall: { call: 1, items: yield* decodedItems(junk) } })
      const t2 = yield* backfill(dir, again.layer, FROM, TO, undefined, true)
      assert.strictEqual(t2.quarantined, 0)
      assert.strictEqual(dayFiles(dir, "quarantine").flatMap((f) => lines(path.join(dir, "quarantine", f))).length, 2)
    }))

  it.effect("quarantines events that decode but cannot be filed once, instead of stopping for good", () =>
    Effect.gen(function*() {
      yield* TestClock.setTime(NOW)
      const dir = tmpDir()
      const odd = [
        `{"id":"","resource":"messages","type":"created","created":"2024-03-02T01:00:00.000Z","data":{}}`,
        `{"id":"first","id":"second","resource":"messages","type":"created","created":"2024-03-02T01:00:00.000Z","data":{}}`,
        `{"id":"year-minus-one","resource":"messages","type":"created","created":"0000-01-01T00:30:00+01:00","data":{}}`
      ]
      const inner = yield* InMemoryEventsApi.make(ORG)
      const oddItems = yield* decodedItems(odd)
      const api = recording(inner, { extraOnCall: { call: 1, items: oddItems } })
      for (const item of oddItems) assert.strictEqual(item._tag, "Decoded")
      const totals = yield* backfill(dir, api.layer)
      assert.strictEqual(totals.quarantined, 3)
      assertExactlyOnce(dir, EXPECTED)
      const quarantined = dayFiles(dir, "quarantine").flatMap((f) => lines(path.join(dir, "quarantine", f)))
        .map((l) => JSON.parse(l) as { raw: string; reason: string })
      assert.deepStrictEqual(quarantined.map((q) => q.raw), odd)
      assert.match(quarantined[0]!.reason, /id is empty/)
      assert.match(quarantined[1]!.reason, /ambiguous/)
      assert.match(quarantined[2]!.reason, /not a calendar day YYYY-MM-DD within the years 0000-9999/)
    }))

  it.effect("a successful back-fill clears the last error that status shows", () =>
    Effect.gen(function*() {
      yield* TestClock.setTime(NOW)
      const dir = tmpDir()
      yield* backfill(dir, InMemoryEventsApi.layer(ORG))
      yield* Checkpoint.recordError(dir, "an earlier failure")
      assert.isTrue(Option.isSome(yield* Checkpoint.readLastError(dir)))
      yield* backfill(dir, InMemoryEventsApi.layer(ORG))
      assert.isTrue(Option.isNone(yield* Checkpoint.readLastError(dir)))
    }))

  it.effect("archives only its scope, and refuses an archive built with another one", () =>
    Effect.gen(function*() {
      yield* TestClock.setTime(NOW)
      const dir = tmpDir()
      const api = recording(yield* InMemoryEventsApi.make(ORG))
      const messages = settings({ scope: { resource: "messages" } })
      yield* backfill(dir, api.layer, FROM, TO, messages)
      assert.isTrue(api.calls.every((c) => c.resource === "messages"))
      assertExactlyOnce(dir, EXPECTED.filter((e) => (JSON.parse(e) as { resource: string }).resource === "messages"))
      const cp = yield* checkpointOf(dir)
      assert.deepStrictEqual(cp.scope, { resource: "messages" })

      for (const other of [{}, { resource: "memberships" }, { resource: "messages", type: "deleted" }]) {
        const calls = recording(yield* InMemoryEventsApi.make(ORG))
        const error = yield* Effect.flip(backfill(dir, calls.layer, FROM, TO, settings({ scope: other })))
        assert.strictEqual(error._tag, "ArchiverUsageError")
        assert.include(error.message, "--resource messages")
        assert.strictEqual(calls.calls.length, 0, "nothing listed")
      }
      assert.deepStrictEqual(yield* checkpointOf(dir), cp, "the checkpoint is untouched")
    }))

  it.effect("refuses an empty or inverted range before listing or writing anything", () =>
    Effect.gen(function*() {
      yield* TestClock.setTime(NOW)
      const dir = tmpDir()
      const api = recording(yield* InMemoryEventsApi.make(ORG))
      const cases: ReadonlyArray<readonly [number, Option.Option<number>]> = [
        [FROM, Option.some(FROM)],
        [TO, Option.some(FROM)],
        // `to` defaults to now, and a range in the future is empty.
        [NOW + HOUR, Option.none()],
        [NOW, Option.some(NOW + DAY)]
      ]
      for (const [from, to] of cases) {
        const error = yield* Effect.flip(withArchiver(dir, api.layer, (a) => a.backfill({ from, to })))
        assert.strictEqual(error._tag, "ArchiverUsageError", iso(from))
      }
      assert.strictEqual(api.calls.length, 0)
      assert.isTrue(Option.isNone(yield* Checkpoint.loadCheckpoint(dir)))
    }))
})

// ---------------------------------------------------------------------------------------------
// The daemon
// ---------------------------------------------------------------------------------------------

describe("Archiver.run", () => {
  const T0 = ms("2024-03-10T12:00:00.000Z")
  const START = ms("2024-03-09T00:00:00.000Z")
  const interval = Duration.minutes(5)
  const lookback = Duration.hours(1)
  const daemonSettings = settings({ window: Duration.hours(6), max: 50 })
  /** The daemon from START, forked; its totals, window by window, in `totals`. */
  /** `run --from START` forked, its totals into `totals` when given. */
  const daemonFrom = (dir: string, api: Layer.Layer<EventsApi.EventsApi>, totals?: Ref.Ref<Totals.Totals>) =>
    withArchiver(
      dir,
      api,
      (a) => a.run({ from: Option.some(START), interval, lookback, ...(totals !== undefined ? { totals } : {}) }),
      daemonSettings
    ).pipe(Effect.fork)
  const history = SeedOrg.generateOrg({ count: 200, seed: 3, from: iso(START - DAY), to: iso(T0) })

  it.effect("catches up to now, then polls [through - lookback, now) and archives late events once", () =>
    Effect.gen(function*() {
      yield* TestClock.setTime(T0)
      const dir = tmpDir()
      const inner = yield* InMemoryEventsApi.make(history)
      const api = recording(inner)
      const totals = yield* Ref.make(Totals.empty)
      const daemon = yield* daemonFrom(dir, api.layer, totals)

      // Catch-up: 6 h windows from --from to the TestClock's now.
      yield* untilSleeping(daemon, interval)
      assertWindows(api.calls, START, T0, 6 * HOUR)
      assert.strictEqual(api.calls.length, 6)
      assertExactlyOnce(dir, within(history, START, T0))
      let cp = yield* checkpointOf(dir)
      assert.deepStrictEqual(cp.live, { through: iso(T0) })
      assert.deepStrictEqual(cp.covered, [{ from: iso(START), through: iso(T0) }])

      // Events that show up late: within the lookback, just created, and too old to be re-read.
      const late = [ev("late-30m", iso(T0 - 30 * 60_000)), ev("new-2m", iso(T0 + 2 * 60_000))]
      const tooLate = ev("late-2h", iso(T0 - 2 * HOUR))
      yield* inner.add([...late, tooLate])

      api.calls.length = 0
      yield* TestClock.adjust(interval)
      yield* untilSleeping(daemon, interval)
      const now1 = T0 + Duration.toMillis(interval)
      assert.deepStrictEqual(api.calls.map((c) => [c.from, c.to]), [[iso(T0 - HOUR), iso(now1)]])
      assertExactlyOnce(dir, [...within(history, START, T0), ...late])
      // The poll's one window reaches past the covered end: of its two new events, the one
      // created in time already covered is late, the just-created one is not.
      assert.deepStrictEqual([(yield* Ref.get(totals)).late, (yield* Ref.get(totals)).written], [1, within(history, START, T0).length + 2])
      cp = yield* checkpointOf(dir)
      assert.deepStrictEqual(cp.live, { through: iso(now1) })
      assert.deepStrictEqual(cp.covered, [{ from: iso(START), through: iso(now1) }])

      // The next poll re-reads from the new position; nothing is written twice.
      const newer = ev("new-7m", iso(T0 + 7 * 60_000))
      yield* inner.add([newer])
      api.calls.length = 0
      yield* TestClock.adjust(interval)
      yield* untilSleeping(daemon, interval)
      const now2 = now1 + Duration.toMillis(interval)
      assert.deepStrictEqual(api.calls.map((c) => [c.from, c.to]), [[iso(now1 - HOUR), iso(now2)]])
      assertExactlyOnce(dir, [...within(history, START, T0), ...late, newer])
      assert.deepStrictEqual((yield* checkpointOf(dir)).live, { through: iso(now2) })
      yield* Fiber.interrupt(daemon)

      // A restart without --from continues from the covered end, re-reading the lookback before
      // it: an event that arrived late while the daemon was down is caught too.
      yield* TestClock.adjust("30 minutes")
      const now3 = now2 + 30 * 60_000
      const whileDown = ev("while-down", iso(now2 + 10 * 60_000))
      const lateWhileDown = ev("late-while-down", iso(now2 - 20 * 60_000))
      yield* inner.add([whileDown, lateWhileDown])
      const restarted = recording(inner)
      const again = yield* withArchiver(
        dir,
        restarted.layer,
        (a) => a.run({ from: Option.none(), interval, lookback }),
        daemonSettings
      ).pipe(Effect.fork)
      yield* untilSleeping(again, interval)
      assert.deepStrictEqual(restarted.calls.map((c) => [c.from, c.to]), [[iso(now2 - Duration.toMillis(lookback)), iso(now3)]])
      assertExactlyOnce(dir, [...within(history, START, T0), ...late, newer, whileDown, lateWhileDown])
      assert.deepStrictEqual((yield* checkpointOf(dir)).live, { through: iso(now3) })
      yield* Fiber.interrupt(again)
    }))

  it.effect("outlives an outage: a failed poll is retried from the checkpoint at the next interval", () =>
    Effect.gen(function*() {
      yield* TestClock.setTime(T0)
      const dir = tmpDir()
      const inner = yield* InMemoryEventsApi.make(history)
      // The 6 catch-up windows succeed; the first poll fails.
      const api = recording(inner, { failOnCall: 7 })
      const daemon = yield* daemonFrom(dir, api.layer)
      yield* untilSleeping(daemon, interval)
      const late = ev("late-10m", iso(T0 - 10 * 60_000))
      yield* inner.add([late])

      yield* TestClock.adjust(interval)
      yield* untilSleeping(daemon, interval)
      assert.strictEqual(api.calls.length, 7)
      assert.deepStrictEqual((yield* checkpointOf(dir)).live, { through: iso(T0) }, "a failed poll does not advance")
      assert.isFalse(archived(dir).includes(late))

      yield* TestClock.adjust(interval)
      yield* untilSleeping(daemon, interval)
      const now = T0 + 2 * Duration.toMillis(interval)
      assert.deepStrictEqual([api.calls[7]!.from, api.calls[7]!.to], [iso(T0 - HOUR), iso(now)])
      assertExactlyOnce(dir, [...within(history, START, T0), late])
      assert.deepStrictEqual((yield* checkpointOf(dir)).live, { through: iso(now) })
      yield* Fiber.interrupt(daemon)
    }))

  it.effect("a poll that fails midway keeps, in the run's totals, the windows it finished", () =>
    Effect.gen(function*() {
      yield* TestClock.setTime(T0)
      const dir = tmpDir()
      const inner = yield* InMemoryEventsApi.make(history)
      // The catch-up's 4th window fails: the 3 before it are written and checkpointed.
      const api = recording(inner, { failOnCall: 4 })
      const totals = yield* Ref.make(Totals.empty)
      const daemon = yield* daemonFrom(dir, api.layer, totals)
      yield* untilSleeping(daemon, interval)
      const t = yield* Ref.get(totals)
      assert.strictEqual(t.windows, 3)
      assert.isAbove(t.written, 0)
      assert.strictEqual(t.written, archived(dir).length, "every event written is counted")
      yield* Fiber.interrupt(daemon)
    }))

  it.effect("a malformed page fails that poll only: recorded in last-error.json, and the next poll goes on", () =>
    Effect.gen(function*() {
      yield* TestClock.setTime(T0)
      const dir = tmpDir()
      const inner = yield* InMemoryEventsApi.make(history)
      const api = recording(inner, {
        failOnCall: 7,
        failWith: new EventsApiError.ResponseDecodeError({ status: 200, reason: "the body is not JSON", trackingId: "ROUTER_X" })
      })
      const daemon = yield* daemonFrom(dir, api.layer)
      yield* untilSleeping(daemon, interval)
      yield* TestClock.adjust(interval)
      yield* untilSleeping(daemon, interval)
      assert.strictEqual(api.calls.length, 7)
      const recorded = yield* Checkpoint.readLastError(dir)
      assert.isTrue(Option.isSome(recorded))
      assert.include(Option.getOrThrow(recorded).message, "the body is not JSON")
      assert.include(Option.getOrThrow(recorded).message, "ROUTER_X")

      // Still running: the next poll succeeds and clears the error.
      const late = ev("late-after-bad-page", iso(T0 - 5 * 60_000))
      yield* inner.add([late])
      yield* TestClock.adjust(interval)
      yield* untilSleeping(daemon, interval)
      assert.isTrue(archived(dir).includes(late))
      assert.isTrue(Option.isNone(yield* Checkpoint.readLastError(dir)))
      yield* Fiber.interrupt(daemon)
    }))

  it.effect("never moves live.through back, even when windows are shorter than the lookback", () =>
    Effect.gen(function*() {
      yield* TestClock.setTime(T0)
      const dir = tmpDir()
      const inner = yield* InMemoryEventsApi.make(history)
      // 10 minute windows: catch-up [T0 - 30m, T0) is 3 calls; the first poll re-reads from --from
      // (the lookback never reaches before it on a first start) in 4 windows, and its 3rd one fails.
      const api = recording(inner, { failOnCall: 6 })
      const small = settings({ window: Duration.minutes(10), max: 50 })
      const daemon = yield* withArchiver(
        dir,
        api.layer,
        (a) => a.run({ from: Option.some(T0 - 30 * 60_000), interval, lookback }),
        small
      ).pipe(Effect.fork)
      yield* untilSleeping(daemon, interval)
      assert.strictEqual(api.calls.length, 3)

      yield* TestClock.adjust(interval)
      yield* untilSleeping(daemon, interval)
      assert.strictEqual(api.calls.length, 6)
      // The first poll on a first start does not reach back before --from.
      assert.strictEqual(api.calls[3]!.from, iso(T0 - 30 * 60_000))
      assert.deepStrictEqual((yield* checkpointOf(dir)).live, { through: iso(T0) }, "not T0 - 10m")

      yield* TestClock.adjust(interval)
      yield* untilSleeping(daemon, interval)
      const now = T0 + 2 * Duration.toMillis(interval)
      assert.deepStrictEqual((yield* checkpointOf(dir)).live, { through: iso(now) })
      assert.strictEqual(ms(api.calls[6]!.from), T0 - 30 * 60_000)
      assert.strictEqual(ms(api.calls[api.calls.length - 1]!.to), now)
      assertExactlyOnce(dir, within(history, T0 - 30 * 60_000, now))
      yield* Fiber.interrupt(daemon)
    }))

  it.effect("needs --from on a first start, and continues from the covered end of a back-fill without it", () =>
    Effect.gen(function*() {
      yield* TestClock.setTime(T0)
      const dir = tmpDir()
      const api = recording(yield* InMemoryEventsApi.make(history))
      const error = yield* Effect.flip(
        withArchiver(dir, api.layer, (a) => a.run({ from: Option.none(), interval, lookback }), daemonSettings)
      )
      assert.strictEqual(error._tag, "ArchiverUsageError")
      assert.include(error.message, "--from")
      assert.strictEqual(api.calls.length, 0)
      // After a back-fill the daemon needs no --from: it re-reads only the lookback before the covered end.
      yield* backfill(dir, api.layer, START, T0 - HOUR, daemonSettings)
      api.calls.length = 0
      const daemon = yield* withArchiver(dir, api.layer, (a) => a.run({ from: Option.none(), interval, lookback }), daemonSettings)
        .pipe(Effect.fork)
      yield* untilSleeping(daemon, interval)
      assert.deepStrictEqual(api.calls.map((c) => [c.from, c.to]), [[iso(T0 - 2 * HOUR), iso(T0)]])
      assertExactlyOnce(dir, within(history, START, T0))
      yield* Fiber.interrupt(daemon)
    }))
})
