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
 *   Effect.provide(NodeHttpClient.layerUndici),
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
import * as Context from "effect/Context"
import * as Duration from "effect/Duration"
import * as Effect from "effect/Effect"
import * as Either from "effect/Either"
import * as Layer from "effect/Layer"
import * as Option from "effect/Option"
import * as Redacted from "effect/Redacted"
import * as Stream from "effect/Stream"
import type { Event } from "./Event.js"
import type { EventsApiError } from "./EventsApiError.js"
import * as AccessToken from "./AccessToken.js"
import * as Errors from "./EventsApiError.js"
import * as EventsPage from "./EventsPage.js"
import * as Http from "./internal/http.js"
import * as PageDecoder from "./internal/pageDecoder.js"
import * as RateGate from "./internal/rateGate.js"
import * as ListParams from "./ListParams.js"
import * as Pagination from "./Pagination.js"
import * as RetryPolicy from "./RetryPolicy.js"

/** The service. Obtain it with `yield* EventsApi`. */
export interface Service {
  /**
   * Every event of every page, lazily: a page is fetched when the stream needs it, and only one
   * is held in memory. Fails with `ResponseDecodeError` on an item that does not decode (use
   * {@link Service.listPages} to keep such items and go on).
   */
  readonly list: (params?: ListParams.ListParams) => Stream.Stream<Event, EventsApiError>
  /**
   * One element per HTTP page, with every item's raw JSON and, for items that do not decode,
   * the reason, next to the good ones.
   */
  readonly listPages: (params?: ListParams.ListParams) => Stream.Stream<EventsPage.EventsPage, EventsApiError>
  /** One event by id. A 404 fails with `EventNotFound`. */
  readonly get: (eventId: string) => Effect.Effect<Event, EventsApiError>
}

/** The Events API service tag. */
export class EventsApi extends Context.Tag("@webex-compliance/events-api/EventsApi")<EventsApi, Service>() {}

export const DEFAULT_BASE_URL = "https://webexapis.com/v1"

/** Options of {@link make} and {@link layer} besides the credentials. */
export interface CommonOptions {
  /** Default `https://webexapis.com/v1`. */
  readonly baseUrl?: string | undefined
  /**
   * The retry policy: settings over the default one, a complete policy, or `false` for none.
   * Default {@link RetryPolicy.make}().
   */
  readonly retry?: RetryPolicy.Options | RetryPolicy.RetryPolicy | false | undefined
  /** Give up on a single HTTP request after this long (then it counts as a transport failure). Default 60 s. */
  readonly requestTimeout?: Duration.DurationInput | undefined
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
  readonly body: string
  readonly link: string | undefined
  readonly trackingId: string | undefined
}

const isLoopback = (hostname: string): boolean =>
  hostname === "localhost" || hostname === "[::1]" || /^127(?:\.\d{1,3}){3}$/.test(hostname)

/** Builds the service from options. Requires an `HttpClient`; picks no transport. */
export const make = (options: Options): Effect.Effect<Service, never, HttpClient.HttpClient> =>
  Effect.gen(function*() {
    const client = yield* HttpClient.HttpClient
    const policy = resolvePolicy(options.retry)
    const gate = yield* RateGate.make
    const timeout = Duration.decode(options.requestTimeout ?? "60 seconds")
    const baseUrl = (options.baseUrl ?? DEFAULT_BASE_URL).replace(/\/+$/, "")
    const origin = Either.try({
      try: () => new URL(baseUrl),
      catch: () => `${JSON.stringify(baseUrl)} is not an http(s) URL`
    }).pipe(
      Either.filterOrLeft(
        (url) => url.protocol === "https:" || url.protocol === "http:",
        () => `${JSON.stringify(baseUrl)} is not an http(s) URL`
      ),
      // Plain http would carry the token in cleartext: only a server on this machine may have it.
      Either.filterOrLeft(
        (url) => url.protocol === "https:" || isLoopback(url.hostname),
        (url) => `plain http is only allowed to this machine (localhost, 127.0.0.1, ::1), not ${url.hostname}: use https`
      ),
      Either.map((url) => url.origin)
    )
    const checkedOrigin: Effect.Effect<string, Errors.InvalidRequest> = Either.isRight(origin)
      ? Effect.succeed(origin.right)
      : Effect.fail(new Errors.InvalidRequest({ param: "baseUrl", message: `Invalid baseUrl: ${origin.left}` }))

    const tokens: AccessToken.AccessTokens = options.refresh !== undefined
      ? yield* AccessToken.refreshing({
        refresh: options.refresh,
        initial: Option.fromNullable(options.token),
        client,
        baseUrl,
        timeout,
        retry: (grant) => Effect.map(RetryPolicy.run(policy, gate, baseUrl, () => grant, { shrinkable: false }), (r) => r.value)
      })
      : AccessToken.fixed(options.token!)

    /** One HTTP exchange, no retries. The origin check sits here so no code path can skip it. */
    const attempt = (url: string, eventId?: string): Effect.Effect<Response, EventsApiError> =>
      Effect.gen(function*() {
        const expected = yield* checkedOrigin
        if (!Pagination.sameOrigin(url, expected)) {
          return yield* new Errors.UnsafeNextLink({
            url,
            nextUrl: url,
            expectedOrigin: expected,
            message: `Refusing to send the token to ${url}: it is not on the API's origin ${expected}`
          })
        }
        const send = (token: Redacted.Redacted<string>) =>
          Http.exchange(
            client,
            HttpClientRequest.get(url).pipe(HttpClientRequest.bearerToken(token), HttpClientRequest.acceptJson),
            url,
            timeout
          )
        const token = yield* tokens.current
        let response = yield* send(token)
        // An expired token: refresh once and send the same request again; its answer is the answer.
        if (response.status === 401 && (yield* tokens.rejected(token))) response = yield* send(yield* tokens.current)
        if (response.status >= 200 && response.status < 300) {
          return { body: response.body, link: response.headers["link"], trackingId: response.headers["trackingid"] }
        }
        return yield* Effect.flip(Http.errorFromResponse(response, url, eventId))
      })

    /**
     * One page, and what comes after it: the next URL, or the error that stops pagination there.
     * A refused next link does not cost the page it came with: the page is emitted first.
     */
    const fetchPage = (
      url: string,
      filters: Readonly<Record<string, string>>,
      /** URLs already fetched by this listing (one short string per page). */
      seen: Set<string>
    ): Effect.Effect<
      readonly [EventsPage.EventsPage, Option.Option<Either.Either<string, EventsApiError>>],
      EventsApiError
    > =>
      Effect.gen(function*() {
        const { url: used, value: response } = yield* RetryPolicy.run(policy, gate, url, (u) => attempt(u), {
          shrinkable: true
        })
        const trackingId = response.trackingId !== undefined ? { trackingId: response.trackingId } : {}
        const items = PageDecoder.decodeBody(response.body)
        if (Either.isLeft(items)) {
          return yield* new Errors.ResponseDecodeError({
            url: used,
            message: `Unexpected response from ${used}: ${items.left}`,
            ...trackingId
          })
        }
        const page = (next: Option.Option<string>) =>
          new EventsPage.EventsPage({
            url: used,
            items: items.right,
            next,
            trackingId: Option.fromNullable(response.trackingId)
          })
        const link = Pagination.nextLink(response.link, used)
        if (Option.isNone(link)) return [page(Option.none()), Option.none()] as const
        const expectedOrigin = yield* checkedOrigin
        if (!Pagination.sameOrigin(link.value, expectedOrigin)) {
          const refused = new Errors.UnsafeNextLink({
            url: used,
            nextUrl: link.value,
            expectedOrigin,
            message: `The next-page link points to ${link.value}, outside the API's origin ${expectedOrigin}; ` +
              "pagination stopped so the token is not sent there",
            ...trackingId
          })
          return [page(Option.none()), Option.some(Either.left(refused))] as const
        }
        // The page size in force is the one of the URL just used (it may have shrunk after 504s).
        const max = Pagination.maxOf(used)
        const expected = Option.isSome(max) ? { ...filters, max: String(max.value) } : filters
        const repaired = Pagination.repair(link.value, expected)
        if (repaired.repaired.length > 0) {
          yield* Effect.logDebug(`Repaired the next-page link (${repaired.repaired.join(", ")} missing or null)`).pipe(
            Effect.annotateLogs({ from: link.value, to: repaired.url })
          )
        }
        seen.add(url)
        seen.add(used)
        if (seen.has(repaired.url)) {
          // A link back to a page already fetched in this listing would loop forever.
          const loop = new Errors.ResponseDecodeError({
            url: used,
            message: `The next-page link of ${used} points back to a page already listed (${repaired.url}); pagination stopped`,
            ...trackingId
          })
          return [page(Option.none()), Option.some(Either.left(loop))] as const
        }
        return [page(Option.some(repaired.url)), Option.some(Either.right(repaired.url))] as const
      })

    const listPages: Service["listPages"] = (params) =>
      Stream.unwrap(
        Effect.gen(function*() {
          const normalized = yield* ListParams.normalize(params)
          yield* checkedOrigin
          const filters = ListParams.filterParams(normalized)
          const first = new URL(`${baseUrl}/events`)
          for (const [k, v] of Object.entries(filters)) first.searchParams.set(k, v)
          if (Option.isSome(normalized.max)) first.searchParams.set("max", String(normalized.max.value))
          const seen = new Set<string>()
          return Stream.paginateChunkEffect(
            Either.right(first.toString()) as Either.Either<string, EventsApiError>,
            (next) =>
              Either.isLeft(next)
                ? Effect.fail(next.left)
                : Effect.map(fetchPage(next.right, filters, seen), ([page, after]) => [Chunk.of(page), after] as const)
          )
        })
      )

    const list: Service["list"] = (params) => listPages(params).pipe(Stream.mapConcatEffect(PageDecoder.eventsOrFail))

    const get: Service["get"] = (eventId) =>
      Effect.gen(function*() {
        if (typeof eventId !== "string" || eventId.trim() === "") {
          return yield* new Errors.InvalidRequest({ param: "eventId", message: "Invalid eventId: must be a non-empty string" })
        }
        yield* checkedOrigin
        const url = `${baseUrl}/events/${encodeURIComponent(eventId)}`
        const { value: response } = yield* RetryPolicy.run(policy, gate, url, (u) => attempt(u, eventId), {
          shrinkable: false
        })
        const item = PageDecoder.decodeItem(response.body)
        if (item._tag === "Decoded") return item.event
        return yield* new Errors.ResponseDecodeError({
          url,
          message: `Event ${eventId} does not decode: ${item.reason}`,
          ...(response.trackingId !== undefined ? { trackingId: response.trackingId } : {})
        })
      })

    return { list, listPages, get }
  })

/** The service from plain options. */
export const layer = (options: Options): Layer.Layer<EventsApi, never, HttpClient.HttpClient> =>
  Layer.effect(EventsApi, make(options))

/**
 * The service from configuration: `WEBEX_TOKEN` (read as `Redacted`) and `WEBEX_BASE_URL`
 * (default `https://webexapis.com/v1`). Other options may be given directly.
 */
export const layerConfig = (
  options: Omit<CommonOptions, "baseUrl"> = {}
): Layer.Layer<EventsApi, import("effect/ConfigError").ConfigError, HttpClient.HttpClient> =>
  Layer.effect(
    EventsApi,
    Effect.gen(function*() {
      // A token pasted with a trailing newline would be refused as a malformed header.
      const token = yield* Config.redacted("WEBEX_TOKEN").pipe(
        Config.map((t) => Redacted.make(Redacted.value(t).trim())),
        Config.validate({ message: "WEBEX_TOKEN is empty", validation: (t) => Redacted.value(t) !== "" })
      )
      const baseUrl = yield* Config.string("WEBEX_BASE_URL").pipe(
        Config.withDefault(DEFAULT_BASE_URL),
        Config.validate({
          message: "WEBEX_BASE_URL must be an http(s) URL such as https://webexapis.com/v1",
          validation: (s) => /^https?:\/\/[^/]+/i.test(s) && URL.canParse(s)
        })
      )
      return yield* make({ ...options, token, baseUrl })
    })
  )
