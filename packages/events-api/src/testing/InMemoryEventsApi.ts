/**
 * An `EventsApi` held in memory, for tests of code that consumes the service: no HTTP, same
 * parameter validation, filters (`from <= created < to`), page size and decoding as the real one.
 *
 * @example
 * ```ts
 * import { InMemoryEventsApi } from "@webex-compliance/events-api/testing"
 *
 * const TestApi = InMemoryEventsApi.layer([{ id: "e1", resource: "messages", type: "created",
 *   actorId: "p1", created: "2024-01-01T00:00:00.000Z", data: { text: "hi" } }])
 * // program.pipe(Effect.provide(TestApi))
 * ```
 *
 * @since 0.1.0
 */
import * as Effect from "effect/Effect"
import * as Layer from "effect/Layer"
import * as Option from "effect/Option"
import * as Ref from "effect/Ref"
import * as Stream from "effect/Stream"
import { EventsApi, type Service } from "../EventsApi.js"
import { EventNotFound, InvalidRequest, ResponseDecodeError } from "../EventsApiError.js"
import * as EventsPage from "../EventsPage.js"
import * as PageDecoder from "../internal/pageDecoder.js"
import * as ListParams from "../ListParams.js"
import { pageBody } from "./internal/eventStore.js"

export interface Options {
  /** Page size when the caller gives no `max`. Default 100, like the service. */
  readonly defaultPageSize?: number | undefined
}

/** The service plus a way to add events later, as late-arriving events do. */
export interface InMemory extends Service {
  readonly add: (events: Iterable<string | object>) => Effect.Effect<void>
}

const toItem = (event: string | object): EventsPage.PageItem =>
  PageDecoder.decodeItem(typeof event === "string" ? event : JSON.stringify(event))

/** Whether `text` is one JSON value. */
const isJson = (text: string): boolean => {
  try {
    JSON.parse(text)
    return true
  } catch {
    return false
  }
}

/**
 * A list response body holding `items`, each as the bytes it was given. An item seeded as text that
 * is not JSON goes in as a JSON string of that text: no body could hold it as it is.
 */
const itemsBody = (items: ReadonlyArray<EventsPage.PageItem>): Uint8Array =>
  pageBody(items.map((item) =>
    item._tag === "Undecodable" && !isJson(item.raw) ? new TextEncoder().encode(JSON.stringify(item.raw)) : item.bytes
  ))

/** Builds the in-memory service, seeded with events (raw JSON text or objects), in that order. */
export const make = (events: Iterable<string | object> = [], options: Options = {}): Effect.Effect<InMemory> =>
  Effect.gen(function*() {
    const store = yield* Ref.make<ReadonlyArray<EventsPage.PageItem>>(Array.from(events, toItem))
    const pageSize = options.defaultPageSize ?? 100

    const listPages: Service["listPages"] = (params) =>
      Stream.unwrap(
        Effect.gen(function*() {
          const p = yield* ListParams.normalize(params)
          const filtered = Object.keys(ListParams.filterParams(p)).length > 0
          // Undecodable items cannot be matched against filters; like the fake server, they
          // show up in unfiltered listings only.
          const items = (yield* Ref.get(store)).filter((item) =>
            item._tag === "Decoded" ? ListParams.matches(p, item.event) : !filtered
          )
          const size = Option.getOrElse(p.max, () => pageSize)
          const pages = Math.max(1, Math.ceil(items.length / size))
          const url = (i: number) => `memory://events?page=${i}`
          return Stream.range(0, pages - 1).pipe(
            Stream.map((i) =>
              new EventsPage.EventsPage({
                url: url(i),
                items: items.slice(i * size, (i + 1) * size),
                next: i + 1 < pages ? Option.some(url(i + 1)) : Option.none(),
                trackingId: Option.none()
              })
            ),
            // One page per pull, as over HTTP.
            Stream.rechunk(1)
          )
        })
      )

    // Each page's body made of its items' bytes as sent, and decoded by the caller, as over HTTP.
    const listPagesWith: Service["listPagesWith"] = (params, decode) =>
      listPages(params).pipe(
        Stream.mapEffect((page) =>
          decode({ url: page.url, body: itemsBody(page.items), trackingId: page.trackingId }).pipe(
            Effect.map((decoded) => decoded.page),
            Effect.mapError((reason) => new ResponseDecodeError({ url: page.url, reason }))
          )
        )
      )

    const get: Service["get"] = (eventId) =>
      Effect.gen(function*() {
        if (typeof eventId !== "string" || eventId.trim() === "") {
          return yield* InvalidRequest.param("eventId", "must be a non-empty string")
        }
        const found = (yield* Ref.get(store)).find((item) => item._tag === "Decoded" && item.event.id === eventId)
        if (found?._tag === "Decoded") return found.event
        return yield* new EventNotFound({ status: 404, eventId })
      })

    return {
      listPages,
      listPagesWith,
      list: (params) => listPages(params).pipe(Stream.mapConcatEffect(PageDecoder.eventsOrFail)),
      get,
      add: (more) => Ref.update(store, (items) => [...items, ...Array.from(more, toItem)])
    }
  })

/** A layer providing the in-memory `EventsApi`. */
export const layer = (events: Iterable<string | object> = [], options: Options = {}): Layer.Layer<EventsApi> =>
  Layer.effect(EventsApi, make(events, options))
