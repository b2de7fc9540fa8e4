/**
 * The real CLI as an operator meets it: one `webex-archiver:` line naming the flag or file at
 * fault, sysexits exit codes, help without colour or placeholders, nothing on disk for a refused
 * token, JSON summaries, a checkpoint decoded once (`+00` offsets), and coverage deciding what is
 * fetched (counted at the fake server).
 */
import { SeedOrg } from "@webex-compliance/events-api/testing"
import * as fs from "node:fs"
import * as http from "node:http"
import * as path from "node:path"
import { describe, expect, it } from "vitest"
import * as ExitCode from "../src/ExitCode.js"
import { assertExactArchive, compareArchive, readArchive, readCheckpoint, serverEvents } from "./support/archiveCheck.js"
import { backfillSummary, messageLines, runCli, spawnCli } from "./support/cli.js"
import { type RunningFake, sandbox } from "./support/fakeServer.js"

const box = sandbox("e2e-operator-")
const DAY = 86_400_000
const from = new Date("2024-02-01T00:00:00.000Z")
const to = new Date("2024-02-04T00:00:00.000Z")
const iso = (ms: number) => new Date(ms).toISOString()

/** The listing requests the server received (the token endpoint and others aside). */
const listings = async (fake: RunningFake) => (await fake.requests()).filter((r) => r.path === "/v1/events")

/** The real CLI, with time to spare: these tests share two cores with much else. */
const cli = (args: ReadonlyArray<string>, options: Parameters<typeof runCli>[1] = {}) => runCli(args, { timeoutMs: 280_000, ...options })

const errorLine = (stderr: string) => {
  const lines = messageLines(stderr)
  expect(lines, stderr).toHaveLength(1)
  expect(lines[0]).toMatch(/^webex-archiver: /)
  return lines[0]!
}

describe.concurrent("webex-archiver for operators", () => {
  it("names the flag or file at fault on one line, with the sysexits code, and sends nothing", async ({ expect }) => {
    const fake = await box.startFake({ events: SeedOrg.generateOrg({ count: 10, seed: 1, from, to }) })
    const out = path.join(box.root, "refused")
    const nul = path.join(box.root, "token-with-nul")
    fs.writeFileSync(nul, Buffer.from("abc\u0000defghijk\n"))
    const latin1 = path.join(box.root, "token-latin1")
    fs.writeFileSync(latin1, Buffer.from([0x61, 0x62, 0xe9, 0x63, 0x64, 0x0a]))
    const base = ["backfill", "--out", out, "--base-url", fake.baseUrl, "--from", "2024-02-01"]
    const cases: ReadonlyArray<readonly [ReadonlyArray<string>, string | undefined, number, RegExp]> = [
      [["backfill", "--out", out, "--from", "not-a-date"], fake.token, 64, /^webex-archiver: --from: "not-a-date" is not a date-time/],
      [[...base, "--max", "abc"], fake.token, 64, /^webex-archiver: --max: must be a whole number from 1 to 1000, got "abc"/],
      [[...base, "--window", "soon"], fake.token, 64, /^webex-archiver: --window: "soon" is not a positive duration/],
      [[...base, "--frobnicate"], fake.token, 64, /^webex-archiver: backfill has no flag --frobnicate \(see webex-archiver backfill --help\)$/],
      [[...base, "--log-format", "yaml"], fake.token, 64, /^webex-archiver: --log-format: must be one of text, json, got "yaml"$/],
      [["--log-level", "loud", ...base], fake.token, 64, /^webex-archiver: --log-level: must be one of all, .*, got "loud"$/],
      [["query", "--out", out, "--format", "xml"], undefined, 64, /^webex-archiver: --format: must be one of ndjson, csv, got "xml"$/],
      [["query", "--out", out, "--to", "soon"], undefined, 64, /^webex-archiver: --to: "soon" is not a date-time/],
      [["seal", "--out", out, "--settle", "-1h"], undefined, 64, /^webex-archiver: --settle: "-1h" is not a positive duration/],
      [["seal", "--out", out], undefined, 74, new RegExp(`^webex-archiver: There is no archive at ${out} yet`)],
      [["gaps", "--out", out], undefined, 74, new RegExp(`^webex-archiver: There is no archive at ${out} yet`)],
      [["verify", "--out", out, "--public-key", path.join(box.root, "no-key.pub")], undefined, 78, /^webex-archiver: .*no-key\.pub.*ENOENT/],
      [[...base, "--signing-key", path.join(box.root, "no-key")], fake.token, 78, /^webex-archiver: .*no-key.*ENOENT/],
      [["keygen", "--public-key", path.join(box.root, "k.pub")], undefined, 64, /^webex-archiver: .*--private-key/],
      [["backfill", "--out", out], fake.token, 64, /^webex-archiver: .*--from/],
      [[...base], undefined, 78, /^webex-archiver: --token-file: no token/],
      [[...base, "--token-file", path.join(box.root, "missing")], undefined, 78, /^webex-archiver: --token-file \S+missing: cannot be read \(ENOENT\)/],
      [[...base, "--token-file", nul], undefined, 78, new RegExp(`^webex-archiver: --token-file ${nul}: holds a control character \\(0x00\\)`)],
      [[...base, "--token-file", latin1], undefined, 78, new RegExp(`^webex-archiver: --token-file ${latin1}: is not valid UTF-8`)],
      [["backfill", "--out", out, "--base-url", "ftp://example.com", "--from", "2024-02-01"], fake.token, 78, /^webex-archiver: --base-url: "ftp:\/\/example.com" is not an http\(s\) URL/]
    ]
    const results = await Promise.all(cases.map(([args, token]) => cli(args, { token })))
    cases.forEach(([args, , code, message], i) => {
      const r = results[i]!
      expect(r.code, `${args.join(" ")}\n${r.stderr}`).toBe(code)
      expect(r.stdout).toBe("")
      expect(errorLine(r.stderr)).toMatch(message)
    })
    // The heap setting the launcher reads from the environment is checked like any other input.
    const heap = await cli(base, { token: fake.token, env: { WEBEX_ARCHIVER_HEAP_GROWING_PERCENT: "lots" } })
    expect(heap.code).toBe(78)
    expect(errorLine(heap.stderr)).toMatch(/^webex-archiver: WEBEX_ARCHIVER_HEAP_GROWING_PERCENT must be a whole number from 0 to 1000, got "lots"$/)
    expect(fs.existsSync(out)).toBe(false)
    expect(await fake.requests()).toHaveLength(0)
  }, 600_000)

  it("WEBEX_ARCHIVER_DECODE_THREAD=1 decodes on a thread of its own into the same archive; a bad value exits 78 before anything is written", async ({ expect }) => {
    // One fake each, alike: the fake numbers the junk it injects by the pages it has served.
    const runs = await Promise.all(["1", "0"].map(async (thread) => {
      const fake = await box.startFake({
        events: SeedOrg.generateOrg({ count: 900, seed: 21, from, to }),
        faults: { malformedItemEvery: 3, invalidUtf8Every: 4 }
      })
      const out = path.join(box.root, `decode-thread-${thread}`)
      const args = ["backfill", "--out", out, "--base-url", fake.baseUrl, "--from", iso(from.getTime()), "--to", iso(to.getTime()), "--max", "100", "--log-level", "debug"]
      const r = await cli(args, { token: fake.token, env: { WEBEX_ARCHIVER_DECODE_THREAD: thread } })
      expect(r.code, r.stderr).toBe(0)
      expect(r.stderr.includes("Pages are decoded on a thread of their own")).toBe(thread === "1")
      // Every stored event once, unaltered; the extras are the fake's invalid-UTF-8 events, archived as served.
      const report = compareArchive(out, await fake.events(), { range: { from, to }, token: fake.token })
      expect([report.missing, report.duplicated, report.altered]).toEqual([[], [], []])
      expect(report.extra.length).toBeGreaterThan(0)
      expect(report.extra.every((line) => line.includes(`"id":"invalid-utf8-`))).toBe(true)
      return { out, summary: backfillSummary(r.stdout) }
    }))
    expect(runs[0]!.summary.quarantined).toBeGreaterThan(0)
    expect(runs[0]!.summary).toEqual(runs[1]!.summary)
    expect(readArchive(runs[0]!.out).lines).toEqual(readArchive(runs[1]!.out).lines)

    const fake = await box.startFake({ events: SeedOrg.generateOrg({ count: 10, seed: 21, from, to }) })
    const out = path.join(box.root, "decode-thread-bad")
    const bad = await cli(["backfill", "--out", out, "--base-url", fake.baseUrl, "--from", iso(from.getTime())], {
      token: fake.token,
      env: { WEBEX_ARCHIVER_DECODE_THREAD: "yes" }
    })
    expect(bad.code).toBe(ExitCode.CONFIG)
    expect(errorLine(bad.stderr)).toMatch(/^webex-archiver: WEBEX_ARCHIVER_DECODE_THREAD: must be 1 \(decode pages on a thread of their own\) or 0 \(on the main thread, the default\), got "yes"$/)
    expect(fs.existsSync(out)).toBe(false)
    expect(await fake.requests()).toHaveLength(0)
  }, 600_000)

  it("a token the API refuses leaves nothing on disk: exit 77, no archive folder, no job", async ({ expect }) => {
    const fake = await box.startFake({ events: SeedOrg.generateOrg({ count: 10, seed: 2, from, to }) })
    for (const [fault, pattern] of [["unauthorized", /401|unauthori[sz]ed|token/i], ["forbidden", /spark-compliance:events_read/]] as const) {
      await fake.setFaults({ unauthorized: fault === "unauthorized", forbidden: fault === "forbidden" })
      const out = path.join(box.root, `refused-${fault}`)
      for (const command of ["backfill", "run"]) {
        const r = await cli([command, "--out", out, "--base-url", fake.baseUrl, "--from", from.toISOString()], { token: fake.token })
        expect(r.code, r.stderr).toBe(77)
        expect(errorLine(r.stderr)).toMatch(pattern)
        expect(fs.existsSync(out), `${command} ${fault}`).toBe(false)
      }
    }
  }, 600_000)

  it("help has no ANSI escapes off a terminal, no placeholder text, and ends with examples and exit codes", async ({ expect }) => {
    const runs = [["--help"], ["backfill", "--help"], ["run", "--help"]].flatMap((args) =>
      [{}, { NO_COLOR: "1" }].map((env) => cli(args, { env }))
    )
    for (const r of await Promise.all(runs)) {
      {
        expect(r.code).toBe(0)
        // eslint-disable-next-line no-control-regex
        expect(r.stdout).not.toMatch(/\u001b\[/)
        expect(r.stdout).not.toMatch(/A user-defined piece of text|A true or false value|One of the following/)
        expect(r.stdout).toMatch(/EXAMPLES\n[\s\S]*webex-archiver backfill[\s\S]*EXIT CODES\n[\s\S]*77 not authorised[\s\S]*78 configuration[^\n]*\n*$/)
      }
    }
  }, 600_000)

  it("every command's help: its usage as typed, every option described in words, its own example, every exit code", async ({ expect }) => {
    const commands = ["backfill", "run", "status", "demo", "seal", "verify", "query", "gaps", "keygen"]
    const helps = await Promise.all(commands.map((c) => cli([c, "--help"], { env: { NO_COLOR: "1" } })))
    const codes = Object.values(ExitCode).filter((v) => typeof v === "number")
    expect(codes).toEqual(expect.arrayContaining([0, 64, 65, 70, 73, 74, 75, 76, 77, 78]))
    commands.forEach((command, i) => {
      const { code, stdout } = helps[i]!
      expect(code, command).toBe(0)
      expect(stdout, command).toMatch(new RegExp(`\\nUSAGE\\n\\n\\$ webex-archiver ${command}( |\\n)`))
      expect(stdout, command).not.toMatch(/A user-defined piece of text|A true or false value|An integer\.|One of the following|An existing file|A file-system path/)
      // Each of the command's own options (up to @effect/cli's built-ins) has a sentence of its own.
      const options = stdout.slice(stdout.indexOf("\nOPTIONS\n"), stdout.indexOf("\n--completions"))
      const blocks = options.split(/\n(?=--)/).slice(1)
      expect(blocks.length, command).toBeGreaterThan(0)
      for (const block of blocks) {
        const [heading, ...rest] = block.split("\n").map((l) => l.trim()).filter((l) => l !== "")
        const words = rest.filter((l) => !/^This (setting is optional|option can be set from environment variables)\.$/.test(l))
        expect(words.join(" "), `${command} ${heading}`).toMatch(/^[A-Z][^\n]{15,}[.)]$/)
      }
      const examples = stdout.slice(stdout.indexOf("\nEXAMPLES\n"), stdout.indexOf("\nEXIT CODES\n"))
      expect(examples, command).toMatch(new RegExp(`\\nwebex-archiver ${command} `))
      const exitCodes = stdout.slice(stdout.indexOf("\nEXIT CODES\n"))
      for (const c of codes) expect(exitCodes, `${command}: exit ${c}`).toMatch(new RegExp(`(^|[ ;\\n])${c} `))
    })
  }, 600_000)

  it("demo works from an empty directory, quickly, and leaves a verified archive", async ({ expect }) => {
    const dir = path.join(box.root, "empty-cwd")
    fs.mkdirSync(dir)
    const started = Date.now()
    const r = await cli(["demo", "--events", "1000", "--days", "7"], { cwd: dir })
    const seconds = (Date.now() - started) / 1000
    expect(r.code, r.stderr).toBe(0)
    expect(r.stdout).toMatch(/Verified: all 1025 events the server holds are archived exactly once, byte for byte/)
    expect(fs.readdirSync(path.join(dir, "archive-demo/events")).length).toBeGreaterThan(0)
    // Generous for two shared cores; it took about 30 s before its faults were spaced out.
    expect(seconds).toBeLessThan(60)
  }, 600_000)

  it("loads a checkpoint written with a +00 offset as the right instant, and refuses one that does not decode (78, file and field)", async ({ expect }) => {
    const fake = await box.startFake({ events: SeedOrg.generateOrg({ count: 300, seed: 4, from, to }) })
    const out = path.join(box.root, "plus00")
    fs.mkdirSync(path.join(out, "state"), { recursive: true, mode: 0o700 })
    const checkpoint = path.join(out, "state", "checkpoint.json")
    const write = (through: string) =>
      fs.writeFileSync(
        checkpoint,
        JSON.stringify({ version: 1, scope: {}, covered: [{ from: "2024-02-01T00:00:00+00", through }], updatedAt: "2024-02-03T00:00:00+00" }),
        { mode: 0o600 }
      )

    write("2024-02-03T00:00:00+0000x")
    const bad = await cli(["backfill", "--out", out, "--base-url", fake.baseUrl, "--from", from.toISOString(), "--to", to.toISOString()], { token: fake.token })
    expect(bad.code, bad.stderr).toBe(78)
    const line = errorLine(bad.stderr)
    expect(line).toContain(checkpoint)
    expect(line).toContain("covered[0].through")
    expect(await listings(fake)).toHaveLength(0)

    // Date.parse refuses "+00"; the library's grammar reads it as UTC.
    write("2024-02-03T00:00:00+00")
    const r = await cli(
      ["backfill", "--out", out, "--base-url", fake.baseUrl, "--window", "1d", "--from", from.toISOString(), "--to", to.toISOString(), "--json"],
      { token: fake.token }
    )
    expect(r.code, r.stderr).toBe(0)
    const requests = await listings(fake)
    expect(requests.length).toBeGreaterThan(0)
    // Only the uncovered day was asked for.
    for (const q of requests) expect(Date.parse(q.query.from!)).toBeGreaterThanOrEqual(Date.parse("2024-02-03T00:00:00Z") - 1000)
    expect(readCheckpoint(out)!.covered).toEqual([{ from: from.toISOString(), through: to.toISOString() }])
    const summary = JSON.parse(r.stdout) as { command: string; windows: number; archive: string }
    expect(summary).toMatchObject({ command: "backfill", windows: 1, archive: out })
  }, 600_000)

  it("a sparse backfill lists in windows grown to its density (--max-window), and still archives every event", async ({ expect }) => {
    // 300 events over a year: in fixed 6-hour windows that would be 1,464 requests and checkpoints.
    const start = new Date("2023-01-01T00:00:00.000Z")
    const end = new Date("2024-01-01T00:00:00.000Z")
    const fake = await box.startFake({ events: SeedOrg.generateOrg({ count: 300, seed: 8, from: start, to: end }), order: "shuffled" })
    const out = path.join(box.root, "sparse")
    const args = ["backfill", "--out", out, "--base-url", fake.baseUrl, "--from", start.toISOString(), "--to", end.toISOString(), "--json"]
    const r = await cli(args, { token: fake.token })
    expect(r.code, r.stderr).toBe(0)
    const summary = JSON.parse(r.stdout) as { windows: number; written: number }
    const requests = await listings(fake)
    // Doubling from 6 hours to the 7-day cap takes 5 windows; then 52 weeks or so at the cap.
    expect(summary.windows).toBeGreaterThan(50)
    expect(summary.windows).toBeLessThan(70)
    expect(requests).toHaveLength(1 + summary.windows)
    const lengths = requests.slice(1).map((q) => Date.parse(q.query.to!) - Date.parse(q.query.from!))
    expect(Math.max(...lengths)).toBeLessThanOrEqual(7 * DAY + 1000)
    expect(summary.written).toBe(300)
    assertExactArchive(out, await fake.events(), { range: { from: start, to: end }, token: fake.token })
    expect(readCheckpoint(out)!.covered).toEqual([{ from: start.toISOString(), through: end.toISOString() }])

    // --max-window equal to --window: every window that length.
    const fixed = path.join(box.root, "sparse-fixed")
    const week = ["--from", start.toISOString(), "--to", new Date("2023-01-08T00:00:00.000Z").toISOString()]
    const r2 = await cli(["backfill", "--out", fixed, "--base-url", fake.baseUrl, ...week, "--window", "1d", "--max-window", "1d", "--json"], { token: fake.token })
    expect(r2.code, r2.stderr).toBe(0)
    expect((JSON.parse(r2.stdout) as { windows: number }).windows).toBe(7)
  })

  it("fetches only what the coverage lacks: re-runs, wider ranges, --recheck and run without --from, counted at the server", async ({ expect }) => {
    const fake = await box.startFake({ events: SeedOrg.generateOrg({ count: 600, seed: 5, from: iso(from.getTime() - 2 * DAY), to: iso(to.getTime() + 2 * DAY) }) })
    const out = path.join(box.root, "planned")
    const args = (a: Date, b: Date, ...more: ReadonlyArray<string>) =>
      // Windows of one day each (--max-window too): the requests below are counted per window.
      ["backfill", "--out", out, "--base-url", fake.baseUrl, "--window", "1d", "--max-window", "1d", "--from", a.toISOString(), "--to", b.toISOString(), "--json", ...more]
    type Summary = { windows: number; written: number; duplicates: number; late: number; pages: number }
    const backfill = async (a: Date, b: Date, ...more: ReadonlyArray<string>) => {
      const before = (await listings(fake)).length
      const r = await cli(args(a, b, ...more), { token: fake.token })
      expect(r.code, r.stderr).toBe(0)
      const after = await listings(fake)
      return { summary: JSON.parse(r.stdout) as Summary, requests: after.slice(before) }
    }

    // First run: one probe (the archive is new), then one page per 1-day window.
    const first = await backfill(from, to)
    expect(first.summary.windows).toBe(3)
    expect(first.requests).toHaveLength(1 + 3)

    // Again: covered, so not one request.
    const again = await backfill(from, to)
    expect(again.requests).toHaveLength(0)
    expect(again.summary).toMatchObject({ windows: 0, written: 0 })

    // Wider: only the two uncovered days.
    const wider = await backfill(new Date(from.getTime() - DAY), new Date(to.getTime() + DAY))
    expect(wider.requests.map((q) => [q.query.from, q.query.to])).toEqual([
      [iso(from.getTime() - DAY), from.toISOString()],
      [to.toISOString(), iso(to.getTime() + DAY)]
    ])

    // Late events inside the covered range: only --recheck finds them, and says how many.
    const late = SeedOrg.generateOrg({ count: 7, seed: 77, from, to: new Date(from.getTime() + DAY) })
    await fake.addEvents(late)
    expect((await backfill(from, to)).requests).toHaveLength(0)
    const recheck = await backfill(from, to, "--recheck")
    expect(recheck.requests).toHaveLength(3)
    expect(recheck.summary).toMatchObject({ windows: 3, written: 7, late: 7 })
    assertExactArchive(out, await fake.events(), { range: { from: new Date(from.getTime() - DAY), to: new Date(to.getTime() + DAY) }, token: fake.token })

    // The daemon without --from continues from the covered end, re-reading only the lookback.
    const coveredEnd = to.getTime() + DAY
    const before = (await listings(fake)).length
    const daemon = spawnCli(
      ["run", "--out", out, "--base-url", fake.baseUrl, "--window", "400d", "--lookback", "1h", "--interval", "1h", "--json"],
      { token: fake.token }
    )
    await daemon.waitFor(({ stderr }) => /Caught up/.test(stderr), 200_000, "caught up")
    daemon.kill("SIGTERM")
    const stopped = await daemon.wait(30_000)
    expect(stopped.code, stopped.stderr).toBe(0)
    const runRequests = (await listings(fake)).slice(before)
    expect(runRequests.length).toBeGreaterThan(0)
    expect(Date.parse(runRequests[0]!.query.from!)).toBe(coveredEnd - 3_600_000)
    for (const q of runRequests) expect(Date.parse(q.query.from!)).toBeGreaterThanOrEqual(coveredEnd - 3_600_000 - 1000)
    const summary = JSON.parse(stopped.stdout) as { command: string; windows: number; written: number }
    // What it wrote is exactly the events after the covered end.
    const after = serverEvents(await fake.events()).filter((e) => e.createdMs >= coveredEnd).length
    expect(after).toBeGreaterThan(0)
    expect(summary).toMatchObject({ command: "run", written: after })
    expect(summary.windows).toBeGreaterThan(0)
  }, 900_000)

  it("writes a rotated refresh token safely past a planted <file>.tmp symlink", async ({ expect }) => {
    const oauth = { clientId: "C-operator", clientSecret: "operator-client-secret-1", refreshToken: "operator-refresh-0" }
    const fake = await box.startFake({ events: SeedOrg.generateOrg({ count: 50, seed: 6, from, to }), oauth })
    const dir = path.join(box.root, "planted")
    fs.mkdirSync(dir)
    const refreshFile = path.join(dir, "refresh-token")
    fs.writeFileSync(refreshFile, `${oauth.refreshToken}\n`, { mode: 0o600 })
    const secretFile = path.join(dir, "client-secret")
    fs.writeFileSync(secretFile, `${oauth.clientSecret}\n`, { mode: 0o600 })
    const victim = path.join(dir, "victim")
    fs.writeFileSync(victim, "precious\n", { mode: 0o644 })
    fs.symlinkSync(victim, `${refreshFile}.tmp`)
    const r = await cli([
      "backfill", "--out", path.join(dir, "archive"), "--base-url", fake.baseUrl,
      "--refresh-token-file", refreshFile, "--client-id", oauth.clientId, "--client-secret-file", secretFile,
      "--from", from.toISOString(), "--to", to.toISOString()
    ])
    expect(r.code, r.stderr).toBe(0)
    expect(fs.readFileSync(victim, "utf8")).toBe("precious\n")
    expect(fs.lstatSync(refreshFile).isFile()).toBe(true)
    expect(fs.statSync(refreshFile).mode & 0o777).toBe(0o600)
    const rotated = fs.readFileSync(refreshFile, "utf8").trim()
    expect(rotated).not.toBe(oauth.refreshToken)
    expect(rotated).not.toBe("")
    expect(r.stdout + r.stderr).not.toContain(oauth.clientSecret)
    expect(r.stdout + r.stderr).not.toContain(rotated)
  }, 600_000)

  it("a server echoing the token and control characters: the printed line and last-error.json hold neither", async ({ expect }) => {
    // A hostile server of its own: every request is refused with a body quoting the bearer token,
    // an escape sequence and a forged log line.
    const server = http.createServer((req, res) => {
      const auth = req.headers.authorization ?? ""
      res.writeHead(401, { "content-type": "application/json", trackingid: "ROUTER_ECHO" })
      res.end(JSON.stringify({ message: `Invalid ${auth} \u001b[2J\nlevel=ERROR forged=yes`, trackingId: "ROUTER_ECHO" }))
    })
    await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve))
    const port = (server.address() as { port: number }).port
    const token = `echoed-secret-${Date.now()}-abcdef`
    const out = path.join(box.root, "echo")
    // The folder exists, so the archive is opened (and the failure recorded) before the refusal.
    fs.mkdirSync(out, { mode: 0o700 })
    try {
      const r = await cli(["backfill", "--out", out, "--base-url", `http://127.0.0.1:${port}/v1`, "--from", from.toISOString(), "--to", to.toISOString()], { token })
      expect(r.code, r.stderr).toBe(77)
      const line = errorLine(r.stderr)
      expect(r.stderr).not.toContain(token)
      // eslint-disable-next-line no-control-regex
      expect(r.stderr).not.toMatch(/\u001b/)
      expect(r.stderr.split("\n").filter((l) => l.startsWith("level=ERROR"))).toEqual([])
      expect(line).toContain("ROUTER_ECHO")
      const lastError = fs.readFileSync(path.join(out, "state", "last-error.json"), "utf8")
      expect(lastError).not.toContain(token)
      expect(lastError).toContain("<redacted>")
    } finally {
      server.close()
    }
  }, 600_000)
})
