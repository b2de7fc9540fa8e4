/**
 * sha256 of a small input, the sink's per-event cost (a line's digest, an id's index key).
 *
 * `crypto.hash` (Node >= 20.12) hashes in one native call; `createHash` builds a Hash object per
 * input, which for a line of a few hundred bytes costs more than the hashing itself. The package
 * supports Node >= 20, so older ones fall back to it. Same digest either way.
 *
 * @internal
 */
import * as crypto from "node:crypto"

type OneShot = (algorithm: string, data: string | Uint8Array, encoding: "buffer" | "base64" | "hex") => string | Buffer

const oneShot: OneShot | undefined = typeof (crypto as { hash?: unknown }).hash === "function"
  ? (crypto as unknown as { hash: OneShot }).hash
  : undefined

/** sha256 of `data` (text hashed as its UTF-8 encoding), as raw bytes. */
export const sha256Bytes = (data: string | Uint8Array): Buffer =>
  oneShot !== undefined
    ? oneShot("sha256", data, "buffer") as Buffer
    : typeof data === "string"
    ? crypto.createHash("sha256").update(data, "utf8").digest()
    : crypto.createHash("sha256").update(data).digest()

/** sha256 of `data` (text hashed as its UTF-8 encoding), encoded. */
export const sha256Text = (data: string | Uint8Array, encoding: "base64" | "hex"): string =>
  oneShot !== undefined
    ? oneShot("sha256", data, encoding) as string
    : typeof data === "string"
    ? crypto.createHash("sha256").update(data, "utf8").digest(encoding)
    : crypto.createHash("sha256").update(data).digest(encoding)
