/**
 * A scripted `HttpClient` for tests: no network, every request recorded with the TestClock
 * instant it was sent at, every answer chosen by a handler. Provided as a layer, like the real
 * transport would be.
 */
import * as HttpClient from "@effect/platform/HttpClient"
import * as HttpClientError from "@effect/platform/HttpClientError"
import * as HttpClientResponse from "@effect/platform/HttpClientResponse"
import * as Clock from "effect/Clock"
import * as Effect from "effect/Effect"
import * as Layer from "effect/Layer"
import * as Redacted from "effect/Redacted"
import type * as AccessToken from "../../src/AccessToken.js"
import * as EventsApi from "../../src/EventsApi.js"

export const BASE_URL = "https://api.test/v1"
export const TOKEN = "s3cret-token"

/** One request the stub received. */
export interface Call {
  readonly method: string
  /** The request body as text (form and JSON bodies), empty when there is none. */
  readonly body: string
  readonly url: URL
  readonly headers: Readonly<Record<string, string>>
  /** TestClock time when it was sent, in millis. */
  readonly at: number
}

export interface Reply {
  readonly status?: number
  readonly body?: string
  readonly headers?: Readonly<Record<string, string>>
}

/** An answer, a transport failure (no response at all), or an effect producing either. */
export type Answer = Reply | { readonly transportError: string }

export type Handler = (url: URL, index: number) => Answer | Effect.Effect<Answer>

export interface Stub {
  readonly calls: Array<Call>
  readonly client: HttpClient.HttpClient
  readonly layer: Layer.Layer<HttpClient.HttpClient>
  /** URLs requested so far, as strings. */
  readonly urls: () => ReadonlyArray<string>
}

export const stub = (handler: Handler): Stub => {
  const calls: Array<Call> = []
  const client = HttpClient.make((request, url) =>
    Effect.gen(function*() {
      const at = yield* Clock.currentTimeMillis
      const body = request.body._tag === "Uint8Array" ? new TextDecoder().decode(request.body.body) : ""
      calls.push({ method: request.method, body, url, headers: request.headers, at })
      const produced = handler(url, calls.length - 1)
      const answer = Effect.isEffect(produced) ? yield* produced : produced
      if ("transportError" in answer) {
        return yield* new HttpClientError.RequestError({
          request,
          reason: "Transport",
          description: answer.transportError
        })
      }
      return HttpClientResponse.fromWeb(
        request,
        new Response(answer.body ?? "", { status: answer.status ?? 200, headers: { ...answer.headers } })
      )
    })
  )
  return {
    calls,
    client,
    layer: Layer.succeed(HttpClient.HttpClient, client),
    urls: () => calls.map((c) => c.url.toString())
  }
}

/** A `GET /events` page body. */
export const itemsBody = (items: ReadonlyArray<unknown>): string => JSON.stringify({ items })

/** A 200 page, with a `Link: <next>; rel="next"` header when `next` is given. */
export const page = (items: ReadonlyArray<unknown>, next?: string, headers: Record<string, string> = {}): Reply => ({
  status: 200,
  body: itemsBody(items),
  headers: { "content-type": "application/json", ...(next !== undefined ? { link: `<${next}>; rel="next"` } : {}), ...headers }
})

/** A Webex-shaped error response. */
export const webexError = (
  status: number,
  fields: { readonly message?: string; readonly description?: string; readonly trackingId?: string } = {},
  headers: Record<string, string> = {}
): Reply => ({
  status,
  body: JSON.stringify({
    ...(fields.message !== undefined ? { message: fields.message } : {}),
    errors: [{ description: fields.description ?? fields.message ?? "error" }],
    ...(fields.trackingId !== undefined ? { trackingId: fields.trackingId } : {})
  }),
  headers: { "content-type": "application/json", ...headers }
})

let counter = 0
/** A minimal valid event. */
export const event = (overrides: Record<string, unknown> = {}): Record<string, unknown> => ({
  id: `ev-${++counter}`,
  resource: "messages",
  type: "created",
  actorId: "person-1",
  orgId: "org-1",
  appId: "null",
  created: "2024-01-01T00:00:00.000Z",
  data: { id: "msg-1", roomId: "room-1", text: "hello" },
  ...overrides
})

/** Builds the real service on the stub transport. */
export const makeApi = (
  s: Stub,
  options: EventsApi.CommonOptions & { readonly refresh?: AccessToken.RefreshOptions } = {}
) =>
  EventsApi.make({ token: Redacted.make(TOKEN), baseUrl: BASE_URL, ...options }).pipe(
    Effect.provide(s.layer)
  )
