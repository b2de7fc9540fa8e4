/**
 * Issue 10 on the real CLI: the fake Webex's hostile modes (endless body, giant page, onward empty
 * pages, invalid UTF-8, echoed secrets, control characters, moved day), each against
 * `webex-archiver` spawned as an operator runs it. What a user would notice is asserted: the exit
 * code (CONTRACTS C3), the memory the process took, the archive's bytes, what stderr says, and that
 * no secret is anywhere.
 */
import { SeedOrg } from "@webex-compliance/events-api/testing"
import * as fs from "node:fs"
import * as path from "node:path"
import * as zlib from "node:zlib"
import { describe, it } from "vitest"
import { assertExactArchive, filesContaining, readArchive } from "./support/archiveCheck.js"
import { logLines, messageLines, runCli, spawnCli, waitUntil, watchPeakRss } from "./support/cli.js"
import { type RunningFake, sandbox } from "./support/fakeServer.js"

const { root, startFake: fakeWith } = sandbox("e2e-hostile-server-")

const from = new Date("2024-09-01T00:00:00.000Z")
const to = new Date("2024-09-03T00:00:00.000Z")
const backfill = (out: string, fake: RunningFake, ...extra: ReadonlyArray<string>) =>
  ["backfill", "--out", out, "--base-url", fake.baseUrl, "--from", from.toISOString(), "--to", to.toISOString(), ...extra]

const DAY = 86_400_000
const HOUR = 3_600_000

/**
 * Peak resident memory, in MiB, the body cap (32 MiB) allows for: the runtime (about 110 MiB),
 * and one page at the cap decoded into items (a few times its bytes).
 */
const BOUNDED_RSS_MIB = 512

/** The lines (as bytes) of the archive's event files, sealed segments included. */
const eventLineBytes = (dir: string): ReadonlyArray<Buffer> => {
  const events = path.join(dir, "events")
  const lines: Array<Buffer> = []
  for (const name of fs.readdirSync(events).sort()) {
    const file = path.join(events, name)
    if (!fs.lstatSync(file).isFile()) continue
    const bytes = name.endsWith(".gz") ? zlib.gunzipSync(fs.readFileSync(file)) : fs.readFileSync(file)
    let start = 0
    for (let i = 0; i < bytes.length; i++) {
      if (bytes[i] === 0x0a) {
        lines.push(bytes.subarray(start, i))
        start = i + 1
      }
    }
  }
  return lines
}

/** The token (and any other secret) appears in no output and no archive file. */
const expectNoSecret = (expect: (v: unknown, m?: string) => any, secret: string, out: string, ...outputs: ReadonlyArray<string>) => {
  for (const o of outputs) expect(o.includes(secret), "a secret in the output").toBe(false)
  expect(filesContaining(out, secret), "archive files holding a secret").toEqual([])
}

/** The text the fake's `hostileErrorText` carries, whose parts must never reach a terminal raw. */
const FORGED_LOGFMT = /^timestamp=2024-01-01T00:00:00\.000Z level=ERROR/
const FORGED_JSON = /^\{"level":"ERROR","message":"forged json line"\}/
// eslint-disable-next-line no-control-regex
const RAW_CONTROL = /[\u0000-\u0008\u000b-\u001f\u007f]/

const expectSafeOutput = (expect: (v: unknown, m?: string) => any, ...outputs: ReadonlyArray<string>) => {
  for (const o of outputs) {
    expect(RAW_CONTROL.test(o), `a raw control character in:\n${o.slice(0, 2000)}`).toBe(false)
    for (const line of o.split("\n")) {
      expect(FORGED_LOGFMT.test(line), `a forged log line: ${line.slice(0, 200)}`).toBe(false)
      expect(FORGED_JSON.test(line), `a forged JSON log line: ${line.slice(0, 200)}`).toBe(false)
      // The 200 KiB string is cut: no line comes near it.
      expect(line.length, "a long line").toBeLessThan(20_000)
    }
  }
}

describe.concurrent("a hostile server, against the real CLI", () => {
  it("a body that never ends: exit 76 naming the cap, memory bounded, no retry storm", async ({ expect }) => {
    const fake = await fakeWith({ events: SeedOrg.generateOrg({ count: 50, seed: 1, from, to }), faults: { endlessBody: true } })
    const out = path.join(root, "endless")
    const child = spawnCli(backfill(out, fake), { token: fake.token })
    const rss = watchPeakRss(child.pid)
    const r = await child.wait(60_000)
    const peakMiB = rss.stop() / 1024
    expect(r.code, r.stderr).toBe(76)
    const lines = messageLines(r.stderr)
    expect(lines.join("\n"), r.stderr).toMatch(/larger than the limit of 33554432 bytes/)
    console.log(`endless body: peak RSS ${Math.round(peakMiB)} MiB, exit after ${r.ms} ms`)
    expect(peakMiB, "peak RSS (MiB)").toBeLessThan(BOUNDED_RSS_MIB)
    // Failing fast: too large is not transient, so it is not retried. (The start-up probe, max=1,
    // stops reading after its first item: it is not counted.)
    const listed = (await fake.requests()).filter((q) => q.fault === "endlessBody" && q.query.max !== "1")
    expect(listed.length).toBe(1)
    expectNoSecret(expect, fake.token, out, r.stdout, r.stderr)
  })

  it("a giant page (200,000 and 2,000,000 items on small-max requests): exit 76, memory bounded and not growing with the page", async ({ expect }) => {
    const peaks: Array<number> = []
    for (const items of [200_000, 2_000_000]) {
      const fake = await fakeWith({
        events: SeedOrg.generateOrg({ count: 200, seed: 2, from, to }),
        faults: { giantPageItems: items }
      })
      const out = path.join(root, `giant-${items}`)
      const child = spawnCli(backfill(out, fake, "--max", "1000"), { token: fake.token })
      const rss = watchPeakRss(child.pid)
      const r = await child.wait(90_000)
      const peakMiB = rss.stop() / 1024
      console.log(`giant page of ${items} items: peak RSS ${Math.round(peakMiB)} MiB, exit after ${r.ms} ms`)
      expect(r.code, r.stderr).toBe(76)
      expect(messageLines(r.stderr).join("\n"), r.stderr).toMatch(/larger than the limit of 33554432 bytes/)
      // A page under the cap but over `max` (the start-up probe's, of small filler items) is logged.
      expect(fs.existsSync(path.join(out, "events")) ? readArchive(out).lines : []).toEqual([])
      expectNoSecret(expect, fake.token, out, r.stdout, r.stderr)
      peaks.push(peakMiB)
    }
    // A page just under the 32 MiB cap is decoded whole (items cost several times their bytes);
    // past the cap nothing more is held: ten times the page, no more memory.
    expect(peaks[0]!, "peak RSS (MiB), 200k items").toBeLessThan(BOUNDED_RSS_MIB)
    expect(peaks[1]!, "peak RSS (MiB), 2M items").toBeLessThan(Math.max(BOUNDED_RSS_MIB, peaks[0]! * 1.25))
  })

  it("a page over max but under the cap: archived, and the oversize page is logged", async ({ expect }) => {
    const events = [...SeedOrg.generateOrg({ count: 40, seed: 3, from, to })]
    const fake = await fakeWith({ events, faults: { giantPageItems: 120 } })
    const out = path.join(root, "oversize")
    const r = await runCli(backfill(out, fake, "--max", "50", "--window", "2d"), { token: fake.token })
    expect(r.code, r.stderr).toBe(0)
    expect(logLines(r.stderr).join("\n")).toMatch(/The server sent 120 items on a page of at most 50/)
    assertExactArchive(out, await fake.events(), { range: { from, to }, token: fake.token })
  })

  it("empty pages that link onward for ever: exit 76 after a bounded number of requests", async ({ expect }) => {
    const fake = await fakeWith({ events: SeedOrg.generateOrg({ count: 20, seed: 4, from, to }), faults: { onwardEmptyPages: true } })
    const out = path.join(root, "onward")
    const r = await runCli(backfill(out, fake), { token: fake.token, timeoutMs: 60_000 })
    expect(r.code, r.stderr).toBe(76)
    expect(messageLines(r.stderr).join("\n"), r.stderr).toMatch(/empty pages/)
    const listed = (await fake.requests()).filter((q) => q.path.startsWith("/v1/events"))
    // 20 empty pages in a row is the default limit: a handful more requests at most, never thousands.
    expect(listed.length).toBeGreaterThanOrEqual(20)
    expect(listed.length).toBeLessThan(100)
    expectNoSecret(expect, fake.token, out, r.stdout, r.stderr)
  })

  it("invalid UTF-8 in items: archived byte-exact, each one flagged in the log", async ({ expect }) => {
    const seeded = [...SeedOrg.generateOrg({ count: 30, seed: 5, from, to })]
    // One event of our own, its bytes chosen: lone continuation, truncated sequence, overlong, 0xFF.
    const head = Buffer.from(
      `{"id":"chosen-bytes","resource":"messages","type":"created","actorId":"a","created":"2024-09-01T12:00:00.000Z","data":{"text":"`
    )
    const chosen = Buffer.concat([head, Buffer.from([0x80, 0xc3, 0x28, 0xc0, 0xaf, 0xff, 0xfe, 0xed, 0xa0, 0x80]), Buffer.from(`"}}`)])
    const fake = await fakeWith({ events: [...seeded, new Uint8Array(chosen)], faults: { invalidUtf8Every: 1 } })
    const out = path.join(root, "utf8")
    const r = await runCli(backfill(out, fake, "--settle", "0"), { token: fake.token })
    expect(r.code, r.stderr).toBe(0)
    const lines = eventLineBytes(out)
    // The chosen event is in the archive as the very bytes served, not a U+FFFD re-encoding.
    expect(lines.filter((l) => l.equals(chosen)), "the chosen bytes, exactly").toHaveLength(1)
    const injected = lines.filter((l) => l.includes(Buffer.from(`"id":"invalid-utf8-`)))
    expect(injected.length, "the fake's invalid-UTF-8 events").toBeGreaterThanOrEqual(1)
    for (const l of injected) expect(l.includes(Buffer.from([0x80, 0x20, 0xc3, 0x28, 0x20, 0xc0, 0xaf, 0x20, 0xff, 0xfe]))).toBe(true)
    expect(lines.some((l) => l.includes(Buffer.from("\uFFFD"))), "no replacement character").toBe(false)
    const flagged = logLines(r.stderr).filter((l) => /not valid UTF-8/.test(l))
    expect(flagged.length, r.stderr).toBe(injected.length + 1)
    expect(flagged.some((l) => l.includes("chosen-bytes"))).toBe(true)
    // Sealed (settle 0): the gzip segment holds the same bytes, and verify agrees.
    const verified = await runCli(["verify", "--out", out])
    expect(verified.code, verified.stderr + verified.stdout).toBe(0)
    expectNoSecret(expect, fake.token, out, r.stdout, r.stderr)
  })

  it("error bodies echo the token (401): exit 77, the token in no output and no file", async ({ expect }) => {
    const fake = await fakeWith({ events: SeedOrg.generateOrg({ count: 20, seed: 6, from, to }), faults: { unauthorized: true, echoSecrets: true } })
    const out = path.join(root, "echo-401")
    const r = await runCli(backfill(out, fake), { token: fake.token })
    expect(r.code, r.stderr).toBe(77)
    expectNoSecret(expect, fake.token, out, r.stdout, r.stderr)
    const status = await runCli(["status", "--out", out, "--json"])
    expectNoSecret(expect, fake.token, out, status.stdout, status.stderr)
  })

  it("error bodies echo the token on retried 5xx: exit 0, an exact archive, the token in no log line and no file", async ({ expect }) => {
    const fake = await fakeWith({
      events: SeedOrg.generateOrg({ count: 200, seed: 7, from, to }),
      faults: { serverErrorEvery: 2, echoSecrets: true }
    })
    const out = path.join(root, "echo-5xx")
    const r = await runCli(backfill(out, fake, "--max", "50", "--log-format", "json"), { token: fake.token })
    expect(r.code, r.stderr).toBe(0)
    assertExactArchive(out, await fake.events(), { range: { from, to }, token: fake.token })
    expectNoSecret(expect, fake.token, out, r.stdout, r.stderr)
  })

  it("echoed refresh token and client secret from the token endpoint: exit 77, neither anywhere", async ({ expect }) => {
    const refreshToken = "e2e-refresh-secret-0123456789abcdef"
    const clientSecret = "e2e-client-secret-fedcba9876543210"
    const fake = await fakeWith({
      events: SeedOrg.generateOrg({ count: 20, seed: 8, from, to }),
      faults: { echoSecrets: true, hostileErrorText: true },
      oauth: { clientId: "client-1", clientSecret, refreshToken }
    })
    await fake.revokeRefreshToken()
    const out = path.join(root, "echo-oauth")
    const files = path.join(root, "echo-oauth-secrets")
    fs.mkdirSync(files, { mode: 0o700 })
    fs.writeFileSync(path.join(files, "refresh"), refreshToken, { mode: 0o600 })
    fs.writeFileSync(path.join(files, "secret"), clientSecret, { mode: 0o600 })
    const r = await runCli([
      ...backfill(out, fake),
      "--refresh-token-file", path.join(files, "refresh"),
      "--client-id", "client-1",
      "--client-secret-file", path.join(files, "secret")
    ])
    expect(r.code, r.stderr).toBe(77)
    for (const secret of [refreshToken, clientSecret]) expectNoSecret(expect, secret, out, r.stdout, r.stderr)
    expectSafeOutput(expect, r.stdout, r.stderr)
  })

  it("control characters, forged log lines and 200 KiB in error texts: escaped and cut in every output", async ({ expect }) => {
    const fake = await fakeWith({ events: SeedOrg.generateOrg({ count: 20, seed: 9, from, to }), faults: { forbidden: true, hostileErrorText: true } })
    const out = path.join(root, "control-403")
    const r = await runCli(backfill(out, fake), { token: fake.token })
    expect(r.code, r.stderr).toBe(77)
    expectSafeOutput(expect, r.stdout, r.stderr)
    // The escapes are there, shown, not interpreted.
    expect(r.stderr).toMatch(/\\(x1b|u001b)\[31mRED/)

    // Retried 5xx with the same text: every retry's log line escaped too, in both log formats.
    for (const format of ["text", "json"]) {
      const retried = await fakeWith({
        events: SeedOrg.generateOrg({ count: 60, seed: 10, from, to }),
        faults: { serverErrorEvery: 2, hostileErrorText: true }
      })
      const out2 = path.join(root, `control-5xx-${format}`)
      const r2 = await runCli(backfill(out2, retried, "--max", "20", "--log-format", format), { token: retried.token })
      expect(r2.code, r2.stderr.slice(-3000)).toBe(0)
      expect(r2.stderr.length, "something was logged").toBeGreaterThan(0)
      expectSafeOutput(expect, r2.stdout, r2.stderr)
      assertExactArchive(out2, await retried.events(), { range: { from, to }, token: retried.token })
    }
  })

  it("a run: a malformed page, an endless body, runaway pagination each fail one poll (recorded); the daemon goes on and archives once the server recovers", async ({ expect }) => {
    // Recent events: the daemon's catch-up is a few windows, not years of them.
    const now = Date.now()
    const start = new Date(Math.floor((now - DAY) / HOUR) * HOUR)
    const fake = await fakeWith({
      events: SeedOrg.generateOrg({ count: 100, seed: 11, from: start, to: new Date(now - HOUR) }),
      faults: { malformedPageEvery: 1 }
    })
    const out = path.join(root, "run-recovers")
    const daemon = spawnCli(
      ["run", "--out", out, "--base-url", fake.baseUrl, "--from", start.toISOString(), "--interval", "1s", "--lookback", "1h"],
      { token: fake.token }
    )
    const lastError = path.join(out, "state", "last-error.json")
    const failures = (tag: string) => logLines(daemon.stderr()).filter((l) => l.includes("Poll failed") && l.includes(`error=${tag}`)).length
    // Runaway pagination is not last: switched off mid-listing, its onward link (an offset far
    // past the events) would end that listing on a healthy empty page, a lie no client can see.
    // Each of the others fails a listing at its first page.
    const phases = [
      { tag: "ResponseDecodeError", faults: { malformedPageEvery: 1 }, recorded: /not JSON/ },
      { tag: "PaginationRunaway", faults: { onwardEmptyPages: true }, recorded: /empty pages/ },
      { tag: "ResponseTooLarge", faults: { endlessBody: true }, recorded: /larger than the limit/ }
    ]
    for (const [i, phase] of phases.entries()) {
      const before = failures(phase.tag)
      if (i > 0) await fake.setFaults(phase.faults)
      await waitUntil(() => failures(phase.tag) > before, 60_000, `a poll failing with ${phase.tag}`)
      await waitUntil(() => fs.existsSync(lastError) && phase.recorded.test(fs.readFileSync(lastError, "utf8")), 10_000, `${phase.tag} recorded`)
      expect(daemon.done(), daemon.stderr().slice(-2000)).toBe(false)
    }
    const status = await runCli(["status", "--out", out])
    expect(status.stdout).toMatch(/Last error: .*larger than the limit/)
    await fake.setFaults({})
    await waitUntil(() => !fs.existsSync(lastError), 60_000, "a poll succeeding, clearing the last error")
    daemon.kill("SIGTERM")
    const stopped = await daemon.wait(30_000)
    expect(stopped.code, stopped.stderr.slice(-3000)).toBe(0)
    assertExactArchive(out, await fake.events(), { range: { from: start, to: new Date(now) }, token: fake.token })
    expectNoSecret(expect, fake.token, out, stopped.stdout, stopped.stderr)
  })

  it("an event moved to another day: the copy is quarantined as a movedDay variant, and status and verify report it", async ({ expect }) => {
    const fake = await fakeWith({
      events: SeedOrg.generateOrg({ count: 60, seed: 13, from, to: new Date("2024-09-02T00:00:00.000Z") }),
      faults: { movedDayEvery: 10 }
    })
    const out = path.join(root, "moved")
    const r = await runCli(backfill(out, fake, "--window", "1d", "--settle", "0"), { token: fake.token })
    expect(r.code, r.stderr).toBe(0)
    // Each id once in events/, whatever day the second listing put it under.
    const archive = readArchive(out)
    for (const [id, ls] of archive.byId) expect(ls.length, id).toBe(1)
    const quarantined = fs.readdirSync(path.join(out, "quarantine"))
      .flatMap((f) => fs.readFileSync(path.join(out, "quarantine", f), "utf8").split("\n").filter((l) => l !== ""))
      .map((l) => JSON.parse(l) as { kind?: string; id?: string; firstDay?: string })
    const moved = quarantined.filter((q) => q.kind === "movedDay")
    expect(moved.length).toBe(6)
    for (const q of moved) {
      expect(q.firstDay).toBe("2024-09-01")
      expect(archive.byId.get(q.id!)?.[0]?.file).toMatch(/^2024-09-01\./)
    }

    const status = await runCli(["status", "--out", out, "--json"])
    expect(status.code, status.stderr).toBe(0)
    const s = JSON.parse(status.stdout) as { quarantine: { movedDay?: number } }
    expect(s.quarantine.movedDay).toBe(6)
    const text = await runCli(["status", "--out", out])
    expect(text.stdout).toMatch(/Moved day: +6 events/)

    const verified = await runCli(["verify", "--out", out, "--json"])
    expect(verified.code, verified.stderr + verified.stdout).toBe(0)
    expect(verified.stdout).toMatch(/"movedDay":\s*6/)
    const verifiedText = await runCli(["verify", "--out", out])
    expect(verifiedText.stdout).toMatch(/Quarantine: 6 items; 6 moved-day copies/)
    expectNoSecret(expect, fake.token, out, r.stdout, r.stderr)
  })
})
