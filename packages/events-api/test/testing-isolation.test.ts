/**
 * `@webex-compliance/events-api/testing` without `@effect/platform-node` (issue 7): a user testing
 * against `InMemoryEventsApi` or generating data with `SeedOrg` must not need the Node platform
 * package, which is an optional peer dependency. Proven in a child Node process in which every
 * resolution of `@effect/platform-node` fails, as it does where the package is not installed.
 */
import { assert, describe, it } from "@effect/vitest"
import { execFile } from "node:child_process"
import { createRequire } from "node:module"
import * as path from "node:path"
import { fileURLToPath, pathToFileURL } from "node:url"

const packageDir = path.resolve(path.dirname(fileURLToPath(import.meta.url)), "..")
const testingSource = pathToFileURL(path.join(packageDir, "src/testing.ts")).href

// The library declares no TypeScript runner of its own; the archiver's tsx (same workspace) loads
// the sources. Resolved through that package, so pnpm's layout is respected.
const tsxLoader = createRequire(path.resolve(packageDir, "../../apps/archiver/package.json")).resolve("tsx")

/** A module hook that refuses @effect/platform-node by name and by resolved location. */
const blockHook = `
const blocked = (s) => /(^|\\/)@effect\\/platform-node(\\/|$)/.test(s) || /@effect\\+platform-node@/.test(s)
export async function resolve(specifier, context, next) {
  if (blocked(specifier)) {
    throw Object.assign(new Error("blocked: " + specifier), { code: "ERR_MODULE_NOT_FOUND" })
  }
  const result = await next(specifier, context)
  if (blocked(result.url)) {
    throw Object.assign(new Error("blocked: " + result.url), { code: "ERR_MODULE_NOT_FOUND" })
  }
  return result
}`

const register = `import { register } from "node:module"
register(${JSON.stringify(`data:text/javascript,${encodeURIComponent(blockHook)}`)})`

/** Runs node with `args` in the package directory, without blocking the test worker. */
const node = (args: ReadonlyArray<string>) =>
  new Promise<{ status: number | null; stdout: string; stderr: string }>((resolve) => {
    execFile(process.execPath, args, { cwd: packageDir, encoding: "utf8", timeout: 120_000, env: { ...process.env, NODE_OPTIONS: "" } }, (error, stdout, stderr) =>
      resolve({ status: error === null ? 0 : typeof error.code === "number" ? error.code : null, stdout, stderr }))
  })

/** Runs `program` (an ES module body) in a child with the hook and tsx. */
const runChild = (program: string) =>
  node([
    "--import",
    `data:text/javascript,${encodeURIComponent(register)}`,
    "--import",
    pathToFileURL(tsxLoader).href,
    "--input-type=module",
    "--eval",
    program
  ])

describe("/testing without @effect/platform-node", () => {
  it("InMemoryEventsApi and SeedOrg work; only starting a FakeWebex asks for the package", { timeout: 150_000 }, async () => {
    const child = await runChild(`
      import * as Effect from "effect/Effect"
      import * as Stream from "effect/Stream"
      import * as Chunk from "effect/Chunk"
      const { InMemoryEventsApi, SeedOrg, FakeWebex } = await import(${JSON.stringify(testingSource)})
      const events = SeedOrg.generateOrg({ count: 30, from: "2024-01-01T00:00:00Z", to: "2024-01-02T00:00:00Z" })
      const api = await Effect.runPromise(InMemoryEventsApi.make(events))
      const listed = await Effect.runPromise(Stream.runCollect(api.list({ max: 7 })))
      console.log("listed=" + Chunk.size(listed))
      // The control: the block is real, and FakeWebex is where the package is wanted.
      const exit = await Effect.runPromiseExit(Effect.scoped(FakeWebex.make({ events })))
      console.log("fakeWebex=" + exit._tag)
      console.log("reason=" + JSON.stringify(String(exit.cause?.defect?.message ?? "")))
      console.log("cause=" + JSON.stringify(String(exit.cause?.defect?.cause?.message ?? "")))
    `)
    assert.strictEqual(child.status, 0, child.stderr)
    assert.include(child.stdout, "listed=30")
    assert.include(child.stdout, "fakeWebex=Failure")
    assert.include(child.stdout, "needs @effect/platform-node")
    assert.include(child.stdout, "blocked: @effect/platform-node/")
  })

  it("the same child can start a FakeWebex once the block is lifted (the harness itself works)", { timeout: 150_000 }, async () => {
    const child = await node(
      [
        "--import",
        pathToFileURL(tsxLoader).href,
        "--input-type=module",
        "--eval",
        `
        import * as Effect from "effect/Effect"
        const { FakeWebex } = await import(${JSON.stringify(testingSource)})
        const url = await Effect.runPromise(Effect.scoped(Effect.map(FakeWebex.make(), (w) => w.baseUrl)))
        console.log("baseUrl=" + url)
        `
      ]
    )
    assert.strictEqual(child.status, 0, child.stderr)
    assert.match(child.stdout, /baseUrl=http:\/\/127\.0\.0\.1:\d+\/v1/)
  })
})
