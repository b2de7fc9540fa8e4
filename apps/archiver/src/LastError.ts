/**
 * `state/last-error.json`: the last failure of the archiver, kept so `status` can show it after the
 * process is gone. Replaced atomically like the checkpoint; cleared after a successful run.
 *
 * @since 0.1.0
 */
import * as fsp from "node:fs/promises"
import * as Clock from "effect/Clock"
import * as Effect from "effect/Effect"
import * as Option from "effect/Option"
import * as Schema from "effect/Schema"
import type { ArchiveWriteError } from "./ArchiveError.js"
import { EpochMillisFromIso } from "./Instant.js"
import { errnoCode, fsyncDir, layout, readIfExists, tryWrite, writeFileAtomic } from "./internal/archiveFs.js"

export const LastError = Schema.Struct({
  /** When the error was recorded: epoch milliseconds in memory, ISO-8601 in the file. */
  at: EpochMillisFromIso,
  /** What went wrong, as shown to the user. */
  message: Schema.String
})
export interface LastError extends Schema.Schema.Type<typeof LastError> {}

/** Records `message` as the archive's last error (atomically, 0600). The state directory must exist. */
export const recordError = (dir: string, message: string): Effect.Effect<void, ArchiveWriteError> =>
  Effect.gen(function*() {
    const l = layout(dir)
    const at = yield* Clock.currentTimeMillis
    // The clock's time is always a finite instant: encoding cannot fail.
    const encoded = yield* Effect.orDie(Schema.encode(LastError)({ at, message }))
    const text = `${JSON.stringify(encoded, null, 2)}\n`
    yield* tryWrite(l.lastError, "writing", () => writeFileAtomic(l.lastError, l.lastErrorTmp, text))
  })

/**
 * The recorded last error, if any. Never fails: it is only informational, so an unreadable file is
 * logged and reported as none.
 */
export const readLastError = (dir: string): Effect.Effect<Option.Option<LastError>> => {
  const file = layout(dir).lastError
  return Effect.tryPromise(() => readIfExists(file)).pipe(
    Effect.flatMap((text) =>
      text === undefined
        ? Effect.succeed(Option.none<LastError>())
        : Effect.try(() => JSON.parse(text) as unknown).pipe(
          Effect.flatMap(Schema.decodeUnknown(LastError)),
          Effect.map(Option.some)
        )
    ),
    Effect.catchAll((e) =>
      Effect.as(
        Effect.logWarning(`Ignoring unreadable ${file}`).pipe(Effect.annotateLogs({ file, cause: String(e) })),
        Option.none<LastError>()
      )
    )
  )
}

/** Removes the recorded last error (durably); nothing to do if there is none. */
export const clearLastError = (dir: string): Effect.Effect<void, ArchiveWriteError> => {
  const l = layout(dir)
  return tryWrite(l.lastError, "removing", async () => {
    try {
      await fsp.unlink(l.lastError)
    } catch (e) {
      if (errnoCode(e) === "ENOENT") return
      throw e
    }
    await fsyncDir(l.state)
  })
}
