import { spawn } from "node:child_process"
import * as fs from "node:fs"
import * as os from "node:os"
import * as path from "node:path"
import { fileURLToPath } from "node:url"
import { afterAll, assert, describe, it } from "@effect/vitest"
import * as Effect from "effect/Effect"
import * as Option from "effect/Option"
import * as Checkpoint from "../src/Checkpoint.js"
import * as NdjsonSink from "../src/NdjsonSink.js"
import { batchOf, dayOf } from "./storage-crash-child.js"

const here = path.dirname(fileURLToPath(import.meta.url))
const root = fs.mkdtempSync(path.join(os.tmpdir(), "archiver-crash-"))
afterAll(() => fs.rmSync(root, { recursive: true, force: true }))

/** Runs the writer child until it has acknowledged a batch, then SIGKILLs it after `delayMs`. */
const runAndKill = (dir: string, start: number, delayMs: number) =>
  new Promise<{ acked: Array<number> }>((resolve, reject) => {
    const child = spawn(process.execPath, ["--import", "tsx", path.join(here, "storage-crash-child.ts"), dir, `${start}`], {
      cwd: path.join(here, ".."),
      stdio: ["ignore", "pipe", "pipe"]
    })
    const acked: Array<number> = []
    let out = ""
    let err = ""
    let killing = false
    child.stdout.setEncoding("utf8").on("data", (chunk: string) => {
      out += chunk
      const lines = out.split("\n")
      out = lines.pop()!
      for (const line of lines) {
        if (line.startsWith("ack ")) acked.push(Number(line.slice(4)))
        if (line.startsWith("ack ") && !killing) {
          killing = true
          setTimeout(() => child.kill("SIGKILL"), delayMs)
        }
      }
    })
    child.stderr.setEncoding("utf8").on("data", (chunk: string) => (err += chunk))
    child.on("error", reject)
    child.on("exit", (code, signal) => {
      if (signal === "SIGKILL") resolve({ acked })
      else reject(new Error(`writer exited with ${code}: ${err}`))
    })
  })

// Real kills rarely tear a line (the kernel tends to finish a write syscall it started), so torn
// tails are proven deterministically in storage.test.ts; this proves exactly-once and the
// checkpoint's atomicity across kills at arbitrary instants and overlapping restarts.
describe("storage under kill -9", () => {
  it.live("keeps every acknowledged event exactly once, whole lines only, and a valid checkpoint", () =>
    Effect.gen(function*() {
      const dir = path.join(root, "archive")
      const acked = new Set<number>()
      let start = 0
      for (let round = 0; round < 6; round++) {
        const result = yield* Effect.promise(() => runAndKill(dir, start, 5 + round * 17))
        for (const b of result.acked) acked.add(b)
        assert.isAbove(result.acked.length, 0)
        // Restart a little before the last acknowledged batch: overlapping re-fetches.
        start = Math.max(0, Math.max(...acked) - 1)
        // The checkpoint is always whole: the old or the new one, never torn.
        const cp = yield* Checkpoint.loadCheckpoint(dir)
        assert.isTrue(Option.isSome(cp))
        assert.isAtLeast(Option.getOrThrow(cp).runs ?? -1, Math.max(...result.acked))
      }
      // Re-open (repairs torn tails), then check every line of every file.
      yield* NdjsonSink.make(dir)
      const seen = new Map<string, string>()
      for (const name of fs.readdirSync(path.join(dir, "events"))) {
        const text = fs.readFileSync(path.join(dir, "events", name), "utf8")
        assert.isTrue(text === "" || text.endsWith("\n"), name)
        for (const line of text.split("\n").filter((l) => l !== "")) {
          const e = JSON.parse(line) as { id: string; created: string }
          assert.isFalse(seen.has(e.id), `duplicate ${e.id}`)
          seen.set(e.id, name)
          assert.strictEqual(`${e.created.slice(0, 10)}.ndjson`, name)
        }
      }
      for (const b of acked) {
        for (const r of batchOf(b)) assert.strictEqual(seen.get(r.id), `${dayOf(Number(r.id.slice(3)))}.ndjson`, r.id)
      }
      const quarantined = fs.readdirSync(path.join(dir, "quarantine")).flatMap((name) =>
        fs.readFileSync(path.join(dir, "quarantine", name), "utf8").split("\n").filter((l) => l !== "")
          .map((l) => (JSON.parse(l) as { raw: string }).raw)
      )
      assert.strictEqual(new Set(quarantined).size, quarantined.length, "quarantine is deduplicated too")
    }))
})
