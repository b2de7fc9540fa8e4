import { describe, expect, it } from "@effect/vitest"
import * as FastCheck from "effect/FastCheck"
import * as DateTime from "effect/DateTime"
import * as Either from "effect/Either"
import * as Option from "effect/Option"
import * as Schema from "effect/Schema"
import * as fs from "node:fs"
import * as Event from "../src/Event.js"
import * as PageDecoder from "../src/internal/pageDecoder.js"

const fixtureLines = fs
  .readFileSync(new URL("./fixtures/events.ndjson", import.meta.url), "utf8")
  .split("\n")
  .filter((line) => line.trim() !== "")

const decode = Schema.decodeUnknownEither(Event.Event)
const decodeSync = Schema.decodeUnknownSync(Event.Event)

const base = {
  id: "ev-1",
  resource: "messages",
  type: "created",
  actorId: "person-1",
  orgId: "org-1",
  appId: "null",
  created: "2024-01-01T00:00:00.000Z",
  data: { id: "msg-1", text: "hello" }
}

const millisOf = (created: string): number => DateTime.toEpochMillis(decodeSync({ ...base, created }).created)

describe("Event fixture", () => {
  it("decodes every line of events.ndjson with the resource and type it carries", () => {
    expect(fixtureLines).toHaveLength(10)
    const decoded = fixtureLines.map((line) => decodeSync(JSON.parse(line)))
    expect(decoded.map((e) => [e.resource, e.type])).toEqual([
      ["messages", "created"],
      ["messages", "deleted"],
      ["memberships", "created"],
      ["attachmentActions", "created"],
      ["tabs", "created"],
      ["rooms", "updated"],
      ["meetings", "ended"],
      ["meetingMessages", "created"],
      ["call_records", "created"],
      ["webinarPolls", "answered"]
    ])
    decoded.forEach((event, i) => {
      const json = JSON.parse(fixtureLines[i]!) as { id: string; created: string }
      expect(event.id).toBe(json.id)
      expect(DateTime.toEpochMillis(event.created)).toBe(new Date(json.created).getTime())
    })
  })

  it("keeps the typed data of documented resources", () => {
    const events = fixtureLines.map((line) => decodeSync(JSON.parse(line)))
    const [message, membership, meeting, callRecord] = [events[0]!, events[2]!, events[6]!, events[8]!]
    expect(Event.isResource(message, "messages") && message.data.text).toMatch(/^PROJECT UPDATE/)
    expect(Event.isResource(membership, "memberships") && membership.data.isModerator).toBe(true)
    expect(Event.isResource(meeting, "meetings") && Event.flagValue(meeting.data.recordingEnabled)).toBe(true)
    expect(Event.isResource(callRecord, "call_records") && callRecord.data.callDurationSeconds).toBe("192")
  })
})

describe("created", () => {
  it("parses every form the service sends to the right instant", () => {
    const instant = Date.UTC(2024, 4, 16, 21, 34, 59)
    expect(millisOf("2024-05-16T21:34:59Z")).toBe(instant)
    expect(millisOf("2024-05-16T21:34:59.324Z")).toBe(instant + 324)
    expect(millisOf("2024-05-16T21:34:59.5Z")).toBe(instant + 500)
    expect(millisOf("2024-05-16T21:34:59+00:00")).toBe(instant)
    expect(millisOf("2024-05-16T21:34:59+0000")).toBe(instant)
    expect(millisOf("2024-05-16T21:34:59.324+00:00")).toBe(instant + 324)
    expect(millisOf("2024-05-16T23:34:59+02:00")).toBe(instant)
    expect(millisOf("2024-05-16T16:34:59-0500")).toBe(instant)
    expect(millisOf("2024-05-16T16:34:59-05")).toBe(instant)
  })

  it("rejects garbage and impossible dates instead of guessing", () => {
    for (
      const created of [
        "",
        "yesterday",
        "2024-05-16",
        "2024-05-16 21:34:59Z",
        "2024-05-16T21:34:59", // no zone: which instant is it?
        "1715895299",
        "2024-13-01T00:00:00Z",
        "2024-02-30T00:00:00Z", // JS Date would roll it over to 1 March
        "2023-02-29T00:00:00Z",
        "2024-04-31T00:00:00Z",
        "1900-02-29T00:00:00Z", // not a leap year
        "2024-01-01T25:00:00Z",
        "2024-01-01T23:60:00Z",
        "2024-01-01T00:00:00+25:00",
        "2024-05-16T21:34:59Zjunk"
      ]
    ) {
      const result = decode({ ...base, created })
      expect(Either.isLeft(result), created).toBe(true)
    }
    expect(Either.isLeft(decode({ ...base, created: 1715895299000 }))).toBe(true)
  })

  it.prop(
    "any instant written with any offset decodes to that instant",
    {
      date: FastCheck.date({ min: new Date("0001-01-02T00:00:00Z"), max: new Date("9999-12-30T00:00:00Z"), noInvalidDate: true }),
      offsetMinutes: FastCheck.integer({ min: -14 * 60, max: 14 * 60 }),
      colon: FastCheck.boolean()
    },
    ({ colon, date, offsetMinutes }) => {
      const local = new Date(date.getTime() + offsetMinutes * 60_000).toISOString().slice(0, -1)
      const abs = Math.abs(offsetMinutes)
      const hh = String(Math.floor(abs / 60)).padStart(2, "0")
      const mm = String(abs % 60).padStart(2, "0")
      const created = `${local}${offsetMinutes < 0 ? "-" : "+"}${hh}${colon ? ":" : ""}${mm}`
      expect(millisOf(created)).toBe(date.getTime())
      expect(millisOf(date.toISOString())).toBe(date.getTime())
    }
  )

  it.prop(
    "every offset form and fraction length maps a generated instant to that instant (to the millisecond)",
    {
      millis: FastCheck.integer({ min: Date.UTC(1, 0, 2), max: Date.UTC(9999, 11, 30) }),
      offsetMinutes: FastCheck.integer({ min: -23 * 60 - 59, max: 23 * 60 + 59 }),
      wholeHours: FastCheck.boolean(),
      extraDigits: FastCheck.string({ unit: FastCheck.constantFrom(..."0123456789"), maxLength: 12 }),
      fractionLength: FastCheck.integer({ min: 0, max: 3 }),
      lowerCase: FastCheck.boolean()
    },
    ({ extraDigits, fractionLength, lowerCase, millis, offsetMinutes: minutes, wholeHours }) => {
      const offsetMinutes = wholeHours ? Math.trunc(minutes / 60) * 60 : minutes
      // The wall-clock time at that offset, written by Date (an independent formatter).
      const wall = new Date(millis + offsetMinutes * 60_000).toISOString() // YYYY-MM-DDTHH:MM:SS.mmmZ
      const abs = Math.abs(offsetMinutes)
      const sign = offsetMinutes < 0 ? "-" : "+"
      const hh = String(Math.floor(abs / 60)).padStart(2, "0")
      const mm = String(abs % 60).padStart(2, "0")
      const zones = [`${sign}${hh}:${mm}`, `${sign}${hh}${mm}`]
      if (abs % 60 === 0) zones.push(`${sign}${hh}`)
      if (offsetMinutes === 0) zones.push("Z", "-00:00", "+0000", "+00")
      // The fraction keeps `fractionLength` of the three millisecond digits; a full one may carry
      // any number of further digits, which are below the millisecond and dropped.
      const kept = wall.slice(20, 20 + fractionLength)
      const digits = kept + (fractionLength === 3 ? extraDigits : "")
      const fraction = digits === "" ? "" : `.${digits}`
      const expected = millis - ((millis % 1000) + 1000) % 1000 + Number((kept + "000").slice(0, 3))
      for (const zone of zones) {
        let text = `${wall.slice(0, 19)}${fraction}${zone}`
        if (lowerCase) text = text.replace("T", "t").replace("Z", "z")
        const parsed = Event.parseIsoDateTime(text)
        expect(Either.isRight(parsed), text).toBe(true)
        expect(DateTime.toEpochMillis(Either.getOrThrow(parsed)), text).toBe(expected)
        expect(millisOf(text), text).toBe(expected)
      }
      // Without seconds, when they are zero.
      if (wall.slice(17, 23) === "00.000") {
        expect(Event.parseIsoMillis(`${wall.slice(0, 16)}${zones[0]}`)).toBe(millis)
      }
    },
    { fastCheck: { numRuns: 500 } }
  )

  it("the +00 checkpoint case: a bare-hours offset is the instant, not NaN", () => {
    const parsed = Event.parseIsoDateTime("2024-01-01T00:00:00+00")
    expect(Either.map(parsed, DateTime.toEpochMillis)).toEqual(Either.right(Date.UTC(2024, 0, 1)))
    expect(Either.isLeft(Event.parseIsoDateTime("2024-01-01T00:00:00+00:"))).toBe(true)
    expect(Either.isLeft(Event.parseIsoDateTime("2024-01-01T00:00:00+0"))).toBe(true)
    expect(Either.isLeft(Event.parseIsoDateTime("2024-01-01T00:00:00."))).toBe(true)
    expect(Either.isLeft(Event.parseIsoDateTime("2024-01-01T00:00.5Z"))).toBe(true)
    expect(Event.parseIsoDateTime("nope")).toEqual(Either.left(`Expected an ISO-8601 date-time, got "nope"`))
  })

  it("accepts leap days of leap years", () => {
    expect(millisOf("2024-02-29T12:00:00Z")).toBe(Date.UTC(2024, 1, 29, 12))
    expect(millisOf("2000-02-29T12:00:00Z")).toBe(Date.UTC(2000, 1, 29, 12))
  })
})

describe("top-level fields", () => {
  it("reads appId \"null\" and a missing appId as none, a real one as some", () => {
    expect(Event.appIdOf(decodeSync(base))).toEqual(Option.none())
    const { appId: _, ...withoutAppId } = base
    expect(Event.appIdOf(decodeSync(withoutAppId))).toEqual(Option.none())
    expect(Event.appIdOf(decodeSync({ ...base, appId: "app-7" }))).toEqual(Option.some("app-7"))
  })

  it("decodes deleted events without orgId, appId or content fields", () => {
    const { orgId: _o, appId: _a, ...rest } = base
    const event = decodeSync({ ...rest, type: "deleted", data: { id: "msg-1" } })
    expect(event.orgId).toBeUndefined()
    expect(event.appId).toBeUndefined()
    expect(Event.isResource(event, "messages") && event.data.text).toBeUndefined()
  })

  it("decodes unknown resources and types and keeps unknown fields at the top level and in data", () => {
    const event = decodeSync({
      ...base,
      resource: "holograms",
      type: "beamed",
      schemaVersion: 3,
      data: { id: "h-1", depth: { z: 1.5 }, text: 42 }
    })
    expect(event.resource).toBe("holograms")
    expect(event.type).toBe("beamed")
    expect(event["schemaVersion"]).toBe(3)
    expect(event.data).toEqual({ id: "h-1", depth: { z: 1.5 }, text: 42 })
  })

  it("keeps unknown fields of documented resources too", () => {
    const event = decodeSync({
      ...base,
      region: "eu",
      data: { ...base.data, reactions: [{ emoji: "+1" }], isVoiceClip: "yes" }
    })
    expect(event["region"]).toBe("eu")
    expect(event.data["reactions"]).toEqual([{ emoji: "+1" }])
    expect(event.data["isVoiceClip"]).toBe("yes")
    // and `created` is still the decoded instant, not overwritten by the raw string
    expect(DateTime.isDateTime(event.created)).toBe(true)
  })

  it("decodes known values the seed spec's enum lacks", () => {
    expect(decodeSync({ ...base, resource: "convergedRecordings", data: {} }).resource).toBe("convergedRecordings")
    expect(decodeSync({ ...base, type: "read" }).type).toBe("read")
  })

  it("fails on missing required fields", () => {
    const { id: _, ...withoutId } = base
    expect(Either.isLeft(decode(withoutId))).toBe(true)
    const { data: _d, ...withoutData } = base
    expect(Either.isLeft(decode(withoutData))).toBe(true)
    expect(Either.isLeft(decode({ ...base, resource: 7 }))).toBe(true)
  })
})

describe("isResource", () => {
  it("narrows so the typed data is available without a cast", () => {
    const event = decodeSync(base)
    // Without narrowing, `data.text` is not known to be a string.
    // @ts-expect-error unknown is not assignable to string | undefined
    const unnarrowed: string | undefined = event.data.text
    expect(unnarrowed).toBe("hello")
    if (!Event.isResource(event, "messages")) throw new Error("expected a messages event")
    const text: string | undefined = event.data.text
    expect(text).toBe("hello")
    expect(Event.isResource(event, "memberships")).toBe(false)
  })
})

describe("malformed documented resources", () => {
  it("fails a messages event whose text is a number, so it is quarantined rather than accepted", () => {
    const bad = { ...base, data: { id: "msg-1", text: 42 } }
    expect(Either.isLeft(decode(bad))).toBe(true)
    const item = PageDecoder.decodeItem(JSON.stringify(bad))
    expect(item._tag).toBe("Undecodable")
    if (item._tag === "Undecodable") {
      expect(item.id).toEqual(Option.some("ev-1"))
      expect(item.reason).toContain("text")
    }
  })

  it("fails a memberships event whose isModerator is a number", () => {
    expect(Either.isLeft(decode({ ...base, resource: "memberships", data: { isModerator: 1 } }))).toBe(true)
  })
})

describe("flagValue", () => {
  it("reads booleans and the strings the service uses for them", () => {
    expect(Event.flagValue(true)).toBe(true)
    expect(Event.flagValue(false)).toBe(false)
    expect(Event.flagValue("yes")).toBe(true)
    expect(Event.flagValue("true")).toBe(true)
    expect(Event.flagValue(" YES ")).toBe(true)
    expect(Event.flagValue("no")).toBe(false)
    expect(Event.flagValue("False")).toBe(false)
    expect(Event.flagValue("maybe")).toBeUndefined()
    expect(Event.flagValue("")).toBeUndefined()
    expect(Event.flagValue(undefined)).toBeUndefined()
  })
})

describe("utcDay", () => {
  it("is the UTC calendar day, whatever offset created was written with", () => {
    expect(Event.utcDay(decodeSync({ ...base, created: "2024-05-16T23:30:00-05:00" }))).toBe("2024-05-17")
  })

  it.prop(
    "is the day Date#toISOString names, for any instant (years before 0000 and after 9999 too)",
    { millis: FastCheck.integer({ min: -8_640_000_000_000_000, max: 8_640_000_000_000_000 }) },
    ({ millis }) => {
      const iso = new Date(millis).toISOString()
      expect(Event.utcDayOfMillis(millis)).toBe(iso.slice(0, iso.indexOf("T")))
    },
    { fastCheck: { numRuns: 2000 } }
  )

  it("handles the edges of days and of the epoch", () => {
    for (const iso of ["1970-01-01T00:00:00.000Z", "1969-12-31T23:59:59.999Z", "2000-02-29T23:59:59.999Z", "0000-01-01T00:00:00.000Z"]) {
      expect(Event.utcDayOfMillis(Date.parse(iso)), iso).toBe(iso.slice(0, 10))
    }
  })
})
