/**
 * Slices the raw text of each element of a JSON body's top-level `items` array.
 *
 * `JSON.parse` followed by `JSON.stringify` is not what the server sent: number spellings
 * (`1.0`, `1e3`), escapes (`\u00e9`) and precision beyond 2^53 change. The archive must keep
 * the item exactly as sent, so the text of each item is cut out of the body itself.
 *
 * Precondition: `text` is valid JSON (the caller has `JSON.parse`d it already), which keeps
 * this scanner small: it only has to find boundaries, not validate.
 */

const isWs = (c: number) => c === 0x20 || c === 0x09 || c === 0x0a || c === 0x0d

const skipWs = (text: string, i: number): number => {
  while (i < text.length && isWs(text.charCodeAt(i))) i++
  return i
}

/** Index just past the string literal starting at `i` (which holds `"`). */
const endOfString = (text: string, i: number): number => {
  i++
  while (i < text.length) {
    const c = text.charCodeAt(i)
    if (c === 0x5c /* \ */) i += 2
    else if (c === 0x22 /* " */) return i + 1
    else i++
  }
  return i
}

/** Index just past the JSON value starting at `i`. */
const endOfValue = (text: string, i: number): number => {
  const c = text[i]
  if (c === "\"") return endOfString(text, i)
  if (c === "{" || c === "[") {
    let depth = 0
    while (i < text.length) {
      const ch = text[i]
      if (ch === "\"") {
        i = endOfString(text, i)
        continue
      }
      if (ch === "{" || ch === "[") depth++
      else if (ch === "}" || ch === "]") {
        depth--
        if (depth === 0) return i + 1
      }
      i++
    }
    return i
  }
  while (i < text.length && !",}] \t\n\r".includes(text[i]!)) i++
  return i
}

/**
 * Removes insignificant whitespace outside string literals. Used only when an item spans lines
 * (a pretty-printed body): NDJSON needs one line per item, and every token keeps its exact text.
 */
export const compact = (raw: string): string => {
  if (!raw.includes("\n") && !raw.includes("\r")) return raw
  let out = ""
  let i = 0
  while (i < raw.length) {
    const ch = raw[i]!
    if (ch === "\"") {
      const end = endOfString(raw, i)
      out += raw.slice(i, end)
      i = end
    } else {
      if (!isWs(raw.charCodeAt(i))) out += ch
      i++
    }
  }
  return out
}

/**
 * The raw text of every element of the top-level `items` array of a valid JSON object, compacted
 * to a single line. `undefined` when the body is not an object with an `items` array. As with
 * `JSON.parse`, the last `items` key wins.
 */
export const rawItems = (text: string): Array<string> | undefined => {
  let i = skipWs(text, 0)
  if (text[i] !== "{") return undefined
  i = skipWs(text, i + 1)
  let found: Array<string> | undefined
  while (i < text.length && text[i] !== "}") {
    const keyEnd = endOfString(text, i)
    const key = JSON.parse(text.slice(i, keyEnd)) as string
    i = skipWs(text, keyEnd) + 1 // past ':'
    i = skipWs(text, i)
    if (key === "items" && text[i] === "[") {
      const items: Array<string> = []
      i = skipWs(text, i + 1)
      while (text[i] !== "]") {
        const end = endOfValue(text, i)
        items.push(compact(text.slice(i, end)))
        i = skipWs(text, end)
        if (text[i] === ",") i = skipWs(text, i + 1)
      }
      i++
      found = items
    } else {
      if (key === "items") found = undefined
      i = endOfValue(text, i)
    }
    i = skipWs(text, i)
    if (text[i] === ",") i = skipWs(text, i + 1)
  }
  return found
}
