/**
 * The packages as a stranger gets them: both packed into a temporary folder, installed with npm
 * (no workspace, no pnpm, nothing of this checkout on the resolution path) and used from there.
 *
 * - `npm pack` and `pnpm pack` give the same library tarball;
 * - the library README's install lines, run verbatim (the package name pointed at the tarball),
 *   give a project with one copy of Effect where an ESM script uses the Effect API, the Promise API
 *   (`for await` against the fake Webex) and the test kit, and `require()` loads it too;
 * - the declarations type-check for a consumer on TypeScript 5.x (node16, nodenext, bundler and
 *   the legacy node resolution) and on the workspace's TypeScript 7;
 * - `npm install -g` of both tarballs puts a working `webex-archiver` on the PATH: `--help`, and
 *   `demo` archiving a simulated org and verifying it.
 *
 * Needs the npm registry (for effect, @effect/platform and TypeScript 5). Slow: an end-to-end file.
 */
import { afterAll, beforeAll, describe, expect, it, vi } from "@effect/vitest"
import * as Effect from "effect/Effect"
import * as Exit from "effect/Exit"
import * as Redacted from "effect/Redacted"
import * as Scope from "effect/Scope"
import { execFile } from "node:child_process"
import * as fs from "node:fs"
import * as os from "node:os"
import * as path from "node:path"
import { fileURLToPath } from "node:url"
import { promisify } from "node:util"
import { FakeWebex, SeedOrg } from "../../../packages/events-api/src/testing.js"

// Packing, installing from the npm registry and type-checking take minutes on a shared machine.
vi.setConfig({ testTimeout: 600_000, hookTimeout: 600_000 })

const repo = path.resolve(path.dirname(fileURLToPath(import.meta.url)), "../../..")
const library = path.join(repo, "packages/events-api")
const archiver = path.join(repo, "apps/archiver")
/** The TypeScript 5 a consumer on the previous major has. */
const TYPESCRIPT_5 = "5.9.3"

/** The environment of a machine with only Node and npm: nothing pnpm or vitest put there. */
const cleanEnv = (extra: Record<string, string> = {}): NodeJS.ProcessEnv => {
  const env: NodeJS.ProcessEnv = {}
  for (const [k, v] of Object.entries(process.env)) {
    if (v === undefined || /^(npm_|pnpm_|PNPM|VITEST|NODE_OPTIONS$|WEBEX_|ARCHIVE_DIR$|NO_COLOR$)/i.test(k)) continue
    env[k] = v
  }
  return { ...env, npm_config_fund: "false", npm_config_audit: "false", npm_config_update_notifier: "false", ...extra }
}

interface Ran {
  readonly stdout: string
  readonly stderr: string
}

/** Runs a command to completion; fails with its whole output. */
const run = async (
  file: string,
  args: ReadonlyArray<string>,
  options: { readonly cwd: string; readonly env?: NodeJS.ProcessEnv; readonly timeoutMs?: number }
): Promise<Ran> => {
  try {
    const { stdout, stderr } = await promisify(execFile)(file, [...args], {
      cwd: options.cwd,
      env: options.env ?? cleanEnv(),
      timeout: options.timeoutMs ?? 300_000,
      maxBuffer: 64 * 1024 * 1024,
      encoding: "utf8"
    })
    return { stdout, stderr }
  } catch (error) {
    const e = error as { code?: unknown; stdout?: string; stderr?: string; message: string }
    throw new Error(
      `${file} ${args.join(" ")} (in ${options.cwd}) failed (${String(e.code)}): ${e.message}\n--- stdout\n${e.stdout ?? ""}\n--- stderr\n${e.stderr ?? ""}`
    )
  }
}

/** The library README's `npm install` lines, in order, each split into arguments. */
const readmeInstallLines = (): Array<Array<string>> => {
  const readme = fs.readFileSync(path.join(library, "README.md"), "utf8")
  const install = readme.slice(readme.indexOf("\n## Install\n"), readme.indexOf("\n## ", readme.indexOf("\n## Install\n") + 1))
  const block = /```sh\n([\s\S]*?)```/.exec(install)
  if (block === null) throw new Error("no sh block in the README's Install section")
  return block[1]!.split("\n").filter((l) => l.startsWith("npm install ")).map((l) => l.split(/\s+/).slice(2))
}

/** Every file of a tarball, path → bytes. */
const unpack = async (tarball: string, into: string): Promise<Map<string, Buffer>> => {
  fs.mkdirSync(into, { recursive: true })
  await run("tar", ["xzf", tarball, "-C", into], { cwd: into })
  const files = new Map<string, Buffer>()
  const walk = (dir: string) => {
    for (const entry of fs.readdirSync(dir, { withFileTypes: true })) {
      const p = path.join(dir, entry.name)
      if (entry.isDirectory()) walk(p)
      else files.set(path.relative(into, p), fs.readFileSync(p))
    }
  }
  walk(into)
  return files
}

const only = (dir: string, suffix: string) => {
  const found = fs.readdirSync(dir).filter((f) => f.endsWith(suffix))
  if (found.length !== 1) throw new Error(`expected one *${suffix} in ${dir}, found ${found.join(", ")}`)
  return path.join(dir, found[0]!)
}

let root: string
let libraryTarball: string
let archiverTarball: string
let npmLibraryTarball: string
let project: string
const scope = Effect.runSync(Scope.make())

const ORG = SeedOrg.generateOrg({ count: 120, seed: 5, from: "2024-03-01T00:00:00Z", to: "2024-03-04T00:00:00Z" })

beforeAll(async () => {
  root = fs.mkdtempSync(path.join(os.tmpdir(), "pack-install-"))
  // Both package managers build first (prepack), from the sources of this checkout.
  await run("pnpm", ["pack", "--pack-destination", path.join(root, "pnpm")], { cwd: library, env: process.env })
  await run("pnpm", ["pack", "--pack-destination", path.join(root, "pnpm")], { cwd: archiver, env: process.env })
  fs.mkdirSync(path.join(root, "npm"))
  await run("npm", ["pack", "--pack-destination", path.join(root, "npm")], { cwd: library, env: cleanEnv() })
  libraryTarball = only(path.join(root, "pnpm"), "events-api-0.1.0.tgz")
  archiverTarball = only(path.join(root, "pnpm"), "archiver-0.1.0.tgz")
  npmLibraryTarball = only(path.join(root, "npm"), "events-api-0.1.0.tgz")

  // A fresh project, installed exactly as the README says, plus a consumer's TypeScript 5.
  project = path.join(root, "project")
  fs.mkdirSync(project)
  fs.writeFileSync(path.join(project, "package.json"), JSON.stringify({ name: "consumer", private: true, type: "module" }))
  for (const args of readmeInstallLines()) {
    const resolved = args.map((a) => a === "@webex-compliance/events-api" ? libraryTarball : a)
    await run("npm", ["install", ...resolved], { cwd: project })
  }
  await run("npm", ["install", "--save-dev", `typescript@${TYPESCRIPT_5}`, "@types/node@20"], { cwd: project })
})

afterAll(async () => {
  await Effect.runPromise(Scope.close(scope, Exit.void))
  if (root !== undefined) fs.rmSync(root, { recursive: true, force: true })
})

describe("packed and installed with npm, outside the workspace", () => {
  it("npm pack and pnpm pack give the same library tarball, built JS and declarations only", async () => {
    const fromPnpm = await unpack(libraryTarball, path.join(root, "unpacked-pnpm"))
    const fromNpm = await unpack(npmLibraryTarball, path.join(root, "unpacked-npm"))
    expect([...fromPnpm.keys()].sort()).toEqual([...fromNpm.keys()].sort())
    for (const [file, bytes] of fromPnpm) {
      if (file === "package/package.json") continue
      expect(bytes.equals(fromNpm.get(file)!), file).toBe(true)
    }
    // pnpm reformats the manifest and drops the prepack script; nothing else differs.
    const manifest = (files: Map<string, Buffer>) => {
      const { scripts: _, ...rest } = JSON.parse(files.get("package/package.json")!.toString("utf8")) as Record<string, unknown>
      return rest
    }
    expect(manifest(fromPnpm)).toEqual(manifest(fromNpm))
    const pkg = manifest(fromPnpm) as {
      exports: Record<string, Record<string, string>>
      dependencies?: unknown
      peerDependencies: Record<string, string>
    }
    expect(pkg.dependencies).toBeUndefined()
    expect(Object.keys(pkg.peerDependencies).sort()).toEqual(["@effect/platform", "@effect/platform-node", "effect"])
    for (const [entry, target] of Object.entries(pkg.exports)) {
      if (entry === "./package.json") continue
      expect(target.default, entry).toMatch(/^\.\/dist\/.*\.js$/)
      expect(fromPnpm.has(`package/${target.default!.slice(2)}`), `${entry} → ${target.default}`).toBe(true)
      expect(fromPnpm.has(`package/${target.types!.slice(2)}`), `${entry} → ${target.types}`).toBe(true)
    }
    expect([...fromPnpm.keys()].filter((f) => f.includes("/test/") || f.endsWith(".tsbuildinfo"))).toEqual([])
  })

  it("one copy of Effect; an ESM script runs the Effect API, the Promise API and the test kit; require() loads it", async () => {
    const effects = (await run("npm", ["ls", "effect", "--all", "--parseable"], { cwd: project })).stdout
      .split("\n").filter((l) => l.trim() !== "")
    expect(new Set(effects).size, effects.join("\n")).toBe(1)
    const installed = JSON.parse(fs.readFileSync(path.join(project, "node_modules/effect/package.json"), "utf8")) as { version: string }
    expect(installed.version).toMatch(/^3\./)

    const webex = await Effect.runPromise(Scope.extend(FakeWebex.make({ events: ORG, faults: { rateLimitEvery: 3, retryAfterSeconds: 0 } }), scope))
    fs.writeFileSync(
      path.join(project, "main.mjs"),
      `import { EventsApi, Event } from "@webex-compliance/events-api"
import { EventsClient, EventNotFound } from "@webex-compliance/events-api/promise"
import { SeedOrg } from "@webex-compliance/events-api/testing"
import { NodeHttpClient } from "@effect/platform-node"
import { Effect, Layer, Redacted, Stream } from "effect"

const [baseUrl, token] = process.argv.slice(2)
const viaEffect = await Effect.flatMap(EventsApi.EventsApi, (api) => Stream.runCount(api.list({ max: 25 }))).pipe(
  Effect.provide(EventsApi.layer({ token: Redacted.make(token), baseUrl, retry: { baseDelay: "1 millis" } }).pipe(Layer.provide(NodeHttpClient.layerUndici))),
  Effect.runPromise
)
const client = new EventsClient({ token, baseUrl, retry: { baseDelay: "1 millis" }, logLevel: "none" })
const ids = []
for await (const event of client.list({ max: 25 })) ids.push(event.id)
let notFound = null
try {
  await client.get("no-such-event")
} catch (error) {
  notFound = { instance: error instanceof EventNotFound, error: error instanceof Error, tag: error._tag, status: error.status }
}
await client.close()
console.log(JSON.stringify({ viaEffect, ids, notFound, seeded: SeedOrg.generateOrg({ count: 3, from: "2024-01-01T00:00:00Z", to: "2024-01-02T00:00:00Z" }).length, isEvent: typeof Event.Event }))
`
    )
    const out = await run("node", ["main.mjs", webex.baseUrl, Redacted.value(webex.token)], { cwd: project })
    // The Effect API's retry warnings go to stdout too (Effect's default logger); the result is last.
    const result = JSON.parse(out.stdout.trim().split("\n").at(-1)!) as {
      viaEffect: number
      ids: Array<string>
      notFound: unknown
      seeded: number
      isEvent: string
    }
    const expected = ORG.map((raw) => (JSON.parse(raw) as { id: string }).id)
    expect(result.viaEffect).toBe(ORG.length)
    expect(result.ids.sort()).toEqual(expected.sort())
    expect(result.notFound).toEqual({ instance: true, error: true, tag: "EventNotFound", status: 404 })
    expect(result.seeded).toBe(3)
    expect(result.isEvent).toBe("function")
    expect((await Effect.runPromise(webex.requests)).some((r) => r.status === 429)).toBe(true)

    const required = await run("node", ["-e", "const m = require('@webex-compliance/events-api/promise'); console.log(typeof m.EventsClient)"], {
      cwd: project
    })
    expect(required.stdout.trim()).toBe("function")
  })

  const consumer = `import { Event, EventsApi, type EventsApiError } from "@webex-compliance/events-api"
import { EventNotFound, EventsClient, type Event as PromiseEvent } from "@webex-compliance/events-api/promise"
import { FakeWebex } from "@webex-compliance/events-api/testing"
import { Effect, Stream } from "effect"

export const count: Effect.Effect<number, EventsApiError.EventsApiError, EventsApi.EventsApi> =
  Effect.flatMap(EventsApi.EventsApi, (api) => Stream.runCount(api.list({ resource: "messages" })))

export async function ids(client: EventsClient, signal: AbortSignal): Promise<Array<string>> {
  const out: Array<string> = []
  for await (const event of client.list({ from: new Date(0), max: 100 }, { signal })) out.push(event.id)
  return out
}

export const missing = (error: unknown): string | undefined =>
  error instanceof EventNotFound ? \`\${error.eventId} \${error.status ?? 0} \${error.trackingId ?? ""}\` : undefined

export const same = (event: PromiseEvent): Event.Event => event
export const fake = FakeWebex.make

// Wrong use must not compile: these lines prove the declarations carry real types, not any.
// @ts-expect-error max is a number
export const bad1 = (client: EventsClient) => client.list({ max: "ten" })
// @ts-expect-error get takes an id
export const bad2 = (client: EventsClient) => client.get(42)
`

  // `nodenext` also checks every declaration file (ours and Effect's: the slow part); the others
  // check the consumer's code against them, which fails on a module or type that does not resolve.
  const configs = {
    nodenext: { module: "nodenext", moduleResolution: "nodenext", skipLibCheck: false },
    node16: { module: "node16", moduleResolution: "node16", skipLibCheck: true },
    bundler: { module: "esnext", moduleResolution: "bundler", skipLibCheck: true },
    node: { module: "esnext", moduleResolution: "node", skipLibCheck: true }
  } as const

  const typecheck = async (tsc: ReadonlyArray<string>, names: ReadonlyArray<keyof typeof configs>) => {
    fs.writeFileSync(path.join(project, "consumer.ts"), consumer)
    for (const name of names) {
      fs.writeFileSync(
        path.join(project, `tsconfig.${name}.json`),
        JSON.stringify({
          compilerOptions: {
            ...configs[name],
            target: "ES2022",
            lib: ["ES2022"],
            types: ["node"],
            strict: true,
            noEmit: true
          },
          files: ["consumer.ts"]
        })
      )
      await run(tsc[0]!, [...tsc.slice(1), "-p", `tsconfig.${name}.json`], { cwd: project })
    }
  }

  it(`declarations type-check for a consumer on TypeScript ${TYPESCRIPT_5}: node16, nodenext, bundler, node`, async () => {
    await typecheck(["node", path.join(project, "node_modules/typescript/bin/tsc")], ["nodenext", "node16", "bundler", "node"])
  })

  it("declarations type-check for a consumer on the workspace's TypeScript 7: node16, nodenext, bundler", async () => {
    await typecheck([path.join(repo, "node_modules/.bin/tsc")], ["nodenext", "node16", "bundler"])
  })

  it("npm install -g of both tarballs puts a working webex-archiver on the PATH: --help and demo", async () => {
    const prefix = path.join(root, "global")
    await run("npm", ["install", "--global", "--prefix", prefix, libraryTarball, archiverTarball], { cwd: root })
    const env = cleanEnv({ PATH: `${path.join(prefix, "bin")}${path.delimiter}${process.env.PATH ?? ""}` })
    // No transpiler at run time: the installed program has no dependencies at all.
    const installed = path.join(prefix, "lib/node_modules/@webex-compliance/archiver")
    expect(fs.existsSync(path.join(installed, "node_modules"))).toBe(false)

    const help = await run("webex-archiver", ["--help"], { cwd: root, env })
    for (const command of ["backfill", "run", "status", "demo"]) expect(help.stdout).toContain(command)

    const demo = await run("webex-archiver", ["demo", "--out", path.join(root, "demo"), "--events", "300", "--days", "3"], {
      cwd: root,
      env,
      timeoutMs: 180_000
    })
    expect(demo.stdout).toMatch(/^Verified: all \d+ events the server holds are archived exactly once/m)
  })
})
