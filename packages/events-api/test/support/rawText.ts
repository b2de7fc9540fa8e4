/**
 * The byte scanner of `rawJson.ts` for text, as the tests write bodies: what the library does with
 * bytes, on a string.
 */
import { compactBytes, itemSpans } from "../../src/internal/rawJson.js"

const encoder = new TextEncoder()
const utf8 = new TextDecoder("utf-8")

/** `compactBytes` for text. */
export const compact = (raw: string): string =>
  !raw.includes("\n") && !raw.includes("\r") ? raw : utf8.decode(compactBytes(encoder.encode(raw)))

/**
 * The raw text of every element of the top-level `items` array of a valid JSON text, compacted to
 * a single line: `itemSpans` for text.
 */
export const rawItems = (text: string): Array<string> | undefined => {
  const bytes = encoder.encode(text)
  const spans = itemSpans(bytes)
  if (spans === undefined) return undefined
  const out: Array<string> = []
  for (let k = 0; k < spans.length; k += 2) out.push(utf8.decode(compactBytes(bytes.subarray(spans[k]!, spans[k + 1]!))))
  return out
}
