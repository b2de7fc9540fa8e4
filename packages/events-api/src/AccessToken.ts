/**
 * Where the bearer token comes from: a fixed token, or one kept fresh with the OAuth
 * refresh-token grant.
 *
 * Integration access tokens last about 14 days, so a daemon that runs for months must refresh
 * them (`POST /v1/access_token`, `grant_type=refresh_token`). Webex rotates the refresh token on
 * every use: the new one must be persisted before the old one is forgotten, or the next start
 * presents a spent token and is refused with `invalid_grant`.
 *
 * A refresh happens before the first request when there is no access token yet, shortly before
 * the current one expires, and after a 401. Concurrent requests that all see the same 401 share
 * one refresh.
 *
 * @example
 * ```ts
 * EventsApi.layer({
 *   refresh: {
 *     clientId: "C1234…",
 *     clientSecret: Redacted.make(process.env.WEBEX_CLIENT_SECRET!),
 *     refreshToken: Redacted.make(readFileSync("refresh-token", "utf8").trim()),
 *     onRotate: ({ refreshToken }) => Effect.promise(() => saveSomewhereSafe(refreshToken))
 *   }
 * })
 * ```
 *
 * @since 0.1.0
 */
import type * as Duration from "effect/Duration"
import type * as Effect from "effect/Effect"
import type * as Redacted from "effect/Redacted"

/** How to refresh access tokens. */
export interface RefreshOptions {
  /** The integration's client id. */
  readonly clientId: string
  readonly clientSecret: Redacted.Redacted<string>
  /** The current refresh token. */
  readonly refreshToken: Redacted.Redacted<string>
  /**
   * Called after every successful refresh with the rotated tokens, before they are used. Persist
   * the refresh token here: the one presented is spent. A failure stops the client with
   * `TokenRefreshFailed` rather than carry on with a token nobody can recover.
   */
  readonly onRotate?:
    | ((tokens: Rotated) => Effect.Effect<void, unknown>)
    | undefined
  /** Refresh this long before the access token expires. Default 1 hour. */
  readonly refreshBefore?: Duration.DurationInput | undefined
}

/** The outcome of one refresh. */
export interface Rotated {
  readonly accessToken: Redacted.Redacted<string>
  readonly refreshToken: Redacted.Redacted<string>
  /** When the access token expires, epoch millis. */
  readonly expiresAt: number
}
