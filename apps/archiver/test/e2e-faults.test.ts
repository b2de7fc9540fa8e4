/**
 * Rate limits, faults and refusals, on the real CLI against the fake Webex: what retries completes
 * to an exact archive; what cannot succeed (401/403, a full disk, a locked archive) stops with a
 * clear message, a non-zero exit, the archive untouched and the token nowhere.
 */
import { SeedOrg } from "@webex-compliance/events-api/testing"
import * as fs from "node:fs"
import * as path from "node:path"
import { describe, expect, it } from "vitest"
import {
  assertExactArchive,
  coverageViolations,
  filesContaining,
  readArchive,
  readCheckpoint,
  serverEvents,
  snapshotTree
} from "./support/archiveCheck.js"
import { backfillSummary, messageLines, runCli, spawnCli, waitUntil } from "./support/cli.js"
import { type RunningFake, sandbox } from "./support/fakeServer.js"

const { root, startFake: fakeWith } = sandbox("e2e-faults-")

const DAY = 86_400_000
const HOUR = 3_600_000

const backfillArgs = (out: string, fake: RunningFake, from: Date, to: Date, ...extra: ReadonlyArray<string>) =>
  ["backfill", "--out", out, "--base-url", fake.baseUrl, "--from", from.toISOString(), "--to", to.toISOString(), ...extra]

/** The token appears in no output and no archive file. */
const expectNoLeak = (fake: RunningFake, out: string, ...outputs: ReadonlyArray<string>) => {
  for (const o of outputs) expect(o.includes(fake.token), "token in the output").toBe(false)
  expect(filesContaining(out, fake.token)).toEqual([])
}

describe.concurrent("rate limits and transient faults", () => {
  it("a 429 storm (every 2nd request) completes exactly, whatever the Retry-After form: seconds, http-date, missing, garbage", async ({ expect }) => {
    const from = new Date("2024-09-01T00:00:00.000Z")
    const to = new Date("2024-09-02T00:00:00.000Z")
    const forms = ["seconds", "http-date", "missing", "garbage"] as const
    // Independent archives and servers: run side by side, the waits overlap.
    await Promise.all(forms.map(async (retryAfter, i) => {
      const fake = await fakeWith({
        events: SeedOrg.generateOrg({ count: 300, seed: 200 + i, from, to }),
        order: "shuffled",
        faults: { rateLimitEvery: 2, retryAfter, retryAfterSeconds: 1 }
      })
      const out = path.join(root, `storm-${retryAfter}`)
      const r = await runCli(backfillArgs(out, fake, from, to, "--max", "100", "--window", "1d"), { token: fake.token })
      expect(r.code, `${retryAfter}: ${r.stderr}`).toBe(0)
      assertExactArchive(out, await fake.events(), { range: { from, to }, token: fake.token })
      expectNoLeak(fake, out, r.stdout, r.stderr)

      const requests = await fake.requests()
      const limited = requests.filter((q) => q.status === 429)
      expect(limited.length, retryAfter).toBeGreaterThanOrEqual(2)
      // The wait before the next attempt: the server's Retry-After (1 s) when it could be read, a
      // backoff (at least 250 ms) when it could not. Lower bounds only: a sleep is never short.
      const minimumGap = retryAfter === "seconds" || retryAfter === "http-date" ? 950 : 200
      for (const q of limited) {
        // One client, one request at a time: the log's next entry is the next attempt.
        const next = requests[requests.indexOf(q) + 1]
        expect(next, retryAfter).toBeDefined()
        expect(next!.at - q.at, `${retryAfter}: wait after a 429`).toBeGreaterThanOrEqual(minimumGap)
      }
    }))
  })

  it("423s, every 5xx, dropped connections, junk items and broken next links: exit 0 and an exact archive", async ({ expect }) => {
    const from = new Date("2024-09-10T00:00:00.000Z")
    const to = new Date("2024-09-12T00:00:00.000Z")
    const fake = await fakeWith({
      events: SeedOrg.generateOrg({ count: 800, seed: 210, from, to }),
      order: "shuffled",
      seed: 8,
      faults: {
        lockedEvery: 5,
        retryAfter: "seconds",
        retryAfterSeconds: 1,
        serverErrorEvery: 3,
        dropConnectionEvery: 7,
        malformedItemEvery: 4,
        nextLinkMaxNull: true,
        nextLinkDropsFilters: true
      }
    })
    // Outside the range: would be archived if a next link's lost filters were not repaired.
    await fake.addEvents(SeedOrg.generateOrg({ count: 100, seed: 211, from: new Date(from.getTime() - DAY), to: from }))
    const out = path.join(root, "mixed")
    const r = await runCli(backfillArgs(out, fake, from, to, "--max", "100", "--window", "1d"), { token: fake.token })
    expect(r.code, r.stderr).toBe(0)
    assertExactArchive(out, await fake.events(), { range: { from, to }, token: fake.token })
    expectNoLeak(fake, out, r.stdout, r.stderr)
    const summary = backfillSummary(r.stdout)
    expect(summary.quarantined, "junk items are quarantined, not lost").toBeGreaterThan(0)
    expect(fs.readdirSync(path.join(out, "quarantine")).length).toBeGreaterThan(0)

    const requests = await fake.requests()
    const statuses = new Set(requests.map((q) => q.status))
    for (const status of [0, 423, 500, 502, 503, 504]) expect(statuses.has(status), `served a ${status}`).toBe(true)
    // Every request the archiver sent was for the range: the lost filters were restored.
    for (const q of requests) expect(q.query.from, q.url).toBeDefined()
    expect(requests.every((q) => q.query.max !== "null")).toBe(true)
  })

  it("repeated 504s above a page size shrink the page, and the backfill completes", async ({ expect }) => {
    const from = new Date("2024-09-20T00:00:00.000Z")
    const to = new Date("2024-09-21T00:00:00.000Z")
    const fake = await fakeWith({
      events: SeedOrg.generateOrg({ count: 300, seed: 220, from, to }),
      faults: { gatewayTimeoutAboveMax: 60 }
    })
    const out = path.join(root, "shrink")
    const r = await runCli(backfillArgs(out, fake, from, to, "--max", "200", "--window", "1d"), { token: fake.token })
    expect(r.code, r.stderr).toBe(0)
    assertExactArchive(out, await fake.events(), { range: { from, to }, token: fake.token })
    const requests = await fake.requests()
    expect(requests.filter((q) => q.status === 504).length).toBeGreaterThanOrEqual(2)
    expect(requests.filter((q) => q.status === 200).every((q) => Number(q.query.max) <= 60)).toBe(true)
  })
})

describe.concurrent("refusals stop cleanly", () => {
  for (const [fault, status, message] of [
    ["forbidden", 403, /Compliance Officer role/],
    ["unauthorized", 401, /access token/]
  ] as const) {
    it(`${status}: non-zero exit, exactly one stderr line saying what is wrong, archive untouched, token nowhere`, async ({ expect }) => {
      const from = new Date("2024-10-01T00:00:00.000Z")
      const fake = await fakeWith({ events: SeedOrg.generateOrg({ count: 600, seed: 230, from, to: new Date(from.getTime() + 3 * DAY) }) })
      const out = path.join(root, `refused-${status}`)
      // An archive with one day in it.
      const first = await runCli(backfillArgs(out, fake, from, new Date(from.getTime() + DAY)), { token: fake.token })
      expect(first.code, first.stderr).toBe(0)
      const before = snapshotTree(out)
      const checkpointBefore = readCheckpoint(out)!

      // The refused run asks for the next two days: nothing of them may be claimed.
      await fake.setFaults({ [fault]: true })
      const r = await runCli(backfillArgs(out, fake, new Date(from.getTime() + DAY), new Date(from.getTime() + 3 * DAY)), { token: fake.token })
      expect(r.code).not.toBe(0)
      expect(r.stdout).toBe("")
      const lines = r.stderr.trimEnd().split("\n")
      expect(lines, r.stderr).toHaveLength(1)
      expect(lines[0]).toMatch(/^webex-archiver: /)
      expect(lines[0]).toMatch(message)
      if (status === 403) expect(lines[0]).toContain("spark-compliance:events_read")
      expect(lines[0]).toMatch(/trackingId ROUTER_/)
      expectNoLeak(fake, out, r.stdout, r.stderr)

      // Untouched: every event and quarantine file byte for byte; the checkpoint claims no more.
      const after = snapshotTree(out)
      // The id index (state/ids*) is derived data the sink may rewrite on open; not archive content.
      const derived = (file: string) => file.startsWith("state/ids")
      for (const [file, content] of before) {
        if (file === "state/checkpoint.json" || derived(file)) continue
        expect(after.get(file), file).toBe(content)
      }
      const added = [...after.keys()].filter((f) => !before.has(f))
      expect(added.filter((f) => f !== "state/last-error.json" && !derived(f)), "new files").toEqual([])
      expect(readCheckpoint(out)!.covered).toEqual(checkpointBefore.covered)
      // The failure is kept for `status`, also without the token.
      expect(fs.readFileSync(path.join(out, "state", "last-error.json"), "utf8")).toMatch(message)
      expect(fs.existsSync(path.join(out, "state", "archiver.lock"))).toBe(false)
    })
  }

  // A link to /dev/full used to be how this file simulated a full disk; since issue 10 a link
  // planted in the archive is refused before anything is written (ENOSPC itself is mapped in
  // internal/errors.ts and no longer reachable this way without a real full file system).
  it("a day file planted as a link (to /dev/full) stops the run with one clear line before anything is written; removed, a re-run is exact", async ({ expect }) => {
    const from = new Date("2024-10-10T00:00:00.000Z")
    const to = new Date("2024-10-13T00:00:00.000Z")
    const fullDay = "2024-10-11"
    const fake = await fakeWith({ events: SeedOrg.generateOrg({ count: 900, seed: 240, from, to }), order: "shuffled" })
    const raws = await fake.events()
    const out = path.join(root, "enospc")
    fs.mkdirSync(path.join(out, "events"), { recursive: true })
    const dayFile = path.join(out, "events", `${fullDay}.ndjson`)
    fs.symlinkSync("/dev/full", dayFile)

    const args = backfillArgs(out, fake, from, to, "--max", "100")
    const r = await runCli(args, { token: fake.token })
    expect(r.code).not.toBe(0)
    const lines = messageLines(r.stderr)
    expect(lines, r.stderr).toHaveLength(1)
    expect(lines[0]).toMatch(/^webex-archiver: Refusing to use the archive: .*2024-10-11\.ndjson is a symbolic link/)
    expect(readCheckpoint(out)).toBeUndefined()
    expect(coverageViolations(out, raws)).toEqual([])
    expect(fs.existsSync(path.join(out, "state", "archiver.lock"))).toBe(false)
    expectNoLeak(fake, out, r.stdout, r.stderr)

    // The link removed: the same command completes, exactly.
    fs.unlinkSync(dayFile)
    const again = await runCli(args, { token: fake.token })
    expect(again.code, again.stderr).toBe(0)
    assertExactArchive(out, raws, { range: { from, to }, token: fake.token })
    expect(readCheckpoint(out)!.covered).toEqual([{ from: from.toISOString(), through: to.toISOString() }])
    expect(serverEvents(raws).some((e) => e.day === fullDay)).toBe(true)
  })

  it("a second archiver on the same --out refuses, naming the running one's pid; the first keeps archiving", async ({ expect }) => {
    const now = Date.now()
    const from = new Date(Math.floor((now - DAY) / HOUR) * HOUR)
    const fake = await fakeWith({ events: SeedOrg.generateOrg({ count: 400, seed: 250, from, to: new Date(now - HOUR) }) })
    const out = path.join(root, "locked")
    const first = spawnCli(
      ["run", "--out", out, "--base-url", fake.baseUrl, "--from", from.toISOString(), "--interval", "1s", "--lookback", "1h"],
      { token: fake.token }
    )
    await first.waitFor(({ stderr }) => stderr.includes(`message="Caught up"`), 60_000, "the catch-up")
    // Every child runs with umask 000, the loosest: the archive's modes must not depend on it.
    expect(fs.readFileSync(`/proc/${first.pid}/status`, "utf8")).toMatch(/^Umask:\s+0000$/m)
    const before = snapshotTree(path.join(out, "events"))
    for (const args of [
      backfillArgs(out, fake, from, new Date(now - HOUR)),
      ["run", "--out", out, "--base-url", fake.baseUrl, "--from", from.toISOString()]
    ]) {
      const second = await runCli(args, { token: fake.token })
      expect(second.code, args[0]).not.toBe(0)
      const lines = messageLines(second.stderr)
      expect(lines, second.stderr).toHaveLength(1)
      expect(lines[0]).toContain(`Another archiver (pid ${first.pid}`)
      expect(first.done(), "the first archiver is still running").toBe(false)
    }
    expect(snapshotTree(path.join(out, "events"))).toEqual(before)
    expect(JSON.parse(fs.readFileSync(path.join(out, "state", "archiver.lock"), "utf8")).pid).toBe(first.pid)

    // The first one still works: late events are archived by it.
    const late = SeedOrg.generateOrg({ count: 10, seed: 251, from: new Date(Date.now() - 30 * 60_000), to: new Date(Date.now() - 60_000) })
    await fake.addEvents(late)
    const lateIds = serverEvents(late).map((e) => e.id)
    await waitUntil(() => lateIds.every((id) => readArchive(out).byId.has(id)), 30_000, "the late events")
    first.kill("SIGTERM")
    const exit = await first.wait(10_000)
    expect(exit.code, exit.stderr).toBe(0)
    assertExactArchive(out, await fake.events(), { range: { from, to: new Date(Date.now() + 1) }, token: fake.token })
  })
})
