/**
 * `@webex-compliance/events-api/promise`: the same client for applications that do not use Effect.
 *
 * An {@link EventsClient} runs the Effect service ({@link EventsApi.layer}: the same pagination,
 * retry policy, rate gate and token refresh) in a `ManagedRuntime` over the platform's `fetch`, so
 * nothing but Node 20 (or any runtime with `fetch`) is needed. Failures reject with the library's
 * own error classes, which are `Error` subclasses: `instanceof EventNotFound`, `.status`,
 * `.trackingId` and `._tag` all work, and nothing is wrapped in a `FiberFailure`.
 *
 * @example
 * ```ts
 * import { EventsClient } from "@webex-compliance/events-api/promise"
 *
 * const client = new EventsClient({ token: process.env.WEBEX_TOKEN! })
 * try {
 *   for await (const event of client.list({ resource: "messages", from: "2024-01-01T00:00:00Z" })) {
 *     console.log(event.id, event.type)
 *   }
 * } finally {
 *   await client.close()
 * }
 * ```
 *
 * @since 0.1.0
 */
import * as FetchHttpClient from "@effect/platform/FetchHttpClient"
import * as Cause from "effect/Cause"
import * as Chunk from "effect/Chunk"
import * as Duration from "effect/Duration"
import * as Effect from "effect/Effect"
import * as Exit from "effect/Exit"
import * as Layer from "effect/Layer"
import * as Logger from "effect/Logger"
import * as LogLevel from "effect/LogLevel"
import * as ManagedRuntime from "effect/ManagedRuntime"
import * as Option from "effect/Option"
import * as Redacted from "effect/Redacted"
import * as Scope from "effect/Scope"
import * as Stream from "effect/Stream"
import type { Event } from "./Event.js"
import * as EventsApi from "./EventsApi.js"
import type { EventsPage } from "./EventsPage.js"
import type { ListParams } from "./ListParams.js"

export {
  EventNotFound,
  Forbidden,
  InvalidRequest,
  RateLimited,
  ResponseDecodeError,
  ServerError,
  TokenRefreshFailed,
  TransportError,
  Unauthorized,
  UnsafeNextLink
} from "./EventsApiError.js"
export type { EventsApiError } from "./EventsApiError.js"
export type { Event } from "./Event.js"
export type { EventsPage } from "./EventsPage.js"
export type { ListParams } from "./ListParams.js"

/** A secret as a plain string, or already wrapped in Effect's `Redacted`. */
export type Secret = string | Redacted.Redacted<string>

/** The tokens of one refresh, handed to {@link RefreshOptions.onRotate} to persist. */
export interface Rotated {
  readonly accessToken: string
  readonly refreshToken: string
  readonly expiresAt: Date
}

/** How to keep access tokens fresh with an OAuth integration's refresh token. */
export interface RefreshOptions {
  readonly clientId: string
  readonly clientSecret: Secret
  readonly refreshToken: Secret
  /**
   * Called after every refresh, before the new token is used. Persist `refreshToken` here: the one
   * presented is spent. A rejection stops the client with `TokenRefreshFailed`.
   */
  readonly onRotate?: ((tokens: Rotated) => void | Promise<void>) | undefined
  /** Refresh this long before the access token expires: milliseconds or e.g. `"1 hour"`. Default 1 hour. */
  readonly refreshBefore?: Duration.DurationInput | undefined
}

/** Options of {@link EventsClient}: a `token`, a `refresh` configuration, or both. */
export interface ClientOptions {
  /** A token with the `spark-compliance:events_read` scope. Required unless `refresh` is given. */
  readonly token?: Secret | undefined
  readonly refresh?: RefreshOptions | undefined
  /** Default `https://webexapis.com/v1`. */
  readonly baseUrl?: string | undefined
  /** The retry policy: settings over the default one, or `false` for none (see the Effect API). */
  readonly retry?: EventsApi.CommonOptions["retry"]
  /** Give up on one HTTP request after this long: milliseconds or e.g. `"30 seconds"`. Default 60 s. */
  readonly requestTimeout?: Duration.DurationInput | undefined
  /** The `fetch` to send requests with (a proxy agent, instrumentation). Default `globalThis.fetch`. */
  readonly fetch?: typeof globalThis.fetch | undefined
  /**
   * The least severe of the client's own log lines (retries, token refreshes) printed to the
   * console. Default `"warning"`; `"none"` silences them.
   */
  readonly logLevel?: "none" | "error" | "warning" | "info" | "debug" | undefined
}

/** Per-call options. */
export interface CallOptions {
  /** Aborting stops the call (and the HTTP request in flight); the promise rejects with `signal.reason`. */
  readonly signal?: AbortSignal | undefined
}

const secret = (s: Secret): Redacted.Redacted<string> => Redacted.isRedacted(s) ? s : Redacted.make(s)

const LOG_LEVELS = {
  none: LogLevel.None,
  error: LogLevel.Error,
  warning: LogLevel.Warning,
  info: LogLevel.Info,
  debug: LogLevel.Debug
} as const

const serviceOptions = (options: ClientOptions): EventsApi.Options => {
  const common: EventsApi.CommonOptions = {
    baseUrl: options.baseUrl,
    retry: options.retry,
    requestTimeout: options.requestTimeout
  }
  const refresh = options.refresh
  const onRotate = refresh?.onRotate
  const refreshOptions = refresh === undefined ? undefined : {
    clientId: refresh.clientId,
    clientSecret: secret(refresh.clientSecret),
    refreshToken: secret(refresh.refreshToken),
    refreshBefore: refresh.refreshBefore,
    onRotate: onRotate === undefined ? undefined : (tokens: {
      readonly accessToken: Redacted.Redacted<string>
      readonly refreshToken: Redacted.Redacted<string>
      readonly expiresAt: number
    }) =>
      Effect.tryPromise(async () =>
        onRotate({
          accessToken: Redacted.value(tokens.accessToken),
          refreshToken: Redacted.value(tokens.refreshToken),
          expiresAt: new Date(tokens.expiresAt)
        })
      )
  }
  if (refreshOptions !== undefined) {
    return { ...common, refresh: refreshOptions, ...(options.token !== undefined ? { token: secret(options.token) } : {}) }
  }
  if (options.token === undefined || (typeof options.token === "string" && options.token.trim() === "")) {
    // A programming error, reported at construction rather than as a 401 on the first call.
    throw new TypeError("EventsClient: `token` (or `refresh`) is required")
  }
  return { ...common, token: secret(options.token) }
}

/** The error a Promise rejects with: the library's tagged error itself, never a FiberFailure. */
const toRejection = (cause: Cause.Cause<unknown>, signal: AbortSignal | undefined): unknown => {
  const failure = Cause.failureOption(cause)
  if (Option.isSome(failure)) return failure.value
  if (Cause.isInterruptedOnly(cause)) {
    return signal?.aborted === true ? signal.reason : new DOMException("The operation was aborted", "AbortError")
  }
  // A defect: a bug, here or in a callback such as `onRotate`. Reject with what was thrown.
  const defect = Cause.squash(cause)
  return defect instanceof Error ? defect : new Error(Cause.pretty(cause), { cause: defect })
}

const closedError = () => new Error("EventsClient is closed")

/**
 * The Events API for Promise code. Create one per token and base URL, reuse it (it holds the rate
 * gate that spaces its requests after a 429), and `close()` it when done.
 */
export class EventsClient {
  // The error type is the layer's: a bad `baseUrl` rejects every call with `InvalidRequest`.
  readonly #runtime: ManagedRuntime.ManagedRuntime<EventsApi.EventsApi, unknown>
  /** Scopes of the listings in progress: `close()` ends them. */
  readonly #open = new Set<Scope.CloseableScope>()
  #closed = false

  constructor(options: ClientOptions) {
    const transport = options.fetch === undefined
      ? FetchHttpClient.layer
      : FetchHttpClient.layer.pipe(Layer.provide(Layer.succeed(FetchHttpClient.Fetch, options.fetch)))
    const logging = Logger.minimumLogLevel(LOG_LEVELS[options.logLevel ?? "warning"])
    this.#runtime = ManagedRuntime.make(
      Layer.merge(EventsApi.layer(serviceOptions(options)).pipe(Layer.provide(transport)), logging)
    )
  }

  /**
   * Every event from `GET /events`, lazily: a page is fetched when the loop needs it, and only one
   * is held. Leaving the loop (`break`, `return`, a throw) stops the listing. Rejects with
   * `ResponseDecodeError` on an item that does not decode (`listPages` keeps such items).
   */
  list(params: ListParams = {}, options: CallOptions = {}): AsyncIterable<Event> {
    return this.#iterate(Stream.unwrap(Effect.map(EventsApi.EventsApi, (api) => api.list(params))), options.signal)
  }

  /** One element per HTTP page: the decoded events, the undecodable items, each item's raw JSON text. */
  listPages(params: ListParams = {}, options: CallOptions = {}): AsyncIterable<EventsPage> {
    return this.#iterate(Stream.unwrap(Effect.map(EventsApi.EventsApi, (api) => api.listPages(params))), options.signal)
  }

  /** One event by id; rejects with `EventNotFound` on a 404. */
  get(eventId: string, options: CallOptions = {}): Promise<Event> {
    return this.#run(Effect.flatMap(EventsApi.EventsApi, (api) => api.get(eventId)), options.signal)
  }

  /** Stops every listing in progress and releases the client. Further calls reject. */
  async close(): Promise<void> {
    if (this.#closed) return
    this.#closed = true
    await Promise.all([...this.#open].map((scope) => Effect.runPromise(Scope.close(scope, Exit.void))))
    this.#open.clear()
    await this.#runtime.dispose()
  }

  async #run<A, E>(effect: Effect.Effect<A, E, EventsApi.EventsApi>, signal: AbortSignal | undefined): Promise<A> {
    if (this.#closed) throw closedError()
    signal?.throwIfAborted()
    const exit = await this.#runtime.runPromiseExit(effect, signal === undefined ? undefined : { signal })
    if (Exit.isSuccess(exit)) return exit.value
    throw toRejection(exit.cause, signal)
  }

  #iterate<A, E>(stream: Stream.Stream<A, E, EventsApi.EventsApi>, signal: AbortSignal | undefined): AsyncIterable<A> {
    const client = this
    return {
      [Symbol.asyncIterator](): AsyncIterator<A> {
        let scope: Scope.CloseableScope | undefined
        let pull: Effect.Effect<Chunk.Chunk<A>, Option.Option<E>, EventsApi.EventsApi> | undefined
        let buffer: Array<A> = []
        let done = false
        // `next` calls are served one at a time, in order, even if a caller does not await them.
        let queue: Promise<unknown> = Promise.resolve()

        const finish = async () => {
          done = true
          buffer = []
          const s = scope
          scope = undefined
          pull = undefined
          if (s !== undefined) {
            client.#open.delete(s)
            // Closing the scope interrupts the listing and releases its connection.
            await Effect.runPromise(Scope.close(s, Exit.void))
          }
        }

        const step = async (): Promise<IteratorResult<A>> => {
          for (;;) {
            if (client.#closed && !done) {
              await finish()
              throw closedError()
            }
            if (buffer.length > 0) return { done: false, value: buffer.shift()! }
            if (done) return { done: true, value: undefined }
            try {
              let next = pull
              if (next === undefined) {
                const s = Effect.runSync(Scope.make())
                scope = s
                client.#open.add(s)
                next = pull = await client.#run(Scope.extend(Stream.toPull(stream), s), signal)
              }
              buffer = Chunk.toArray(await client.#run(next, signal))
            } catch (error) {
              await finish()
              // `toPull` fails with `None` at the end of the stream: that is the end, not an error.
              if (Option.isOption(error)) {
                if (Option.isNone(error)) return { done: true, value: undefined }
                throw error.value
              }
              throw error
            }
          }
        }

        return {
          next: () => {
            const result = queue.then(step)
            queue = result.catch(() => undefined)
            return result
          },
          return: async () => {
            await finish()
            return { done: true, value: undefined }
          }
        }
      }
    }
  }
}
