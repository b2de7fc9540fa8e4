/**
 * The fake server's answers: Webex-shaped error bodies, OAuth error bodies, `Retry-After` forms,
 * and the hostile decorations of error text (echoed secrets, control characters, huge strings).
 *
 * @internal
 */
import * as HttpServerResponse from "@effect/platform/HttpServerResponse"
import * as Data from "effect/Data"
import type { FaultKind, Faults } from "../FakeWebex.js"
import { echoText, hostileText } from "./hostile.js"

/** An error answer, rendered as a Webex error body by {@link errorResponse}. */
export class Reply extends Data.TaggedError("Reply")<{
  readonly status: number
  readonly message: string
  readonly description: string
  readonly headers?: Record<string, string>
  readonly fault?: FaultKind
}> {}

/** An error answer of the token endpoint, which uses the OAuth body shape, not the Webex one. */
export class OAuthReply extends Data.TaggedError("OAuthReply")<{
  readonly status: 400 | 401
  readonly error: "invalid_request" | "invalid_client" | "invalid_grant"
  readonly description: string
}> {}

export const MESSAGES = {
  400: "The request was invalid or cannot be otherwise served.",
  401: "The request requires a valid access token set in the Authorization request header.",
  403: "The server understood the request, but refused to fulfill it because the access token is missing required scopes or the user is missing required roles or licenses.",
  404: "The requested resource could not be found.",
  423: "The resource is locked. Retry after the time given in the Retry-After header.",
  429: "Too many requests have been sent in a given amount of time and the request has been rate limited.",
  500: "Something went wrong on the server.",
  502: "The server received an invalid response from an upstream server while processing the request.",
  503: "Server is overloaded with requests. Try again later.",
  504: "An upstream server failed to respond on time. If your query uses max parameter, try reducing max."
} as const

export const badRequest = (description: string) => new Reply({ status: 400, message: MESSAGES[400], description })

export const jsonResponse = (
  status: number,
  body: string | Uint8Array,
  trackingId: string,
  headers: Record<string, string> = {}
) => {
  const options = { status, contentType: "application/json", headers: { ...headers, trackingid: trackingId } }
  return typeof body === "string" ? HttpServerResponse.text(body, options) : HttpServerResponse.uint8Array(body, options)
}

/**
 * What the hostile text modes add to a server text: the request's secrets when `echoSecrets`,
 * control characters, forged log lines and 200 KiB when `hostileErrorText`. Empty otherwise.
 */
export const decoration = (
  faults: Faults,
  secrets: ReadonlyArray<readonly [name: string, value: string | undefined]>
): string => {
  let extra = ""
  if (faults.echoSecrets) {
    const echoed = echoText(secrets)
    if (echoed !== "") extra += ` (you sent ${echoed})`
  }
  if (faults.hostileErrorText) extra += ` ${hostileText()}`
  return extra
}

export const errorResponse = (reply: Reply, trackingId: string, extra = "") =>
  jsonResponse(
    reply.status,
    JSON.stringify({
      message: reply.message + extra,
      errors: [{ description: reply.description + extra }],
      trackingId
    }),
    trackingId,
    reply.headers
  )

export const oauthErrorResponse = (reply: OAuthReply, trackingId: string, extra = "") =>
  jsonResponse(
    reply.status,
    JSON.stringify({ error: reply.error, error_description: reply.description + extra, trackingId }),
    trackingId,
    { "cache-control": "no-store" }
  )

export const retryAfterHeader = (faults: Faults, now: number): Record<string, string> => {
  switch (faults.retryAfter) {
    case "seconds":
      return { "retry-after": String(faults.retryAfterSeconds) }
    case "http-date":
      // HTTP-dates have whole seconds: round up so the announced time is never before the wait ends.
      return {
        "retry-after": new Date(Math.ceil((now + faults.retryAfterSeconds * 1000) / 1000) * 1000).toUTCString()
      }
    case "missing":
      return {}
    case "garbage":
      return { "retry-after": "rand(30),add(30)" }
  }
}
