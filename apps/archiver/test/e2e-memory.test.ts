/**
 * Bounded memory, on the real CLI: the peak resident set of a 60,000-event backfill is within a
 * modest factor of a 6,000-event one's, under an old-space cap smaller than what holding the
 * large org would take. A comparison within the same run, never an absolute figure.
 */
import { SeedOrg } from "@webex-compliance/events-api/testing"
import * as fs from "node:fs"
import * as os from "node:os"
import * as path from "node:path"
import { afterAll, afterEach, describe, expect, it } from "vitest"
import { assertExactArchive } from "./support/archiveCheck.js"
import { backfillSummary, killAll, spawnCli, watchPeakRss } from "./support/cli.js"
import { type RunningFake, startFake } from "./support/fakeServer.js"

const root = fs.mkdtempSync(path.join(os.tmpdir(), "e2e-memory-"))
let fakes: Array<RunningFake> = []
afterEach(async () => {
  killAll()
  await Promise.all(fakes.map((f) => f.close()))
  fakes = []
})
afterAll(() => fs.rmSync(root, { recursive: true, force: true }))

const DAY = 86_400_000
// V8 grows its heap lazily, so an uncapped peak mostly measures how long the run lasted. A cap
// makes it collect: a run that *retained* events would then fail (out of memory), not just grow.
// Holding the large org's raw text and parsed objects alone takes about 120 MB.
const OLD_SPACE_MB = 128

/** Backfills `count` events at the same density (2,000 a day, pages of 1,000): only the size differs. */
const backfill = async (count: number, seed: number) => {
  const from = new Date("2024-01-01T00:00:00.000Z")
  const to = new Date(from.getTime() + (count / 2000) * DAY)
  const fake = await startFake({ events: SeedOrg.generateOrg({ count, seed, from, to }), order: "shuffled" })
  fakes.push(fake)
  const out = path.join(root, `org-${count}`)
  const child = spawnCli(
    ["backfill", "--out", out, "--base-url", fake.baseUrl, "--from", from.toISOString(), "--to", to.toISOString(), "--max", "1000",
      // Day files left open: the size check below weighs the archive as written, not compressed.
      "--settle", "36500d"],
    { token: fake.token, nodeArgs: [`--max-old-space-size=${OLD_SPACE_MB}`] }
  )
  const rss = watchPeakRss(child.pid)
  const exit = await child.wait(110_000)
  const peakKiB = rss.stop()
  expect(exit.code, exit.stderr.slice(-2000)).toBe(0)
  expect(backfillSummary(exit.stdout).written).toBe(count)
  assertExactArchive(out, await fake.events(), { range: { from, to }, token: fake.token })
  const bytes = fs.readdirSync(path.join(out, "events")).reduce((n, f) => n + fs.statSync(path.join(out, "events", f)).size, 0)
  await fake.close()
  fakes = fakes.filter((f) => f !== fake)
  return { peakKiB, bytes, ms: exit.ms }
}

describe("bounded memory", () => {
  it("a 60k-event backfill peaks within 1.5x the resident memory of a 6k-event one", async () => {
    const small = await backfill(6_000, 301)
    const large = await backfill(60_000, 302)
    const ratio = large.peakKiB / small.peakKiB
    console.log(
      `peak RSS: 6k events ${Math.round(small.peakKiB / 1024)} MiB (${small.ms} ms), ` +
        `60k events ${Math.round(large.peakKiB / 1024)} MiB (${large.ms} ms), ratio ${ratio.toFixed(2)}; ` +
        `archive ${Math.round(large.bytes / 1e6)} MB`
    )
    expect(small.peakKiB).toBeGreaterThan(0)
    // The large archive is large against the heap cap: holding it would not fit.
    expect(large.bytes).toBeGreaterThan(0.3 * OLD_SPACE_MB * 1024 * 1024)
    expect(ratio).toBeLessThan(1.5)
  })
})
