/**
 * What an open day file holds (`internal/dayTally.ts`), kept in the id index's marks so that
 * `status` answers without reading event files (issue 8): the fast count of appended lines agrees
 * with a full parse, the marks follow the sink's appends and reconcile's reads, and `status`
 * trusts a mark instead of the file.
 */
import { assert, describe, it } from "@effect/vitest"
import * as Context from "effect/Context"
import * as Effect from "effect/Effect"
import * as FastCheck from "effect/FastCheck"
import * as Layer from "effect/Layer"
import * as fs from "node:fs"
import * as path from "node:path"
import * as ArchiveStatus from "../src/ArchiveStatus.js"
import * as DayTally from "../src/internal/dayTally.js"
import * as IdIndex from "../src/internal/idIndex.js"
import * as NdjsonSink from "../src/NdjsonSink.js"
import * as Query from "../src/Query.js"
import * as Seal from "../src/Seal.js"
import * as Verify from "../src/Verify.js"
import { tmpArchives } from "./support/tmpArchive.js"

const tmpDir = tmpArchives("archiver-tally-")

const DAY = "2024-05-06"

/** JSON text with optional spaces after separators (never inside strings). */
const serialize = (v: unknown, sp: string): string => {
  if (Array.isArray(v)) return `[${v.map((x) => serialize(x, sp)).join(`,${sp}`)}]`
  if (typeof v === "object" && v !== null) {
    return `{${Object.entries(v).map(([k, x]) => `${JSON.stringify(k)}:${sp}${serialize(x, sp)}`).join(`,${sp}`)}}`
  }
  return JSON.stringify(v)
}

/** The reference: what `status` counted before marks existed (a full parse of every line). */
const reference = (lines: ReadonlyArray<string>) => {
  const byResource = new Map<string, number>()
  let events = 0
  let misfiled = 0
  let earliest: DayTally.Created | null = null
  let latest: DayTally.Created | null = null
  for (const line of lines) {
    const e = JSON.parse(line) as { resource?: unknown; created?: unknown }
    events++
    const r = typeof e.resource === "string" ? e.resource : DayTally.UNKNOWN_RESOURCE
    byResource.set(r, (byResource.get(r) ?? 0) + 1)
    if (typeof e.created !== "string") continue
    const ms = Date.parse(e.created)
    if (Number.isNaN(ms)) continue
    if (new Date(ms).toISOString().slice(0, 10) !== DAY) misfiled++
    if (earliest === null || ms < earliest.ms) earliest = { ms, text: e.created }
    if (latest === null || ms > latest.ms) latest = { ms, text: e.created }
  }
  return { events, byResource: Object.fromEntries(byResource), unreadable: 0, misfiled, duplicates: 0, earliest, latest }
}

// Strings that trip a careless scanner: quotes, escapes, brackets, the keys' own text, non-ASCII.
const tricky = FastCheck.oneof(
  FastCheck.string(),
  FastCheck.constantFrom(
    ",\"created\":\"2020-01-01T00:00:00.000Z\"",
    "\"resource\":\"x\"",
    "{[",
    "\\",
    "\\\"",
    "é☃",
    "messages",
    ""
  )
)
const created = FastCheck.oneof(
  FastCheck.integer({ min: Date.parse(`${DAY}T00:00:00.000Z`) - 3_600_000, max: Date.parse(`${DAY}T23:59:59.999Z`) + 3_600_000 })
    .map((ms) => new Date(ms).toISOString()),
  FastCheck.integer({ min: 0, max: 86_399 }).map((s) =>
    `${DAY}T${String(Math.floor(s / 3600)).padStart(2, "0")}:${String(Math.floor(s / 60) % 60).padStart(2, "0")}:${
      String(s % 60).padStart(2, "0")
    }+00:00`
  ),
  FastCheck.constantFrom(
    `${DAY}T25:00:00.000Z`,
    `${DAY}T24:00:00.000Z`,
    `${DAY}T23:60:00.000Z`,
    `${DAY}T23:59:60.000Z`,
    `${DAY}T1a:00:00.000Z`,
    `${DAY}T10:00:00.0000`,
    "2024-05-07T00:00:00.000Z",
    "2024-02-30T00:00:00.000Z",
    "not a date",
    `${DAY}T10:00:00.000\\u005a`
  ),
  FastCheck.integer(),
  FastCheck.constant(null)
)
const resource = FastCheck.oneof(
  FastCheck.constantFrom("messages", "memberships", "meetings", "caf\u00e9", "a\"b", "a\\b", "valueOf", "__proto__"),
  tricky,
  FastCheck.constant(null),
  FastCheck.integer()
)
const data = FastCheck.dictionary(
  FastCheck.constantFrom("id", "created", "resource", "text", "list"),
  FastCheck.oneof(tricky, FastCheck.array(tricky, { maxLength: 3 }), FastCheck.dictionary(FastCheck.string(), tricky, { maxKeys: 2 }))
)
const event = FastCheck.record({
  id: FastCheck.string({ minLength: 1 }),
  resource,
  type: FastCheck.constantFrom("created", "deleted"),
  created,
  data,
  // Keys of interest nested in arrays of objects, before or after the top-level ones.
  extra: FastCheck.oneof(
    tricky,
    FastCheck.constant([1, { resource: "nested", created: "2000-01-01T00:00:00.000Z" }]),
    FastCheck.constant([["[", "{"], { x: [{ created: `${DAY}T12:00:00.000Z`, resource: "deep" }] }])
  )
}, { requiredKeys: ["id"] })
// Keys in any order, with or without spaces.
const line = FastCheck.tuple(event, FastCheck.array(FastCheck.nat(), { minLength: 6, maxLength: 6 }), FastCheck.boolean())
  .map(([e, order, spaced]) => {
    const entries = Object.entries(e).map(([k, v], i) => [k, v, order[i]!] as const).sort((a, b) => a[2] - b[2])
    const ordered = Object.fromEntries(entries.map(([k, v]) => [k, v]))
    return serialize(ordered, spaced ? " " : "")
  })

const tallyOf = (lines: ReadonlyArray<string>, how: "appended" | "read") => {
  const t = DayTally.start(DAY)
  for (const l of lines) {
    if (how === "appended") DayTally.appended(t, Buffer.from(l))
    else DayTally.lineBytes(t, Buffer.from(l), undefined)
  }
  return DayTally.done(t)
}

describe("DayTally", () => {
  it.prop(
    "the count of appended lines (no parse) and of read lines (full parse) agree with a full parse",
    [FastCheck.array(line, { maxLength: 40 })],
    ([lines]) => {
      const want = reference(lines)
      assert.deepStrictEqual(tallyOf(lines, "appended"), want)
      assert.deepStrictEqual(tallyOf(lines, "read"), want)
      // In two parts, combined: what status does with a mark and a tail.
      const half = Math.floor(lines.length / 2)
      const t = DayTally.start(DAY, tallyOf(lines.slice(0, half), "appended"))
      for (const l of lines.slice(half)) DayTally.lineBytes(t, Buffer.from(l), undefined)
      assert.deepStrictEqual(DayTally.done(t), want)
    },
    { fastCheck: { numRuns: 300 } }
  )

  it.prop(
    "appended lines counted from what the caller decoded (resource, created instant), in batches, agree with a full parse",
    [FastCheck.array(line, { maxLength: 40 }), FastCheck.array(FastCheck.integer({ min: 1, max: 7 }), { minLength: 1, maxLength: 8 })],
    ([all, cuts]) => {
      // What a decoded event offers: a string resource and an instant (a line without them is not an event the sink gets).
      const decoded = all.flatMap((l) => {
        const e = JSON.parse(l) as { resource?: unknown; created?: unknown }
        const ms = typeof e.created === "string" ? Date.parse(e.created) : NaN
        return typeof e.resource === "string" && !Number.isNaN(ms) ? [{ l, hint: { resource: e.resource, createdMillis: ms } }] : []
      })
      const t = DayTally.start(DAY)
      // In batches of the sizes given, as the sink appends them.
      for (let at = 0, c = 0; at < decoded.length; c++) {
        const batch = decoded.slice(at, at + cuts[c % cuts.length]!)
        DayTally.appendedAll(t, batch.map((d) => Buffer.from(d.l)), batch.map((d) => d.hint))
        at += batch.length
      }
      assert.deepStrictEqual(DayTally.done(t), reference(decoded.map((d) => d.l)))
    },
    { fastCheck: { numRuns: 300 } }
  )

  it("counts damage, duplicates and misfiled events when reading; the first of duplicate keys counts", () => {
    const t = DayTally.start(DAY)
    const ids = new Set<string>()
    for (
      const l of [
        `{"id":"a","resource":"messages","created":"${DAY}T01:00:00.000Z"}`,
        `{"id":"a","resource":"messages","created":"${DAY}T02:00:00.000Z"}`,
        `{"id":"b","resource":"rooms","created":"2024-05-07T00:00:00.000Z"}\r`,
        "not json",
        "[1]",
        `{"id":"c","resource":"x","resource":"y","created":"${DAY}T03:00:00.000Z"}`
      ]
    ) DayTally.lineBytes(t, Buffer.from(l), ids)
    const d = DayTally.done(t)
    assert.deepStrictEqual([d.events, d.unreadable, d.duplicates, d.misfiled], [4, 2, 1, 1])
    assert.deepStrictEqual(d.byResource, { messages: 2, rooms: 1, x: 1 })
    assert.strictEqual(d.earliest?.text, `${DAY}T01:00:00.000Z`)
    assert.strictEqual(d.latest?.text, "2024-05-07T00:00:00.000Z")
    const fast = DayTally.start(DAY)
    DayTally.appended(fast, Buffer.from(`{"id":"c","resource":"x","resource":"y","created":"${DAY}T03:00:00.000Z"}`))
    assert.deepStrictEqual(DayTally.done(fast).byResource, { x: 1 })
  })
})

const raw = (id: string, created: string, resource = "messages") =>
  `{"id":"${id}","resource":"${resource}","type":"created","actorId":"a1","created":"${created}","data":{"id":"m-${id}","created":"2001-01-01T00:00:00.000Z"}}`
const rec = (id: string, created: string, resource = "messages"): NdjsonSink.ArchiveRecord => ({
  id,
  day: created.slice(0, 10),
  raw: raw(id, created, resource)
})

/** Writes batches through a sink that is then closed (its last sync point persists the marks). */
const archive = (dir: string, ...batches: ReadonlyArray<ReadonlyArray<NdjsonSink.ArchiveRecord>>) =>
  Effect.scoped(Effect.gen(function*() {
    const sink = Context.get(yield* Layer.build(NdjsonSink.layer(dir)), NdjsonSink.NdjsonSink)
    for (const b of batches) yield* sink.writeBatch(b, [])
  }))

const markOf = (dir: string, day: string) =>
  Effect.promise(() => IdIndex.readMarks(path.join(dir, "state"))).pipe(Effect.map((m) => m[day]?.open))

describe("status from the index's marks", () => {
  it.effect("does not read a marked open file: overwritten in place, it still reports what was archived", () =>
    Effect.gen(function*() {
      const dir = tmpDir()
      yield* archive(
        dir,
        [rec("a", `${DAY}T01:00:00.000Z`), rec("b", `${DAY}T02:00:00.000Z`, "meetings")],
        [rec("c", `${DAY}T00:30:00+00:00`), rec("d", "2024-05-07T09:00:00.000Z")]
      )
      const file = path.join(dir, "events", `${DAY}.ndjson`)
      const before = yield* ArchiveStatus.readStatus(dir)
      assert.deepStrictEqual(before.byDay, [
        { day: DAY, total: 3, byResource: { messages: 2, meetings: 1 } },
        { day: "2024-05-07", total: 1, byResource: { messages: 1 } }
      ])
      assert.strictEqual(before.earliestCreated, `${DAY}T00:30:00+00:00`)
      assert.strictEqual(before.latestCreated, "2024-05-07T09:00:00.000Z")

      // Same inode, same length, other bytes: a status that read the file would count 0 events
      // and 3 unreadable lines.
      const size = fs.statSync(file).size
      const fd = fs.openSync(file, "r+")
      fs.writeSync(fd, Buffer.from("x".repeat(size - 3) + "\n\n\n"), 0, size, 0)
      fs.closeSync(fd)
      const after = yield* ArchiveStatus.readStatus(dir)
      assert.deepStrictEqual(after.byDay, before.byDay)
      assert.strictEqual(after.unreadableLines, 0)
      assert.strictEqual(after.earliestCreated, before.earliestCreated)

      // Lines past the mark (appended after the last sync point) are read, and only they.
      fs.appendFileSync(file, `${raw("e", `${DAY}T23:00:00.000Z`, "rooms")}\nnot json\n`)
      const tail = yield* ArchiveStatus.readStatus(dir)
      assert.deepStrictEqual(tail.byDay[0], { day: DAY, total: 4, byResource: { messages: 2, meetings: 1, rooms: 1 } })
      assert.strictEqual(tail.unreadableLines, 1)
      assert.strictEqual(tail.latestCreated, "2024-05-07T09:00:00.000Z")

      // A replaced file (another inode) is read whole: the mark no longer describes it.
      const replacement = `${file}.new`
      fs.writeFileSync(replacement, `${raw("z", `${DAY}T05:00:00.000Z`, "tabs")}\n`)
      fs.renameSync(replacement, file)
      const replaced = yield* ArchiveStatus.readStatus(dir)
      assert.deepStrictEqual(replaced.byDay[0], { day: DAY, total: 1, byResource: { tabs: 1 } })
    }))

  it.effect("beside a running archiver: files renamed or removed while it measures the archive are not an error", () =>
    Effect.gen(function*() {
      // A running archiver replaces `checkpoint.json` and `ids.json` through temporary files, and
      // sealing removes day files: names listed a moment ago vanish. Many of them, removed in the
      // reverse of the order they are listed in while `status` runs, so that the two meet.
      const dir = tmpDir()
      yield* archive(dir, [rec("a", `${DAY}T01:00:00.000Z`)])
      const state = path.join(dir, "state")
      for (let i = 0; i < 2000; i++) {
        fs.writeFileSync(path.join(state, `checkpoint.json.${i.toString(16).padStart(12, "0")}.tmp`), "{}")
      }
      const doomed = fs.readdirSync(state).filter((n) => n.endsWith(".tmp")).reverse()
      const remove = Effect.promise(async () => {
        for (const name of doomed) await fs.promises.unlink(path.join(state, name))
      })
      const [status] = yield* Effect.all([ArchiveStatus.readStatus(dir), remove], { concurrency: 2 })
      assert.deepStrictEqual(status.byDay, [{ day: DAY, total: 1, byResource: { messages: 1 } }])
      assert.isAbove(status.sizeBytes, 0)
    }))

  it.effect("a seal interrupted after recording its segment: the open file's sealed part is not counted twice", () =>
    Effect.gen(function*() {
      const dir = tmpDir()
      yield* archive(dir, [rec("a", `${DAY}T01:00:00.000Z`), rec("b", `${DAY}T02:00:00.000Z`, "rooms")])
      const file = path.join(dir, "events", `${DAY}.ndjson`)
      const content = fs.readFileSync(file)
      const start = Date.parse(`${DAY}T00:00:00.000Z`)
      yield* Seal.sealSettled({ dir, coverage: [[start, start + 86_400_000]], now: start + 10 * 86_400_000, settle: 0 })
      // The crash came before the open file was removed; one event arrived after it, too.
      fs.writeFileSync(file, Buffer.concat([content, Buffer.from(`${raw("c", `${DAY}T03:00:00.000Z`)}\n`)]))
      const s = yield* ArchiveStatus.readStatus(dir)
      assert.deepStrictEqual(s.byDay, [{ day: DAY, total: 3, byResource: { messages: 2, rooms: 1 } }])
      assert.strictEqual(s.sealed.events, 2)
    }))

  it.effect("a day sealed since its mark: the new open file is read whole, even under the old inode number", () =>
    Effect.gen(function*() {
      const dir = tmpDir()
      yield* archive(dir, [rec("a", `${DAY}T01:00:00.000Z`), rec("b", `${DAY}T02:00:00.000Z`)])
      const start = Date.parse(`${DAY}T00:00:00.000Z`)
      yield* Seal.sealSettled({ dir, coverage: [[start, start + 86_400_000]], now: start + 10 * 86_400_000, settle: 0 })
      // Events of the day arrived later, in a new open file, and the archiver stopped before its
      // index learnt of the seal. The file system reused the sealed file's inode number: the old
      // mark (two events) seems to cover the new file's start.
      const file = path.join(dir, "events", `${DAY}.ndjson`)
      assert.isFalse(fs.existsSync(file))
      fs.writeFileSync(
        file,
        [rec("c", `${DAY}T03:00:00.000Z`, "rooms"), rec("d", `${DAY}T04:00:00.000Z`), rec("e", `${DAY}T05:00:00.000Z`)]
          .map((r) => `${r.raw}\n`).join("")
      )
      const metaFile = path.join(dir, "state", "ids.json")
      const meta = JSON.parse(fs.readFileSync(metaFile, "utf8"))
      assert.isBelow(meta.days[DAY].open.size, fs.statSync(file).size)
      meta.days[DAY].open.ino = fs.statSync(file).ino
      fs.writeFileSync(metaFile, JSON.stringify(meta))
      const s = yield* ArchiveStatus.readStatus(dir)
      assert.deepStrictEqual(s.byDay, [{ day: DAY, total: 5, byResource: { messages: 4, rooms: 1 } }])
      assert.strictEqual(s.unreadableLines, 0)
    }))

  it.effect("the sink's marks grow with its appends, and reconcile's count of the same file agrees", () =>
    Effect.gen(function*() {
      const dir = tmpDir()
      yield* archive(dir, [rec("a", `${DAY}T01:00:00.000Z`)], [rec("b", `${DAY}T02:00:00.000Z`, "rooms")])
      const file = path.join(dir, "events", `${DAY}.ndjson`)
      const mark = yield* markOf(dir, DAY)
      assert.strictEqual(mark?.size, fs.statSync(file).size)
      assert.strictEqual(mark?.ino, fs.statSync(file).ino)
      assert.deepStrictEqual(mark?.tally?.byResource, { messages: 1, rooms: 1 })

      // Without an index, the next open rebuilds it from the files, counting them whole.
      for (const f of fs.readdirSync(path.join(dir, "state"))) {
        if (f.startsWith("ids")) fs.rmSync(path.join(dir, "state", f))
      }
      yield* archive(dir)
      assert.deepStrictEqual(yield* markOf(dir, DAY), mark)

      // A line appended behind the archive's back, then more through the sink: reconcile counts
      // the tail on open, the sink adds its own lines.
      fs.appendFileSync(file, `${raw("c", `${DAY}T03:00:00.000Z`)}\n`)
      yield* archive(dir, [rec("d", `${DAY}T04:00:00.000Z`, "tabs")])
      const grown = yield* markOf(dir, DAY)
      assert.strictEqual(grown?.size, fs.statSync(file).size)
      assert.deepStrictEqual(grown?.tally?.byResource, { messages: 2, rooms: 1, tabs: 1 })
      assert.strictEqual(grown?.tally?.events, 4)
      const s = yield* ArchiveStatus.readStatus(dir)
      assert.deepStrictEqual(s.byDay, [{ day: DAY, total: 4, byResource: { messages: 2, rooms: 1, tabs: 1 } }])
    }))
})

describe("readers beside a seal", () => {
  /**
   * An archive of `days` days sealed while `read` runs in a loop; every reading is checked by
   * `check`. Sealing links a day's segment, records it in the manifest, then removes the open
   * file: a reader between those steps must still see each event once. The first half of the days
   * were sealed before and have late events (more bytes than their first segment) in their open
   * file; the rest have only an open file. On the real clock: a reader that raced a seal may wait
   * for it.
   */
  const whileSealing = <A>(read: (dir: string) => Effect.Effect<A, unknown>, check: (a: A, raws: ReadonlyArray<string>) => void) =>
    Effect.gen(function*() {
      const dir = tmpDir()
      const days = 40
      const start = Date.parse(`${DAY}T00:00:00.000Z`)
      const dayOf = (k: number) => new Date(start + k * 86_400_000).toISOString().slice(0, 10)
      const events = Array.from({ length: days * 3 }, (_, i) => [`e${i}`, `${dayOf(i % days)}T0${i % 7}:00:00.000Z`] as const)
      const late = Array.from({ length: days * 2 }, (_, i) => [`late${i}`, `${dayOf(i % (days / 2))}T1${i % 7}:00:00.000Z`] as const)
      const raws = [...events, ...late].map(([id, created]) => raw(id, created))
      yield* archive(dir, events.map(([id, created]) => rec(id, created)))
      const half = start + (days / 2) * 86_400_000
      yield* Seal.sealSettled({ dir, coverage: [[start, half]], now: start + 99 * 86_400_000, settle: 0 })
      yield* archive(dir, late.map(([id, created]) => rec(id, created)))
      let sealing = true
      const seal = Seal.sealSettled({
        dir,
        coverage: [[start, start + days * 86_400_000]],
        now: start + 99 * 86_400_000,
        settle: 0,
        // Each step held open a little, as on a slow disk, so that readings fall between the
        // segment's link, its record and the open file's removal.
        onStep: () => new Promise((resolve) => setTimeout(resolve, 3))
      }).pipe(Effect.ensuring(Effect.sync(() => void (sealing = false))))
      let readings = 0
      const watch = Effect.gen(function*() {
        while (sealing) {
          check(yield* read(dir), raws)
          readings++
          yield* Effect.yieldNow()
        }
      })
      const [sealed] = yield* Effect.all([seal, watch], { concurrency: 2 })
      assert.strictEqual(sealed.sealed.length, days)
      // At least one reading began while days were being sealed (a verify that raced one waits
      // for it to end, so it may be the only one).
      assert.isAtLeast(readings, 1, "the reader ran while the seal did")
    })

  it.live("status counts each event once, never a day twice or not at all", () =>
    whileSealing(ArchiveStatus.readStatus, (s, raws) => {
      assert.deepStrictEqual([s.totalEvents, s.byDay.length], [raws.length, 40])
    }))

  it.live("verify finds nothing wrong, and each event once", () =>
    whileSealing(
      (dir) => Verify.verify({ dir }),
      (r, raws) => {
        // These archives have no checkpoint (the sink alone wrote them): the one problem expected.
        assert.deepStrictEqual(r.problems.filter((p) => p.kind !== "checkpoint"), [])
        assert.strictEqual(r.events, raws.length)
      }
    ))

  it.live("query lists each event once", () =>
    whileSealing(
      (dir) => {
        const lines: Array<string> = []
        return Query.run(dir, {}, (line) => (lines.push(line.toString("utf8")), true)).pipe(Effect.as(lines))
      },
      (lines, raws) => assert.deepStrictEqual([...lines].sort(), [...raws].sort())
    ))
})
