/**
 * Sealing under kill -9: a child process seals an archive and is killed at each step of a seal
 * (temp file written, segment linked, manifest entry recorded, open file removed); the next seal,
 * after late events arrived meanwhile, must leave every event exactly once, every segment
 * recorded, and `verify` satisfied. No sealed file is ever rewritten.
 */
import { spawn } from "node:child_process"
import * as fs from "node:fs"
import * as os from "node:os"
import * as path from "node:path"
import { fileURLToPath } from "node:url"
import * as zlib from "node:zlib"
import * as Effect from "effect/Effect"
import { afterAll, describe, expect, it } from "vitest"
import * as Checkpoint from "../src/Checkpoint.js"
import * as NdjsonSink from "../src/NdjsonSink.js"
import * as Seal from "../src/Seal.js"
import * as Query from "../src/Query.js"
import * as Verify from "../src/Verify.js"

const here = path.dirname(fileURLToPath(import.meta.url))
const root = fs.mkdtempSync(path.join(os.tmpdir(), "seal-crash-"))
afterAll(() => fs.rmSync(root, { recursive: true, force: true }))

const runChild = (dir: string, step?: Seal.SealStep, day?: string) =>
  new Promise<{ code: number | null; signal: NodeJS.Signals | null; stdout: string; stderr: string }>((resolve, reject) => {
    const child = spawn(process.execPath, ["--import", "tsx", path.join(here, "seal-crash-child.ts"), dir, step ?? "", day ?? ""], {
      cwd: path.join(here, ".."),
      stdio: ["ignore", "pipe", "pipe"]
    })
    let stdout = ""
    let stderr = ""
    child.stdout.on("data", (d) => (stdout += d))
    child.stderr.on("data", (d) => (stderr += d))
    child.on("error", reject)
    child.on("close", (code, signal) => resolve({ code, signal, stdout, stderr }))
  })

const event = (n: number, day: string) =>
  `{"id":"ev-${day}-${n}","resource":"${n % 3 === 0 ? "memberships" : "messages"}","type":"created","actorId":"p${n % 4}","created":"${day}T${String(n % 24).padStart(2, "0")}:00:00.000Z","data":{"text":"${"x".repeat(200)} ${n}"}}`

const write = (dir: string, raws: ReadonlyArray<string>) =>
  Effect.runPromise(Effect.gen(function*() {
    const sink = yield* NdjsonSink.make(dir)
    yield* sink.writeBatch(raws.map((raw) => {
      const v = JSON.parse(raw) as { id: string; created: string }
      return { id: v.id, day: v.created.slice(0, 10), raw }
    }), [])
  }))

const DAYS = ["2024-01-02", "2024-01-03", "2024-01-04"]

const setup = async (name: string) => {
  const dir = path.join(root, name)
  const raws = DAYS.flatMap((day) => Array.from({ length: 300 }, (_, n) => event(n, day)))
  await write(dir, raws)
  await Effect.runPromise(Checkpoint.saveCheckpoint(dir, {
    version: 1,
    scope: {},
    covered: [{ from: Date.UTC(2024, 0, 1), through: Date.UTC(2024, 0, 8) }],
    updatedAt: Date.now()
  }))
  return { dir, raws }
}

/** Every archived line, from sealed and open files, through `query`. */
const archived = (dir: string) =>
  Effect.runPromise(Effect.gen(function*() {
    const out: Array<string> = []
    yield* Query.run(dir, {}, (line) => {
      out.push(line.toString("utf8"))
      return true
    })
    return out
  }))

const segmentBytes = (dir: string) =>
  Object.fromEntries(fs.readdirSync(path.join(dir, "events")).filter((n) => n.endsWith(".gz")).map((n) => [n, fs.readFileSync(path.join(dir, "events", n))]))

describe.concurrent("sealing under kill -9", () => {
  for (const step of ["tempWritten", "linked", "recorded", "openRemoved"] as const) {
    it(`killed after "${step}" of the second day; late events arrive; the next seal repairs`, async () => {
      const { dir, raws } = await setup(step)
      const crashed = await runChild(dir, step, "2024-01-03")
      expect(crashed.signal, crashed.stderr).toBe("SIGKILL")
      const before = segmentBytes(dir)
      // Late events for every day, written by the sink before the next seal (as after a restart).
      const late = DAYS.map((day, i) => event(1000 + i, day))
      await write(dir, late)
      const done = await runChild(dir)
      expect(done.code, done.stderr).toBe(0)
      // Nothing sealed before the crash was rewritten.
      const after = segmentBytes(dir)
      for (const [name, bytes] of Object.entries(before)) expect(after[name]?.equals(bytes), name).toBe(true)
      // Everything sealed, nothing open, nothing lost, nothing twice.
      expect(fs.readdirSync(path.join(dir, "events")).filter((n) => !n.endsWith(".gz"))).toEqual([])
      expect((await archived(dir)).sort()).toEqual([...raws, ...late].sort())
      const report = await Effect.runPromise(Verify.verify({ dir }))
      expect(report.problems).toEqual([])
      expect(report.events).toBe(raws.length + late.length)
      // The interrupted seal was completed (an orphan adopted), and the late event of the day got
      // a segment of its own whenever the first one already existed.
      const result = JSON.parse(done.stdout.slice(5)) as Seal.SealResult
      expect(result.adopted).toEqual(step === "linked" ? ["events/2024-01-03.ndjson.gz"] : [])
      expect(Object.keys(after).filter((n) => n.startsWith("2024-01-03")).sort()).toEqual(
        step === "tempWritten" ? ["2024-01-03.ndjson.gz"] : ["2024-01-03.2.ndjson.gz", "2024-01-03.ndjson.gz"]
      )
      const sealedLines = Object.entries(after).flatMap(([, b]) => zlib.gunzipSync(b).toString("utf8").split("\n").filter((l) => l !== ""))
      expect(sealedLines.length).toBe(raws.length + late.length)
    }, 120_000)
  }

  it("killed in the middle of the manifest append (a torn entry): the segment is adopted, the entry written whole", async () => {
    const { dir, raws } = await setup("torn")
    expect((await runChild(dir, "recorded", "2024-01-03")).signal).toBe("SIGKILL")
    const manifest = path.join(dir, "manifest.ndjson")
    // What a kill inside the append's write leaves: the last entry cut short, no newline.
    fs.truncateSync(manifest, fs.statSync(manifest).size - 40)
    const done = await runChild(dir)
    expect(done.code, done.stderr).toBe(0)
    expect((JSON.parse(done.stdout.slice(5)) as Seal.SealResult).adopted).toEqual(["events/2024-01-03.ndjson.gz"])
    expect((await archived(dir)).sort()).toEqual([...raws].sort())
    expect((await Effect.runPromise(Verify.verify({ dir }))).problems).toEqual([])
  }, 120_000)

  it("late events into a sealed day go to a new segment, chained in turn", async () => {
    const { dir, raws } = await setup("late")
    expect((await runChild(dir)).code).toBe(0)
    const late = [event(2000, "2024-01-03"), event(2001, "2024-01-03")]
    await write(dir, late)
    const second = await runChild(dir)
    expect(JSON.parse(second.stdout.slice(5)).sealed).toEqual(["events/2024-01-03.2.ndjson.gz"])
    expect(zlib.gunzipSync(fs.readFileSync(path.join(dir, "events", "2024-01-03.2.ndjson.gz"))).toString("utf8")).toBe(late.map((l) => `${l}\n`).join(""))
    const manifest = fs.readFileSync(path.join(dir, "manifest.ndjson"), "utf8").split("\n").filter((l) => l !== "").map((l) => JSON.parse(l))
    // Three days with events, four covered days without (01-01, 01-05..07), then the late segment.
    expect(manifest.map((e) => `${e.kind} ${e.day}`)).toEqual([
      "segment 2024-01-02",
      "segment 2024-01-03",
      "segment 2024-01-04",
      "empty 2024-01-01",
      "empty 2024-01-05",
      "empty 2024-01-06",
      "empty 2024-01-07",
      "segment 2024-01-03"
    ])
    expect(manifest[4].covered).toEqual([{ from: "2024-01-05T00:00:00.000Z", through: "2024-01-06T00:00:00.000Z" }])
    expect(manifest[7]).toMatchObject({ segment: 2, lines: 2, prev: expect.any(String) })
    expect((await archived(dir)).sort()).toEqual([...raws, ...late].sort())
    expect((await Effect.runPromise(Verify.verify({ dir }))).problems).toEqual([])
  }, 120_000)
})
