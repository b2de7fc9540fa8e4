/**
 * The archive as evidence, on the real CLI against the fake Webex: an archive is back-filled over
 * loopback, sealed and signed, then damaged in every way an operator or an attacker could, and
 * `verify` must name each damage. `query` and `gaps` are checked against what the server holds.
 */
import { SeedOrg } from "@webex-compliance/events-api/testing"
import { spawn } from "node:child_process"
import * as fs from "node:fs"
import * as path from "node:path"
import * as zlib from "node:zlib"
import * as Effect from "effect/Effect"
import { beforeAll, describe, expect, it } from "vitest"
import * as ArchiveStatus from "../src/ArchiveStatus.js"
import * as Manifest from "../src/Manifest.js"
import * as Query from "../src/Query.js"
import * as Verify from "../src/Verify.js"
import { serverEvents } from "./support/archiveCheck.js"
import { binPath, repoRoot, runCli } from "./support/cli.js"
import { sandbox } from "./support/fakeServer.js"

const { root, startFake } = sandbox("evidence-")

const FROM = "2024-03-01T00:00:00.000Z"
const TO = "2024-03-05T00:00:00.000Z"

let base = ""
let raws: ReadonlyArray<string> = []
let head = ""
const privateKey = path.join(root, "signing.pem")
const publicKey = path.join(root, "public.pem")
const otherPublic = path.join(root, "other-public.pem")

const ok = async (args: ReadonlyArray<string>, token?: string) => {
  const r = await runCli(args, { token })
  if (r.code !== 0) throw new Error(`webex-archiver ${args.join(" ")} exited ${r.code}:\n${r.stdout}\n${r.stderr}`)
  return r
}

beforeAll(async () => {
  const fake = await startFake({ events: SeedOrg.generateOrg({ count: 400, seed: 91, from: new Date(FROM), to: new Date(TO) }) })
  raws = await fake.events()
  base = path.join(root, "base")
  await ok(["keygen", "--private-key", privateKey, "--public-key", publicKey])
  await ok(["keygen", "--private-key", path.join(root, "other.pem"), "--public-key", otherPublic])
  // backfill seals the settled days it completed, signing each manifest entry.
  await ok(["backfill", "--out", base, "--base-url", fake.baseUrl, "--from", FROM, "--to", TO, "--window", "1d", "--signing-key", privateKey], fake.token)
  expect(fs.readdirSync(path.join(base, "events")).filter((f) => f.endsWith(".ndjson.gz")).length).toBe(4)
  // Nothing is left to seal, and sealing again is harmless.
  const sealed = await ok(["seal", "--out", base, "--settle", "0", "--signing-key", privateKey])
  expect(sealed.stdout).toMatch(/^Sealed 0 files/)
  const v = await ok(["verify", "--out", base, "--public-key", publicKey])
  head = /head ([0-9a-f]{64})/.exec(v.stdout)![1]!
}, 120_000)

let n = 0
/** A fresh copy of the sealed archive to damage. */
const copy = () => {
  const dir = path.join(root, `copy-${n++}`)
  fs.cpSync(base, dir, { recursive: true })
  return dir
}

const verify = (dir: string, options: { publicKey?: string; head?: string } = {}) =>
  Effect.runPromise(Effect.gen(function*() {
    const key = options.publicKey !== undefined ? yield* Manifest.loadPublicKey(options.publicKey) : undefined
    return yield* Verify.verify({ dir, publicKey: key, head: options.head })
  }))

const kinds = (r: Verify.VerifyReport) => r.problems.map((p) => p.kind).sort()
const seg = (dir: string, day: string) => path.join(dir, "events", `${day}.ndjson.gz`)
const manifestLines = (dir: string) => fs.readFileSync(path.join(dir, "manifest.ndjson"), "utf8").split("\n").filter((l) => l !== "")
const writeManifest = (dir: string, lines: ReadonlyArray<string>) =>
  fs.writeFileSync(path.join(dir, "manifest.ndjson"), lines.map((l) => `${l}\n`).join(""))

describe.concurrent("verify names each damage", () => {
  it("an untouched archive is intact, signed, and its head is stable", async () => {
    const r = await verify(base, { publicKey, head })
    expect(r.problems).toEqual([])
    expect(r).toMatchObject({ intact: true, head, entries: 4, sealedFiles: 4, openFiles: 0, events: raws.length })
  })

  it("a seal interrupted before it removed the open file: each event is verified and listed once", async () => {
    // The crash came after the day's segment was recorded and before its open file was removed;
    // one late event was appended to that file since. The next seal removes the sealed part.
    const dir = copy()
    const day = "2024-03-02"
    const late = `{"id":"late-1","resource":"messages","type":"created","created":"${day}T23:00:00.000Z","data":{}}`
    fs.writeFileSync(path.join(dir, "events", `${day}.ndjson`), Buffer.concat([zlib.gunzipSync(fs.readFileSync(seg(dir, day))), Buffer.from(`${late}\n`)]))
    const r = await verify(dir, { publicKey, head })
    expect(r.problems).toEqual([])
    expect(r).toMatchObject({ intact: true, openFiles: 1, events: raws.length + 1 })
    const listed: Array<string> = []
    await Effect.runPromise(Query.run(dir, {}, (line) => (listed.push(line.toString("utf8")), true)))
    expect(listed.sort()).toEqual([...raws, late].sort())
  })

  it("a query stopped at its first line closes the file it was reading, open or sealed", async () => {
    const dir = copy()
    const day = "2024-03-04"
    // More than a read stream buffers: one left open would not reach the end and close itself.
    fs.writeFileSync(
      path.join(dir, "events", `${day}.ndjson`),
      Array.from({ length: 3000 }, (_, i) => `{"id":"late-${i}","resource":"late","type":"created","created":"${day}T23:00:00.000Z","data":{}}\n`).join("")
    )
    // Descriptors open on this copy's event files (other tests run beside this one).
    const events = path.join(dir, "events") + path.sep
    const fds = () =>
      fs.readdirSync("/proc/self/fd").filter((fd) => {
        try {
          return fs.readlinkSync(`/proc/self/fd/${fd}`).startsWith(events)
        } catch {
          return false
        }
      }).length
    // Only the open file holds `late` events (no segment is opened); then a segment first.
    for (const resource of ["late", undefined]) {
      for (let i = 0; i < 5; i++) await Effect.runPromise(Query.run(dir, { resource }, () => false))
    }
    // Closing is asynchronous: a moment for the last one.
    await new Promise((resolve) => setTimeout(resolve, 100))
    expect(fds()).toBe(0)
  })

  it("a byte edited in a sealed file", async () => {
    const dir = copy()
    const file = seg(dir, "2024-03-02")
    const bytes = fs.readFileSync(file)
    bytes[bytes.length >> 1] ^= 0x01
    fs.writeFileSync(file, bytes)
    const r = await verify(dir, { publicKey })
    expect(r.intact).toBe(false)
    expect(r.problems).toContainEqual(expect.objectContaining({ kind: "file-edited", path: "events/2024-03-02.ndjson.gz" }))
  })

  it("a sealed file truncated", async () => {
    const dir = copy()
    fs.truncateSync(seg(dir, "2024-03-03"), 100)
    const r = await verify(dir)
    expect(r.problems).toContainEqual(expect.objectContaining({ kind: "file-truncated", path: "events/2024-03-03.ndjson.gz" }))
  })

  it("a sealed file removed", async () => {
    const dir = copy()
    fs.rmSync(seg(dir, "2024-03-01"))
    const r = await verify(dir)
    expect(kinds(r)).toEqual(["file-removed"])
    expect(r.problems[0]!.path).toBe("events/2024-03-01.ndjson.gz")
  })

  it("a file added", async () => {
    const dir = copy()
    fs.copyFileSync(seg(dir, "2024-03-01"), path.join(dir, "events", "2024-03-09.ndjson.gz"))
    const r = await verify(dir)
    expect(kinds(r)).toEqual(["file-added"])
    expect(r.problems[0]!.path).toBe("events/2024-03-09.ndjson.gz")
  })

  it("a sealed file renamed", async () => {
    const dir = copy()
    fs.renameSync(seg(dir, "2024-03-04"), path.join(dir, "events", "2024-03-04.2.ndjson.gz"))
    const r = await verify(dir)
    expect(kinds(r)).toEqual(["file-renamed"])
    expect(r.problems[0]!.message).toContain("events/2024-03-04.ndjson.gz was renamed to events/2024-03-04.2.ndjson.gz")
  })

  it("a manifest entry edited (a count changed): the chain and the signature break", async () => {
    const dir = copy()
    const lines = manifestLines(dir)
    lines[1] = lines[1]!.replace(/"lines":(\d+)/, (_, k) => `"lines":${Number(k) + 1}`)
    writeManifest(dir, lines)
    const r = await verify(dir, { publicKey })
    expect(r.problems).toContainEqual(expect.objectContaining({ kind: "entry-edited", line: 2 }))
    expect(r.problems).toContainEqual(expect.objectContaining({ kind: "bad-signature", line: 2 }))
  })

  it("the last manifest entry edited (no successor to break): its counts no longer match its file", async () => {
    const dir = copy()
    const lines = manifestLines(dir)
    lines[3] = Manifest.splitSignature(lines[3]!).body.replace(/"lines":(\d+)/, (_, k) => `"lines":${Number(k) - 1}`)
    writeManifest(dir, lines)
    const r = await verify(dir)
    expect(r.problems).toEqual([expect.objectContaining({ kind: "entry-edited", line: 4, path: "events/2024-03-04.ndjson.gz" })])
  })

  it("a manifest entry removed", async () => {
    const dir = copy()
    const lines = manifestLines(dir)
    writeManifest(dir, [lines[0]!, ...lines.slice(2)])
    const r = await verify(dir)
    expect(r.problems).toContainEqual(expect.objectContaining({ kind: "entry-removed", message: "Manifest entry 1 was removed" }))
    // Its file is no longer accounted for.
    expect(r.problems).toContainEqual(expect.objectContaining({ kind: "file-added", path: "events/2024-03-02.ndjson.gz" }))
  })

  it("manifest entries reordered", async () => {
    const dir = copy()
    const [a, b, c, d] = manifestLines(dir)
    writeManifest(dir, [a!, c!, b!, d!])
    const r = await verify(dir)
    expect(r.problems).toContainEqual(expect.objectContaining({ kind: "entry-reordered", line: 3 }))
  })

  it("a manifest rewritten wholesale (chain recomputed, unsigned) is caught by the public key and the kept head", async () => {
    const dir = copy()
    // The attacker drops a day and rebuilds a consistent chain without the key.
    fs.rmSync(seg(dir, "2024-03-02"))
    const entries = manifestLines(dir).map((l) => Manifest.splitSignature(l).body).filter((l) => !l.includes('"day":"2024-03-02"'))
    let prev = Manifest.GENESIS
    const forged = entries.map((body, seq) => {
      const line = body.replace(/"seq":\d+/, `"seq":${seq}`).replace(/"prev":"[0-9a-f]{64}"/, `"prev":"${prev}"`)
      prev = Manifest.hashLine(line)
      return line
    })
    writeManifest(dir, forged)
    expect((await verify(dir)).problems).toEqual([])
    const signed = await verify(dir, { publicKey })
    expect(new Set(kinds(signed))).toEqual(new Set(["unsigned-entry"]))
    const kept = await verify(dir, { head })
    expect(kinds(kept)).toEqual(["head-not-found"])
  })

  it("signatures by another key are bad", async () => {
    const r = await verify(base, { publicKey: otherPublic })
    expect(r.problems.length).toBe(4)
    expect(new Set(kinds(r))).toEqual(new Set(["bad-signature"]))
  })

  it("an event duplicated across files", async () => {
    const dir = copy()
    const first = zlib.gunzipSync(fs.readFileSync(seg(dir, "2024-03-01"))).toString("utf8").split("\n")[0]!
    fs.writeFileSync(path.join(dir, "events", "2024-03-01.ndjson"), `${first}\n`, { mode: 0o600 })
    const r = await verify(dir)
    expect(kinds(r)).toEqual(["duplicate-id"])
    expect(r.problems[0]!.message).toContain("events/2024-03-01.ndjson.gz and events/2024-03-01.ndjson")
  })

  it("the real CLI: exit 0 only when intact, --json, --head", async () => {
    const dir = copy()
    fs.truncateSync(seg(dir, "2024-03-03"), 10)
    const [good, bad, json, wrongHead] = await Promise.all([
      runCli(["verify", "--out", base, "--head", head, "--public-key", publicKey]),
      runCli(["verify", "--out", dir]),
      runCli(["verify", "--out", dir, "--json"]),
      runCli(["verify", "--out", base, "--head", "ab".repeat(32)])
    ])
    expect(good.code).toBe(0)
    expect(good.stdout).toContain(`head ${head}`)
    expect(good.stdout).toContain("INTACT")
    expect(bad.code).not.toBe(0)
    expect(bad.stdout).toMatch(/file-truncated +events\/2024-03-03\.ndjson\.gz was truncated/)
    expect(bad.stderr).toContain("NOT intact: 1 problem")
    const report = JSON.parse(json.stdout) as Verify.VerifyReport
    expect(report.intact).toBe(false)
    expect(report.problems.map((p) => p.kind)).toEqual(["file-truncated"])
    expect(wrongHead.code).not.toBe(0)
    expect(wrongHead.stdout).toContain("head-not-found")
  }, 180_000)
})

describe("status", () => {
  it("answers sealed days from the manifest, without reading the sealed files", async () => {
    const dir = copy()
    // Emptied segments: a status that read them would count nothing.
    for (const day of ["2024-03-01", "2024-03-02", "2024-03-03", "2024-03-04"]) fs.truncateSync(seg(dir, day), 0)
    const s = await Effect.runPromise(ArchiveStatus.readStatus(dir))
    const events = serverEvents(raws)
    expect(s.totalEvents).toBe(raws.length)
    expect(s.sealed).toEqual({ files: 4, events: raws.length, head })
    expect(s.byDay.map((d) => [d.day, d.total])).toEqual(
      ["2024-03-01", "2024-03-02", "2024-03-03", "2024-03-04"].map((day) => [day, events.filter((e) => e.day === day).length])
    )
    expect(s.byResource.messages).toBe(events.filter((e) => e.resource === "messages").length)
    expect(s.earliestCreated).toBe(events.reduce((a, e) => e.createdMs < a.createdMs ? e : a).raw.match(/"created":"([^"]+)"/)![1])
  })
})

// ---------------------------------------------------------------------------------------------
// query
// ---------------------------------------------------------------------------------------------

/** Runs `webex-archiver <args> | head -<n>` in a shell; the archiver's own exit status is returned. */
const pipeToHead = (args: ReadonlyArray<string>, lines: number) =>
  new Promise<{ code: number; stdout: string; stderr: string }>((resolve, reject) => {
    const quoted = [process.execPath, binPath, ...args].map((a) => `'${a.replace(/'/g, "'\\''")}'`).join(" ")
    const child = spawn("bash", ["-c", `${quoted} | head -${lines}; exit \${PIPESTATUS[0]}`], { cwd: repoRoot })
    let stdout = ""
    let stderr = ""
    child.stdout.on("data", (d) => (stdout += d))
    child.stderr.on("data", (d) => (stderr += d))
    child.on("error", reject)
    child.on("close", (code) => resolve({ code: code ?? -1, stdout, stderr }))
  })

describe.concurrent("query", () => {
  const lines = (s: string) => s.split("\n").filter((l) => l !== "")

  it("streams exactly the archived lines that match, from sealed and open files", async () => {
    const dir = copy()
    // An open file next to the sealed ones: a late event for a sealed day.
    const late = JSON.stringify({ id: "late-1", resource: "messages", type: "deleted", actorId: "alice", created: "2024-03-02T10:00:00.000Z", data: { text: "The Quarterly PLAN" } })
    fs.writeFileSync(path.join(dir, "events", "2024-03-02.ndjson"), `${late}\n`, { mode: 0o600 })
    const events = serverEvents(raws)
    const deleted = events.filter((e) => e.resource === "messages" && e.type === "deleted")
    const someone = deleted[0]!.actorId!
    const [all, byActor, day, text, one] = await Promise.all([
      ok(["query", "--out", dir]),
      ok(["query", "--out", dir, "--resource", "messages", "--type", "deleted", "--actor", someone]),
      ok(["query", "--out", dir, "--from", "2024-03-02", "--to", "2024-03-03", "--type", "deleted"]),
      ok(["query", "--out", dir, "--text", "quarterly plan"]),
      ok(["query", "--out", dir, "--id", events[7]!.id])
    ])
    expect(lines(all.stdout).sort()).toEqual([...raws, late].sort())
    expect(lines(byActor.stdout).sort()).toEqual(deleted.filter((e) => e.actorId === someone).map((e) => e.raw).sort())
    expect(lines(day.stdout).sort()).toEqual(
      [...events.filter((e) => e.day === "2024-03-02" && e.type === "deleted").map((e) => e.raw), late].sort()
    )
    expect(lines(text.stdout)).toContain(late)
    for (const l of lines(text.stdout)) expect(JSON.stringify(JSON.parse(l).data).toLowerCase()).toContain("quarterly plan")
    expect(lines(one.stdout)).toEqual([events[7]!.raw])
  }, 180_000)

  it("--format csv writes a header and one quoted row per event", async () => {
    const r = await ok(["query", "--out", base, "--resource", "messages", "--format", "csv"])
    const rows = r.stdout.split("\r\n").filter((l) => l !== "")
    expect(rows[0]).toBe("id,created,resource,type,actorId,personId,personEmail,roomId,text")
    const messages = serverEvents(raws).filter((e) => e.resource === "messages")
    // Rows can hold quoted line breaks: count by id instead of by line.
    for (const e of messages) expect(r.stdout).toContain(`${e.id},`)
    expect(r.stdout.match(/^Y2lz[^,]*,2024-03-0/gm)?.length).toBe(messages.length)
  }, 180_000)

  it("a closed pipe (| head -1) ends it quietly with exit 0", async () => {
    const r = await pipeToHead(["query", "--out", base], 1)
    expect(r.code).toBe(0)
    expect(lines(r.stdout)).toHaveLength(1)
    expect(raws).toContain(lines(r.stdout)[0])
    expect(r.stderr).not.toMatch(/EPIPE|Error/)
  }, 180_000)
})

// ---------------------------------------------------------------------------------------------
// gaps
// ---------------------------------------------------------------------------------------------

describe("gaps", () => {
  it("two disjoint backfills leave exactly the hole between them", async () => {
    const fake = await startFake({ events: SeedOrg.generateOrg({ count: 50, seed: 5, from: new Date("2024-06-01"), to: new Date("2024-06-10") }) })
    const dir = path.join(root, "gaps")
    const backfill = (from: string, to: string) =>
      ok(["backfill", "--out", dir, "--base-url", fake.baseUrl, "--from", from, "--to", to, "--window", "1d"], fake.token)
    await backfill("2024-06-01", "2024-06-03")
    await backfill("2024-06-05T06:00:00Z", "2024-06-08")
    const [text, json, inside, none] = await Promise.all([
      ok(["gaps", "--out", dir, "--to", "2024-06-09"]),
      ok(["gaps", "--out", dir, "--from", "2024-05-31", "--to", "2024-06-08", "--json"]),
      ok(["gaps", "--out", dir, "--from", "2024-06-01", "--to", "2024-06-02"]),
      runCli(["gaps", "--out", path.join(root, "no-such-archive")])
    ])
    expect(text.stdout).toBe(
      "2024-06-03T00:00:00.000Z/2024-06-05T06:00:00.000Z\n2024-06-08T00:00:00.000Z/2024-06-09T00:00:00.000Z\n"
    )
    expect(JSON.parse(json.stdout)).toEqual([
      { start: "2024-05-31T00:00:00.000Z", end: "2024-06-01T00:00:00.000Z" },
      { start: "2024-06-03T00:00:00.000Z", end: "2024-06-05T06:00:00.000Z" }
    ])
    expect(inside.stdout).toBe("")
    // No archive is not "no gaps": refused like status (74), and not created.
    expect(none.code, none.stderr).toBe(74)
    expect(none.stdout).toBe("")
    expect(none.stderr).toMatch(/^webex-archiver: There is no archive at \S+no-such-archive yet/)
    expect(fs.existsSync(path.join(root, "no-such-archive"))).toBe(false)
    // verify names the same hole.
    const r = await verify(dir)
    expect(r.problems).toEqual([
      expect.objectContaining({ kind: "window-not-covered", message: expect.stringContaining("2024-06-03T00:00:00.000Z/2024-06-05T06:00:00.000Z") })
    ])
  }, 120_000)
})
