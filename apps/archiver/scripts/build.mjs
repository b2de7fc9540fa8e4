#!/usr/bin/env node
/**
 * Builds `webex-archiver` into dist/: one ESM program (plus lazily loaded chunks) holding the app,
 * the events-api library (from its TypeScript sources, through the `@webex-compliance/source`
 * export condition) and Effect. The installed CLI therefore needs nothing at run time but Node:
 * no transpiler, no dependency resolution, and --help parses one file instead of hundreds.
 *
 * `node scripts/build.mjs` rebuilds only when a source (or the lockfile, or this script) is newer
 * than the output, so `pnpm archiver`, the test setup and prepack call it every time; `--force`
 * always rebuilds. A rebuild replaces dist/ whole, so no chunk of an older build survives, and
 * swaps it in by renames, so a CLI started meanwhile (a test in parallel) never finds it half-written.
 */
import * as esbuild from "esbuild"
import * as fs from "node:fs"
import * as path from "node:path"
import { fileURLToPath } from "node:url"

const app = path.resolve(path.dirname(fileURLToPath(import.meta.url)), "..")
const dist = path.join(app, "dist")
const entry = path.join(app, "dist/main.mjs")
const inputs = [
  path.join(app, "src"),
  path.join(app, "../../packages/events-api/src"),
  path.join(app, "package.json"),
  path.join(app, "../../pnpm-lock.yaml"),
  fileURLToPath(import.meta.url)
]

const newest = (p) => {
  const stat = fs.statSync(p, { throwIfNoEntry: false })
  if (stat === undefined) return 0
  if (!stat.isDirectory()) return stat.mtimeMs
  let max = stat.mtimeMs
  for (const name of fs.readdirSync(p)) max = Math.max(max, newest(path.join(p, name)))
  return max
}

// `--no-minify` (implies --force): readable names in CPU and heap profiles of the bundle.
const readable = process.argv.includes("--no-minify")
const force = readable || process.argv.includes("--force")
const built = fs.statSync(entry, { throwIfNoEntry: false })?.mtimeMs ?? 0
if (!force && built > Math.max(...inputs.map(newest))) process.exit(0)

const fresh = `${dist}.${process.pid}.tmp`
const old = `${dist}.${process.pid}.old`
fs.rmSync(fresh, { recursive: true, force: true })
await esbuild.build({
  absWorkingDir: app,
  // The page decoder thread (PageSorter.layerWorker) is an entry of its own, sharing chunks.
  entryPoints: { main: "src/main.ts", sortWorker: "src/sortWorker.ts" },
  outdir: fresh,
  outExtension: { ".js": ".mjs" },
  bundle: true,
  // Dynamic import()s of the app become chunks, loaded only by the commands that need them.
  splitting: true,
  chunkNames: "chunks/[name]-[hash]",
  format: "esm",
  platform: "node",
  target: "node20",
  conditions: ["@webex-compliance/source"],
  // Less to parse at every start. Names need not survive: tagged errors take `name` from their
  // `_tag`, and nothing here reads `constructor.name`.
  minify: !readable,
  keepNames: false,
  sourcemap: "linked",
  sourcesContent: false,
  legalComments: "linked",
  // A few bundled CommonJS modules (ws, undici's helpers) call require() for Node built-ins.
  banner: { js: "import { createRequire as __createRequire } from \"node:module\"; const require = __createRequire(import.meta.url);" },
  logLevel: "warning"
})
try {
  fs.renameSync(dist, old)
} catch (e) {
  if (e.code !== "ENOENT") throw e
}
try {
  fs.renameSync(fresh, dist)
} catch (e) {
  // Another build (a second test run) swapped its own, equally fresh, output in first.
  if (e.code !== "ENOTEMPTY" && e.code !== "EEXIST") throw e
}
fs.rmSync(fresh, { recursive: true, force: true })
fs.rmSync(old, { recursive: true, force: true })
