/**
 * The closed set of failures the Events API client reports.
 *
 * Every error carries what Cisco support asks for: the HTTP status (when there was a response),
 * the server's message and the `trackingId`. `HttpClientError` and `ParseError` never cross the
 * package boundary: they are mapped here, in one place.
 *
 * @since 0.1.0
 */
import * as Schema from "effect/Schema"

const ResponseFields = {
  /** HTTP status of the response, when there was one. */
  status: Schema.optional(Schema.Number),
  /** Human-readable explanation: the server's `message` when it sent one. */
  message: Schema.String,
  /** Webex `trackingId` (body) or `trackingid` (header): quote it to Cisco support. */
  trackingId: Schema.optional(Schema.String),
  /** The request URL, without credentials. */
  url: Schema.optional(Schema.String)
}

/** 401: the token is missing, malformed or expired. */
export class Unauthorized extends Schema.TaggedError<Unauthorized>()("Unauthorized", ResponseFields) {}

/** 403: the token is valid but may not read compliance events. */
export class Forbidden extends Schema.TaggedError<Forbidden>()("Forbidden", {
  ...ResponseFields,
  /** What usually fixes it. */
  hint: Schema.String
}) {}

/** 404 on `get`: no event has that id (or it is outside the retention period). */
export class EventNotFound extends Schema.TaggedError<EventNotFound>()("EventNotFound", {
  ...ResponseFields,
  eventId: Schema.String
}) {}

/**
 * 400 from the server, any other unexpected 4xx, or a parameter rejected on the client before
 * any request was sent (then `param` names it and `status` is absent).
 */
export class InvalidRequest extends Schema.TaggedError<InvalidRequest>()("InvalidRequest", {
  ...ResponseFields,
  param: Schema.optional(Schema.String)
}) {}

/** 429 (Too Many Requests) or 423 (Locked), after the retry policy gave up (or with none). */
export class RateLimited extends Schema.TaggedError<RateLimited>()("RateLimited", {
  ...ResponseFields,
  /** The wait the server asked for, in milliseconds, when its `Retry-After` could be read. */
  retryAfterMillis: Schema.optional(Schema.Number)
}) {}

/** 5xx after the retry policy gave up. */
export class ServerError extends Schema.TaggedError<ServerError>()("ServerError", ResponseFields) {}

/** No HTTP response at all: connection refused or dropped, DNS, TLS, timeout. */
export class TransportError extends Schema.TaggedError<TransportError>()("TransportError", ResponseFields) {}

/** A 2xx response whose body is not what the API documents (not JSON, no `items` array, ...). */
export class ResponseDecodeError extends Schema.TaggedError<ResponseDecodeError>()(
  "ResponseDecodeError",
  ResponseFields
) {}

/**
 * A `Link: rel="next"` URL pointing at an origin other than the configured base URL's. Following it
 * would hand the bearer token to a third party, so pagination stops here instead.
 */
export class UnsafeNextLink extends Schema.TaggedError<UnsafeNextLink>()("UnsafeNextLink", {
  ...ResponseFields,
  nextUrl: Schema.String,
  expectedOrigin: Schema.String
}) {}

/**
 * The OAuth refresh-token grant was refused (`invalid_grant`: the refresh token expired, was
 * revoked or was already spent; `invalid_client`: wrong client id or secret), or its new refresh
 * token could not be persisted. The integration must be re-authorised.
 */
export class TokenRefreshFailed extends Schema.TaggedError<TokenRefreshFailed>()("TokenRefreshFailed", {
  ...ResponseFields,
  /** The OAuth error code, e.g. `invalid_grant`. */
  error: Schema.optional(Schema.String)
}) {}

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
  UnsafeNextLink,
  TokenRefreshFailed
)

/** The failures a retry policy may retry: the server or the network may do better later. */
export const isTransient = <E extends { readonly _tag: string }>(
  error: E
): error is Extract<E, RateLimited | ServerError | TransportError> =>
  error._tag === "RateLimited" || error._tag === "ServerError" || error._tag === "TransportError"

export const FORBIDDEN_HINT =
  "The token is valid but lacks compliance access: it needs the spark-compliance:events_read scope " +
  "and its user must hold the Compliance Officer role in Control Hub."
