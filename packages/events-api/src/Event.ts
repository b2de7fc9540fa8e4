/**
 * Schemas for compliance events: the single source of truth for their wire shape.
 *
 * The live service is looser than its OpenAPI file (see API-NOTES.md), so these schemas are too:
 * `resource` and `type` are open strings with the documented values as literals, content fields are
 * optional (deleted events lack them), flags may be booleans or strings (`"yes"`, `"true"`) and
 * unknown fields are kept, at the top level and inside `data`.
 *
 * @example
 * ```ts
 * import { Event } from "@webex-compliance/events-api"
 * import { Schema } from "effect"
 *
 * const event = Schema.decodeUnknownSync(Event.Event)(json)
 * if (Event.isResource(event, "messages")) {
 *   console.log(event.data.text) // string | undefined, no cast
 * }
 * ```
 *
 * @since 0.1.0
 */
import * as DateTime from "effect/DateTime"
import * as Either from "effect/Either"
import * as Option from "effect/Option"
import * as ParseResult from "effect/ParseResult"
import * as Schema from "effect/Schema"
import { utcFromMillis } from "./internal/utc.js"

/** Unknown fields are kept: new fields appear in newer events and must not be lost. */
const Rest = Schema.Record({ key: Schema.String, value: Schema.Unknown })

/** Booleans that the service sometimes sends as strings (`"yes"`, `"true"`). */
export const Flag = Schema.Union(Schema.Boolean, Schema.String)
/** Numbers that the service sometimes sends as strings (`"192"`). */
export const Numeric = Schema.Union(Schema.Number, Schema.String)

/**
 * An optional field. The service sends JSON `null` for some fields it has no value for, so `null`
 * decodes as absent, never as a failure: an event must not be quarantined for a missing value.
 * Every optional field of every schema here goes through this (the page decoder's fast path
 * relies on it: an optional field holding `null` is left out of the decoded value).
 */
const opt = <S extends Schema.Schema.Any>(schema: S) => Schema.optionalWith(schema, { nullable: true })

const str = opt(Schema.String)
const flag = opt(Flag)
const strings = opt(Schema.Array(Schema.String))

/** Reads a {@link Flag}: `true`, `"true"`, `"yes"` are true; `false`, `"false"`, `"no"` false. */
export const flagValue = (value: boolean | string | undefined): boolean | undefined => {
  if (typeof value === "boolean") return value
  if (value === undefined) return undefined
  const v = value.trim().toLowerCase()
  if (v === "true" || v === "yes") return true
  if (v === "false" || v === "no") return false
  return undefined
}

// ---------------------------------------------------------------------------------------------
// Time
// ---------------------------------------------------------------------------------------------

/**
 * ISO-8601 date-times as the service sends them: `YYYY-MM-DDTHH:MM[:SS[.fraction]]` then `Z` or an
 * explicit offset such as `+00:00`, `+0000` or `+00`. The fraction may have any number of digits
 * (those beyond the millisecond are dropped); `T` and `Z` may be lower case. A zone is required: a
 * time without one names no instant.
 *
 * Read with char codes, not a regular expression: this runs once per event on the hot path.
 */
const digit = (s: string, i: number): number => {
  const c = s.charCodeAt(i) - 48
  return c >= 0 && c <= 9 ? c : -1
}

/** The two-digit number at `i`, or -1. */
const two = (s: string, i: number): number => {
  const a = digit(s, i), b = digit(s, i + 1)
  return a < 0 || b < 0 ? -1 : a * 10 + b
}

const daysInMonth = (year: number, month: number): number =>
  month === 2
    ? (year % 4 === 0 && (year % 100 !== 0 || year % 400 === 0) ? 29 : 28)
    : month === 4 || month === 6 || month === 9 || month === 11
    ? 30
    : 31

/** Days from 1970-01-01 to the given proleptic Gregorian date (H. Hinnant's `days_from_civil`). */
const daysFromCivil = (year: number, month: number, day: number): number => {
  const y = month <= 2 ? year - 1 : year
  const era = Math.floor(y / 400)
  const yoe = y - era * 400
  const doy = Math.floor((153 * (month + (month > 2 ? -3 : 9)) + 2) / 5) + day - 1
  const doe = yoe * 365 + Math.floor(yoe / 4) - Math.floor(yoe / 100) + doy
  return era * 146097 + doe - 719468
}

/** The epoch millis of an ISO-8601 date-time (the forms above), or undefined. */
export const parseIsoMillis = (s: string): number | undefined => {
  if (s.length < 17) return undefined
  const y1 = two(s, 0), y2 = two(s, 2), month = two(s, 5), day = two(s, 8), hour = two(s, 11), minute = two(s, 14)
  if (
    y1 < 0 || y2 < 0 || month < 0 || day < 0 || hour < 0 || minute < 0 ||
    s.charCodeAt(4) !== 45 /* - */ || s.charCodeAt(7) !== 45 || (s.charCodeAt(10) | 0x20) !== 116 /* t */ ||
    s.charCodeAt(13) !== 58 /* : */
  ) return undefined
  const year = y1 * 100 + y2
  let i = 16
  let second = 0
  let millis = 0
  if (s.charCodeAt(i) === 58) {
    second = two(s, i + 1)
    if (second < 0) return undefined
    i += 3
    if (s.charCodeAt(i) === 46 /* . */) {
      i++
      const start = i
      for (let scale = 100; digit(s, i) >= 0; i++, scale /= 10) {
        if (scale >= 1) millis += digit(s, i) * scale
      }
      if (i === start) return undefined
    }
  }
  let offset = 0
  const zone = s.charCodeAt(i)
  if ((zone | 0x20) === 122 /* z */) {
    i++
  } else if (zone === 43 /* + */ || zone === 45 /* - */) {
    const offsetHours = two(s, i + 1)
    if (offsetHours < 0 || offsetHours > 23) return undefined
    i += 3
    let offsetMinutes = 0
    if (i < s.length) {
      if (s.charCodeAt(i) === 58) i++
      offsetMinutes = two(s, i)
      if (offsetMinutes < 0 || offsetMinutes > 59) return undefined
      i += 2
    }
    offset = (zone === 45 ? -1 : 1) * (offsetHours * 60 + offsetMinutes) * 60_000
  } else {
    return undefined
  }
  // Fields are range-checked here because `Date` silently rolls `2024-02-30` over to 1 March: an
  // archive must not guess an instant.
  if (
    i !== s.length || month < 1 || month > 12 || day < 1 || day > daysInMonth(year, month) ||
    hour > 23 || minute > 59 || second > 59
  ) return undefined
  return daysFromCivil(year, month, day) * 86_400_000 + ((hour * 60 + minute) * 60 + second) * 1000 + millis - offset
}

const isoError = (s: string) => `Expected an ISO-8601 date-time, got ${JSON.stringify(s)}`

/**
 * Parses an ISO-8601 date-time (the forms {@link IsoDateTime} accepts) into a `DateTime.Utc`, or
 * `Left` with a readable reason. The one parser of date-times: CLI flags and checkpoints use it too.
 */
export const parseIsoDateTime = (s: string): Either.Either<DateTime.Utc, string> => {
  const millis = parseIsoMillis(s)
  return millis === undefined ? Either.left(isoError(s)) : Either.right(utcFromMillis(millis))
}

/** An ISO-8601 date-time string decoded into a `DateTime.Utc`. */
export const IsoDateTime = Schema.transformOrFail(Schema.String, Schema.DateTimeUtcFromSelf, {
  strict: true,
  decode: (s, _, ast) => {
    const millis = parseIsoMillis(s)
    return millis === undefined
      ? ParseResult.fail(new ParseResult.Type(ast, s, isoError(s)))
      : ParseResult.succeed(utcFromMillis(millis))
  },
  encode: (dt) => ParseResult.succeed(DateTime.formatIso(dt))
}).annotations({ identifier: "IsoDateTime" })

// ---------------------------------------------------------------------------------------------
// Resource data, per documented resource
// ---------------------------------------------------------------------------------------------

export const Attachment = Schema.Struct({ contentType: str, content: opt(Schema.Unknown) }, Rest)

/** `data` of a `messages` event. A deleted message has no `text`, `markdown` or `html`. */
export const MessageData = Schema.Struct({
  id: str,
  roomId: str,
  roomType: str,
  text: str,
  markdown: str,
  html: str,
  personId: str,
  personEmail: str,
  parentId: str,
  mentionedPeople: strings,
  mentionedGroups: strings,
  files: strings,
  attachments: opt(Schema.Array(Attachment)),
  created: str,
  updated: str
}, Rest).annotations({ identifier: "MessageData" })

/** `data` of a `memberships` event. */
export const MembershipData = Schema.Struct({
  id: str,
  roomId: str,
  personId: str,
  personEmail: str,
  personDisplayName: str,
  personOrgId: str,
  isModerator: flag,
  isMonitor: flag,
  isRoomHidden: flag,
  roomType: str,
  created: str
}, Rest).annotations({ identifier: "MembershipData" })

/** `data` of an `attachmentActions` event: a submitted adaptive card. */
export const AttachmentActionData = Schema.Struct({
  id: str,
  type: str,
  messageId: str,
  inputs: opt(Schema.Record({ key: Schema.String, value: Schema.Unknown })),
  personId: str,
  roomId: str,
  created: str
}, Rest).annotations({ identifier: "AttachmentActionData" })

/** `data` of a `tabs` event. */
export const TabData = Schema.Struct({
  id: str,
  roomId: str,
  roomType: str,
  displayName: str,
  contentUrl: str,
  creatorId: str,
  created: str
}, Rest).annotations({ identifier: "TabData" })

/** `data` of a `rooms` event (space classification updates). */
export const RoomData = Schema.Struct({
  id: str,
  title: str,
  type: str,
  isLocked: flag,
  classificationId: str,
  teamId: str,
  lastActivity: str,
  creatorId: str,
  created: str,
  isAnnouncementOnly: flag,
  isReadOnly: flag,
  isPublic: flag,
  madePublic: str,
  description: str
}, Rest).annotations({ identifier: "RoomData" })

export const Person = Schema.Struct({ personId: str, personEmail: str, displayName: str }, Rest)

/** `data` of a `meetings` event. The flags arrive as `"yes"`/`"no"` strings. */
export const MeetingData = Schema.Struct({
  meetingId: str,
  creatorId: str,
  host: opt(Person),
  attendees: opt(Schema.Array(Person)),
  transcriptionEnabled: flag,
  recordingEnabled: flag,
  hasPostMeetingsChat: flag,
  created: str
}, Rest).annotations({ identifier: "MeetingData" })

export const MeetingMessageRecipient = Schema.Struct({
  personId: str,
  personEmail: str,
  guestDisplayName: str,
  guestEmail: str
}, Rest)

/** `data` of a `meetingMessages` event (in-meeting chat). */
export const MeetingMessageData = Schema.Struct({
  id: str,
  meetingId: str,
  text: str,
  type: str,
  breakoutSessionId: str,
  recipients: opt(Schema.Array(MeetingMessageRecipient)),
  created: str
}, Rest).annotations({ identifier: "MeetingMessageData" })

/** `data` of a `call_records` event. Note the service's spelling `corelationId`. */
export const CallRecordData = Schema.Struct({
  corelationId: str,
  callType: str,
  userId: str,
  userType: str,
  callDirection: str,
  isCallAnswered: flag,
  callDurationSeconds: opt(Numeric),
  callStartTime: str,
  callAnswerTime: str,
  callTransferTime: str,
  callingNumber: str,
  callingLineId: str,
  calledNumber: str,
  calledLineId: str,
  dialedDigits: str,
  callRedirectingNumber: str,
  callRedirectedReason: str
}, Rest).annotations({ identifier: "CallRecordData" })

/** `data` of a `files` event. */
export const FileData = Schema.Struct({
  id: str,
  fileId: str,
  fileContentUrl: str,
  roomId: str,
  personId: str,
  personEmail: str,
  messageId: str,
  created: str
}, Rest).annotations({ identifier: "FileData" })

/** `data` of any resource without a documented shape: every field kept as is. */
export const UnknownData = Rest

/** The documented `data` schema of each known resource. */
export const DataSchemas = {
  messages: MessageData,
  memberships: MembershipData,
  attachmentActions: AttachmentActionData,
  tabs: TabData,
  rooms: RoomData,
  meetings: MeetingData,
  meetingMessages: MeetingMessageData,
  call_records: CallRecordData,
  files: FileData
} as const

/** Resources with a typed `data` schema. */
export type TypedResource = keyof typeof DataSchemas

/** Resources the spec, the guides or the live service are known to use. */
export const KNOWN_RESOURCES = [
  "attachmentActions",
  "files",
  "meetings",
  "meetingMessages",
  "meetingTranscripts",
  "memberships",
  "messages",
  "rooms",
  "tabs",
  "businessTexts",
  "call_records",
  "convergedRecordings",
  "file_transcodings"
] as const
export type KnownResource = (typeof KNOWN_RESOURCES)[number]

/** Event types the spec and the guides name. */
export const KNOWN_TYPES = ["created", "updated", "deleted", "ended", "read"] as const
export type KnownType = (typeof KNOWN_TYPES)[number]

/**
 * A resource name: one of the known ones or any other string (`string & {}` keeps editor completion
 * for the literals while accepting every value a newer service may send).
 */
export type Resource = KnownResource | (string & {})
export type EventType = KnownType | (string & {})

export const Resource: Schema.Schema<Resource> = Schema.String as any
export const EventType: Schema.Schema<EventType> = Schema.String as any

// ---------------------------------------------------------------------------------------------
// The event
// ---------------------------------------------------------------------------------------------

const baseFields = {
  id: Schema.String,
  type: EventType,
  actorId: str,
  /** Absent on some deleted events. */
  orgId: str,
  /** Often the string `"null"`; absent on some deleted events. Read it with {@link appIdOf}. */
  appId: str,
  created: IsoDateTime
}

/**
 * The fields every event has, whatever its resource, with `data` left untyped. Used to explain
 * why an item failed to decode in terms of the field at fault.
 */
export const Envelope = Schema.Struct({ ...baseFields, resource: Resource, data: UnknownData }, Rest).annotations({
  identifier: "EventEnvelope"
})

const typedVariant = <R extends TypedResource>(resource: R) =>
  Schema.Struct({ ...baseFields, resource: Schema.Literal(resource), data: DataSchemas[resource] }, Rest)

const TYPED = Object.keys(DataSchemas) as ReadonlyArray<TypedResource>

/** An event of a resource without a documented `data` shape, including ones no spec lists yet. */
export const OtherEvent = Schema.Struct({
  ...baseFields,
  resource: Resource.pipe(
    Schema.filter((r) => !(TYPED as ReadonlyArray<string>).includes(r), {
      message: () => "resource with a typed schema did not match it"
    })
  ),
  data: UnknownData
}, Rest).annotations({ identifier: "OtherEvent" })

export const MessageEvent = typedVariant("messages")
export const MembershipEvent = typedVariant("memberships")
export const AttachmentActionEvent = typedVariant("attachmentActions")
export const TabEvent = typedVariant("tabs")
export const RoomEvent = typedVariant("rooms")
export const MeetingEvent = typedVariant("meetings")
export const MeetingMessageEvent = typedVariant("meetingMessages")
export const CallRecordEvent = typedVariant("call_records")
export const FileEvent = typedVariant("files")

/**
 * One compliance event. Decodes from the API's JSON; `created` becomes a `DateTime.Utc`.
 * Narrow with {@link isResource} to get the typed `data` of a documented resource.
 */
export const Event = Schema.Union(
  MessageEvent,
  MembershipEvent,
  AttachmentActionEvent,
  TabEvent,
  RoomEvent,
  MeetingEvent,
  MeetingMessageEvent,
  CallRecordEvent,
  FileEvent,
  OtherEvent
).annotations({ identifier: "Event" })

export type Event = typeof Event.Type
/** The JSON shape of an event, as the API sends it. */
export type EventJson = typeof Event.Encoded

/** An event of the given documented resource, with its typed `data`. */
export type EventOf<R extends TypedResource> = Extract<Event, { readonly resource: R }>

/** Narrows an event to a documented resource, so its `data` is typed. */
export const isResource = <R extends TypedResource>(event: Event, resource: R): event is EventOf<R> =>
  event.resource === resource

/** The `appId` of an event, or none when it is absent or the service's literal string `"null"`. */
export const appIdOf = (event: Event): Option.Option<string> =>
  event.appId === undefined || event.appId === "null" ? Option.none() : Option.some(event.appId)

const pad2 = (n: number): string => (n < 10 ? "0" : "") + n

/**
 * The UTC calendar day (`YYYY-MM-DD`) of an instant in epoch millis, computed arithmetically
 * (H. Hinnant's `civil_from_days`): this runs once per archived event, and formatting a whole
 * ISO string through `DateTime` to keep ten characters of it was a measurable share of the CPU.
 * Years outside 0000-9999 are written as `Date#toISOString` writes them (`+010000`, `-000001`).
 */
export const utcDayOfMillis = (millis: number): string => {
  const z = Math.floor(millis / 86_400_000) + 719468
  const era = Math.floor(z / 146097)
  const doe = z - era * 146097
  const yoe = Math.floor((doe - Math.floor(doe / 1460) + Math.floor(doe / 36524) - Math.floor(doe / 146096)) / 365)
  const doy = doe - (365 * yoe + Math.floor(yoe / 4) - Math.floor(yoe / 100))
  const mp = Math.floor((5 * doy + 2) / 153)
  const day = doy - Math.floor((153 * mp + 2) / 5) + 1
  const month = mp < 10 ? mp + 3 : mp - 9
  const year = yoe + era * 400 + (month <= 2 ? 1 : 0)
  const yyyy = year >= 0 && year <= 9999
    ? String(year).padStart(4, "0")
    : (year < 0 ? "-" : "+") + String(Math.abs(year)).padStart(6, "0")
  return `${yyyy}-${pad2(month)}-${pad2(day)}`
}

/** The UTC calendar day (`YYYY-MM-DD`) an event was created on. */
export const utcDay = (event: Event): string => utcDayOfMillis(event.created.epochMillis)

export const decodeUnknown = Schema.decodeUnknown(Event)
export const decodeUnknownEither = Schema.decodeUnknownEither(Event)
