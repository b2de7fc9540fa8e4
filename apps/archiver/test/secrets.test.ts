/**
 * What leaves the process: secret files rewritten without following planted links, credentials
 * that cannot go into a header refused, known secrets cut out of messages, server text made safe
 * for terminals and logs.
 */
import { assert, describe, it } from "@effect/vitest"
import { EventsApiError } from "@webex-compliance/events-api"
import * as Effect from "effect/Effect"
import * as Logger from "effect/Logger"
import * as Redacted from "effect/Redacted"
import * as fs from "node:fs"
import * as os from "node:os"
import * as path from "node:path"
import { messageOf } from "../src/FailureMessage.js"
import * as ExitCode from "../src/ExitCode.js"
import { sanitizing } from "../src/Logging.js"
import { escapeControl, redactSecrets, registerSecret } from "../src/Redaction.js"
import { headerSafetyProblem, writeSecretAtomic } from "../src/SecretFile.js"

const tmp = () => fs.mkdtempSync(path.join(os.tmpdir(), "secrets-"))

describe("writeSecretAtomic", () => {
  it("never writes through a planted <file>.tmp symlink, and leaves a regular 0600 file", async () => {
    const dir = tmp()
    const file = path.join(dir, "refresh-token")
    const victim = path.join(dir, "victim")
    fs.writeFileSync(file, "old-refresh-token\n", { mode: 0o600 })
    fs.writeFileSync(victim, "precious\n", { mode: 0o644 })
    fs.symlinkSync(victim, `${file}.tmp`)
    await writeSecretAtomic(file, "new-refresh-token\n")
    assert.strictEqual(fs.readFileSync(victim, "utf8"), "precious\n")
    assert.strictEqual(fs.statSync(victim).mode & 0o777, 0o644)
    const st = fs.lstatSync(file)
    assert.isTrue(st.isFile(), "the token file is a regular file, not a link")
    assert.strictEqual(st.mode & 0o777, 0o600)
    assert.strictEqual(fs.readFileSync(file, "utf8"), "new-refresh-token\n")
    // Only the planted link is left besides the files: no temporary file of ours.
    assert.deepStrictEqual(fs.readdirSync(dir).sort(), ["refresh-token", "refresh-token.tmp", "victim"])
  })

  it("replaces a token file that is itself a symlink instead of writing through it", async () => {
    const dir = tmp()
    const file = path.join(dir, "refresh-token")
    const victim = path.join(dir, "victim")
    fs.writeFileSync(victim, "precious\n")
    fs.symlinkSync(victim, file)
    await writeSecretAtomic(file, "new\n")
    assert.strictEqual(fs.readFileSync(victim, "utf8"), "precious\n")
    assert.isFalse(fs.lstatSync(file).isSymbolicLink())
    assert.strictEqual(fs.readFileSync(file, "utf8"), "new\n")
  })
})

describe("headerSafetyProblem", () => {
  it("accepts a token, refuses what cannot go into an HTTP header", () => {
    const bytes = (s: string | ReadonlyArray<number>) => typeof s === "string" ? new TextEncoder().encode(s) : Uint8Array.from(s)
    assert.isUndefined(headerSafetyProblem(bytes("YWJjZGVm_ghi-123.xyz\n")))
    assert.match(headerSafetyProblem(bytes([0x61, 0xe9, 0x62]))!, /UTF-8/)
    assert.match(headerSafetyProblem(bytes("abc\u0000def"))!, /control character \(0x00\)/)
    assert.match(headerSafetyProblem(bytes("abc\u001bdef"))!, /control character \(0x1b\)/)
    assert.match(headerSafetyProblem(bytes("abc def"))!, /one value/)
    assert.match(headerSafetyProblem(bytes("tökén"))!, /non-ASCII/)
    assert.match(headerSafetyProblem(bytes("  \n"))!, /empty/)
  })
})

describe("Redaction", () => {
  it("cuts every registered secret out of messages, including those of API errors", () => {
    const token = "tok-0123456789-secret"
    const refresh = "refresh-9876543210-secret"
    registerSecret(Redacted.make(token))
    registerSecret(Redacted.make(refresh))
    assert.strictEqual(redactSecrets(`bearer ${token}; grant ${refresh}`), "bearer <redacted>; grant <redacted>")
    const error = new EventsApiError.Unauthorized({ status: 401, detail: `invalid token ${token}`, trackingId: "ROUTER_1" })
    const message = messageOf(error)
    assert.notInclude(message, token)
    assert.include(message, "trackingId ROUTER_1")
  })

  it("escapes control characters and cuts long text", () => {
    assert.strictEqual(escapeControl("a\u001b[31mred\u0007\nlevel=ERROR"), "a\\x1b[31mred\\x07\\nlevel=ERROR")
    assert.strictEqual(escapeControl("one\u2028level=ERROR\u2029two"), "one\\u2028level=ERROR\\u2029two")
    const long = escapeControl("x".repeat(5000), 100)
    assert.strictEqual(long, `${"x".repeat(100)}… (4900 more characters)`)
  })

  it.effect("the log wrapper makes messages and annotations safe", () =>
    Effect.gen(function*() {
      const lines: Array<string> = []
      const logger = Logger.map(sanitizing(Logger.logfmtLogger), (l) => {
        lines.push(l)
      })
      yield* Effect.logError("server said \u001b[2Jlevel=ERROR forged\nline").pipe(
        Effect.annotateLogs({ body: `x${"y".repeat(10_000)}` }),
        Effect.provide(Logger.replace(Logger.defaultLogger, logger))
      )
      assert.strictEqual(lines.length, 1)
      const line = lines[0]!
      assert.notMatch(line, /[\u0000-\u001f]/)
      assert.notInclude(line, "\n")
      assert.isBelow(line.length, 3000)
      assert.include(line, "more characters")
    }))
})

describe("ExitCode", () => {
  it("maps failures by tag, per sysexits", () => {
    const cases: ReadonlyArray<readonly [unknown, number]> = [
      [new EventsApiError.Unauthorized({ detail: "no" }), 77],
      [new EventsApiError.Forbidden({ detail: "no" }), 77],
      [new EventsApiError.TokenRefreshFailed({ detail: "no", stage: "grant" }), 77],
      [new EventsApiError.ResponseDecodeError({ reason: "bad" }), 76],
      [new EventsApiError.InvalidRequest({ detail: "bad", status: 400 }), 76],
      [new EventsApiError.InvalidRequest({ reason: "bad", param: "baseUrl" }), 78],
      [new EventsApiError.ServerError({ detail: "5xx" }), 75],
      [{ _tag: "ArchiveLocked" }, 75],
      [{ _tag: "ArchiveLockLost" }, 75],
      [{ _tag: "ArchiveUnsafe" }, 74],
      [{ _tag: "ArchiveWriteError" }, 74],
      [{ _tag: "CheckpointError" }, 78],
      [{ _tag: "CredentialsError" }, 78],
      [{ _tag: "ArchiverUsageError" }, 64],
      [new Error("a bug"), 70]
    ]
    for (const [error, code] of cases) assert.strictEqual(ExitCode.ofError(error), code, JSON.stringify(error))
  })
})
