/**
 * What the archiver lets out of the process: its messages, its logs and `last-error.json`.
 *
 * Servers echo what they were sent (a 401 body quoting the bearer token, a token endpoint
 * repeating the refresh token and client secret), so every known secret value is cut out of any
 * text before it is printed, logged or stored; the library redacts too, this is the app's own
 * guarantee. And server text is untrusted: control characters (ESC sequences that repaint a
 * terminal, a newline that forges a log line) are escaped, and long fields cut.
 */
import * as Redacted from "effect/Redacted"

/**
 * The secret values of this process: registered as the credentials are read. Process-wide on
 * purpose: the last error is printed by `main.ts`, outside the command that read them.
 */
const secrets = new Set<string>()

/** Registers a secret to be cut out of everything shown or stored from now on. */
export const registerSecret = (secret: Redacted.Redacted<string>): void => {
  const value = Redacted.value(secret)
  // Too short a "secret" would shred ordinary text; real tokens are long.
  if (value.length >= 8) secrets.add(value)
}

export const REDACTED = "<redacted>"

/** `text` with every registered secret replaced by `<redacted>`. */
export const redactSecrets = (text: string): string => {
  let out = text
  for (const s of secrets) if (out.includes(s)) out = out.split(s).join(REDACTED)
  return out
}

/** Default cut for one field of a log line or message. */
export const MAX_FIELD = 2000

/**
 * `text` safe for a terminal or a line-oriented log: C0/C1 control characters and DEL escaped
 * (`\x1b`, `\n`), the Unicode line and paragraph separators too (`\u2028`: some log viewers
 * break lines there, and the library escapes them in its errors alike), and cut after `max`
 * characters with a note of how much was dropped.
 */
export const escapeControl = (text: string, max = MAX_FIELD): string => {
  const cut = text.length > max ? text.slice(0, max) : text
  // eslint-disable-next-line no-control-regex
  const escaped = cut.replace(/[\u0000-\u001f\u007f-\u009f\u2028\u2029]/g, (c) => {
    switch (c) {
      case "\n":
        return "\\n"
      case "\r":
        return "\\r"
      case "\t":
        return "\\t"
      default:
        return c.charCodeAt(0) > 0xff ? `\\u${c.charCodeAt(0).toString(16)}` : `\\x${c.charCodeAt(0).toString(16).padStart(2, "0")}`
    }
  })
  return text.length > max ? `${escaped}… (${text.length - max} more characters)` : escaped
}

/** Both: what any text from outside becomes before it is shown or stored. */
export const safeText = (text: string, max = MAX_FIELD): string => escapeControl(redactSecrets(text), max)
