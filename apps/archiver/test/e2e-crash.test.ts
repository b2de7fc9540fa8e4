/**
 * Window checkpoints and crash safety, proven by `kill -9` on the real CLI at seeded random
 * instants: the checkpoint never claims a window whose events are not all on disk, restarts
 * resume, a torn last line is repaired, and the final archive matches the server exactly.
 */
import { SeedOrg } from "@webex-compliance/events-api/testing"
import * as fs from "node:fs"
import * as path from "node:path"
import { describe, expect, it } from "vitest"
import { assertExactArchive, coverageViolations, readArchive, readCheckpoint, serverEvents } from "./support/archiveCheck.js"
import { backfillSummary, type CliProcess, runCli, sleep, spawnCli, waitUntil } from "./support/cli.js"
import { type RunningFake, sandbox } from "./support/fakeServer.js"

const { root, startFake: fakeWith } = sandbox("e2e-crash-")

/**
 * Starts the command, waits for its first request to reach the server, then SIGKILLs it after
 * `delayMs`. Returns undefined if it finished on its own first.
 */
const startAndKill = async (fake: RunningFake, args: ReadonlyArray<string>, delayMs: number) => {
  const seen = (await fake.requests()).length
  const child: CliProcess = spawnCli(args, { token: fake.token })
  await waitUntil(async () => child.done() || (await fake.requests()).length > seen, 30_000, "the first request", 10)
  await sleep(delayMs)
  const finished = child.done()
  child.kill("SIGKILL")
  const exit = await child.wait(10_000)
  return finished || exit.signal !== "SIGKILL" ? undefined : exit
}

/** What must hold after every kill: the checkpoint's claim, and no line twice. */
const checkAfterKill = (out: string, raws: ReadonlyArray<string>, label: string) => {
  expect(coverageViolations(out, raws), `${label}: covered windows with events missing from the archive`).toEqual([])
  const archive = readArchive(out)
  const twice = [...archive.byId].filter(([, lines]) => lines.length > 1).map(([id]) => id)
  expect(twice, `${label}: ids archived twice`).toEqual([])
  expect(archive.lines.filter((l) => l.id === undefined), `${label}: damaged complete lines`).toEqual([])
  return { archive, checkpoint: readCheckpoint(out) }
}

describe.concurrent("window checkpoints and crash safety under kill -9", () => {
  // Fixed 1-hour windows (many checkpoint boundaries for the kills to land between), then windows
  // grown from 1 hour to the density (WindowPlan): after each restart the plan starts again at
  // the covered end, so claims and windows no longer fall on whole hours.
  for (const grown of [false, true]) {
  it(`--window 1h${grown ? " (windows grown to the density)" : " --max-window 1h"}: at every kill, each covered window's events are all in the archive; the finished checkpoint covers exactly [from, to)`, async ({ expect }) => {
    const from = new Date("2024-06-01T00:00:00.000Z")
    const to = new Date("2024-06-02T12:00:00.000Z")
    const fake = await fakeWith({
      events: SeedOrg.generateOrg({ count: 1800, seed: 81, from, to }),
      order: "shuffled",
      seed: 5,
      faults: { latencyMs: 15 }
    })
    const raws = await fake.events()
    const out = path.join(root, grown ? "windows-grown" : "windows")
    const args = [
      "backfill", "--out", out, "--base-url", fake.baseUrl, "--from", from.toISOString(), "--to", to.toISOString(), "--max", "25", "--window", "1h",
      ...(grown ? [] : ["--max-window", "1h"])
    ]
    const random = SeedOrg.mulberry32(1981)
    let partial = 0
    for (let kill = 0; kill < 4; kill++) {
      const exit = await startAndKill(fake, args, 150 + Math.floor(random() * 700))
      expect(exit, `kill ${kill} came after the run had finished`).toBeDefined()
      const { checkpoint } = checkAfterKill(out, raws, `kill ${kill}`)
      const covered = checkpoint?.covered ?? []
      if (covered.length > 0 && !(covered.length === 1 && covered[0]!.from === from.toISOString() && covered[0]!.through === to.toISOString())) {
        partial++
      }
      // Fixed windows are whole hours: a claim is never a fraction of a window.
      if (!grown) for (const c of covered) expect((Date.parse(c.through) - from.getTime()) % 3_600_000 === 0 || c.through === to.toISOString()).toBe(true)
    }
    // The kills landed mid-run, with some windows checkpointed and some not.
    expect(partial).toBeGreaterThanOrEqual(2)

    const final = await runCli(args, { token: fake.token })
    expect(final.code, final.stderr).toBe(0)
    expect(final.stderr).toContain("Resuming the back-fill at")
    assertExactArchive(out, raws, { range: { from, to }, token: fake.token })
    const cp = readCheckpoint(out)!
    expect(cp.covered).toEqual([{ from: from.toISOString(), through: to.toISOString() }])
    expect(cp.backfill).toBeUndefined()
  })
  }

  it("a torn last line in a finished day file (a crash mid-write) is cut at the next start", async ({ expect }) => {
    const from = new Date("2024-07-10T00:00:00.000Z")
    const to = new Date("2024-07-12T00:00:00.000Z")
    const fake = await fakeWith({ events: SeedOrg.generateOrg({ count: 500, seed: 95, from, to }), order: "shuffled" })
    const raws = await fake.events()
    const out = path.join(root, "torn")
    // Kept open (not sealed) so that a crash can tear its last line.
    const args = ["backfill", "--out", out, "--base-url", fake.baseUrl, "--from", from.toISOString(), "--to", to.toISOString(), "--settle", "36500d"]
    const first = await runCli(args, { token: fake.token })
    expect(first.code, first.stderr).toBe(0)
    // Half of an archived event's line, as a crash inside write(2) leaves it. The re-run has
    // nothing new for that file, so only the start-up repair can remove it.
    const victim = serverEvents(raws)[0]!
    const file = path.join(out, "events", `${victim.day}.ndjson`)
    const size = fs.statSync(file).size
    fs.appendFileSync(file, victim.raw.slice(0, 100))
    expect(readArchive(out).torn).toHaveLength(1)

    // --recheck: a plain re-run would list nothing, the range being covered.
    const again = await runCli([...args, "--recheck"], { token: fake.token })
    expect(again.code, again.stderr).toBe(0)
    expect(again.stderr).toMatch(/Cut a torn last line \(100 bytes\) off \S+\.ndjson/)
    const summary = backfillSummary(again.stdout)
    // Every event listed again (windows also re-read a second of their neighbour), none written.
    expect(summary.written).toBe(0)
    expect(summary.duplicates).toBeGreaterThanOrEqual(500)
    expect(fs.statSync(file).size).toBe(size)
    assertExactArchive(out, raws, { range: { from, to }, token: fake.token })
  })

  it("a faulty, shuffled backfill killed -9 five times, plus torn lines appended by hand, ends exactly equal to the server", async ({ expect }) => {
    const from = new Date("2024-07-01T00:00:00.000Z")
    const to = new Date("2024-07-03T00:00:00.000Z")
    const fake = await fakeWith({
      events: SeedOrg.generateOrg({ count: 2500, seed: 91, from, to }),
      order: "shuffled",
      seed: 17,
      faults: {
        latencyMs: 20,
        rateLimitEvery: 23,
        retryAfter: "seconds",
        retryAfterSeconds: 1,
        serverErrorEvery: 11,
        dropConnectionEvery: 13
      }
    })
    const raws = await fake.events()
    const out = path.join(root, "faulty")
    const args = ["backfill", "--out", out, "--base-url", fake.baseUrl, "--from", from.toISOString(), "--to", to.toISOString(), "--window", "2h", "--max", "50"]
    const random = SeedOrg.mulberry32(4242)
    let kills = 0
    for (let round = 0; round < 5; round++) {
      const exit = await startAndKill(fake, args, 200 + Math.floor(random() * 1300))
      expect(exit, `kill ${round} came after the run had finished`).toBeDefined()
      kills++
      checkAfterKill(out, raws, `kill ${round}`)
    }
    expect(kills).toBe(5)

    // A crash mid-write, by hand: half a line at the end of a day file. One of an event not yet
    // archived (its window is still to do), one of an event already archived.
    const { archive } = checkAfterKill(out, raws, "before the torn lines")
    const events = serverEvents(raws)
    const files = new Set(archive.lines.map((l) => l.file))
    const done = events.find((e) => archive.byId.has(e.id))
    expect(done, "the killed runs archived something").toBeDefined()
    const pending = events.find((e) => !archive.byId.has(e.id) && e.day !== done!.day && files.has(`${e.day}.ndjson`))
    const torn = [done!, ...(pending !== undefined ? [pending] : [])]
    for (const e of torn) {
      const file = path.join(out, "events", `${e.day}.ndjson`)
      const text = fs.readFileSync(file, "utf8")
      // Complete any torn tail a kill left first, so the file ends with exactly our half line.
      if (text !== "" && !text.endsWith("\n")) fs.truncateSync(file, text.lastIndexOf("\n") + 1)
      fs.appendFileSync(file, e.raw.slice(0, Math.floor(e.raw.length / 2)))
    }
    expect(readArchive(out).torn).toHaveLength(torn.length)

    const final = await runCli(args, { token: fake.token, timeoutMs: 100_000 })
    expect(final.code, final.stderr.slice(-3000)).toBe(0)
    expect(final.stderr).toContain("Cut a torn last line")
    expect(backfillSummary(final.stdout).written).toBeGreaterThan(0)
    assertExactArchive(out, raws, { range: { from, to }, token: fake.token })
    expect(readCheckpoint(out)!.covered).toEqual([{ from: from.toISOString(), through: to.toISOString() }])
    // Counted over every run: on a slow machine the killed runs alone may not reach the 23rd request.
    const requests = await fake.requests()
    for (const fault of ["rateLimit", "serverError", "drop"] as const) {
      expect(requests.some((r) => r.fault === fault), `the fake served a ${fault}`).toBe(true)
    }
  })
})
