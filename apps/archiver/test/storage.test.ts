import { spawnSync } from "node:child_process"
import * as fs from "node:fs"
import * as os from "node:os"
import * as path from "node:path"
import * as zlib from "node:zlib"
import { assert, describe, it } from "@effect/vitest"
import * as Cause from "effect/Cause"
import * as Effect from "effect/Effect"
import * as Exit from "effect/Exit"
import * as HashMap from "effect/HashMap"
import * as Layer from "effect/Layer"
import * as Logger from "effect/Logger"
import * as LogLevel from "effect/LogLevel"
import * as Option from "effect/Option"
import * as TestClock from "effect/TestClock"
import * as ArchiveLock from "../src/ArchiveLock.js"
import * as ArchiveStatus from "../src/ArchiveStatus.js"
import * as Checkpoint from "../src/Checkpoint.js"
import * as LastError from "../src/LastError.js"
import * as NdjsonSink from "../src/NdjsonSink.js"
import { dayStorage } from "../src/internal/archiveFs.js"
import { tmpArchives } from "./support/tmpArchive.js"

const tmpDir = tmpArchives("archiver-storage-")

const raw = (id: string, created: string, resource = "messages") =>
  `{"id":"${id}","resource":"${resource}","type":"created","actorId":"a1","created":"${created}","data":{"id":"m-${id}"}}`
const rec = (id: string, day: string, resource = "messages"): NdjsonSink.ArchiveRecord => ({
  id,
  day,
  raw: raw(id, `${day}T10:00:00.000Z`, resource)
})
const read = (file: string) => fs.readFileSync(file, "utf8")
/** What sealing does to a day, done by hand: its lines now live in a gzip segment only. Returns the open file's path. */
const sealByHand = (dir: string, day: string) => {
  const open = path.join(dir, `events/${day}.ndjson`)
  fs.writeFileSync(path.join(dir, `events/${day}.ndjson.gz`), zlib.gzipSync(fs.readFileSync(open)), { mode: 0o600 })
  fs.rmSync(open)
  return open
}
const idsIn = (file: string) =>
  read(file).split("\n").filter((l) => l !== "").map((l) => (JSON.parse(l) as { id: string }).id)
const modeOf = (p: string) => fs.statSync(p).mode & 0o777

/** Runs `self` with a logger that records messages, returning both. */
const withLogs = <A, E, R>(self: Effect.Effect<A, E, R>) => {
  const logs: Array<string> = []
  const logger = Logger.make(({ message }) => {
    logs.push((Array.isArray(message) ? message : [message]).map(String).join(" "))
  })
  return self.pipe(
    Effect.provide(Logger.replace(Logger.defaultLogger, logger)),
    Effect.map((a) => [a, logs] as const)
  )
}

const defectMessage = <A, E>(exit: Exit.Exit<A, E>): string => {
  assert.isTrue(Exit.isFailure(exit), "expected a failure")
  if (Exit.isSuccess(exit)) return ""
  const defect = Cause.dieOption(exit.cause)
  assert.isTrue(Option.isSome(defect), "expected a defect")
  return String(Option.getOrThrow(defect))
}

describe("NdjsonSink: exactly once", () => {
  it.effect("skips ids repeated inside a batch and across batches", () =>
    Effect.gen(function*() {
      const dir = tmpDir()
      const sink = yield* NdjsonSink.make(dir)
      const b1 = [rec("a", "2024-01-01"), rec("b", "2024-01-01"), rec("a", "2024-01-01")]
      const r1 = yield* sink.writeBatch(b1, [])
      assert.deepStrictEqual(r1, { written: 2, appended: [b1[0]!, b1[1]!], duplicates: 1, quarantined: 0, quarantineDuplicates: 0, variants: 0, movedDay: 0 })
      const b2 = [rec("b", "2024-01-01"), rec("c", "2024-01-01"), rec("d", "2024-01-02")]
      const r2 = yield* sink.writeBatch(b2, [])
      // The records appended are the batch's own objects, day by day.
      assert.deepStrictEqual(r2, { written: 2, appended: [b2[1]!, b2[2]!], duplicates: 1, quarantined: 0, quarantineDuplicates: 0, variants: 0, movedDay: 0 })
      assert.strictEqual(r2.appended[0], b2[1])
      assert.deepStrictEqual(idsIn(path.join(dir, "events/2024-01-01.ndjson")), ["a", "b", "c"])
      assert.deepStrictEqual(idsIn(path.join(dir, "events/2024-01-02.ndjson")), ["d"])
    }))

  it.effect("an id served again with different text is not dropped: the variant goes to quarantine", () =>
    Effect.gen(function*() {
      const dir = tmpDir()
      const original = `{"id":"v1","created":"2024-01-01T10:00:00.000Z","data":{"text":"first"}}`
      const altered = `{"id":"v1","created":"2024-01-01T10:00:00.000Z","data":{"text":"edited"}}`
      const first = yield* NdjsonSink.make(dir)
      yield* first.writeBatch([{ id: "v1", day: "2024-01-01", raw: original }], [])
      // A fresh sink (a restart) learns the archived copy's digest from disk.
      const sink = yield* NdjsonSink.make(dir)
      const r = yield* sink.writeBatch([{ id: "v1", day: "2024-01-01", raw: original }, { id: "v1", day: "2024-01-01", raw: altered }], [])
      assert.deepStrictEqual(r, { written: 0, appended: [], duplicates: 1, quarantined: 1, quarantineDuplicates: 0, variants: 1, movedDay: 0 })
      assert.deepStrictEqual(read(path.join(dir, "events/2024-01-01.ndjson")), `${original}\n`)
      const q = fs.readdirSync(path.join(dir, "quarantine")).flatMap((f) =>
        read(path.join(dir, "quarantine", f)).split("\n").filter((l) => l !== "").map((l) => JSON.parse(l) as { raw: string; reason: string; id: string })
      )
      assert.deepStrictEqual(q.map((x) => [x.id, x.raw]), [["v1", altered]])
      assert.match(q[0]!.reason, /again with different content/)
      // Served once more: nothing new anywhere.
      const again = yield* sink.writeBatch([{ id: "v1", day: "2024-01-01", raw: altered }], [])
      assert.deepStrictEqual([again.written, again.quarantined, again.quarantineDuplicates, again.variants], [0, 0, 1, 1])
    }))

  it.effect("within one process, a repeat is judged on the archived bytes read back: equal is a duplicate, any change a variant", () =>
    Effect.gen(function*() {
      const dir = tmpDir()
      const line = (text: string) => `{"id":"p1","created":"2024-01-01T10:00:00.000Z","data":{"text":"${text}"}}`
      const bytes = (text: string) => new TextEncoder().encode(line(text))
      const sink = yield* NdjsonSink.make(dir)
      yield* sink.writeBatch([rec("a", "2024-01-01"), { id: "p1", day: "2024-01-01", bytes: bytes("aaaa") }], [])
      const same = yield* sink.writeBatch([{ id: "p1", day: "2024-01-01", bytes: bytes("aaaa") }], [])
      assert.deepStrictEqual([same.written, same.duplicates, same.variants], [0, 1, 0])
      // The same length, one byte changed; then a different length: both variants, never dropped.
      const changed = yield* sink.writeBatch([{ id: "p1", day: "2024-01-01", bytes: bytes("aaab") }], [])
      assert.deepStrictEqual([changed.written, changed.duplicates, changed.variants, changed.quarantined], [0, 0, 1, 1])
      const longer = yield* sink.writeBatch([{ id: "p1", day: "2024-01-01", bytes: bytes("aaaaa") }], [])
      assert.deepStrictEqual([longer.written, longer.duplicates, longer.variants, longer.quarantined], [0, 0, 1, 1])
      assert.deepStrictEqual(read(path.join(dir, "events/2024-01-01.ndjson")), `${rec("a", "2024-01-01").raw}\n${line("aaaa")}\n`)
    }))

  it.effect("a day whose open file was sealed away meanwhile is read again: a repeat stays a duplicate", () =>
    Effect.gen(function*() {
      const dir = tmpDir()
      const sink = yield* NdjsonSink.make(dir)
      yield* sink.writeBatch([rec("a", "2024-01-01"), rec("b", "2024-01-01")], [])
      const open = sealByHand(dir, "2024-01-01")
      const r = yield* sink.writeBatch([rec("b", "2024-01-01"), rec("c", "2024-01-01")], [])
      assert.deepStrictEqual([r.written, r.duplicates, r.variants], [1, 1, 0])
      assert.deepStrictEqual(idsIn(open), ["c"])
    }))

  it.effect("a day sealed away and begun again (perhaps under the old inode number) keeps telling repeats from variants", () =>
    Effect.gen(function*() {
      const dir = tmpDir()
      const sink = yield* NdjsonSink.make(dir)
      yield* sink.writeBatch([rec("a", "2024-01-01"), rec("b", "2024-01-01")], [])
      const open = sealByHand(dir, "2024-01-01")
      // A new open file for the day (file systems such as ext4 often give it the old inode
      // number): where "a" and "b" lay in the old one now holds other lines.
      const first = yield* sink.writeBatch([rec("c", "2024-01-01", "rooms")], [])
      assert.strictEqual(first.written, 1)
      const r = yield* sink.writeBatch([rec("a", "2024-01-01"), rec("b", "2024-01-01"), rec("c", "2024-01-01", "rooms")], [])
      assert.deepStrictEqual([r.written, r.duplicates, r.variants], [0, 3, 0])
      assert.deepStrictEqual(idsIn(open), ["c"])
    }))

  it.effect("skips ids already archived by an earlier sink (restart, re-run)", () =>
    Effect.gen(function*() {
      const dir = tmpDir()
      const first = yield* NdjsonSink.make(dir)
      yield* first.writeBatch([rec("a", "2024-01-01"), rec("b", "2024-01-01")], [])
      const second = yield* NdjsonSink.make(dir)
      const r = yield* second.writeBatch([rec("b", "2024-01-01"), rec("c", "2024-01-01"), rec("a", "2024-01-01")], [])
      assert.strictEqual(r.written, 1)
      assert.strictEqual(r.duplicates, 2)
      assert.deepStrictEqual(idsIn(path.join(dir, "events/2024-01-01.ndjson")), ["a", "b", "c"])
    }))

  it.effect("reloads an evicted day from disk, so eviction never lets a duplicate in", () =>
    Effect.gen(function*() {
      const dir = tmpDir()
      const sink = yield* NdjsonSink.make(dir, { cachedDays: 1 })
      yield* sink.writeBatch([rec("a", "2024-01-01")], [])
      yield* sink.writeBatch([rec("b", "2024-01-02")], []) // evicts 2024-01-01
      // An id only the file knows about: a stale cache would let it in again.
      fs.appendFileSync(path.join(dir, "events/2024-01-01.ndjson"), `${rec("x", "2024-01-01").raw}\n`)
      const r = yield* sink.writeBatch([rec("a", "2024-01-01"), rec("x", "2024-01-01"), rec("y", "2024-01-01")], [])
      assert.deepStrictEqual([r.written, r.duplicates], [1, 2])
      assert.deepStrictEqual(idsIn(path.join(dir, "events/2024-01-01.ndjson")), ["a", "x", "y"])
    }))

  it.effect("reuses an evicted day's set for the next day without carrying its ids over", () =>
    Effect.gen(function*() {
      const dir = tmpDir()
      const sink = yield* NdjsonSink.make(dir, { cachedDays: 1 })
      yield* sink.writeBatch([rec("a", "2024-01-01"), rec("b", "2024-01-01")], [])
      // 2024-01-02 is read into 2024-01-01's set, emptied: "a" there is an event moved to another
      // day (the index knows it), not a repeat of a line at some position in 2024-01-02's file.
      const r = yield* sink.writeBatch([rec("c", "2024-01-02"), rec("a", "2024-01-02")], [])
      assert.deepStrictEqual([r.written, r.duplicates, r.variants, r.movedDay], [1, 0, 1, 1])
      // And back: 2024-01-01 is read again from its file, with both of its ids.
      const back = yield* sink.writeBatch([rec("a", "2024-01-01"), rec("b", "2024-01-01"), rec("d", "2024-01-01")], [])
      assert.deepStrictEqual([back.written, back.duplicates, back.variants], [1, 2, 0])
      assert.deepStrictEqual(idsIn(path.join(dir, "events/2024-01-01.ndjson")), ["a", "b", "d"])
      assert.deepStrictEqual(idsIn(path.join(dir, "events/2024-01-02.ndjson")), ["c"])
    }))

  it.effect("keeps every day a batch touches (up to 8): a long window listed in no order reads each day once", () =>
    Effect.gen(function*() {
      const dir = tmpDir()
      const reads: Array<string> = []
      const logger = Logger.make(({ annotations, message }) => {
        const text = (Array.isArray(message) ? message : [message]).map(String).join(" ")
        if (text.startsWith("Read a day's ids")) reads.push(String(HashMap.unsafeGet(annotations, "day")))
      })
      const sink = yield* NdjsonSink.make(dir)
      const days = (n: number) => Array.from({ length: n }, (_, i) => `2024-02-${String(i + 1).padStart(2, "0")}`)
      const batch = (k: number, ds: ReadonlyArray<string>) => sink.writeBatch(ds.map((d) => rec(`e${k}-${d}`, d)), [])
      const run = <A, E>(self: Effect.Effect<A, E>) =>
        Effect.provide(self, Layer.merge(Logger.replace(Logger.defaultLogger, logger), Logger.minimumLogLevel(LogLevel.Debug)))
      // Five days in each of three batches, in different orders: each day read once.
      for (let k = 0; k < 3; k++) yield* run(batch(k, k % 2 === 0 ? days(5) : [...days(5)].reverse()))
      assert.deepStrictEqual([...reads].sort(), days(5))
      // Twelve days a batch: only 8 are kept, so the second batch reads days again (memory stays bounded).
      reads.length = 0
      for (let k = 3; k < 5; k++) yield* run(batch(k, days(12)))
      assert.isAbove(reads.length, 12)
      assert.strictEqual(idsIn(path.join(dir, "events/2024-02-01.ndjson")).length, 5)
    }))

  it.effect("keeps the raw text byte for byte", () =>
    Effect.gen(function*() {
      const dir = tmpDir()
      const sink = yield* NdjsonSink.make(dir)
      const texts = [
        // Offset timestamp, spaces after colons, non-alphabetical key order, unicode, escapes.
        `{"id": "e1", "created": "2015-10-18T14:26:16+00:00", "resource": "messages", "data": {"text": "héllo ✓ 😀 \\"q\\" \\\\ \\n\\t \\u0041 \u2028 end"}, "appId": "null"}`,
        // id not the first key.
        `{"resource":"memberships","type":"deleted","created":"2015-10-18T23:59:59.999Z","id":"e2","data":{}}`
      ]
      const r = yield* sink.writeBatch(texts.map((t, i) => ({ id: `e${i + 1}`, day: "2015-10-18", raw: t })), [])
      assert.strictEqual(r.written, 2)
      const bytes = fs.readFileSync(path.join(dir, "events/2015-10-18.ndjson"))
      assert.isTrue(bytes.equals(Buffer.from(`${texts[0]}\n${texts[1]}\n`, "utf8")))
      // And ids are read back from such lines: both are duplicates after a restart.
      const again = yield* NdjsonSink.make(dir)
      const r2 = yield* again.writeBatch(texts.map((t, i) => ({ id: `e${i + 1}`, day: "2015-10-18", raw: t })), [])
      assert.deepStrictEqual([r2.written, r2.duplicates], [0, 2])
    }))

  it.effect("rejects a raw text with a line break, a bad day or a mismatched id, writing nothing", () =>
    Effect.gen(function*() {
      const dir = tmpDir()
      const sink = yield* NdjsonSink.make(dir)
      const good = rec("ok", "2024-01-01")
      const cases: Array<[NdjsonSink.ArchiveRecord, RegExp]> = [
        [{ id: "n", day: "2024-01-01", raw: `{"id":"n",\n"x":1}` }, /line break/],
        [{ id: "r", day: "2024-01-01", raw: `{"id":"r",\r"x":1}` }, /line break/],
        [{ ...rec("d", "2024-01-01"), day: "2024-1-1" }, /YYYY-MM-DD/],
        [{ ...rec("d", "2024-01-01"), day: "2024-02-30" }, /YYYY-MM-DD/],
        [{ id: "other", day: "2024-01-01", raw: raw("m", "2024-01-01T00:00:00Z") }, /it is "other", a reader of its line finds "m"/]
      ]
      for (const [bad, expected] of cases) {
        const exit = yield* Effect.exit(sink.writeBatch([good, bad], []))
        assert.match(defectMessage(exit), expected)
      }
      assert.isFalse(fs.existsSync(path.join(dir, "events/2024-01-01.ndjson")))
    }))
})

describe("NdjsonSink: quarantine", () => {
  it.effect("writes one JSON line per item, by quarantine day, deduplicated by raw text", () =>
    Effect.gen(function*() {
      const dir = tmpDir()
      yield* TestClock.setTime(Date.parse("2024-05-06T07:08:09.010Z"))
      const sink = yield* NdjsonSink.make(dir)
      const weird = `{"id":"q1","created":"not a date"}\n{trailing`
      const r1 = yield* sink.writeBatch([], [
        { raw: weird, reason: "bad created", id: "q1" },
        { raw: "[1,2]", reason: "not an object" },
        { raw: weird, reason: "again" }
      ])
      assert.deepStrictEqual([r1.quarantined, r1.quarantineDuplicates], [2, 1])
      const file = path.join(dir, "quarantine/2024-05-06.ndjson")
      const lines = read(file).split("\n")
      assert.strictEqual(lines.length, 3)
      assert.strictEqual(lines[2], "")
      assert.deepStrictEqual(JSON.parse(lines[0]!), {
        quarantinedAt: "2024-05-06T07:08:09.010Z",
        reason: "bad created",
        id: "q1",
        raw: weird
      })
      assert.deepStrictEqual(JSON.parse(lines[1]!), {
        quarantinedAt: "2024-05-06T07:08:09.010Z",
        reason: "not an object",
        raw: "[1,2]"
      })
      // Another day, a new sink: still recognised as already quarantined.
      yield* TestClock.adjust("2 days")
      const again = yield* NdjsonSink.make(dir)
      const r2 = yield* again.writeBatch([], [{ raw: weird, reason: "x" }, { raw: "{}", reason: "y" }])
      assert.deepStrictEqual([r2.quarantined, r2.quarantineDuplicates], [1, 1])
      assert.strictEqual(read(path.join(dir, "quarantine/2024-05-08.ndjson")).split("\n").length, 2)
    }))
})

describe("NdjsonSink: crash repair", () => {
  it.effect("cuts a torn last line on start and logs it", () =>
    Effect.gen(function*() {
      const dir = tmpDir()
      const sink = yield* NdjsonSink.make(dir)
      yield* sink.writeBatch([rec("a", "2024-01-01")], [{ raw: "x", reason: "r" }])
      const events = path.join(dir, "events/2024-01-01.ndjson")
      const whole = read(events)
      fs.appendFileSync(events, `{"id":"b","resource":"mess`)
      // A torn line longer than the tail-reading chunk, and a file that is nothing but a torn line.
      const day2 = path.join(dir, "events/2024-01-02.ndjson")
      fs.writeFileSync(day2, `${raw("c", "2024-01-02T00:00:00Z")}\n{"id":"d","pad":"${"z".repeat(200_000)}`)
      const day3 = path.join(dir, "events/2024-01-03.ndjson")
      fs.writeFileSync(day3, `{"id":"e"`)
      const quarantine = fs.readdirSync(path.join(dir, "quarantine")).map((f) => path.join(dir, "quarantine", f))[0]!
      const qWhole = read(quarantine)
      fs.appendFileSync(quarantine, `{"quarantinedAt":"2024`)

      const [reopened, logs] = yield* withLogs(NdjsonSink.make(dir))
      assert.strictEqual(read(events), whole)
      assert.strictEqual(read(day2), `${raw("c", "2024-01-02T00:00:00Z")}\n`)
      assert.strictEqual(read(day3), "")
      assert.strictEqual(read(quarantine), qWhole)
      assert.strictEqual(logs.filter((l) => l.includes("torn")).length, 4)
      assert.isTrue(logs.some((l) => l.includes(events) && l.includes("(26 bytes)")))
      // The files planted with the umask's 0644 are reported before being tightened.
      assert.isTrue(logs.some((l) => l.includes(day2) && l.includes("had mode 0644")))

      // The torn event is fetched again after the crash and written whole.
      const r = yield* reopened.writeBatch([rec("a", "2024-01-01"), rec("b", "2024-01-01")], [])
      assert.deepStrictEqual([r.written, r.duplicates], [1, 1])
      assert.deepStrictEqual(idsIn(events), ["a", "b"])
    }))

  it.effect("never glues a new line onto a torn tail that appeared while running", () =>
    Effect.gen(function*() {
      const dir = tmpDir()
      const sink = yield* NdjsonSink.make(dir)
      yield* sink.writeBatch([rec("a", "2024-01-01")], [])
      const events = path.join(dir, "events/2024-01-01.ndjson")
      fs.appendFileSync(events, `{"id":"torn","x":`)
      yield* sink.writeBatch([rec("b", "2024-01-01")], [])
      assert.deepStrictEqual(idsIn(events), ["a", "b"])
    }))
})

describe("NdjsonSink: write failures", () => {
  it.effect("refuses a day file planted as a symbolic link (here to /dev/full), writing nothing through it", () =>
    Effect.gen(function*() {
      const dir = tmpDir()
      const sink = yield* NdjsonSink.make(dir)
      const file = path.join(dir, "events/2024-01-01.ndjson")
      fs.symlinkSync("/dev/full", file)
      const error = yield* Effect.flip(sink.writeBatch([rec("a", "2024-01-01")], []))
      assert.strictEqual(error._tag, "ArchiveUnsafe")
      assert.strictEqual(error.path, file)
      assert.match(error.message, /2024-01-01\.ndjson is a symbolic link/)
      fs.unlinkSync(file)
      const r = yield* sink.writeBatch([rec("a", "2024-01-01")], [])
      assert.deepStrictEqual([r.written, r.duplicates], [1, 0])
      assert.deepStrictEqual(idsIn(file), ["a"])
    }))

  it.effect("reports a file where a directory should be as ENOTDIR", () =>
    Effect.gen(function*() {
      const dir = tmpDir()
      const sink = yield* NdjsonSink.make(dir)
      fs.rmSync(path.join(dir, "events"), { recursive: true })
      fs.writeFileSync(path.join(dir, "events"), "not a directory")
      const error = yield* Effect.flip(sink.writeBatch([rec("a", "2024-01-01")], []))
      assert.strictEqual(error._tag === "ArchiveWriteError" ? error.code : error._tag, "ENOTDIR")
      assert.match(error.message, /^Not a directory/)
      // Opening such an archive fails the same way.
      const onOpen = yield* Effect.flip(NdjsonSink.make(dir))
      assert.strictEqual(onOpen._tag === "ArchiveWriteError" ? onOpen.code : onOpen._tag, "ENOTDIR")
      assert.strictEqual(onOpen.path, path.join(dir, "events"))
    }))
})

describe("file modes", () => {
  const withUmask = (mask: number) =>
    Effect.acquireRelease(Effect.sync(() => process.umask(mask)), (old) => Effect.sync(() => process.umask(old)))

  // Checks each file right after it is created: a later open would tighten it and hide a bug.
  const writeEverything = (dir: string) =>
    Effect.gen(function*() {
      const is600 = (p: string) => assert.strictEqual(modeOf(path.join(dir, p)).toString(8), "600", p)
      yield* ArchiveLock.acquire(dir)
      is600("state/archiver.lock")
      const cp = yield* Checkpoint.make(dir)
      yield* cp.save({ version: 1, scope: {}, covered: [], updatedAt: Date.parse("2024-01-01T00:00:00.000Z") })
      is600("state/checkpoint.json")
      yield* cp.recordError("boom")
      is600("state/last-error.json")
      // A sync point after each batch, so that the id index's files are written too.
      const sink = yield* NdjsonSink.make(dir, { indexSyncEvery: 1 })
      yield* sink.writeBatch([rec("a", "2024-01-01")], [{ raw: "?", reason: "r" }])
      is600("events/2024-01-01.ndjson")
      is600("state/ids-1.run")
      is600("state/ids.json")
      is600(path.join("quarantine", fs.readdirSync(path.join(dir, "quarantine"))[0]!))
    })

  const assertModes = (dir: string) => {
    for (const d of [dir, "events", "quarantine", "state"].map((p) => path.resolve(dir, p))) {
      assert.strictEqual(modeOf(d).toString(8), "700", d)
    }
    for (const sub of ["events", "quarantine", "state"]) {
      for (const f of fs.readdirSync(path.join(dir, sub))) {
        assert.strictEqual(modeOf(path.join(dir, sub, f)).toString(8), "600", f)
      }
    }
  }

  for (const mask of [0, 0o277]) {
    it.scoped(`creates directories 0700 and files 0600 under umask ${mask.toString(8).padStart(3, "0")}`, () =>
      Effect.gen(function*() {
        const dir = tmpDir()
        yield* withUmask(mask)
        yield* writeEverything(dir)
        assert.deepStrictEqual(fs.readdirSync(path.join(dir, "state")).sort(), [
          "archiver.lock",
          "checkpoint.json",
          "ids-1.run",
          "ids.json",
          "last-error.json"
        ])
        assertModes(dir)
      }))
  }

  it.effect("tightens an existing archive with looser modes when it is opened", () =>
    Effect.gen(function*() {
      const dir = tmpDir()
      fs.mkdirSync(path.join(dir, "events"), { recursive: true })
      fs.writeFileSync(path.join(dir, "events/2024-01-01.ndjson"), `${raw("a", "2024-01-01T00:00:00Z")}\n`)
      fs.chmodSync(path.join(dir, "events/2024-01-01.ndjson"), 0o644)
      fs.chmodSync(path.join(dir, "events"), 0o755)
      fs.chmodSync(dir, 0o777)
      yield* NdjsonSink.make(dir)
      assertModes(dir)
    }))
})

describe("Checkpoint", () => {
  const state: Checkpoint.CheckpointState = {
    version: 1,
    scope: { resource: "messages" },
    covered: [{ from: Date.parse("2024-01-01T00:00:00.000Z"), through: Date.parse("2024-01-02T00:00:00.000Z") }],
    updatedAt: Date.parse("2024-01-02T00:00:05.000Z"),
    live: { through: Date.parse("2024-01-02T00:00:00.000Z") },
    runs: 3
  }

  it.effect("has none at first, then loads what was saved", () =>
    Effect.gen(function*() {
      const dir = tmpDir()
      const cp = yield* Checkpoint.make(dir)
      assert.isTrue(Option.isNone(yield* cp.load))
      yield* cp.save(state)
      assert.deepStrictEqual(yield* cp.load, Option.some(state))
      const next = { ...state, covered: [{ ...state.covered[0]!, through: Date.parse("2024-01-03T00:00:00.000Z") }] }
      yield* cp.save(next)
      assert.deepStrictEqual(yield* Checkpoint.loadCheckpoint(dir), Option.some(next))
      assert.deepStrictEqual(fs.readdirSync(path.join(dir, "state")), ["checkpoint.json"])
      assert.strictEqual(modeOf(path.join(dir, "state/checkpoint.json")), 0o600)
    }))

  it.effect("ignores a leftover .tmp from a save cut short, and removes it on open", () =>
    Effect.gen(function*() {
      const dir = tmpDir()
      const cp = yield* Checkpoint.make(dir)
      yield* cp.save(state)
      const tmp = path.join(dir, "state/checkpoint.json.tmp")
      fs.writeFileSync(tmp, `{"version":1,"scope":{},"cov`)
      assert.deepStrictEqual(yield* Checkpoint.loadCheckpoint(dir), Option.some(state))
      yield* Checkpoint.make(dir)
      assert.isFalse(fs.existsSync(tmp))
    }))

  it.effect("reports a corrupt or invalid checkpoint instead of starting over", () =>
    Effect.gen(function*() {
      const dir = tmpDir()
      const cp = yield* Checkpoint.make(dir)
      const file = path.join(dir, "state/checkpoint.json")
      const cases: Array<[string, RegExp]> = [
        ["", /not valid JSON/],
        [`{"version":1,"scope":{},"cove`, /not valid JSON/],
        [JSON.stringify({ ...Checkpoint.toJson(state), version: 2 }), /not a valid checkpoint/],
        [JSON.stringify({ ...Checkpoint.toJson(state), covered: [{ from: "2024-02-01T00:00:00Z", through: "2024-01-01T00:00:00Z" }] }), /after/],
        [JSON.stringify({ ...Checkpoint.toJson(state), updatedAt: "yesterday" }), /ISO-8601/]
      ]
      for (const [text, expected] of cases) {
        fs.writeFileSync(file, text)
        const error = yield* Effect.flip(cp.load)
        assert.strictEqual(error._tag, "CheckpointError")
        assert.strictEqual(error.path, file)
        assert.match(error.message, expected)
        assert.strictEqual(read(file), text, "the corrupt file is left for the user")
      }
    }))

  it.effect("records, reads and clears the last error", () =>
    Effect.gen(function*() {
      const dir = tmpDir()
      yield* TestClock.setTime(Date.parse("2024-03-04T05:06:07.000Z"))
      const cp = yield* Checkpoint.make(dir)
      assert.isTrue(Option.isNone(yield* cp.readLastError))
      yield* cp.recordError("No space left on device while appending to x")
      // ISO-8601 in the file, epoch millis in memory, the time from the Clock.
      assert.deepStrictEqual(JSON.parse(read(path.join(dir, "state/last-error.json"))), {
        at: "2024-03-04T05:06:07.000Z",
        message: "No space left on device while appending to x"
      })
      assert.deepStrictEqual(
        yield* LastError.readLastError(dir),
        Option.some({ at: Date.parse("2024-03-04T05:06:07.000Z"), message: "No space left on device while appending to x" })
      )
      yield* cp.clearLastError
      assert.isTrue(Option.isNone(yield* cp.readLastError))
      assert.isFalse(fs.existsSync(path.join(dir, "state/last-error.json")))
    }))
})

describe("ArchiveLock", () => {
  const lockFile = (dir: string) => path.join(dir, "state/archiver.lock")

  it.effect("decodes the last error's time once, whatever ISO-8601 offset an older file used", () =>
    Effect.gen(function*() {
      const dir = tmpDir()
      fs.mkdirSync(path.join(dir, "state"), { recursive: true })
      const file = path.join(dir, "state/last-error.json")
      fs.writeFileSync(file, JSON.stringify({ at: "2024-03-04T07:06:07+02", message: "m" }))
      assert.deepStrictEqual(yield* LastError.readLastError(dir), Option.some({ at: Date.parse("2024-03-04T05:06:07Z"), message: "m" }))
      // Not an instant: informational only, so read as none rather than failing `status`.
      fs.writeFileSync(file, JSON.stringify({ at: "yesterday", message: "m" }))
      assert.isTrue(Option.isNone(yield* LastError.readLastError(dir)))
    }))

  it.effect("records when the lock was taken from the Clock, ISO-8601 in the file and millis in memory", () =>
    Effect.gen(function*() {
      const dir = tmpDir()
      yield* TestClock.setTime(Date.parse("2024-03-04T05:06:07.000Z"))
      yield* Effect.scoped(Effect.gen(function*() {
        yield* ArchiveLock.acquire(dir)
        assert.strictEqual(JSON.parse(read(lockFile(dir))).startedAt, "2024-03-04T05:06:07.000Z")
        const info = yield* ArchiveLock.readLock(dir)
        assert.deepStrictEqual(Option.map(info, (i) => i.startedAt), Option.some(Date.parse("2024-03-04T05:06:07.000Z")))
        const error = yield* Effect.flip(Effect.scoped(ArchiveLock.acquire(dir)))
        assert.strictEqual(error._tag === "ArchiveLocked" ? error.startedAt : undefined, "2024-03-04T05:06:07.000Z")
      }))
    }))

  it("reads a lock whose time is damaged as a lock all the same: only the pid decides", () => {
    const host = os.hostname()
    assert.deepStrictEqual(ArchiveLock.parseLockInfo(JSON.stringify({ pid: 42, startedAt: "2024-03-04T07:06:07+02:00", host })), {
      pid: 42,
      startedAt: Date.parse("2024-03-04T05:06:07Z"),
      host
    })
    assert.deepStrictEqual(ArchiveLock.parseLockInfo(JSON.stringify({ pid: 42, startedAt: "x", host: "h" })), { pid: 42, startedAt: undefined, host: "h" })
    assert.deepStrictEqual(ArchiveLock.parseLockInfo(JSON.stringify({ pid: 42 })), { pid: 42, startedAt: undefined, host })
    for (const torn of ["", "{\"pid\":4", JSON.stringify({ pid: 0 }), JSON.stringify({ pid: 1.5 }), JSON.stringify({ pid: "42" }), "[]"]) {
      assert.isUndefined(ArchiveLock.parseLockInfo(torn), torn)
    }
  })

  it.effect("refuses a second archiver while the first holds the lock, and releases it on close", () =>
    Effect.gen(function*() {
      const dir = tmpDir()
      yield* Effect.scoped(Effect.gen(function*() {
        yield* ArchiveLock.acquire(dir)
        const held = JSON.parse(read(lockFile(dir))) as { pid: number; host: string; startedAt: string }
        assert.strictEqual(held.pid, process.pid)
        assert.strictEqual(held.host, os.hostname())
        const error = yield* Effect.flip(Effect.scoped(ArchiveLock.acquire(dir)))
        assert.strictEqual(error._tag, "ArchiveLocked")
        if (error._tag !== "ArchiveLocked") return
        assert.strictEqual(error.pid, process.pid)
        assert.include(error.message, `Another archiver (pid ${process.pid}, started ${held.startedAt})`)
        assert.include(error.message, "stop it first")
        assert.isTrue(fs.existsSync(lockFile(dir)), "a refused acquire leaves the holder's lock alone")
      }))
      assert.isFalse(fs.existsSync(lockFile(dir)))
      yield* Effect.scoped(ArchiveLock.acquire(dir))
    }))

  it.effect("takes over a lock whose process is dead, or that is empty or torn", () =>
    Effect.gen(function*() {
      const child = spawnSync(process.execPath, ["-e", ""])
      const deadPid = child.pid!
      assert.strictEqual(child.status, 0)
      const stale = [
        JSON.stringify({ pid: deadPid, startedAt: "2024-01-01T00:00:00.000Z", host: os.hostname() }),
        "",
        `{"pid":12`
      ]
      for (const text of stale) {
        const dir = tmpDir()
        fs.mkdirSync(path.join(dir, "state"), { recursive: true })
        fs.writeFileSync(lockFile(dir), text)
        // Old enough not to be a lock another archiver is still writing.
        fs.utimesSync(lockFile(dir), new Date(Date.now() - 60_000), new Date(Date.now() - 60_000))
        const [, logs] = yield* withLogs(Effect.scoped(Effect.gen(function*() {
          yield* ArchiveLock.acquire(dir)
          assert.strictEqual((JSON.parse(read(lockFile(dir))) as { pid: number }).pid, process.pid)
        })))
        assert.isTrue(logs.some((l) => l.includes("Taking over the stale lock")), text)
      }
    }))

  it.live("waits for a fresh empty lock to be written before judging it", () =>
    Effect.gen(function*() {
      const dir = tmpDir()
      fs.mkdirSync(path.join(dir, "state"), { recursive: true })
      fs.writeFileSync(lockFile(dir), "")
      // Another archiver finishes writing its lock 300 ms later: it must win.
      const other = JSON.stringify({ pid: process.ppid, startedAt: "2024-01-01T00:00:00.000Z", host: os.hostname() })
      setTimeout(() => fs.writeFileSync(lockFile(dir), other), 300)
      const error = yield* Effect.flip(Effect.scoped(ArchiveLock.acquire(dir)))
      assert.strictEqual(error._tag, "ArchiveLocked")
      assert.strictEqual(read(lockFile(dir)), other)
      // While one that stays empty is torn, and is taken over once it is old enough.
      fs.writeFileSync(lockFile(dir), "")
      const started = Date.now()
      yield* Effect.scoped(ArchiveLock.acquire(dir))
      assert.isAtLeast(Date.now() - started, 1500)
    }))

  it.effect("refuses a lock held by a live process, or by another host", () =>
    Effect.gen(function*() {
      const cases = [
        { pid: process.ppid, host: os.hostname(), expected: /stop it first/ },
        { pid: 999_999, host: "elsewhere.example", expected: /on host elsewhere\.example.*cannot be checked/ }
      ]
      for (const { expected, host, pid } of cases) {
        const dir = tmpDir()
        fs.mkdirSync(path.join(dir, "state"), { recursive: true })
        const text = JSON.stringify({ pid, startedAt: "2024-01-01T00:00:00.000Z", host })
        fs.writeFileSync(lockFile(dir), text)
        const error = yield* Effect.flip(Effect.scoped(ArchiveLock.acquire(dir)))
        assert.strictEqual(error._tag, "ArchiveLocked")
        assert.match(error.message, expected)
        assert.strictEqual(read(lockFile(dir)), text)
      }
    }))

  it.effect("takes over another host's lock once its heartbeat has stopped, and keeps its own lock fresh", () =>
    Effect.gen(function*() {
      const dir = tmpDir()
      fs.mkdirSync(path.join(dir, "state"), { recursive: true })
      fs.writeFileSync(lockFile(dir), JSON.stringify({ pid: 1, startedAt: "2024-01-01T00:00:00.000Z", host: "old-container-7f3a" }))
      const silentFor = new Date(Date.now() - ArchiveLock.OTHER_HOST_STALE_MS - 5_000)
      fs.utimesSync(lockFile(dir), silentFor, silentFor)
      yield* Effect.scoped(
        Effect.gen(function*() {
          yield* ArchiveLock.acquire(dir)
          const held = JSON.parse(read(lockFile(dir))) as { pid: number; host: string }
          assert.deepStrictEqual([held.pid, held.host], [process.pid, os.hostname()])
          // The heartbeat runs on the Clock: it refreshes the lock's mtime while the lock is held.
          const past = new Date(Date.now() - 60_000)
          fs.utimesSync(lockFile(dir), past, past)
          yield* TestClock.adjust("16 seconds")
          yield* Effect.promise(() => new Promise((r) => setTimeout(r, 50)))
          assert.isAbove(fs.statSync(lockFile(dir)).mtimeMs, Date.now() - 10_000)
        })
      )
      assert.isFalse(fs.existsSync(lockFile(dir)))
    }))
})

describe("ArchiveStatus", () => {
  it.scoped("counts events per resource and day, quarantine, damage, and reports the state", () =>
    Effect.gen(function*() {
      const dir = tmpDir()
      yield* TestClock.setTime(Date.parse("2024-02-03T00:00:00.000Z"))
      const sink = yield* NdjsonSink.make(dir)
      yield* sink.writeBatch(
        [
          rec("a", "2024-02-01", "messages"),
          rec("b", "2024-02-01", "memberships"),
          rec("c", "2024-02-01", "messages"),
          { id: "d", day: "2024-02-02", raw: raw("d", "2024-02-02T23:59:59+00:00", "meetings") },
          { id: "e", day: "2024-01-31", raw: raw("e", "2024-01-31T00:00:00.001Z", "messages") }
        ],
        [{ raw: "!", reason: "r" }, { raw: "?", reason: "r" }]
      )
      fs.appendFileSync(path.join(dir, "events/2024-02-02.ndjson"), "not json\n")
      const cp = yield* Checkpoint.make(dir)
      const state: Checkpoint.CheckpointState = {
        version: 1,
        scope: {},
        covered: [{ from: Date.parse("2024-01-31T00:00:00.000Z"), through: Date.parse("2024-02-03T00:00:00.000Z") }],
        updatedAt: Date.parse("2024-02-03T00:00:01.000Z")
      }
      yield* cp.save(state)
      yield* cp.recordError("Forbidden: the token lacks spark-compliance:events_read")

      yield* ArchiveLock.acquire(dir)
      const s = yield* ArchiveStatus.readStatus(dir)
      assert.strictEqual(s.totalEvents, 5)
      assert.deepStrictEqual(s.byResource, { messages: 3, memberships: 1, meetings: 1 })
      assert.deepStrictEqual(s.byDay, [
        { day: "2024-01-31", total: 1, byResource: { messages: 1 } },
        { day: "2024-02-01", total: 3, byResource: { messages: 2, memberships: 1 } },
        { day: "2024-02-02", total: 1, byResource: { meetings: 1 } }
      ])
      assert.strictEqual(s.earliestCreated, "2024-01-31T00:00:00.001Z")
      assert.strictEqual(s.latestCreated, "2024-02-02T23:59:59+00:00")
      assert.strictEqual(s.unreadableLines, 1)
      assert.strictEqual(s.misfiledEvents, 0)
      assert.strictEqual(s.duplicateIds, 0)
      assert.deepStrictEqual(s.quarantine, { total: 2, byDay: { "2024-02-03": 2 }, movedDay: 0, variants: 0 })
      assert.deepStrictEqual(s.checkpoint, Checkpoint.toJson(state))
      assert.strictEqual(s.checkpointError, null)
      assert.deepStrictEqual(s.lastError, {
        at: "2024-02-03T00:00:00.000Z",
        message: "Forbidden: the token lacks spark-compliance:events_read"
      })
      assert.strictEqual(s.lock?.pid, process.pid)
      assert.strictEqual(s.lock?.running, true)
      const onDisk = ["events", "quarantine", "state"].flatMap((sub) =>
        fs.readdirSync(path.join(dir, sub)).map((f) => fs.statSync(path.join(dir, sub, f)).size)
      ).reduce((a, b) => a + b, 0)
      assert.strictEqual(s.sizeBytes, onDisk)

      const text = ArchiveStatus.formatStatus(s)
      assert.include(text, "Covered:          2024-01-31T00:00:00.000Z → 2024-02-03T00:00:00.000Z")
      assert.include(text, "Events:           5 (created 2024-01-31T00:00:00.001Z … 2024-02-02T23:59:59+00:00)")
      assert.include(text, "By resource:      meetings 1, memberships 1, messages 3")
      assert.include(text, "Quarantined:      2 (2024-02-03: 2)")
      assert.include(text, "Unreadable lines: 1")
      assert.include(text, "Last checkpoint:  2024-02-03T00:00:01.000Z")
      assert.include(text, "Last error:       2024-02-03T00:00:00.000Z: Forbidden")
      const table = text.split("\n").slice(-4)
      assert.deepStrictEqual(table, [
        "Day         Total  meetings  memberships  messages",
        "2024-01-31      1         0            0         1",
        "2024-02-01      3         0            1         2",
        "2024-02-02      1         1            0         0"
      ])
    }))

  it.effect("reports damage and an invalid checkpoint without failing", () =>
    Effect.gen(function*() {
      const dir = tmpDir()
      yield* NdjsonSink.make(dir)
      // Hand-made damage the sink itself never produces.
      fs.writeFileSync(
        path.join(dir, "events/2024-03-01.ndjson"),
        [raw("a", "2024-03-01T00:00:00Z"), raw("a", "2024-03-01T00:00:00Z"), raw("b", "2024-03-02T00:00:00Z"), "[1]", ""]
          .join("\n")
      )
      fs.writeFileSync(path.join(dir, "state/checkpoint.json"), "{")
      const s = yield* ArchiveStatus.readStatus(dir)
      assert.deepStrictEqual([s.totalEvents, s.duplicateIds, s.misfiledEvents, s.unreadableLines], [3, 1, 1, 1])
      assert.strictEqual(s.checkpoint, null)
      assert.match(s.checkpointError ?? "", /not valid JSON/)
      assert.strictEqual(s.lastError, null)
      assert.strictEqual(s.lock, null)
      const text = ArchiveStatus.formatStatus(s)
      assert.include(text, "Checkpoint:       INVALID")
      assert.include(text, "Last error:       none")
      assert.include(text, "Lock:             not locked")
    }))

  it.effect("fails clearly when there is no archive", () =>
    Effect.gen(function*() {
      const dir = tmpDir()
      const error = yield* Effect.flip(ArchiveStatus.readStatus(dir))
      assert.strictEqual(error._tag, "ArchiveReadError")
      assert.strictEqual(error.code, "ENOENT")
      assert.include(error.message, dir)
    }))
})

describe("dayStorage", () => {
  it("for one day gives exactly that day's entry of the whole listing: segments in order, the open file", async () => {
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), "day-storage-"))
    try {
      const names = [
        "2024-01-01.ndjson", "2024-01-01.ndjson.gz", "2024-01-01.3.ndjson.gz", "2024-01-01.2.ndjson.gz", "2024-01-01.10.ndjson.gz",
        "2024-01-02.ndjson", "2024-01-10.ndjson.gz", "2024-01-01x.ndjson", "2024-01-01.ndjson.tmp", "x2024-01-01.ndjson", "2024-01-1.ndjson"
      ]
      for (const name of names) fs.writeFileSync(path.join(dir, name), "")
      const all = await dayStorage(dir)
      assert.deepStrictEqual(all.map((d) => d.day), ["2024-01-01", "2024-01-02", "2024-01-10"])
      for (const day of ["2024-01-01", "2024-01-02", "2024-01-10", "2024-01-03", "2024-01-1"]) {
        assert.deepStrictEqual(await dayStorage(dir, day), all.filter((d) => d.day === day))
      }
      assert.deepStrictEqual((await dayStorage(dir, "2024-01-01"))[0], {
        day: "2024-01-01",
        segments: ["2024-01-01.ndjson.gz", "2024-01-01.2.ndjson.gz", "2024-01-01.3.ndjson.gz", "2024-01-01.10.ndjson.gz"],
        open: "2024-01-01.ndjson"
      })
    } finally {
      fs.rmSync(dir, { recursive: true, force: true })
    }
  })
})
