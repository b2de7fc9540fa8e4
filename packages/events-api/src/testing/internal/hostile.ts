/**
 * The fake server's hostile modes (issue 10): bodies and texts a misbehaving or compromised service
 * could send. Each is bounded on the server side, so the fake itself stays small whatever it sends.
 *
 * @internal
 */
import * as Stream from "effect/Stream"
import { parseInstant } from "./instant.js"

const encoder = new TextEncoder()

// ---------------------------------------------------------------------------------------------
// Bodies
// ---------------------------------------------------------------------------------------------

/** About 64 KiB of items: the unit the endless body repeats. */
const ENDLESS_CHUNK_TARGET = 64 * 1024

/**
 * A 200 body that never ends: `{"items":[` and then `item,` forever, the same chunk of bytes
 * written again each time the socket drains. It ends only when the client goes away.
 */
export const endlessBody = (item: Uint8Array): Stream.Stream<Uint8Array> => {
  const unit = new Uint8Array(item.byteLength + 1)
  unit.set(item)
  unit[item.byteLength] = 0x2c // ","
  const copies = Math.max(1, Math.floor(ENDLESS_CHUNK_TARGET / unit.byteLength))
  const chunk = new Uint8Array(unit.byteLength * copies)
  for (let i = 0; i < copies; i++) chunk.set(unit, i * unit.byteLength)
  return Stream.concat(
    Stream.succeed(encoder.encode(`{"items":[`)),
    Stream.repeatValue(chunk)
  )
}

/**
 * A complete, valid page of `count` items whatever `max` asked for, streamed in chunks of about a
 * thousand items: the server never holds the whole body. Items cycle through `items`.
 */
export const giantPage = (items: ReadonlyArray<Uint8Array>, count: number): Stream.Stream<Uint8Array> => {
  const comma = encoder.encode(",")
  const batch = 1000
  const batches = Math.ceil(count / batch)
  const body = batches === 0 || items.length === 0
    ? Stream.empty
    : Stream.range(0, batches - 1).pipe(
      Stream.map((b) => {
        const parts: Array<Uint8Array> = []
        for (let i = b * batch; i < Math.min(count, (b + 1) * batch); i++) {
          if (i > 0) parts.push(comma)
          parts.push(items[i % items.length]!)
        }
        return Buffer.concat(parts) as Uint8Array
      })
    )
  return Stream.succeed(encoder.encode(`{"items":[`)).pipe(
    Stream.concat(body),
    Stream.concat(Stream.succeed(encoder.encode(`]}`))),
    // One batch per pull: the server holds about a thousand items' bytes at a time.
    Stream.rechunk(1)
  )
}

/** A well-formed event standing in when a hostile mode needs an item and the listing has none. */
export const fillerItem = (n: number): Uint8Array =>
  encoder.encode(JSON.stringify({
    id: `hostile-filler-${n}`,
    resource: "messages",
    type: "created",
    actorId: "hostile-actor",
    created: "2024-01-01T00:00:00.000Z",
    data: { text: "filler" }
  }))

/**
 * A well-formed event whose `data.text` holds bytes that are not UTF-8: a lone continuation byte,
 * a truncated two-byte sequence, an overlong encoding and `0xFF`. Everything else is plain ASCII.
 * Its `created` is the given text, so it falls inside whatever window the page was listed for.
 */
export const invalidUtf8Item = (id: string, created: string): Uint8Array => {
  const head = encoder.encode(
    `{"id":${JSON.stringify(id)},"resource":"messages","type":"created","actorId":"hostile-actor",` +
      `"created":${JSON.stringify(created)},"data":{"text":"bad bytes: `
  )
  const bad = Uint8Array.of(0x80, 0x20, 0xc3, 0x28, 0x20, 0xc0, 0xaf, 0x20, 0xff, 0xfe)
  const tail = encoder.encode(`"}}`)
  const out = new Uint8Array(head.byteLength + bad.byteLength + tail.byteLength)
  out.set(head)
  out.set(bad, head.byteLength)
  out.set(tail, head.byteLength + bad.byteLength)
  return out
}

// ---------------------------------------------------------------------------------------------
// Texts
// ---------------------------------------------------------------------------------------------

/** The size of the long string {@link hostileText} carries. */
export const HOSTILE_TEXT_BYTES = 200 * 1024

/**
 * Server text built to hurt a logger: ANSI escapes, a bell, a NUL, carriage returns, a newline
 * followed by a forged logfmt line and a forged JSON log line, then 200 KiB of one character.
 */
export const hostileText = (): string =>
  "\u001b[31mRED\u001b[0m \u0007bell \u0000nul \r" +
  "\ntimestamp=2024-01-01T00:00:00.000Z level=ERROR fiber=#0 message=\"forged: archive deleted\"" +
  "\n{\"level\":\"ERROR\",\"message\":\"forged json line\"}\n" +
  "A".repeat(HOSTILE_TEXT_BYTES)

/** A server text that repeats the secrets it was sent, the way a careless gateway echoes a request. */
export const echoText = (secrets: ReadonlyArray<readonly [name: string, value: string | undefined]>): string =>
  secrets
    .filter((entry): entry is readonly [string, string] => entry[1] !== undefined && entry[1] !== "")
    .map(([name, value]) => `${name}=${value}`)
    .join(" ")

// ---------------------------------------------------------------------------------------------
// Moved day
// ---------------------------------------------------------------------------------------------

/**
 * The item's text with its top-level `created` moved by `deltaMs`, everything else byte for byte;
 * undefined when there is no top-level string `created` that is a date. The new time keeps the
 * form of the old one (`...Z` or `+00:00`).
 */
export const movedCreated = (text: string, deltaMs: number): string | undefined => {
  const span = topLevelStringValue(text, "created")
  if (span === undefined) return undefined
  const old = text.slice(span[0], span[1])
  const ms = parseInstant(old)
  if (ms === undefined) return undefined
  const iso = new Date(ms + deltaMs).toISOString()
  const next = old.endsWith("Z") || old.endsWith("z")
    ? iso
    : `${/\.\d+/.test(old) ? iso.slice(0, -1) : iso.slice(0, 19)}+00:00`
  return text.slice(0, span[0]) + next + text.slice(span[1])
}

/**
 * The span (inside the quotes) of the string value of a top-level key of a JSON object text, by a
 * scan that tracks depth and skips strings: a nested `created` (in `data`) is never taken.
 */
const topLevelStringValue = (text: string, key: string): readonly [number, number] | undefined => {
  let depth = 0
  let expectKey = false
  let i = 0
  const skipString = (from: number): number => {
    // `from` is at the opening quote; returns the index of the closing one.
    let j = from + 1
    while (j < text.length) {
      const c = text.charCodeAt(j)
      if (c === 0x5c) j += 2
      else if (c === 0x22) return j
      else j += 1
    }
    return -1
  }
  const skipSpace = (from: number): number => {
    let j = from
    while (j < text.length && /\s/.test(text[j]!)) j++
    return j
  }
  while (i < text.length) {
    const c = text[i]!
    if (c === "\"") {
      const end = skipString(i)
      if (end < 0) return undefined
      if (depth === 1 && expectKey) {
        expectKey = false
        if (text.slice(i + 1, end) === key) {
          let j = skipSpace(end + 1)
          if (text[j] !== ":") return undefined
          j = skipSpace(j + 1)
          if (text[j] !== "\"") return undefined
          const valueEnd = skipString(j)
          return valueEnd < 0 ? undefined : [j + 1, valueEnd]
        }
      }
      i = end + 1
      continue
    }
    if (c === "{" || c === "[") {
      depth++
      expectKey = c === "{" && depth === 1
    } else if (c === "}" || c === "]") {
      depth--
    } else if (c === "," && depth === 1) {
      expectKey = true
    }
    i++
  }
  return undefined
}
