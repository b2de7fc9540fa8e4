/**
 * The archiver's credentials: an access token, and optionally what it takes to refresh it.
 *
 * Every secret is `Redacted` from the moment it is read. None is accepted as a flag value (flags
 * end up in shell history and process listings): they come from files or the environment.
 *
 * - Access token: `--token-file` or env `WEBEX_TOKEN`.
 * - Refresh (a daemon running longer than an access token lives, ~14 days): `--refresh-token-file`
 *   with the integration's client id (`--client-id` / env `WEBEX_CLIENT_ID`) and secret
 *   (`--client-secret-file` / env `WEBEX_CLIENT_SECRET`). Webex rotates the refresh token on each
 *   use, so the file is rewritten atomically (0600) with every new one before it is used; the
 *   access token itself is never written anywhere.
 */
import type { AccessToken, EventsApi } from "@webex-compliance/events-api"
import * as Config from "effect/Config"
import * as Data from "effect/Data"
import * as Effect from "effect/Effect"
import * as Option from "effect/Option"
import * as Redacted from "effect/Redacted"
import * as fs from "node:fs/promises"
import { writeFileAtomic } from "./internal/archiveFs.js"

/** A problem with the credentials given, found before any request. */
export class CredentialsError extends Data.TaggedError("CredentialsError")<{ readonly message: string }> {}

export interface Sources {
  readonly tokenFile: Option.Option<string>
  readonly refreshTokenFile: Option.Option<string>
  readonly clientId: Option.Option<string>
  readonly clientSecretFile: Option.Option<string>
}

/** What `EventsApi.layer` takes: a token, a refresh configuration, or both. */
export type Credentials = Pick<EventsApi.Options, "token" | "refresh"> & (
  | { readonly token: Redacted.Redacted<string> }
  | { readonly refresh: AccessToken.RefreshOptions }
)

/** Reads one secret from a file: exactly one token, and a warning if others may read it. */
const secretFile = (file: string, flag: string) =>
  Effect.gen(function*() {
    const { mode, text } = yield* Effect.tryPromise({
      try: async () => ({ text: await fs.readFile(file, "utf8"), mode: (await fs.stat(file)).mode }),
      catch: (e) => new CredentialsError({ message: `Cannot read ${flag} ${file}: ${(e as Error).message}` })
    })
    const value = text.trim()
    if (value === "" || /\s/.test(value)) {
      return yield* new CredentialsError({ message: `${flag} ${file} must hold exactly one value, on one line` })
    }
    if ((mode & 0o077) !== 0) yield* Effect.logWarning(`${file} is readable by other users; chmod 600 it`)
    return Redacted.make(value)
  })

const secretEnv = (name: string) =>
  Config.option(Config.redacted(name)).pipe(
    Effect.orDie,
    Effect.map(Option.flatMap((r) => {
      const v = Redacted.value(r).trim()
      return v === "" ? Option.none() : Option.some(Redacted.make(v))
    }))
  )

const fileOrEnv = (file: Option.Option<string>, flag: string, env: string) =>
  Option.isSome(file) ? Effect.map(secretFile(file.value, flag), Option.some) : secretEnv(env)

export const read = (sources: Sources): Effect.Effect<Credentials, CredentialsError> =>
  Effect.gen(function*() {
    const token = yield* fileOrEnv(sources.tokenFile, "--token-file", "WEBEX_TOKEN")
    if (Option.isNone(sources.refreshTokenFile)) {
      if (Option.isNone(token)) {
        return yield* new CredentialsError({
          message: "No token: set WEBEX_TOKEN, pass --token-file <path>, or configure --refresh-token-file " +
            "(try `pnpm archiver demo` for a run without one)"
        })
      }
      return { token: token.value }
    }
    const refreshFile = sources.refreshTokenFile.value
    const clientId = Option.isSome(sources.clientId)
      ? sources.clientId
      : yield* Config.option(Config.string("WEBEX_CLIENT_ID")).pipe(Effect.orDie)
    const clientSecret = yield* fileOrEnv(sources.clientSecretFile, "--client-secret-file", "WEBEX_CLIENT_SECRET")
    if (Option.isNone(clientId) || clientId.value.trim() === "" || Option.isNone(clientSecret)) {
      return yield* new CredentialsError({
        message: "--refresh-token-file also needs the integration's client id (--client-id or WEBEX_CLIENT_ID) " +
          "and client secret (--client-secret-file or WEBEX_CLIENT_SECRET)"
      })
    }
    const refresh: AccessToken.RefreshOptions = {
      clientId: clientId.value.trim(),
      clientSecret: clientSecret.value,
      refreshToken: yield* secretFile(refreshFile, "--refresh-token-file"),
      // The presented refresh token is spent once the new one arrives: persist before using.
      onRotate: ({ refreshToken }) =>
        Effect.tryPromise(() => writeFileAtomic(refreshFile, `${refreshFile}.tmp`, `${Redacted.value(refreshToken)}\n`))
    }
    return Option.isSome(token) ? { token: token.value, refresh } : { refresh }
  })
