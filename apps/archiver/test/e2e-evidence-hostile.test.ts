/**
 * Issue 10 for the evidence commands, on the real CLI: links planted in an archive folder. `seal`
 * refuses with exit 74 naming the link and writes nothing through it; `verify`, `status` and
 * `query` never read through one (verify and status report it, query refuses).
 */
import { SeedOrg } from "@webex-compliance/events-api/testing"
import * as fs from "node:fs"
import * as path from "node:path"
import { beforeAll, describe, it } from "vitest"
import { snapshotTree } from "./support/archiveCheck.js"
import { messageLines, runCli } from "./support/cli.js"
import { sandbox } from "./support/fakeServer.js"

const { root, startFake } = sandbox("e2e-evidence-hostile-")

const from = new Date("2024-09-01T00:00:00.000Z")
const to = new Date("2024-09-03T00:00:00.000Z")

/** Two archives to copy from: one with its days still open, one sealed. */
let openArchive = ""
let sealedArchive = ""
beforeAll(async () => {
  const fake = await startFake({ events: SeedOrg.generateOrg({ count: 80, seed: 21, from, to }) })
  const args = (out: string, settle: string) =>
    ["backfill", "--out", out, "--base-url", fake.baseUrl, "--from", from.toISOString(), "--to", to.toISOString(), "--settle", settle]
  openArchive = path.join(root, "template-open")
  sealedArchive = path.join(root, "template-sealed")
  const [a, b] = await Promise.all([
    runCli(args(openArchive, "36500d"), { token: fake.token }),
    runCli(args(sealedArchive, "0"), { token: fake.token })
  ])
  if (a.code !== 0 || b.code !== 0) throw new Error(`the template backfills failed:\n${a.stderr}\n${b.stderr}`)
  // Both days and the manifest are where the tests below expect them.
  for (const f of ["events/2024-09-01.ndjson", "events/2024-09-02.ndjson"]) fs.accessSync(path.join(openArchive, f))
  for (const f of ["events/2024-09-01.ndjson.gz", "events/2024-09-02.ndjson.gz", "manifest.ndjson"]) fs.accessSync(path.join(sealedArchive, f))
}, 120_000)

/** A fresh copy of a template archive, and a folder outside it for the link targets. */
const copy = (template: string, name: string) => {
  const out = path.join(root, name)
  fs.cpSync(template, out, { recursive: true })
  // A copy carries the template's lock state: none (the backfill released it).
  const outside = path.join(root, `${name}-outside`)
  fs.mkdirSync(outside)
  return { out, outside }
}

/** Moves `rel` out of the archive and leaves a link to it in its place; returns the link. */
const plantLink = (out: string, outside: string, rel: string) => {
  const link = path.join(out, rel)
  const target = path.join(outside, path.basename(rel))
  fs.renameSync(link, target)
  fs.symlinkSync(target, link)
  return { link, target }
}

describe.concurrent("links planted in the archive (real CLI)", () => {
  const sealCases = [
    { name: "an open day file", rel: "events/2024-09-01.ndjson" },
    { name: "events/", rel: "events" }
  ]
  for (const { name, rel } of sealCases) {
    it(`seal: ${name} as a link: exit 74 naming it, nothing written through it`, async ({ expect }) => {
      const { out, outside } = copy(openArchive, `seal-${rel.replace(/\W+/g, "-")}`)
      const { link, target } = plantLink(out, outside, rel)
      const before = snapshotTree(outside)
      const r = await runCli(["seal", "--out", out, "--settle", "0"])
      expect(r.code, r.stderr).toBe(74)
      const lines = messageLines(r.stderr)
      expect(lines, r.stderr).toHaveLength(1)
      expect(lines[0]).toContain(link)
      expect(lines[0]).toMatch(/symbolic link/)
      // Nothing outside changed, nothing was sealed, the link is left for a person to inspect.
      expect(snapshotTree(outside)).toEqual(before)
      expect(fs.lstatSync(link).isSymbolicLink()).toBe(true)
      expect(fs.existsSync(target)).toBe(true)
      expect(fs.readdirSync(path.join(out, "events")).filter((f) => f.endsWith(".gz"))).toEqual([])
    })
  }

  it("seal: manifest.ndjson as a link: exit 74 naming it, the target not appended to", async ({ expect }) => {
    const { out, outside } = copy(sealedArchive, "seal-manifest")
    const { link, target } = plantLink(out, outside, "manifest.ndjson")
    const content = fs.readFileSync(target)
    const r = await runCli(["seal", "--out", out, "--settle", "0"])
    expect(r.code, r.stderr).toBe(74)
    expect(messageLines(r.stderr).join("\n"), r.stderr).toContain(link)
    expect(fs.readFileSync(target).equals(content)).toBe(true)
    expect(fs.lstatSync(link).isSymbolicLink()).toBe(true)
  })

  it("seal: a dangling manifest.ndjson link is not taken for \"no manifest yet\"", async ({ expect }) => {
    const { out, outside } = copy(openArchive, "seal-manifest-dangling")
    const target = path.join(outside, "manifest.ndjson")
    fs.symlinkSync(target, path.join(out, "manifest.ndjson"))
    const r = await runCli(["seal", "--out", out, "--settle", "0"])
    expect(r.code, r.stderr).toBe(74)
    expect(fs.existsSync(target), "no manifest created through the link").toBe(false)
    expect(fs.readdirSync(path.join(out, "events")).filter((f) => f.endsWith(".gz"))).toEqual([])
  })

  it("verify: a sealed segment and the manifest as links: each reported as unsafe-path, not read through (exit 65)", async ({ expect }) => {
    const { out, outside } = copy(sealedArchive, "verify-links")
    const seg = plantLink(out, outside, "events/2024-09-01.ndjson.gz")
    const r = await runCli(["verify", "--out", out, "--json"])
    expect(r.code, r.stderr).toBe(65)
    const report = JSON.parse(r.stdout) as { problems: Array<{ kind: string; path?: string; message: string }> }
    const unsafe = report.problems.filter((p) => p.kind === "unsafe-path")
    expect(unsafe.map((p) => p.path)).toEqual(["events/2024-09-01.ndjson.gz"])
    expect(unsafe[0]!.message).toContain(seg.link)

    const m = plantLink(out, outside, "manifest.ndjson")
    const r2 = await runCli(["verify", "--out", out])
    expect(r2.code, r2.stderr).toBe(65)
    expect(r2.stdout).toMatch(/unsafe-path/)
    expect(r2.stdout).toContain(m.link)
  })

  it("verify and status: events/ as a link is reported, its files not read", async ({ expect }) => {
    const { out, outside } = copy(openArchive, "status-events-link")
    const { link } = plantLink(out, outside, "events")
    const v = await runCli(["verify", "--out", out, "--json"])
    expect(v.code, v.stderr).toBe(65)
    const report = JSON.parse(v.stdout) as { events: number; problems: Array<{ kind: string; path?: string }> }
    expect(report.problems.filter((p) => p.kind === "unsafe-path").map((p) => p.path)).toEqual(["events"])
    expect(report.events, "no event read through the link").toBe(0)
    const s = await runCli(["status", "--out", out, "--json"])
    expect(s.code, s.stderr).toBe(0)
    const status = JSON.parse(s.stdout) as { totalEvents: number; unsafePaths: Array<string> }
    expect(status.totalEvents).toBe(0)
    expect(status.unsafePaths).toEqual([`${link} is a symbolic link`])
  })

  it("status: a day file and a quarantine file as links are listed as not read; the rest is counted", async ({ expect }) => {
    const { out, outside } = copy(openArchive, "status-links")
    const whole = JSON.parse((await runCli(["status", "--out", out, "--json"])).stdout) as { totalEvents: number; byDay: Array<{ day: string; total: number }> }
    const day = plantLink(out, outside, "events/2024-09-01.ndjson")
    fs.mkdirSync(path.join(out, "quarantine"), { recursive: true })
    const qTarget = path.join(outside, "q.ndjson")
    fs.writeFileSync(qTarget, `{"reason":"planted","kind":"movedDay","raw":"{}"}\n`)
    const qLink = path.join(out, "quarantine", "2024-09-05.ndjson")
    fs.symlinkSync(qTarget, qLink)
    const s = await runCli(["status", "--out", out, "--json"])
    expect(s.code, s.stderr).toBe(0)
    const status = JSON.parse(s.stdout) as {
      totalEvents: number
      unsafePaths: Array<string>
      quarantine: { total: number; movedDay: number }
    }
    expect(status.unsafePaths.sort()).toEqual([`${day.link} is a symbolic link`, `${qLink} is a symbolic link`].sort())
    const first = whole.byDay.find((d) => d.day === "2024-09-01")!.total
    expect(status.totalEvents).toBe(whole.totalEvents - first)
    expect(status.quarantine).toMatchObject({ total: 0, movedDay: 0 })
    const text = await runCli(["status", "--out", out])
    expect(text.stdout).toMatch(/NOT READ: .*2024-09-01\.ndjson is a symbolic link/)
  })

  it("query: a day file as a link: exit 74 naming it, nothing of it printed", async ({ expect }) => {
    const { out, outside } = copy(openArchive, "query-link")
    const { link, target } = plantLink(out, outside, "events/2024-09-01.ndjson")
    const r = await runCli(["query", "--out", out])
    expect(r.code, r.stderr).toBe(74)
    expect(messageLines(r.stderr).join("\n")).toContain(`Refusing to read ${link}: it is a link`)
    const firstLine = fs.readFileSync(target, "utf8").split("\n")[0]!
    expect(r.stdout.includes(firstLine)).toBe(false)
  })
})
