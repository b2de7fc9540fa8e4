/**
 * Time is decoded once: every offset spelling the library's grammar accepts is the same instant in
 * the checkpoint, and what is written back reads as the same instant again.
 */
import { assert, describe, it } from "@effect/vitest"
import * as Effect from "effect/Effect"
import * as FastCheck from "effect/FastCheck"
import * as Option from "effect/Option"
import * as Schema from "effect/Schema"
import * as fs from "node:fs"
import * as os from "node:os"
import * as path from "node:path"
import * as Checkpoint from "../src/Checkpoint.js"
import { EpochMillisFromIso, parseMillis, toIso } from "../src/Instant.js"

const pad = (n: number, width = 2) => String(n).padStart(width, "0")

/** `ms` written as local time at `offsetMinutes`, with the offset spelt one of three ways. */
const spell = (ms: number, offsetMinutes: number, style: "colon" | "compact" | "hours") => {
  const local = new Date(ms + offsetMinutes * 60_000)
  const sign = offsetMinutes < 0 ? "-" : "+"
  const abs = Math.abs(offsetMinutes)
  const hh = pad(Math.floor(abs / 60))
  const mm = pad(abs % 60)
  const zone = style === "colon" ? `${sign}${hh}:${mm}` : style === "compact" ? `${sign}${hh}${mm}` : `${sign}${hh}`
  return `${pad(local.getUTCFullYear(), 4)}-${pad(local.getUTCMonth() + 1)}-${pad(local.getUTCDate())}T${pad(local.getUTCHours())}:${
    pad(local.getUTCMinutes())
  }:${pad(local.getUTCSeconds())}.${pad(local.getUTCMilliseconds(), 3)}${zone}`
}

const arbMillis = FastCheck.integer({ min: Date.UTC(1971, 0, 1), max: Date.UTC(2100, 0, 1) })

describe("EpochMillisFromIso", () => {
  it.prop(
    "any offset spelling decodes to the same instant, and encodes back to it",
    [arbMillis, FastCheck.integer({ min: -14 * 60, max: 14 * 60 }), FastCheck.constantFrom("colon" as const, "compact" as const, "hours" as const)],
    ([ms, offset, style]) => {
      // The hours-only spelling cannot carry minutes.
      const minutes = style === "hours" ? Math.trunc(offset / 60) * 60 : offset
      const text = spell(ms, minutes, style)
      const decoded = Schema.decodeUnknownSync(EpochMillisFromIso)(text)
      assert.strictEqual(decoded, ms, text)
      assert.strictEqual(parseMillis(text), ms, text)
      assert.strictEqual(Schema.decodeUnknownSync(EpochMillisFromIso)(Schema.encodeSync(EpochMillisFromIso)(decoded)), ms)
      assert.strictEqual(toIso(ms), new Date(ms).toISOString())
    }
  )

  it("refuses what is not an ISO-8601 date-time", () => {
    for (const bad of ["", "yesterday", "2024-02-30T00:00:00Z", "2024-01-01T00:00:00", "1714521600000"]) {
      assert.isUndefined(parseMillis(bad), bad)
    }
  })
})

describe("loadCheckpoint", () => {
  const withFile = (json: unknown) => {
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), "instant-"))
    fs.mkdirSync(path.join(dir, "state"))
    fs.writeFileSync(path.join(dir, "state", "checkpoint.json"), JSON.stringify(json))
    return dir
  }

  it.effect("reads a checkpoint written with +00 offsets as the right instants", () =>
    Effect.gen(function*() {
      const dir = withFile({
        version: 1,
        scope: {},
        covered: [{ from: "2024-01-01T00:00:00+00", through: "2024-01-02T00:00:00+0100" }],
        updatedAt: "2024-01-02T00:00:05+00",
        live: { through: "2024-01-01T23:00:00+00" }
      })
      const state = Option.getOrThrow(yield* Checkpoint.loadCheckpoint(dir))
      assert.deepStrictEqual(state.covered, [{ from: Date.UTC(2024, 0, 1), through: Date.UTC(2024, 0, 1, 23) }])
      assert.strictEqual(state.live?.through, Date.UTC(2024, 0, 1, 23))
      // Written back in the canonical spelling.
      assert.deepStrictEqual(Checkpoint.toJson(state).covered, [{ from: "2024-01-01T00:00:00.000Z", through: "2024-01-01T23:00:00.000Z" }])
    }))

  it.effect("refuses one that does not decode, naming the file and the field", () =>
    Effect.gen(function*() {
      const dir = withFile({ version: 1, scope: {}, covered: [{ from: "2024-01-01T00:00:00Z", through: "soon" }], updatedAt: "2024-01-02T00:00:05Z" })
      const error = yield* Effect.flip(Checkpoint.loadCheckpoint(dir))
      assert.strictEqual(error._tag, "CheckpointError")
      assert.include(error.message, path.join(dir, "state", "checkpoint.json"))
      assert.include(error.message, "field covered[0].through")
      assert.include(error.message, "\"soon\"")
    }))
})
