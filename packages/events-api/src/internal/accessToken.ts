/**
 * The token source the client asks before each request: a fixed token, or one kept fresh with
 * the OAuth refresh-token grant (see the public `AccessToken` module for the why).
 *
 * A refresh is one attempt, never retried here: a transient failure of the token endpoint fails
 * the request that needed the token, and that request's retry policy decides. One budget covers
 * both, so a 500 from `/access_token` costs `maxAttempts` requests, not `maxAttempts²`.
 */
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
import type { RefreshOptions, Rotated } from "../AccessToken.js"
import type { EventsApiError } from "../EventsApiError.js"
import { TokenRefreshFailed } from "../EventsApiError.js"
import * as Http from "./http.js"
import { clean, isHeaderSafe, type Secrets } from "./sanitize.js"

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
  // It goes into an Authorization header: a token that cannot is an unusable answer.
  access_token: Schema.NonEmptyString.pipe(Schema.filter((t) => isHeaderSafe(t))),
  expires_in: Schema.Number,
  refresh_token: Schema.NonEmptyString
})

/**
 * A refreshing token source. `initial` is an access token to start with (it may be missing or
 * already expired: a 401 then triggers the first refresh).
 */
export const refreshing = (options: {
  readonly refresh: RefreshOptions
  readonly initial: Option.Option<Redacted.Redacted<string>>
  readonly client: Http.ScopedClient
  /** The API base URL: the grant goes to `${baseUrl}/access_token`, the same origin as every request. */
  readonly baseUrl: string
  readonly http: Http.Settings
  /** Every new token is added here before it is used, so no error text can carry it. */
  readonly secrets: Secrets
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
        const response = yield* Http.exchange(options.client, request, url, options.http)
        if (response.status >= 200 && response.status < 300) {
          const parsed = Either.try(() => JSON.parse(Http.text(response.body)) as unknown).pipe(
            Either.flatMap((json) => Schema.decodeUnknownEither(TokenResponse)(json))
          )
          if (Either.isLeft(parsed)) {
            // The parse error would quote the body, and with it any token it held: keep only the status.
            const trackingId = response.headers["trackingid"]
            return yield* new TokenRefreshFailed({
              stage: "response",
              status: response.status,
              url,
              ...(trackingId !== undefined ? { trackingId: clean(trackingId, [], 100) } : {})
            })
          }
          const now = yield* Clock.currentTimeMillis
          const rotated = {
            accessToken: Redacted.make(parsed.right.access_token),
            refreshToken: Redacted.make(parsed.right.refresh_token),
            expiresAt: now + parsed.right.expires_in * 1000
          }
          options.secrets.add(rotated.accessToken)
          options.secrets.add(rotated.refreshToken)
          return rotated
        }
        // 400/401 from the token endpoint mean the grant itself was refused: retrying cannot help.
        if (response.status === 400 || response.status === 401) {
          return yield* TokenRefreshFailed.fromResponse(Http.responseDetails(response, url, options.http.secrets()))
        }
        return yield* Effect.flip(Http.errorFromResponse(response, url, undefined, options.http.secrets()))
      }).pipe(Effect.withSpan("EventsApi.refreshToken"))

    /** Refreshes unless `stale` is no longer the current token (someone else refreshed meanwhile). */
    const refreshFrom = (stale: Option.Option<Redacted.Redacted<string>>) =>
      lock.withPermits(1)(
        Effect.gen(function*() {
          const s = yield* Ref.get(state)
          if (!Option.getEquivalence(Redacted.getEquivalence(Equivalence.string))(s.access, stale)) return true
          const rotated = yield* grant(s.refreshToken)
          if (refresh.onRotate !== undefined) {
            yield* refresh.onRotate(rotated).pipe(
              Effect.catchAllCause((cause) =>
                new TokenRefreshFailed({
                  stage: "persist",
                  url,
                  detail: clean(String(cause).split("\n")[0] ?? "", options.http.secrets()),
                  cause
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
