/**
 * `state/archiver.lock`: one archiver per archive. Two writers would break exactly-once (each keeps
 * its own in-memory id sets) and race on the checkpoint.
 *
 * The lock file is created with `O_EXCL | O_NOFOLLOW` and holds `{"pid", "startedAt", "host", "nonce"}`.
 * The holder remembers the file's inode and its random nonce, and checks both before every batch
 * the sink commits ({@link verifyHeld}): a lock deleted or replaced under a running archiver stops
 * it with {@link ArchiveLockLost} before a second writer can interleave with it. A lock left by a
 * crashed process (its pid is gone, or the file is empty or torn) is taken over with a warning; a
 * lock whose process is alive, or that belongs to another host (whose pids cannot be checked from
 * here), is reported as {@link ArchiveLocked}.
 *
 * @since 0.1.0
 */
import { randomBytes } from "node:crypto"
import * as fs from "node:fs"
import * as fsp from "node:fs/promises"
import * as os from "node:os"
import * as path from "node:path"
import * as Clock from "effect/Clock"
import * as Duration from "effect/Duration"
import * as Effect from "effect/Effect"
import * as Schedule from "effect/Schedule"
import * as Option from "effect/Option"
import * as Schema from "effect/Schema"
import type * as Scope from "effect/Scope"
import { ArchiveLocked, ArchiveLockLost, type ArchiveUnsafe, type ArchiveWriteError } from "./ArchiveError.js"
import {
  at,
  errnoCode,
  FILE_MODE,
  fsyncDir,
  layout,
  lstatIfExists,
  openArchiveLayout,
  openNoFollow,
  readIfExists,
  sweepTemporaryFiles,
  trySafeWrite
} from "./internal/archiveFs.js"
import { EpochMillisFromIso, toIso } from "./Instant.js"

/** What a lock file records about its holder. */
export interface LockInfo {
  readonly pid: number
  /** When the holder took the lock, epoch milliseconds (ISO-8601 in the file); `undefined` if unreadable. */
  readonly startedAt: number | undefined
  readonly host: string
}

/**
 * A lock file as written by `acquire`. Only `pid` decides whether the file is a lock at all: a
 * lock whose other fields are damaged still protects a running holder, so they are read apart.
 */
const LockFile = Schema.parseJson(Schema.Struct({
  pid: Schema.Int.pipe(Schema.positive()),
  startedAt: Schema.optional(Schema.Unknown),
  host: Schema.optional(Schema.Unknown)
}))
const decodeLockFile = Schema.decodeUnknownOption(LockFile)
const decodeStartedAt = Schema.decodeUnknownOption(EpochMillisFromIso)

/** Parses a lock file's text; `undefined` when it is empty, torn or not a lock. */
export const parseLockInfo = (text: string): LockInfo | undefined =>
  Option.getOrUndefined(Option.map(decodeLockFile(text), (v) => ({
    pid: v.pid,
    startedAt: Option.getOrUndefined(decodeStartedAt(v.startedAt)),
    host: typeof v.host === "string" ? v.host : os.hostname()
  })))

/** `started …` for messages about a lock's holder. */
const startedText = (info: LockInfo): string =>
  info.startedAt === undefined ? "at an unknown time" : toIso(info.startedAt)

/** What this process knows about a lock it holds: the file's inode and the nonce written in it. */
interface Held {
  readonly ino: number
  readonly nonce: string
}

// Lock files held by this process. A lock recording our own pid that is not in here was left by a
// previous incarnation that got the same pid (in a container the archiver is often pid 1 each time).
const heldHere = new Map<string, Held>()

/** Whether the lock file at `file` is still the one this process created (inode and nonce). */
const stillOurs = async (file: string, held: Held): Promise<boolean> => {
  const st = await lstatIfExists(file)
  if (st === undefined || !st.isFile() || st.ino !== held.ino) return false
  const text = await readIfExists(file).catch(() => undefined)
  return text !== undefined && parseNonce(text) === held.nonce
}

const parseNonce = (text: string): string | undefined => {
  try {
    const v: unknown = JSON.parse(text)
    return typeof v === "object" && v !== null && "nonce" in v && typeof v.nonce === "string" ? v.nonce : undefined
  } catch {
    return undefined
  }
}

/**
 * Fails with {@link ArchiveLockLost} when this process took the lock of the archive at `dir` and
 * that lock is no longer its own (deleted, replaced, taken by another archiver). Succeeds when
 * the lock is intact, or when this process holds no lock there (a sink used on its own, in tests).
 * The sink runs it before every batch it commits.
 */
export const verifyHeld = (dir: string): Effect.Effect<void, ArchiveLockLost> => {
  const file = layout(dir).lock
  const held = heldHere.get(file)
  if (held === undefined) return Effect.void
  return Effect.promise(() => stillOurs(file, held).catch(() => false)).pipe(
    Effect.flatMap((ours) =>
      ours ? Effect.void : Effect.fail(
        new ArchiveLockLost({
          path: file,
          message: `The lock ${file} is no longer this archiver's (it was deleted or replaced while it ran): ` +
            "stopping before writing anything more, so that two archivers never write the archive at once. " +
            "Make sure only one archiver runs on this directory, then start again."
        })
      )
    )
  )
}

/**
 * Whether the process holding a lock is (or may be) running: `undefined` when that cannot be known
 * from here (another host).
 */
export const isHolderAlive = (info: LockInfo, file?: string): boolean | undefined => {
  if (info.host !== os.hostname()) return undefined
  if (info.pid === process.pid) return file === undefined || heldHere.has(file)
  try {
    process.kill(info.pid, 0)
    return true
  } catch (e) {
    // EPERM: it exists but belongs to another user.
    return errnoCode(e) !== "ESRCH"
  }
}

/** The current holder of the archive's lock, if the lock file exists and is readable. */
export const readLock = (dir: string): Effect.Effect<Option.Option<LockInfo>> =>
  Effect.tryPromise(() => readIfExists(layout(dir).lock)).pipe(
    Effect.map((text) => Option.fromNullable(text === undefined ? undefined : parseLockInfo(text))),
    Effect.orElseSucceed(() => Option.none<LockInfo>())
  )

/** How long an unreadable lock file is given to be a lock still being written. */
const FRESH_MS = 2000

/** How often a holder refreshes its lock's mtime, and after how long without that it is stale. */
const HEARTBEAT_MS = 15_000
export const OTHER_HOST_STALE_MS = 8 * HEARTBEAT_MS

type Attempt =
  | { readonly _tag: "Acquired"; readonly ino: number }
  | { readonly _tag: "Held"; readonly info: LockInfo; readonly alive: boolean | undefined }
  | { readonly _tag: "Stale"; readonly info: LockInfo | undefined; readonly ino: number; readonly ageMs: number }

const tryCreate = async (file: string, text: string): Promise<number | undefined> => {
  const { O_WRONLY, O_CREAT, O_EXCL } = fs.constants
  let h: fsp.FileHandle
  try {
    // O_EXCL never follows a link: a link planted at the lock path is EEXIST, then refused below.
    h = await openNoFollow(file, O_WRONLY | O_CREAT | O_EXCL, FILE_MODE)
  } catch (e) {
    if (errnoCode(e) === "EEXIST") return undefined
    throw e
  }
  let ino: number
  try {
    try {
      await at(file, "setting permissions on", () => h.chmod(FILE_MODE))
      await at(file, "writing", () => h.writeFile(text, "utf8"))
      await at(file, "syncing", () => h.sync())
      ino = (await h.stat()).ino
    } finally {
      await h.close().catch(() => undefined)
    }
  } catch (e) {
    // A half-written lock of ours would look torn and be taken over anyway; don't leave it.
    await fsp.unlink(file).catch(() => undefined)
    throw e
  }
  return ino
}

const attempt = async (file: string, text: string): Promise<Attempt> => {
  const ino = await at(file, "creating", () => tryCreate(file, text))
  if (ino !== undefined) {
    await fsyncDir(path.dirname(file))
    return { _tag: "Acquired", ino }
  }
  const st = await at(file, "checking", () => lstatIfExists(file))
  if (st !== undefined && !st.isFile()) {
    // A link or a special file planted where the lock belongs: never read through, never removed.
    await openNoFollow(file, fs.constants.O_RDONLY).then((h) => h.close())
  }
  const existing = st === undefined ? undefined : await readIfExists(file)
  // Released between our create and our look: just try again.
  if (st === undefined || existing === undefined) return { _tag: "Stale", info: undefined, ino: -1, ageMs: Infinity }
  // Wall-clock age: compared with the file system's own timestamps.
  const ageMs = Date.now() - st.mtimeMs
  const info = parseLockInfo(existing)
  if (info === undefined) return { _tag: "Stale", info: undefined, ino: st.ino, ageMs }
  const alive = isHolderAlive(info, file)
  // A holder on another host (a container restarted under a new name, say) cannot be asked
  // whether it runs; it proves it by refreshing the lock's mtime. Long silence means it is gone.
  if (alive === undefined && ageMs > OTHER_HOST_STALE_MS) return { _tag: "Stale", info, ino: st.ino, ageMs }
  return alive === false ? { _tag: "Stale", info, ino: st.ino, ageMs } : { _tag: "Held", info, alive }
}

/**
 * Takes the archive's lock for the lifetime of the current scope. Creates the archive layout if
 * needed (so it can run before the sink and the checkpoint are opened).
 */
export const acquire = (
  dir: string
): Effect.Effect<void, ArchiveLocked | ArchiveWriteError | ArchiveUnsafe, Scope.Scope> => {
  const l = layout(dir)
  const file = l.lock

  const locked = (info: LockInfo, alive: boolean | undefined) =>
    new ArchiveLocked({
      path: file,
      pid: info.pid,
      host: info.host,
      ...(info.startedAt !== undefined ? { startedAt: toIso(info.startedAt) } : {}),
      message: alive === undefined
        ? `Another archiver (pid ${info.pid} on host ${info.host}, started ${startedText(info)}) is using ${l.root}; ` +
          `it cannot be checked from ${os.hostname()}: stop it first, or delete ${file} if you are sure it is ` +
          "not running."
        : `Another archiver (pid ${info.pid}, started ${startedText(info)}) is using ${l.root}; stop it first, or ` +
          `delete ${file} if you are sure it is not running.`
    })

  const take = (
    text: string,
    retried: boolean,
    waits = 0
  ): Effect.Effect<number, ArchiveLocked | ArchiveWriteError | ArchiveUnsafe> =>
    trySafeWrite(file, "locking", () => attempt(file, text)).pipe(
      Effect.flatMap((a): Effect.Effect<number, ArchiveLocked | ArchiveWriteError | ArchiveUnsafe> => {
        switch (a._tag) {
          case "Acquired":
            return Effect.succeed(a.ino)
          case "Held":
            return Effect.fail(locked(a.info, a.alive))
          case "Stale": {
            if (a.info === undefined && a.ageMs < FRESH_MS && waits < FRESH_MS / 100) {
              // An empty lock only seconds old may be one another archiver is writing right now:
              // give it time to finish before calling it torn. Real time, whatever the Clock.
              return Effect.promise(() => new Promise((r) => setTimeout(r, 100))).pipe(
                Effect.zipRight(take(text, retried, waits + 1))
              )
            }
            if (retried) {
              // Still stale after removing it once: another process is racing us for it, or it
              // cannot be removed. Do not fight over it.
              return Effect.fail(
                new ArchiveLocked({
                  path: file,
                  pid: a.info?.pid ?? 0,
                  message: `Could not take over the stale lock ${file} (another archiver may be starting on ` +
                    `${l.root} right now); run again, or delete ${file} if you are sure no archiver is running.`
                })
              )
            }
            const why = a.info === undefined
              ? "it is empty or torn (a crash while it was written)"
              : a.info.host !== os.hostname()
              ? `its holder on host ${a.info.host} (pid ${a.info.pid}) has not refreshed it for ${Math.round(a.ageMs / 1000)} s`
              : `its process (pid ${a.info.pid}, started ${startedText(a.info)}) is no longer running`
            return Effect.logWarning(`Taking over the stale lock ${file}: ${why}`).pipe(
              Effect.zipRight(trySafeWrite(file, "removing the stale lock", async () => {
                // Only remove the file we judged stale, not a lock another process just created.
                const now = await lstatIfExists(file).catch(() => undefined)
                if (now !== undefined && now.ino === a.ino) await fsp.unlink(file).catch(() => undefined)
              })),
              Effect.zipRight(take(text, true))
            )
          }
        }
      })
    )

  const release = (held: Held) =>
    trySafeWrite(file, "unlocking", async () => {
      // Never remove a lock that is no longer ours (e.g. deleted by hand and taken by another run).
      if (!(await stillOurs(file, held))) return
      await fsp.unlink(file)
      await fsyncDir(l.state)
    }).pipe(
      Effect.catchAll((e) => Effect.logWarning(`Could not release the lock: ${e.message}`))
    )

  return Effect.gen(function*() {
    yield* openArchiveLayout(l.root)
    const startedAt = toIso(yield* Clock.currentTimeMillis)
    const nonce = randomBytes(16).toString("hex")
    const text = `${JSON.stringify({ pid: process.pid, startedAt, host: os.hostname(), nonce })}\n`
    const held = yield* Effect.acquireRelease(
      Effect.map(take(text, false), (ino) => {
        const h: Held = { ino, nonce }
        heldHere.set(file, h)
        return h
      }),
      (h) => Effect.zipRight(Effect.sync(() => heldHere.delete(file)), release(h))
    )
    yield* sweepTemporaryFiles(l.root)
    // The heartbeat: keeps the lock fresh for archivers on other hosts (see OTHER_HOST_STALE_MS).
    const touch = Effect.tryPromise(async () => {
      if (!(await stillOurs(file, held))) return
      const h = await openNoFollow(file, fs.constants.O_RDONLY)
      try {
        const now = new Date()
        await h.utimes(now, now)
      } finally {
        await h.close()
      }
    }).pipe(Effect.catchAll(() => Effect.logWarning(`Could not refresh the lock ${file}`)))
    yield* Effect.forkScoped(Effect.repeat(touch, Schedule.spaced(Duration.millis(HEARTBEAT_MS))))
  })
}
