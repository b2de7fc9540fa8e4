import { assert, describe, it } from "@effect/vitest"
import * as Duration from "effect/Duration"
import * as Either from "effect/Either"
import { EventsApi } from "@webex-compliance/events-api"
import { DEFAULT_BASE_URL } from "../src/Cli.js"
import { parseDuration, parseInstant } from "../src/CliInput.js"

const instant = (input: string): string => {
  const parsed = parseInstant(input)
  assert.isTrue(Either.isRight(parsed), `${JSON.stringify(input)} should parse`)
  return new Date(Either.getOrThrow(parsed)).toISOString()
}

const millis = (input: string): number => {
  const parsed = parseDuration(input)
  assert.isTrue(Either.isRight(parsed), `${JSON.stringify(input)} should parse`)
  return Duration.toMillis(Either.getOrThrow(parsed))
}

describe("parseInstant", () => {
  it("reads a bare date as midnight UTC", () => {
    assert.strictEqual(instant("2024-05-01"), "2024-05-01T00:00:00.000Z")
    assert.strictEqual(instant("  2024-02-29 "), "2024-02-29T00:00:00.000Z")
  })

  it("reads date-times with Z or an offset, in every accepted spelling", () => {
    const cases: ReadonlyArray<readonly [string, string]> = [
      ["2024-05-01T00:00:00Z", "2024-05-01T00:00:00.000Z"],
      ["2024-05-01T00:00Z", "2024-05-01T00:00:00.000Z"],
      ["2024-05-01T12:34:56.789Z", "2024-05-01T12:34:56.789Z"],
      ["2024-05-01t00:00:00z", "2024-05-01T00:00:00.000Z"],
      ["2024-05-01T00:00:00+02:00", "2024-04-30T22:00:00.000Z"],
      // The compact offset is rewritten, not misread as local time or garbage.
      ["2024-05-01T00:00:00+0200", "2024-04-30T22:00:00.000Z"],
      ["2024-05-01T00:00:00-0530", "2024-05-01T05:30:00.000Z"],
      ["2024-05-01T00:00:00-05:30", "2024-05-01T05:30:00.000Z"]
    ]
    for (const [input, expected] of cases) assert.strictEqual(instant(input), expected, input)
  })

  it("refuses a date-time without a zone, whose meaning would depend on the machine", () => {
    for (const input of ["2024-05-01T00:00:00", "2024-05-01T00:00", "2024-05-01T00:00:00.000"]) {
      const parsed = parseInstant(input)
      assert.include(Either.isLeft(parsed) ? parsed.left : "(parsed)", "with a zone", input)
    }
  })

  it("refuses garbage and impossible dates instead of guessing", () => {
    const bad = [
      "",
      "garbage",
      "yesterday",
      "2024-13-01",
      "2024-02-30", // Date would roll it over to 1 March
      "2023-02-29",
      "2024-04-31T00:00:00Z",
      "2024-05-01T00:60:00Z",
      "2024-05-01T00:00:00+25:00",
      "2024-05-01 00:00:00Z",
      "1714521600000",
      "2024-5-1",
      "2024-05-01T24:00:00Z" // valid ISO-8601 "end of day", which Date reads as the next day
    ]
    for (const input of bad) assert.isTrue(Either.isLeft(parseInstant(input)), JSON.stringify(input))
  })
})

describe("parseDuration", () => {
  it("reads short units, combinations and Effect's long form", () => {
    const cases: ReadonlyArray<readonly [string, number]> = [
      ["90s", 90_000],
      ["5m", 300_000],
      ["1h30m", 5_400_000],
      ["500ms", 500],
      ["2d", 172_800_000],
      ["1.5h", 5_400_000],
      ["10sec", 10_000],
      ["5min", 300_000],
      ["5M", 300_000],
      ["5 minutes", 300_000],
      ["2 days", 172_800_000],
      [" 1h ", 3_600_000]
    ]
    for (const [input, expected] of cases) assert.strictEqual(millis(input), expected, input)
  })

  it("refuses zero, negative, unknown and empty durations", () => {
    for (const input of ["0s", "0ms", "0 minutes", "-1m", "-1 minutes", "abc", "5x", "m5", "", "   ", "Infinity", "1h 30m"]) {
      const parsed = parseDuration(input)
      assert.include(Either.isLeft(parsed) ? parsed.left : "(parsed)", "positive duration", JSON.stringify(input))
    }
  })
})

describe("Cli", () => {
  // Repeated in Cli.ts so that declaring --base-url does not load the client.
  it("offers the library's default base URL", () => {
    assert.strictEqual(DEFAULT_BASE_URL, EventsApi.DEFAULT_BASE_URL)
  })
})
