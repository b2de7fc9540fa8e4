import { describe, expect, it } from "@effect/vitest"
import * as Either from "effect/Either"
import * as FastCheck from "effect/FastCheck"
import { asciiJsonText as chosen, portableAsciiJsonText, textOffsets } from "../src/internal/asciiJson.js"
import { nodeBuffer } from "../src/internal/nodeBuffer.js"
import * as PageDecoder from "../src/internal/pageDecoder.js"

const utf8 = (s: string) => new TextEncoder().encode(s)
const decoded = (bytes: Uint8Array) => new TextDecoder().decode(bytes)

it("runs on node:buffer on this Node", () => {
  // Node ≥ 20.16 has process.getBuiltinModule; the suite runs on such a Node.
  expect(nodeBuffer !== undefined).toBe(typeof process.getBuiltinModule === "function")
})

// The same properties of both implementations: the one this runtime picked, and the portable one.
describe.each([["asciiJsonText", chosen], ["portableAsciiJsonText", portableAsciiJsonText]] as const)("%s", (_, asciiJsonText) => {
  it.prop(
    "is ASCII, and JSON.parse reads it as the UTF-8 decoding of the bytes",
    {
      value: FastCheck.jsonValue({ maxDepth: 3 }).chain((v) =>
        FastCheck.tuple(FastCheck.constant(v), FastCheck.fullUnicodeString(), FastCheck.boolean())
      ),
      // Where the bytes start in their buffer: the scan reads aligned words.
      offset: FastCheck.integer({ min: 0, max: 7 })
    },
    ({ offset, value: [value, extra, bom] }) => {
      // Raw non-ASCII characters, escapes and backslashes next to each other.
      const text = JSON.stringify({ items: [value, extra, `\\${extra}`, `${extra}\\`], e: "\\u00e9\u00e9\\\\\u00e9" })
      const encoded = utf8(bom ? `\uFEFF${text}` : text)
      const bytes = new Uint8Array(encoded.length + offset).subarray(offset)
      bytes.set(encoded)
      const ascii = asciiJsonText(bytes)
      expect(ascii).toBeDefined()
      expect(/^[\x00-\x7f]*$/.test(ascii!)).toBe(true)
      expect(JSON.parse(ascii!)).toEqual(JSON.parse(decoded(bytes)))
    },
    { fastCheck: { numRuns: 500 } }
  )

  it.prop(
    "finds sparse non-ASCII characters in long ASCII stretches, at any distance apart",
    {
      // Gaps of ASCII from none to far beyond the spans the native search starts with (512 bytes,
      // doubling), each followed by a non-ASCII character, maybe after backslashes.
      pieces: FastCheck.array(
        FastCheck.tuple(
          FastCheck.integer({ min: 0, max: 70_000 }),
          FastCheck.constantFrom("é", "€", "\u{1F600}", "\uFEFF", "\u07FF", "\u0800", "\uFFFF", "é€\u{10FFFF}"),
          // Backslashes in the value: escaped in the body, so each char follows an even run of them.
          FastCheck.integer({ min: 0, max: 3 })
        ),
        { maxLength: 12 }
      ),
      offset: FastCheck.integer({ min: 0, max: 7 })
    },
    ({ offset, pieces }) => {
      const items = pieces.map(([gap, char, slashes]) => "a".repeat(gap) + "\\".repeat(slashes) + char)
      const encoded = utf8(JSON.stringify({ items }))
      const bytes = new Uint8Array(encoded.length + offset).subarray(offset)
      bytes.set(encoded)
      const ascii = asciiJsonText(bytes)
      expect(ascii).toBeDefined()
      expect(/^[\x00-\x7f]*$/.test(ascii!)).toBe(true)
      expect(JSON.parse(ascii!)).toEqual({ items })
    },
    { fastCheck: { numRuns: 60 } }
  )

  it.prop(
    "says where the text moves away from the bytes, so that a piece's text is a slice of the whole's",
    {
      values: FastCheck.array(FastCheck.jsonValue({ maxDepth: 2 }), { minLength: 1, maxLength: 8 }),
      words: FastCheck.array(FastCheck.fullUnicodeString({ maxLength: 6 }), { maxLength: 8 }),
      bom: FastCheck.boolean()
    },
    ({ bom, values, words }) => {
      // Pieces separated by commas, as items are: each starts and ends on an ASCII byte.
      const pieces = [...values, ...words].map((v) => utf8(JSON.stringify(v)))
      const mark = bom ? 3 : 0
      const bytes = new Uint8Array(mark + pieces.reduce((n, p) => n + p.length + 1, 0))
      bytes.set([0xef, 0xbb, 0xbf].slice(0, mark))
      const spans: Array<number> = []
      let at = mark
      for (const piece of pieces) {
        bytes.set(piece, at)
        spans.push(at, at + piece.length)
        bytes[at + piece.length] = 0x2c
        at += piece.length + 1
      }
      const shifts: Array<number> = []
      const text = asciiJsonText(bytes, shifts)!
      expect(text).toBeDefined()
      const textAt = textOffsets(shifts)
      pieces.forEach((piece, k) => {
        expect(text.slice(textAt(spans[2 * k]!), textAt(spans[2 * k + 1]!))).toBe(asciiJsonText(piece))
      })
      expect(textAt(bytes.length)).toBe(text.length)
    },
    { fastCheck: { numRuns: 300 } }
  )

  it("keeps a U+FEFF inside a string, drops only a leading byte-order mark", () => {
    const bytes = utf8(`\uFEFF{"a":"\uFEFFx\uFEFF","b":"\u{1F600}"}`)
    expect(JSON.parse(asciiJsonText(bytes)!)).toEqual({ a: "\uFEFFx\uFEFF", b: "\u{1F600}" })
  })

  it("declines invalid UTF-8 and a non-ASCII character after an odd run of backslashes", () => {
    expect(asciiJsonText(new Uint8Array([0x7b, 0x22, 0x61, 0x22, 0x3a, 0x22, 0xff, 0x22, 0x7d]))).toBeUndefined()
    expect(asciiJsonText(utf8(`{"a":"\\é"}`))).toBeUndefined()
    expect(asciiJsonText(utf8(`{"a":"\\\\\\é"}`))).toBeUndefined()
    // An even run is an escaped backslash, then the character itself.
    expect(JSON.parse(asciiJsonText(utf8(`{"a":"\\\\é"}`))!)).toEqual({ a: "\\é" })
  })

  it("leaves decodeBody's verdicts and messages as JSON.parse gives them on the decoded body", () => {
    for (const body of [`{"items":["\\é"]}`, `{"items":[1]é}`, `\uFEFF\uFEFF{"items":[]}`, `{"items":["é"`]) {
      const bytes = utf8(body)
      let message = ""
      try {
        JSON.parse(decoded(bytes))
      } catch (e) {
        message = (e as Error).message
      }
      expect(message).not.toBe("")
      expect(PageDecoder.decodeBody(bytes)).toEqual(Either.left(`the body is not JSON (${message})`))
      expect(PageDecoder.decodeEvents(bytes)).toEqual(Either.left(`the body is not JSON (${message})`))
    }
  })
})
