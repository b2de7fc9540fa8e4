/**
 * The real CLI, end to end: bad input is refused clearly, `status` reports what the server holds,
 * `demo` verifies itself, and an archive that cannot be created is reported.
 */
import { SeedOrg } from "@webex-compliance/events-api/testing"
import * as fs from "node:fs"
import * as os from "node:os"
import * as path from "node:path"
import { afterAll, beforeAll, describe, it } from "vitest"
import { assertExactArchive, inRange, serverEvents } from "./support/archiveCheck.js"
import { killAll, messageLines, runCli } from "./support/cli.js"
import { type RunningFake, startFake } from "./support/fakeServer.js"

const root = fs.mkdtempSync(path.join(os.tmpdir(), "e2e-cli-"))
const from = new Date("2024-02-01T00:00:00.000Z")
const to = new Date("2024-02-04T00:00:00.000Z")
let fake: RunningFake

beforeAll(async () => {
  fake = await startFake({ events: SeedOrg.generateOrg({ count: 900, seed: 21, from, to }), order: "shuffled", seed: 3 })
})
afterAll(async () => {
  killAll()
  await fake.close()
  fs.rmSync(root, { recursive: true, force: true })
})

const common = (server: RunningFake = fake) => ["--base-url", server.baseUrl]

describe.concurrent("webex-archiver CLI", () => {
  it("refuses bad flags and unknown commands with a clear message and a non-zero exit", async ({ expect }) => {
    // Its own server, to prove that no request was sent.
    const fake = await startFake({ events: SeedOrg.generateOrg({ count: 10, seed: 20, from, to }) })
    const out = path.join(root, "bad-flags")
    const cases: ReadonlyArray<readonly [ReadonlyArray<string>, RegExp]> = [
      [["backfill", "--out", out, ...common(fake), "--from", "2024-02-01", "--max", "0"], /^webex-archiver: --max: must be a whole number from 1 to 1000, got "0"/],
      [["backfill", "--out", out, ...common(fake), "--from", "garbage"], /"garbage" is not a date-time/],
      [["run", "--out", out, ...common(fake), "--from", "2024-02-01", "--interval", "xyz"], /"xyz" is not a positive duration/],
      [["frobnicate"], /Invalid subcommand.*backfill/]
    ]
    for (const [args, message] of cases) {
      const r = await runCli(args, { token: fake.token })
      expect(r.code, args.join(" ")).not.toBe(0)
      expect(r.stdout, args.join(" ")).toBe("")
      expect(r.stderr, args.join(" ")).toMatch(message)
      expect(messageLines(r.stderr), args.join(" ")).toHaveLength(1)
    }
    // Nothing was created for a refused command.
    expect(fs.existsSync(out)).toBe(false)
    // And nothing reached the server.
    expect(await fake.requests()).toHaveLength(0)
    await fake.close()
  })

  it("refuses an --out that lies inside a regular file, with a clear message", async ({ expect }) => {
    // Tests run as root, for whom chmod stops nothing: a file in the way stops everyone.
    const file = path.join(root, "a-regular-file")
    fs.writeFileSync(file, "not a directory\n")
    const r = await runCli(
      ["backfill", "--out", path.join(file, "archive"), ...common(), "--from", from.toISOString(), "--to", to.toISOString()],
      { token: fake.token }
    )
    expect(r.code).not.toBe(0)
    const lines = messageLines(r.stderr)
    expect(lines, r.stderr).toHaveLength(1)
    expect(lines[0]).toMatch(/not a directory/i)
    expect(lines[0]).toContain(file)
    expect(fs.readFileSync(file, "utf8")).toBe("not a directory\n")
  })

  it("status reports per-resource counts that match the server's", async ({ expect }) => {
    const out = path.join(root, "status")
    const r = await runCli(["backfill", "--out", out, ...common(), "--from", from.toISOString(), "--to", to.toISOString(), "--max", "200"], {
      token: fake.token
    })
    expect(r.code, r.stderr).toBe(0)
    const raws = await fake.events()
    assertExactArchive(out, raws, { range: { from, to }, token: fake.token })

    const expected: Record<string, number> = {}
    for (const e of serverEvents(raws).filter((e) => inRange(e, { from, to }))) {
      expected[e.resource!] = (expected[e.resource!] ?? 0) + 1
    }
    expect(Object.keys(expected).length).toBeGreaterThan(5)

    const json = await runCli(["status", "--out", out, "--json"])
    expect(json.code, json.stderr).toBe(0)
    const status = JSON.parse(json.stdout) as {
      totalEvents: number
      byResource: Record<string, number>
      duplicateIds: number
      misfiledEvents: number
      unreadableLines: number
      checkpoint: { covered: ReadonlyArray<{ from: string; through: string }> }
      lock: unknown
    }
    expect(status.byResource).toEqual(expected)
    expect(status.totalEvents).toBe(900)
    expect(status).toMatchObject({ duplicateIds: 0, misfiledEvents: 0, unreadableLines: 0, lock: null })
    expect(status.checkpoint.covered).toEqual([{ from: from.toISOString(), through: to.toISOString() }])

    const text = await runCli(["status", "--out", out])
    expect(text.code, text.stderr).toBe(0)
    const byResource = /^By resource:\s+(.*)$/m.exec(text.stdout)?.[1]
    expect(byResource, text.stdout).toBe(
      Object.keys(expected).sort().map((r) => `${r} ${expected[r]}`).join(", ")
    )
    expect(text.stdout).toMatch(/^Events:\s+900 /m)
    expect(text.stdout).toContain(`${from.toISOString()} → ${to.toISOString()}`)
  })

  it("--resource keeps one scope: exactly that resource's events, even when next links drop the filter", async ({ expect }) => {
    const scoped = await startFake({
      events: SeedOrg.generateOrg({ count: 900, seed: 22, from, to }),
      order: "shuffled",
      faults: { nextLinkDropsFilters: true, nextLinkMaxNull: true }
    })
    const out = path.join(root, "scoped")
    const r = await runCli(
      ["backfill", "--out", out, ...common(scoped), "--from", from.toISOString(), "--to", to.toISOString(), "--resource", "messages", "--max", "50"],
      { token: scoped.token }
    )
    expect(r.code, r.stderr).toBe(0)
    const raws = await scoped.events()
    const report = assertExactArchive(out, raws, { range: { from, to }, scope: { resource: "messages" }, token: scoped.token })
    expect(report.expected).toBeGreaterThan(100)
    expect(report.expected).toBeLessThan(900)
    // Another scope on the same archive is refused: its checkpoint vouches for messages only.
    const other = await runCli(
      ["backfill", "--out", out, ...common(scoped), "--from", from.toISOString(), "--to", to.toISOString(), "--resource", "memberships"],
      { token: scoped.token }
    )
    expect(other.code).not.toBe(0)
    expect(messageLines(other.stderr)).toHaveLength(1)
    expect(other.stderr).toMatch(/built with --resource messages, not --resource memberships/)
    assertExactArchive(out, raws, { range: { from, to }, scope: { resource: "messages" }, token: scoped.token })
    await scoped.close()
  })

  it("demo archives a simulated org through faults and prints Verified", async ({ expect }) => {
    const out = path.join(root, "demo")
    const r = await runCli(["demo", "--out", out, "--events", "800", "--days", "5"], { timeoutMs: 100_000 })
    expect(r.code, r.stderr.slice(-2000)).toBe(0)
    expect(r.stdout).toMatch(/^Verified: all \d+ events the server holds are archived exactly once/m)
    expect(r.stdout).not.toContain("VERIFICATION FAILED")
    expect(fs.readdirSync(path.join(out, "events")).length).toBeGreaterThanOrEqual(5)

    // The README's command run a second time into the same directory: nothing new, still verified.
    const again = await runCli(["demo", "--out", out, "--events", "800", "--days", "5"], { timeoutMs: 100_000 })
    expect(again.code, again.stderr.slice(-2000)).toBe(0)
    expect(again.stdout).toMatch(/already holds an archive/)
    expect(again.stdout).toMatch(/^Back-fill: 0 new events written/m)
    expect(again.stdout).toMatch(/^Verified: all \d+ events/m)
    expect(again.stderr).not.toContain("different content")
  })
})
