/**
 * Reading and rewriting the files that hold secrets (token, refresh token, client secret).
 *
 * Reading: the bytes must be able to go into an HTTP `Authorization` header as they are, so a
 * file holding invalid UTF-8, a NUL or any control character is refused at start, naming the
 * file, instead of surfacing 95 s later as a "network problem" from the HTTP stack.
 *
 * Rewriting (a rotated refresh token): to a fresh, randomly named temporary file created with
 * `O_CREAT|O_EXCL|O_NOFOLLOW` and mode 0600, fsync'd, renamed over the target, directory fsync'd.
 * A `<file>.tmp` planted as a symlink is never followed (the name is not predictable, and
 * `O_EXCL` refuses any existing path), and `rename` replaces a symlinked target rather than
 * writing through it.
 */
import { randomBytes } from "node:crypto"
import * as fs from "node:fs"
import * as fsp from "node:fs/promises"
import * as path from "node:path"

/** Why these bytes cannot be a credential, or `undefined` when they can. */
export const headerSafetyProblem = (bytes: Uint8Array): string | undefined => {
  let text: string
  try {
    text = new TextDecoder("utf-8", { fatal: true }).decode(bytes)
  } catch {
    return "is not valid UTF-8 text"
  }
  const value = text.trim()
  if (value === "") return "is empty"
  if (/\s/.test(value)) return "must hold exactly one value, on one line"
  // eslint-disable-next-line no-control-regex
  const control = /[\u0000-\u001f\u007f-\u009f]/.exec(value)
  if (control !== null) {
    return `holds a control character (0x${control[0].charCodeAt(0).toString(16).padStart(2, "0")}) that cannot go into an HTTP header`
  }
  // Header values are bytes; a token is printable ASCII.
  if (/[^\x21-\x7e]/.test(value)) return "holds non-ASCII characters, which cannot go into an HTTP header"
  return undefined
}

/** Replaces `target` with `data`, 0600, crash-safely and without following any planted link. */
export const writeSecretAtomic = async (target: string, data: string): Promise<void> => {
  const dir = path.dirname(target)
  const tmp = path.join(dir, `.${path.basename(target)}.${randomBytes(8).toString("hex")}.tmp`)
  const { O_WRONLY, O_CREAT, O_EXCL, O_NOFOLLOW } = fs.constants
  const h = await fsp.open(tmp, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW, 0o600)
  try {
    try {
      await h.writeFile(data)
      await h.sync()
    } finally {
      await h.close()
    }
    await fsp.rename(tmp, target)
  } catch (e) {
    await fsp.rm(tmp, { force: true })
    throw e
  }
  const d = await fsp.open(dir, fs.constants.O_RDONLY | fs.constants.O_DIRECTORY)
  try {
    await d.sync()
  } finally {
    await d.close()
  }
}
