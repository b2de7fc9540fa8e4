// The end-to-end benchmark of issue 8: what users feel, in one run, as ratios to a raw floor.
//
// One fake Webex server (its own process, loopback) holds `--events` events over `--days` days. In
// each of `--rounds` rounds, alternated so that drift in the machine's load hits every contestant
// alike, it runs:
//   floor        floor.mjs: fetch -> JSON.parse -> one line per event appended -> one fsync
//   archiver     `webex-archiver backfill --settle 36500d` through apps/archiver/bin/webex-archiver.mjs
//                (the settle time keeps every day open: the floor compresses nothing, so the ratio
//                compares like with like; sealing is measured on its own, below)
//   list         list.mjs: the library's `EventsApi.list()`, events counted, no disk, loaded from
//                node_modules as an application that imports it runs it (the targets are held on this)
//   listBundled  list-app.mjs, the same program bundled by esbuild (as the archiver ships): what a
//                library user's deployed app pays (reported beside it)
//   floor-parse  floor.mjs --no-disk: the floor's fetch-and-parse alone (what `list()` is held to)
//   archiverThread  the same with WEBEX_ARCHIVER_DECODE_THREAD=1: pages decoded on a thread of their own
//                (reported beside the default; the targets are held on the default)
// Each child is measured from outside (wall) and from inside (CPU user+sys and peak RSS, written
// at exit by the usage.mjs preload). Then the archiver again at `--big` events (memory: over the
// same days, five times denser, and over proportionally more days at the same density), `status`
// on that archive; `seal --settle 0` on the last round's archive (what a backfill's own sealing
// costs: gzip and manifest of every day) and `status` after it; a long sparse backfill
// (`--sparse-events` over `--sparse-days`, alternated: the floor, the archiver, and the archiver
// with fixed windows, `--max-window` equal to `--window`, as before windows grew with sparseness);
// and the mean extra wait beyond `Retry-After: 1` (a server answering every
// `--rate-limit-every`th request 429; the gap from each 429 to its retry, minus one second).
// Writes `--results`/latest.md and latest.json.
//
// usage: node bench/e2e/run.mjs [--events 200000] [--days 30] [--rounds 3] [--big 1000000]
//          [--max 1000] [--retry-events 20000] [--rate-limit-every 5] [--results bench/e2e/results]
//          [--baseline <other checkout>/apps/archiver/bin/webex-archiver.mjs]
//          [--sparse-events 100000] [--sparse-days 1500]
//        (--big 0 skips the large run, --sparse-events 0 the sparse one; `pnpm bench:e2e -- --events 20000`
//        passes them through)
import { execFileSync, spawn, spawnSync } from "node:child_process"
import * as fs from "node:fs"
import * as os from "node:os"
import * as path from "node:path"
import * as readline from "node:readline"
import { fileURLToPath } from "node:url"
import { archiverBin, repoRoot } from "./resolve.mjs"

const here = path.dirname(fileURLToPath(import.meta.url))

// ---------------------------------------------------------------------------------------------
// Options
// ---------------------------------------------------------------------------------------------

const DEFAULTS = {
  events: 200_000,
  days: 30,
  rounds: 3,
  big: 1_000_000,
  max: 1000,
  "retry-events": 20_000,
  "rate-limit-every": 5,
  // A long, sparse backfill (years of a small org): 0 skips it.
  "sparse-events": 100_000,
  "sparse-days": 1500,
  results: path.join(here, "results"),
  // Another build's bin/webex-archiver.mjs (e.g. an export of the previous commit, built): run as
  // one more contestant, alternated with the others, for before/after figures from one run.
  baseline: ""
}

const parseArgs = (argv) => {
  const options = { ...DEFAULTS }
  for (let i = 0; i < argv.length; i++) {
    const arg = argv[i]
    if (arg === "--") continue // what `pnpm bench:e2e -- ...` may pass along
    const m = /^--([a-z-]+)(?:=(.*))?$/.exec(arg)
    if (m === null || !(m[1] in DEFAULTS)) throw new Error(`unknown argument ${arg}; known: ${Object.keys(DEFAULTS).join(", ")}`)
    const value = m[2] ?? argv[++i]
    if (value === undefined) throw new Error(`--${m[1]} needs a value`)
    options[m[1]] = typeof DEFAULTS[m[1]] === "number" ? Number(value) : value
    if (typeof DEFAULTS[m[1]] === "number" && !(Number.isInteger(options[m[1]]) && options[m[1]] >= 0)) {
      throw new Error(`--${m[1]} must be a non-negative integer, got ${value}`)
    }
  }
  if (options.events < 1 || options.days < 1 || options.rounds < 1 || options.max < 1) {
    throw new Error("--events, --days, --rounds and --max must be at least 1")
  }
  return options
}

// ---------------------------------------------------------------------------------------------
// Processes
// ---------------------------------------------------------------------------------------------

/** The environment of every child: nothing of a test runner's, nothing that steers Node. */
const childEnv = (extra = {}) => {
  const env = {}
  for (const [k, v] of Object.entries(process.env)) {
    if (v === undefined || k === "NODE_OPTIONS" || k.startsWith("VITEST") || k === "TEST") continue
    if (k === "WEBEX_TOKEN" || k === "WEBEX_BASE_URL" || k === "ARCHIVE_DIR") continue
    env[k] = v
  }
  return { ...env, ...extra }
}

/** A running fake server process; resolves once it prints its address. */
const startServer = (args) =>
  new Promise((resolve, reject) => {
    const child = spawn(process.execPath, [path.join(here, "server.mjs"), ...args], {
      cwd: repoRoot,
      env: childEnv(),
      stdio: ["pipe", "pipe", "inherit"]
    })
    const lines = readline.createInterface({ input: child.stdout })
    const waiting = []
    let info
    lines.on("line", (line) => {
      if (info === undefined) {
        info = JSON.parse(line)
        resolve({
          info,
          requests: () =>
            new Promise((r) => {
              waiting.push(r)
              child.stdin.write("requests\n")
            }),
          stop: () =>
            new Promise((r) => {
              child.once("close", r)
              child.stdin.end()
            })
        })
      } else {
        waiting.shift()?.(JSON.parse(line))
      }
    })
    child.once("error", reject)
    child.once("close", (code) => {
      if (info === undefined) reject(new Error(`the fake server exited (${code}) before it started`))
    })
  })

let usageSerial = 0

/**
 * Runs one measured child to its end: wall time from here, CPU and peak RSS from inside (usage.mjs).
 * Rejects when the child fails: a benchmark of a broken run measures nothing.
 */
const measure = (label, argv, env, tmp) =>
  new Promise((resolve, reject) => {
    const usageFile = path.join(tmp, `usage-${process.pid}-${++usageSerial}.json`)
    const started = process.hrtime.bigint()
    const child = spawn(process.execPath, ["--import", path.join(here, "usage.mjs"), ...argv], {
      cwd: repoRoot,
      env: childEnv({ ...env, BENCH_USAGE_FILE: usageFile }),
      stdio: ["ignore", "pipe", "pipe"]
    })
    let stdout = ""
    let stderr = ""
    child.stdout.setEncoding("utf8").on("data", (d) => (stdout += d))
    child.stderr.setEncoding("utf8").on("data", (d) => (stderr = (stderr + d).slice(-20_000)))
    child.once("error", reject)
    child.once("close", (code, signal) => {
      const wallMs = Number(process.hrtime.bigint() - started) / 1e6
      if (code !== 0 || !fs.existsSync(usageFile)) {
        reject(new Error(`${label} failed (code ${code}, signal ${signal}):\n${stdout.slice(-2000)}\n${stderr.slice(-4000)}`))
        return
      }
      const usage = JSON.parse(fs.readFileSync(usageFile, "utf8"))
      fs.rmSync(usageFile, { force: true })
      resolve({
        wallMs: round(wallMs),
        cpuMs: round(usage.userMs + usage.systemMs),
        userMs: round(usage.userMs),
        systemMs: round(usage.systemMs),
        peakRssMiB: round(usage.maxRssKiB / 1024),
        stdout
      })
    })
  })

// ---------------------------------------------------------------------------------------------
// Contestants
// ---------------------------------------------------------------------------------------------

const lastJson = (stdout) => JSON.parse(stdout.trim().split("\n").at(-1))

const backfilledCount = (stdout) => {
  const m = /Back-fill complete: (\d+) new events archived/.exec(stdout)
  if (m === null) throw new Error(`no back-fill summary in:\n${stdout.slice(-2000)}`)
  return Number(m[1])
}

const contestants = {
  floor: {
    title: "raw floor: fetch → JSON.parse → a line per event → one fsync",
    run: async (server, o, tmp) => {
      const file = path.join(tmp, `floor-${++usageSerial}.ndjson`)
      const r = await measure("floor", [path.join(here, "floor.mjs"), firstUrl(server, o), file], { WEBEX_TOKEN: server.info.token }, tmp)
      fs.rmSync(file, { force: true })
      return { ...r, events: lastJson(r.stdout).events }
    }
  },
  archiver: {
    title: "`webex-archiver backfill` (nothing sealed)",
    run: async (server, o, tmp) => {
      const out = path.join(tmp, `archive-${++usageSerial}`)
      const r = await runArchiver(server, o, out, tmp)
      // The last one is kept for the sealing run; the others go at once (disk space).
      if (lastArchive !== undefined) fs.rmSync(lastArchive, { recursive: true, force: true })
      lastArchive = out
      return r
    }
  },
  archiverThread: {
    title: "`webex-archiver backfill` with `WEBEX_ARCHIVER_DECODE_THREAD=1` (pages decoded on a thread of their own)",
    run: async (server, o, tmp) => {
      const out = path.join(tmp, `archive-${++usageSerial}`)
      const r = await runArchiver(server, o, out, tmp, archiverBin, { WEBEX_ARCHIVER_DECODE_THREAD: "1" })
      fs.rmSync(out, { recursive: true, force: true })
      return r
    }
  },
  archiverBaseline: {
    title: "the baseline's `webex-archiver backfill` (--baseline, before)",
    run: async (server, o, tmp) => {
      const out = path.join(tmp, `archive-${++usageSerial}`)
      const r = await runArchiver(server, o, out, tmp, path.resolve(o.baseline))
      fs.rmSync(out, { recursive: true, force: true })
      return r
    }
  },
  list: {
    title: "the library's `list()`, no disk",
    run: (server, o, tmp) => runList("list", path.join(here, "list.mjs"), server, o, tmp)
  },
  listBundled: {
    title: "the same `list()` program bundled by esbuild, as an app is deployed",
    run: (server, o, tmp) => runList("list (bundled)", listAppBundle(tmp), server, o, tmp)
  },
  floorParse: {
    title: "raw floor's fetch → JSON.parse alone, no disk",
    run: async (server, o, tmp) => {
      const r = await measure("floor-parse", [path.join(here, "floor.mjs"), firstUrl(server, o), "--no-disk"], {
        WEBEX_TOKEN: server.info.token
      }, tmp)
      return { ...r, events: lastJson(r.stdout).events }
    }
  }
}

/** An empty second: just before the server's first event. */
const emptyRange = (server) => {
  const to = new Date(server.info.from)
  return { from: new Date(to.getTime() - 1000).toISOString(), to: to.toISOString() }
}

/** Median wall, CPU and peak RSS of each contestant over an empty range (three runs each, alternated). */
const measureStartup = async (server, o, tmp) => {
  const { from, to } = emptyRange(server)
  const env = { WEBEX_TOKEN: server.info.token }
  const runs = {
    floor: () => measure("floor start-up", [path.join(here, "floor.mjs"), `${server.info.baseUrl}/events?from=${from}&to=${to}&max=${o.max}`, "--no-disk"], env, tmp),
    archiver: async () => {
      const out = path.join(tmp, `startup-${++usageSerial}`)
      const r = await measure("archiver start-up", [archiverBin, "backfill", "--out", out, "--base-url", server.info.baseUrl, "--from", from, "--to", to, "--max", String(o.max), "--settle", "36500d"], env, tmp)
      fs.rmSync(out, { recursive: true, force: true })
      return r
    },
    list: () => measure("list start-up", [path.join(here, "list.mjs"), server.info.baseUrl, from, to, String(o.max)], env, tmp),
    listBundled: () => measure("list (bundled) start-up", [listAppBundle(tmp), server.info.baseUrl, from, to, String(o.max)], env, tmp)
  }
  const all = { floor: [], archiver: [], list: [], listBundled: [] }
  for (let k = 0; k < 3; k++) for (const [name, run] of Object.entries(runs)) all[name].push(await run())
  return Object.fromEntries(Object.entries(all).map(([name, rs]) => [name, summarise(rs)]))
}

const runList = async (label, script, server, o, tmp) => {
  const r = await measure(label, [script, server.info.baseUrl, server.info.from, server.info.to, String(o.max)], {
    WEBEX_TOKEN: server.info.token
  }, tmp)
  return { ...r, events: lastJson(r.stdout).events }
}

/** Where {@link bundleListApp} puts list-app.mjs's bundle. */
const listAppBundle = (tmp) => path.join(tmp, "list-app.bundle.mjs")

/**
 * Bundles list-app.mjs as apps/archiver/scripts/build.mjs bundles the archiver (esbuild, ESM for
 * Node 20, minified), resolving the library and Effect from the archiver's dependencies: the
 * library's `exports` lead to its compiled build, as they would for a user's app.
 */
const bundleListApp = async (tmp) => {
  const esbuild = await import("esbuild")
  await esbuild.build({
    absWorkingDir: path.join(repoRoot, "apps/archiver"),
    entryPoints: [path.join(here, "list-app.mjs")],
    outfile: listAppBundle(tmp),
    bundle: true,
    format: "esm",
    platform: "node",
    target: "node20",
    minify: true,
    banner: { js: "import { createRequire as __createRequire } from \"node:module\"; const require = __createRequire(import.meta.url);" },
    logLevel: "warning"
  })
}

/** The archive of the latest archiver round: sealed afterwards, to measure sealing alone. */
let lastArchive

const firstUrl = (server, o) =>
  `${server.info.baseUrl}/events?from=${server.info.from}&to=${server.info.to}&max=${o.max}`

const runArchiver = async (server, o, out, tmp, bin = archiverBin, env = {}, extra = []) => {
  const r = await measure(
    "archiver backfill",
    [
      bin, "backfill", "--out", out, "--base-url", server.info.baseUrl, "--from", server.info.from, "--to", server.info.to,
      "--max", String(o.max),
      // Seal nothing: every day stays open (see the header).
      "--settle", "36500d",
      ...extra
    ],
    { WEBEX_TOKEN: server.info.token, ...env },
    tmp
  )
  return { ...r, events: backfilledCount(r.stdout) }
}

// ---------------------------------------------------------------------------------------------
// Statistics and report
// ---------------------------------------------------------------------------------------------

const round = (x) => Math.round(x * 10) / 10
const median = (xs) => {
  const s = [...xs].sort((a, b) => a - b)
  return s.length === 0 ? NaN : s.length % 2 === 1 ? s[(s.length - 1) / 2] : (s[s.length / 2 - 1] + s[s.length / 2]) / 2
}
const ratio = (a, b) => (Number.isFinite(a) && Number.isFinite(b) && b > 0 ? Math.round((a / b) * 100) / 100 : null)

const summarise = (runs) => ({
  wallMs: median(runs.map((r) => r.wallMs)),
  cpuMs: median(runs.map((r) => r.cpuMs)),
  peakRssMiB: median(runs.map((r) => r.peakRssMiB)),
  maxPeakRssMiB: Math.max(...runs.map((r) => r.peakRssMiB))
})

/** The window: whole UTC days ending at today's midnight, so `to` is never in the future. */
const window = (days) => {
  const to = new Date()
  to.setUTCHours(0, 0, 0, 0)
  return { from: new Date(to.getTime() - days * 86_400_000).toISOString(), to: to.toISOString() }
}

const git = (...args) => {
  try {
    return execFileSync("git", args, { cwd: repoRoot, encoding: "utf8", stdio: ["ignore", "pipe", "ignore"] }).trim()
  } catch {
    return undefined
  }
}

const markdown = (r) => {
  const s = (x) => (x === null || x === undefined || Number.isNaN(x) ? "–" : String(x))
  const sec = (ms) => (Number.isFinite(ms) ? (ms / 1000).toFixed(2) + " s" : "–")
  const rows = Object.entries(r.median).map(([name, m]) =>
    `| ${contestants[name].title} | ${sec(m.wallMs)} | ${sec(m.cpuMs)} | ${s(m.peakRssMiB)} MiB | ${s(r.ratios[name]?.wall)}× | ${s(r.ratios[name]?.cpu)}× |`
  )
  const targets = r.targets.map((t) => `| ${t.name} | ${t.target} | ${s(t.value)} | ${t.pass === null ? "–" : t.pass ? "yes" : "**no**"} |`)
  return [
    `# End-to-end benchmark (issue 8)`,
    ``,
    `${r.meta.date}, commit ${s(r.meta.commit)}${r.meta.dirty ? " (with uncommitted changes)" : ""}, Node ${r.meta.node}, ` +
      `${r.meta.cpus} × ${r.meta.cpuModel}, load average ${r.meta.loadBefore.join(" ")} before, ${r.meta.loadAfter.join(" ")} after.`,
    `${r.config.events} events over ${r.config.days} days, pages of ${r.config.max}, ${r.config.rounds} alternated rounds (medians); ` +
      `the fake server in its own process on loopback (start-up ${sec(r.server.startMs)}, ${r.server.rssMiB} MiB).`,
    `Ratios are to the raw floor (wall, CPU); \`list()\` is held to the floor's fetch-and-parse.`,
    ``,
    `| | wall | CPU (user+sys) | peak RSS | wall ratio | CPU ratio |`,
    `| --- | --- | --- | --- | --- | --- |`,
    ...rows,
    ``,
    r.startup === undefined
      ? `Start-up not measured.`
      : `Fixed costs (each over an empty second: loading its code, one request): floor ${sec(r.startup.floor.wallMs)} wall ` +
        `(${r.startup.floor.peakRssMiB} MiB), archiver backfill ${sec(r.startup.archiver.wallMs)} (${r.startup.archiver.peakRssMiB} MiB), ` +
        `\`list()\` ${sec(r.startup.list.wallMs)} (${r.startup.list.peakRssMiB} MiB; loading Effect and the library from node_modules), ` +
        `\`list()\` bundled ${sec(r.startup.listBundled.wallMs)} (${r.startup.listBundled.peakRssMiB} MiB).`,
    ``,
    r.big === undefined
      ? `Large run skipped (--big 0).`
      : `At ${r.big.events} events: archiver backfill ${sec(r.big.archiver.wallMs)} wall, ${sec(r.big.archiver.cpuMs)} CPU, ` +
        `peak RSS ${r.big.archiver.peakRssMiB} MiB (${s(r.big.rssGrowth)}× the ${r.config.events}-event run); ` +
        `\`status\` on that archive left unsealed (every day an open file) ${sec(r.big.status.wallMs)} wall, ${r.big.status.peakRssMiB} MiB; ` +
        (r.big.statusSealed === undefined ? "" : `sealed as a default backfill leaves it (\`seal --settle 0\`: ${sec(r.big.seal.wallMs)} wall), ` +
          `\`status\` ${sec(r.big.statusSealed.wallMs)} wall, ${r.big.statusSealed.peakRssMiB} MiB ` ) +
        `(that fake server: start-up ${sec(r.big.server.startMs)}, ${r.big.server.rssMiB} MiB).` +
        (r.bigSpread === undefined ? "" : ` The same ${r.bigSpread.events} events over ${r.bigSpread.days} days (the 200k run's ` +
          `density): ${sec(r.bigSpread.archiver.wallMs)} wall, peak RSS ${r.bigSpread.archiver.peakRssMiB} MiB ` +
          `(${s(r.bigSpread.rssGrowth)}×).`),
    r.seal === undefined
      ? `Sealing not measured.`
      : `Sealing (not in the ratios above; \`backfill\` seals settled days at its end, the benchmark's runs pass ` +
        `\`--settle 36500d\` so that, like the floor, they compress nothing): \`seal --settle 0\` on the last ` +
        `round's ${r.seal.events}-event archive sealed ${s(r.seal.files)} day files in ${sec(r.seal.seal.wallMs)} wall, ` +
        `${sec(r.seal.seal.cpuMs)} CPU, ${r.seal.seal.peakRssMiB} MiB; \`status\` after it ${sec(r.seal.status.wallMs)} wall, ` +
        `${r.seal.status.peakRssMiB} MiB.`,
    r.sparse === undefined
      ? `Sparse run skipped (--sparse-events 0).`
      : `A sparse backfill, ${r.sparse.events} events over ${r.sparse.days} days (one run each, alternated): floor ` +
        `${sec(r.sparse.floor.wallMs)} wall, ${sec(r.sparse.floor.cpuMs)} CPU, ${r.sparse.floor.peakRssMiB} MiB; archiver ` +
        `${sec(r.sparse.archiver.wallMs)} wall (${s(r.sparse.ratios.archiver.wall)}×), ${sec(r.sparse.archiver.cpuMs)} CPU ` +
        `(${s(r.sparse.ratios.archiver.cpu)}×), ${r.sparse.archiver.peakRssMiB} MiB; the archiver with fixed 6-hour windows ` +
        `(\`--max-window 6h\`, as before windows grew where events are sparse) ${sec(r.sparse.fixedWindows.wallMs)} wall ` +
        `(${s(r.sparse.ratios.fixedWindows.wall)}×), ${sec(r.sparse.fixedWindows.cpuMs)} CPU (${s(r.sparse.ratios.fixedWindows.cpu)}×), ` +
        `${r.sparse.fixedWindows.peakRssMiB} MiB.`,
    r.retryAfter === undefined
      ? `Retry-After run skipped.`
      : `Retry-After: ${r.retryAfter.samples} answers 429 \`Retry-After: 1\` (every ${r.config["rate-limit-every"]}th request, ${r.retryAfter.events} events); ` +
        `mean wait beyond the second ${s(r.retryAfter.meanExtraMs)} ms (max ${s(r.retryAfter.maxExtraMs)} ms).`,
    ``,
    `| target | goal | measured | met |`,
    `| --- | --- | --- | --- |`,
    ...targets,
    ``,
    `Every run archived or listed all ${r.config.events} events: ${r.complete ? "yes" : "**no**"}.`,
    ``
  ].join("\n")
}

// ---------------------------------------------------------------------------------------------
// Main
// ---------------------------------------------------------------------------------------------

const main = async () => {
  const o = parseArgs(process.argv.slice(2))
  const log = (line) => process.stderr.write(`[bench:e2e] ${line}\n`)
  const tmp = fs.mkdtempSync(path.join(os.tmpdir(), "bench-e2e-"))
  const loadBefore = os.loadavg().map((x) => x.toFixed(2))

  // The library (and, once the pkg stream switches it, the archiver) runs as compiled JS.
  log("building (tsc -b)")
  const tsc = spawnSync(process.execPath, [path.join(repoRoot, "node_modules/typescript/bin/tsc"), "-b"], {
    cwd: repoRoot,
    stdio: "inherit"
  })
  if (tsc.status !== 0) throw new Error("tsc -b failed")
  // The archiver runs as its esbuild bundle (bin/ loads dist/main.mjs): rebuilt when a source is newer.
  log("building the archiver bundle")
  const bundle = spawnSync(process.execPath, [path.join(repoRoot, "apps/archiver/scripts/build.mjs")], { cwd: repoRoot, stdio: "inherit" })
  if (bundle.status !== 0) throw new Error("apps/archiver/scripts/build.mjs failed")
  log("bundling list-app.mjs")
  await bundleListApp(tmp)

  const { from, to } = window(o.days)
  const serverArgs = (events, extra = []) => ["--events", String(events), "--from", from, "--to", to, ...extra]
  const results = {
    meta: {},
    config: { ...o, results: undefined, from, to },
    runs: { floor: [], archiver: [], archiverThread: [], ...(o.baseline !== "" ? { archiverBaseline: [] } : {}), list: [], listBundled: [], floorParse: [] }
  }

  try {
    log(`starting the fake server with ${o.events} events`)
    const server = await startServer(serverArgs(o.events))
    results.server = { startMs: server.info.startMs, rssMiB: server.info.rssMiB }
    try {
      for (let round = 1; round <= o.rounds; round++) {
        for (const name of Object.keys(results.runs)) {
          const r = await contestants[name].run(server, o, tmp)
          delete r.stdout
          results.runs[name].push(r)
          log(`round ${round} ${name}: ${r.events} events, ${r.wallMs} ms wall, ${r.cpuMs} ms CPU, ${r.peakRssMiB} MiB`)
        }
      }
      // Fixed costs, to read the ratios by: each contestant over a second with no events (before
      // the server's first one), so what is measured is start-up (loading code) and one request.
      results.startup = await measureStartup(server, o, tmp)
      log(`start-up: ${Object.entries(results.startup).map(([k, v]) => `${k} ${v.wallMs} ms`).join(", ")}`)
    } finally {
      await server.stop()
    }
    if (lastArchive !== undefined) {
      // Sealing, measured alone on the last round's archive: what `backfill` adds at its end
      // when days have settled (gzip of every day file, the manifest chain), and `status` after.
      const seal = await measure("seal", [archiverBin, "seal", "--out", lastArchive, "--settle", "0"], {}, tmp)
      const sealed = /Sealed (\d+) file/.exec(seal.stdout)
      delete seal.stdout
      const status = await measure("status after seal", [archiverBin, "status", "--out", lastArchive], {}, tmp)
      delete status.stdout
      results.seal = { events: o.events, files: sealed === null ? null : Number(sealed[1]), seal, status }
      log(`seal: ${results.seal.files} files, ${seal.wallMs} ms; status after: ${status.wallMs} ms`)
      fs.rmSync(lastArchive, { recursive: true, force: true })
      lastArchive = undefined
    }
    results.median = Object.fromEntries(Object.entries(results.runs).map(([name, runs]) => [name, summarise(runs)]))
    const m = results.median
    results.ratios = {
      floor: { wall: 1, cpu: 1 },
      archiver: { wall: ratio(m.archiver.wallMs, m.floor.wallMs), cpu: ratio(m.archiver.cpuMs, m.floor.cpuMs) },
      archiverThread: { wall: ratio(m.archiverThread.wallMs, m.floor.wallMs), cpu: ratio(m.archiverThread.cpuMs, m.floor.cpuMs) },
      ...(m.archiverBaseline !== undefined
        ? {
          archiverBaseline: {
            wall: ratio(m.archiverBaseline.wallMs, m.floor.wallMs),
            cpu: ratio(m.archiverBaseline.cpuMs, m.floor.cpuMs)
          }
        }
        : {}),
      list: { wall: ratio(m.list.wallMs, m.floor.wallMs), cpu: ratio(m.list.cpuMs, m.floor.cpuMs) },
      floorParse: { wall: ratio(m.floorParse.wallMs, m.floor.wallMs), cpu: ratio(m.floorParse.cpuMs, m.floor.cpuMs) },
      listBundled: { wall: ratio(m.listBundled.wallMs, m.floor.wallMs), cpu: ratio(m.listBundled.cpuMs, m.floor.cpuMs) },
      listToFloorParse: { wall: ratio(m.list.wallMs, m.floorParse.wallMs), cpu: ratio(m.list.cpuMs, m.floorParse.cpuMs) },
      listBundledToFloorParse: {
        wall: ratio(m.listBundled.wallMs, m.floorParse.wallMs),
        cpu: ratio(m.listBundled.cpuMs, m.floorParse.cpuMs)
      }
    }

    if (o.big > 0) {
      log(`starting the fake server with ${o.big} events`)
      const big = await startServer(serverArgs(o.big))
      try {
        const out = path.join(tmp, "archive-big")
        const archiver = await runArchiver(big, o, out, tmp)
        delete archiver.stdout
        log(`big archiver: ${archiver.events} events, ${archiver.wallMs} ms, ${archiver.peakRssMiB} MiB`)
        // `status` on the archive left unsealed (every day an open file it must read), then on
        // the archive as a default backfill leaves it: settled days sealed, answered from the manifest.
        const status = await measure("status", [archiverBin, "status", "--out", out], {}, tmp)
        delete status.stdout
        log(`status (unsealed): ${status.wallMs} ms`)
        const seal = await measure("seal", [archiverBin, "seal", "--out", out, "--settle", "0"], {}, tmp)
        delete seal.stdout
        const statusSealed = await measure("status after seal", [archiverBin, "status", "--out", out], {}, tmp)
        delete statusSealed.stdout
        log(`seal: ${seal.wallMs} ms; status (sealed): ${statusSealed.wallMs} ms`)
        fs.rmSync(out, { recursive: true, force: true })
        results.big = {
          events: o.big,
          server: { startMs: big.info.startMs, rssMiB: big.info.rssMiB },
          archiver,
          status,
          seal,
          statusSealed,
          rssGrowth: ratio(archiver.peakRssMiB, m.archiver.peakRssMiB)
        }
      } finally {
        await big.stop()
      }
      // The same number of events at the 200k run's density (more days, as a longer backfill of
      // the same org): what the archiver holds per day (that day's ids, for exactly once) scales
      // with a day's events, so this run is the one that tells whether memory stays flat as the
      // backfill grows; the run above packs five times as many events into each day.
      const spreadDays = Math.max(o.days, Math.round((o.days * o.big) / o.events))
      const { from: spreadFrom } = window(spreadDays)
      log(`starting the fake server with ${o.big} events over ${spreadDays} days`)
      const spread = await startServer(["--events", String(o.big), "--from", spreadFrom, "--to", to])
      try {
        const out = path.join(tmp, "archive-spread")
        const archiver = await runArchiver(spread, o, out, tmp)
        delete archiver.stdout
        fs.rmSync(out, { recursive: true, force: true })
        log(`spread archiver: ${archiver.events} events, ${archiver.wallMs} ms, ${archiver.peakRssMiB} MiB`)
        results.bigSpread = { events: o.big, days: spreadDays, archiver, rssGrowth: ratio(archiver.peakRssMiB, m.archiver.peakRssMiB) }
      } finally {
        await spread.stop()
      }
    }

    if (o["sparse-events"] > 0) {
      // Years of a small organisation: what a backfill pays per window (a request, a write, a
      // checkpoint) is the cost here, not per event. One round, alternated.
      const { from: sparseFrom } = window(o["sparse-days"])
      log(`starting the fake server with ${o["sparse-events"]} events over ${o["sparse-days"]} days`)
      const sparse = await startServer(["--events", String(o["sparse-events"]), "--from", sparseFrom, "--to", to])
      try {
        const runs = {
          floor: () => contestants.floor.run(sparse, o, tmp),
          archiver: async () => {
            const out = path.join(tmp, `archive-${++usageSerial}`)
            const r = await runArchiver(sparse, o, out, tmp)
            fs.rmSync(out, { recursive: true, force: true })
            return r
          },
          fixedWindows: async () => {
            const out = path.join(tmp, `archive-${++usageSerial}`)
            const r = await runArchiver(sparse, o, out, tmp, archiverBin, {}, ["--window", "6h", "--max-window", "6h"])
            fs.rmSync(out, { recursive: true, force: true })
            return r
          }
        }
        results.sparse = { events: o["sparse-events"], days: o["sparse-days"] }
        for (const [name, run] of Object.entries(runs)) {
          const r = await run()
          delete r.stdout
          results.sparse[name] = r
          log(`sparse ${name}: ${r.events} events, ${r.wallMs} ms wall, ${r.cpuMs} ms CPU, ${r.peakRssMiB} MiB`)
        }
        results.sparse.ratios = {
          archiver: { wall: ratio(results.sparse.archiver.wallMs, results.sparse.floor.wallMs), cpu: ratio(results.sparse.archiver.cpuMs, results.sparse.floor.cpuMs) },
          fixedWindows: { wall: ratio(results.sparse.fixedWindows.wallMs, results.sparse.floor.wallMs), cpu: ratio(results.sparse.fixedWindows.cpuMs, results.sparse.floor.cpuMs) }
        }
      } finally {
        await sparse.stop()
      }
    }

    if (o["rate-limit-every"] > 0 && o["retry-events"] > 0) {
      const events = Math.min(o["retry-events"], o.events)
      log(`Retry-After run: ${events} events, 429 on every ${o["rate-limit-every"]}th request`)
      const server = await startServer(serverArgs(events, ["--rate-limit-every", String(o["rate-limit-every"])]))
      try {
        const out = path.join(tmp, "archive-retry")
        // Fixed 6-hour windows: grown ones would list these 20k events in a score of requests,
        // and leave a handful of 429s to average.
        const run = await runArchiver(server, o, out, tmp, archiverBin, {}, ["--window", "6h", "--max-window", "6h"])
        fs.rmSync(out, { recursive: true, force: true })
        const requests = await server.requests()
        // The retry of a 429 is the next request for the same URL (a client may have others in flight).
        const extras = []
        requests.forEach((r, i) => {
          if (r.status !== 429) return
          const retry = requests.slice(i + 1).find((later) => later.url === r.url)
          if (retry !== undefined) extras.push(retry.at - r.at - 1000)
        })
        results.retryAfter = {
          events,
          complete: run.events === events,
          samples: extras.length,
          meanExtraMs: extras.length === 0 ? null : round(extras.reduce((a, b) => a + b, 0) / extras.length),
          maxExtraMs: extras.length === 0 ? null : Math.max(...extras),
          extrasMs: extras
        }
        log(`Retry-After: ${extras.length} samples, mean extra ${results.retryAfter.meanExtraMs} ms`)
      } finally {
        await server.stop()
      }
    }
  } finally {
    fs.rmSync(tmp, { recursive: true, force: true })
  }

  const m = results.median
  const check = (name, target, value, pass) => ({ name, target, value, pass: value === null || value === undefined ? null : pass(value) })
  results.targets = [
    check("archiver wall / floor", "≤ 1.15", results.ratios.archiver.wall, (v) => v <= 1.15),
    check("archiver CPU / floor", "≤ 2", results.ratios.archiver.cpu, (v) => v <= 2),
    check("list() wall / floor's fetch-and-parse", "≤ 1.1", results.ratios.listToFloorParse.wall, (v) => v <= 1.1),
    check(`archiver peak RSS at ${o.events} events (MiB)`, "≤ 150", m.archiver.peakRssMiB, (v) => v <= 150),
    check(`archiver peak RSS at ${o.big} events / at ${o.events}, same density (${results.bigSpread?.days ?? "–"} days)`, "≤ 1.1", results.bigSpread?.rssGrowth, (v) => v <= 1.1),
    check(`archiver peak RSS at ${o.big} events / at ${o.events}, over ${o.days} days (${Math.round((o.big / o.events) * 10) / 10}× the density)`, "≤ 1.1", results.big?.rssGrowth, (v) => v <= 1.1),
    check("list() peak RSS (MiB)", "≤ 120", m.list.peakRssMiB, (v) => v <= 120),
    // Beside the targets, not instead of them: the same program as a deployed, bundled app.
    check("list() bundled: wall / floor's fetch-and-parse", "≤ 1.1", results.ratios.listBundledToFloorParse.wall, (v) => v <= 1.1),
    check("list() bundled: peak RSS (MiB)", "≤ 120", m.listBundled.peakRssMiB, (v) => v <= 120),
    // Every day left open (counts from the id index's marks, no event file read), then as a
    // default backfill leaves it: settled days sealed (counts from the manifest).
    check(`status on the ${o.big}-event archive, days open (ms)`, "< 1000", results.big?.status?.wallMs, (v) => v < 1000),
    check(`status on the ${o.big}-event archive, sealed (ms)`, "< 1000", results.big?.statusSealed?.wallMs, (v) => v < 1000),
    check("mean wait beyond Retry-After: 1 (ms)", "< 50", results.retryAfter?.meanExtraMs, (v) => v < 50)
  ]
  results.complete = Object.values(results.runs).every((runs) => runs.every((r) => r.events === o.events)) &&
    (results.big === undefined || results.big.archiver.events === o.big) &&
    (results.bigSpread === undefined || results.bigSpread.archiver.events === o.big) &&
    (results.sparse === undefined ||
      ["floor", "archiver", "fixedWindows"].every((k) => results.sparse[k].events === o["sparse-events"])) &&
    (results.retryAfter === undefined || results.retryAfter.complete)
  results.meta = {
    date: new Date().toISOString(),
    commit: git("rev-parse", "--short", "HEAD"),
    dirty: (git("status", "--porcelain") ?? "") !== "",
    node: process.version,
    cpus: os.cpus().length,
    cpuModel: os.cpus()[0]?.model ?? "unknown",
    loadBefore,
    loadAfter: os.loadavg().map((x) => x.toFixed(2))
  }

  fs.mkdirSync(o.results, { recursive: true })
  const md = markdown(results)
  fs.writeFileSync(path.join(o.results, "latest.json"), JSON.stringify(results, null, 2) + "\n")
  fs.writeFileSync(path.join(o.results, "latest.md"), md)
  process.stdout.write(md)
  if (!results.complete) {
    log("INCOMPLETE: a run did not deliver every event")
    process.exitCode = 1
  }
}

main().catch((e) => {
  process.stderr.write(`[bench:e2e] ${e instanceof Error ? e.stack ?? e.message : String(e)}\n`)
  process.exitCode = 1
})
