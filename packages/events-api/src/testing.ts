/**
 * `@webex-compliance/events-api/testing`: the test kit. A fake Webex server with switchable faults
 * and a generator of realistic organisations, for this library's tests, its users' tests and the
 * archiver's demo.
 *
 * @example
 * ```ts
 * import { FakeWebex, SeedOrg } from "@webex-compliance/events-api/testing"
 *
 * const server = FakeWebex.layer({
 *   events: SeedOrg.generateOrg({ count: 500, from: "2024-01-01T00:00:00Z", to: "2024-01-08T00:00:00Z" }),
 *   faults: { rateLimitEvery: 5 }
 * })
 * ```
 *
 * @since 0.1.0
 */
export * as FakeWebex from "./testing/FakeWebex.js"
export * as SeedOrg from "./testing/SeedOrg.js"
export * as InMemoryEventsApi from "./testing/InMemoryEventsApi.js"
