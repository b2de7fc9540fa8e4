import { describe, expect, it } from "@effect/vitest"
import * as FastCheck from "effect/FastCheck"
import { itemsArray } from "../src/internal/rawJson.js"
import { compact, rawItems } from "./support/rawText.js"

describe("rawItems", () => {
  it("slices each item exactly as written: number spellings, escapes, big integers", () => {
    const items = [
      `{"n":1.0,"e":1e3,"E":-2.50E-3,"big":9223372036854775808,"neg":-0}`,
      `{"s":"caf\\u00e9 \\"quoted\\" back\\\\slash \\/ tab\\t"}`,
      `{"tricky":"]}],{[\\"\\\\","after":true}`,
      `12345678901234567890`,
      `"a string item with ] and } and \\" and \\\\"`,
      `null`,
      `[1,[2,[3]],{"a":[]}]`
    ]
    const body = `{"items":[${items.join(",")}]}`
    expect(() => JSON.parse(body)).not.toThrow()
    expect(rawItems(body)).toEqual(items)
  })

  it("handles whitespace around keys, colons, commas and items on one line", () => {
    const body = ` { "before" : { "items" : [ "nested, not top-level" ] } , "items" : [ 1.50 , { "a" : "x y" } , true ] , "after" : 0 } `
    expect(rawItems(body)).toEqual(["1.50", `{ "a" : "x y" }`, "true"])
  })

  it("compacts a pretty-printed body to one line per item, string contents unchanged", () => {
    const body = [
      "{",
      "  \"items\": [",
      "    {",
      "      \"text\": \"two  spaces,\\ttab and\\nescaped newline\",",
      "      \"n\": 1.0,",
      "      \"list\": [",
      "        1e3,",
      "        \"x : y\"",
      "      ]",
      "    },",
      "\t\t7",
      "  ]",
      "}"
    ].join("\r\n")
    const raws = rawItems(body)!
    expect(raws).toEqual([
      `{"text":"two  spaces,\\ttab and\\nescaped newline","n":1.0,"list":[1e3,"x : y"]}`,
      "7"
    ])
    for (const raw of raws) expect(raw).not.toMatch(/[\r\n]/)
  })

  it("lets the last items key win, as JSON.parse does", () => {
    expect(rawItems(`{"items":[1,2],"items":[3]}`)).toEqual(["3"])
    expect(rawItems(`{"items":[1,2],"items":null}`)).toBeUndefined()
    expect(rawItems(`{"items":null,"items":[4]}`)).toEqual(["4"])
  })

  it("reads keys with escapes, and an empty items array", () => {
    expect(rawItems(`{"it\\"ems":[9],"\\u0069tems":[]}`)).toEqual([])
    expect(rawItems(`{"\\u0069tems":[5]}`)).toEqual(["5"])
  })

  it("is undefined when the body is not an object with an items array", () => {
    expect(rawItems(`[{"items":[1]}]`)).toBeUndefined()
    expect(rawItems(`{"data":[1]}`)).toBeUndefined()
    expect(rawItems(`{"items":{"0":1}}`)).toBeUndefined()
    expect(rawItems(`"items"`)).toBeUndefined()
    expect(rawItems(`{}`)).toBeUndefined()
  })

  it.prop(
    "for any JSON items and indentation, each slice parses to its item",
    {
      items: FastCheck.array(FastCheck.jsonValue(), { maxLength: 8 }),
      indent: FastCheck.oneof(
        FastCheck.integer({ min: 0, max: 10 }),
        FastCheck.constantFrom("\t", " \t", "\n", "  ")
      ),
      extra: FastCheck.jsonValue()
    },
    ({ extra, indent, items }) => {
      // Other keys before and after, so the scanner has to skip them.
      const body = JSON.stringify({ before: extra, items, after: extra }, null, indent)
      const expected = (JSON.parse(body) as { items: Array<unknown> }).items
      const raws = rawItems(body)
      expect(raws).toHaveLength(expected.length)
      raws!.forEach((raw, i) => {
        expect(raw).not.toMatch(/[\r\n]/)
        expect(JSON.parse(raw)).toEqual(expected[i])
      })
    },
    { fastCheck: { numRuns: 300 } }
  )
})

describe("compact", () => {
  it("leaves single-line text untouched", () => {
    expect(compact(`{ "a" : 1 }`)).toBe(`{ "a" : 1 }`)
  })

  it("removes whitespace between tokens only", () => {
    expect(compact(`{\n  "a b" : [ 1 ,\n "c\\" \\n d" ]\n}`)).toBe(`{"a b":[1,"c\\" \\n d"]}`)
  })
})

describe("itemsArray", () => {
  const bytes = (text: string) => new TextEncoder().encode(text)

  it("finds where the items array opens and closes, and its elements", () => {
    const text = `{"a":[1],"items":[ {"x":"]"} , 2 ],"b":{}}`
    const found = itemsArray(bytes(text))!
    expect(text[found.open]).toBe("[")
    expect(text[found.close]).toBe("]")
    expect(found.open).toBe(text.indexOf(`[ {`))
    expect(found.spans).toEqual([text.indexOf(`{"x"`), text.indexOf(` , 2`), text.indexOf(`2 ]`), text.indexOf(`2 ]`) + 1])
  })

  it("with guess, finds the elements after the second by the separator between the first two, and says so", () => {
    const items = [`{"id":"a","n":[1]}`, `{"id":"b"}`, `{"id":"c","s":"}"}`, `{"id":"d"}`, `{"id":"e","o":{"x":1}}`]
    for (const sep of [",", " ,\n  "]) {
      const b = bytes(`{"items":[${items.join(sep)}]}`)
      const exact = itemsArray(b)!
      const guessed = itemsArray(b, true)!
      expect(exact.guessed).toBe(false)
      expect(guessed.guessed).toBe(true)
      expect(guessed).toEqual({ ...exact, guessed: true })
    }
    // Not objects, or a second element without a key: nothing to go by.
    for (const text of [`{"items":[1,2,3,4]}`, `{"items":[{"id":1},{},{"id":2},{"id":3}]}`, `{"items":[{"id":1},{"id":2}]}`]) {
      expect(itemsArray(bytes(text), true)!.guessed).toBe(false)
    }
    // A nested array of objects with the same first key: a guessed span that is not an element
    // (the caller's parse of it alone fails, and it scans byte by byte).
    const nested = `{"items":[{"a":1},{"a":2},{"a":[{"a":3},{"a":4}]},{"a":5}]}`
    const guessed = itemsArray(bytes(nested), true)!
    expect(guessed.guessed).toBe(true)
    expect(guessed.spans).not.toEqual(itemsArray(bytes(nested))!.spans)
    expect(nested.slice(guessed.spans[4], guessed.spans[5])).toBe(`{"a":[{"a":3}`)
    // Another items key after a guessed array: scanned again byte by byte, as without guessing.
    const twice = `{"items":[{"k":1},{"k":2},{"k":[{"k":3},{"k":4}],"items":[5,6]}],"items":[]}`
    expect(itemsArray(bytes(twice), true)).toEqual(itemsArray(bytes(twice)))
    expect(itemsArray(bytes(twice))).toEqual({ open: twice.length - 3, close: twice.length - 2, spans: [], guessed: false })
  })

  it("gives up, without looping, on what no JSON array holds", () => {
    for (const text of [`{"items":[}`, `{"items":[1 2]}`, `{"items":[1,}`, `{"items":[{"a":1}`, `{"items":[:]}`, `{"items":[,]}`]) {
      const found = itemsArray(bytes(text))
      if (found !== undefined) expect(found.close).toBeLessThan(text.length)
    }
    expect(itemsArray(bytes(`{"items":[}`))).toBeUndefined()
    expect(itemsArray(bytes(`{"items":[1 2]}`))).toBeUndefined()
    expect(itemsArray(bytes(`{"items":[1,,2]}`))).toBeUndefined()
    expect(itemsArray(bytes(`{"items":[{"a":1}{"b":2}]}`))).toBeUndefined()
  })

  it.prop(
    "ends on any bytes, with spans in order and within the body",
    { junk: FastCheck.uint8Array({ maxLength: 200 }), text: FastCheck.string({ unit: FastCheck.constantFrom(..."{}[],:\"\\ 1a\n") }) },
    ({ junk, text }) => {
      for (const b of [junk, bytes(`{"items":[${text}`), bytes(`{"items":${text}]}`), bytes(`{${text}`)]) {
        for (const guess of [false, true]) {
          const found = itemsArray(b, guess)
          if (found === undefined) continue
          let last = found.open
          for (const at of found.spans) {
            expect(at).toBeGreaterThanOrEqual(last)
            last = at
          }
          expect(last).toBeLessThanOrEqual(found.close)
        }
      }
    },
    { fastCheck: { numRuns: 300 } }
  )
})
