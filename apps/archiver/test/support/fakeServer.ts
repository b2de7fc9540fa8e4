/**
 * The fake Webex server, driven from plain async tests: started on loopback in the test process,
 * handed to child processes by URL and token.
 */
import { FakeWebex } from "@webex-compliance/events-api/testing"
import * as Effect from "effect/Effect"
import * as Exit from "effect/Exit"
import * as Redacted from "effect/Redacted"
import * as Scope from "effect/Scope"
import { randomBytes } from "node:crypto"
import * as fs from "node:fs"
import * as os from "node:os"
import * as path from "node:path"
import { afterAll } from "vitest"
import { killAll } from "./cli.js"

export interface RunningFake {
  /** `http://127.0.0.1:<port>/v1`. */
  readonly baseUrl: string
  /** The accepted token, in clear: for the child's `WEBEX_TOKEN`, and to grep for leaks. */
  readonly token: string
  readonly setFaults: (faults: Partial<FakeWebex.Faults>) => Promise<void>
  readonly addEvents: (events: Iterable<string | object>) => Promise<void>
  /** Every stored event, raw text, in insertion order. */
  readonly events: () => Promise<ReadonlyArray<string>>
  readonly requests: () => Promise<ReadonlyArray<FakeWebex.RecordedRequest>>
  readonly close: () => Promise<void>
  /** OAuth: every access token known so far becomes invalid (401), as on expiry. */
  readonly expireAccessTokens: () => Promise<void>
  /** OAuth: the current refresh token becomes invalid (`invalid_grant`). */
  readonly revokeRefreshToken: () => Promise<void>
}

/**
 * Starts a fake server (its own scope, closed by `close`). The token is random and distinctive,
 * so a leak anywhere is found by a plain substring search.
 */
export const startFake = async (options: Omit<FakeWebex.Options, "token"> = {}): Promise<RunningFake> => {
  const scope = Effect.runSync(Scope.make())
  const token = `e2e-secret-${randomBytes(12).toString("hex")}`
  const fake = await Effect.runPromise(Scope.extend(FakeWebex.make({ ...options, token }), scope))
  return {
    baseUrl: fake.baseUrl,
    token: Redacted.value(fake.token),
    setFaults: (faults) => Effect.runPromise(fake.setFaults(faults)),
    addEvents: (events) => Effect.runPromise(fake.addEvents(events)),
    events: () => Effect.runPromise(fake.events),
    requests: () => Effect.runPromise(fake.requests),
    close: () => Effect.runPromise(Scope.close(scope, Exit.void)),
    expireAccessTokens: () => Effect.runPromise(fake.expireAccessTokens),
    revokeRefreshToken: () => Effect.runPromise(fake.revokeRefreshToken)
  }
}

/**
 * One test file's sandbox: a temporary root and the fake servers its tests start, torn down once
 * after the file (children killed, fakes closed, files removed): the tests of a file run
 * concurrently, most of their time spent waiting on child processes.
 */
export const sandbox = (prefix: string) => {
  const root = fs.mkdtempSync(path.join(os.tmpdir(), prefix))
  const fakes: Array<RunningFake> = []
  afterAll(async () => {
    killAll()
    await Promise.all(fakes.map((f) => f.close()))
    fs.rmSync(root, { recursive: true, force: true })
  })
  return {
    root,
    startFake: async (options: Parameters<typeof startFake>[0] = {}) => {
      const fake = await startFake(options)
      fakes.push(fake)
      return fake
    }
  }
}
