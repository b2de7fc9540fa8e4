/**
 * One HTTP exchange with the API and the mapping of its outcome to `EventsApiError`: the single
 * place where statuses, bodies, error texts and transport failures are read.
 */
import * as HttpClient from "@effect/platform/HttpClient"
import * as HttpClientError from "@effect/platform/HttpClientError"
import * as HttpClientRequest from "@effect/platform/HttpClientRequest"
import type * as HttpClientResponse from "@effect/platform/HttpClientResponse"
import * as Clock from "effect/Clock"
import * as Duration from "effect/Duration"
import * as Effect from "effect/Effect"
import * as Option from "effect/Option"
import type * as Scope from "effect/Scope"
import * as Stream from "effect/Stream"
import type { EventsApiError } from "../EventsApiError.js"
import * as Errors from "../EventsApiError.js"
import { parseRetryAfter } from "./retryAfter.js"
import { clean } from "./sanitize.js"

/** A response, its body read as bytes (up to the cap). */
export interface Exchange {
  readonly status: number
  readonly body: Uint8Array
  readonly headers: Readonly<Record<string, string | undefined>>
}

/** The default cap on a response body: a page of 1000 large events is a few MiB. */
export const DEFAULT_MAX_RESPONSE_BYTES = 32 * 1024 * 1024

/** An error body is only mined for a message: reading more of it would be waste. */
const ERROR_BODY_BYTES = 64 * 1024

/** Settings of every exchange of one client. */
export interface Settings {
  readonly timeout: Duration.Duration
  readonly maxResponseBytes: number
  /** Current secrets, redacted from any server text that goes into an error. */
  readonly secrets: () => ReadonlyArray<string>
}

/** The innermost message of a transport failure (`connect ECONNREFUSED …`, `other side closed`). */
const rootCause = (cause: unknown): string => {
  let current = cause
  let message = "no response"
  for (let depth = 0; depth < 5 && typeof current === "object" && current !== null; depth++) {
    const e = current as { message?: unknown; code?: unknown; cause?: unknown }
    if (typeof e.message === "string" && e.message !== "") {
      message = typeof e.code === "string" && !e.message.includes(e.code) ? `${e.message} (${e.code})` : e.message
    }
    current = e.cause
  }
  return message
}

const concat = (chunks: ReadonlyArray<Uint8Array>, total: number): Uint8Array => {
  if (chunks.length === 1) return chunks[0]!
  const out = new Uint8Array(total)
  let offset = 0
  for (const chunk of chunks) {
    out.set(chunk, offset)
    offset += chunk.length
  }
  return out
}

/**
 * One buffer for the bodies of a sequence of responses, each body read into it over the last.
 *
 * For a caller done with a body before it sends the next request, and that keeps no view of it
 * (`list()`: a page is parsed into strings and values at once). A fresh buffer per page is
 * garbage the collector only sees late: it outlives a few young collections while the page
 * before it is consumed, so it is promoted, and dead pages pile up outside the JavaScript heap
 * until the next full collection (≈ 70 MiB of them in a 200-page listing).
 */
export interface BodyBuffer {
  /** A buffer of `size` bytes whose content is undefined; the previous one handed out is overwritten. */
  readonly take: (size: number) => Uint8Array
}

/** A {@link BodyBuffer}, grown (with some room) to the largest body seen. */
export const bodyBuffer = (): BodyBuffer => {
  let buffer = new Uint8Array(0)
  return {
    take: (size) => {
      // Room for pages a little larger than this one, so that similar pages do not each grow it.
      if (buffer.length < size) buffer = new Uint8Array(size + (size >> 3))
      return buffer.subarray(0, size)
    }
  }
}

/** What a body reader does with each chunk: false once the rest is not wanted. */
type Take = (chunk: Uint8Array) => boolean

/**
 * Collects at most `limit` bytes of a body as it streams in. `over` tells whether there was more:
 * reading stops at the first chunk past the limit (its part within the limit kept), so an endless
 * body costs `limit` bytes, no more.
 *
 * With a declared length within the limit (`expected`), the body goes straight into one buffer of
 * that size: no list of chunks kept alive until the end, and no second copy to join them (a page is
 * most of a MiB), `into`'s when given. A body that turns out longer than declared falls back to
 * collecting chunks (then a copy of its own).
 */
const capped = (limit: number, expected: number | undefined, into: BodyBuffer | undefined) => {
  let buffer = expected !== undefined && expected > 0 && expected <= limit
    ? (into !== undefined ? into.take(expected) : new Uint8Array(expected))
    : undefined
  const chunks: Array<Uint8Array> = []
  let total = 0
  let over = false
  const add = (chunk: Uint8Array) => {
    if (buffer !== undefined) {
      if (total + chunk.length <= buffer.length) {
        buffer.set(chunk, total)
        total += chunk.length
        return
      }
      // More than declared: what is in the buffer becomes the first chunk.
      chunks.push(buffer.subarray(0, total))
      buffer = undefined
    }
    chunks.push(chunk)
    total += chunk.length
  }
  const take: Take = (chunk) => {
    const room = limit - total
    if (chunk.length > room) {
      over = true
      if (room > 0) add(chunk.subarray(0, room))
      return false
    }
    add(chunk)
    return true
  }
  const result = () => ({ bytes: buffer !== undefined ? buffer.subarray(0, total) : concat(chunks, total), over })
  return { take, result }
}

/** The parts of Node's `IncomingMessage` that reading a body uses. */
interface NodeReadable {
  readonly readable: boolean
  readonly readableEnded: boolean
  readonly errored: unknown
  readonly read: () => Uint8Array | null
  readonly on: (event: string, listener: (value: any) => void) => unknown
  readonly off: (event: string, listener: (value: any) => void) => unknown
  readonly destroy: () => unknown
}

const isNodeReadable = (source: unknown): source is NodeReadable => {
  if (typeof source !== "object" || source === null) return false
  const s = source as Partial<Record<keyof NodeReadable, unknown>>
  return typeof s.on === "function" && typeof s.off === "function" && typeof s.read === "function" &&
    typeof s.destroy === "function" && typeof s.readable === "boolean" && typeof s.readableEnded === "boolean"
}

const isWebResponse = (source: unknown): source is Response =>
  typeof globalThis.Response === "function" && source instanceof globalThis.Response

/**
 * A Node body, read as its `readable` events come: paused mode, as `@effect/platform-node`'s own
 * stream reads it, so Node's back-pressure on the socket is what it was. Destroyed when stopped
 * early (the connection is not reused) or interrupted.
 */
const readNode = <E>(readable: NodeReadable, take: Take, failure: (cause: unknown) => E): Effect.Effect<void, E> =>
  Effect.async<void, E>((resume) => {
    if (!readable.readable) {
      // Ended already: an empty body, read whole. Otherwise it was destroyed before this read
      // began, its connection dropped with no listener to hear the error: a transport failure,
      // not an empty body (`@effect/platform-node`'s own stream takes both for an empty body).
      return resume(
        readable.readableEnded ? Effect.void : Effect.fail(failure(readable.errored ?? new Error("aborted")))
      )
    }
    const detach = () => {
      readable.off("readable", onReadable)
      readable.off("end", onEnd)
      readable.off("error", onError)
      // A late error of a body given up on must not be an unhandled 'error' event.
      readable.on("error", ignore)
    }
    const onReadable = () => {
      let chunk: Uint8Array | null
      while ((chunk = readable.read()) !== null) {
        if (take(chunk)) continue
        detach()
        readable.destroy()
        return resume(Effect.void)
      }
    }
    const onEnd = () => {
      detach()
      resume(Effect.void)
    }
    const onError = (cause: unknown) => {
      detach()
      resume(Effect.fail(failure(cause)))
    }
    readable.on("readable", onReadable)
    readable.on("end", onEnd)
    readable.on("error", onError)
    return Effect.sync(() => {
      detach()
      readable.destroy()
    })
  })

const ignore = () => {}

/** A web body, through its reader; cancelled when stopped early or interrupted. */
const readWeb = <E>(
  body: ReadableStream<Uint8Array>,
  take: Take,
  failure: (cause: unknown) => E
): Effect.Effect<void, E> =>
  Effect.async<void, E>((resume) => {
    const reader = body.getReader()
    let stopped = false
    const stop = () => {
      stopped = true
      reader.cancel().catch(ignore)
    }
    const next = (): void => {
      reader.read().then(({ done, value }) => {
        if (stopped) return
        if (done) return resume(Effect.void)
        if (take(value)) return next()
        stop()
        resume(Effect.void)
      }, (cause: unknown) => {
        if (!stopped) resume(Effect.fail(failure(cause)))
      })
    }
    next()
    return Effect.sync(stop)
  })

/** A body through Effect's `Stream`, for responses of any other `HttpClient`; closed when stopped early. */
const readStream = <E>(stream: Stream.Stream<Uint8Array, E>, take: Take): Effect.Effect<void, E> =>
  Stream.runForEachWhile(stream, (chunk) => Effect.sync(() => take(chunk)))

/**
 * Reads at most `limit` bytes of a response's body (see {@link capped}).
 *
 * The platform's own responses are read from their source: Node's `IncomingMessage` for
 * `@effect/platform-node`, the web `Response` for `FetchHttpClient` (each keeps it as `source`).
 * Their `stream` costs about 160 fiber steps per chunk (a channel per operator, a latch per read):
 * about 1 s of CPU over a 136 MB backfill, as much as the rest of the library's work on a page
 * together. Any other response is read through its `stream`. Either way the failures are the
 * platform's: a `ResponseError` whose cause is the transport's.
 *
 * A wrapper that keeps the platform's `source` but replaces its `stream` (to meter or transform
 * the bytes) would be bypassed: `HttpClient`'s own wrappers do not keep it, and with the scope
 * the platform's responses come unwrapped.
 */
export const readCapped = (
  response: HttpClientResponse.HttpClientResponse,
  limit: number,
  expected: number | undefined,
  into: BodyBuffer | undefined
): Effect.Effect<{ readonly bytes: Uint8Array; readonly over: boolean }, HttpClientError.ResponseError> =>
  Effect.suspend(() => {
    const body = capped(limit, expected, into)
    const failure = (cause: unknown) =>
      new HttpClientError.ResponseError({ request: response.request, response, reason: "Decode", cause })
    const source = (response as { readonly source?: unknown }).source
    const read = isNodeReadable(source)
      ? readNode(source, body.take, failure)
      : isWebResponse(source)
      // No body at all (a 204, a 304): empty, as over Node's `http` (the platform's `stream` fails).
      ? (source.body !== null ? readWeb(source.body, body.take, failure) : Effect.void)
      : readStream(response.stream, body.take)
    return Effect.map(read, body.result)
  })

/**
 * The `HttpClientError` to keep as a cause, minus its request's headers and body: they carry the
 * bearer token (or the grant's secrets), and a cause gets logged and serialised.
 */
const withoutSecrets = (error: HttpClientError.HttpClientError): HttpClientError.HttpClientError => {
  const request = HttpClientRequest.make(error.request.method)(error.request.url)
  const extra = {
    ...(error.cause !== undefined ? { cause: error.cause } : {}),
    ...(error.description !== undefined ? { description: error.description } : {})
  }
  return error._tag === "RequestError"
    ? new HttpClientError.RequestError({ request, reason: error.reason, ...extra })
    : new HttpClientError.ResponseError({ request, response: error.response, reason: error.reason, ...extra })
}

/**
 * A client whose requests are tied to a scope (`HttpClient.withScope`): each exchange runs in its
 * own, closed (so the request aborted) once its body is read or given up on. Its responses are the
 * platform's own, unwrapped, which {@link readCapped} reads from their source. (Without a scope,
 * `HttpClient` wraps each response to abort its request when the body's `stream` ends, or when a
 * `FinalizationRegistry` finds the response unread.)
 */
export type ScopedClient = HttpClient.HttpClient.With<HttpClientError.HttpClientError, Scope.Scope>

export const scopedClient = (client: HttpClient.HttpClient): ScopedClient => HttpClient.withScope(client)

/**
 * Sends `request` and reads its body, up to `maxResponseBytes` for a 2xx (past it:
 * `ResponseTooLarge`, not retried) and a little for an error status (its message is all that is
 * used). No response, a dropped body or a timeout become a `TransportError` (and so are retried);
 * any status is returned for the caller to judge.
 *
 * With `into`, a 2xx body with a declared length is read into that reused buffer: the body
 * returned is then valid only until the next exchange given the same `into`.
 */
export const exchange = (
  client: ScopedClient,
  request: HttpClientRequest.HttpClientRequest,
  url: string,
  settings: Settings,
  into?: BodyBuffer
): Effect.Effect<Exchange, Errors.TransportError | Errors.ResponseTooLarge> => {
  const transport = (error: HttpClientError.HttpClientError) =>
    new Errors.TransportError({
      url,
      // Walk from the error itself: a RequestError without a cause carries its reason only in its own message.
      reason: clean(rootCause(error), settings.secrets()),
      cause: withoutSecrets(error)
    })
  const tooLarge = (response: HttpClientResponse.HttpClientResponse) =>
    new Errors.ResponseTooLarge({
      url,
      status: response.status,
      limitBytes: settings.maxResponseBytes,
      ...(response.headers["trackingid"] !== undefined ? { trackingId: clean(response.headers["trackingid"], []) } : {})
    })
  return Effect.gen(function*() {
    const response = yield* client.execute(request).pipe(Effect.mapError(transport))
    const ok = response.status >= 200 && response.status < 300
    const declared = Number(response.headers["content-length"])
    // A declared length over the cap is refused before a byte of it is read.
    if (ok && Number.isFinite(declared) && declared > settings.maxResponseBytes) return yield* tooLarge(response)
    // A connection dropped mid-body is a transport failure too, and so retried.
    const { bytes, over } = yield* readCapped(
      response,
      ok ? settings.maxResponseBytes : Math.min(ERROR_BODY_BYTES, settings.maxResponseBytes),
      ok && Number.isSafeInteger(declared) ? declared : undefined,
      ok ? into : undefined
    ).pipe(Effect.mapError(transport))
    if (ok && over) return yield* tooLarge(response)
    return { status: response.status, body: bytes, headers: response.headers }
  }).pipe(
    Effect.scoped,
    Effect.timeoutFail({
      duration: settings.timeout,
      onTimeout: () => new Errors.TransportError({ url, reason: `timed out after ${Duration.format(settings.timeout)}` })
    })
  )
}

/** A body as text (lossy: error bodies and token answers are only read, never archived). */
export const text = (body: Uint8Array): string => new TextDecoder().decode(body)

/** `message`, `trackingId` and OAuth `error` of a Webex error body (or of an OAuth one: `error_description`). */
export const errorBody = (body: string): { message?: string; trackingId?: string; error?: string } => {
  try {
    const json = JSON.parse(body) as {
      message?: unknown
      trackingId?: unknown
      errors?: Array<{ description?: unknown }>
      error?: unknown
      error_description?: unknown
    }
    const description = Array.isArray(json.errors) ? json.errors[0]?.description : undefined
    const message = [json.message, description, json.error_description].find((m) => typeof m === "string") as
      | string
      | undefined
    return {
      ...(message !== undefined ? { message } : {}),
      ...(typeof json.trackingId === "string" ? { trackingId: json.trackingId } : {}),
      ...(typeof json.error === "string" ? { error: json.error } : {})
    }
  } catch {
    return {}
  }
}

/** Status, cleaned server text and tracking id of a failed exchange, as every error carries them. */
export const responseDetails = (response: Exchange, url: string, secrets: ReadonlyArray<string>) => {
  const body = text(response.body)
  const parsed = errorBody(body)
  const trackingId = parsed.trackingId ?? response.headers["trackingid"]
  const detail = clean(parsed.message ?? body, secrets)
  return {
    status: response.status,
    url,
    ...(detail !== "" ? { detail } : {}),
    ...(trackingId !== undefined ? { trackingId: clean(trackingId, secrets, 100) } : {}),
    ...(parsed.error !== undefined ? { error: clean(parsed.error, secrets, 100) } : {})
  }
}

/** Maps a non-2xx response to the error a caller can act on. */
export const errorFromResponse = (
  response: Exchange,
  url: string,
  eventId: string | undefined,
  secrets: ReadonlyArray<string>
): Effect.Effect<EventsApiError> =>
  Effect.map(Clock.currentTimeMillis, (now) => {
    const status = response.status
    const { error: _, ...base } = responseDetails(response, url, secrets)
    if (status === 401) return Errors.Unauthorized.fromResponse(base)
    if (status === 403) return Errors.Forbidden.fromResponse(base)
    if (status === 404 && eventId !== undefined) return Errors.EventNotFound.fromResponse({ ...base, eventId })
    if (status === 429 || status === 423) {
      const retryAfter = parseRetryAfter(response.headers["retry-after"], now)
      return Errors.RateLimited.fromResponse({
        ...base,
        ...(Option.isSome(retryAfter) ? { retryAfterMillis: Duration.toMillis(retryAfter.value) } : {})
      })
    }
    if (status >= 500) return Errors.ServerError.fromResponse(base)
    if (status >= 400) return Errors.InvalidRequest.fromResponse(base)
    return new Errors.ResponseDecodeError({ ...base, reason: `unexpected HTTP ${status}` })
  })
