import { describe, expect, it } from "@effect/vitest"
import * as Effect from "effect/Effect"
import * as Fiber from "effect/Fiber"
import * as Redacted from "effect/Redacted"
import * as Stream from "effect/Stream"
import * as TestClock from "effect/TestClock"
import type * as AccessToken from "../src/AccessToken.js"
import * as EventsApi from "../src/EventsApi.js"
import * as Errors from "../src/EventsApiError.js"
import type { Answer } from "./support/StubHttp.js"
import { BASE_URL, event, makeApi, page, stub, TOKEN } from "./support/StubHttp.js"

const tokenReply = (n: number, expiresIn = 1209599): Answer => ({
  status: 200,
  body: JSON.stringify({
    access_token: `access-${n}`,
    expires_in: expiresIn,
    refresh_token: `refresh-${n}`,
    refresh_token_expires_in: 7775999,
    token_type: "Bearer"
  }),
  headers: { "content-type": "application/json" }
})

const isGrant = (url: URL) => url.pathname === "/v1/access_token"

/** A server that accepts exactly the access tokens it issued last, and rotates refresh tokens. */
const oauthServer = (options: { readonly expiresIn?: number; readonly initialValid?: string } = {}) => {
  let issued = 0
  let valid = options.initialValid
  let refreshToken = "refresh-0"
  const s = stub((url) => {
    if (isGrant(url)) {
      const body = new URLSearchParams(s.calls[s.calls.length - 1]!.body)
      if (body.get("refresh_token") !== refreshToken) {
        return {
          status: 400,
          body: JSON.stringify({ error: "invalid_grant", error_description: "refresh token is spent", trackingId: "t-grant" })
        }
      }
      issued++
      valid = `access-${issued}`
      refreshToken = `refresh-${issued}`
      return tokenReply(issued, options.expiresIn)
    }
    const auth = s.calls[s.calls.length - 1]!.headers["authorization"]
    return auth === `Bearer ${valid}`
      ? page([event({ id: `seen-with-${valid}` })])
      : { status: 401, body: JSON.stringify({ message: "token expired", trackingId: "t-401" }) }
  })
  return s
}

const refreshOptions = (rotated: Array<AccessToken.Rotated> = [], extra: Partial<AccessToken.RefreshOptions> = {}) => ({
  clientId: "client-1",
  clientSecret: Redacted.make("client-secret"),
  refreshToken: Redacted.make("refresh-0"),
  onRotate: (tokens: AccessToken.Rotated) => Effect.sync(() => void rotated.push(tokens)),
  ...extra
})

const ids = (api: EventsApi.Service) =>
  Stream.runCollect(api.list()).pipe(Effect.map((c) => Array.from(c, (e) => e.id)))

describe("AccessToken", () => {
  it.effect("without an access token, refreshes first: a form POST to the API's own /access_token", () =>
    Effect.gen(function*() {
      const s = oauthServer()
      const rotated: Array<AccessToken.Rotated> = []
      const api = yield* refreshingApi(s, undefined, refreshOptions(rotated))
      expect(yield* ids(api)).toEqual(["seen-with-access-1"])
      const grant = s.calls[0]!
      expect(grant.method).toBe("POST")
      expect(grant.url.toString()).toBe(`${BASE_URL}/access_token`)
      expect(grant.headers["authorization"]).toBeUndefined()
      expect(Object.fromEntries(new URLSearchParams(grant.body))).toEqual({
        grant_type: "refresh_token",
        client_id: "client-1",
        client_secret: "client-secret",
        refresh_token: "refresh-0"
      })
      expect(s.calls[1]!.headers["authorization"]).toBe("Bearer access-1")
      // The rotated refresh token is handed over to be persisted.
      expect(rotated.map((r) => Redacted.value(r.refreshToken))).toEqual(["refresh-1"])
      expect(rotated[0]!.expiresAt).toBe(1209599 * 1000)
    }))

  it.effect("a 401 refreshes once and repeats the request; the repeated request's answer is the result", () =>
    Effect.gen(function*() {
      const s = oauthServer()
      // Start with a stale token given from outside.
      const stale = yield* refreshingApi(s, "expired-token")
      expect(yield* ids(stale)).toEqual(["seen-with-access-1"])
      expect(s.calls.map((c) => `${c.method} ${c.url.pathname} ${c.headers["authorization"] ?? "-"}`)).toEqual([
        "GET /v1/events Bearer expired-token",
        "POST /v1/access_token -",
        "GET /v1/events Bearer access-1"
      ])
    }))

  it.effect("concurrent requests that all meet the same 401 share one refresh", () =>
    Effect.gen(function*() {
      const s = oauthServer()
      const api = yield* refreshingApi(s, "expired-token")
      const results = yield* Effect.all([ids(api), ids(api), ids(api), ids(api)], { concurrency: "unbounded" })
      expect(results.flat()).toEqual(Array(4).fill("seen-with-access-1"))
      expect(s.calls.filter((c) => isGrant(c.url))).toHaveLength(1)
    }))

  it.effect("refreshes ahead of expiry, on the Clock", () =>
    Effect.gen(function*() {
      const s = oauthServer({ expiresIn: 3 * 3600 })
      const api = yield* refreshingApi(s, undefined)
      expect(yield* ids(api)).toEqual(["seen-with-access-1"])
      yield* TestClock.adjust("1 hour")
      expect(yield* ids(api)).toEqual(["seen-with-access-1"])
      // Within the default one-hour margin of the expiry: refreshed before the request, no 401 needed.
      yield* TestClock.adjust("61 minutes")
      expect(yield* ids(api)).toEqual(["seen-with-access-2"])
      expect(s.calls.filter((c) => isGrant(c.url))).toHaveLength(2)
      expect(s.calls.some((c) => c.url.pathname === "/v1/events" && c.headers["authorization"] === "Bearer access-1" && c.at >= 2 * 3600_000)).toBe(false)
    }))

  it.effect("a refused grant fails with TokenRefreshFailed naming invalid_grant, without retrying", () =>
    Effect.gen(function*() {
      const s = oauthServer()
      const api = yield* refreshingApi(s, undefined, refreshOptions([], { refreshToken: Redacted.make("spent") }))
      const error = yield* Effect.flip(ids(api))
      expect(error).toBeInstanceOf(Errors.TokenRefreshFailed)
      expect(error).toMatchObject({ status: 400, error: "invalid_grant", trackingId: "t-grant" })
      expect((error as Errors.TokenRefreshFailed).message).toContain("Re-authorise")
      expect((error as Errors.TokenRefreshFailed).message).not.toContain("spent\"")
      expect(s.calls).toHaveLength(1)
    }))

  it.effect("a token endpoint 5xx is retried like any transient failure", () =>
    Effect.gen(function*() {
      let grants = 0
      const s = stub((url) => {
        if (isGrant(url)) return ++grants === 1 ? { status: 503, body: "busy" } : tokenReply(1)
        return page([event({ id: "ok" })])
      })
      const api = yield* refreshingApi(s, undefined, refreshOptions(), { retry: { baseDelay: "1 second" } })
      const fiber = yield* Effect.fork(ids(api))
      yield* TestClock.adjust("10 seconds")
      expect(yield* Fiber.join(fiber)).toEqual(["ok"])
      expect(grants).toBe(2)
    }))

  it.effect("if the rotated refresh token cannot be persisted, the client stops instead of losing it", () =>
    Effect.gen(function*() {
      const s = oauthServer()
      const api = yield* refreshingApi(s, undefined, refreshOptions([], { onRotate: () => Effect.fail(new Error("disk full")) }))
      const error = yield* Effect.flip(ids(api))
      expect(error).toBeInstanceOf(Errors.TokenRefreshFailed)
      expect((error as Errors.TokenRefreshFailed).message).toContain("disk full")
      expect(s.calls.filter((c) => c.url.pathname === "/v1/events")).toHaveLength(0)
    }))

  it.effect("no secret ever appears in an error", () =>
    Effect.gen(function*() {
      const s = stub((url) =>
        isGrant(url) ? { status: 401, body: JSON.stringify({ error: "invalid_client" }) } : page([])
      )
      const api = yield* refreshingApi(s, undefined)
      const error = yield* Effect.flip(ids(api))
      expect(error).toMatchObject({ _tag: "TokenRefreshFailed", error: "invalid_client" })
      const text = JSON.stringify(error) + String(error)
      for (const secret of ["client-secret", "refresh-0", TOKEN]) expect(text).not.toContain(secret)
    }))

  it.effect("with a fixed token a 401 is final: Unauthorized, no refresh attempted", () =>
    Effect.gen(function*() {
      const s = oauthServer()
      const api = yield* makeApi(s)
      const error = yield* Effect.flip(ids(api))
      expect(error).toBeInstanceOf(Errors.Unauthorized)
      expect(s.calls.filter((c) => isGrant(c.url))).toHaveLength(0)
    }))
})

/** The real service on the stub, refreshing, starting from `token` (none: refresh first). */
const refreshingApi = (
  s: ReturnType<typeof stub>,
  token: string | undefined,
  refresh: AccessToken.RefreshOptions = refreshOptions(),
  options: EventsApi.CommonOptions = {}
) =>
  EventsApi.make({
    ...options,
    baseUrl: BASE_URL,
    refresh,
    ...(token !== undefined ? { token: Redacted.make(token) } : {})
  }).pipe(Effect.provide(s.layer))
