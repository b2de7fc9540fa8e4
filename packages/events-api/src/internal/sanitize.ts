/**
 * Server text on its way into an error: a hostile or broken server may echo the request (with
 * its credentials), send terminal escape sequences, or send megabytes. Errors get logged and
 * persisted, so what they carry is redacted, escaped and cut here, in one place.
 */
import * as Redacted from "effect/Redacted"

/** Longest server text an error carries. */
export const MAX_DETAIL = 300

/** The secrets that may never appear in error text; grows as tokens are refreshed. */
export interface Secrets {
  readonly add: (secret: Redacted.Redacted<string>) => void
  readonly values: () => ReadonlyArray<string>
}

export const makeSecrets = (initial: Iterable<Redacted.Redacted<string> | undefined>): Secrets => {
  const set = new Set<string>()
  const add = (secret: Redacted.Redacted<string> | undefined) => {
    const value = secret === undefined ? "" : Redacted.value(secret)
    // Very short "secrets" would redact ordinary words; no real credential is this short.
    if (value.length >= 4) set.add(value)
  }
  for (const s of initial) add(s)
  return { add, values: () => [...set] }
}

const escapeControl = (text: string): string =>
  // eslint-disable-next-line no-control-regex
  text.replace(/[\u0000-\u001f\u007f-\u009f\u2028\u2029]/g, (c) => {
    switch (c) {
      case "\n":
        return "\\n"
      case "\r":
        return "\\r"
      case "\t":
        return "\\t"
      default:
        return `\\u${c.charCodeAt(0).toString(16).padStart(4, "0")}`
    }
  })

/**
 * Redacts every secret (as sent, and in the URL-encoded form a form body echo would carry),
 * then escapes control characters, then cuts. Redaction comes first so a cut cannot leave
 * part of a secret behind.
 */
export const clean = (text: string, secrets: ReadonlyArray<string>, max: number = MAX_DETAIL): string => {
  let out = text
  for (const secret of secrets) {
    for (const form of new Set([secret, encodeURIComponent(secret), JSON.stringify(secret).slice(1, -1)])) {
      if (form !== "") out = out.split(form).join("<redacted>")
    }
  }
  out = escapeControl(out.trim())
  return out.length > max ? `${out.slice(0, max)}… (${out.length - max} more characters)` : out
}

/**
 * Whether a token can go into an `Authorization` header as is: visible ASCII, no spaces. (An
 * empty one can: the server answers 401, which says more than a refusal here would.)
 */
export const isHeaderSafe = (token: string): boolean => /^[\x21-\x7e]*$/.test(token)
