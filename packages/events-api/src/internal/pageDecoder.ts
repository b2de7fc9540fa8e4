/**
 * Decoding of `GET /events` bodies into {@link EventsPage.Item}s: one `JSON.parse` of the body,
 * per item a check compiled from the schemas, and one byte scan for the item boundaries when the
 * items' bytes are first read.
 *
 * Speed without a second source of truth: the fast path below is compiled from `Event`'s own
 * schema ASTs at load time, and it only ever ACCEPTS (an item it is unsure of goes to
 * `Schema.decodeUnknown`, the authority, which also explains failures). A differential test
 * holds the two to the same results. Schema's general interpreter costs ~15x a `JSON.parse`
 * per page; this costs a fraction of one.
 */
import * as Effect from "effect/Effect"
import * as Either from "effect/Either"
import * as Option from "effect/Option"
import * as ParseResult from "effect/ParseResult"
import * as Schema from "effect/Schema"
import * as AST from "effect/SchemaAST"
import type { Event as EventT } from "../Event.js"
import * as Event from "../Event.js"
import { ResponseDecodeError } from "../EventsApiError.js"
import * as EventsPage from "../EventsPage.js"
import { asciiJsonText, textOffsets } from "./asciiJson.js"
import { nodeBuffer } from "./nodeBuffer.js"
import { compactBytes, hasLineBreak, isBlank, type ItemsArray, itemsArray, itemSpans, trimBytes } from "./rawJson.js"
import { utcFromMillis } from "./utc.js"

// ---------------------------------------------------------------------------------------------
// Fast path: checks compiled from the schema ASTs
// ---------------------------------------------------------------------------------------------

/** Returned by a compiled check when it cannot vouch for the value (the slow path decides). */
const FAIL: unique symbol = Symbol("FAIL")
/** The decoded value, or {@link FAIL}. Returns its input itself when decoding changes nothing. */
type Check = (u: unknown) => unknown

const isRecord = (u: unknown): u is Record<string, unknown> => typeof u === "object" && u !== null && !Array.isArray(u)

/** Whether a property-signature transformation is `optionalWith(…, { nullable: true })`'s: null and absent are one. */
const isNullableOptional = (t: AST.PropertySignatureTransformation): boolean => {
  if (t.from !== t.to) return false
  const probe = {}
  const some = t.decode(Option.some(probe))
  return Option.isNone(t.decode(Option.some(null))) && Option.isNone(t.decode(Option.none())) &&
    Option.isSome(some) && some.value === probe
}

/** Index signatures that accept every string key with any value (the schemas' `Rest`). */
const acceptsAnyKey = (signatures: ReadonlyArray<AST.IndexSignature>): boolean =>
  signatures.every((s) =>
    s.parameter._tag === "StringKeyword" && (s.type._tag === "UnknownKeyword" || s.type._tag === "AnyKeyword")
  )

// Primitive types as bits, so that a field of a primitive type (most of them) is checked inline
// rather than through a call.
const STRING = 1, NUMBER = 2, BOOLEAN = 4, NULL = 8, OTHER = 16, ANY = 31

const maskOf = (u: unknown): number =>
  typeof u === "string" ? STRING : typeof u === "number" ? NUMBER : typeof u === "boolean" ? BOOLEAN : u === null ? NULL : OTHER

/** The bits of a union of primitive types (null and undefined dropped when `dropNull`), or 0. */
const primitiveMask = (ast: AST.AST, dropNull: boolean): number => {
  switch (ast._tag) {
    case "StringKeyword":
      return STRING
    case "NumberKeyword":
      return NUMBER
    case "BooleanKeyword":
      return BOOLEAN
    case "UnknownKeyword":
    case "AnyKeyword":
      return ANY
    case "Literal":
      return ast.literal === null ? (dropNull ? -1 : NULL) : 0
    case "UndefinedKeyword":
      return -1 // never in JSON: an absent field is handled before the type check
    case "Union": {
      let mask = 0
      for (const member of ast.types) {
        const m = primitiveMask(member, dropNull)
        if (m === 0) return 0
        if (m !== -1) mask |= m
      }
      return mask
    }
    default:
      return 0
  }
}

const compileStruct = (
  literal: AST.TypeLiteral,
  nullable: ReadonlySet<PropertyKey>,
  special: ReadonlyMap<AST.AST, Check>
): Check | undefined => {
  if (literal.propertySignatures.length === 0 && literal.indexSignatures.length === 0) return undefined
  if (!acceptsAnyKey(literal.indexSignatures)) return undefined
  const names: Array<string> = []
  const masks: Array<number> = []
  const checks: Array<Check> = []
  const optional: Array<boolean> = []
  const nullAbsent: Array<boolean> = []
  for (const ps of literal.propertySignatures) {
    if (typeof ps.name !== "string" || ps.name === "__proto__") return undefined
    const mask = special.has(ps.type) ? 0 : primitiveMask(ps.type, ps.isOptional && nullable.has(ps.name))
    const check = mask !== 0 ? (u: unknown) => u : compile(ps.type, special)
    if (check === undefined) return undefined
    names.push(ps.name)
    masks.push(mask)
    checks.push(check)
    optional.push(ps.isOptional)
    nullAbsent.push(ps.isOptional && nullable.has(ps.name))
  }
  const inherited = names.map((name) => name in Object.prototype)
  const n = names.length
  return (u) => {
    if (!isRecord(u)) return FAIL
    // Excess keys are kept as they are (the decoder runs with `onExcessProperty: "preserve"`, and
    // the schemas' `Rest` accepts any value), so only the declared fields need a look.
    let out: Record<string, unknown> | undefined
    for (let k = 0; k < n; k++) {
      const name = names[k]!
      const v = inherited[k] && !Object.hasOwn(u, name) ? undefined : u[name]
      if (v === undefined) {
        if (!optional[k]) return FAIL
        continue
      }
      if (v === null && nullAbsent[k]) {
        // Null stands for absent. A spread keeps an own `__proto__` key as data, unlike `out[k] =`.
        out ??= { ...u }
        delete out[name]
        continue
      }
      const mask = masks[k]!
      if (mask !== 0) {
        if ((maskOf(v) & mask) === 0) return FAIL
        continue
      }
      const r = checks[k]!(v)
      if (r === FAIL) return FAIL
      if (r !== v) {
        out ??= { ...u }
        out[name] = r
      }
    }
    return out ?? u
  }
}

/** A check for `ast`, or undefined when it has a node this compiler does not handle. */
const compile = (ast: AST.AST, special: ReadonlyMap<AST.AST, Check>): Check | undefined => {
  const given = special.get(ast)
  if (given !== undefined) return given
  switch (ast._tag) {
    case "StringKeyword":
      return (u) => (typeof u === "string" ? u : FAIL)
    case "NumberKeyword":
      return (u) => (typeof u === "number" ? u : FAIL)
    case "BooleanKeyword":
      return (u) => (typeof u === "boolean" ? u : FAIL)
    case "UnknownKeyword":
    case "AnyKeyword":
      return (u) => u
    case "UndefinedKeyword":
      return (u) => (u === undefined ? u : FAIL)
    case "Literal": {
      const literal = ast.literal
      return (u) => (u === literal ? u : FAIL)
    }
    case "Union": {
      const members: Array<Check> = []
      for (const member of ast.types) {
        const check = compile(member, special)
        if (check === undefined) return undefined
        members.push(check)
      }
      return (u) => {
        for (const check of members) {
          const r = check(u)
          if (r !== FAIL) return r
        }
        return FAIL
      }
    }
    case "TupleType": {
      if (ast.elements.length !== 0 || ast.rest.length !== 1) return undefined
      const element = compile(ast.rest[0]!.type, special)
      if (element === undefined) return undefined
      return (u) => {
        if (!Array.isArray(u)) return FAIL
        let out: Array<unknown> | undefined
        for (let k = 0; k < u.length; k++) {
          const v = u[k]
          const r = element(v)
          if (r === FAIL) return FAIL
          if (r !== v) {
            out ??= u.slice()
            out[k] = r
          }
        }
        return out ?? u
      }
    }
    case "TypeLiteral":
      return compileStruct(ast, new Set(), special)
    case "Transformation": {
      // A Struct with `optionalWith` fields: the encoded side, with its nullable-optional keys.
      const t = ast.transformation
      if (t._tag !== "TypeLiteralTransformation" || ast.from._tag !== "TypeLiteral") return undefined
      if (!t.propertySignatureTransformations.every(isNullableOptional)) return undefined
      return compileStruct(ast.from, new Set(t.propertySignatureTransformations.map((p) => p.from)), special)
    }
    default:
      return undefined
  }
}

/** A `created` inside `data`: the one ISO parser, straight to a `DateTime.Utc` (what `Event.IsoDateTime` decodes to). */
const checkCreated: Check = (u) => {
  if (typeof u !== "string") return FAIL
  const millis = Event.parseIsoMillis(u)
  return millis === undefined ? FAIL : utcFromMillis(millis)
}

const special = new Map<AST.AST, Check>([[Event.IsoDateTime.ast, checkCreated]])

/**
 * The envelope check, with `created` left as its (already checked) text: it is set in place once
 * every check has passed (see {@link fastDecodeOwned}). And the `data` check of each documented
 * resource. Exported for the tests.
 */
export const compiled = {
  envelope: compile(
    Event.Envelope.ast,
    new Map<AST.AST, Check>([[Event.IsoDateTime.ast, (u) => (typeof u === "string" ? u : FAIL)]])
  ),
  data: Object.fromEntries(
    Object.entries(Event.DataSchemas).map(([resource, schema]) => [resource, compile(schema.ast, special)])
  ) as Record<Event.TypedResource, Check | undefined>
}

/**
 * The decoded event of a value fresh from `JSON.parse` that nothing else holds, or undefined when
 * the fast path cannot vouch for it (the slow path, Schema, then judges it). The result may be that
 * value itself, completed in place (no copy of each event just to replace `created`). The value is
 * changed only once every check has passed, so on `undefined` it is untouched and the slow path
 * judges what the server sent. Tests hold its results equal to Schema's.
 */
export const fastDecodeOwned = (json: unknown): EventT | undefined => {
  const envelope = compiled.envelope
  if (envelope === undefined || !isRecord(json)) return undefined
  const created = json["created"]
  const millis = typeof created === "string" ? Event.parseIsoMillis(created) : undefined
  if (millis === undefined) return undefined
  const out = envelope(json) as Record<string, unknown> | typeof FAIL
  if (out === FAIL) return undefined
  const resource = out["resource"] as string
  let data = out["data"]
  if (Object.hasOwn(compiled.data, resource)) {
    const check = compiled.data[resource as Event.TypedResource]
    if (check === undefined) return undefined
    data = check(data)
    if (data === FAIL) return undefined
  }
  // Every check passed: now, and only now, complete the value (or the copy the check made).
  out["created"] = utcFromMillis(millis)
  if (data !== out["data"]) out["data"] = data
  return out as unknown as EventT
}

// ---------------------------------------------------------------------------------------------
// Slow path: Schema, and a reason naming the field at fault
// ---------------------------------------------------------------------------------------------

const stringField = (json: unknown, key: string): Option.Option<string> =>
  isRecord(json) && typeof json[key] === "string" ? Option.some(json[key]) : Option.none()

const issues = (error: ParseResult.ParseError, prefix: string): string => {
  // One issue per field: an optional field's failure also reports "Expected undefined".
  const byPath = new Map<string, string>()
  for (const issue of ParseResult.ArrayFormatter.formatErrorSync(error)) {
    const path = [prefix, ...issue.path.map(String)].filter((p) => p !== "").join(".") || "event"
    if (!byPath.has(path)) byPath.set(path, issue.message)
  }
  return [...byPath].map(([path, message]) => `${path}: ${message}`).join("; ")
}

/**
 * A one-line reason naming the field at fault. The union of every resource's schema yields a
 * wall of alternatives; checking the common fields, then the resource's own `data` schema,
 * says what is actually wrong.
 */
const explain = (json: unknown, error: ParseResult.ParseError): string => {
  const envelope = Schema.decodeUnknownEither(Event.Envelope)(json, { errors: "all" })
  if (Either.isLeft(envelope)) return issues(envelope.left, "")
  const resource = envelope.right.resource
  if (Object.hasOwn(Event.DataSchemas, resource)) {
    const schema = Event.DataSchemas[resource as Event.TypedResource] as Schema.Schema<unknown, unknown>
    const data = Schema.decodeUnknownEither(schema)(envelope.right.data, { errors: "all" })
    if (Either.isLeft(data)) return issues(data.left, "data")
  }
  return ParseResult.TreeFormatter.formatErrorSync(error)
}

/** Decodes one parsed item whose bytes are `bytes` (the `index`-th of a page's, when a {@link EventsPage.PageBytes}). */
const decodeParsed = (
  json: unknown,
  bytes: Uint8Array | EventsPage.PageBytes,
  index: number,
  invalidUtf8: boolean
): EventsPage.Item => {
  const event = decodeOwned(json)
  return !(event instanceof ParseResult.ParseError)
    ? new EventsPage.Decoded({ event, bytes, index, invalidUtf8 })
    : new EventsPage.Undecodable({
      bytes,
      index,
      invalidUtf8,
      reason: explain(json, event),
      id: stringField(json, "id"),
      created: stringField(json, "created")
    })
}

/**
 * The event a value fresh from `JSON.parse` (that nothing else holds) decodes to, or why not: the
 * compiled fast path, then Schema, the authority. The event or the error itself, not an `Either`
 * around it: this runs once per listed event.
 */
const decodeOwned = (json: unknown): EventT | ParseResult.ParseError => {
  const fast = fastDecodeOwned(json)
  if (fast !== undefined) return fast
  const result = Event.decodeUnknownEither(json, { onExcessProperty: "preserve" })
  return Either.isRight(result) ? result.right : result.left
}

// ---------------------------------------------------------------------------------------------
// Bodies and items
// ---------------------------------------------------------------------------------------------

const strict = new TextDecoder("utf-8", { fatal: true })
const lossy = new TextDecoder("utf-8")
const encoder = new TextEncoder()

/**
 * The bytes of a body and its text. Invalid UTF-8 is decoded lossily (U+FFFD) so that the rest of
 * the body can still be read; `valid` says whether that happened. A string body is taken as its
 * UTF-8 encoding (what the server would have sent).
 */
const bytesAndText = (body: Uint8Array | string): { bytes: () => Uint8Array; text: string; valid: boolean } => {
  if (typeof body === "string") {
    let bytes: Uint8Array | undefined
    return { bytes: () => (bytes ??= encoder.encode(body)), text: body, valid: true }
  }
  const bytes = () => body
  try {
    return { bytes, text: strict.decode(body), valid: true }
  } catch {
    return { bytes, text: lossy.decode(body), valid: false }
  }
}

/** `JSON.parse` of `text`, or undefined when it throws. */
const tryParse = (text: string): unknown => {
  try {
    return JSON.parse(text)
  } catch {
    return undefined
  }
}

/**
 * A list body parsed, with its bytes and whether they are valid UTF-8: `json` is the parsed value
 * or `JSON.parse`'s message. Valid UTF-8 goes through {@link asciiJsonText} (the same value,
 * faster); whatever it declines, and any text that does not parse, is decoded and parsed the
 * ordinary way, so verdicts and messages are those of `JSON.parse` on the decoded body.
 */
const parseBody = (
  body: Uint8Array | string
): { bytes: () => Uint8Array; valid: boolean; json: Either.Either<unknown, string> } => {
  if (typeof body !== "string") {
    // Not JSON (`undefined`, which no JSON parses to): the message is taken from the ordinary
    // decoding below.
    const ascii = asciiJsonText(body)
    const json = ascii === undefined ? undefined : tryParse(ascii)
    if (json !== undefined) return { bytes: () => body, valid: true, json: Either.right(json) }
  }
  const { bytes, text, valid } = bytesAndText(body)
  try {
    return { bytes, valid, json: Either.right(JSON.parse(text)) }
  } catch (e) {
    return { bytes, valid, json: Either.left((e as Error).message) }
  }
}

/** The `items` array of a parsed list body, or why the whole body is unusable. */
const itemsOf = (json: Either.Either<unknown, string>): Either.Either<ReadonlyArray<unknown>, string> => {
  if (Either.isLeft(json)) return Either.left(`the body is not JSON (${json.left})`)
  const items = isRecord(json.right) ? json.right["items"] : undefined
  return Array.isArray(items) ? Either.right(items) : Either.left("the body has no \"items\" array")
}

const isValidUtf8 = (bytes: Uint8Array): boolean => {
  // Native (no string built) where the runtime has it; the same verdict as the strict decoder's.
  if (nodeBuffer !== undefined) return nodeBuffer.isUtf8(bytes)
  try {
    strict.decode(bytes)
    return true
  } catch {
    return false
  }
}

/**
 * Decodes one item from its raw JSON (the single-event endpoint, the in-memory layer and archive
 * readers use this). Surrounding whitespace is dropped and a pretty-printed item put on one line.
 */
export const decodeItem = (body: Uint8Array | string): EventsPage.Item => {
  const whole = bytesAndText(body)
  const bodyBytes = whole.bytes()
  const bytes = compactBytes(trimBytes(bodyBytes))
  const invalidUtf8 = !whole.valid && !isValidUtf8(bytes)
  let json: unknown
  try {
    json = JSON.parse(bytes === bodyBytes ? whole.text : lossy.decode(bytes))
  } catch (e) {
    return new EventsPage.Undecodable({
      bytes,
      invalidUtf8,
      reason: `Not JSON: ${(e as Error).message}`,
      id: Option.none(),
      created: Option.none()
    })
  }
  return decodeParsed(json, bytes, 0, invalidUtf8)
}

/**
 * Splits a list response body into items, each with its exact bytes. `Left` with a reason when
 * the body is not JSON or has no `items` array (the whole response is then unusable).
 *
 * For a valid UTF-8 body the item boundaries are found only when some item's `bytes` or `raw` is
 * first read (one scan for the whole page, shared by its items): `JSON.parse` has vouched for the
 * body, so the scan cannot disagree with it, and a caller who never reads them does not pay for it. A body that is not valid UTF-8 is
 * scanned at once, since each item must be judged on its own bytes.
 *
 * The items view `body` (now or later): the caller hands it over and must not reuse or mutate it.
 */
export const decodeBody = (body: Uint8Array | string): Either.Either<ReadonlyArray<EventsPage.Item>, string> => {
  const { bytes, json, valid } = parseBody(body)
  const parsed = itemsOf(json)
  if (Either.isLeft(parsed)) return Either.left(parsed.left)
  const items = parsed.right
  const count = items.length
  const out: Array<EventsPage.Item> = new Array(count)
  if (valid) {
    const page = new LazyPageBytes(bytes, count)
    for (let k = 0; k < count; k++) out[k] = decodeParsed(items[k], page, k, false)
    return Either.right(out)
  }
  const itemBytes = scanItems(bytes(), count)
  if (itemBytes === undefined) return Either.left("the body has no \"items\" array")
  for (let k = 0; k < count; k++) {
    const b = itemBytes(k)
    out[k] = decodeParsed(items[k], b, 0, !isValidUtf8(b))
  }
  return Either.right(out)
}

/**
 * The bytes of each of the `count` items of a body `JSON.parse` accepted: one scan of the body for
 * every item's span, and a copy only of an item that spans lines. `undefined` when the scan finds
 * no `items` array of that length.
 */
const scanItems = (all: Uint8Array, count: number): ((index: number) => Uint8Array) | undefined => {
  const spans = itemSpans(all)
  if (spans === undefined || spans.length !== count * 2) return undefined
  return bytesOfSpans(all, spans)
}

/** Item `index`'s bytes, from its span in `all`: a view, or a one-line copy of an item that spans lines. */
const bytesOfSpans = (all: Uint8Array, spans: ReadonlyArray<number>): (index: number) => Uint8Array => {
  // In JSON a line break can only be whitespace between tokens: a body without any (the usual,
  // compact one) has no item to compact, and this one check spares one per item.
  const multiline = hasLineBreak(all)
  return (index) => {
    const view = all.subarray(spans[2 * index]!, spans[2 * index + 1]!)
    return multiline ? compactBytes(view) : view
  }
}

/**
 * The items' bytes of a valid UTF-8 body, found when the first is asked for ({@link scanItems}).
 * It holds the body, not the parsed page: a kept item keeps only the bytes it views (and this
 * page's spans).
 */
class LazyPageBytes implements EventsPage.PageBytes {
  #body: () => Uint8Array
  #count: number
  #items: ((index: number) => Uint8Array) | undefined
  constructor(body: () => Uint8Array, count: number) {
    this.#body = body
    this.#count = count
  }
  itemBytes(index: number): Uint8Array {
    // Cannot fail for a body JSON.parse accepted; a defect in the scanner if it does.
    this.#items ??= scanItems(this.#body(), this.#count) ??
      (() => {
        throw new Error("pageDecoder: the byte scan of a valid JSON body disagrees with JSON.parse")
      })()
    return this.#items(index)
  }
}

// ---------------------------------------------------------------------------------------------
// Bodies parsed group by group, for callers that read every item's bytes
// ---------------------------------------------------------------------------------------------

/**
 * The most bytes of items parsed as one string (one item longer than this is parsed alone). Under
 * V8's large-object size (128 KiB): a page's text as one string (most of a MiB) is a large object,
 * a memory mapping of its own, mapped and unmapped again for every page. Groups of this size are
 * ordinary young objects that die in the next scavenge. (Bytes, not characters: non-ASCII text
 * grows up to three times when escaped, past that size, which only costs such a page some speed.)
 */
export const GROUP_BYTES = 64 * 1024

/**
 * The items of a valid UTF-8 body and their spans, parsed without ever making the body one string:
 * the scan for the items' boundaries ({@link itemsArray}) comes first, then `JSON.parse` of the
 * envelope with its `items` array emptied, and of the items group by group ({@link GROUP_BYTES}),
 * each through {@link asciiJsonText}. The scan takes only commas between items, and what lies
 * before the first item and after the last is checked to be whitespace, so the pieces parse only
 * when the whole body would, to the same values.
 *
 * The scan first guesses the boundaries from the separator between the first two items (one
 * native search per item, where the byte scan makes one per string: issue 8); the items are then
 * parsed one by one, which checks each guessed span ({@link ItemsArray.guessed}). Where a guessed
 * span does not parse, the body is scanned byte by byte and parsed again.
 *
 * `undefined` whenever a step declines (not valid UTF-8, not JSON, no `items` array, a scan that
 * disagrees with a parse, a non-ASCII byte `asciiJsonText` will not transcode): the caller then
 * decodes the whole body the ordinary way, whose verdict and messages stand. Exported for the
 * tests, which pass a small `groupBytes` so that group edges fall everywhere.
 */
export const parseGrouped = (
  body: Uint8Array,
  groupBytes: number = GROUP_BYTES
): Grouped | undefined => {
  const guessed = itemsArray(body, true)
  if (guessed === undefined || !guessed.guessed) return parseScanned(body, guessed, groupBytes)
  return parseScanned(body, guessed, groupBytes) ?? parseScanned(body, itemsArray(body), groupBytes)
}

/** A body's items parsed, their spans, and whether the spans guessed from the separator stood. */
export interface Grouped {
  readonly items: Array<unknown>
  readonly spans: Array<number>
  readonly guessed: boolean
}

const parseScanned = (body: Uint8Array, array: ItemsArray | undefined, groupBytes: number): Grouped | undefined => {
  if (array === undefined || array.close >= body.length) return undefined
  const { close, guessed, open, spans } = array
  const head = asciiJsonText(body.subarray(0, open + 1))
  const tail = asciiJsonText(body.subarray(close))
  if (head === undefined || tail === undefined) return undefined
  const envelope = tryParse(head + tail)
  // The emptied array must be the `items` the envelope's own parse finds.
  if (!isRecord(envelope) || !Array.isArray(envelope["items"]) || envelope["items"].length !== 0) return undefined
  const count = spans.length / 2
  if (count === 0) return isBlank(body, open + 1, close) ? { items: [], spans, guessed } : undefined
  if (!isBlank(body, open + 1, spans[0]!) || !isBlank(body, spans[2 * count - 1]!, close)) {
    return undefined
  }
  const items: Array<unknown> = new Array(count)
  const shifts: Array<number> = []
  let k = 0
  while (k < count) {
    const start = spans[2 * k]!
    // `asciiJsonText` drops a leading byte-order mark, as a body's: at the start of a group it
    // would hide a U+FEFF that `JSON.parse` refuses there. A JSON value starts with an ASCII byte.
    if (body[start]! >= 0x80) return undefined
    let j = k + 1
    while (j < count && spans[2 * j + 1]! - start <= groupBytes) j++
    // The separators inside a group are the group's own parse's to judge; those between groups
    // are commas, or `itemsArray` would have given up.
    shifts.length = 0
    const text = asciiJsonText(body.subarray(start, spans[2 * j - 1]!), shifts)
    if (text === undefined) return undefined
    if (guessed) {
      // Each item on its own, its text sliced out of the group's: past each escaped run of
      // non-ASCII bytes, the text is ahead of the bytes by what `shifts` says. No run straddles
      // an item's edges: one starting on a non-ASCII byte is refused, and a comma, whitespace or
      // the `]` follows each.
      const at = textOffsets(shifts)
      for (let m = k; m < j; m++) {
        const from = spans[2 * m]!
        if (body[from]! >= 0x80) return undefined
        const item = tryParse(text.slice(at(from - start), at(spans[2 * m + 1]! - start)))
        if (item === undefined) return undefined
        items[m] = item
      }
    } else {
      const group = tryParse(`[${text}]`)
      if (!Array.isArray(group) || group.length !== j - k) return undefined
      for (let g = 0; g < group.length; g++) items[k + g] = group[g]
    }
    k = j
  }
  return { items, spans, guessed }
}

/**
 * {@link decodeBody} for a caller that reads every item's bytes (an archive does): the same items,
 * but the items' boundaries are found first, and the body is parsed group by group
 * ({@link parseGrouped}) rather than as one page-sized string. Whatever that declines is decoded
 * by {@link decodeBody}. The items view `body`.
 */
export const decodeBodyScanned = (
  body: Uint8Array,
  groupBytes: number = GROUP_BYTES
): Either.Either<ReadonlyArray<EventsPage.Item>, string> => {
  const grouped = parseGrouped(body, groupBytes)
  if (grouped === undefined) return decodeBody(body)
  const { items, spans } = grouped
  const count = items.length
  const out: Array<EventsPage.Item> = new Array(count)
  const bytes = bytesOfSpans(body, spans)
  const page: EventsPage.PageBytes = { itemBytes: bytes }
  for (let k = 0; k < count; k++) out[k] = decodeParsed(items[k], page, k, false)
  return Either.right(out)
}

/** Why a page's events cannot be listed: its first item that does not decode. */
export interface BadItem {
  readonly id: Option.Option<string>
  readonly reason: string
}

/** The events of a page body, or its first item that does not decode; `count` items in all. */
export interface PageEvents {
  readonly count: number
  readonly events: Either.Either<ReadonlyArray<EventT>, BadItem>
}

/**
 * A list response body straight to its events, for `list()`: the same parse and the same checks
 * as {@link decodeBody}, without an {@link EventsPage.Item} (and its lazy bytes) per event, which a
 * caller who only wants events would build and drop at once. `count` is the number of items;
 * `events` is `Left(bad)` naming the first item that does not decode. `Left` is what `decodeBody`
 * would say of the body.
 */
export const decodeEvents = (
  body: Uint8Array
): Either.Either<PageEvents, string> => {
  // The whole body as one string: the grouped parse would first scan it for item boundaries,
  // which `list()` does not otherwise need, and costs it more than the one string saves
  // (bench/README.md, round 8).
  const parsed = itemsOf(parseBody(body).json)
  if (Either.isLeft(parsed)) return Either.left(parsed.left)
  const items = parsed.right
  const count = items.length
  const events: Array<EventT> = new Array(count)
  for (let k = 0; k < count; k++) {
    const item: unknown = items[k]
    const event = decodeOwned(item)
    if (event instanceof ParseResult.ParseError) {
      return Either.right({ count, events: Either.left({ id: stringField(item, "id"), reason: explain(item, event) }) })
    }
    events[k] = event
  }
  return Either.right({ count, events: Either.right(events) })
}

/** The `ResponseDecodeError` of a page whose item `bad` does not decode. */
export const badItemError = (url: string, trackingId: Option.Option<string>, bad: BadItem): ResponseDecodeError =>
  new ResponseDecodeError({
    url,
    reason: `an item does not decode` +
      `${Option.isSome(bad.id) ? ` (id ${bad.id.value})` : ""}: ${bad.reason}. ` +
      "Use listPages to keep undecodable items and carry on.",
    ...(Option.isSome(trackingId) ? { trackingId: trackingId.value } : {})
  })

/**
 * The events of a page, or a `ResponseDecodeError` naming its first undecodable item: what
 * `list` uses, so that an item is never skipped silently.
 */
export const eventsOrFail = (
  page: EventsPage.EventsPage
): Effect.Effect<ReadonlyArray<EventT>, ResponseDecodeError> => {
  const bad = page.undecodable[0]
  return bad === undefined ? Effect.succeed(page.events) : Effect.fail(badItemError(page.url, page.trackingId, bad))
}
