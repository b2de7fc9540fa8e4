/**
 * The closed set of failures of the archive's storage layer.
 *
 * Every error names the file it is about and says, in words a user can act on, what went wrong:
 * `ENOSPC` becomes "No space left on device while appending to …", not a bare errno.
 *
 * @since 0.1.0
 */
import * as Effect from "effect/Effect"
import * as Schema from "effect/Schema"
import * as fs from "node:fs"
import * as path from "node:path"

/**
 * Writing to the archive failed (or reading it on the write path, e.g. to check for duplicates).
 * Nothing that was not acknowledged is left half-written: a failed append is rolled back, and a
 * torn line that could not be rolled back is repaired by the next write or the next start.
 */
export class ArchiveWriteError extends Schema.TaggedError<ArchiveWriteError>()("ArchiveWriteError", {
  /** The file or directory the operation was about. */
  path: Schema.String,
  /** What was being done, e.g. `"appending to"`, `"syncing"`, `"renaming"`. */
  operation: Schema.String,
  /** Human-readable explanation, with the path. */
  message: Schema.String,
  /** The `errno` code (`ENOSPC`, `EACCES`, `EROFS`, `ENOTDIR`, …) when there was one. */
  code: Schema.optional(Schema.String)
}) {}

/** Reading the archive for a report failed (it does not exist, or a file cannot be read). */
export class ArchiveReadError extends Schema.TaggedError<ArchiveReadError>()("ArchiveReadError", {
  path: Schema.String,
  operation: Schema.String,
  message: Schema.String,
  code: Schema.optional(Schema.String)
}) {}

/** Another archiver process holds `state/archiver.lock`. */
export class ArchiveLocked extends Schema.TaggedError<ArchiveLocked>()("ArchiveLocked", {
  /** The lock file. */
  path: Schema.String,
  /** The pid recorded in the lock file. */
  pid: Schema.Number,
  /** The host recorded in the lock file. */
  host: Schema.optional(Schema.String),
  /** When the holder started, as recorded in the lock file. */
  startedAt: Schema.optional(Schema.String),
  message: Schema.String
}) {}

/**
 * `state/checkpoint.json` cannot be read, is not JSON, or does not match the checkpoint schema.
 * It is never silently reset: the checkpoint is the archive's proof of coverage, so a damaged one
 * is something the user must look at.
 */
export class CheckpointError extends Schema.TaggedError<CheckpointError>()("CheckpointError", {
  path: Schema.String,
  message: Schema.String
}) {}

/**
 * The archive directory holds something the archiver will not write through: a symbolic link
 * planted below the root (a day file, `events/`, the lock, a temporary file…), a non-regular file
 * where a file belongs, or an archive its owner made read-only. Nothing was written through it and
 * nothing outside the archive was touched; a person has to look at it.
 */
export class ArchiveUnsafe extends Schema.TaggedError<ArchiveUnsafe>()("ArchiveUnsafe", {
  /** The offending path. */
  path: Schema.String,
  message: Schema.String
}) {}

/**
 * The lock this archiver took is no longer its own (deleted, replaced or taken by another
 * process). The archiver stops before committing another batch, so two writers never interleave.
 */
export class ArchiveLockLost extends Schema.TaggedError<ArchiveLockLost>()("ArchiveLockLost", {
  /** The lock file. */
  path: Schema.String,
  message: Schema.String
}) {}

/** The failure of a command given a directory (`--out`) where there is no archive (`root` is resolved). */
const noArchive = (root: string): ArchiveReadError =>
  new ArchiveReadError({
    path: root,
    operation: "opening the archive",
    code: "ENOENT",
    message: `There is no archive at ${root} yet: give the directory of an archive with --out (or ARCHIVE_DIR), ` +
      "or create one with backfill, run or demo"
  })

/**
 * The archive `--out` names, resolved, which must exist: `seal` would otherwise create an empty
 * archive where a mistyped path points, and `status` or `gaps` report nothing for it. The one check
 * of `status` and the evidence commands.
 */
export const existingArchive = (out: string): Effect.Effect<string, ArchiveReadError> =>
  Effect.suspend(() => {
    const dir = path.resolve(out)
    return fs.existsSync(dir) ? Effect.succeed(dir) : Effect.fail(noArchive(dir))
  })
