/**
 * Sealing never reads or writes through a planted link (issue 10), proved on `Seal.sealSettled`
 * itself: the CLI's `seal` takes the archive lock first, whose own checks would hide a seal that
 * followed links, and the archiver seals from inside its session.
 */
import * as fs from "node:fs"
import * as os from "node:os"
import * as path from "node:path"
import * as Effect from "effect/Effect"
import { afterAll, describe, expect, it } from "vitest"
import * as Seal from "../src/Seal.js"

const root = fs.mkdtempSync(path.join(os.tmpdir(), "seal-hostile-"))
afterAll(() => fs.rmSync(root, { recursive: true, force: true }))

const DAY = "2024-09-01"
const start = Date.parse(`${DAY}T00:00:00.000Z`)
const coverage = [[start, start + 2 * 86_400_000]] as const
const line = (n: number) => `{"id":"ev-${n}","resource":"messages","created":"${DAY}T0${n}:00:00.000Z"}\n`

let count = 0
/** An archive with one open day file, and a folder outside it. */
const archive = () => {
  const dir = path.join(root, `a${++count}`)
  fs.mkdirSync(path.join(dir, "events"), { recursive: true, mode: 0o700 })
  fs.writeFileSync(path.join(dir, "events", `${DAY}.ndjson`), line(1) + line(2), { mode: 0o600 })
  const outside = path.join(root, `outside${count}`)
  fs.mkdirSync(outside)
  return { dir, outside }
}

/** Replaces `rel` by a link to a copy outside; returns the link and the target. */
const plant = (dir: string, outside: string, rel: string) => {
  const link = path.join(dir, rel)
  const target = path.join(outside, path.basename(rel))
  fs.renameSync(link, target)
  fs.symlinkSync(target, link)
  return { link, target }
}

const seal = (dir: string) =>
  Effect.runPromise(Effect.either(Seal.sealSettled({ dir, coverage, now: start + 10 * 86_400_000, settle: 0 })))

/** Every file below `dir` with its bytes (links as their target text). */
const snapshot = (dir: string): Record<string, string> => {
  const out: Record<string, string> = {}
  const walk = (p: string) => {
    const st = fs.lstatSync(p)
    if (st.isDirectory()) for (const n of fs.readdirSync(p)) walk(path.join(p, n))
    else out[path.relative(dir, p)] = st.isSymbolicLink() ? `-> ${fs.readlinkSync(p)}` : fs.readFileSync(p).toString("base64")
  }
  walk(dir)
  return out
}

describe("Seal.sealSettled and planted links", () => {
  it("a sound archive seals (the baseline the cases below differ from)", async () => {
    const { dir } = archive()
    const r = await seal(dir)
    expect(r._tag).toBe("Right")
    expect(fs.existsSync(path.join(dir, "events", `${DAY}.ndjson.gz`))).toBe(true)
    expect(fs.existsSync(path.join(dir, "events", `${DAY}.ndjson`))).toBe(false)
  })

  const cases = [
    { name: "the open day file", rel: `events/${DAY}.ndjson` },
    { name: "events/", rel: "events" }
  ]
  for (const { name, rel } of cases) {
    it(`${name} as a link: ArchiveUnsafe naming it; nothing sealed, nothing outside changed`, async () => {
      const { dir, outside } = archive()
      const { link, target } = plant(dir, outside, rel)
      const before = snapshot(outside)
      const r = await seal(dir)
      expect(r._tag).toBe("Left")
      if (r._tag !== "Left") return
      expect(r.left._tag).toBe("ArchiveUnsafe")
      expect(r.left.message).toContain(link)
      expect(snapshot(outside)).toEqual(before)
      expect(fs.existsSync(target)).toBe(true)
      expect(fs.lstatSync(link).isSymbolicLink()).toBe(true)
      expect(fs.existsSync(path.join(dir, "manifest.ndjson"))).toBe(false)
    })
  }

  it("manifest.ndjson as a link (to a real manifest, or dangling): ArchiveUnsafe, the target untouched", async () => {
    const { dir, outside } = archive()
    const target = path.join(outside, "manifest.ndjson")
    fs.symlinkSync(target, path.join(dir, "manifest.ndjson"))
    const dangling = await seal(dir)
    expect(dangling._tag === "Left" && dangling.left._tag).toBe("ArchiveUnsafe")
    expect(fs.existsSync(target), "no manifest created through the link").toBe(false)
    expect(fs.existsSync(path.join(dir, "events", `${DAY}.ndjson`)), "the day stays open").toBe(true)

    fs.writeFileSync(target, "")
    const linked = await seal(dir)
    expect(linked._tag === "Left" && linked.left._tag).toBe("ArchiveUnsafe")
    expect(fs.readFileSync(target, "utf8")).toBe("")
    expect(fs.readdirSync(path.join(dir, "events")).filter((f) => f.endsWith(".gz"))).toEqual([])
  })

  it("an orphan segment as a link: refused, not skipped as unreadable and not adopted", async () => {
    const { dir, outside } = archive()
    // What an interrupted seal leaves (segment linked, no manifest entry), then swapped for a link.
    expect((await seal(dir))._tag).toBe("Right")
    fs.rmSync(path.join(dir, "manifest.ndjson"))
    fs.writeFileSync(path.join(dir, "events", `${DAY}.ndjson`), line(1) + line(2), { mode: 0o600 })
    const { link } = plant(dir, outside, `events/${DAY}.ndjson.gz`)
    const r = await seal(dir)
    expect(r._tag === "Left" && r.left._tag).toBe("ArchiveUnsafe")
    expect(r._tag === "Left" && r.left.message).toContain(link)
    expect(fs.existsSync(path.join(dir, "manifest.ndjson"))).toBe(false)
  })
})

describe("Seal.sealSettled and resource names", () => {
  it("counts a resource named like an Object.prototype member (valueOf, __proto__) like any other", async () => {
    const { dir } = archive()
    const ev = (n: number, resource: string) =>
      `{"id":"ev-${n}","resource":"${resource}","created":"${DAY}T0${n}:00:00.000Z"}\n`
    fs.writeFileSync(path.join(dir, "events", `${DAY}.ndjson`), ev(1, "valueOf") + ev(2, "__proto__") + ev(3, "messages"))
    expect((await seal(dir))._tag).toBe("Right")
    const entries = fs.readFileSync(path.join(dir, "manifest.ndjson"), "utf8").trim().split("\n")
      .map((l) => JSON.parse(l) as { byResource?: Record<string, number> })
    const byResource = entries.find((e) => e.byResource !== undefined)?.byResource
    expect(byResource).toBeDefined()
    expect(Object.entries(byResource!)).toEqual([["valueOf", 1], ["__proto__", 1], ["messages", 1]])
  })
})
