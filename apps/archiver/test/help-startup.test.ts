/**
 * `webex-archiver --help` must start fast (issue 6: within 4× `node -e 0`; measured by
 * `pnpm bench:help`). What makes it fast is what it does not load: the bundle's entry reaches
 * the command declarations and @effect/cli statically, and the implementations (HTTP client,
 * archive, fake server) only through `import()` when a command runs. This pins that structure
 * on the built bundle, which is what runs.
 */
import * as fs from "node:fs"
import * as path from "node:path"
import { describe, expect, it } from "vitest"
import { repoRoot } from "./support/cli.js"

const dist = path.join(repoRoot, "apps/archiver/dist")

/** The files a module loads before it runs (static imports, transitively), with their text. */
const staticClosure = (entry: string): Map<string, string> => {
  const seen = new Map<string, string>()
  const visit = (file: string) => {
    if (seen.has(file)) return
    const text = fs.readFileSync(file, "utf8")
    seen.set(file, text)
    // Minified ESM: `import{a as b}from"./chunk-X.mjs"` or `import"./chunk-X.mjs"`; not `import("…")`.
    for (const m of text.matchAll(/(?:\bfrom|\bimport)\s*"(\.{1,2}\/[^"]+\.mjs)"/g)) visit(path.resolve(path.dirname(file), m[1]!))
  }
  visit(entry)
  return seen
}

const dynamicChunk = (prefix: string) => {
  const name = fs.readdirSync(path.join(dist, "chunks")).find((f) => f.startsWith(`${prefix}-`) && f.endsWith(".mjs"))
  expect(name, `a lazily loaded ${prefix} chunk`).toBeDefined()
  return path.join(dist, "chunks", name!)
}

// Strings only the HTTP client (@effect/platform-node's agent, over node:http) and the events-api
// service carry.
const HTTP_CLIENT = "@effect/platform-node/Http/NodeClient/HttpAgent"
const EVENTS_API = "@webex-compliance/events-api/EventsApi"

describe("the built CLI's start-up", () => {
  it("loads neither the HTTP client nor the Events API service for --help or a refused flag", () => {
    const help = [...staticClosure(path.join(dist, "main.mjs")).values()].join("\n")
    expect(help).toContain("Keeps a complete, exactly-once")
    expect(help).not.toContain(HTTP_CLIENT)
    expect(help).not.toContain(EVENTS_API)
    // The implementations are there, behind import(): the markers above are real.
    const commands = [...staticClosure(dynamicChunk("Commands")).values()].join("\n")
    expect(commands).toContain(HTTP_CLIENT)
    expect(commands).toContain(EVENTS_API)
    expect(fs.readFileSync(path.join(dist, "main.mjs"), "utf8")).toMatch(/import\("\.\/chunks\/Commands-[A-Z0-9]+\.mjs"\)/)
    expect(fs.readFileSync(path.join(dist, "main.mjs"), "utf8")).toMatch(/import\("\.\/chunks\/EvidenceCommands-[A-Z0-9]+\.mjs"\)/)
  })
})
