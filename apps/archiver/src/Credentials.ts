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
import * as Effect from "effect/Effect"
import * as Option from "effect/Option"
import * as Redacted from "effect/Redacted"
import * as Schema from "effect/Schema"
import * as fs from "node:fs/promises"
import { registerSecret } from "./Redaction.js"
import { headerSafetyProblem, writeSecretAtomic } from "./SecretFile.js"

/** A problem with the credentials given, found before any request (exit 78). */
export class CredentialsError extends Schema.TaggedError<CredentialsError>()("CredentialsError", {
  /** Where the credential comes from: a flag (`--token-file`) or an environment variable. */
  source: Schema.String,
  /** The file at fault, when the source is a file. */
  file: Schema.optional(Schema.String),
  problem: Schema.String
}) {
  override get message(): string {
    return this.file === undefined ? `${this.source}: ${this.problem}` : `${this.source} ${this.file}: ${this.problem}`
  }
}

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

const remember = (secret: Redacted.Redacted<string>) =>
  Effect.sync(() => {
    registerSecret(secret)
    return secret
  })

/** Reads one secret from a file: exactly one header-safe value, and a warning if others may read it. */
const secretFile = (file: string, flag: string) =>
  Effect.gen(function*() {
    const { bytes, mode } = yield* Effect.tryPromise({
      try: async () => ({ bytes: await fs.readFile(file), mode: (await fs.stat(file)).mode }),
      catch: (e) =>
        new CredentialsError({
          source: flag,
          file,
          problem: `cannot be read (${(e as NodeJS.ErrnoException).code ?? (e as Error).message})`
        })
    })
    const problem = headerSafetyProblem(bytes)
    if (problem !== undefined) return yield* new CredentialsError({ source: flag, file, problem })
    if ((mode & 0o077) !== 0) yield* Effect.logWarning(`${file} is readable by other users; chmod 600 it`)
    return yield* remember(Redacted.make(new TextDecoder().decode(bytes).trim()))
  })

const secretEnv = (name: string) =>
  Effect.gen(function*() {
    const value = yield* Config.option(Config.redacted(name)).pipe(Effect.orDie)
    if (Option.isNone(value)) return Option.none<Redacted.Redacted<string>>()
    const text = Redacted.value(value.value)
    if (text.trim() === "") return Option.none<Redacted.Redacted<string>>()
    const problem = headerSafetyProblem(new TextEncoder().encode(text))
    if (problem !== undefined) return yield* new CredentialsError({ source: `env ${name}`, problem })
    return Option.some(yield* remember(Redacted.make(text.trim())))
  })

const fileOrEnv = (file: Option.Option<string>, flag: string, env: string) =>
  Option.isSome(file) ? Effect.map(secretFile(file.value, flag), Option.some) : secretEnv(env)

export const read = (sources: Sources): Effect.Effect<Credentials, CredentialsError> =>
  Effect.gen(function*() {
    const token = yield* fileOrEnv(sources.tokenFile, "--token-file", "WEBEX_TOKEN")
    if (Option.isNone(sources.refreshTokenFile)) {
      if (Option.isNone(token)) {
        return yield* new CredentialsError({
          source: "--token-file",
          problem: "no token: set WEBEX_TOKEN, pass --token-file <path>, or configure --refresh-token-file " +
            "(try `webex-archiver demo` for a run without one)"
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
        source: "--refresh-token-file",
        file: refreshFile,
        problem: "also needs the integration's client id (--client-id or WEBEX_CLIENT_ID) " +
          "and client secret (--client-secret-file or WEBEX_CLIENT_SECRET)"
      })
    }
    const refresh: AccessToken.RefreshOptions = {
      clientId: clientId.value.trim(),
      clientSecret: clientSecret.value,
      refreshToken: yield* secretFile(refreshFile, "--refresh-token-file"),
      // The presented refresh token is spent once the new one arrives: persist before using.
      onRotate: ({ refreshToken }) =>
        Effect.zipRight(
          remember(refreshToken),
          Effect.tryPromise(() => writeSecretAtomic(refreshFile, `${Redacted.value(refreshToken)}\n`))
        )
    }
    return Option.isSome(token) ? { token: token.value, refresh } : { refresh }
  })
