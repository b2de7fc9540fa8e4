/**
 * Sealing keeps the quarantine's evidence: a quarantine file whose day is over is recorded in the
 * manifest (SHA-256, size, lines), once; the current day's file is left alone; `verify` then
 * catches a recorded quarantine file edited, truncated or removed, and reports what quarantine
 * holds (moved-day copies, variants) without calling it damage.
 */
import { createHash } from "node:crypto"
import * as fs from "node:fs"
import * as os from "node:os"
import * as path from "node:path"
import * as Effect from "effect/Effect"
import { afterAll, describe, expect, it } from "vitest"
import * as Checkpoint from "../src/Checkpoint.js"
import * as Manifest from "../src/Manifest.js"
import * as Seal from "../src/Seal.js"
import * as Verify from "../src/Verify.js"

const root = fs.mkdtempSync(path.join(os.tmpdir(), "seal-quarantine-"))
afterAll(() => fs.rmSync(root, { recursive: true, force: true }))

const DAY_MS = 86_400_000
const DAY = "2024-09-01"
const start = Date.parse(`${DAY}T00:00:00.000Z`)
/** "Now": 2024-09-10 00:30, so quarantine/2024-09-10 is today's and 2024-09-09 ended 30 minutes ago. */
const now = start + 9 * DAY_MS + 30 * 60_000
const coverage = [[start, start + DAY_MS]] as const

const event = `{"id":"ev-1","resource":"messages","created":"${DAY}T01:00:00.000Z"}\n`
const qLine = (id: string, kind?: string) =>
  `${JSON.stringify({ quarantinedAt: "x", reason: "r", id, ...(kind !== undefined ? { kind, firstDay: DAY } : {}), raw: `{"id":"${id}"}` })}\n`

let count = 0
const archive = async () => {
  const dir = path.join(root, `a${++count}`)
  fs.mkdirSync(path.join(dir, "events"), { recursive: true, mode: 0o700 })
  fs.mkdirSync(path.join(dir, "quarantine"), { mode: 0o700 })
  fs.mkdirSync(path.join(dir, "state"), { mode: 0o700 })
  fs.writeFileSync(path.join(dir, "events", `${DAY}.ndjson`), event, { mode: 0o600 })
  const q = (day: string, text: string) => fs.writeFileSync(path.join(dir, "quarantine", `${day}.ndjson`), text, { mode: 0o600 })
  q("2024-09-05", qLine("junk-1") + qLine("ev-9", "movedDay") + qLine("ev-8", "variant"))
  q("2024-09-09", qLine("junk-2"))
  q("2024-09-10", qLine("junk-3"))
  await Effect.runPromise(Checkpoint.saveCheckpoint(dir, { version: 1, scope: {}, covered: [{ from: start, through: start + DAY_MS }], updatedAt: now }))
  return dir
}

const seal = (dir: string, at = now) => Effect.runPromise(Seal.sealSettled({ dir, coverage, now: at, settle: 0 }))
const verify = (dir: string) => Effect.runPromise(Verify.verify({ dir }))
const quarantineEntries = async (dir: string) =>
  (await Manifest.readEntries(dir)).flatMap(({ entry }) => entry.kind === "quarantine" ? [entry] : [])

describe("sealing and the quarantine", () => {
  it("records past days' quarantine files once (digest, size, lines); today's and the last hour's are left open", async () => {
    const dir = await archive()
    const r = await seal(dir)
    expect(r.sealed).toEqual([`events/${DAY}.ndjson.gz`])
    // 2024-09-09 ended 30 minutes ago: within the grace, a batch stamped before midnight may still land.
    expect(r.quarantine).toEqual(["quarantine/2024-09-05.ndjson"])
    const bytes = fs.readFileSync(path.join(dir, "quarantine", "2024-09-05.ndjson"))
    const [e] = await quarantineEntries(dir)
    expect(e).toMatchObject({
      day: "2024-09-05",
      path: "quarantine/2024-09-05.ndjson",
      sha256: createHash("sha256").update(bytes).digest("hex"),
      bytes: bytes.length,
      lines: 3
    })

    // Later: 2024-09-09 is recorded, 2024-09-05 not again.
    const later = await seal(dir, now + 2 * 3_600_000)
    expect(later.quarantine).toEqual(["quarantine/2024-09-09.ndjson"])
    expect((await quarantineEntries(dir)).map((q) => q.path)).toEqual(["quarantine/2024-09-05.ndjson", "quarantine/2024-09-09.ndjson"])

    const report = await verify(dir)
    expect(report.problems).toEqual([])
    expect(report.intact).toBe(true)
    expect(report.quarantine).toEqual({ total: 5, movedDay: 1, variants: 1 })
    // The empty-day logic is not misled by a quarantine entry's day: no empty entry for 2024-09-05.
    expect((await Manifest.readEntries(dir)).filter(({ entry }) => entry.kind === "empty")).toEqual([])
  })

  it("verify names a recorded quarantine file edited, truncated or removed", async () => {
    const dirs = await Promise.all([archive(), archive(), archive()])
    for (const d of dirs) await seal(d)
    const file = (d: string) => path.join(d, "quarantine", "2024-09-05.ndjson")
    fs.writeFileSync(file(dirs[0]!), fs.readFileSync(file(dirs[0]!), "utf8").replace("junk-1", "junk-X"))
    fs.truncateSync(file(dirs[1]!), 10)
    fs.rmSync(file(dirs[2]!))
    const kinds = await Promise.all(dirs.map(async (d) => (await verify(d)).problems.map((p) => `${p.kind} ${p.path}`)))
    expect(kinds).toEqual([
      ["file-edited quarantine/2024-09-05.ndjson"],
      ["file-truncated quarantine/2024-09-05.ndjson"],
      ["file-removed quarantine/2024-09-05.ndjson"]
    ])
  })

  it("a quarantine file planted as a link: the seal refuses it (ArchiveUnsafe), verify reports it", async () => {
    const dir = await archive()
    const outside = path.join(root, "outside-q")
    fs.mkdirSync(outside)
    const link = path.join(dir, "quarantine", "2024-09-05.ndjson")
    fs.renameSync(link, path.join(outside, "q.ndjson"))
    fs.symlinkSync(path.join(outside, "q.ndjson"), link)
    const r = await Effect.runPromise(Effect.either(Seal.sealSettled({ dir, coverage, now, settle: 0 })))
    expect(r._tag === "Left" && r.left._tag).toBe("ArchiveUnsafe")
    expect(r._tag === "Left" && r.left.message).toContain(link)
    const report = await verify(dir)
    expect(report.problems.filter((p) => p.kind === "unsafe-path").map((p) => p.path)).toEqual(["quarantine/2024-09-05.ndjson"])
  })
})
