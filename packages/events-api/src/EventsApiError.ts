/**
 * The closed set of failures the Events API client reports.
 *
 * Errors are data, shaped like `@effect/ai`'s `AiError`: structured fields (the HTTP status, the
 * server's own words, the `trackingId` Cisco support asks for, the underlying `cause`), a
 * `message` computed from them, and `static fromResponse` constructors. The message leaves out
 * `trackingId` and `Forbidden`'s `hint`: they are fields, for the caller to show where it wants.
 * `HttpClientError` and `ParseError` never cross the package boundary: they travel as `cause`.
 *
 * Server text (`detail`) is cleaned before it gets here: secrets (token, client secret, refresh
 * token) redacted, control characters escaped, cut to a few hundred characters.
 *
 * @since 0.1.0
 */
import * as Schema from "effect/Schema"

const ResponseFields = {
  /** HTTP status of the response, when there was one. */
  status: Schema.optional(Schema.Number),
  /** Webex `trackingId` (body) or `trackingid` (header): quote it to Cisco support. */
  trackingId: Schema.optional(Schema.String),
  /** The request URL, without credentials. */
  url: Schema.optional(Schema.String),
  /** The server's own explanation (its `message`, or the start of its body), cleaned. */
  detail: Schema.optional(Schema.String),
  /** What went wrong underneath: the `HttpClientError` of a transport failure, say. */
  cause: Schema.optional(Schema.Defect)
}

/** What every error carries, as read from one response. */
export interface ResponseDetails {
  readonly status?: number | undefined
  readonly trackingId?: string | undefined
  readonly url?: string | undefined
  readonly detail?: string | undefined
  readonly cause?: unknown
}

/** Drops `undefined` fields: the schemas' optional fields are exact. */
const defined = <A extends object>(fields: A): A =>
  Object.fromEntries(Object.entries(fields).filter(([, v]) => v !== undefined)) as A

const statusText = (status: number | undefined): string => (status === undefined ? "" : ` (HTTP ${status})`)
const at = (url: string | undefined): string => (url === undefined ? "" : ` from ${url}`)

/** 401: the token is missing, malformed or expired. */
export class Unauthorized extends Schema.TaggedError<Unauthorized>()("Unauthorized", ResponseFields) {
  static fromResponse(details: ResponseDetails): Unauthorized {
    return new Unauthorized(defined({ ...details }))
  }
  // Writable like Error's, so these stay subtypes of Error for TypeScript; always computed.
  override set message(_: string) {}
  override get message(): string {
    return `Unauthorized${statusText(this.status)}: ${this.detail ?? "the token is missing, malformed or expired"}`
  }
}

export const FORBIDDEN_HINT =
  "The token is valid but lacks compliance access: it needs the spark-compliance:events_read scope " +
  "and its user must hold the Compliance Officer role in Control Hub."

/** 403: the token is valid but may not read compliance events. */
export class Forbidden extends Schema.TaggedError<Forbidden>()("Forbidden", ResponseFields) {
  static fromResponse(details: ResponseDetails): Forbidden {
    return new Forbidden(defined({ ...details }))
  }
  /** What usually fixes it. */
  get hint(): string {
    return FORBIDDEN_HINT
  }
  // Writable like Error's, so these stay subtypes of Error for TypeScript; always computed.
  override set message(_: string) {}
  override get message(): string {
    return `Forbidden${statusText(this.status)}: ${this.detail ?? "access denied"}`
  }
}

/** 404 on `get`: no event has that id (or it is outside the retention period). */
export class EventNotFound extends Schema.TaggedError<EventNotFound>()("EventNotFound", {
  ...ResponseFields,
  eventId: Schema.String
}) {
  static fromResponse(details: ResponseDetails & { readonly eventId: string }): EventNotFound {
    return new EventNotFound(defined({ ...details }))
  }
  // Writable like Error's, so these stay subtypes of Error for TypeScript; always computed.
  override set message(_: string) {}
  override get message(): string {
    return `No event with id ${this.eventId}${this.detail !== undefined ? `: ${this.detail}` : ""}`
  }
}

/**
 * 400 from the server, any other unexpected 4xx, or a parameter rejected on the client before
 * any request was sent (then `param` names it, `reason` says why, and `status` is absent).
 */
export class InvalidRequest extends Schema.TaggedError<InvalidRequest>()("InvalidRequest", {
  ...ResponseFields,
  /** The option or parameter at fault, when it was refused on the client. */
  param: Schema.optional(Schema.String),
  /** Why the client refused it. */
  reason: Schema.optional(Schema.String)
}) {
  static fromResponse(details: ResponseDetails): InvalidRequest {
    return new InvalidRequest(defined({ ...details }))
  }
  /** A parameter refused before any request was sent. */
  static param(param: string, reason: string): InvalidRequest {
    return new InvalidRequest({ param, reason })
  }
  // Writable like Error's, so these stay subtypes of Error for TypeScript; always computed.
  override set message(_: string) {}
  override get message(): string {
    if (this.param !== undefined && this.status === undefined) {
      return `Invalid ${this.param}: ${this.reason ?? "refused"}`
    }
    return `Invalid request${statusText(this.status)}${at(this.url)}: ${this.detail ?? this.reason ?? "refused by the server"}`
  }
}

/** 429 (Too Many Requests) or 423 (Locked), after the retry policy gave up (or with none). */
export class RateLimited extends Schema.TaggedError<RateLimited>()("RateLimited", {
  ...ResponseFields,
  /** The wait the server asked for, in milliseconds, when its `Retry-After` could be read. */
  retryAfterMillis: Schema.optional(Schema.Number)
}) {
  static fromResponse(details: ResponseDetails & { readonly retryAfterMillis?: number | undefined }): RateLimited {
    return new RateLimited(defined({ ...details }))
  }
  // Writable like Error's, so these stay subtypes of Error for TypeScript; always computed.
  override set message(_: string) {}
  override get message(): string {
    const what = this.status === 423 ? "Locked (423)" : "Rate limited (429)"
    const wait = this.retryAfterMillis === undefined ? "" : `; the server asked to wait ${this.retryAfterMillis} ms`
    return `${what}${at(this.url)}${this.detail !== undefined ? `: ${this.detail}` : ""}${wait}`
  }
}

/** 5xx after the retry policy gave up. */
export class ServerError extends Schema.TaggedError<ServerError>()("ServerError", ResponseFields) {
  static fromResponse(details: ResponseDetails): ServerError {
    return new ServerError(defined({ ...details }))
  }
  // Writable like Error's, so these stay subtypes of Error for TypeScript; always computed.
  override set message(_: string) {}
  override get message(): string {
    return `Server error${statusText(this.status)}${at(this.url)}: ${this.detail ?? "no explanation given"}`
  }
}

/** No HTTP response at all: connection refused or dropped, DNS, TLS, timeout. */
export class TransportError extends Schema.TaggedError<TransportError>()("TransportError", {
  ...ResponseFields,
  /** The innermost failure, e.g. `connect ECONNREFUSED 127.0.0.1:9`, or `timed out after 1m`. */
  reason: Schema.String
}) {
  // Writable like Error's, so these stay subtypes of Error for TypeScript; always computed.
  override set message(_: string) {}
  override get message(): string {
    return `Request${this.url !== undefined ? ` to ${this.url}` : ""} failed: ${this.reason}`
  }
}

/** A 2xx response whose body is not what the API documents (not JSON, no `items` array, ...). */
export class ResponseDecodeError extends Schema.TaggedError<ResponseDecodeError>()("ResponseDecodeError", {
  ...ResponseFields,
  /** What is wrong with the response. */
  reason: Schema.String
}) {
  // Writable like Error's, so these stay subtypes of Error for TypeScript; always computed.
  override set message(_: string) {}
  override get message(): string {
    return `Unexpected response${at(this.url)}: ${this.reason}`
  }
}

/**
 * A response body longer than the configured cap (`maxResponseBytes`). Reading stopped at the cap:
 * a server streaming without end cannot exhaust memory. Not retried.
 */
export class ResponseTooLarge extends Schema.TaggedError<ResponseTooLarge>()("ResponseTooLarge", {
  ...ResponseFields,
  /** The cap, in bytes. */
  limitBytes: Schema.Number
}) {
  // Writable like Error's, so these stay subtypes of Error for TypeScript; always computed.
  override set message(_: string) {}
  override get message(): string {
    return `The response${at(this.url)} is larger than the limit of ${this.limitBytes} bytes (maxResponseBytes); ` +
      "reading stopped there"
  }
}

/**
 * Pagination that never ends: too many consecutive empty pages that still link onward
 * (`reason: "emptyPages"`), or more pages in one listing than the configured limit
 * (`reason: "pageLimit"`). `limit` is the bound that was hit.
 */
export class PaginationRunaway extends Schema.TaggedError<PaginationRunaway>()("PaginationRunaway", {
  ...ResponseFields,
  reason: Schema.Literal("emptyPages", "pageLimit"),
  limit: Schema.Number
}) {
  // Writable like Error's, so these stay subtypes of Error for TypeScript; always computed.
  override set message(_: string) {}
  override get message(): string {
    return this.reason === "emptyPages"
      ? `Pagination stopped${at(this.url)}: ${this.limit} empty pages in a row still linked to a next page (maxEmptyPages)`
      : `Pagination stopped${at(this.url)}: the listing passed ${this.limit} pages (maxPages)`
  }
}

/**
 * A `Link: rel="next"` URL pointing at an origin other than the configured base URL's. Following it
 * would hand the bearer token to a third party, so pagination stops here instead.
 */
export class UnsafeNextLink extends Schema.TaggedError<UnsafeNextLink>()("UnsafeNextLink", {
  ...ResponseFields,
  nextUrl: Schema.String,
  expectedOrigin: Schema.String
}) {
  // Writable like Error's, so these stay subtypes of Error for TypeScript; always computed.
  override set message(_: string) {}
  override get message(): string {
    return `The next-page link${at(this.url)} points to ${this.nextUrl}, outside the API's origin ` +
      `${this.expectedOrigin}; pagination stopped so the token is not sent there`
  }
}

/**
 * The OAuth refresh-token grant was refused (`invalid_grant`: the refresh token expired, was
 * revoked or was already spent; `invalid_client`: wrong client id or secret), its answer was
 * unusable, or its new refresh token could not be persisted. The integration must be re-authorised.
 */
export class TokenRefreshFailed extends Schema.TaggedError<TokenRefreshFailed>()("TokenRefreshFailed", {
  ...ResponseFields,
  /** The OAuth error code, e.g. `invalid_grant`. */
  error: Schema.optional(Schema.String),
  /** Which step failed. */
  stage: Schema.Literal("grant", "response", "persist")
}) {
  static fromResponse(details: ResponseDetails & { readonly error?: string | undefined }): TokenRefreshFailed {
    return new TokenRefreshFailed(defined({ ...details, stage: "grant" as const }))
  }
  // Writable like Error's, so these stay subtypes of Error for TypeScript; always computed.
  override set message(_: string) {}
  override get message(): string {
    const hint = "Re-authorise the integration to get a new refresh token, and store it where the client reads it."
    switch (this.stage) {
      case "grant":
        return `The access token could not be refreshed (${this.error ?? `HTTP ${this.status ?? "?"}`}` +
          `${this.detail !== undefined ? `: ${this.detail}` : ""}). ${hint}`
      case "response":
        return "The token endpoint answered without a usable access_token, expires_in and refresh_token"
      case "persist":
        return "The refreshed tokens could not be persisted, so the new refresh token would be lost" +
          `${this.detail !== undefined ? `: ${this.detail}` : ""}`
    }
  }
}

/** Every failure of the Events API service. */
export type EventsApiError =
  | Unauthorized
  | Forbidden
  | EventNotFound
  | InvalidRequest
  | RateLimited
  | ServerError
  | TransportError
  | ResponseDecodeError
  | ResponseTooLarge
  | PaginationRunaway
  | UnsafeNextLink
  | TokenRefreshFailed

/** Schema of the whole union, e.g. to persist or send an error as data. */
export const EventsApiError = Schema.Union(
  Unauthorized,
  Forbidden,
  EventNotFound,
  InvalidRequest,
  RateLimited,
  ServerError,
  TransportError,
  ResponseDecodeError,
  ResponseTooLarge,
  PaginationRunaway,
  UnsafeNextLink,
  TokenRefreshFailed
)

/** The failures a retry policy may retry: the server or the network may do better later. */
export const isTransient = <E extends { readonly _tag: string }>(
  error: E
): error is Extract<E, RateLimited | ServerError | TransportError> =>
  error._tag === "RateLimited" || error._tag === "ServerError" || error._tag === "TransportError"
