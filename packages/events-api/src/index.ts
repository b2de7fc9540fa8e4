/**
 * `@webex-compliance/events-api`: a typed Effect client for the Cisco Webex compliance Events API.
 *
 * The public surface: the service, its schemas, errors, parameters and retry policy. Helpers
 * (pagination, the retry loop, the rate gate, token refreshing, body decoding) live in
 * `internal/` and are not part of the semver contract.
 *
 * @since 0.1.0
 */
export * as Event from "./Event.js"
export * as EventsApiError from "./EventsApiError.js"
export * as EventsApi from "./EventsApi.js"
export * as EventsPage from "./EventsPage.js"
export * as ListParams from "./ListParams.js"
export * as RetryPolicy from "./RetryPolicy.js"
export * as AccessToken from "./AccessToken.js"
