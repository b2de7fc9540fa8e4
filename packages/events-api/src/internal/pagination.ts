/**
 * Following `Link: <url>; rel="next"` safely (internal: not part of the public API).
 *
 * The next URL is opaque (its cursor parameter is undocumented), so it is followed as given,
 * except for two repairs of known Webex defects, and never to a foreign origin: the bearer
 * token goes to the configured API's origin and nowhere else.
 *
 * @since 0.1.0
 */
import * as Option from "effect/Option"

/** One link of a `Link` header: its target as written and its parameters (names lower-cased). */
export interface LinkValue {
  readonly target: string
  readonly params: ReadonlyArray<readonly [string, string]>
}

/**
 * Parses `Link` header values (RFC 8288 §3) the way `http-link-header` does: a link runs from
 * `<target>` through its `;`-separated parameters to the next `,` *outside* a quoted string, so
 * `title="x, <y>"` cannot cut a link in two or pose as a target. Malformed links are skipped up
 * to the next comma.
 */
export const parseLinks = (header: string): ReadonlyArray<LinkValue> => {
  const links: Array<LinkValue> = []
  const n = header.length
  let i = 0
  const skipSpace = () => {
    while (i < n && (header[i] === " " || header[i] === "\t")) i++
  }
  /** Skips to just after the next top-level comma (quoted strings honoured). */
  const skipToComma = () => {
    while (i < n && header[i] !== ",") {
      if (header[i] === '"') readQuoted()
      else i++
    }
    i++
  }
  /** Reads a quoted-string starting at `"`, unescaping `\x`. */
  const readQuoted = (): string => {
    let out = ""
    i++
    while (i < n && header[i] !== '"') {
      if (header[i] === "\\" && i + 1 < n) i++
      out += header[i]
      i++
    }
    i++
    return out
  }
  while (i < n) {
    skipSpace()
    if (header[i] === ",") {
      i++
      continue
    }
    if (header[i] !== "<") {
      skipToComma()
      continue
    }
    const close = header.indexOf(">", i)
    if (close < 0) break
    const target = header.slice(i + 1, close).trim()
    i = close + 1
    const params: Array<readonly [string, string]> = []
    for (;;) {
      skipSpace()
      if (i >= n || header[i] === ",") break
      if (header[i] !== ";") {
        // Junk after a link: drop the rest of it, keep what was read.
        skipToComma()
        i--
        break
      }
      i++
      skipSpace()
      const nameStart = i
      while (i < n && !"=;, \t".includes(header[i]!)) i++
      const name = header.slice(nameStart, i).toLowerCase()
      skipSpace()
      let value = ""
      if (header[i] === "=") {
        i++
        skipSpace()
        if (header[i] === '"') value = readQuoted()
        else {
          const valueStart = i
          while (i < n && !";, \t".includes(header[i]!)) i++
          value = header.slice(valueStart, i)
        }
      }
      if (name !== "") params.push([name, value])
    }
    links.push({ target, params })
  }
  return links
}

/**
 * The `rel="next"` target of one or more `Link` header values (RFC 8288), resolved against the
 * URL of the page it came with. Only the first `rel` parameter of a link counts (RFC 8288 §3.3).
 */
export const nextLink = (linkHeader: string | undefined, pageUrl: string): Option.Option<string> => {
  if (linkHeader === undefined) return Option.none()
  for (const link of parseLinks(linkHeader)) {
    const rel = link.params.find(([name]) => name === "rel")
    if (rel === undefined || !rel[1].toLowerCase().split(/\s+/).includes("next")) continue
    try {
      return Option.some(new URL(link.target, pageUrl).toString())
    } catch {
      return Option.none()
    }
  }
  return Option.none()
}

/** What a repair changed, for the debug log. */
export interface Repair {
  readonly url: string
  readonly repaired: ReadonlyArray<string>
}

/**
 * Sets (or, given `undefined`, removes) query parameters by editing the query text, so every other
 * parameter keeps the exact spelling the server gave it: `URLSearchParams` would re-encode the
 * opaque cursor (`%20` becomes `+`, `:` becomes `%3A`), and a server decoding strictly per RFC 3986
 * could then read a different cursor.
 */
const editQuery = (url: string, edits: Readonly<Record<string, string | undefined>>): string => {
  const hash = url.indexOf("#")
  const beforeHash = hash < 0 ? url : url.slice(0, hash)
  const fragment = hash < 0 ? "" : url.slice(hash)
  const q = beforeHash.indexOf("?")
  const path = q < 0 ? beforeHash : beforeHash.slice(0, q)
  const segments = q < 0 ? [] : beforeHash.slice(q + 1).split("&").filter((segment) => segment !== "")
  const param = (key: string, value: string) => `${encodeURIComponent(key)}=${encodeURIComponent(value)}`
  const out: Array<string> = []
  const done = new Set<string>()
  for (const segment of segments) {
    const key = keyOf(segment)
    if (!Object.hasOwn(edits, key)) {
      out.push(segment)
      continue
    }
    // Like `URLSearchParams.set`: the first occurrence takes the value, later ones go.
    const value = edits[key]
    if (value !== undefined && !done.has(key)) out.push(param(key, value))
    done.add(key)
  }
  for (const [key, value] of Object.entries(edits)) {
    if (value !== undefined && !done.has(key)) out.push(param(key, value))
  }
  return `${path}${out.length > 0 ? `?${out.join("&")}` : ""}${fragment}`
}

/** The decoded name of a `name=value` query segment, read the way `URLSearchParams` reads it. */
const keyOf = (segment: string): string => {
  const raw = segment.split("=", 1)[0]!.replace(/\+/g, " ")
  try {
    return decodeURIComponent(raw)
  } catch {
    return raw
  }
}

/**
 * Restores `max` and the caller's filters where a next link lost them (absent, empty or the
 * literal `null`), leaving everything else — the cursor above all — untouched, down to its spelling.
 */
export const repair = (url: string, expected: Readonly<Record<string, string>>): Repair => {
  const params = new URL(url).searchParams
  const edits: Record<string, string | undefined> = {}
  for (const [key, value] of Object.entries(expected)) {
    const current = params.get(key)
    if (current === null || current === "" || current === "null") edits[key] = value
  }
  // `max=null` with no page size of the caller's to restore: drop it, the service default applies.
  if (!Object.hasOwn(expected, "max") && params.get("max") === "null") edits["max"] = undefined
  const repaired = Object.keys(edits)
  return { url: repaired.length === 0 ? url : editQuery(url, edits), repaired }
}

/** Whether `url` is on exactly the given origin (scheme, host and port). */
export const sameOrigin = (url: string, origin: string): boolean => {
  try {
    return new URL(url).origin === origin
  } catch {
    return false
  }
}

/** Replaces the `max` parameter of a URL (used to shrink pages after repeated 504s). */
export const withMax = (url: string, max: number): string => editQuery(url, { max: String(max) })

/** The `max` parameter of a URL, when it is a positive integer. */
export const maxOf = (url: string): Option.Option<number> => {
  const raw = new URL(url).searchParams.get("max")
  const n = raw === null ? NaN : Number(raw)
  return Number.isInteger(n) && n > 0 ? Option.some(n) : Option.none()
}
