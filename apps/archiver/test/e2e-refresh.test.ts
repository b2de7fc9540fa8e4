/**
 * The real CLI keeps itself authorised with the OAuth refresh-token grant: it refreshes at start,
 * again when its access token is refused mid-run, persists every rotated refresh token to the
 * file it was given before using it, and stops with a clear message when the grant is refused.
 */
import { SeedOrg } from "@webex-compliance/events-api/testing"
import * as fs from "node:fs"
import * as os from "node:os"
import * as path from "node:path"
import { afterAll, afterEach, describe, expect, it } from "vitest"
import { assertExactArchive, filesContaining, inRange, serverEvents } from "./support/archiveCheck.js"
import { killAll, messageLines, runCli, spawnCli } from "./support/cli.js"
import { type RunningFake, startFake } from "./support/fakeServer.js"

const root = fs.mkdtempSync(path.join(os.tmpdir(), "e2e-refresh-"))
const from = new Date("2024-03-01T00:00:00.000Z")
const to = new Date("2024-03-03T00:00:00.000Z")
const oauth = { clientId: "C-e2e-client", clientSecret: "e2e-client-secret-123", refreshToken: "e2e-refresh-0" }
let fake: RunningFake | undefined

afterEach(async () => {
  killAll()
  await fake?.close()
  fake = undefined
})
afterAll(() => fs.rmSync(root, { recursive: true, force: true }))

const setup = (name: string) => {
  const dir = path.join(root, name)
  fs.mkdirSync(dir, { recursive: true })
  const refreshFile = path.join(dir, "refresh-token")
  fs.writeFileSync(refreshFile, `${oauth.refreshToken}\n`, { mode: 0o600 })
  const secretFile = path.join(dir, "client-secret")
  fs.writeFileSync(secretFile, `${oauth.clientSecret}\n`, { mode: 0o600 })
  const out = path.join(dir, "archive")
  const args = [
    "--out", out,
    "--refresh-token-file", refreshFile,
    "--client-id", oauth.clientId,
    "--client-secret-file", secretFile,
    "--window", "6h",
    "--max", "50"
  ]
  return { out, refreshFile, args }
}

describe("OAuth refresh, end to end", () => {
  it("refreshes at start and after a mid-run 401, persists each rotated refresh token, and archives everything", async () => {
    const events = SeedOrg.generateOrg({ count: 1500, seed: 5, from, to })
    fake = await startFake({ events, oauth, faults: { latencyMs: 5 } })
    const { out, refreshFile, args } = setup("rotation")
    const child = spawnCli(
      ["backfill", ...args, "--base-url", fake.baseUrl, "--from", from.toISOString(), "--to", to.toISOString()],
      {}
    )
    // Let it get going with the first refreshed token, then expire every token it holds.
    await child.waitFor(({ stderr }) => /window 2 archived/.test(stderr), 60_000, "two windows archived")
    const f = fake
    const before = (await f.requests()).filter((r) => r.path === "/v1/access_token").length
    expect(before).toBe(1)
    await f.expireAccessTokens()
    const exited = await child.wait(60_000)
    expect(exited.code, exited.stderr).toBe(0)

    const grants = (await f.requests()).filter((r) => r.path === "/v1/access_token")
    expect(grants.map((g) => g.status)).toEqual([200, 200])
    // The file holds the latest refresh token, the one the server now accepts, and stays private.
    expect(fs.readFileSync(refreshFile, "utf8").trim()).toBe("fake-refresh-2")
    expect(fs.statSync(refreshFile).mode & 0o777).toBe(0o600)
    assertExactArchive(out, events, { range: { from, to } })
    expect(serverEvents(events).filter((e) => inRange(e, { from, to }))).toHaveLength(1500)
    // No secret, and no access token, anywhere in the output or the archive.
    for (const secret of [oauth.clientSecret, oauth.refreshToken, "fake-access-1", "fake-access-2", "fake-refresh-2"]) {
      expect(exited.stdout + exited.stderr).not.toContain(secret)
      expect(filesContaining(out, secret)).toEqual([])
    }
  })

  it("a refused refresh stops with one clear line, exit 77 (not authorised), and leaves the refresh-token file as it was", async () => {
    fake = await startFake({ events: SeedOrg.generateOrg({ count: 100, seed: 6, from, to }), oauth })
    await fake.revokeRefreshToken()
    const { out, refreshFile, args } = setup("revoked")
    const r = await runCli(["backfill", ...args, "--base-url", fake.baseUrl, "--from", from.toISOString(), "--to", to.toISOString()], {})
    expect(r.code).toBe(77)
    const lines = messageLines(r.stderr)
    expect(lines).toHaveLength(1)
    expect(lines[0]).toMatch(/invalid_grant/)
    expect(lines[0]).toMatch(/[Rr]e-authorise/)
    expect(fs.readFileSync(refreshFile, "utf8")).toBe(`${oauth.refreshToken}\n`)
    expect(fs.existsSync(path.join(out, "events")) ? fs.readdirSync(path.join(out, "events")) : []).toEqual([])
  })

  it("--refresh-token-file without client credentials is refused before any request", async () => {
    fake = await startFake({ events: [], oauth })
    const { refreshFile } = setup("incomplete")
    const r = await runCli(
      ["backfill", "--out", path.join(root, "incomplete", "archive"), "--refresh-token-file", refreshFile, "--base-url", fake.baseUrl, "--from", from.toISOString()],
      {}
    )
    expect(r.code).toBe(78)
    expect(messageLines(r.stderr)[0]).toMatch(/client id .* and client secret/)
    expect(await fake.requests()).toHaveLength(0)
  })
})

