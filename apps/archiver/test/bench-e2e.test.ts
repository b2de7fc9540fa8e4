/**
 * Smoke test of the end-to-end benchmark (apps/archiver/bench/e2e/run.mjs, issue 8) at a tiny size: every
 * contestant runs to completion and delivers every event, and the report has every figure. No
 * timing is asserted: on a shared machine only the full-size run's ratios mean anything.
 */
import { assert, describe, it } from "@effect/vitest"
import { execFile } from "node:child_process"
import * as fs from "node:fs"
import * as os from "node:os"
import * as path from "node:path"
import { fileURLToPath } from "node:url"

const repoRoot = path.resolve(path.dirname(fileURLToPath(import.meta.url)), "../../..")

/** Runs a child to its end without blocking the test worker (vitest talks to it meanwhile). */
const run = (args: ReadonlyArray<string>, env: NodeJS.ProcessEnv) =>
  new Promise<{ status: number | null; stdout: string; stderr: string }>((resolve) => {
    execFile(process.execPath, args, { cwd: repoRoot, encoding: "utf8", env, timeout: 580_000, maxBuffer: 64 * 1024 * 1024 }, (error, stdout, stderr) =>
      resolve({ status: error === null ? 0 : typeof error.code === "number" ? error.code : null, stdout, stderr }))
  })

describe("bench/e2e", () => {
  it("runs every contestant at 2k events and writes complete results", { timeout: 600_000 }, async () => {
    const results = fs.mkdtempSync(path.join(os.tmpdir(), "bench-e2e-smoke-"))
    try {
      const env = { ...process.env }
      delete env.NODE_OPTIONS
      const child = await run(
        [
          path.join(repoRoot, "apps/archiver/bench/e2e/run.mjs"),
          "--",
          "--events", "2000",
          "--days", "4",
          "--rounds", "1",
          "--big", "3000",
          "--retry-events", "1000",
          "--rate-limit-every", "3",
          "--sparse-events", "500",
          "--sparse-days", "60",
          "--results", results
        ],
        env
      )
      assert.strictEqual(child.status, 0, `${child.stdout}\n${child.stderr}`)
      const json = JSON.parse(fs.readFileSync(path.join(results, "latest.json"), "utf8"))
      const md = fs.readFileSync(path.join(results, "latest.md"), "utf8")
      assert.strictEqual(md, child.stdout)

      assert.isTrue(json.complete)
      for (const name of ["floor", "archiver", "archiverThread", "list", "listBundled", "floorParse"]) {
        assert.lengthOf(json.runs[name], 1, name)
        const r = json.runs[name][0]
        assert.strictEqual(r.events, 2000, name)
        for (const field of ["wallMs", "cpuMs", "peakRssMiB"]) assert.isAbove(r[field], 0, `${name}.${field}`)
        assert.isAbove(json.median[name].wallMs, 0)
      }
      for (const name of ["archiver", "archiverThread", "list", "listBundled", "listToFloorParse", "listBundledToFloorParse"]) {
        assert.isAbove(json.ratios[name].wall, 0, name)
        assert.isAbove(json.ratios[name].cpu, 0, name)
      }
      assert.strictEqual(json.big.events, 3000)
      assert.strictEqual(json.big.archiver.events, 3000)
      assert.isAbove(json.big.status.wallMs, 0)
      assert.isAbove(json.big.statusSealed.wallMs, 0)
      // The same events at the 200k run's density: proportionally more days.
      assert.strictEqual(json.bigSpread.archiver.events, 3000)
      assert.strictEqual(json.bigSpread.days, 6)
      for (const name of ["floor", "archiver", "list", "listBundled"]) assert.isAbove(json.startup[name].wallMs, 0, `startup.${name}`)
      // The sparse run: every contestant archived every event.
      for (const name of ["floor", "archiver", "fixedWindows"]) {
        assert.strictEqual(json.sparse[name].events, 500, `sparse.${name}`)
        assert.isAbove(json.sparse[name].wallMs, 0, `sparse.${name}`)
      }
      assert.isAbove(json.sparse.ratios.fixedWindows.wall, 0)
      assert.include(md, "A sparse backfill, 500 events over 60 days")
      assert.isAbove(json.retryAfter.samples, 0)
      assert.isNumber(json.retryAfter.meanExtraMs)
      // Every target has a measured value, so the report never hides a missing figure.
      assert.lengthOf(json.targets, 12)
      for (const t of json.targets) assert.isNumber(t.value, t.name)
      assert.include(md, "| `webex-archiver backfill` (nothing sealed) |")
      assert.include(md, "| the same `list()` program bundled by esbuild, as an app is deployed |")
      // Sealing is measured on its own, on the last round's archive: every day file sealed.
      assert.strictEqual(json.seal.events, 2000)
      assert.isAbove(json.seal.files, 0)
      for (const run of [json.seal.seal, json.seal.status]) assert.isAbove(run.wallMs, 0)
      assert.include(md, "`seal --settle 0` on the last round's 2000-event archive")
      assert.include(md, "mean wait beyond the second")
    } finally {
      fs.rmSync(results, { recursive: true, force: true })
    }
  })
})
