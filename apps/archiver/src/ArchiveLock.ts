/**
 * `state/archiver.lock`: one archiver per archive. Two writers would break exactly-once (each keeps
 * its own in-memory id sets) and race on the checkpoint.
 *
 * The lock file is created with `O_EXCL` and holds `{"pid", "startedAt", "host"}`. A lock left by a
 * crashed process (its pid is gone, or the file is empty or torn) is taken over with a warning; a
 * lock whose process is alive, or that belongs to another host (whose pids cannot be checked from
 * here), is reported as {@link ArchiveLocked}.
 *
 * @since 0.1.0
 */
import * as fsp from "node:fs/promises"
import * as os from "node:os"
import * as path from "node:path"
import * as Clock from "effect/Clock"
import * as Duration from "effect/Duration"
import * as Effect from "effect/Effect"
import * as Schedule from "effect/Schedule"
import * as Option from "effect/Option"
import type * as Scope from "effect/Scope"
import { ArchiveLocked, type ArchiveWriteError } from "./ArchiveError.js"
import {
  at,
  ensureArchiveLayout,
  errnoCode,
  FILE_MODE,
  fsyncDir,
  layout,
  readIfExists,
  tryWrite
} from "./internal/archiveFs.js"

/** What a lock file records about its holder. */
export interface LockInfo {
  readonly pid: number
  readonly startedAt: string
  readonly host: string
}

/** Parses a lock file's text; `undefined` when it is empty, torn or not a lock. */
export const parseLockInfo = (text: string): LockInfo | undefined => {
  try {
    const v: unknown = JSON.parse(text)
    if (
      typeof v === "object" && v !== null &&
      "pid" in v && typeof v.pid === "number" && Number.isSafeInteger(v.pid) && v.pid > 0
    ) {
      return {
        pid: v.pid,
        startedAt: "startedAt" in v && typeof v.startedAt === "string" ? v.startedAt : "at an unknown time",
        host: "host" in v && typeof v.host === "string" ? v.host : os.hostname()
      }
    }
  } catch {
    // torn or not JSON
  }
  return undefined
}

// Lock files held by this process. A lock recording our own pid that is not in here was left by a
// previous incarnation that got the same pid (in a container the archiver is often pid 1 each time).
const heldHere = new Set<string>()

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
  | { readonly _tag: "Acquired" }
  | { readonly _tag: "Held"; readonly info: LockInfo; readonly alive: boolean | undefined }
  | { readonly _tag: "Stale"; readonly info: LockInfo | undefined; readonly ino: number; readonly ageMs: number }

const tryCreate = async (file: string, text: string): Promise<boolean> => {
  let h: fsp.FileHandle
  try {
    h = await fsp.open(file, "wx", FILE_MODE)
  } catch (e) {
    if (errnoCode(e) === "EEXIST") return false
    throw e
  }
  try {
    try {
      await at(file, "setting permissions on", () => h.chmod(FILE_MODE))
      await at(file, "writing", () => h.writeFile(text, "utf8"))
      await at(file, "syncing", () => h.sync())
    } finally {
      await h.close().catch(() => undefined)
    }
  } catch (e) {
    // A half-written lock of ours would look torn and be taken over anyway; don't leave it.
    await fsp.unlink(file).catch(() => undefined)
    throw e
  }
  return true
}

const attempt = async (file: string, text: string): Promise<Attempt> => {
  if (await at(file, "creating", () => tryCreate(file, text))) {
    await fsyncDir(path.dirname(file))
    return { _tag: "Acquired" }
  }
  const st = await at(file, "checking", () => fsp.stat(file).catch((e) => (errnoCode(e) === "ENOENT" ? undefined : Promise.reject(e))))
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
export const acquire = (dir: string): Effect.Effect<void, ArchiveLocked | ArchiveWriteError, Scope.Scope> => {
  const l = layout(dir)
  const file = l.lock

  const locked = (info: LockInfo, alive: boolean | undefined) =>
    new ArchiveLocked({
      path: file,
      pid: info.pid,
      host: info.host,
      startedAt: info.startedAt,
      message: alive === undefined
        ? `Another archiver (pid ${info.pid} on host ${info.host}, started ${info.startedAt}) is using ${l.root}; ` +
          `it cannot be checked from ${os.hostname()}: stop it first, or delete ${file} if you are sure it is ` +
          "not running."
        : `Another archiver (pid ${info.pid}, started ${info.startedAt}) is using ${l.root}; stop it first, or ` +
          `delete ${file} if you are sure it is not running.`
    })

  const take = (text: string, retried: boolean, waits = 0): Effect.Effect<void, ArchiveLocked | ArchiveWriteError> =>
    tryWrite(file, "locking", () => attempt(file, text)).pipe(
      Effect.flatMap((a) => {
        switch (a._tag) {
          case "Acquired":
            return Effect.void
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
              : `its process (pid ${a.info.pid}, started ${a.info.startedAt}) is no longer running`
            return Effect.logWarning(`Taking over the stale lock ${file}: ${why}`).pipe(
              Effect.zipRight(tryWrite(file, "removing the stale lock", async () => {
                // Only remove the file we judged stale, not a lock another process just created.
                const now = await fsp.stat(file).catch(() => undefined)
                if (now !== undefined && now.ino === a.ino) await fsp.unlink(file).catch(() => undefined)
              })),
              Effect.zipRight(take(text, true))
            )
          }
        }
      })
    )

  const release = (text: string) =>
    tryWrite(file, "unlocking", async () => {
      // Never remove a lock that is no longer ours (e.g. deleted by hand and taken by another run).
      if ((await readIfExists(file)) !== text) return
      await fsp.unlink(file)
      await fsyncDir(l.state)
    }).pipe(
      Effect.catchAll((e) => Effect.logWarning(`Could not release the lock: ${e.message}`))
    )

  return Effect.gen(function*() {
    yield* ensureArchiveLayout(l.root)
    const startedAt = new Date(yield* Clock.currentTimeMillis).toISOString()
    const text = `${JSON.stringify({ pid: process.pid, startedAt, host: os.hostname() })}\n`
    yield* Effect.acquireRelease(
      Effect.tap(take(text, false), () => Effect.sync(() => heldHere.add(file))),
      () => Effect.zipRight(Effect.sync(() => heldHere.delete(file)), release(text))
    )
    // The heartbeat: keeps the lock fresh for archivers on other hosts (see OTHER_HOST_STALE_MS).
    const touch = Effect.tryPromise(async () => {
      if ((await readIfExists(file)) !== text) return
      const now = new Date()
      await fsp.utimes(file, now, now)
    }).pipe(Effect.catchAll(() => Effect.logWarning(`Could not refresh the lock ${file}`)))
    yield* Effect.forkScoped(Effect.repeat(touch, Schedule.spaced(Duration.millis(HEARTBEAT_MS))))
  })
}
