/**
 * apps/archiver/deploy/systemd/webex-archiver.service: checked by `systemd-analyze verify` (and, where this
 * systemd has it, `systemd-analyze security --offline`) on machines that have systemd-analyze;
 * the directives the operator relies on are checked everywhere.
 */
import { describe, expect, it } from "@effect/vitest"
import { spawnSync } from "node:child_process"
import * as fs from "node:fs"
import * as os from "node:os"
import * as path from "node:path"
import { fileURLToPath } from "node:url"

const repo = path.resolve(path.dirname(fileURLToPath(import.meta.url)), "../../..")
const unitPath = path.join(repo, "apps/archiver/deploy/systemd/webex-archiver.service")
const unit = fs.readFileSync(unitPath, "utf8")
const bin = path.join(repo, "apps/archiver/bin/webex-archiver.mjs")

/** Every value of a directive, in order (a directive may repeat). */
const values = (key: string) =>
  unit.split("\n").filter((l) => l.startsWith(`${key}=`)).map((l) => l.slice(key.length + 1))

const hasAnalyze = spawnSync("systemd-analyze", ["--version"]).status === 0

/** The unit in a temporary folder, its ExecStart pointed at this checkout's launcher (verify wants it to exist). */
const localCopy = () => {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), "unit-"))
  const file = path.join(dir, "webex-archiver.service")
  fs.writeFileSync(file, unit.replace("ExecStart=/usr/local/bin/webex-archiver ", `ExecStart=${bin} `))
  return file
}

describe("apps/archiver/deploy/systemd/webex-archiver.service", () => {
  it("runs the daemon as its own user, with the token as a credential, never in the environment", () => {
    expect(values("User")).toEqual(["webex-archiver"])
    expect(values("StateDirectory")).toEqual(["webex-archiver"])
    expect(values("LoadCredential")).toEqual(["webex-token:/etc/webex-archiver/token"])
    const [exec] = values("ExecStart")
    expect(exec).toMatch(/^\/usr\/local\/bin\/webex-archiver run /)
    expect(exec).toContain("--token-file %d/webex-token")
    expect(exec).toContain("--out %S/webex-archiver/archive")
    expect(unit).not.toMatch(/^Environment=.*WEBEX_TOKEN/m)
    expect(fs.readFileSync(path.join(repo, "apps/archiver/deploy/sysusers.d/webex-archiver.conf"), "utf8")).toMatch(/^u webex-archiver /m)
  })

  it("is hardened, restarts only on failures a retry can fix, and gives the graceful stop time", () => {
    for (const [key, value] of [
      ["NoNewPrivileges", "yes"],
      ["ProtectSystem", "strict"],
      ["ProtectHome", "yes"],
      ["PrivateTmp", "yes"],
      ["CapabilityBoundingSet", ""],
      ["Restart", "on-failure"],
      ["KillSignal", "SIGTERM"]
    ] as const) {
      expect(values(key), key).toEqual([value])
    }
    // Usage, not authorised, configuration: sysexits 64, 77, 78 (the archiver's exit codes).
    expect(values("RestartPreventExitStatus")).toEqual(["64 77 78"])
    const stop = Number(values("TimeoutStopSec")[0])
    expect(stop).toBeGreaterThanOrEqual(30)
    expect(values("MemoryDenyWriteExecute")).toEqual([])
  })

  it.skipIf(!hasAnalyze)("passes systemd-analyze verify without a warning", () => {
    const r = spawnSync("systemd-analyze", ["verify", localCopy()], { encoding: "utf8" })
    expect(r.stderr + r.stdout).toBe("")
    expect(r.status).toBe(0)
  })

  it.skipIf(!hasAnalyze)("systemd-analyze verify does catch a bad directive (the check above can fail)", () => {
    const file = localCopy()
    fs.writeFileSync(file, fs.readFileSync(file, "utf8").replace("ProtectSystem=strict", "ProtectSystem=strictly"))
    const r = spawnSync("systemd-analyze", ["verify", file], { encoding: "utf8" })
    expect(r.stderr + r.stdout).toMatch(/ProtectSystem|protect system/i)
  })

  it.skipIf(!hasAnalyze)("rates OK or better in systemd-analyze security, where --offline exists", ({ skip }) => {
    const r = spawnSync("systemd-analyze", ["security", "--offline=true", "--no-pager", localCopy()], { encoding: "utf8" })
    if (r.status !== 0 && /offline/i.test(r.stderr)) skip("this systemd-analyze has no security --offline")
    const m = /Overall exposure level for \S+: ([\d.]+)/.exec(r.stdout)
    expect(m, r.stdout + r.stderr).not.toBeNull()
    expect(Number(m![1])).toBeLessThanOrEqual(2.5)
  })
})

if (!hasAnalyze) console.warn("deploy-systemd.test.ts: systemd-analyze not found; the verify checks are skipped")
