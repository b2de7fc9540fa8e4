// A/B of `list()` builds against the raw floor's fetch-and-parse, alternated in one run on one fake
// server (the e2e bench's own server.mjs, floor.mjs and usage.mjs). For iterating on issue 8's
// `list()` targets without the archiver's runs; the e2e bench stays the measure of record.
//
// usage: node ab.mjs [--events 200000 | --attach server-line.json] [--rounds 3] [--max 1000] [dist ...]
//        (builds are directories of packages/events-api, default: dist)
import { spawn } from "node:child_process"
import * as fs from "node:fs"
import * as os from "node:os"
import * as path from "node:path"
import * as readline from "node:readline"
import { fileURLToPath } from "node:url"

const here = path.dirname(fileURLToPath(import.meta.url))
const e2e = path.resolve(here, "../../../../apps/archiver/bench/e2e")
const argv = process.argv.slice(2)
const opt = (name, fallback) => {
  const i = argv.indexOf(`--${name}`)
  if (i < 0) return fallback
  const [, value] = argv.splice(i, 2)
  return Number(value)
}
const events = opt("events", 200_000)
const rounds = opt("rounds", 3)
const max = opt("max", 1000)
const attachAt = argv.indexOf("--attach")
// A server already running (its first line saved to a file): saves its start-up between runs.
const attached = attachAt < 0 ? undefined : JSON.parse(fs.readFileSync(argv.splice(attachAt, 2)[1], "utf8"))
const builds = argv.length > 0 ? argv : ["dist"]
const from = attached?.from ?? "2024-01-01T00:00:00.000Z"
const to = attached?.to ?? "2024-01-31T00:00:00.000Z"

const server = attached === undefined
  ? spawn(process.execPath, [path.join(e2e, "server.mjs"), "--events", String(events), "--from", from, "--to", to], {
    stdio: ["pipe", "pipe", "inherit"]
  })
  : undefined
const info = attached ??
  await new Promise((resolve) => readline.createInterface({ input: server.stdout }).once("line", (l) => resolve(JSON.parse(l))))
const tmp = fs.mkdtempSync(path.join(os.tmpdir(), "ab-"))

const measure = (args, env) =>
  new Promise((resolve, reject) => {
    const usage = path.join(tmp, "usage.json")
    const started = process.hrtime.bigint()
    const child = spawn(process.execPath, ["--import", path.join(e2e, "usage.mjs"), ...args], {
      env: { ...process.env, ...env, WEBEX_TOKEN: info.token, BENCH_USAGE_FILE: usage },
      stdio: ["ignore", "pipe", "inherit"]
    })
    let out = ""
    child.stdout.setEncoding("utf8").on("data", (d) => (out += d))
    child.once("close", (code) => {
      if (code !== 0) return reject(new Error(`${args.join(" ")} failed: ${code}`))
      const u = JSON.parse(fs.readFileSync(usage, "utf8"))
      resolve({
        wall: Number(process.hrtime.bigint() - started) / 1e9,
        cpu: (u.userMs + u.systemMs) / 1000,
        rss: u.maxRssKiB / 1024,
        events: JSON.parse(out.trim().split("\n").at(-1)).events
      })
    })
  })

const contestants = [
  ["floor-parse", () => measure([path.join(e2e, "floor.mjs"), `${info.baseUrl}/events?from=${from}&to=${to}&max=${max}`, "--no-disk"], {})],
  ...builds.map((b) => [b, () => measure([path.join(e2e, "list.mjs"), info.baseUrl, from, to, String(max)], { LIB_DIST: b })])
]
const runs = Object.fromEntries(contestants.map(([name]) => [name, []]))
for (let r = 0; r < rounds; r++) {
  for (const [name, run] of contestants) {
    const m = await run()
    if (m.events !== info.events) throw new Error(`${name} listed ${m.events} of ${events}`)
    runs[name].push(m)
    console.error(`round ${r + 1} ${name}: wall ${m.wall.toFixed(2)} s, cpu ${m.cpu.toFixed(2)} s, rss ${m.rss.toFixed(1)} MiB`)
  }
}
const median = (xs) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)]
const floor = median(runs["floor-parse"].map((m) => m.wall))
console.log(`| ${info.events} events, ${rounds} rounds (medians) | wall | CPU | peak RSS | wall / floor-parse |`)
console.log("| --- | --- | --- | --- | --- |")
for (const [name] of contestants) {
  const ms = runs[name]
  const wall = median(ms.map((m) => m.wall))
  console.log(`| ${name} | ${wall.toFixed(2)} s | ${median(ms.map((m) => m.cpu)).toFixed(2)} s | ${median(ms.map((m) => m.rss)).toFixed(1)} MiB | ${(wall / floor).toFixed(2)} |`)
}
server?.stdin.end()
fs.rmSync(tmp, { recursive: true, force: true })
