/**
 * `@webex-compliance/events-api`: a typed Effect client for the Cisco Webex compliance Events API.
 *
 * @since 0.1.0
 */
export * as Event from "./Event.js"
export * as EventsApiError from "./EventsApiError.js"
export * as EventsApi from "./EventsApi.js"
export * as EventsPage from "./EventsPage.js"
export * as ListParams from "./ListParams.js"
export * as Pagination from "./Pagination.js"
export * as RetryPolicy from "./RetryPolicy.js"
export * as AccessToken from "./AccessToken.js"
