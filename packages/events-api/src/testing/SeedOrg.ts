/**
 * A deterministic, realistic Webex organisation's worth of compliance events, for tests and demos.
 *
 * The events look like what the live service sends (see API-NOTES.md), quirks included: `appId` is
 * often the string `"null"`, deleted messages lack `text` and sometimes `orgId`/`appId`, meeting flags
 * are `"yes"`/`"no"`, call records spell `corelationId` and carry numbers as strings, `created` comes
 * in both the `.sssZ` and the `+00:00` form, several events share the exact same millisecond, and a
 * few events belong to a resource no spec lists yet (with an extra top-level field). Every documented
 * resource appears as soon as `count` allows it.
 *
 * The same options always produce the same events, byte for byte: a failing test can be replayed.
 *
 * @example
 * ```ts
 * import { FakeWebex, SeedOrg } from "@webex-compliance/events-api/testing"
 *
 * const events = SeedOrg.generateOrg({
 *   count: 5_000,
 *   seed: 42,
 *   from: "2024-01-01T00:00:00.000Z",
 *   to: "2024-02-01T00:00:00.000Z"
 * })
 * const server = FakeWebex.layer({ events })
 * ```
 *
 * @since 0.1.0
 */

/** Options of {@link generateOrg}. */
export interface Options {
  /** How many events to generate. */
  readonly count: number
  /** PRNG seed; the same seed gives the same events. Default `1`. */
  readonly seed?: number | undefined
  /** Inclusive lower bound of `created`. */
  readonly from: Date | string
  /** Exclusive upper bound of `created`. */
  readonly to: Date | string
  /** The organisation's id, as it appears in `orgId`. Default: one derived from the seed. */
  readonly orgId?: string | undefined
}

/**
 * A small seeded PRNG (mulberry32) returning floats in [0, 1). Not cryptographic: it exists so that
 * generated data and shuffled orders are reproducible from a seed.
 */
export const mulberry32 = (seed: number): (() => number) => {
  let a = seed >>> 0
  return () => {
    a = (a + 0x6d2b79f5) >>> 0
    let t = a
    t = Math.imul(t ^ (t >>> 15), t | 1)
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61)
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296
  }
}

/** Every `resource`/`type` pair the generator produces, with its relative weight. */
const KINDS: ReadonlyArray<readonly [resource: string, type: string, weight: number]> = [
  ["messages", "created", 30],
  ["messages", "updated", 5],
  ["messages", "deleted", 6],
  ["memberships", "created", 7],
  ["memberships", "updated", 2],
  ["memberships", "deleted", 3],
  ["attachmentActions", "created", 4],
  ["tabs", "created", 2],
  ["tabs", "updated", 1],
  ["tabs", "deleted", 1],
  ["rooms", "updated", 3],
  ["meetings", "ended", 5],
  ["meetingMessages", "created", 5],
  ["meetingTranscripts", "created", 2],
  ["call_records", "created", 8],
  ["files", "created", 5],
  // A resource newer than every spec: the client must keep it, not drop it.
  ["webinarPolls", "answered", 1]
]

/** The resources {@link generateOrg} covers (once `count` is at least their number of kinds). */
export const RESOURCES: ReadonlyArray<string> = [...new Set(KINDS.map(([resource]) => resource))]

const TOTAL_WEIGHT = KINDS.reduce((sum, [, , w]) => sum + w, 0)

const FIRST_NAMES = [
  "Ada", "Ben", "Chloé", "Dmitri", "Esther", "Farid", "Grace", "Hiro", "Ines", "Jonas", "Kemi", "Luca",
  "Mei", "Nora", "Omar", "Priya", "Quinn", "Rosa", "Sven", "Tariq", "Uma", "Viktor", "Wen", "Yara"
]
const LAST_NAMES = [
  "Andersen", "Becker", "Costa", "Dubois", "Eriksen", "Fischer", "García", "Haddad", "Ito", "Jensen",
  "Kowalski", "Larsen", "Moreau", "Nakamura", "Okafor", "Petrov", "Rossi", "Schmidt", "Tanaka", "Weber"
]
const ROOM_TITLES = [
  "Project Unicorn", "Q3 Planning", "Legal Hold Review", "Sales EMEA", "Incident Bridge", "Design Crit",
  "Board Prep", "Payroll", "Onboarding", "Release Train", "Customer Escalations", "Security Council",
  "Marketing Launch", "Vendor Contracts", "All Hands", "Support Tier 2", "Data Platform", "Recruiting"
]
const PHRASES = [
  "Can we move the sync to 3pm?",
  "The contract draft is in the shared folder.",
  "PROJECT UPDATE - the plan has been published on Box.",
  "Please review before Friday 🙏",
  "Looping in legal on this one.",
  "Numbers look off in row 42, can you check?",
  "Meeting notes: <b>decisions</b> and actions below",
  "Déjà vu: same bug as last sprint.",
  "Approved.",
  "Who owns the rollback plan?",
  "Quote: \"ship it\" — not yet.",
  "Line one\nline two"
]
const TAB_SITES = ["https://www.cisco.com", "https://jira.example.com/board/7", "https://docs.example.com/q3"]
const FILE_TYPES = [
  ["report.pdf", "application/pdf"],
  ["diagram.png", "image/png"],
  ["budget.xlsx", "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"],
  ["notes.txt", "text/plain"]
] as const

const HEX_DIGITS = "0123456789abcdef"

/** Base64 without padding, the way Webex ids look (`Y2lzY29zcGFyazovL3Vz...`). */
const base64 = (text: string): string => btoa(text).replace(/=+$/, "")

interface Person {
  readonly id: string
  readonly email: string
  readonly displayName: string
  readonly orgId: string
}

interface Room {
  readonly id: string
  readonly title: string
  readonly type: "group" | "direct"
  readonly creatorId: string
  readonly created: string
}

/**
 * Generates `count` events whose `created` lies in `[from, to)`, as raw JSON strings (one object per
 * string, no newlines), in ascending `created` order. Deterministic for given options.
 *
 * Throws a `RangeError` when `count` is negative or `to` is not after `from`: those are mistakes in
 * a test, not conditions to handle.
 */
export const generateOrg = (options: Options): ReadonlyArray<string> => Array.from(iterateOrg(options))

/**
 * The same events as {@link generateOrg}, byte for byte, one at a time: a million events never have
 * to exist as one array of strings (hand it to `FakeWebex`'s `events`, which stores bytes). Options
 * are checked at once, as by {@link generateOrg}; each iteration generates the org afresh.
 */
export const iterateOrg = (options: Options): Iterable<string> => {
  const from = new Date(options.from).getTime()
  const to = new Date(options.to).getTime()
  if (!Number.isFinite(from) || !Number.isFinite(to) || to <= from) {
    throw new RangeError(`generateOrg: 'to' must be a date after 'from' (${String(options.from)}, ${String(options.to)})`)
  }
  if (!Number.isInteger(options.count) || options.count < 0) {
    throw new RangeError(`generateOrg: 'count' must be a non-negative integer, got ${options.count}`)
  }
  return { [Symbol.iterator]: () => generate(options, from, to) }
}

function* generate(options: Options, from: number, to: number): Generator<string, void> {
  const random = mulberry32(options.seed ?? 1)
  const int = (n: number) => Math.floor(random() * n)
  const chance = (p: number) => random() < p
  const pick = <A>(xs: ReadonlyArray<A>): A => xs[int(xs.length)]!
  // Plain loops: these run ~100 times per event and dominated generation at a million events. The
  // draws are the same as before, one `int` per character, so the output is byte-identical.
  const hex = (n: number) => {
    let s = ""
    for (let i = 0; i < n; i++) s += HEX_DIGITS[int(16)]
    return s
  }
  const digits = (n: number) => {
    let s = ""
    for (let i = 0; i < n; i++) s += HEX_DIGITS[int(10)]
    return s
  }
  const uuid = () => `${hex(8)}-${hex(4)}-4${hex(3)}-${pick(["8", "9", "a", "b"])}${hex(3)}-${hex(12)}`
  const sparkId = (kind: string) => base64(`ciscospark://us/${kind}/${uuid()}`)

  const orgId = options.orgId ?? base64(uuid())
  const partnerOrgId = base64(uuid())
  const iso = (ms: number) => new Date(ms).toISOString()

  // The cast: a few dozen people (a handful from a partner org, who show up in memberships), rooms
  // created before the window, and a bot whose events carry a real appId.
  const people: ReadonlyArray<Person> = Array.from({ length: 36 }, (_, i) => {
    const first = FIRST_NAMES[i % FIRST_NAMES.length]!
    const last = LAST_NAMES[(i * 7) % LAST_NAMES.length]!
    const external = i >= 32
    return {
      id: sparkId("PEOPLE"),
      displayName: `${first} ${last}`,
      email: `${first}.${last}${i >= FIRST_NAMES.length ? i : ""}@${external ? "partner.example" : "example.com"}`
        .normalize("NFD").replace(/[\u0300-\u036f]/g, "").toLowerCase(),
      orgId: external ? partnerOrgId : orgId
    }
  })
  const staff = people.slice(0, 32)
  const rooms: ReadonlyArray<Room> = Array.from({ length: 24 }, (_, i) => ({
    id: sparkId("ROOM"),
    title: i < ROOM_TITLES.length ? ROOM_TITLES[i]! : `1:1 ${pick(staff).displayName}`,
    type: i < ROOM_TITLES.length ? "group" : "direct",
    creatorId: pick(staff).id,
    created: iso(from - 86_400_000 * (30 + int(300)))
  }))
  const classifications = [sparkId("CLASSIFICATION"), sparkId("CLASSIFICATION"), sparkId("CLASSIFICATION")]
  const botAppId = sparkId("APPLICATION")
  const integrationAppId = sparkId("APPLICATION")
  const meetings = Array.from({ length: 12 }, () => ({
    meetingId: `${hex(32)}_I_${digits(18)}`,
    host: pick(staff),
    attendees: Array.from({ length: 2 + int(5) }, () => pick(people))
  }))

  // What earlier events created, so that updates, deletions and card actions refer to real things.
  const messages: Array<{ id: string; room: Room; author: Person; text: string }> = []
  const memberships: Array<{ id: string; room: Room; person: Person; created: string }> = []
  const tabs: Array<{ id: string; room: Room; creator: Person; displayName: string; contentUrl: string }> = []

  // Timestamps first, sorted, so that the story is causal (an update follows its creation). Some
  // events share the exact millisecond of the one before: a checkpoint on "newest created + 1 ms"
  // loses them, and the tests should notice.
  const instants: Array<number> = []
  for (let i = 0; i < options.count; i++) {
    const shareWithPrevious = i > 0 && (chance(0.05) || i % 40 === 1)
    instants.push(shareWithPrevious ? instants[i - 1]! : from + int(to - from))
  }
  instants.sort((a, b) => a - b)
  const createdTexts: Array<string> = []
  for (let i = 0; i < instants.length; i++) {
    const t = instants[i]!
    if (i > 0 && instants[i - 1] === t) {
      createdTexts.push(createdTexts[i - 1]!) // same instant, same text
      continue
    }
    // The `+00:00` form has whole seconds; round up so it stays inside [from, to).
    const wholeSecond = Math.ceil(t / 1000) * 1000
    createdTexts.push(
      chance(0.15) && wholeSecond < to ? iso(wholeSecond).replace(/\.000Z$/, "+00:00") : iso(t)
    )
  }

  const ids = new Set<string>()
  const eventId = () => {
    let id = sparkId("EVENT")
    while (ids.has(id)) id = sparkId("EVENT")
    ids.add(id)
    return id
  }
  const appIdFor = () => (chance(0.8) ? "null" : chance(0.5) ? botAppId : integrationAppId)

  const pickKind = (i: number): readonly [resource: string, type: string, weight: number] => {
    // The first events walk through every kind, so even a small org covers them all.
    if (i < KINDS.length) return KINDS[i]!
    let w = random() * TOTAL_WEIGHT
    for (const kind of KINDS) {
      w -= kind[2]
      if (w < 0) return kind
    }
    return KINDS[0]!
  }

  for (let i = 0; i < options.count; i++) {
    const created = createdTexts[i]!
    let [resource, type] = pickKind(i)
    // Nothing to update or delete yet: fall back to a creation of the same resource.
    if ((resource === "messages" || resource === "attachmentActions") && type !== "created" && messages.length === 0) {
      type = "created"
    }
    if (resource === "attachmentActions" && messages.length === 0) resource = "messages"
    if (resource === "memberships" && type !== "created" && memberships.length === 0) type = "created"
    if (resource === "tabs" && type !== "created" && tabs.length === 0) type = "created"

    const event: Record<string, unknown> = { id: eventId(), resource, type }
    let actor = pick(staff)
    let data: Record<string, unknown>
    let extra: Record<string, unknown> = {}
    let omitOrgAndApp = false

    switch (resource) {
      case "messages": {
        if (type === "created") {
          const room = pick(rooms)
          const text = pick(PHRASES)
          const message = { id: sparkId("MESSAGE"), room, author: actor, text }
          messages.push(message)
          data = {
            id: message.id,
            roomId: room.id,
            roomType: room.type,
            text,
            personId: actor.id,
            personEmail: actor.email,
            created
          }
          if (chance(0.3)) data.markdown = `**${text}**`
          if (chance(0.2)) data.html = `<p>${text}</p>`
          if (chance(0.15)) data.mentionedPeople = [pick(staff).id, pick(staff).id]
          if (chance(0.1)) data.files = [`https://webexapis.com/v1/contents/${sparkId("CONTENT")}/0`]
          if (chance(0.05)) {
            data.attachments = [{
              contentType: "application/vnd.microsoft.card.adaptive",
              content: { type: "AdaptiveCard", version: "1.0", body: [{ type: "TextBlock", text: "Approve?" }] }
            }]
          }
        } else {
          const message = pick(messages)
          actor = type === "deleted" && chance(0.3) ? pick(staff) : message.author // moderators delete too
          data = {
            id: message.id,
            roomId: message.room.id,
            roomType: message.room.type,
            personId: message.author.id,
            personEmail: message.author.email
          }
          if (type === "updated") {
            data.text = `${message.text} (edited)`
            data.created = created
            data.updated = created
          } else {
            // Deleted events lose the content, and sometimes orgId/appId too.
            omitOrgAndApp = chance(0.5)
          }
        }
        break
      }
      case "memberships": {
        if (type === "created") {
          const room = pick(rooms)
          const person = pick(people)
          const membership = { id: base64(`ciscospark://us/MEMBERSHIP/${uuid()}:${uuid()}`), room, person, created }
          memberships.push(membership)
          data = {
            id: membership.id,
            roomId: room.id,
            personId: person.id,
            personEmail: person.email,
            personDisplayName: person.displayName,
            personOrgId: person.orgId,
            isModerator: chance(0.1),
            isMonitor: false,
            isRoomHidden: chance(0.05),
            roomType: room.type,
            created
          }
        } else {
          const membership = pick(memberships)
          data = {
            id: membership.id,
            roomId: membership.room.id,
            personId: membership.person.id,
            personEmail: membership.person.email,
            personDisplayName: membership.person.displayName,
            personOrgId: membership.person.orgId,
            isModerator: type === "updated" ? true : false,
            isMonitor: false,
            isRoomHidden: false,
            roomType: membership.room.type,
            created: membership.created
          }
          if (type === "deleted") omitOrgAndApp = chance(0.3)
        }
        break
      }
      case "attachmentActions": {
        const message = pick(messages)
        data = {
          id: sparkId("ATTACHMENT_ACTION"),
          type: "submit",
          messageId: message.id,
          inputs: { Name: actor.displayName, Email: actor.email, Approve: chance(0.5) ? "yes" : "no" },
          personId: actor.id,
          roomId: message.room.id,
          created
        }
        break
      }
      case "tabs": {
        if (type === "created") {
          const room = pick(rooms)
          const tab = { id: sparkId("TAB"), room, creator: actor, displayName: `${room.title} board`, contentUrl: pick(TAB_SITES) }
          tabs.push(tab)
          data = {
            id: tab.id,
            roomId: room.id,
            roomType: room.type,
            displayName: tab.displayName,
            contentUrl: tab.contentUrl,
            creatorId: actor.id,
            created
          }
        } else {
          const tab = pick(tabs)
          data = {
            id: tab.id,
            roomId: tab.room.id,
            roomType: tab.room.type,
            displayName: type === "updated" ? `${tab.displayName} (v2)` : tab.displayName,
            contentUrl: tab.contentUrl,
            creatorId: tab.creator.id,
            created
          }
        }
        break
      }
      case "rooms": {
        // Space classification changes, the one room event the compliance feed carries.
        const room = pick(rooms.filter((r) => r.type === "group"))
        data = {
          id: room.id,
          title: room.title,
          type: room.type,
          isLocked: chance(0.5),
          lastActivity: created,
          creatorId: room.creatorId,
          created: room.created,
          classificationId: pick(classifications),
          isAnnouncementOnly: chance(0.1),
          isReadOnly: false,
          isPublic: chance(0.2),
          description: `${room.title} space`
        }
        break
      }
      case "meetings": {
        const meeting = pick(meetings)
        actor = meeting.host
        const yesNo = () => (chance(0.5) ? "yes" : "no")
        data = {
          meetingId: meeting.meetingId,
          creatorId: meeting.host.id,
          host: { personId: meeting.host.id, personEmail: meeting.host.email },
          attendees: meeting.attendees.map((p) => ({ personId: p.id, personEmail: p.email })),
          transcriptionEnabled: yesNo(),
          recordingEnabled: yesNo(),
          hasPostMeetingsChat: yesNo(),
          created
        }
        break
      }
      case "meetingMessages": {
        const meeting = pick(meetings)
        const recipient = pick(meeting.attendees)
        const direct = chance(0.4)
        data = {
          id: sparkId("MEETINGMESSAGE"),
          meetingId: meeting.meetingId,
          text: pick(PHRASES),
          type: direct ? "direct" : "public",
          breakoutSessionId: chance(0.2) ? uuid() : "",
          recipients: direct
            ? [chance(0.2)
              ? { guestDisplayName: "Guest Caller", guestEmail: "guest@visitor.example" }
              : { personId: recipient.id, personEmail: recipient.email }]
            : [],
          created
        }
        break
      }
      case "meetingTranscripts": {
        const meeting = pick(meetings)
        actor = meeting.host
        const transcriptId = uuid().replace(/-/g, "")
        data = {
          id: transcriptId,
          meetingId: meeting.meetingId,
          hostUserId: meeting.host.id,
          vttDownloadLink: `https://webexapis.com/v1/meetingTranscripts/${transcriptId}/download?format=vtt`,
          txtDownloadLink: `https://webexapis.com/v1/meetingTranscripts/${transcriptId}/download?format=txt`,
          status: "available",
          created
        }
        break
      }
      case "call_records": {
        const answered = chance(0.75)
        const start = Date.parse(created) - (60 + int(3600)) * 1000
        const duration = answered ? 5 + int(1800) : 0
        data = {
          corelationId: uuid(), // sic: the service's spelling
          callType: pick(["SIP_ENTERPRISE", "SIP_NATIONAL", "SIP_INTERNATIONAL", "SIP_TOLLFREE"]),
          userId: actor.id,
          userType: "User",
          callDirection: pick(["ORIGINATING", "TERMINATING"]),
          isCallAnswered: answered ? "true" : "false",
          callDurationSeconds: String(duration),
          callStartTime: iso(start),
          callAnswerTime: answered ? iso(start + 4000) : "",
          callTransferTime: "",
          callingNumber: digits(9),
          callingLineId: digits(3),
          calledNumber: digits(10),
          calledLineId: digits(3),
          dialedDigits: chance(0.3) ? digits(3) : "",
          callRedirectingNumber: "",
          callRedirectedReason: ""
        }
        break
      }
      case "files": {
        const room = pick(rooms)
        const [fileName, contentType] = pick(FILE_TYPES)
        const contentId = sparkId("CONTENT")
        data = {
          id: sparkId("FILE"),
          fileId: contentId,
          fileContentUrl: `https://webexapis.com/v1/contents/${contentId}/0`,
          fileName,
          contentType,
          size: String(1024 + int(5_000_000)),
          roomId: room.id,
          personId: actor.id,
          personEmail: actor.email,
          messageId: messages.length > 0 ? pick(messages).id : sparkId("MESSAGE"),
          created
        }
        break
      }
      default: {
        // webinarPolls: unknown to every schema, with a top-level field no spec names.
        extra = { schemaVersion: 2 }
        data = {
          id: `poll-${hex(8)}`,
          question: pick(["Lunch?", "Ship on Friday?", "Rate this session"]),
          choices: ["yes", "no"],
          answer: chance(0.5) ? "yes" : "no"
        }
      }
    }

    event.actorId = actor.id
    if (!omitOrgAndApp) {
      event.orgId = orgId
      if (resource !== "webinarPolls") event.appId = resource === "attachmentActions" ? botAppId : appIdFor()
    }
    event.created = created
    event.data = data
    yield JSON.stringify({ ...event, ...extra })
  }
}
