/**
 * How storage failures become the tagged errors of `ArchiveError.ts`: a multi-step async operation
 * labels each step with its file, and the errno becomes a sentence a user can act on.
 *
 * @internal
 */
import * as Effect from "effect/Effect"
import { ArchiveReadError, ArchiveUnsafe, ArchiveWriteError } from "../ArchiveError.js"

export const errnoCode = (e: unknown): string | undefined =>
  typeof e === "object" && e !== null && "code" in e && typeof e.code === "string" ? e.code : undefined

const HUMAN: Record<string, string> = {
  ENOSPC: "No space left on device",
  EDQUOT: "Disk quota exceeded",
  EFBIG: "File too large",
  EACCES: "Permission denied",
  EPERM: "Operation not permitted",
  EROFS: "Read-only file system",
  ENOTDIR: "Not a directory (a file is where a directory should be)",
  EISDIR: "Is a directory (a directory is where a file should be)",
  ENOENT: "No such file or directory",
  EIO: "Input/output error (the disk or file system may be failing)",
  EMFILE: "Too many open files",
  ENFILE: "Too many open files in the system",
  ELOOP: "Too many levels of symbolic links",
  ENAMETOOLONG: "File name too long"
}

const HINT: Record<string, string> = {
  ENOSPC: "free some space and run again; the archive is intact up to its last checkpoint",
  EDQUOT: "raise the quota or free some space and run again",
  EACCES: "check the owner and permissions of the archive directory",
  EPERM: "check the owner and permissions of the archive directory",
  EROFS: "the archive must live on a writable file system",
  ENOTDIR: "remove or rename the file that is in the way"
}

const describe = (operation: string, file: string, cause: unknown) => {
  const code = errnoCode(cause)
  const human = code !== undefined ? HUMAN[code] : undefined
  const detail = cause instanceof Error ? cause.message : String(cause)
  const hint = code !== undefined ? HINT[code] : undefined
  const message = human !== undefined
    ? `${human} while ${operation} ${file}${hint !== undefined ? `: ${hint}` : ""}`
    : `Failed while ${operation} ${file}: ${detail}`
  return code !== undefined ? { code, message } : { message }
}

/** A failure inside a multi-step async operation, remembering which step and which file. */
export class StepFailure extends Error {
  constructor(readonly file: string, readonly operation: string, override readonly cause: unknown) {
    super(`${operation} ${file}`)
  }
}

/**
 * `read`'s result, or `undefined` when the file it reads is not there ("not found", as thrown or
 * inside a {@link StepFailure}). For readers beside a running archiver, whose atomic replaces and
 * seals remove files between a listing and a read. Anything else, a planted link included, still
 * rejects.
 */
export const unlessGone = <A>(read: () => Promise<A>): Promise<A | undefined> =>
  read().catch((e) => {
    if (errnoCode(e instanceof StepFailure ? e.cause : e) === "ENOENT") return undefined
    throw e
  })

/**
 * Something planted in the archive that must not be written through (a symbolic link, a
 * non-regular file, a directory its owner made read-only). Thrown by the safe file layer and
 * turned into {@link ArchiveUnsafe}.
 */
export class UnsafePath extends Error {
  constructor(readonly file: string, readonly reason: string) {
    super(`${file}: ${reason}`)
  }
}

/** Runs one step of an async operation, labelling its failure. */
export const at = async <A>(file: string, operation: string, f: () => Promise<A>): Promise<A> => {
  try {
    return await f()
  } catch (e) {
    throw e instanceof StepFailure || e instanceof UnsafePath ? e : new StepFailure(file, operation, e)
  }
}

const unsafeMessage = (u: UnsafePath) =>
  `Refusing to use the archive: ${u.file} ${u.reason}. Nothing was written through it; ` +
  "inspect it (it may have been tampered with), then remove or fix it and run again"

export const toUnsafe = (u: UnsafePath): ArchiveUnsafe => new ArchiveUnsafe({ path: u.file, message: unsafeMessage(u) })

type StorageErrorFields = { path: string; operation: string; message: string; code?: string }

/** The fields of a write or read error: a planted path is `EUNSAFE`, anything else its labelled step. */
const storageErrorFields = (file: string, operation: string, e: unknown): StorageErrorFields => {
  if (e instanceof UnsafePath) {
    // Callers typed before `ArchiveUnsafe` existed still name the path and the reason (exit 74 too).
    return { path: e.file, operation, message: unsafeMessage(e), code: "EUNSAFE" }
  }
  const f = e instanceof StepFailure ? e : new StepFailure(file, operation, e)
  return { path: f.file, operation: f.operation, ...describe(f.operation, f.file, f.cause) }
}

export const toWriteError = (file: string, operation: string, e: unknown): ArchiveWriteError =>
  new ArchiveWriteError(storageErrorFields(file, operation, e))

export const toReadError = (file: string, operation: string, e: unknown): ArchiveReadError =>
  new ArchiveReadError(storageErrorFields(file, operation, e))

/** An async write-path operation as an Effect failing with {@link ArchiveWriteError}. */
export const tryWrite = <A>(
  file: string,
  operation: string,
  f: (signal: AbortSignal) => Promise<A>
): Effect.Effect<A, ArchiveWriteError> =>
  Effect.tryPromise({ try: f, catch: (e) => toWriteError(file, operation, e) })

/** Like {@link tryWrite}, but a planted link or a refused archive is an {@link ArchiveUnsafe}. */
export const trySafeWrite = <A>(
  file: string,
  operation: string,
  f: (signal: AbortSignal) => Promise<A>
): Effect.Effect<A, ArchiveWriteError | ArchiveUnsafe> =>
  Effect.tryPromise({
    try: f,
    catch: (e): ArchiveWriteError | ArchiveUnsafe => e instanceof UnsafePath ? toUnsafe(e) : toWriteError(file, operation, e)
  })

/** An async read-only operation as an Effect failing with {@link ArchiveReadError}. */
export const tryRead = <A>(
  file: string,
  operation: string,
  f: (signal: AbortSignal) => Promise<A>
): Effect.Effect<A, ArchiveReadError> =>
  Effect.tryPromise({ try: f, catch: (e) => toReadError(file, operation, e) })
