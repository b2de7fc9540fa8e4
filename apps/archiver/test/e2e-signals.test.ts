/**
 * Graceful stop, on the real CLI: SIGTERM and SIGINT during `run` and during `backfill` end the
 * process with exit code 0 within 10 s, release the lock, leave no torn line and no false claim,
 * and a restart completes to an exact archive.
 */
import { SeedOrg } from "@webex-compliance/events-api/testing"
import * as fs from "node:fs"
import * as path from "node:path"
import { describe, expect, it } from "vitest"
import { assertExactArchive, coverageViolations, readArchive, readCheckpoint } from "./support/archiveCheck.js"
import { type CliProcess, logEntries, runCli, spawnCli, waitUntil } from "./support/cli.js"
import { sandbox } from "./support/fakeServer.js"

const { root, startFake: fakeWith } = sandbox("e2e-signals-")

const HOUR = 3_600_000

/** Sends `signal` and checks the clean stop: exit 0 within 10 s, lock gone, no torn line, no false claim. */
const stop = async (child: CliProcess, signal: NodeJS.Signals, out: string, raws: ReadonlyArray<string>) => {
  expect(child.done(), "still running when signalled").toBe(false)
  const sent = Date.now()
  child.kill(signal)
  const exit = await child.wait(15_000)
  expect(Date.now() - sent, "stopped within 10 s").toBeLessThan(10_000)
  expect(exit.signal, exit.stderr.slice(-2000)).toBeNull()
  expect(exit.code, exit.stderr.slice(-2000)).toBe(0)
  expect(fs.existsSync(path.join(out, "state", "archiver.lock")), "the lock is released").toBe(false)
  expect(readArchive(out).torn, "no torn line").toEqual([])
  expect(coverageViolations(out, raws)).toEqual([])
  return exit
}

describe.concurrent("graceful stop", () => {
  for (const signal of ["SIGTERM", "SIGINT"] as const) {
    it(`${signal} during backfill: exit 0, lock released, then the same command resumes to an exact archive`, async ({ expect }) => {
      const from = new Date("2024-08-01T00:00:00.000Z")
      const to = new Date("2024-08-03T00:00:00.000Z")
      const fake = await fakeWith({
        events: SeedOrg.generateOrg({ count: 1500, seed: signal === "SIGTERM" ? 101 : 102, from, to }),
        order: "shuffled",
        faults: { latencyMs: 30 }
      })
      const raws = await fake.events()
      const out = path.join(root, `backfill-${signal}`)
      const args = ["backfill", "--out", out, "--base-url", fake.baseUrl, "--from", from.toISOString(), "--to", to.toISOString(), "--max", "40", "--window", "2h"]
      const child = spawnCli(args, { token: fake.token })
      // Mid-run: two windows done, and a page of the third just served, so the signal lands
      // while that page is being decoded and written.
      await child.waitFor(({ stderr }) => stderr.includes("backfill: window 2 archived"), 60_000, "two windows")
      const served = (await fake.requests()).length
      await waitUntil(async () => (await fake.requests()).length > served, 30_000, "a page of the third window", 2)
      const exit = await stop(child, signal, out, raws)
      expect(exit.stdout, "it stopped before the end").not.toContain("Back-fill complete")
      const cp = readCheckpoint(out)!
      expect(cp.backfill?.doneThrough, "an unfinished job is recorded").toBeDefined()
      expect(Date.parse(cp.backfill!.doneThrough)).toBeLessThan(to.getTime())

      const again = await runCli(args, { token: fake.token })
      expect(again.code, again.stderr).toBe(0)
      expect(again.stderr).toContain(`Resuming the back-fill at ${cp.backfill!.doneThrough}`)
      // It resumed where the checkpoint says, not at --from.
      expect(logEntries(again.stderr, "backfill: window 1 archived")[0]?.window).toMatch(new RegExp(`^${cp.backfill!.doneThrough}/`))
      assertExactArchive(out, raws, { range: { from, to }, token: fake.token })
      expect(readCheckpoint(out)!.covered).toEqual([{ from: from.toISOString(), through: to.toISOString() }])
    })

    it(`${signal} during run (while catching up, and while idle): exit 0, lock released, restart completes`, async ({ expect }) => {
      const now = Date.now()
      const from = new Date(Math.floor((now - 2 * 24 * HOUR) / HOUR) * HOUR)
      const fake = await fakeWith({
        events: SeedOrg.generateOrg({ count: 1500, seed: signal === "SIGTERM" ? 111 : 112, from, to: new Date(now - HOUR) }),
        order: "newest-first",
        faults: { latencyMs: 30 }
      })
      const raws = await fake.events()
      const out = path.join(root, `run-${signal}`)
      const args = ["run", "--out", out, "--base-url", fake.baseUrl, "--from", from.toISOString(), "--interval", "1h", "--lookback", "1h", "--max", "40", "--window", "2h"]

      // 1. During the catch-up, mid-page.
      const first = spawnCli(args, { token: fake.token })
      await first.waitFor(({ stderr }) => stderr.includes("catch-up: window 2 archived"), 60_000, "two windows")
      const exit = await stop(first, signal, out, raws)
      expect(logEntries(exit.stderr, "Caught up"), "it stopped before catching up").toHaveLength(0)

      // 2. Restarted, it catches up; stopped again while it sleeps between polls (interval 1h).
      const second = spawnCli(args, { token: fake.token })
      await second.waitFor(({ stderr }) => stderr.includes(`message="Caught up"`), 60_000, "the catch-up")
      await waitUntil(() => readArchive(out).lines.length >= raws.length, 5_000, "every line")
      await stop(second, signal, out, raws)
      expect(second.stderr()).toContain("Resuming from the checkpoint")
      assertExactArchive(out, raws, { range: { from, to: new Date(Date.now() + 1) }, token: fake.token })
      // The daemon's position reached the present (it stays a few seconds behind the clock).
      expect(Date.parse(readCheckpoint(out)!.live!.through)).toBeGreaterThan(now - 60_000)
    })
  }
})
