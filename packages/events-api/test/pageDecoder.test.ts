import { describe, expect, it } from "@effect/vitest"
import * as Either from "effect/Either"
import * as Equal from "effect/Equal"
import * as FastCheck from "effect/FastCheck"
import * as Schema from "effect/Schema"
import * as AST from "effect/SchemaAST"
import * as fs from "node:fs"
import * as Event from "../src/Event.js"
import type * as EventsPage from "../src/EventsPage.js"
import * as PageDecoder from "../src/internal/pageDecoder.js"

const readLines = (url: URL): Array<string> =>
  fs.readFileSync(url, "utf8").split("\n").filter((line) => line.trim() !== "")

/** Every example event we have (the fixture is the spec's examples file, copied into the repo). */
const examples: Array<string> = readLines(new URL("./fixtures/events.ndjson", import.meta.url))

const schemaDecode = (json: unknown) => Event.decodeUnknownEither(json, { onExcessProperty: "preserve" })

const encoder = new TextEncoder()
const bytesOf = (text: string) => encoder.encode(text)

const items = (body: Uint8Array | string): ReadonlyArray<EventsPage.Item> => {
  const result = PageDecoder.decodeBody(body)
  if (Either.isLeft(result)) throw new Error(`expected items, got: ${result.left}`)
  return result.right
}

// ---------------------------------------------------------------------------------------------
// Optional fields: walk the schema beside the example, so every optional field of every schema
// the examples reach (envelope, per-resource data, nested structs and arrays of them) is covered.
// ---------------------------------------------------------------------------------------------

type Path = ReadonlyArray<string | number>

/** The struct behind an AST, if it is one: its property signatures. */
const structOf = (ast: AST.AST): ReadonlyArray<AST.PropertySignature> | undefined => {
  if (ast._tag === "TypeLiteral") return ast.propertySignatures
  if (ast._tag === "Transformation" && ast.from._tag === "TypeLiteral" && ast.to._tag === "TypeLiteral") {
    return ast.from.propertySignatures
  }
  return undefined
}

/** The members of a property type that are structs or arrays (null and undefined dropped). */
const shapes = (ast: AST.AST): Array<AST.AST> =>
  ast._tag === "Union" ? ast.types.flatMap(shapes) : structOf(ast) !== undefined || ast._tag === "TupleType" ? [ast] : []

/** Paths of every optional field of `ast`'s struct(s) under `json`, present or not. */
const optionalPaths = (ast: AST.AST, json: unknown, path: Path): Array<Path> => {
  const out: Array<Path> = []
  for (const shape of shapes(ast)) {
    if (shape._tag === "TupleType") {
      if (!Array.isArray(json)) continue
      json.forEach((element, i) => out.push(...optionalPaths(shape.rest[0]!.type, element, [...path, i])))
      continue
    }
    if (typeof json !== "object" || json === null || Array.isArray(json)) continue
    for (const ps of structOf(shape)!) {
      const name = ps.name as string
      if (ps.isOptional) out.push([...path, name])
      const value = (json as Record<string, unknown>)[name]
      if (value !== undefined && value !== null) out.push(...optionalPaths(ps.type, value, [...path, name]))
    }
  }
  return out
}

const schemaOfData = (resource: string): AST.AST | undefined =>
  Object.hasOwn(Event.DataSchemas, resource) ? Event.DataSchemas[resource as Event.TypedResource].ast : undefined

const allOptionalPaths = (json: { resource: string; data: unknown }): Array<Path> => {
  const data = schemaOfData(json.resource)
  return [
    ...optionalPaths(Event.Envelope.ast, json, []).filter((p) => p.length === 1),
    ...(data === undefined ? [] : optionalPaths(data, json.data, ["data"]))
  ]
}

const clone = <A>(a: A): A => JSON.parse(JSON.stringify(a)) as A

const update = (json: unknown, path: Path, f: (parent: Record<string | number, unknown>, key: string | number) => void) => {
  const copy = clone(json)
  let parent = copy as Record<string | number, unknown>
  for (const key of path.slice(0, -1)) parent = parent[key] as Record<string | number, unknown>
  f(parent, path[path.length - 1]!)
  return copy
}

describe("optional fields accept JSON null as absent", () => {
  it("every optional field of every example, set to null in turn, decodes as if it were absent", () => {
    const checked = new Set<string>()
    const seenResources = new Set<string>()
    // Plus a bare event of each documented resource, so schemas no example uses are walked too
    // (the walk sets absent optional fields to null as well).
    const bare = Object.keys(Event.DataSchemas).map((resource) =>
      JSON.stringify({ id: `bare-${resource}`, resource, type: "created", created: "2024-01-01T00:00:00Z", data: {} })
    )
    for (const line of [...examples, ...bare]) {
      const json = JSON.parse(line) as { resource: string; data: unknown }
      seenResources.add(json.resource)
      for (const path of allOptionalPaths(json)) {
        const nulled = update(json, path, (parent, key) => (parent[key] = null))
        const absent = update(json, path, (parent, key) => delete parent[key])
        const expected = schemaDecode(absent)
        expect(Either.isRight(expected), `${path.join(".")} absent`).toBe(true)
        const decoded = schemaDecode(nulled)
        expect(decoded, `${path.join(".")} null`).toEqual(expected)
        // And through the page decoder: decoded, the field absent, the text kept as sent.
        const raw = JSON.stringify(nulled)
        const [item] = items(`{"items":[${raw}]}`)
        expect(item!._tag, path.join(".")).toBe("Decoded")
        expect(item!._tag === "Decoded" && item!.event).toEqual(Either.getOrThrow(expected))
        expect(item!.raw).toBe(raw)
        checked.add(`${json.resource}:${path.join(".")}`)
      }
    }
    // Every resource, and the nested structs too (attachments, host, attendees, recipients).
    expect(seenResources.size).toBe(10)
    for (
      const path of [
        "messages:appId",
        "messages:data.attachments.0.content",
        "meetings:data.host.displayName",
        "meetings:data.attendees.0.personEmail",
        "meetingMessages:data.recipients.0.guestEmail",
        "call_records:data.callDurationSeconds",
        "attachmentActions:data.inputs",
        "files:data.fileContentUrl"
      ]
    ) expect(checked, path).toContain(path)
  })

  it("reaches the nested structs of the documented resources", () => {
    const message = JSON.parse(examples[0]!) as { resource: string; data: unknown }
    const paths = allOptionalPaths(message).map((p) => p.join("."))
    expect(paths).toContain("data.attachments.0.contentType")
    expect(paths).toContain("data.attachments.0.content")
    expect(paths).toContain("appId")
  })

  it("still fails a required field set to null", () => {
    const json = JSON.parse(examples[0]!) as Record<string, unknown>
    for (const key of ["id", "type", "resource", "created", "data"]) {
      const [item] = items(`{"items":[${JSON.stringify({ ...json, [key]: null })}]}`)
      expect(item!._tag, key).toBe("Undecodable")
    }
  })

  it("keeps null in fields no schema names (they are data, not absent)", () => {
    const json = { ...(JSON.parse(examples[0]!) as Record<string, unknown>), newField: null }
    const [item] = items(`{"items":[${JSON.stringify(json)}]}`)
    expect(item!._tag === "Decoded" && item!.event["newField"]).toBeNull()
  })
})

// ---------------------------------------------------------------------------------------------
// The fast path against Schema, the authority
// ---------------------------------------------------------------------------------------------

/** All paths in a JSON value (objects and arrays, recursively). */
const allPaths = (json: unknown, path: Path = []): Array<Path> => {
  if (Array.isArray(json)) return json.flatMap((v, i) => [[...path, i], ...allPaths(v, [...path, i])])
  if (typeof json === "object" && json !== null) {
    return Object.entries(json).flatMap(([k, v]) => [[...path, k], ...allPaths(v, [...path, k])])
  }
  return []
}

describe("fast path", () => {
  it("is compiled for the envelope and every documented resource", () => {
    expect(PageDecoder.compiled.envelope).toBeDefined()
    for (const resource of Object.keys(Event.DataSchemas)) {
      expect(PageDecoder.compiled.data[resource as Event.TypedResource], resource).toBeDefined()
    }
  })

  it("decodes every example itself (the slow path is for bad items only)", () => {
    for (const line of examples) {
      const json = JSON.parse(line) as unknown
      const fast = PageDecoder.fastDecodeOwned(JSON.parse(line))
      expect(fast).toBeDefined()
      expect(fast).toEqual(Either.getOrThrow(schemaDecode(json)))
    }
  })

  it.prop(
    "agrees with Schema on mutated examples: accepts only what Schema accepts, as Schema decodes it",
    {
      example: FastCheck.integer({ min: 0, max: examples.length - 1 }),
      pick: FastCheck.nat(),
      value: FastCheck.oneof(
        FastCheck.constant(null),
        FastCheck.constant("__delete__"),
        FastCheck.constantFrom("yes", "", "2024-02-30T00:00:00Z", "2024-01-01T00:00:00+00", "messages", "memberships"),
        FastCheck.jsonValue({ maxDepth: 2 })
      )
    },
    ({ example, pick, value }) => {
      const json = JSON.parse(examples[example]!) as unknown
      const paths = allPaths(json)
      const path = paths[pick % paths.length]!
      const mutated = update(
        json,
        path,
        (parent, key) => (value === "__delete__" ? delete parent[key] : (parent[key] = value))
      )
      const expected = schemaDecode(mutated)
      const owned = structuredClone(mutated)
      const fast = PageDecoder.fastDecodeOwned(owned)
      if (Either.isLeft(expected)) expect(fast).toBeUndefined()
      else if (fast !== undefined) expect(fast).toEqual(expected.right)
      // An input it cannot vouch for is left untouched, for Schema to judge as sent.
      if (fast === undefined) expect(owned).toEqual(mutated)
    },
    { fastCheck: { numRuns: 2000 } }
  )

  it("leaves an own __proto__ key to Schema, never to an assignment", () => {
    const json = JSON.parse(`{"__proto__":{"polluted":1},${examples[0]!.slice(1)}`) as Record<string, unknown>
    const [item] = items(`{"items":[${JSON.stringify(json)}]}`)
    expect(item!._tag).toBe("Decoded")
    expect(({} as Record<string, unknown>)["polluted"]).toBeUndefined()
  })
})

// ---------------------------------------------------------------------------------------------
// Bytes
// ---------------------------------------------------------------------------------------------

const concat = (...parts: Array<Uint8Array | string>): Uint8Array => {
  const chunks = parts.map((p) => (typeof p === "string" ? bytesOf(p) : p))
  const out = new Uint8Array(chunks.reduce((n, c) => n + c.length, 0))
  let at = 0
  for (const c of chunks) {
    out.set(c, at)
    at += c.length
  }
  return out
}

const good = (id: string, extra = "") =>
  `{"id":"${id}","resource":"messages","type":"created","created":"2024-01-01T00:00:00Z","data":{"text":"hi"}${extra}}`

describe("item bytes", () => {
  it("are views into the body, byte for byte, with the raw text their decoding", () => {
    const raws = [good("e1", `,"n":1.0,"s":"caf\\u00e9 – ✓ 😀"`), good("e2", `,"big":9223372036854775807`)]
    const body = bytesOf(`{"items":[${raws.join(" , ")}],"next":null}`)
    const decoded = items(body)
    expect(decoded.map((i) => i.raw)).toEqual(raws)
    decoded.forEach((item, i) => {
      expect(item.bytes).toEqual(bytesOf(raws[i]!))
      expect(item.bytes.buffer).toBe(body.buffer)
      expect(item.invalidUtf8).toBe(false)
    })
  })

  it("keep invalid UTF-8 exactly as sent and flag it, only on the items that have it", () => {
    const bad = concat(`{"id":"bad-utf8","resource":"messages","type":"created","created":"2024-01-01T00:00:00Z","data":{"text":"a`, new Uint8Array([0xff, 0xc3, 0x28, 0xed, 0xa0, 0x80]), `z"}}`)
    const body = concat(`{"items":[`, good("e1"), ",", bad, ",", good("e2"), "]}")
    const decoded = items(body)
    expect(decoded.map((i) => i._tag)).toEqual(["Decoded", "Decoded", "Decoded"])
    expect(decoded.map((i) => i.invalidUtf8)).toEqual([false, true, false])
    expect(decoded[1]!.bytes).toEqual(bad)
    expect(decoded[1]!.raw).toContain("\uFFFD")
    expect(decoded[0]!.bytes).toEqual(bytesOf(good("e1")))
    expect(decoded[2]!.bytes).toEqual(bytesOf(good("e2")))
    const single = PageDecoder.decodeItem(bad)
    expect(single.invalidUtf8).toBe(true)
    expect(single.bytes).toEqual(bad)
  })

  it("find item boundaries when a truncated sequence sits right before a quote or a backslash", () => {
    // A decoder must not swallow the ASCII byte after a cut-off sequence; neither may the scanner.
    const bad = concat(
      `{"id":"cut","resource":"messages","type":"created","created":"2024-01-01T00:00:00Z","data":{"text":"x`,
      new Uint8Array([0xe2, 0x82]),
      `\\\\"},"note":"`,
      new Uint8Array([0xc3]),
      `"}`
    )
    const body = concat(`{"items":[`, bad, ",", good("after"), "]}")
    const decoded = items(body)
    expect(decoded.map((i) => i.bytes)).toEqual([bad, bytesOf(good("after"))])
    expect(decoded.map((i) => i.invalidUtf8)).toEqual([true, false])
    expect(decoded.map((i) => i._tag)).toEqual(["Decoded", "Decoded"])
  })

  it("put a pretty-printed item on one line, tokens unchanged", () => {
    const body = bytesOf(JSON.stringify({ items: [JSON.parse(good("e1", `,"note":"a  b"`))] }, null, 2))
    const [item] = items(body)
    expect(item!.bytes.includes(0x0a)).toBe(false)
    expect(new TextDecoder().decode(item!.bytes)).toBe(item!.raw)
    expect(item!.raw).toContain(`"note":"a  b"`)
  })

  it("skip a byte-order mark", () => {
    const decoded = items(concat(new Uint8Array([0xef, 0xbb, 0xbf]), `{"items":[${good("e1")}]}`))
    expect(decoded.map((i) => i.raw)).toEqual([good("e1")])
  })

  it("make equality: the same bytes and fields are equal, other bytes are not", () => {
    const [a] = items(`{"items":[${good("e1")}]}`)
    const [b] = items(`{"items":[${good("e1")}]}`)
    const [c] = items(`{"items":[${good("e1").replace(`"hi"`, `"h\\u0069"`)}]}`)
    expect(Equal.equals(a!, b!)).toBe(false) // different event objects, as Data compares them
    expect(Equal.equals(a!, a!)).toBe(true)
    const [u1] = items(`{"items":[{"id":"x"}]}`)
    const [u2] = items(`{"items":[{"id":"x"}]}`)
    const [u3] = items(`{"items":[{"id" : "x"}]}`)
    expect(Equal.equals(u1!, u2!)).toBe(true)
    expect(Equal.equals(u1!, u3!)).toBe(false)
    expect(c!._tag).toBe("Decoded")
  })

  it.prop(
    "for any items and indentation, in bytes, each item's bytes parse to that item",
    {
      values: FastCheck.array(FastCheck.jsonValue(), { maxLength: 6 }),
      indent: FastCheck.constantFrom(0, 1, 2, "\t")
    },
    ({ indent, values }) => {
      const body = bytesOf(JSON.stringify({ before: values, items: values, after: 1 }, null, indent))
      const decoded = items(body)
      expect(decoded).toHaveLength(values.length)
      decoded.forEach((item, i) => {
        expect(JSON.parse(new TextDecoder().decode(item.bytes))).toEqual(JSON.parse(JSON.stringify(values[i])))
      })
    },
    { fastCheck: { numRuns: 200 } }
  )
})

describe("decodeItem", () => {
  it("accepts bytes or text, trims, and reports non-JSON as Undecodable with its bytes", () => {
    expect(PageDecoder.decodeItem(bytesOf(`  ${good("e1")}\n`)).raw).toBe(good("e1"))
    expect(PageDecoder.decodeItem(` ${good("e1")} `)._tag).toBe("Decoded")
    const bad = PageDecoder.decodeItem(bytesOf("{not json"))
    expect(bad._tag).toBe("Undecodable")
    expect(bad.bytes).toEqual(bytesOf("{not json"))
  })
})

describe("schema sanity", () => {
  it("Event still decodes with Schema directly (the public way)", () => {
    const json = JSON.parse(examples[0]!) as unknown
    expect(Either.isRight(Schema.decodeUnknownEither(Event.Event)(json))).toBe(true)
  })
})

describe("grouped parse (decodeBodyScanned, what decodePageBody uses)", () => {
  /** What an item is, for comparing the two decoders' results. */
  const view = (item: EventsPage.Item) => ({
    tag: item._tag,
    raw: item.raw,
    bytes: Array.from(item.bytes),
    invalidUtf8: item.invalidUtf8,
    event: item._tag === "Decoded" ? JSON.stringify(item.event) : undefined,
    reason: item._tag === "Undecodable" ? item.reason : undefined,
    id: item._tag === "Undecodable" ? item.id : undefined
  })
  const viewOf = (result: Either.Either<ReadonlyArray<EventsPage.Item>, string>) =>
    Either.map(result, (items) => items.map(view))
  /**
   * `decodeBodyScanned` says of `body` exactly what `decodeBody` says, and so does `decodeEvents`
   * (`list()`'s): the same count, events, first undecodable item or reason.
   */
  const same = (body: Uint8Array, groupBytes?: number) => {
    const whole = PageDecoder.decodeBody(body)
    expect(viewOf(PageDecoder.decodeBodyScanned(body, groupBytes))).toEqual(viewOf(whole))
    const events = PageDecoder.decodeEvents(body)
    if (Either.isLeft(whole)) {
      expect(events).toEqual(Either.left(whole.left))
      return
    }
    if (Either.isLeft(events)) throw new Error(`decodeEvents: ${events.left}`)
    expect(events.right.count).toBe(whole.right.length)
    const bad = whole.right.find((item) => item._tag === "Undecodable")
    expect(Either.map(events.right.events, (es) => es.map((e) => JSON.stringify(e)))).toEqual(
      bad === undefined
        ? Either.right(whole.right.map((item) => JSON.stringify((item as EventsPage.Decoded).event)))
        : Either.left({ id: bad.id, reason: bad.reason })
    )
  }

  // Every example, over and over with ids of their own: a body of several groups.
  const exampleItems = (n: number): Array<string> =>
    Array.from({ length: n }, (_, k) => {
      const json = JSON.parse(examples[k % examples.length]!) as Record<string, unknown>
      return JSON.stringify({ ...json, id: `item-${k}` })
    })
  const page = exampleItems(400)
  const bigBody = bytesOf(`{"items":[${page.join(",")}],"next":null}`)

  it("parses a body of several groups in pieces, to the values a whole parse gives", () => {
    expect(bigBody.length).toBeGreaterThan(3 * PageDecoder.GROUP_BYTES)
    const grouped = PageDecoder.parseGrouped(bigBody)
    expect(grouped).toBeDefined()
    expect(grouped!.items).toEqual(JSON.parse(new TextDecoder().decode(bigBody)).items)
    same(bigBody)
    const decoded = PageDecoder.decodeBodyScanned(bigBody)
    if (Either.isLeft(decoded)) throw new Error(decoded.left)
    decoded.right.forEach((item, k) => {
      expect(item.raw).toBe(page[k])
      expect(item.bytes.buffer).toBe(bigBody.buffer)
    })
  })

  it("gives the same items for pretty-printed bodies, a byte-order mark, non-ASCII text and undecodable items", () => {
    const pretty = bytesOf(JSON.stringify({ items: page.map((raw) => JSON.parse(raw)) }, null, 2))
    expect(PageDecoder.parseGrouped(pretty)).toBeDefined()
    same(pretty)
    same(concat(new Uint8Array([0xef, 0xbb, 0xbf]), bigBody))
    const mixed = [good("a", `,"s":"caf\\u00e9 – ✓ 😀"`), `{"id":42,"created":"yesterday"}`, `"not an object"`, good("b")]
    same(bytesOf(`{"items":[${[...page.slice(0, 150), ...mixed, ...page.slice(150)].join(",")}]}`))
    // A non-ASCII byte after an odd run of backslashes: not transcoded, so the whole-body path decides.
    same(bytesOf(`{"items":[${[...page.slice(0, 100), good("c", `,"s":"\\é"`)].join(",")}]}`))
    // Invalid UTF-8: judged item by item, as before.
    same(concat(`{"items":[${page.slice(0, 100).join(",")},`, good("d", `,"x":"`), new Uint8Array([0xff]), `"}]}`))
  })

  it("checks each span found by the separator by parsing it alone, and scans byte by byte where one does not parse", () => {
    const attendees = (id: string) => good(id, `,"attendees":[{"id":"p1"},{"id":"p2"},{"id":"p3"}]`)
    const bodies = [
      // A nested array of objects whose first key is the items' own: candidate spans inside an item.
      [good("a"), good("b"), attendees("c"), good("d"), attendees("e")],
      [good("a"), attendees("b"), good("c")],
      // As many spans as items, all wrong after the second: one starts inside an item, the next
      // runs on past a boundary the separator misses (a space). Only a parse of each span alone
      // tells; a parse of them together (same bytes, same count) would not.
      [good("a"), good("b"), good("c", `,"attendees":[{"id":"p1"},{"id":"p2"}]`), ` ${good("d")}`, good("e")],
      // The layout changes after the first two (spacing, then the first key): the rest byte by byte.
      [good("a"), good("b"), ` ${good("c")}`, good("d")],
      [good("a"), good("b"), `{"resource":"messages","id":"c","type":"created","created":"2024-01-01T00:00:00Z"}`, good("d")],
      // Non-ASCII text anywhere, the last character of an item and its first field's value: texts
      // sliced out of a transcoded group.
      [good("é"), good("b", `,"s":"😀"`), good("c", `,"s":"x€"`), good("\\u00e9"), good("d", `,"t":"ü\\\\"`), good("e")],
      // Items that are not objects after the first two, and undecodable ones.
      [good("a"), good("b"), `"text"`, `{"id":42}`, good("c"), `[1,{"id":"x"}]`, good("d")]
    ].map((items) => items.join(","))
    // An earlier items array, replaced by a later `items` key, whose guess goes wrong: its spans
    // are never parsed, and the scan, thrown out of step, met a nested `items` inside an item and
    // took it for the last (found by a review's fuzz). Events the server did not list as items
    // would have been archived.
    for (
      const text of [
        `{"items":[{"k":1},{"k":2},{"k":[{"k":3},{"k":4}],"items":[5,6]}],"items":[]}`,
        `{"items":[${good("a")},${good("b")},${attendees("c")},{"id":"x","items":[${good("d")},${good("e")}]}],"items":[]}`,
        `{"items":[${good("a")},${good("b")},${attendees("c")}],"items":[${good("d")}]}`
      ]
    ) {
      for (const groupBytes of [1, 64, undefined]) same(bytesOf(text), groupBytes)
      expect(PageDecoder.parseGrouped(bytesOf(text))?.items).toEqual(JSON.parse(text).items)
    }
    // Compact pages, non-ASCII text included, keep the spans found by the separator.
    for (const items of [page.slice(0, 50).join(","), bodies[5]!]) {
      const grouped = PageDecoder.parseGrouped(bytesOf(`{"items":[${items}]}`))
      expect(grouped?.guessed).toBe(true)
      expect(grouped!.items).toEqual(JSON.parse(`[${items}]`))
    }
    for (const items of bodies) {
      // The separator met again after the items array, in the envelope: the last span runs past it.
      for (const text of [`{"items":[${items}]}`, `{"items":[${items}],"more":[${good("x")},${good("y")},${good("z")}]}`]) {
        const body = bytesOf(text)
        for (const groupBytes of [1, 200, undefined]) {
          same(body, groupBytes)
          const grouped = PageDecoder.parseGrouped(body, groupBytes)
          expect(grouped, text).toBeDefined()
          expect(grouped!.items).toEqual(JSON.parse(text).items)
        }
      }
    }
  })

  it("reads the envelope as JSON.parse does: the last items key, escaped keys, empty arrays", () => {
    for (
      const body of [
        `{"items":[${good("a")}],"items":[${good("b")}]}`,
        `{"\\u0069tems":[${good("a")}],"next":{"items":[1,2]}}`,
        `{"items":[${good("a")}],"\\u0069tems":[${good("b")},${good("c")}]}`,
        `{"items":[ ]}`,
        `{"items":[]}`,
        `{"items":[${good("a")}],"items":"nope"}`,
        ` { "items" : [ ${good("a")} , ${good("b")} ] , "x" : [ ] } `
      ]
    ) {
      same(bytesOf(body))
      const grouped = PageDecoder.parseGrouped(bytesOf(body))
      if (grouped !== undefined) expect(grouped.items).toEqual(JSON.parse(body).items)
    }
  })

  it("declines every body that is not JSON, at any separator, and says what the whole-body path says", { timeout: 30_000 }, () => {
    // Each separator in turn made invalid: doubled, dropped, or doubled with blanks. Items of about
    // 4 KiB: a few groups, with a boundary every dozen items or so.
    const count = 50
    const raws = page.slice(0, count).map((raw) => raw.replace(/}$/, `,"pad":"${"p".repeat(4000)}"}`))
    expect(raws.join(",").length).toBeGreaterThan(2 * PageDecoder.GROUP_BYTES)
    const bodies: Array<string> = []
    for (let k = 1; k < count; k++) {
      const before = raws.slice(0, k).join(",")
      const after = raws.slice(k).join(",")
      bodies.push(`{"items":[${before},,${after}]}`, `{"items":[${before}${after}]}`, `{"items":[${before} ,\t, ${after}]}`)
    }
    bodies.push(
      `{"items":[,${raws.join(",")}]}`,
      `{"items":[${raws.join(",")},]}`,
      `{"items":[${raws.join(",")}]`,
      `{"items":[${raws.join(",")}]}}`,
      `{"items":[${raws.join(",")}]} x`,
      `{"items":[${raws.join(",")}}`,
      `{"items":[}`,
      `{"items":[${raws.join(",")}],}`,
      `{"items":[${raws.join(",")}]`.slice(0, 50_000)
    )
    for (const text of bodies) {
      const body = bytesOf(text)
      expect(PageDecoder.parseGrouped(body), text.slice(0, 80)).toBeUndefined()
      expect(Either.isLeft(PageDecoder.decodeBodyScanned(body))).toBe(true)
      same(body)
    }
  })

  it.prop(
    "for any items, filler and indentation, the same items as the whole-body decoder",
    {
      values: FastCheck.array(FastCheck.jsonValue(), { maxLength: 8 }),
      filler: FastCheck.array(FastCheck.integer({ min: 1_000, max: 80_000 }), { maxLength: 4 }),
      indent: FastCheck.constantFrom(0, 2, "\t")
    },
    ({ filler, indent, values }) => {
      const all = [...values, ...filler.map((n) => ({ pad: "x".repeat(n), n })), ...values]
      const body = bytesOf(JSON.stringify({ before: values, items: all, after: 1 }, null, indent))
      same(body)
      const grouped = PageDecoder.parseGrouped(body)
      expect(grouped).toBeDefined()
      expect(grouped!.items).toEqual(JSON.parse(JSON.stringify(all)))
    },
    { timeout: 30_000, fastCheck: { numRuns: 40 } }
  )

  it("refuses a byte-order mark at the start of an item, and a key that is not a JSON string, as JSON.parse does", () => {
    const bom = "\uFEFF"
    for (const text of [`{"items":[${bom}"x"]}`, `{"items":["a",${bom}"x"]}`, `{"\\q":1,"items":[]}`, `{"items":[],"a\\`, `{\\}`]) {
      const body = bytesOf(text)
      expect(Either.isLeft(PageDecoder.decodeBody(body)), text).toBe(true)
      for (const groupBytes of [1, 64, undefined]) same(body, groupBytes)
    }
  })

  // Bodies in the shapes a hostile or broken server sends, then bytes inserted, replaced, deleted
  // or cut: whatever comes of it, never a throw, and the whole-body decoder's verdict and items.
  const fragments = ["\"", "\\", "[", "]", "{", "}", ",", ":", " ", "\n", "\uFEFF", "é", "\u00e9", "\uD83D\uDE00", "a", "1"]
  const scalars = [`"x"`, `"a,b"`, `"]"`, `"\\""`, `"\\\\"`, `"é"`, `"\\u00e9"`, `"😀"`, `"\uFEFF"`, `"{\\"items\\":[1]}"`, "1", "-0", "1e3", "12345678901234567890", "true", "null", "[]", "{}", `[1,"]",{}]`]
  // Items holding arrays of objects keyed like the examples, and an `items` key of their own: where
  // the separator guessed from the first items is met inside an item.
  const nested = [`{"id": "n", "x": [{"id": 1},{"id": 2}], "items": [1, 2]}`, `{"id": "m", "items": [{"id": "a"},{"id": "b"}]}`]
  const itemArb = FastCheck.oneof(FastCheck.constantFrom(...examples.slice(0, 12), ...nested), FastCheck.constantFrom(...scalars))
  const wsArb = FastCheck.constantFrom("", "", " ", "\n", "\r\n  ", "\t")
  const keyArb = FastCheck.constantFrom(`"items"`, `"items"`, `"\\u0069tems"`, `"item\\u0073"`, `"next"`, `"a\\"b"`)
  const entryArb = FastCheck.tuple(keyArb, wsArb, FastCheck.oneof(
    // Items with blanks around them, or side by side (what the separator is guessed from).
    FastCheck.tuple(FastCheck.array(FastCheck.tuple(wsArb, itemArb, wsArb), { maxLength: 6 }), wsArb, FastCheck.boolean())
      .map(([items, ws, tight]) => `[${items.map(([a, item, b]) => (tight ? item : a + item + b)).join(",")}${ws}]`),
    FastCheck.constantFrom(...scalars)
  )).map(([key, ws, value]) => `${ws}${key}${ws}:${ws}${value}`)
  const bodyArb = FastCheck.tuple(FastCheck.boolean(), wsArb, FastCheck.array(entryArb, { minLength: 1, maxLength: 3 }))
    .map(([bom, ws, entries]) => `${bom ? "\uFEFF" : ""}${ws}{${entries.join(",")}}${ws}`)
  const editArb = FastCheck.record({
    at: FastCheck.nat(),
    op: FastCheck.constantFrom("insert", "replace", "delete", "cut"),
    bytes: FastCheck.oneof(
      FastCheck.constantFrom(...fragments).map(bytesOf),
      FastCheck.constantFrom(new Uint8Array([0xff]), new Uint8Array([0xc3]), new Uint8Array([0xed, 0xa0, 0x80]), new Uint8Array([0]))
    )
  })

  it.prop(
    "on broken and hostile bodies, never throws and says what the whole-body decoder says",
    { text: bodyArb, edits: FastCheck.array(editArb, { maxLength: 3 }), groupBytes: FastCheck.integer({ min: 1, max: 300 }) },
    ({ edits, groupBytes, text }) => {
      let bytes = Array.from(bytesOf(text))
      for (const { at, bytes: piece, op } of edits) {
        const p = at % (bytes.length + 1)
        if (op === "insert") bytes.splice(p, 0, ...piece)
        else if (op === "replace") bytes.splice(p, 1, ...piece)
        else if (op === "delete") bytes.splice(p, 1)
        else bytes = bytes.slice(0, p)
      }
      same(new Uint8Array(bytes), groupBytes)
    },
    { timeout: 60_000, fastCheck: { numRuns: 1500 } }
  )
})
