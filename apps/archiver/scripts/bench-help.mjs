#!/usr/bin/env node
/**
 * Benchmark (not a test): `webex-archiver --help` against `node -e 0` on this machine, both spawned
 * the same way, alternated so that machine load hits both alike. The target is a ratio of 4 or
 * less. `node scripts/bench-help.mjs [runs] [path/to/webex-archiver]` (default 15 runs, this
 * checkout's launcher, built first).
 */
import { execFileSync, spawnSync } from "node:child_process"
import * as path from "node:path"
import { fileURLToPath } from "node:url"

const app = path.resolve(path.dirname(fileURLToPath(import.meta.url)), "..")
const runs = Number(process.argv[2] ?? 15)
const bin = process.argv[3] ?? path.join(app, "bin/webex-archiver.mjs")
if (process.argv[3] === undefined) execFileSync(process.execPath, [path.join(app, "scripts/build.mjs")], { stdio: "inherit" })

const time = (args) => {
  const start = process.hrtime.bigint()
  const r = spawnSync(process.execPath, args, { stdio: ["ignore", "pipe", "pipe"], env: { ...process.env, NO_COLOR: "1" } })
  const ms = Number(process.hrtime.bigint() - start) / 1e6
  if (r.status !== 0) throw new Error(`node ${args.join(" ")} exited ${r.status}: ${r.stderr}`)
  return ms
}
const median = (xs) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)]

time(["-e", "0"])
time([bin, "--help"]) // warm the file cache
const bare = []
const help = []
for (let i = 0; i < runs; i++) {
  bare.push(time(["-e", "0"]))
  help.push(time([bin, "--help"]))
}
const [b, h] = [median(bare), median(help)]
console.log(`node -e 0:                 median ${b.toFixed(0)} ms (min ${Math.min(...bare).toFixed(0)})`)
console.log(`webex-archiver --help:     median ${h.toFixed(0)} ms (min ${Math.min(...help).toFixed(0)})`)
console.log(`ratio: ${(h / b).toFixed(2)}x (target ≤ 4x), ${runs} runs each, node ${process.version}`)
