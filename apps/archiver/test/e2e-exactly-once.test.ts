/**
 * Exactly once, proven on the real CLI against the fake Webex over loopback: across pages that
 * repeat items, across the daemon's lookback overlap, across restarts, and across re-runs.
 */
import { SeedOrg } from "@webex-compliance/events-api/testing"
import * as fs from "node:fs"
import * as path from "node:path"
import { describe, it } from "vitest"
import { assertExactArchive, compareArchive, readArchive, readCheckpoint, serverEvents } from "./support/archiveCheck.js"
import { backfillSummary, logEntries, runCli, spawnCli, waitUntil } from "./support/cli.js"
import { sandbox } from "./support/fakeServer.js"

const { root, startFake: fakeWith } = sandbox("e2e-once-")

const HOUR = 3_600_000
const MINUTE = 60_000

const idsOf = (raws: ReadonlyArray<string>) => serverEvents(raws).map((e) => e.id)

describe.concurrent("exactly once (real CLI, real HTTP, real files)", () => {
  it("a page that repeats items, because events arrived mid-listing, adds no duplicate; a re-run adds the late events", async ({ expect }) => {
    const from = new Date("2024-04-01T00:00:00.000Z")
    const to = new Date("2024-04-02T00:00:00.000Z")
    // Newest first, offset cursors: an event inserted at the top shifts every later page by one.
    const fake = await fakeWith({
      events: SeedOrg.generateOrg({ count: 600, seed: 11, from, to }),
      order: "newest-first",
      faults: { latencyMs: 40 }
    })
    const out = path.join(root, "repeat")
    const args = ["backfill", "--out", out, "--base-url", fake.baseUrl, "--from", from.toISOString(), "--to", to.toISOString(), "--max", "50", "--window", "1d"]
    const child = spawnCli(args, { token: fake.token })
    // After the third page has been served, five events created in the already-listed range arrive.
    await waitUntil(async () => (await fake.requests()).filter((r) => r.status === 200).length >= 3, 30_000, "three pages")
    const late = SeedOrg.generateOrg({ count: 5, seed: 12, from: new Date(to.getTime() - 1000), to })
    await fake.addEvents(late)
    const first = await child.wait(60_000)
    expect(first.code, first.stderr).toBe(0)
    expect((await fake.requests()).filter((r) => r.status === 200).length, "the listing went on after the insert").toBeGreaterThan(4)

    // The page after the insert repeated five items: the sink skipped them. (One window: no
    // boundary re-read, so every "already present" is a repeated item.)
    const summary = backfillSummary(first.stdout)
    expect(summary).toMatchObject({ written: 600, duplicates: 5 })
    const raws = await fake.events()
    const report = compareArchive(out, raws, { range: { from, to }, token: fake.token })
    expect(report.duplicated).toEqual([])
    expect(report.altered).toEqual([])
    expect(report.extra).toEqual([])
    // The late events sat before the cursor: this listing could not see them. The API gives no way
    // to know; a re-run (or the daemon's lookback) picks them up.
    expect([...report.missing].sort()).toEqual(idsOf(late).sort())

    // A plain re-run lists nothing (the range is covered); --recheck re-reads it for late events.
    const second = await runCli([...args, "--recheck"], { token: fake.token })
    expect(second.code, second.stderr).toBe(0)
    expect(backfillSummary(second.stdout)).toMatchObject({ written: 5, duplicates: 600 })
    assertExactArchive(out, raws, { range: { from, to }, token: fake.token })
  })

  it("re-running backfill over an archived range adds only what is missing", async ({ expect }) => {
    const from = new Date("2024-05-01T00:00:00.000Z")
    const to = new Date("2024-05-06T00:00:00.000Z")
    const fake = await fakeWith({ events: SeedOrg.generateOrg({ count: 2000, seed: 31, from, to }), order: "shuffled", seed: 9 })
    // Events outside the range must stay out of the archive.
    await fake.addEvents(SeedOrg.generateOrg({ count: 40, seed: 32, from: new Date(from.getTime() - 2 * HOUR), to: from }))
    await fake.addEvents(SeedOrg.generateOrg({ count: 40, seed: 33, from: to, to: new Date(to.getTime() + 2 * HOUR) }))
    const out = path.join(root, "rerun")
    const args = ["backfill", "--out", out, "--base-url", fake.baseUrl, "--from", from.toISOString(), "--to", to.toISOString(), "--max", "300"]

    const first = await runCli(args, { token: fake.token })
    expect(first.code, first.stderr).toBe(0)
    // 400 events a day: windows of 6, 12, 24 and 48 hours, then the 30 hours left (about 1000 events each).
    expect(backfillSummary(first.stdout)).toMatchObject({ written: 2000, windows: 5 })
    assertExactArchive(out, await fake.events(), { range: { from, to }, token: fake.token })
    // After a successful backfill the checkpoint covers exactly [from, to), and no job is pending.
    const cp = readCheckpoint(out)!
    expect(cp.covered).toEqual([{ from: from.toISOString(), through: to.toISOString() }])
    expect(cp.backfill).toBeUndefined()

    // 37 events created inside the archived range show up late, spread over its days.
    const late = SeedOrg.generateOrg({ count: 37, seed: 34, from, to })
    await fake.addEvents(late)
    const before = readArchive(out)
    const second = await runCli([...args, "--recheck"], { token: fake.token })
    expect(second.code, second.stderr).toBe(0)
    expect(second.stdout).toContain("(37 of them late: created in time already covered)")
    // Only the late ones are new; everything else was listed again and skipped (windows also
    // re-read a second of their neighbour, so "already present" can count a boundary event twice).
    const summary = backfillSummary(second.stdout)
    expect(summary.written).toBe(37)
    expect(summary.duplicates).toBeGreaterThanOrEqual(2000)
    assertExactArchive(out, await fake.events(), { range: { from, to }, token: fake.token })
    // Only appended: every line archived before is still there, in place.
    const after = readArchive(out)
    for (const file of new Set(before.lines.map((l) => l.file))) {
      const old = before.lines.filter((l) => l.file === file).map((l) => l.line)
      expect(after.lines.filter((l) => l.file === file).slice(0, old.length).map((l) => l.line)).toEqual(old)
    }
    expect(readCheckpoint(out)!.covered).toEqual([{ from: from.toISOString(), through: to.toISOString() }])
  })

  it("the daemon's lookback re-reads catch late events, and the overlap adds no duplicate", async ({ expect }) => {
    const now = Date.now()
    const from = new Date(Math.floor((now - 2 * 24 * HOUR) / HOUR) * HOUR)
    const fake = await fakeWith({
      events: SeedOrg.generateOrg({ count: 800, seed: 41, from, to: new Date(now - 2 * HOUR) }),
      order: "shuffled",
      seed: 4
    })
    const out = path.join(root, "lookback")
    const child = spawnCli(
      ["run", "--out", out, "--base-url", fake.baseUrl, "--from", from.toISOString(), "--interval", "1s", "--lookback", "1h", "--max", "200", "--window", "12h"],
      { token: fake.token }
    )
    await child.waitFor(({ stderr }) => stderr.includes(`message="Caught up"`), 60_000, "the catch-up")
    // Late events: created in the past, inside the lookback, listed only now.
    const late = SeedOrg.generateOrg({ count: 20, seed: 42, from: new Date(Date.now() - 50 * MINUTE), to: new Date(Date.now() - MINUTE) })
    await fake.addEvents(late)
    const lateIds = idsOf(late)
    await waitUntil(() => {
      const archived = readArchive(out).byId
      return lateIds.every((id) => archived.has(id))
    }, 30_000, "the late events to be archived")
    // Two more polls re-read the same hour: everything is already there.
    const polls = logEntries(child.stderr(), "Poll done").length
    await child.waitFor(({ stderr }) => logEntries(stderr, "Poll done").length >= polls + 2, 30_000, "two more polls")
    child.kill("SIGTERM")
    const exit = await child.wait(10_000)
    expect(exit.code, exit.stderr).toBe(0)
    expect(fs.existsSync(path.join(out, "state", "archiver.lock"))).toBe(false)

    // The overlap really was re-read (duplicates skipped), and the late events were written once.
    const done = logEntries(exit.stderr, "Poll done")
    expect(done.some((p) => Number(p.duplicates) >= 20), JSON.stringify(done)).toBe(true)
    expect(done.reduce((n, p) => n + Number(p.written), 0)).toBe(20)
    assertExactArchive(out, await fake.events(), { range: { from, to: new Date(Date.now() + 1) }, token: fake.token })
  })

  it("across restarts of the daemon: run, stop, events arrive, run again (three starts)", async ({ expect }) => {
    const now = Date.now()
    const from = new Date(Math.floor((now - 24 * HOUR) / HOUR) * HOUR)
    const fake = await fakeWith({
      events: SeedOrg.generateOrg({ count: 600, seed: 51, from, to: new Date(now - HOUR) }),
      order: "oldest-first"
    })
    const out = path.join(root, "restarts")
    const args = ["run", "--out", out, "--base-url", fake.baseUrl, "--from", from.toISOString(), "--interval", "1s", "--lookback", "1h", "--max", "100"]
    for (let round = 0; round < 2; round++) {
      const child = spawnCli(args, { token: fake.token })
      await waitUntil(async () => {
        const archived = readArchive(out).byId
        return idsOf(await fake.events()).every((id) => archived.has(id))
      }, 45_000, `round ${round}: every server event archived`, 100)
      child.kill("SIGTERM")
      const exit = await child.wait(10_000)
      expect(exit.code, exit.stderr).toBe(0)
      if (round > 0) expect(exit.stderr).toContain("Resuming from the checkpoint")
      assertExactArchive(out, await fake.events(), { range: { from, to: new Date(Date.now() + 1) }, token: fake.token })
      // While it is stopped: late events (inside the lookback) and brand-new ones arrive.
      const t = Date.now()
      await fake.addEvents(SeedOrg.generateOrg({ count: 15, seed: 60 + round, from: new Date(t - 40 * MINUTE), to: new Date(t - 20 * MINUTE) }))
      // Newer than where the stopped daemon got to (it stays 10 s behind the clock).
      await fake.addEvents(SeedOrg.generateOrg({ count: 10, seed: 70 + round, from: new Date(t - 9000), to: new Date(t - 8000) }))
    }
    const final = spawnCli(args, { token: fake.token })
    await waitUntil(async () => {
      const archived = readArchive(out).byId
      return idsOf(await fake.events()).every((id) => archived.has(id))
    }, 45_000, "the last round's events", 100)
    final.kill("SIGTERM")
    expect((await final.wait(10_000)).code).toBe(0)
    const report = assertExactArchive(out, await fake.events(), { range: { from, to: new Date(Date.now() + 1) }, token: fake.token })
    expect(report.expected).toBe(600 + 2 * 25)
  })
})
