/**
 * `@webex-compliance/events-api`: a typed Effect client for the Cisco Webex compliance Events API.
 *
 * @since 0.1.0
 */
export * as Event from "./Event.js"
export * as EventsApiError from "./EventsApiError.js"
