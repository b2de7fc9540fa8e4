/**
 * The Webex compliance Events API as an Effect service.
 *
 * @example
 * ```ts
 * import { EventsApi } from "@webex-compliance/events-api"
 * import { NodeHttpClient } from "@effect/platform-node"
 * import { Effect, Layer, Redacted, Stream } from "effect"
 *
 * const program = Effect.gen(function*() {
 *   const api = yield* EventsApi.EventsApi
 *   yield* api.list({ resource: "messages", from: "2024-01-01T00:00:00Z" }).pipe(
 *     Stream.runForEach((event) => Effect.log(event.id))
 *   )
 * })
 *
 * program.pipe(
 *   Effect.provide(EventsApi.layer({ token: Redacted.make(process.env.WEBEX_TOKEN!) })),
 *   // Node's own http, connections kept alive (NodeHttpClient.layer opens one per request).
 *   Effect.provide(NodeHttpClient.layerWithoutAgent),
 *   Effect.provide(NodeHttpClient.makeAgentLayer({ keepAlive: true })),
 *   Effect.runPromise
 * )
 * ```
 *
 * @since 0.1.0
 */
import * as HttpClient from "@effect/platform/HttpClient"
import * as HttpClientRequest from "@effect/platform/HttpClientRequest"
import * as Chunk from "effect/Chunk"
import * as Config from "effect/Config"
import type * as ConfigError from "effect/ConfigError"
import * as Context from "effect/Context"
import * as Duration from "effect/Duration"
import * as Effect from "effect/Effect"
import * as Either from "effect/Either"
import * as Fiber from "effect/Fiber"
import * as Layer from "effect/Layer"
import * as Option from "effect/Option"
import * as Redacted from "effect/Redacted"
import * as Stream from "effect/Stream"
import type * as AccessToken from "./AccessToken.js"
import type { Event } from "./Event.js"
import type { EventsApiError } from "./EventsApiError.js"
import * as Errors from "./EventsApiError.js"
import type * as EventsPage from "./EventsPage.js"
import { EventsPage as Page } from "./EventsPage.js"
import * as Tokens from "./internal/accessToken.js"
import * as Http from "./internal/http.js"
import * as PageDecoder from "./internal/pageDecoder.js"
import * as Pagination from "./internal/pagination.js"
import * as RateGate from "./internal/rateGate.js"
import * as Retry from "./internal/retry.js"
import { isHeaderSafe, makeSecrets } from "./internal/sanitize.js"
import * as ListParams from "./ListParams.js"
import * as RetryPolicy from "./RetryPolicy.js"

/** The service. Obtain it with `yield* EventsApi`. */
export interface Service {
  /**
   * Every event of every page, lazily, one page fetched ahead. Fails with `ResponseDecodeError`
   * on an item that does not decode (use {@link Service.listPages} to keep such items and go on).
   */
  readonly list: (params?: ListParams.ListParams) => Stream.Stream<Event, EventsApiError>
  /**
   * One element per HTTP page, with every item's raw JSON and, for items that do not decode,
   * the reason, next to the good ones. The next page is fetched while the current one is
   * consumed: at most one page waits, so memory stays flat.
   */
  readonly listPages: (params?: ListParams.ListParams) => Stream.Stream<EventsPage.EventsPage, EventsApiError>
  /**
   * {@link Service.listPages} with the decoding in the caller's hands: `decode` gets each page's
   * body as received and may run anywhere (another thread, say) or build a form of its own. It
   * returns the number of items the body held, which the runaway and page-size checks count, and
   * the element to emit; or fails with the reason the body is unusable, and the listing fails there
   * with `ResponseDecodeError`. Pagination, retries, rate limits and the origin check are those of
   * `listPages`, which is this with {@link decodePageBody}. The next page is requested before the
   * current one is decoded (except when the current page could be the last empty one
   * `maxEmptyPages` allows: then once it is decoded), so up to two bodies are alive at a time: the
   * one being decoded and the next one being read.
   *
   * @since 0.1.0
   */
  readonly listPagesWith: <A>(
    params: ListParams.ListParams | undefined,
    decode: (page: RawPage) => Effect.Effect<DecodedPage<A>, string>
  ) => Stream.Stream<A, EventsApiError>
  /** One event by id. A 404 fails with `EventNotFound`. */
  readonly get: (eventId: string) => Effect.Effect<Event, EventsApiError>
}

/**
 * A page of a listing as received, before decoding: what a {@link Service.listPagesWith} decoder gets.
 *
 * @since 0.1.0
 */
export interface RawPage {
  /** The URL that answered (no credentials in it). */
  readonly url: string
  /** The body's bytes. The decoder owns them: the listing neither keeps nor reuses this buffer. */
  readonly body: Uint8Array
  readonly trackingId: Option.Option<string>
}

/**
 * What a {@link Service.listPagesWith} decoder made of a page.
 *
 * @since 0.1.0
 */
export interface DecodedPage<A> {
  /** The number of items the body held (empty pages count towards `maxEmptyPages`). */
  readonly count: number
  readonly page: A
}

/**
 * A list response body split into items, as {@link Service.listPages} does it: each item decoded
 * or, when it does not decode, kept with its bytes and the reason. `Left` with a reason when the
 * body is not JSON or has no `items` array. The items view `body`: do not reuse or mutate it.
 *
 * Made for a decoder that reads every item's bytes (an archive): the items' boundaries are found
 * at once, and the body is parsed in groups of items rather than as one string of the whole page,
 * which holds less memory when the bytes are read anyway. (`listPages` finds the boundaries only
 * when an item's bytes are first read.) The items are the same either way.
 *
 * @since 0.1.0
 */
export const decodePageBody = (body: Uint8Array): Either.Either<ReadonlyArray<EventsPage.Item>, string> =>
  PageDecoder.decodeBodyScanned(body)

/** The Events API service tag. */
export class EventsApi extends Context.Tag("@webex-compliance/events-api/EventsApi")<EventsApi, Service>() {}

export const DEFAULT_BASE_URL = "https://webexapis.com/v1"

/** Options of {@link make} and {@link layer} besides the credentials. */
export interface CommonOptions {
  /** Default `https://webexapis.com/v1`. */
  readonly baseUrl?: string | undefined
  /**
   * The retry policy: settings over the default one (`schedule` replaces its backoff), a complete
   * policy, or `false` for none. Default {@link RetryPolicy.make}().
   */
  readonly retry?: RetryPolicy.Options | RetryPolicy.RetryPolicy | false | undefined
  /** Give up on a single HTTP request after this long (then it counts as a transport failure). Default 60 s. */
  readonly requestTimeout?: Duration.DurationInput | undefined
  /**
   * Longest response body read, in bytes; a longer one fails with `ResponseTooLarge` (not
   * retried) as soon as the cap is passed. Default 32 MiB, far above a page of 1000 events.
   */
  readonly maxResponseBytes?: number | undefined
  /**
   * Consecutive empty pages that still link to a next page before a listing stops with
   * `PaginationRunaway` (`reason: "emptyPages"`). Default 20.
   */
  readonly maxEmptyPages?: number | undefined
  /** Pages one listing may span before it stops with `PaginationRunaway` (`reason: "pageLimit"`). Default 100000. */
  readonly maxPages?: number | undefined
}

/**
 * Options of {@link make} and {@link layer}: a `token`, a `refresh` configuration to keep tokens
 * fresh with the OAuth refresh-token grant, or both (the token is then used until it expires).
 * Tokens are sent only to `baseUrl`'s origin.
 */
export type Options = CommonOptions & (
  | {
    /** A token with the `spark-compliance:events_read` scope. */
    readonly token: Redacted.Redacted<string>
    readonly refresh?: AccessToken.RefreshOptions | undefined
  }
  | {
    readonly token?: Redacted.Redacted<string> | undefined
    readonly refresh: AccessToken.RefreshOptions
  }
)

const resolvePolicy = (retry: Options["retry"]): RetryPolicy.RetryPolicy =>
  retry === false ? RetryPolicy.disabled : RetryPolicy.make(retry ?? {})

interface Response {
  readonly body: Uint8Array
  readonly link: string | undefined
  readonly trackingId: string | undefined
}

/** What one listing has seen so far: its URLs (to refuse loops) and its runaway counters. */
interface Listing {
  readonly seen: Set<string>
  pages: number
  emptyInARow: number
}

/** What comes after a page: nothing, the next URL, or the error that stops pagination there. */
type After = Option.Option<Either.Either<string, EventsApiError>>

/** A page's response as fetched, not yet decoded: `url` asked for, `used` answered. */
interface Fetched {
  readonly url: string
  readonly used: string
  readonly response: Response
}

/**
 * How a listing turns a page body into what it emits: the number of items (for the runaway and
 * page-size checks) and the element, given the next link; a failure with the reason when the body
 * is unusable. An `Either` is such an effect: the library's own decoders are synchronous.
 */
type Decoding<A> = (
  body: Uint8Array,
  url: string,
  trackingId: Option.Option<string>
) => Effect.Effect<{ readonly count: number; readonly page: (next: Option.Option<string>) => A }, string>

const trackingIdOf = (response: Response): { readonly trackingId?: string } =>
  response.trackingId !== undefined ? { trackingId: response.trackingId } : {}

const isLoopback = (hostname: string): boolean =>
  hostname === "localhost" || hostname === "[::1]" || /^127(?:\.\d{1,3}){3}$/.test(hostname)

const positive = (param: string, value: number | undefined, fallback: number): Either.Either<number, Errors.InvalidRequest> =>
  value === undefined
    ? Either.right(fallback)
    : Number.isInteger(value) && value > 0
    ? Either.right(value)
    : Either.left(Errors.InvalidRequest.param(param, `must be a positive integer, got ${value}`))

/**
 * Every option checked once, before any request: a bad one fails `make` (and so the layer), not
 * every call. Returns the base URL without trailing slashes and its origin.
 */
const validate = (options: Options) =>
  Effect.gen(function*() {
    const baseUrl = (options.baseUrl ?? DEFAULT_BASE_URL).replace(/\/+$/, "")
    const bad = (reason: string) => Errors.InvalidRequest.param("baseUrl", reason)
    const url = yield* Either.try({ try: () => new URL(baseUrl), catch: () => bad(`${JSON.stringify(baseUrl)} is not an http(s) URL`) })
    if (url.protocol !== "https:" && url.protocol !== "http:") {
      return yield* bad(`${JSON.stringify(baseUrl)} is not an http(s) URL`)
    }
    // Plain http would carry the token in cleartext: only a server on this machine may have it.
    if (url.protocol === "http:" && !isLoopback(url.hostname)) {
      return yield* bad(`plain http is only allowed to this machine (localhost, 127.0.0.1, ::1), not ${url.hostname}: use https`)
    }
    if (options.token === undefined && options.refresh === undefined) {
      return yield* Errors.InvalidRequest.param("token", "neither a token nor a refresh configuration was given")
    }
    // A NUL, newline or non-ASCII byte cannot go into an Authorization header: refuse it here
    // rather than let the transport throw (or worse, split the header) on the first request.
    if (options.token !== undefined && !isHeaderSafe(Redacted.value(options.token))) {
      return yield* Errors.InvalidRequest.param(
        "token",
        "it contains characters an HTTP header cannot carry (spaces, control characters or non-ASCII)"
      )
    }
    return {
      baseUrl,
      origin: url.origin,
      maxResponseBytes: yield* positive("maxResponseBytes", options.maxResponseBytes, Http.DEFAULT_MAX_RESPONSE_BYTES),
      maxEmptyPages: yield* positive("maxEmptyPages", options.maxEmptyPages, 20),
      maxPages: yield* positive("maxPages", options.maxPages, 100_000)
    }
  })

/**
 * Builds the service from options. Requires an `HttpClient`; picks no transport. Fails with
 * `InvalidRequest` (its `param` naming the option) when an option cannot work.
 */
export const make = (options: Options): Effect.Effect<Service, EventsApiError, HttpClient.HttpClient> =>
  Effect.gen(function*() {
    const { baseUrl, maxEmptyPages, maxPages, maxResponseBytes, origin } = yield* validate(options)
    const client = Http.scopedClient(yield* HttpClient.HttpClient)
    const policy = resolvePolicy(options.retry)
    const gate = yield* RateGate.make
    const secrets = makeSecrets([options.token, options.refresh?.clientSecret, options.refresh?.refreshToken])
    const http: Http.Settings = {
      timeout: Duration.decode(options.requestTimeout ?? "60 seconds"),
      maxResponseBytes,
      secrets: secrets.values
    }

    const tokens: Tokens.AccessTokens = options.refresh !== undefined
      ? yield* Tokens.refreshing({
        refresh: options.refresh,
        initial: Option.fromNullable(options.token),
        client,
        baseUrl,
        http,
        secrets
      })
      : Tokens.fixed(options.token!)

    /**
     * One HTTP exchange (with the token refresh it may need), no retries: the caller's retry
     * policy covers the token endpoint too. The origin check sits here so no code path can skip it.
     */
    const attempt = (url: string, eventId?: string, into?: Http.BodyBuffer): Effect.Effect<Response, EventsApiError> =>
      Effect.gen(function*() {
        if (!Pagination.sameOrigin(url, origin)) {
          return yield* new Errors.UnsafeNextLink({ url, nextUrl: url, expectedOrigin: origin })
        }
        const send = (token: Redacted.Redacted<string>) =>
          Http.exchange(
            client,
            HttpClientRequest.get(url).pipe(HttpClientRequest.bearerToken(token), HttpClientRequest.acceptJson),
            url,
            http,
            into
          )
        const token = yield* tokens.current
        let response = yield* send(token)
        // An expired token: refresh once and send the same request again; its answer is the answer.
        if (response.status === 401 && (yield* tokens.rejected(token))) response = yield* send(yield* tokens.current)
        if (response.status >= 200 && response.status < 300) {
          return { body: response.body, link: response.headers["link"], trackingId: response.headers["trackingid"] }
        }
        return yield* Effect.flip(Http.errorFromResponse(response, url, eventId, secrets.values()))
      })

    /** One page's response, retries included, and the URL that answered (it may have shrunk after 504s). */
    const fetchPage = Effect.fn("EventsApi.fetchPage")(function*(url: string, into: Http.BodyBuffer | undefined) {
      const { url: used, value: response } = yield* Retry.run(policy, gate, url, (u) => attempt(u, undefined, into), {
        shrinkable: true
      })
      return { url, used, response }
    })

    /**
     * A fetched page decoded: its number of items and the element to emit, given the next link.
     * An unusable body fails the listing with `ResponseDecodeError`.
     */
    const decodePage = <A>(fetched: Fetched, decoding: Decoding<A>) =>
      Effect.gen(function*() {
        const { response, used } = fetched
        const decoded = yield* Effect.mapError(
          decoding(response.body, used, Option.fromNullable(response.trackingId)),
          (reason) => new Errors.ResponseDecodeError({ url: used, reason, ...trackingIdOf(response) })
        )
        const { count } = decoded
        // The page size in force is the one of the URL just used (it may have shrunk after 504s).
        const max = Pagination.maxOf(used)
        if (Option.isSome(max) && count > max.value) {
          yield* Effect.logWarning(`The server sent ${count} items on a page of at most ${max.value}`).pipe(
            Effect.annotateLogs({ url: used, ...trackingIdOf(response) })
          )
        }
        return decoded
      })

    /**
     * What comes after a fetched page: its next link checked (origin, runaway limits, loops) and
     * repaired, or the error that stops the listing there. A refused next link (or a runaway) does
     * not cost the page it came with: the page is emitted first, the error after it. The page's
     * emptiness must be counted in `listing` first whenever it can matter (see `pages`).
     */
    const follow = (fetched: Fetched, filters: Readonly<Record<string, string>>, listing: Listing): Effect.Effect<After> =>
      Effect.gen(function*() {
        const { response, url, used } = fetched
        const trackingId = trackingIdOf(response)
        const stop = (error: EventsApiError): After => Option.some(Either.left(error))
        const link = Pagination.nextLink(response.link, used)
        if (Option.isNone(link)) return Option.none()
        if (!Pagination.sameOrigin(link.value, origin)) {
          return stop(new Errors.UnsafeNextLink({ url: used, nextUrl: link.value, expectedOrigin: origin, ...trackingId }))
        }
        // A server that keeps linking onward must not hold a listing forever.
        listing.pages++
        if (listing.emptyInARow >= maxEmptyPages) {
          return stop(new Errors.PaginationRunaway({ url: used, reason: "emptyPages", limit: maxEmptyPages, ...trackingId }))
        }
        if (listing.pages >= maxPages) {
          return stop(new Errors.PaginationRunaway({ url: used, reason: "pageLimit", limit: maxPages, ...trackingId }))
        }
        const max = Pagination.maxOf(used)
        const expected = Option.isSome(max) ? { ...filters, max: String(max.value) } : filters
        const repaired = Pagination.repair(link.value, expected)
        if (repaired.repaired.length > 0) {
          yield* Effect.logDebug(`Repaired the next-page link (${repaired.repaired.join(", ")} missing or null)`).pipe(
            Effect.annotateLogs({ from: link.value, to: repaired.url })
          )
        }
        listing.seen.add(url)
        listing.seen.add(used)
        if (listing.seen.has(repaired.url)) {
          // A link back to a page already fetched in this listing would loop forever.
          return stop(
            new Errors.ResponseDecodeError({
              url: used,
              reason: `the next-page link points back to a page already listed (${repaired.url}); pagination stopped`,
              ...trackingId
            })
          )
        }
        return Option.some(Either.right(repaired.url))
      })

    /**
     * The pages of a listing, each decoded by `decoding`, one page fetched ahead and never more:
     * the next page is requested before the current one is decoded, so the server and the network
     * work while it is, except when the current page's item count could stop the listing (one
     * empty page short of `maxEmptyPages`): then only once it is decoded, so that no request is
     * sent that the limit forbids. A page waits as bytes (outside the JavaScript heap), so at most
     * one decoded page is alive at a time.
     *
     * `reuseBody`: for a `decoding` that keeps nothing of the body it is given, the pages are read
     * into two buffers in turn: page N + 1 into one while page N, in the other, is decoded, and
     * page N + 2 only once page N + 1 is being decoded, page N done with.
     */
    const pages = <A>(
      params: ListParams.ListParams | undefined,
      decoding: Decoding<A>,
      reuseBody: boolean
    ): Stream.Stream<A, EventsApiError> =>
      Stream.unwrapScoped(
        Effect.gen(function*() {
          const normalized = yield* ListParams.normalize(params)
          const filters = ListParams.filterParams(normalized)
          const first = new URL(`${baseUrl}/events`)
          for (const [k, v] of Object.entries(filters)) first.searchParams.set(k, v)
          if (Option.isSome(normalized.max)) first.searchParams.set("max", String(normalized.max.value))
          const listing: Listing = { seen: new Set(), pages: 0, emptyInARow: 0 }
          const scope = yield* Effect.scope
          // Each page is fetched in a fiber of the stream's scope: stopping the stream early (or
          // failing it) interrupts a fetch in flight.
          const buffers = reuseBody ? [Http.bodyBuffer(), Http.bodyBuffer()] : undefined
          let turn = 0
          const start = (url: string) => Effect.forkIn(fetchPage(url, buffers?.[turn++ % 2]), scope)
          type Pending = Either.Either<Fiber.Fiber<Fetched, EventsApiError>, EventsApiError>
          const pendingAfter = (after: After): Effect.Effect<Option.Option<Pending>> =>
            Option.isNone(after)
              ? Effect.succeed(Option.none())
              : Either.isLeft(after.value)
              ? Effect.succeed(Option.some(Either.left(after.value.left)))
              : Effect.map(start(after.value.right), (fiber) => Option.some(Either.right(fiber)))
          const nextUrl = (after: After): Option.Option<string> =>
            Option.flatMap(after, (a) => Either.getRight(a))
          /** What comes after a fetched page, and its fetch started (or the error that stops there). */
          const advance = (fetched: Fetched) =>
            Effect.flatMap(
              follow(fetched, filters, listing),
              (after) => Effect.map(pendingAfter(after), (next) => ({ after, next }))
            )
          return Stream.paginateChunkEffect(
            Either.right(yield* start(first.toString())) as Pending,
            (pending) =>
              Either.isLeft(pending) ? Effect.fail(pending.left) : Effect.gen(function*() {
                const fetched = yield* Fiber.join(pending.right)
                // The next page is requested before this one is decoded, unless this page's item
                // count could stop the listing (one empty page short of `maxEmptyPages`): then only
                // once it is decoded and counted, so that no request the limit forbids is sent.
                const ahead = listing.emptyInARow + 1 < maxEmptyPages ? yield* advance(fetched) : undefined
                const decoded = yield* decodePage(fetched, decoding)
                listing.emptyInARow = decoded.count === 0 ? listing.emptyInARow + 1 : 0
                const { after, next } = ahead ?? (yield* advance(fetched))
                return [Chunk.of(decoded.page(nextUrl(after))), next] as const
              })
          )
        })
        // The page walk's span, under `list`'s too: traces keep the shape they had when `list` was
        // built on `listPages` (list > listPages > fetchPage).
      ).pipe(Stream.withSpan("EventsApi.listPages"))

    const listPages: Service["listPages"] = (params) =>
      pages(params, (body, url, trackingId) =>
        Either.map(PageDecoder.decodeBody(body), (items) => ({
          count: items.length,
          page: (next) => new Page({ url, items, next, trackingId })
        })), false)

    const listPagesWith: Service["listPagesWith"] = (params, decode) =>
      pages(params, (body, url, trackingId) =>
        Effect.map(decode({ url, body, trackingId }), ({ count, page }) => ({ count, page: () => page })), false)

    // Events straight from the body, with no per-item `EventsPage.Item` built and dropped; an
    // undecodable item fails the listing where its page comes, as it would through `listPages`.
    // The events hold strings and values parsed from the body, never a view of it: its buffer is
    // reused for the next page.
    const list: Service["list"] = (params) =>
      pages(params, (body, url, trackingId) =>
        Either.map(PageDecoder.decodeEvents(body), ({ count, events }) => ({
          count,
          page: () => Either.mapLeft(events, (bad) => PageDecoder.badItemError(url, trackingId, bad))
        })), true).pipe(
          Stream.mapConcatEffect((events) => events),
          Stream.withSpan("EventsApi.list")
        )

    const get: Service["get"] = Effect.fn("EventsApi.get")(function*(eventId: string) {
      if (typeof eventId !== "string" || eventId.trim() === "") {
        return yield* Errors.InvalidRequest.param("eventId", "must be a non-empty string")
      }
      const url = `${baseUrl}/events/${encodeURIComponent(eventId)}`
      const { value: response } = yield* Retry.run(policy, gate, url, (u) => attempt(u, eventId), {
        shrinkable: false
      })
      const item = PageDecoder.decodeItem(response.body)
      if (item._tag === "Decoded") return item.event
      return yield* new Errors.ResponseDecodeError({
        url,
        reason: `event ${eventId} does not decode: ${item.reason}`,
        ...trackingIdOf(response)
      })
    })

    return { list, listPages, listPagesWith, get }
  })

/** The service from plain options. Fails with `InvalidRequest` when an option cannot work. */
export const layer = (options: Options): Layer.Layer<EventsApi, EventsApiError, HttpClient.HttpClient> =>
  Layer.effect(EventsApi, make(options))

/** Options of {@link layerConfig}: `Config` values for what usually comes from the environment. */
export interface ConfigOptions extends Omit<CommonOptions, "baseUrl"> {
  /** Default `Config.redacted("WEBEX_TOKEN")`, trimmed, non-empty. */
  readonly token?: Config.Config<Redacted.Redacted<string>> | undefined
  /** Default `Config.string("WEBEX_BASE_URL")`, falling back to `https://webexapis.com/v1`. */
  readonly baseUrl?: Config.Config<string> | undefined
}

/** `WEBEX_TOKEN` as `Redacted`: a token pasted with a trailing newline would be refused as a malformed header. */
export const tokenConfig: Config.Config<Redacted.Redacted<string>> = Config.redacted("WEBEX_TOKEN").pipe(
  Config.map((t) => Redacted.make(Redacted.value(t).trim())),
  Config.validate({ message: "WEBEX_TOKEN is empty", validation: (t) => Redacted.value(t) !== "" })
)

/** `WEBEX_BASE_URL`, default `https://webexapis.com/v1` (checked by {@link make}, like any base URL). */
export const baseUrlConfig: Config.Config<string> = Config.string("WEBEX_BASE_URL").pipe(
  Config.withDefault(DEFAULT_BASE_URL)
)

/**
 * The service from configuration: by default `WEBEX_TOKEN` (read as `Redacted`) and
 * `WEBEX_BASE_URL`; pass other `Config`s to read them elsewhere. Other options are given directly.
 */
export const layerConfig = (
  options: ConfigOptions = {}
): Layer.Layer<EventsApi, ConfigError.ConfigError | EventsApiError, HttpClient.HttpClient> =>
  Layer.effect(
    EventsApi,
    Effect.gen(function*() {
      const { baseUrl: baseUrlOption, token: tokenOption, ...rest } = options
      const token = yield* (tokenOption ?? tokenConfig)
      const baseUrl = yield* (baseUrlOption ?? baseUrlConfig)
      return yield* make({ ...rest, token, baseUrl })
    })
  )
