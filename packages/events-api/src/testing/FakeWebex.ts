/**
 * A fake Webex compliance Events API served over real loopback HTTP, with switchable faults.
 *
 * It answers `GET /v1/events` and `GET /v1/events/{id}` the way the live service does (see
 * API-NOTES.md): bearer auth, `max` as a page size, opaque absolute `Link: <...>; rel="next"` URLs, a
 * `trackingid` header on every response, Webex-shaped error bodies, `to` in the future refused. On top
 * of that it can misbehave on purpose, deterministically: 429/423 with every `Retry-After` form seen in
 * the wild, 5xx, 504 above a page size, dropped connections, latency, broken next links (`max=null`,
 * lost filters, a foreign origin) and junk items.
 *
 * With {@link Options.oauth} it also grants tokens like `POST /v1/access_token` (refresh-token grant):
 * each refresh issues a new access token and rotates the refresh token, issued access tokens expire
 * in real time, and a test can expire every access token or revoke the refresh token at will.
 *
 * Events are kept as the exact bytes they were given and served by concatenation, never
 * re-serialised, so a test can check that what the client archives is byte-for-byte what was sent.
 * The store is built for scale: a million events cost their bytes plus a few dozen bytes each, and a
 * page is an index range over a cached ordering (see `internal/eventStore.ts`).
 *
 * Hostile modes (issue 10) make it a bad server on purpose: a body that never ends, a giant page,
 * empty pages that link onward forever, a page cut off mid-item, invalid UTF-8 inside items, error
 * texts that echo the caller's secrets or carry control characters, forged log lines and 200 KiB
 * strings, and an event that moves to another day. See {@link Faults}.
 *
 * `@effect/platform-node` is loaded only when a server starts ({@link make}, {@link layer}): importing
 * `@webex-compliance/events-api/testing` for `InMemoryEventsApi` or `SeedOrg` does not need it.
 *
 * It listens on `127.0.0.1`, port 0 by default, so it works for tests in the same process and for a
 * child process (hand it {@link FakeWebex.Service.baseUrl}). It always runs on the live clock, so it
 * behaves the same inside `it.effect` (whose `TestClock` starts at 1970) as outside.
 *
 * @example
 * ```ts
 * import { FakeWebex, SeedOrg } from "@webex-compliance/events-api/testing"
 * import { Effect } from "effect"
 *
 * const program = Effect.gen(function*() {
 *   const webex = yield* FakeWebex.FakeWebex
 *   yield* webex.setFaults({ rateLimitEvery: 3, retryAfter: "garbage" })
 *   // ... run the client against webex.baseUrl with webex.token ...
 *   const requests = yield* webex.requests
 *   console.log(requests.filter((r) => r.status === 429).length)
 * }).pipe(
 *   Effect.provide(FakeWebex.layer({
 *     events: SeedOrg.generateOrg({ count: 1_000, from: "2024-01-01T00:00:00Z", to: "2024-02-01T00:00:00Z" })
 *   }))
 * )
 * ```
 *
 * @since 0.1.0
 */
import type * as HttpServer from "@effect/platform/HttpServer"
import type { ServeError } from "@effect/platform/HttpServerError"
import * as Context from "effect/Context"
import * as Effect from "effect/Effect"
import * as Layer from "effect/Layer"
import * as Redacted from "effect/Redacted"
import type * as Scope from "effect/Scope"
import * as Http from "node:http"
import { liveClock, makeApp } from "./internal/app.js"
import { EventStore } from "./internal/eventStore.js"
import { ServerState } from "./internal/serverState.js"
import { Tokens } from "./internal/tokens.js"

// ---------------------------------------------------------------------------------------------
// Public types
// ---------------------------------------------------------------------------------------------

/**
 * Switchable misbehaviour. All off by default. Counters, not randomness, decide when a fault fires,
 * so a test knows exactly which request gets it.
 *
 * Only requests to `/v1/events*` count. The request-level faults are checked in a fixed order —
 * drop, 429, 423, 5xx — and each has its own counter, advanced only by requests that reach its
 * check (a dropped request does not advance the 429 counter). They fire before authentication, the
 * way a gateway in front of the service answers.
 */
export interface Faults {
  /** Every Nth request answers 429 with a `Retry-After` in the {@link Faults.retryAfter} form. */
  readonly rateLimitEvery: number
  /** The form of `Retry-After` on 429 and 423. `garbage` is the literal `rand(30),add(30)` seen live. */
  readonly retryAfter: "seconds" | "http-date" | "missing" | "garbage"
  /** The wait `Retry-After` announces, in seconds. Default 1. */
  readonly retryAfterSeconds: number
  /** Every Nth request answers 423 Locked, with `Retry-After` like a 429. */
  readonly lockedEvery: number
  /** Every Nth request answers a 5xx, cycling 500, 502, 503, 504. */
  readonly serverErrorEvery: number
  /** When > 0, a list request whose `max` exceeds it answers 504 ("try reducing max"). */
  readonly gatewayTimeoutAboveMax: number
  /** Every Nth request: the socket is destroyed without any response. */
  readonly dropConnectionEvery: number
  /** Delay before every response, in milliseconds. */
  readonly latencyMs: number
  /** Next links carry `max=null` instead of the page size (a defect seen on Webex list endpoints). */
  readonly nextLinkMaxNull: boolean
  /**
   * Next links omit `resource`, `type`, `actorId`, `from` and `to` (another seen defect). Followed as
   * given, such a link serves unfiltered results: the client has to repair it.
   */
  readonly nextLinkDropsFilters: boolean
  /** When set (e.g. `"http://evil.example:1"`), next links point at this foreign origin. */
  readonly nextLinkOrigin: string | undefined
  /** Every Nth served page gets one extra junk item: `{"id": 42, "created": "yesterday"}`. */
  readonly malformedItemEvery: number
  /** Every `/v1/events*` request answers 403, as for a token without the compliance role. */
  readonly forbidden: boolean
  /** Every `/v1/events*` request answers 401, as for an expired token. */
  readonly unauthorized: boolean

  // Hostile modes (issue 10). Each is bounded on the server's side: the fake never buffers what it
  // streams, so a client test measures the client's memory, not the server's.

  /**
   * Every list request answers 200 with a body that never ends: `{"items":[` and then items
   * forever, streamed as fast as the client reads. Only the client hanging up ends it.
   */
  readonly endlessBody: boolean
  /**
   * When > 0, every list request answers one complete, valid 200 page of this many items whatever
   * `max` says (e.g. 200_000), cycling through the listing's first thousand events, without a next
   * link. Streamed: the server holds about a thousand items at a time.
   */
  readonly giantPageItems: number
  /**
   * Every list request answers an empty page (`{"items":[]}`) whose next link always points
   * somewhere new (its cursor advances by `max` each time): pagination that never ends.
   */
  readonly onwardEmptyPages: boolean
  /**
   * Every Nth non-empty page gets one extra well-formed event (id `invalid-utf8-<n>`, `created` of
   * the page's first event, so it falls in the listed window) whose `data.text` holds bytes that are
   * not UTF-8. To serve chosen bytes instead, store them: {@link Options.events} takes `Uint8Array`s.
   */
  readonly invalidUtf8Every: number
  /**
   * Error bodies repeat the request's secrets, as a careless gateway does: every Webex error (401,
   * 403, 400, 404, 423, 429, 5xx) carries the `Authorization` header the request sent, and every
   * token-endpoint error carries the `refresh_token` and `client_secret` of its form.
   */
  readonly echoSecrets: boolean
  /**
   * Error texts (`message` and `errors[0].description`; `error_description` on the token endpoint)
   * carry ANSI escapes, BEL, NUL, CR, a newline followed by a forged logfmt `level=ERROR` line and a
   * forged JSON log line, then a 200 KiB string.
   */
  readonly hostileErrorText: boolean
  /**
   * When N > 0, every Nth well-formed stored event (in insertion order) is also listed as a copy with
   * the same id and bytes, but its top-level `created` one day later: the service moved it to another
   * day, and a client sees the id again in that day's listing. `GET /v1/events/{id}` and
   * {@link FakeWebex.Service.events} keep the original.
   */
  readonly movedDayEvery: number
  /**
   * Every Nth list request answers 200 with a body that is not JSON: the page cut off inside its
   * first item, as a proxy that truncated it sends. A client fails that page (a decode error),
   * never a partial page taken for a whole one.
   */
  readonly malformedPageEvery: number
}

/** The defaults every {@link FakeWebex.Service.setFaults} merges over: nothing misbehaves. */
export const noFaults: Faults = {
  rateLimitEvery: 0,
  retryAfter: "seconds",
  retryAfterSeconds: 1,
  lockedEvery: 0,
  serverErrorEvery: 0,
  gatewayTimeoutAboveMax: 0,
  dropConnectionEvery: 0,
  latencyMs: 0,
  nextLinkMaxNull: false,
  nextLinkDropsFilters: false,
  nextLinkOrigin: undefined,
  malformedItemEvery: 0,
  forbidden: false,
  unauthorized: false,
  endlessBody: false,
  giantPageItems: 0,
  onwardEmptyPages: false,
  invalidUtf8Every: 0,
  echoSecrets: false,
  hostileErrorText: false,
  movedDayEvery: 0,
  malformedPageEvery: 0
}

/** The injected fault a recorded request met, if any. */
export type FaultKind =
  | "drop"
  | "rateLimit"
  | "locked"
  | "serverError"
  | "gatewayTimeout"
  | "malformedItem"
  | "forbidden"
  | "unauthorized"
  | "endlessBody"
  | "giantPage"
  | "onwardEmptyPage"
  | "invalidUtf8"
  | "malformedPage"

/** One request the server received. */
export interface RecordedRequest {
  readonly method: string
  /** The full URL, origin included, as the request addressed it. */
  readonly url: string
  readonly path: string
  /** Query parameters; the first value wins when a name repeats (as it does for the handler). */
  readonly query: Readonly<Record<string, string>>
  /** Whether the request carried `Authorization: Bearer <an access token valid at that moment>`. */
  readonly authorized: boolean
  /** Whether the request carried any `Authorization` header (to prove a token never leaked). */
  readonly hasAuthorization: boolean
  /** The response status; `0` when the connection was dropped. */
  readonly status: number
  readonly fault: FaultKind | undefined
  readonly trackingId: string
  /** Arrival time, epoch milliseconds. */
  readonly at: number
  /**
   * Only on `/v1/access_token` requests: the `grant_type` of the body, if any. Nothing else of that
   * body is kept (it carries the client secret and the refresh token), and their `url` and `query`
   * are recorded without a query string for the same reason.
   */
  readonly grantType?: string | undefined
}

/** The order in which listings return events. The real API documents none. */
export type Order = "newest-first" | "oldest-first" | "shuffled"

/** Options of {@link make} and {@link layer}. */
export interface Options {
  /** The bearer token the server accepts. Default `"fake-webex-token"`. */
  readonly token?: string | undefined
  /**
   * The events stored at start: raw JSON text, raw bytes (`Uint8Array`, served exactly as given,
   * invalid UTF-8 included) or objects (which are `JSON.stringify`'d). An item without a string
   * `id` and a parseable `created` is still served, first, in every unfiltered listing: it is the
   * junk a client must survive. Text that is not JSON at all makes the whole page body invalid
   * JSON, which is a different test. Consumed once, item by item: a generator (such as
   * `SeedOrg.iterateOrg`) never has to exist as one array.
   */
  readonly events?: Iterable<string | Uint8Array | object> | undefined
  /** Listing order. Default `"newest-first"`. */
  readonly order?: Order | undefined
  /** Seed of the `"shuffled"` order. Default `1`. */
  readonly seed?: number | undefined
  /** Faults active from the start, merged over {@link noFaults}. */
  readonly faults?: Partial<Faults> | undefined
  /** Port to listen on. Default 0 (any free port); a fixed one suits a demo. */
  readonly port?: number | undefined
  /**
   * Enables the refresh-token grant on `POST /v1/access_token`. Without it that endpoint answers
   * 400 `invalid_client`, and only {@link Options.token} is ever accepted.
   */
  readonly oauth?: OAuthOptions | undefined
}

/** The integration the fake grants tokens to. See {@link Options.oauth}. */
export interface OAuthOptions {
  readonly clientId: string
  readonly clientSecret: string
  /** The initially valid refresh token. Each successful refresh replaces it (rotation). */
  readonly refreshToken: string
  /** `expires_in` of issued access tokens, in seconds, enforced in real time. Default 1209599 (~14 days). */
  readonly accessTokenTtlSeconds?: number | undefined
}

/** What {@link FakeWebex.Service.oauth} reports. */
export interface OAuthState {
  /** Successful refreshes so far. */
  readonly refreshes: number
  /** The refresh token the next refresh must present; undefined when revoked or without `oauth`. */
  readonly currentRefreshToken: string | undefined
  /** The access tokens accepted right now, the initial token first if still valid, then in issue order. */
  readonly validAccessTokens: ReadonlyArray<string>
}

/**
 * The running fake server.
 *
 * @since 0.1.0
 */
export class FakeWebex extends Context.Tag("@webex-compliance/events-api/testing/FakeWebex")<
  FakeWebex,
  FakeWebex.Service
>() {}

export declare namespace FakeWebex {
  export interface Service {
    /** `http://127.0.0.1:<port>/v1`: what a client uses as its base URL. */
    readonly baseUrl: string
    /** The token the server accepts. */
    readonly token: Redacted.Redacted<string>
    /** Stores late-arriving events; later requests see them (and pages may shift, as live). */
    readonly addEvents: (events: Iterable<string | Uint8Array | object>) => Effect.Effect<void>
    /** Replaces the fault configuration (merged over {@link noFaults}) and restarts every counter. */
    readonly setFaults: (faults: Partial<Faults>) => Effect.Effect<void>
    /** Every request received so far (the most recent 100,000), oldest first. */
    readonly requests: Effect.Effect<ReadonlyArray<RecordedRequest>>
    /**
     * Every stored event as raw JSON text, in the order it was added (bytes that are not UTF-8 read
     * with U+FFFD: the server still serves them as stored).
     */
    readonly events: Effect.Effect<ReadonlyArray<string>>
    /**
     * Every access token known so far, the initial {@link FakeWebex.Service.token} included, stops
     * being accepted (401, as on expiry). Tokens issued by later refreshes work.
     */
    readonly expireAccessTokens: Effect.Effect<void>
    /** The current refresh token stops being accepted: the next refresh gets 400 `invalid_grant`. */
    readonly revokeRefreshToken: Effect.Effect<void>
    /** The token grant's state, for assertions. */
    readonly oauth: Effect.Effect<OAuthState>
  }
}

// ---------------------------------------------------------------------------------------------
// Constructors
// ---------------------------------------------------------------------------------------------

/**
 * The Node HTTP server, loaded on first use: `@effect/platform-node` is an optional peer
 * dependency, needed only by those who start a fake server.
 */
const loadNodeServer = Effect.tryPromise({
  try: () =>
    Promise.all([
      import("@effect/platform-node/NodeHttpServer"),
      import("@effect/platform-node/NodeHttpServerRequest")
    ]),
  catch: (cause) =>
    new Error(
      "FakeWebex needs @effect/platform-node (an optional peer dependency of @webex-compliance/events-api): install it to start a fake server.",
      { cause }
    )
}).pipe(Effect.orDie)

/**
 * Starts a fake server in the current scope; it stops when the scope closes.
 *
 * @example
 * ```ts
 * const webex = yield* FakeWebex.make({ events: [event1, event2], order: "shuffled", seed: 7 })
 * const response = yield* HttpClient.get(`${webex.baseUrl}/events?max=1`, {
 *   headers: { authorization: `Bearer ${Redacted.value(webex.token)}` }
 * })
 * ```
 *
 * @since 0.1.0
 */
export const make = (options: Options = {}): Effect.Effect<FakeWebex.Service, ServeError, Scope.Scope> =>
  Effect.gen(function*() {
    const [NodeHttpServer, NodeHttpServerRequest] = yield* loadNodeServer
    const nodeServer = Http.createServer()
    const server: HttpServer.HttpServer = yield* NodeHttpServer.make(() => nodeServer, {
      port: options.port ?? 0,
      host: "127.0.0.1"
    })
    // Runs before the server's own close: a client's idle keep-alive socket or a request stuck in
    // `latencyMs` must not hold the scope open.
    yield* Effect.addFinalizer(() => Effect.sync(() => nodeServer.closeAllConnections()))

    const port = server.address._tag === "TcpAddress" ? server.address.port : 0
    const origin = `http://127.0.0.1:${port}`
    const token = options.token ?? "fake-webex-token"
    const store = new EventStore(options.order ?? "newest-first", options.seed ?? 1)
    store.add(options.events ?? [])
    const state = new ServerState(
      noFaults,
      options.faults,
      `ROUTER_${port.toString(16).toUpperCase().padStart(8, "0")}-0000-4000-8000`
    )
    store.setMovedEvery(state.faults.movedDayEvery)

    const tokens = new Tokens(token, options.oauth)

    yield* server.serve(makeApp({
      store,
      state,
      tokens,
      oauth: options.oauth,
      origin,
      dropConnection: (request) => NodeHttpServerRequest.toIncomingMessage(request).socket.destroy()
    }))

    return FakeWebex.of({
      baseUrl: `${origin}/v1`,
      token: Redacted.make(token),
      addEvents: (events) => Effect.sync(() => store.add(events)),
      setFaults: (faults) =>
        Effect.sync(() => {
          state.setFaults(faults)
          store.setMovedEvery(state.faults.movedDayEvery)
        }),
      requests: Effect.sync(() => state.requests()),
      events: Effect.sync(() => store.raws()),
      expireAccessTokens: Effect.sync(() => tokens.expireAll()),
      revokeRefreshToken: Effect.sync(() => tokens.revoke()),
      oauth: Effect.sync(() => tokens.state(liveClock.unsafeCurrentTimeMillis()))
    })
  })

/**
 * A layer running a fake server for as long as the layer is alive.
 *
 * @example
 * ```ts
 * it.layer(FakeWebex.layer({ events: SeedOrg.generateOrg({ count: 100, from, to }) }))("archiver", (it) => {
 *   it.effect("archives every event", () => Effect.gen(function*() {
 *     const webex = yield* FakeWebex.FakeWebex
 *     // ...
 *   }))
 * })
 * ```
 *
 * @since 0.1.0
 */
export const layer = (options: Options = {}): Layer.Layer<FakeWebex, ServeError> =>
  Layer.scoped(FakeWebex, make(options))
