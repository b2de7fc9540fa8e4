/**
 * The fake server's request handling: routing, request-level faults and authentication, the list,
 * get and token handlers, and the request log. Transport-free: the Node server that runs it is
 * chosen (and loaded) by `FakeWebex.make`.
 *
 * @internal
 */
import * as HttpRouter from "@effect/platform/HttpRouter"
import * as HttpServerRequest from "@effect/platform/HttpServerRequest"
import * as HttpServerResponse from "@effect/platform/HttpServerResponse"
import * as Clock from "effect/Clock"
import * as Context from "effect/Context"
import * as Effect from "effect/Effect"
import type { FaultKind, Faults, OAuthOptions } from "../FakeWebex.js"
import { type EventStore, pageBody } from "./eventStore.js"
import { endlessBody, fillerItem, giantPage, invalidUtf8Item } from "./hostile.js"
import { parseInstant } from "./instant.js"
import {
  badRequest,
  decoration,
  errorResponse,
  jsonResponse,
  MESSAGES,
  OAuthReply,
  oauthErrorResponse,
  Reply,
  retryAfterHeader
} from "./responses.js"
import type { ServerState } from "./serverState.js"
import { REFRESH_TOKEN_TTL_SECONDS, type Tokens } from "./tokens.js"

/** The server's clock, whatever the caller's (see the end of {@link makeApp}). */
export const liveClock = Clock.make()

/**
 * What one request carries through the handlers. Mutable only in `fault`, set by the list handler,
 * and in `grantType` and `secrets`, set by the token handler.
 */
interface RequestContext {
  readonly trackingId: string
  readonly faults: Faults
  readonly url: URL
  fault: FaultKind | undefined
  grantType: string | undefined
  /** What `echoSecrets` repeats: the bearer token, or the token request's refresh token and secret. */
  secrets: ReadonlyArray<readonly [string, string | undefined]>
}
const RequestContext = Context.GenericTag<RequestContext>("@webex-compliance/events-api/testing/FakeWebex/Request")

const FILTER_PARAMS = ["resource", "type", "actorId", "from", "to"] as const

const encodeCursor = (offset: number) => Buffer.from(JSON.stringify({ offset })).toString("base64url")

const decodeCursor = (cursor: string): number | undefined => {
  try {
    const parsed: unknown = JSON.parse(Buffer.from(cursor, "base64url").toString("utf8"))
    const offset = typeof parsed === "object" && parsed !== null ? (parsed as { offset?: unknown }).offset : undefined
    return typeof offset === "number" && Number.isSafeInteger(offset) && offset >= 0 ? offset : undefined
  } catch {
    return undefined
  }
}

/** Junk that no schema accepts: a number id and a `created` that is no date. */
const JUNK_ITEM = new TextEncoder().encode(`{"id": 42, "created": "yesterday"}`)

/** The part of the listed items a hostile body repeats: enough variety, bounded memory. */
const HOSTILE_SOURCE_ITEMS = 1000

export interface App {
  readonly store: EventStore
  readonly state: ServerState
  readonly tokens: Tokens
  readonly oauth: OAuthOptions | undefined
  readonly origin: string
  /** Resets the request's connection without any response (the transport's business). */
  readonly dropConnection: (request: HttpServerRequest.HttpServerRequest) => void
}

export const makeApp = ({ dropConnection, oauth, origin, state, store, tokens }: App) => {
  const listEvents = Effect.gen(function*() {
    const ctx = yield* RequestContext
    const params = ctx.url.searchParams
    const param = (name: string) => params.get(name) ?? undefined

    let offset = 0
    const cursor = param("cursor")
    if (cursor !== undefined) {
      const decoded = decodeCursor(cursor)
      if (decoded === undefined) return yield* badRequest("Invalid cursor.")
      offset = decoded
    }

    const maxText = param("max")
    const max = maxText === undefined ? 100 : /^\d{1,4}$/.test(maxText) ? Number(maxText) : NaN
    if (!(max >= 1 && max <= 1000)) {
      return yield* badRequest(`max must be an integer between 1 and 1000, got ${JSON.stringify(maxText)}.`)
    }

    const instant = (name: "from" | "to") => {
      const text = param(name)
      if (text === undefined) return Effect.succeed(undefined)
      const ms = parseInstant(text)
      return ms === undefined
        ? Effect.fail(badRequest(`${name} must be an ISO-8601 date-time, got ${JSON.stringify(text)}.`))
        : Effect.succeed(ms)
    }
    const from = yield* instant("from")
    const to = yield* instant("to")
    const now = yield* Clock.currentTimeMillis
    if (to !== undefined && to > now) {
      // The live API refuses a future `to` (older docs said it clamped): clients must clamp.
      return yield* badRequest("to must not be in the future.")
    }

    const { faults } = ctx
    if (faults.gatewayTimeoutAboveMax > 0 && max > faults.gatewayTimeoutAboveMax) {
      return yield* new Reply({ status: 504, message: MESSAGES[504], description: MESSAGES[504], fault: "gatewayTimeout" })
    }

    if (faults.onwardEmptyPages) {
      // Nothing, and a next link that is never the same twice: only a client's own limit ends this.
      ctx.fault = "onwardEmptyPage"
      return jsonResponse(200, `{"items":[]}`, ctx.trackingId, {
        link: `<${nextLink(ctx, max, offset + max)}>; rel="next"`
      })
    }

    if (state.fires("malformedPage", faults.malformedPageEvery)) {
      ctx.fault = "malformedPage"
      return jsonResponse(200, `{"items":[{"id":"cut-off-in-the-mid`, ctx.trackingId, {})
    }

    // Offsets index the *current* list, as a live cursor over a changing data set does: events that
    // arrive between pages shift later pages, and an item already served can be served again.
    const list = store.list({ resource: param("resource"), type: param("type"), actorId: param("actorId"), from, to })

    if (faults.endlessBody || faults.giantPageItems > 0) {
      const sources: Array<Uint8Array> = []
      for (let k = 0; k < Math.min(list.length, HOSTILE_SOURCE_ITEMS); k++) sources.push(store.bytes(list[k]!))
      if (sources.length === 0) sources.push(fillerItem(state.nextInjected()))
      ctx.fault = faults.endlessBody ? "endlessBody" : "giantPage"
      return HttpServerResponse.stream(
        faults.endlessBody ? endlessBody(sources[0]!) : giantPage(sources, faults.giantPageItems),
        { status: 200, contentType: "application/json", headers: { trackingid: ctx.trackingId } }
      )
    }

    const end = Math.min(list.length, offset + max)
    const parts: Array<Uint8Array> = []
    for (let k = offset; k < end; k++) parts.push(store.bytes(list[k]!))
    if (state.fires("page", faults.malformedItemEvery)) {
      parts.push(JUNK_ITEM)
      ctx.fault = "malformedItem"
    }
    // Only on a page with events: the extra one borrows the first one's `created`, so it lies in
    // the window the page was listed for.
    if (end > offset && state.fires("invalidUtf8", faults.invalidUtf8Every)) {
      const created = new Date(store.createdOf(list[offset]!)).toISOString()
      parts.push(invalidUtf8Item(`invalid-utf8-${state.nextInjected()}`, created))
      ctx.fault ??= "invalidUtf8"
    }

    const headers: Record<string, string> = {}
    if (offset + max < list.length) headers.link = `<${nextLink(ctx, max, offset + max)}>; rel="next"`
    // Concatenated, not re-serialised: each item goes out byte for byte as it was stored.
    return jsonResponse(200, pageBody(parts), ctx.trackingId, headers)
  })

  /** The next page's URL. The cursor holds only the offset, so lost filters really are lost. */
  const nextLink = (ctx: RequestContext, max: number, offset: number): string => {
    const next = new URLSearchParams()
    if (!ctx.faults.nextLinkDropsFilters) {
      for (const name of FILTER_PARAMS) {
        const value = ctx.url.searchParams.get(name)
        if (value !== null) next.set(name, value)
      }
    }
    next.set("max", ctx.faults.nextLinkMaxNull ? "null" : String(max))
    next.set("cursor", encodeCursor(offset))
    const linkOrigin = ctx.faults.nextLinkOrigin?.replace(/\/+$/, "") ?? origin
    return `${linkOrigin}/v1/events?${next.toString()}`
  }

  const getEvent = Effect.gen(function*() {
    const ctx = yield* RequestContext
    const { id } = yield* HttpRouter.params
    const index = id === undefined ? undefined : store.get(id)
    if (index === undefined) {
      return yield* new Reply({ status: 404, message: MESSAGES[404], description: `Event not found: ${id ?? ""}` })
    }
    return jsonResponse(200, store.bytes(index), ctx.trackingId)
  })

  /** `POST /v1/access_token`, refresh-token grant only. Checks run in the order a client can fix them. */
  const accessToken = Effect.gen(function*() {
    const ctx = yield* RequestContext
    const request = yield* HttpServerRequest.HttpServerRequest
    const invalid = (status: OAuthReply["status"], error: OAuthReply["error"], description: string) =>
      new OAuthReply({ status, error, description })
    const contentType = (request.headers["content-type"] ?? "").split(";")[0]!.trim().toLowerCase()
    const isForm = contentType === "application/x-www-form-urlencoded"
    const form = new URLSearchParams(isForm ? yield* Effect.orElseSucceed(request.text, () => "") : "")
    const field = (name: string) => form.get(name) ?? undefined
    // Read first so that even a refused request logs its grant type.
    ctx.grantType = field("grant_type")
    ctx.secrets = [["refresh_token", field("refresh_token")], ["client_secret", field("client_secret")]]

    if (oauth === undefined) return yield* invalid(400, "invalid_client", "No OAuth integration is configured.")
    if (!isForm) return yield* invalid(400, "invalid_request", "The body must be application/x-www-form-urlencoded.")

    if (ctx.grantType !== "refresh_token") {
      return yield* invalid(
        400,
        "invalid_request",
        `grant_type must be refresh_token, got ${JSON.stringify(ctx.grantType ?? null)}.`
      )
    }
    for (const name of ["client_id", "client_secret", "refresh_token"]) {
      // RFC 6749 §3.2: a repeated parameter is as invalid as a missing one.
      if (form.getAll(name).length !== 1 || form.get(name) === "") {
        return yield* invalid(400, "invalid_request", `${name} is required, exactly once.`)
      }
    }
    if (field("client_id") !== oauth.clientId || field("client_secret") !== oauth.clientSecret) {
      return yield* invalid(401, "invalid_client", "Client authentication failed.")
    }
    const now = yield* Clock.currentTimeMillis
    const grant = tokens.refresh(field("refresh_token")!, now)
    if (grant === undefined) {
      return yield* invalid(400, "invalid_grant", "The refresh token is invalid, expired, revoked or already used.")
    }
    return jsonResponse(
      200,
      JSON.stringify({
        access_token: grant.accessToken,
        expires_in: grant.expiresIn,
        refresh_token: grant.refreshToken,
        refresh_token_expires_in: REFRESH_TOKEN_TTL_SECONDS,
        token_type: "Bearer"
      }),
      ctx.trackingId,
      { "cache-control": "no-store" }
    )
  })

  const router = HttpRouter.empty.pipe(
    HttpRouter.get("/v1/events", listEvents),
    HttpRouter.get("/v1/events/:id", getEvent),
    HttpRouter.post("/v1/access_token", accessToken)
  )

  /** Request-level faults, then authentication: everything that happens before a handler runs. */
  const guard = (ctx: RequestContext, authorized: boolean): Effect.Effect<void, Reply> =>
    Effect.gen(function*() {
      const { faults } = ctx
      const now = yield* Clock.currentTimeMillis
      // The two throttling faults differ only in status and wording; both carry a Retry-After.
      const throttled = (status: 429 | 423, description: string, fault: "rateLimit" | "locked") =>
        new Reply({ status, message: MESSAGES[status], description, headers: retryAfterHeader(faults, now), fault })
      if (state.fires("rateLimit", faults.rateLimitEvery)) {
        return yield* throttled(429, "Rate limit exceeded.", "rateLimit")
      }
      if (state.fires("locked", faults.lockedEvery)) {
        return yield* throttled(423, "Locked.", "locked")
      }
      if (state.fires("serverError", faults.serverErrorEvery)) {
        const status = state.nextServerError()
        return yield* new Reply({ status, message: MESSAGES[status], description: MESSAGES[status], fault: "serverError" })
      }
      if (faults.unauthorized || !authorized) {
        return yield* new Reply({
          status: 401,
          message: MESSAGES[401],
          description: "Invalid or expired access token.",
          ...(faults.unauthorized ? { fault: "unauthorized" as const } : {})
        })
      }
      if (faults.forbidden) {
        return yield* new Reply({
          status: 403,
          message: MESSAGES[403],
          description: "Missing the spark-compliance:events_read scope or the Compliance Officer role.",
          fault: "forbidden"
        })
      }
    })

  const handle = Effect.gen(function*() {
    const request = yield* HttpServerRequest.HttpServerRequest
    const at = yield* Clock.currentTimeMillis
    const url = new URL(request.url, origin)
    const faults = state.faults
    const authorization = request.headers["authorization"]
    const ctx: RequestContext = {
      trackingId: state.nextTrackingId(),
      faults,
      url,
      fault: undefined,
      grantType: undefined,
      secrets: [["Authorization", authorization]]
    }
    const authorized = authorization !== undefined && authorization.startsWith("Bearer ") &&
      tokens.accepts(authorization.slice("Bearer ".length), at)
    // A client may misplace its secrets in the token request's query string: never log that one.
    const isTokenRequest = url.pathname === "/v1/access_token"
    const query: Record<string, string> = {}
    if (!isTokenRequest) for (const [name, value] of url.searchParams) if (!(name in query)) query[name] = value
    const record = (status: number, fault: FaultKind | undefined) =>
      state.record({
        method: request.method,
        url: isTokenRequest ? `${url.origin}${url.pathname}` : url.href,
        path: url.pathname,
        query,
        authorized,
        hasAuthorization: authorization !== undefined,
        status,
        fault,
        trackingId: ctx.trackingId,
        at,
        ...(isTokenRequest ? { grantType: ctx.grantType } : {})
      })

    if (faults.latencyMs > 0) yield* Effect.sleep(faults.latencyMs)

    const isEvents = url.pathname === "/v1/events" || url.pathname.startsWith("/v1/events/")
    if (isEvents && state.fires("drop", faults.dropConnectionEvery)) {
      record(0, "drop")
      // Like a load balancer resetting the connection: no status line, no body.
      dropConnection(request)
      return yield* Effect.interrupt
    }

    const response = yield* (isEvents ? guard(ctx, authorized) : Effect.void).pipe(
      Effect.zipRight(router),
      Effect.provideService(RequestContext, ctx),
      Effect.catchTags({
        RouteNotFound: () =>
          Effect.succeed(errorResponse(
            new Reply({ status: 404, message: MESSAGES[404], description: `No route for ${request.method} ${url.pathname}` }),
            ctx.trackingId,
            decoration(faults, ctx.secrets)
          )),
        Reply: (reply) => {
          if (reply.fault !== undefined) ctx.fault = reply.fault
          return Effect.succeed(errorResponse(reply, ctx.trackingId, decoration(faults, ctx.secrets)))
        },
        OAuthReply: (reply) =>
          Effect.succeed(oauthErrorResponse(reply, ctx.trackingId, decoration(faults, ctx.secrets)))
      })
    )
    record(response.status, ctx.fault)
    return response
  })

  // The live clock, whatever the caller's: under `TestClock` the time is 1970, every `to` would be
  // "in the future", latency would never elapse, and issued tokens would never expire.
  return Effect.withClock(handle, liveClock)
}
