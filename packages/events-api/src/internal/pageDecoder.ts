/**
 * Page and item decoding (owned by the lib-decode stream; this is a thin stand-in over today's
 * `EventsPage` functions until that branch lands, per CONTRACTS C1).
 */
import type * as Effect from "effect/Effect"
import type * as Either from "effect/Either"
import type { Event } from "../Event.js"
import type { ResponseDecodeError } from "../EventsApiError.js"
import * as EventsPage from "../EventsPage.js"

const text = (body: Uint8Array | string): string => (typeof body === "string" ? body : new TextDecoder().decode(body))

export const decodeBody = (body: Uint8Array | string): Either.Either<ReadonlyArray<EventsPage.PageItem>, string> =>
  EventsPage.decodeBody(text(body))

export const decodeItem = (body: Uint8Array | string): EventsPage.PageItem => EventsPage.decodeRaw(text(body))

export const eventsOrFail = (page: EventsPage.EventsPage): Effect.Effect<ReadonlyArray<Event>, ResponseDecodeError> =>
  EventsPage.eventsOrFail(page)
