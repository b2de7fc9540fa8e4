/**
 * One HTTP exchange with the API and the mapping of its outcome to `EventsApiError`: the single
 * place where statuses, error bodies and transport failures are read.
 */
import type * as HttpClient from "@effect/platform/HttpClient"
import type * as HttpClientRequest from "@effect/platform/HttpClientRequest"
import * as Clock from "effect/Clock"
import * as Duration from "effect/Duration"
import * as Effect from "effect/Effect"
import * as Option from "effect/Option"
import type { EventsApiError } from "../EventsApiError.js"
import * as Errors from "../EventsApiError.js"
import * as RetryPolicy from "../RetryPolicy.js"

/** A response, read whole. */
export interface Exchange {
  readonly status: number
  readonly body: string
  readonly headers: Readonly<Record<string, string | undefined>>
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

/**
 * Sends `request` and reads its body. No response, a dropped body or a timeout all become a
 * `TransportError` (and so are retried); any status is returned for the caller to judge.
 */
export const exchange = (
  client: HttpClient.HttpClient,
  request: HttpClientRequest.HttpClientRequest,
  url: string,
  timeout: Duration.Duration
): Effect.Effect<Exchange, Errors.TransportError> => {
  // Walk from the error itself: a RequestError without a cause carries its reason only in its own message.
  const transport = (error: { readonly message: string; readonly cause?: unknown }) =>
    new Errors.TransportError({ url, message: `Request to ${url} failed: ${rootCause(error)}` })
  return Effect.gen(function*() {
    const response = yield* client.execute(request).pipe(Effect.mapError(transport))
    // A connection dropped mid-body is a transport failure too, and so retried.
    const body = yield* response.text.pipe(Effect.mapError(transport))
    return { status: response.status, body, headers: response.headers }
  }).pipe(
    Effect.timeoutFail({
      duration: timeout,
      onTimeout: () => new Errors.TransportError({ url, message: `Request to ${url} timed out after ${Duration.format(timeout)}` })
    })
  )
}

/** `message` and `trackingId` of a Webex error body (or of an OAuth one: `error_description`). */
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

/** Status, message and tracking id of a failed exchange, as every error carries them. */
export const responseFields = (response: Exchange, url: string) => {
  const parsed = errorBody(response.body)
  const trackingId = parsed.trackingId ?? response.headers["trackingid"]
  return {
    status: response.status,
    url,
    message: parsed.message ?? (response.body.trim().slice(0, 200) || `HTTP ${response.status}`),
    ...(trackingId !== undefined ? { trackingId } : {})
  }
}

/** Maps a non-2xx response to the error a caller can act on. */
export const errorFromResponse = (
  response: Exchange,
  url: string,
  eventId: string | undefined
): Effect.Effect<EventsApiError> =>
  Effect.map(Clock.currentTimeMillis, (now) => {
    const status = response.status
    const base = responseFields(response, url)
    if (status === 401) return new Errors.Unauthorized(base)
    if (status === 403) return new Errors.Forbidden({ ...base, hint: Errors.FORBIDDEN_HINT })
    if (status === 404 && eventId !== undefined) return new Errors.EventNotFound({ ...base, eventId })
    if (status === 429 || status === 423) {
      const retryAfter = RetryPolicy.parseRetryAfter(response.headers["retry-after"], now)
      return new Errors.RateLimited({
        ...base,
        ...(Option.isSome(retryAfter) ? { retryAfterMillis: Duration.toMillis(retryAfter.value) } : {})
      })
    }
    if (status >= 500) return new Errors.ServerError(base)
    if (status >= 400) return new Errors.InvalidRequest(base)
    return new Errors.ResponseDecodeError({ ...base, message: `Unexpected HTTP ${status}: ${base.message}` })
  })
