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
import type * as HttpClient from "@effect/platform/HttpClient"
import * as HttpClientRequest from "@effect/platform/HttpClientRequest"
import * as Clock from "effect/Clock"
import * as Duration from "effect/Duration"
import * as Effect from "effect/Effect"
import * as Either from "effect/Either"
import * as Equivalence from "effect/Equivalence"
import * as Option from "effect/Option"
import * as Redacted from "effect/Redacted"
import * as Ref from "effect/Ref"
import * as Schema from "effect/Schema"
import type { EventsApiError } from "./EventsApiError.js"
import { TokenRefreshFailed } from "./EventsApiError.js"
import * as Http from "./internal/http.js"

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

/** The token source the client asks before each request. */
export interface AccessTokens {
  /** The token to send now (refreshing first when there is none or it is about to expire). */
  readonly current: Effect.Effect<Redacted.Redacted<string>, EventsApiError>
  /**
   * The server answered 401 to `token`. Refreshes unless another request already replaced it;
   * `true` when a different token is now available and the request is worth repeating.
   */
  readonly rejected: (token: Redacted.Redacted<string>) => Effect.Effect<boolean, EventsApiError>
}

/** A fixed token: a 401 is final. */
export const fixed = (token: Redacted.Redacted<string>): AccessTokens => ({
  current: Effect.succeed(token),
  rejected: () => Effect.succeed(false)
})

const TokenResponse = Schema.Struct({
  access_token: Schema.NonEmptyString,
  expires_in: Schema.Number,
  refresh_token: Schema.NonEmptyString
})

const GRANT_HINT = "Re-authorise the integration to get a new refresh token, and store it where the client reads it."

/**
 * A refreshing token source. `initial` is an access token to start with (it may be missing or
 * already expired: a 401 then triggers the first refresh).
 */
export const refreshing = (options: {
  readonly refresh: RefreshOptions
  readonly initial: Option.Option<Redacted.Redacted<string>>
  readonly client: HttpClient.HttpClient
  /** The API base URL: the grant goes to `${baseUrl}/access_token`, the same origin as every request. */
  readonly baseUrl: string
  readonly timeout: Duration.Duration
  /** Wraps each refresh attempt, e.g. in the retry policy for 429s, 5xx and dropped connections. */
  readonly retry: <A>(attempt: Effect.Effect<A, EventsApiError>) => Effect.Effect<A, EventsApiError>
}): Effect.Effect<AccessTokens> =>
  Effect.gen(function*() {
    const { refresh } = options
    const url = `${options.baseUrl}/access_token`
    const margin = Duration.toMillis(Duration.decode(refresh.refreshBefore ?? "1 hour"))
    const state = yield* Ref.make({
      access: options.initial,
      refreshToken: refresh.refreshToken,
      // Unknown expiry for a token given from outside: only a 401 replaces it.
      expiresAt: Number.POSITIVE_INFINITY
    })
    const lock = yield* Effect.makeSemaphore(1)

    const grant = (refreshToken: Redacted.Redacted<string>): Effect.Effect<Rotated, EventsApiError> =>
      Effect.gen(function*() {
        const request = HttpClientRequest.post(url).pipe(
          HttpClientRequest.acceptJson,
          HttpClientRequest.bodyUrlParams({
            grant_type: "refresh_token",
            client_id: refresh.clientId,
            client_secret: Redacted.value(refresh.clientSecret),
            refresh_token: Redacted.value(refreshToken)
          })
        )
        const response = yield* Http.exchange(options.client, request, url, options.timeout)
        if (response.status >= 200 && response.status < 300) {
          const parsed = Either.try(() => JSON.parse(response.body) as unknown).pipe(
            Either.flatMap((json) => Schema.decodeUnknownEither(TokenResponse)(json))
          )
          if (Either.isLeft(parsed)) {
            return yield* new TokenRefreshFailed({
              ...Http.responseFields(response, url),
              message: "The token endpoint answered without access_token, expires_in and refresh_token"
            })
          }
          const now = yield* Clock.currentTimeMillis
          return {
            accessToken: Redacted.make(parsed.right.access_token),
            refreshToken: Redacted.make(parsed.right.refresh_token),
            expiresAt: now + parsed.right.expires_in * 1000
          }
        }
        const body = Http.errorBody(response.body)
        // 400/401 from the token endpoint mean the grant itself was refused: retrying cannot help.
        if (response.status === 400 || response.status === 401) {
          return yield* new TokenRefreshFailed({
            ...Http.responseFields(response, url),
            ...(body.error !== undefined ? { error: body.error } : {}),
            message: `The access token could not be refreshed (${body.error ?? `HTTP ${response.status}`}` +
              `${body.message !== undefined ? `: ${body.message}` : ""}). ${GRANT_HINT}`
          })
        }
        return yield* Effect.flip(Http.errorFromResponse(response, url, undefined))
      })

    /** Refreshes unless `stale` is no longer the current token (someone else refreshed meanwhile). */
    const refreshFrom = (stale: Option.Option<Redacted.Redacted<string>>) =>
      lock.withPermits(1)(
        Effect.gen(function*() {
          const s = yield* Ref.get(state)
          if (!Option.getEquivalence(Redacted.getEquivalence(Equivalence.string))(s.access, stale)) return true
          const rotated = yield* options.retry(grant(s.refreshToken))
          if (refresh.onRotate !== undefined) {
            yield* refresh.onRotate(rotated).pipe(
              Effect.catchAllCause((cause) =>
                new TokenRefreshFailed({
                  url,
                  message: `The refreshed tokens could not be persisted, so the new refresh token would be lost: ${
                    String(cause).split("\n")[0]
                  }`
                })
              )
            )
          }
          yield* Ref.set(state, {
            access: Option.some(rotated.accessToken),
            refreshToken: rotated.refreshToken,
            expiresAt: rotated.expiresAt
          })
          yield* Effect.logInfo("Access token refreshed").pipe(
            Effect.annotateLogs({ expiresAt: new Date(rotated.expiresAt).toISOString() })
          )
          return true
        })
      )

    const current: AccessTokens["current"] = Effect.gen(function*() {
      const s = yield* Ref.get(state)
      const now = yield* Clock.currentTimeMillis
      if (Option.isNone(s.access) || now >= s.expiresAt - margin) yield* refreshFrom(s.access)
      const access = (yield* Ref.get(state)).access
      // refreshFrom either set a token or failed, so this is always Some here.
      return Option.getOrThrow(access)
    })

    return {
      current,
      rejected: (token) => refreshFrom(Option.some(token))
    }
  })
