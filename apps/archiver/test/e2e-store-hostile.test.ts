/**
 * Issue 10 on the real CLI: a tampered archive folder (planted links, a read-only archive) and a
 * lock lost while an archiver runs. The process is spawned as an operator would run it, against
 * the fake Webex over loopback.
 */
import { SeedOrg } from "@webex-compliance/events-api/testing"
import * as fs from "node:fs"
import * as path from "node:path"
import { describe, it } from "vitest"
import { assertExactArchive, readArchive } from "./support/archiveCheck.js"
import { messageLines, runCli, spawnCli, waitUntil } from "./support/cli.js"
import { sandbox } from "./support/fakeServer.js"

const { root, startFake: fakeWith } = sandbox("e2e-store-hostile-")

const from = new Date("2024-09-01T00:00:00.000Z")
const to = new Date("2024-09-03T00:00:00.000Z")
const backfill = (out: string, baseUrl: string, ...extra: Array<string>) =>
  ["backfill", "--out", out, "--base-url", baseUrl, "--from", from.toISOString(), "--to", to.toISOString(), ...extra]

describe.concurrent("a tampered archive folder (real CLI)", () => {
  const planted = [
    { name: "a day file linked to a file outside", plant: (out: string, target: string) => {
      fs.mkdirSync(path.join(out, "events"), { recursive: true })
      const link = path.join(out, "events", "2024-09-01.ndjson")
      fs.symlinkSync(target, link)
      return link
    } },
    { name: "events/ linked to a directory outside", plant: (out: string, target: string) => {
      fs.mkdirSync(out, { recursive: true })
      const link = path.join(out, "events")
      fs.symlinkSync(path.dirname(target), link)
      return link
    } },
    { name: "the lock linked to a file outside", plant: (out: string, target: string) => {
      fs.mkdirSync(path.join(out, "state"), { recursive: true })
      const link = path.join(out, "state", "archiver.lock")
      fs.symlinkSync(target, link)
      return link
    } }
  ]
  for (const { name, plant } of planted) {
    it(`${name}: the run stops with one line naming it, and nothing outside the archive changes`, async ({ expect }) => {
      const fake = await fakeWith({ events: SeedOrg.generateOrg({ count: 50, seed: 7, from, to }) })
      const slug = name.replace(/\W+/g, "-")
      const outside = path.join(root, `${slug}-outside`)
      fs.mkdirSync(outside)
      const target = path.join(outside, "2024-09-01.ndjson")
      // Ends like a torn line: the archiver used to cut it and append to it.
      const content = `{"id":"precious","created":"2024-09-01T00:00:00Z"}\n{"partial":`
      fs.writeFileSync(target, content)
      fs.chmodSync(target, 0o644)
      const out = path.join(root, slug)
      const link = plant(out, target)
      const r = await runCli(backfill(out, fake.baseUrl), { token: fake.token })
      // 74 (I/O) once the cli stream's exit-code mapping is merged; any failure before that.
      expect(r.code, r.stderr).not.toBe(0)
      const lines = messageLines(r.stderr)
      expect(lines, r.stderr).toHaveLength(1)
      expect(lines[0]).toContain(link)
      expect(lines[0]).toMatch(/symbolic link/)
      expect(fs.readFileSync(target, "utf8")).toBe(content)
      expect(fs.statSync(target).mode & 0o777).toBe(0o644)
      expect(fs.readdirSync(outside)).toEqual(["2024-09-01.ndjson"])
      expect(fs.lstatSync(link).isSymbolicLink(), "the link is left for a person to inspect").toBe(true)
    })
  }

  it("an archive its owner made read-only (0500) is refused, not reset to 0700 and written", async ({ expect }) => {
    const fake = await fakeWith({ events: SeedOrg.generateOrg({ count: 50, seed: 8, from, to }) })
    const out = path.join(root, "read-only")
    const first = await runCli(backfill(out, fake.baseUrl), { token: fake.token })
    expect(first.code, first.stderr).toBe(0)
    fs.chmodSync(out, 0o500)
    const r = await runCli(backfill(out, fake.baseUrl), { token: fake.token })
    fs.chmodSync(out, 0o700)
    expect(r.code, r.stderr).not.toBe(0)
    const lines = messageLines(r.stderr)
    expect(lines, r.stderr).toHaveLength(1)
    expect(lines[0]).toContain(out)
    expect(lines[0]).toMatch(/read-only \(mode 0500\)/)
  })
})

describe("a lost lock (real CLI)", () => {
  it("the lock deleted while an archiver runs: a second one starts, the first stops before its next page; no duplicates", async ({ expect }) => {
    const fake = await fakeWith({
      events: SeedOrg.generateOrg({ count: 1200, seed: 9, from, to }),
      order: "shuffled",
      faults: { latencyMs: 150 }
    })
    const out = path.join(root, "lost-lock")
    const args = backfill(out, fake.baseUrl, "--max", "20", "--window", "6h")
    const first = spawnCli(args, { token: fake.token })
    const lock = path.join(out, "state", "archiver.lock")
    await waitUntil(() => fs.existsSync(path.join(out, "events")) && readArchive(out).lines.length >= 40, 60_000, "the first archiver wrote some pages")
    fs.unlinkSync(lock)
    const second = spawnCli(args, { token: fake.token })
    const stopped = await first.wait(60_000)
    // 75 (temporary) once the cli stream's exit-code mapping is merged.
    expect(stopped.code, stopped.stderr).not.toBe(0)
    expect(messageLines(stopped.stderr).join("\n")).toMatch(/lock .*no longer this archiver's/)
    const done = await second.wait(120_000)
    expect(done.code, done.stderr).toBe(0)
    // Exact: every event once, none twice, whatever the two wrote in turn.
    assertExactArchive(out, await fake.events(), { range: { from, to }, token: fake.token })
  })
})
