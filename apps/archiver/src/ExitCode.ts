/**
 * The archiver's exit codes, after `sysexits.h`, keyed by each failure's `_tag`: a supervisor
 * (systemd's `RestartPreventExitStatus=64 77 78`) can tell "fix the command or the credentials"
 * from "try again later" without reading the message.
 *
 * | code | meaning                                                                          |
 * | ---- | -------------------------------------------------------------------------------- |
 * | 0    | success, or a clean stop on SIGTERM / SIGINT                                     |
 * | 64   | usage: a bad flag or argument                                                    |
 * | 65   | verify: the archive is not intact (a file or manifest entry damaged, missing, …)  |
 * | 70   | internal error (a bug)                                                           |
 * | 73   | keygen: the key files cannot be created (one exists already, …)                  |
 * | 74   | I/O: the archive cannot be read or written, or is unsafe (planted link, …)       |
 * | 75   | temporary: archive locked, lock lost, API unreachable or throttled after retries |
 * | 76   | protocol: the API answered something it does not document                        |
 * | 77   | not authorised: token refused (401), no compliance access (403), refresh refused |
 * | 78   | configuration: no token, unreadable token file, bad base URL, bad checkpoint     |
 */
import * as ValidationError from "@effect/cli/ValidationError"
import * as Cause from "effect/Cause"
import * as Option from "effect/Option"
import * as Predicate from "effect/Predicate"

export const OK = 0
export const USAGE = 64
export const DATA = 65
export const SOFTWARE = 70
export const CANT_CREATE = 73
export const IO = 74
export const TEMPORARY = 75
export const PROTOCOL = 76
export const NOT_AUTHORISED = 77
export const CONFIG = 78

/**
 * Every failure the app knows, by tag. Tags of errors other streams add (`ArchiveUnsafe`,
 * `ArchiveLockLost`, `ResponseTooLarge`, `PaginationRunaway`) are listed before they exist, so
 * they map right from the moment they do.
 */
const byTag: Readonly<Record<string, number>> = {
  ArchiverUsageError: USAGE,
  ArchiverConfigError: CONFIG,
  CredentialsError: CONFIG,
  CheckpointError: CONFIG,
  Unauthorized: NOT_AUTHORISED,
  Forbidden: NOT_AUTHORISED,
  TokenRefreshFailed: NOT_AUTHORISED,
  ResponseDecodeError: PROTOCOL,
  ResponseTooLarge: PROTOCOL,
  PaginationRunaway: PROTOCOL,
  UnsafeNextLink: PROTOCOL,
  InvalidRequest: PROTOCOL,
  EventNotFound: PROTOCOL,
  ArchiveLocked: TEMPORARY,
  ArchiveLockLost: TEMPORARY,
  RateLimited: TEMPORARY,
  ServerError: TEMPORARY,
  TransportError: TEMPORARY,
  ArchiveWriteError: IO,
  ArchiveReadError: IO,
  ArchiveUnsafe: IO,
  // verify found damage: the archive's data is not what the manifest says (EX_DATAERR).
  ArchiveNotIntact: DATA,
  KeyError: CONFIG,
  // keygen could not create its key files (EX_CANTCREAT).
  KeygenError: CANT_CREATE
}

/** The exit code for one failure value. */
export const ofError = (error: unknown): number => {
  if (ValidationError.isValidationError(error)) return USAGE
  if (!Predicate.hasProperty(error, "_tag") || typeof error._tag !== "string") return SOFTWARE
  // A base URL refused by the library before any request is configuration, not a server's 400.
  if (error._tag === "InvalidRequest" && Predicate.hasProperty(error, "param") && error.param === "baseUrl") return CONFIG
  return byTag[error._tag] ?? SOFTWARE
}

/** The exit code for how the program ended: 0 for success and for a stop signal. */
export const ofCause = (cause: Cause.Cause<unknown>): number => {
  if (Cause.isInterruptedOnly(cause)) return OK
  const failure = Cause.failureOption(cause)
  return Option.isSome(failure) ? ofError(failure.value) : SOFTWARE
}
