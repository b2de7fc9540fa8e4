/**
 * Issue 10 on the storage layer: a tampered archive folder (planted links, special files, odd
 * modes), a lost lock, one id under two days, bytes that are not UTF-8, and sealed segments.
 */
import * as fs from "node:fs"
import * as os from "node:os"
import * as path from "node:path"
import { gzipSync } from "node:zlib"
import { afterAll, assert, describe, it } from "@effect/vitest"
import * as Effect from "effect/Effect"
import * as Logger from "effect/Logger"
import * as ArchiveLock from "../src/ArchiveLock.js"
import * as Checkpoint from "../src/Checkpoint.js"
import * as NdjsonSink from "../src/NdjsonSink.js"

const made: Array<string> = []
const tmpRoot = () => {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), "archiver-hostile-"))
  made.push(dir)
  return dir
}
const tmpDir = () => path.join(tmpRoot(), "archive")
afterAll(() => {
  for (const dir of made) fs.rmSync(dir, { recursive: true, force: true })
})

const raw = (id: string, day: string, text = "hi") =>
  `{"id":"${id}","resource":"messages","type":"created","created":"${day}T10:00:00.000Z","data":{"text":"${text}"}}`
const rec = (id: string, day: string, text?: string): NdjsonSink.ArchiveRecord => ({ id, day, raw: raw(id, day, text) })
const lines = (file: string) => fs.readFileSync(file, "utf8").split("\n").filter((l) => l !== "")
const quarantineLines = (dir: string) =>
  fs.readdirSync(path.join(dir, "quarantine")).flatMap((f) =>
    lines(path.join(dir, "quarantine", f)).map((l) => JSON.parse(l) as Record<string, string>)
  )

const withLogs = <A, E, R>(self: Effect.Effect<A, E, R>) => {
  const logs: Array<string> = []
  const logger = Logger.make(({ message }) => {
    logs.push((Array.isArray(message) ? message : [message]).map(String).join(" "))
  })
  return self.pipe(Effect.provide(Logger.replace(Logger.defaultLogger, logger)), Effect.map((a) => [a, logs] as const))
}

/** A file outside the archive that a planted link points at; returns a check that it is untouched. */
const outsideFile = (content: string) => {
  const file = path.join(tmpRoot(), "precious.ndjson")
  fs.writeFileSync(file, content)
  fs.chmodSync(file, 0o644)
  return {
    file,
    untouched: () => {
      assert.strictEqual(fs.readFileSync(file, "utf8"), content, "the link's target was modified")
      assert.strictEqual((fs.statSync(file).mode & 0o777).toString(8), "644", "the link's target's mode changed")
    }
  }
}

describe("planted symbolic links (issue 10 #2)", () => {
  it.effect("a day file linked outside: the batch fails with ArchiveUnsafe naming it; the target is untouched", () =>
    Effect.gen(function*() {
      const dir = tmpDir()
      const sink = yield* NdjsonSink.make(dir)
      // A torn-looking last line: the old code cut it as "torn" and appended to the target.
      const target = outsideFile(`${raw("x", "2024-01-01")}\n{"not":"torn`)
      const file = path.join(dir, "events/2024-01-01.ndjson")
      fs.symlinkSync(target.file, file)
      const error = yield* Effect.flip(sink.writeBatch([rec("a", "2024-01-01")], []))
      assert.strictEqual(error._tag, "ArchiveUnsafe")
      assert.strictEqual(error.path, file)
      target.untouched()
      // Opening the archive again refuses it as well.
      const onOpen = yield* Effect.flip(NdjsonSink.make(dir))
      assert.strictEqual(onOpen._tag, "ArchiveUnsafe")
      assert.strictEqual(onOpen.path, file)
      target.untouched()
    }))

  it.effect("a quarantine file linked outside is refused at open; its target is neither truncated nor chmod'ed", () =>
    Effect.gen(function*() {
      const dir = tmpDir()
      yield* NdjsonSink.make(dir)
      const target = outsideFile(`{"half":"a line`)
      const file = path.join(dir, "quarantine/2024-01-01.ndjson")
      fs.symlinkSync(target.file, file)
      const error = yield* Effect.flip(NdjsonSink.make(dir))
      assert.strictEqual(error._tag, "ArchiveUnsafe")
      assert.strictEqual(error.path, file)
      target.untouched()
    }))

  it.effect("events/ as a link to another directory is refused; nothing in that directory changes", () =>
    Effect.gen(function*() {
      const dir = tmpDir()
      yield* NdjsonSink.make(dir)
      const elsewhere = tmpRoot()
      const target = path.join(elsewhere, "2024-01-01.ndjson")
      fs.writeFileSync(target, `${raw("x", "2024-01-01")}\n{"torn`)
      fs.chmodSync(target, 0o644)
      fs.rmSync(path.join(dir, "events"), { recursive: true })
      fs.symlinkSync(elsewhere, path.join(dir, "events"))
      const error = yield* Effect.flip(NdjsonSink.make(dir))
      assert.strictEqual(error._tag, "ArchiveUnsafe")
      assert.strictEqual(error.path, path.join(dir, "events"))
      assert.strictEqual(fs.readFileSync(target, "utf8"), `${raw("x", "2024-01-01")}\n{"torn`)
      assert.strictEqual((fs.statSync(target).mode & 0o777).toString(8), "644")
      assert.strictEqual((fs.statSync(elsewhere).mode & 0o777).toString(8), "700")
    }))

  it.scoped("a lock, checkpoint or temporary file planted as a link stops the lock with ArchiveUnsafe", () =>
    Effect.gen(function*() {
      for (const name of ["archiver.lock", "checkpoint.json", "checkpoint.json.tmp", "last-error.json.0123456789ab.tmp"]) {
        const dir = tmpDir()
        yield* NdjsonSink.make(dir)
        const target = outsideFile("{}")
        const planted = path.join(dir, "state", name)
        fs.symlinkSync(target.file, planted)
        const error = yield* Effect.flip(Effect.scoped(ArchiveLock.acquire(dir)))
        assert.strictEqual(error._tag, "ArchiveUnsafe", name)
        assert.strictEqual(error.path, planted, name)
        target.untouched()
        assert.isTrue(fs.lstatSync(planted).isSymbolicLink(), "the link itself is left for a person to inspect")
      }
    }))

  it.effect("a checkpoint replace never writes through a fixed temporary name", () =>
    Effect.gen(function*() {
      const dir = tmpDir()
      const cp = yield* Checkpoint.make(dir)
      const target = outsideFile("{}")
      // Planted after the archive was opened: the old fixed `checkpoint.json.tmp` would be
      // truncated and written through; the random O_EXCL name is not predictable.
      fs.symlinkSync(target.file, path.join(dir, "state/checkpoint.json.tmp"))
      yield* cp.save({ version: 1, scope: {}, covered: [], updatedAt: Date.UTC(2024, 0, 1) })
      target.untouched()
      assert.isTrue(fs.lstatSync(path.join(dir, "state/checkpoint.json")).isFile())
    }))

  it.effect("a FIFO planted as a day file is refused, not opened (which would hang)", () =>
    Effect.gen(function*() {
      const dir = tmpDir()
      const sink = yield* NdjsonSink.make(dir)
      const file = path.join(dir, "events/2024-01-01.ndjson")
      const { spawnSync } = yield* Effect.promise(() => import("node:child_process"))
      assert.strictEqual(spawnSync("mkfifo", [file]).status, 0)
      const error = yield* Effect.flip(sink.writeBatch([rec("a", "2024-01-01")], []))
      assert.strictEqual(error._tag, "ArchiveUnsafe")
      assert.match(error.message, /not a regular file/)
      // Where it would be opened read-only (the lock, a sealed segment), it does not hang either.
      const fifoLock = path.join(dir, "state/archiver.lock")
      assert.strictEqual(spawnSync("mkfifo", [fifoLock]).status, 0)
      const locked = yield* Effect.flip(Effect.scoped(ArchiveLock.acquire(dir)))
      assert.strictEqual(locked._tag, "ArchiveUnsafe")
      fs.unlinkSync(fifoLock)
      fs.unlinkSync(file)
      assert.strictEqual(spawnSync("mkfifo", [path.join(dir, "events/2024-01-01.ndjson.gz")]).status, 0)
      const segment = yield* Effect.flip(NdjsonSink.make(dir))
      assert.strictEqual(segment._tag, "ArchiveUnsafe")
    }))
})

describe("permissions (issue 10 #11)", () => {
  it.effect("broader modes are reported, each with its path, before they are tightened", () =>
    Effect.gen(function*() {
      const dir = tmpDir()
      yield* NdjsonSink.make(dir)
      fs.chmodSync(dir, 0o777)
      fs.chmodSync(path.join(dir, "events"), 0o755)
      const file = path.join(dir, "events/2024-01-01.ndjson")
      fs.writeFileSync(file, `${raw("a", "2024-01-01")}\n`)
      fs.chmodSync(file, 0o666)
      const [, logs] = yield* withLogs(NdjsonSink.make(dir))
      assert.isTrue(logs.some((l) => l.includes(dir) && l.includes("had mode 0777")), logs.join("\n"))
      assert.isTrue(logs.some((l) => l.includes(path.join(dir, "events")) && l.includes("had mode 0755")))
      assert.isTrue(logs.some((l) => l.includes(file) && l.includes("had mode 0666")))
      assert.strictEqual((fs.statSync(dir).mode & 0o777).toString(8), "700")
      assert.strictEqual((fs.statSync(file).mode & 0o777).toString(8), "600")
      // A second open has nothing to report.
      const [, again] = yield* withLogs(NdjsonSink.make(dir))
      assert.deepStrictEqual(again.filter((l) => l.includes("had mode")), [])
    }))

  it.effect("a file gone between the listing and its check (another opener's atomic replace) is skipped, not an error", () =>
    Effect.gen(function*() {
      // Two openers of one archive (a second archiver before it is refused the lock; the sink and
      // the checkpoint built side by side) tighten state/ while the other renames its temporary
      // files away. Many such files, removed in the reverse of the order they are listed in while
      // the archive opens, so that listing and removal meet.
      const dir = tmpDir()
      yield* NdjsonSink.make(dir)
      const state = path.join(dir, "state")
      for (let i = 0; i < 2000; i++) {
        fs.writeFileSync(path.join(state, `checkpoint.json.${i.toString(16).padStart(12, "0")}.tmp`), "{}")
      }
      for (const name of fs.readdirSync(state)) fs.chmodSync(path.join(state, name), 0o644)
      const doomed = fs.readdirSync(state).filter((n) => n.endsWith(".tmp")).reverse()
      const remove = Effect.promise(async () => {
        for (const name of doomed) await fs.promises.unlink(path.join(state, name))
      })
      yield* Effect.all([NdjsonSink.make(dir), remove], { concurrency: 2 })
      assert.deepStrictEqual(fs.readdirSync(state).filter((n) => n.endsWith(".tmp")), [])
      for (const name of fs.readdirSync(state)) {
        assert.strictEqual((fs.statSync(path.join(state, name)).mode & 0o777).toString(8), "600", name)
      }
    }))

  it.effect("an archive its owner made read-only (0500) is refused, not reopened", () =>
    Effect.gen(function*() {
      for (const sub of ["", "events", "state"]) {
        const dir = tmpDir()
        const sink = yield* NdjsonSink.make(dir)
        yield* sink.writeBatch([rec("a", "2024-01-01")], [])
        const ro = path.join(dir, sub)
        fs.chmodSync(ro, 0o500)
        const error = yield* Effect.flip(NdjsonSink.make(dir))
        assert.strictEqual(error._tag, "ArchiveUnsafe", sub)
        assert.strictEqual(error.path, path.resolve(ro))
        assert.match(error.message, /read-only \(mode 0500\)/)
        assert.strictEqual((fs.statSync(ro).mode & 0o777).toString(8), "500", "the owner's choice is left as it is")
        fs.chmodSync(ro, 0o700)
      }
    }))
})

describe("a lost lock (issue 10 #3)", () => {
  it.scoped("the lock deleted under a running sink: the next batch fails with ArchiveLockLost and writes nothing", () =>
    Effect.gen(function*() {
      const dir = tmpDir()
      yield* ArchiveLock.acquire(dir)
      const sink = yield* NdjsonSink.make(dir)
      yield* sink.writeBatch([rec("a", "2024-01-01")], [])
      const lock = path.join(dir, "state/archiver.lock")
      fs.unlinkSync(lock)
      const error = yield* Effect.flip(sink.writeBatch([rec("b", "2024-01-01")], [{ raw: "q", reason: "r" }]))
      assert.strictEqual(error._tag, "ArchiveLockLost")
      assert.strictEqual(error.path, lock)
      assert.deepStrictEqual(lines(path.join(dir, "events/2024-01-01.ndjson")).length, 1)
      assert.deepStrictEqual(fs.readdirSync(path.join(dir, "quarantine")), [])
    }))

  it.scoped("a lock replaced by another archiver's (another nonce, or the same text under another inode) is lost too", () =>
    Effect.gen(function*() {
      for (const how of ["nonce", "inode"] as const) {
        const dir = tmpDir()
        yield* ArchiveLock.acquire(dir)
        const sink = yield* NdjsonSink.make(dir)
        const lock = path.join(dir, "state/archiver.lock")
        const text = fs.readFileSync(lock, "utf8")
        if (how === "nonce") {
          fs.writeFileSync(lock, text.replace(/"nonce":"[0-9a-f]+"/, `"nonce":"${"0".repeat(32)}"`))
        } else {
          // Written beside it, then renamed over it: the old inode cannot be reused meanwhile.
          fs.writeFileSync(`${lock}.new`, text, { mode: 0o600 })
          fs.renameSync(`${lock}.new`, lock)
        }
        const error = yield* Effect.flip(sink.writeBatch([rec("b", "2024-01-01")], []))
        assert.strictEqual(error._tag, "ArchiveLockLost", how)
        assert.isFalse(fs.existsSync(path.join(dir, "events/2024-01-01.ndjson")))
      }
    }))

  it.scoped("another archiver's lock, once ours is lost, is not removed when we stop", () =>
    Effect.gen(function*() {
      const dir = tmpDir()
      const lock = path.join(dir, "state/archiver.lock")
      yield* Effect.scoped(Effect.gen(function*() {
        yield* ArchiveLock.acquire(dir)
        fs.unlinkSync(lock)
        fs.writeFileSync(lock, `{"pid":1,"startedAt":"x","host":"${os.hostname()}","nonce":"other"}\n`, { mode: 0o600 })
      }))
      assert.isTrue(fs.existsSync(lock))
    }))

  it.scoped("temporary files a crash left are swept by the lock holder only, never by an archiver refused the lock", () =>
    Effect.gen(function*() {
      const dir = tmpDir()
      yield* NdjsonSink.make(dir)
      const stale = path.join(dir, "state/checkpoint.json.0123456789ab.tmp")
      fs.writeFileSync(stale, "{", { mode: 0o600 })
      yield* ArchiveLock.acquire(dir)
      assert.isFalse(fs.existsSync(stale), "swept by the new holder")
      // Another archiver's in-flight temporary file: a second archiver, refused, leaves it alone.
      const inFlight = path.join(dir, "state/checkpoint.json.ba9876543210.tmp")
      fs.writeFileSync(inFlight, "{", { mode: 0o600 })
      const refused = yield* Effect.flip(Effect.scoped(ArchiveLock.acquire(dir)))
      assert.strictEqual(refused._tag, "ArchiveLocked")
      assert.isTrue(fs.existsSync(inFlight))
    }))

  it.scoped("the lock intact: batches go on", () =>
    Effect.gen(function*() {
      const dir = tmpDir()
      yield* ArchiveLock.acquire(dir)
      const sink = yield* NdjsonSink.make(dir)
      assert.strictEqual((yield* sink.writeBatch([rec("a", "2024-01-01")], [])).written, 1)
      assert.strictEqual((yield* sink.writeBatch([rec("b", "2024-01-01")], [])).written, 1)
      assert.match(fs.readFileSync(path.join(dir, "state/archiver.lock"), "utf8"), /"nonce":"[0-9a-f]{32}"/)
    }))
})

describe("one id under two days (issue 10 #8)", () => {
  it.effect("the copy under a second day is quarantined as movedDay naming the first day, across restarts", () =>
    Effect.gen(function*() {
      const dir = tmpDir()
      const first = yield* NdjsonSink.make(dir)
      yield* first.writeBatch([rec("m1", "2024-01-01"), rec("k", "2024-01-01")], [])
      const moved = rec("m1", "2024-01-03", "hi")
      const r = yield* first.writeBatch([moved], [])
      assert.deepStrictEqual([r.written, r.movedDay, r.variants, r.quarantined], [0, 1, 1, 1])
      assert.isFalse(fs.existsSync(path.join(dir, "events/2024-01-03.ndjson")))
      const [q] = quarantineLines(dir)
      assert.strictEqual(q!.kind, "movedDay")
      assert.strictEqual(q!.firstDay, "2024-01-01")
      assert.strictEqual(q!.raw, moved.raw)
      assert.match(q!.reason, /first copy stays under day 2024-01-01/)

      // A restart (nothing in memory): the index on disk knows; the quarantined copy is not repeated.
      const second = yield* NdjsonSink.make(dir)
      const again = yield* second.writeBatch([moved, rec("m1", "2024-01-02"), rec("new", "2024-01-02")], [])
      assert.deepStrictEqual([again.written, again.movedDay, again.quarantined, again.quarantineDuplicates], [1, 2, 1, 1])
      assert.deepStrictEqual(lines(path.join(dir, "events/2024-01-02.ndjson")).map((l) => JSON.parse(l).id), ["new"])
    }))

  it.effect("inside one batch, the second day's copy is the one quarantined", () =>
    Effect.gen(function*() {
      const dir = tmpDir()
      const sink = yield* NdjsonSink.make(dir)
      const r = yield* sink.writeBatch([rec("d", "2024-02-01"), rec("d", "2024-02-02")], [])
      assert.deepStrictEqual([r.written, r.movedDay], [1, 1])
      assert.strictEqual(quarantineLines(dir)[0]!.firstDay, "2024-02-01")
    }))

  it.effect("holds after the first day was sealed into .gz and its plain file removed, and with the index lost", () =>
    Effect.gen(function*() {
      const dir = tmpDir()
      const sink = yield* NdjsonSink.make(dir)
      yield* sink.writeBatch([rec("s1", "2024-03-01"), rec("s2", "2024-03-01")], [])
      const plain = path.join(dir, "events/2024-03-01.ndjson")
      fs.writeFileSync(`${plain}.gz`, gzipSync(fs.readFileSync(plain)), { mode: 0o600 })
      fs.unlinkSync(plain)
      for (const lose of [false, true]) {
        if (lose) {
          for (const f of fs.readdirSync(path.join(dir, "state"))) {
            if (f.startsWith("ids")) fs.unlinkSync(path.join(dir, "state", f))
          }
        }
        const reopened = yield* NdjsonSink.make(dir)
        const r = yield* reopened.writeBatch([rec("s1", "2024-03-05")], [])
        assert.deepStrictEqual([r.written, r.movedDay], [0, 1], `index lost: ${lose}`)
      }
    }))

  it.effect("a pre-existing id under two days is reported when the index is built, and kept where it is", () =>
    Effect.gen(function*() {
      const dir = tmpDir()
      fs.mkdirSync(path.join(dir, "events"), { recursive: true })
      fs.writeFileSync(path.join(dir, "events/2024-01-01.ndjson"), `${raw("dup", "2024-01-01")}\n`, { mode: 0o600 })
      fs.writeFileSync(path.join(dir, "events/2024-01-02.ndjson"), `${raw("dup", "2024-01-02")}\n`, { mode: 0o600 })
      const [, logs] = yield* withLogs(NdjsonSink.make(dir))
      assert.isTrue(logs.some((l) => l.includes("1 event id(s) are archived under two days")), logs.join("\n"))
      assert.strictEqual(lines(path.join(dir, "events/2024-01-02.ndjson")).length, 1)
    }))

  it.effect("the index stays consistent when the archiver stops between sync points", () =>
    Effect.gen(function*() {
      const dir = tmpDir()
      const sink = yield* NdjsonSink.make(dir, { indexSyncEvery: 1000 })
      yield* sink.writeBatch([rec("t1", "2024-04-01")], [])
      // Written by this sink after the last sync point: the reopened sink re-reads the file's tail.
      yield* sink.writeBatch([rec("t2", "2024-04-01")], [])
      const meta = JSON.parse(fs.readFileSync(path.join(dir, "state/ids.json"), "utf8"))
      assert.isUndefined(meta.days["2024-04-01"], "no sync point was reached")
      const reopened = yield* NdjsonSink.make(dir)
      const r = yield* reopened.writeBatch([rec("t2", "2024-04-02"), rec("t1", "2024-04-02")], [])
      assert.deepStrictEqual([r.written, r.movedDay], [0, 2])
    }))

  it.effect("a day sealed after its last sync point is re-indexed whole, even when its new open file reuses the inode", () =>
    Effect.gen(function*() {
      const dir = tmpDir()
      const day = "2024-04-05"
      const events = path.join(dir, "events")
      const sink = yield* NdjsonSink.make(dir, { indexSyncEvery: 1 })
      yield* sink.writeBatch([rec("s1", day), rec("s2", day)], [])
      // Sealed by a process that then crashed before the index learnt of it: the open file's
      // lines are now a segment, and a new open file holds lines the index has never seen.
      const open = path.join(events, `${day}.ndjson`)
      fs.writeFileSync(path.join(events, `${day}.ndjson.gz`), gzipSync(fs.readFileSync(open)), { mode: 0o600 })
      fs.rmSync(open)
      fs.writeFileSync(open, `${raw("n1", day)}\n${raw("n2", day)}\n${raw("n3", day)}\n`, { mode: 0o600 })
      // The file system gave the new file the old one's inode number (it often does): the mark
      // taken before the seal then seems to cover the new file's start.
      const metaFile = path.join(dir, "state/ids.json")
      const meta = JSON.parse(fs.readFileSync(metaFile, "utf8"))
      assert.isBelow(meta.days[day].open.size, fs.statSync(open).size)
      meta.days[day].open.ino = fs.statSync(open).ino
      fs.writeFileSync(metaFile, JSON.stringify(meta))
      const reopened = yield* NdjsonSink.make(dir)
      // Every id of the new open file is known under its day: a copy under another day is kept
      // in quarantine, not archived a second time.
      const r = yield* reopened.writeBatch([rec("n1", "2024-04-06"), rec("n2", "2024-04-06"), rec("s1", "2024-04-06")], [])
      assert.deepStrictEqual([r.written, r.movedDay], [0, 3])
    }))
})

describe("sealed segments (CONTRACTS C4)", () => {
  it.effect("a day's ids are read from every segment and the open file: no duplicate after sealing", () =>
    Effect.gen(function*() {
      const dir = tmpDir()
      fs.mkdirSync(path.join(dir, "events"), { recursive: true })
      const day = "2024-05-01"
      fs.writeFileSync(path.join(dir, `events/${day}.ndjson.gz`), gzipSync(`${raw("g1", day)}\n${raw("g2", day)}\n`))
      // A segment whose last line has no newline, as a sealer might leave it.
      fs.writeFileSync(path.join(dir, `events/${day}.2.ndjson.gz`), gzipSync(`${raw("g3", day)}`))
      fs.writeFileSync(path.join(dir, `events/${day}.ndjson`), `${raw("p1", day)}\n`, { mode: 0o600 })
      const sink = yield* NdjsonSink.make(dir)
      const r = yield* sink.writeBatch([rec("g1", day), rec("g3", day), rec("p1", day), rec("late", day)], [])
      assert.deepStrictEqual([r.written, r.duplicates], [1, 3])
      // An altered copy of a sealed event is a variant, as for the open file.
      const v = yield* sink.writeBatch([rec("g2", day, "edited")], [])
      assert.deepStrictEqual([v.written, v.variants, v.movedDay], [0, 1, 0])
    }))

  it.effect("a late event for a sealed day (no open file) opens a new plain file", () =>
    Effect.gen(function*() {
      const dir = tmpDir()
      const sink = yield* NdjsonSink.make(dir)
      const day = "2024-05-02"
      yield* sink.writeBatch([rec("a", day)], [])
      const plain = path.join(dir, `events/${day}.ndjson`)
      fs.writeFileSync(`${plain}.gz`, gzipSync(fs.readFileSync(plain)), { mode: 0o600 })
      fs.unlinkSync(plain)
      const reopened = yield* NdjsonSink.make(dir)
      const r = yield* reopened.writeBatch([rec("a", day), rec("b", day)], [])
      assert.deepStrictEqual([r.written, r.duplicates], [1, 1])
      assert.deepStrictEqual(lines(plain).map((l) => JSON.parse(l).id), ["b"])
    }))
})

describe("bytes the server sent (issue 10 #10)", () => {
  // "caf\xE9": Latin-1, not UTF-8. Decoded it becomes "caf\uFFFD", three bytes longer.
  const invalid = Buffer.concat([Buffer.from(`{"id":"u1","created":"2024-06-01T00:00:00Z","text":"caf`), Buffer.from([0xe9]), Buffer.from(`"}`)])
  const lossy = invalid.toString("utf8")

  it.effect("an event's bytes are written exactly, and recognised as a duplicate after a restart", () =>
    Effect.gen(function*() {
      const dir = tmpDir()
      const sink = yield* NdjsonSink.make(dir)
      const record = { id: "u1", day: "2024-06-01", raw: lossy, bytes: invalid }
      const [r, logs] = yield* withLogs(sink.writeBatch([record], []))
      assert.strictEqual(r.written, 1)
      assert.isTrue(logs.some((l) => l.includes("not valid UTF-8")))
      const file = path.join(dir, "events/2024-06-01.ndjson")
      assert.isTrue(fs.readFileSync(file).equals(Buffer.concat([invalid, Buffer.from("\n")])))
      const reopened = yield* NdjsonSink.make(dir)
      const again = yield* reopened.writeBatch([record], [])
      assert.deepStrictEqual([again.written, again.duplicates, again.variants], [0, 1, 0])
      // The lossy text is a different line: a variant, never a silent duplicate.
      const other = yield* reopened.writeBatch([{ id: "u1", day: "2024-06-01", raw: lossy }], [])
      assert.deepStrictEqual([other.variants, other.duplicates], [1, 0])
    }))

  it.effect("a quarantined item's exact bytes are kept (base64) when they are not UTF-8, and deduplicated on them", () =>
    Effect.gen(function*() {
      const dir = tmpDir()
      const sink = yield* NdjsonSink.make(dir)
      yield* sink.writeBatch([], [{ raw: lossy, bytes: invalid, reason: "undecodable" }])
      const [q] = quarantineLines(dir)
      assert.isTrue(Buffer.from(q!.rawBase64!, "base64").equals(invalid))
      const reopened = yield* NdjsonSink.make(dir)
      const r = yield* reopened.writeBatch([], [{ raw: lossy, bytes: invalid, reason: "undecodable" }])
      assert.deepStrictEqual([r.quarantined, r.quarantineDuplicates], [0, 1])
    }))
})
