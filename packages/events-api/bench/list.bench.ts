/**
 * `list()` over loopback HTTP against the floor: `fetch` → `.json()` page after page, following
 * the `Link` header. Both run against the same fake server with the same events in the same
 * process, so the server's own work is in both numbers (it dilutes the ratio: the end-to-end
 * benchmark at the repo root runs them apart). Read the ratio, not the absolute numbers.
 */
import * as NodeHttpClient from "@effect/platform-node/NodeHttpClient"
import * as Effect from "effect/Effect"
import * as Exit from "effect/Exit"
import * as Layer from "effect/Layer"
import * as Redacted from "effect/Redacted"
import * as Scope from "effect/Scope"
import * as Stream from "effect/Stream"
import { afterAll, bench, describe } from "vitest"
import * as EventsApi from "../src/EventsApi.js"
import * as FakeWebex from "../src/testing/FakeWebex.js"
import * as SeedOrg from "../src/testing/SeedOrg.js"

const COUNT = 20_000
const FROM = "2024-01-01T00:00:00.000Z"
const TO = "2024-01-31T00:00:00.000Z"

const scope = Effect.runSync(Scope.make())
const fake = await Effect.runPromise(
  FakeWebex.make({
    events: SeedOrg.generateOrg({ count: COUNT, seed: 1, from: FROM, to: TO }),
    order: "oldest-first"
  }).pipe(Scope.extend(scope))
)
afterAll(() => Effect.runPromise(Scope.close(scope, Exit.void)))

const token = Redacted.value(fake.token)
const first = `${fake.baseUrl}/events?from=${FROM}&to=${TO}&max=1000`

/** The floor: fetch and parse every page, following `Link: <…>; rel="next"`. */
const floor = async (): Promise<number> => {
  let count = 0
  let url: string | undefined = first
  while (url !== undefined) {
    const response = await fetch(url, { headers: { authorization: `Bearer ${token}` } })
    const body = (await response.json()) as { items: Array<unknown> }
    count += body.items.length
    url = /<([^>]*)>;\s*rel="next"/.exec(response.headers.get("link") ?? "")?.[1]
  }
  return count
}

const api = Layer.provide(EventsApi.layer({ token: fake.token, baseUrl: fake.baseUrl }), NodeHttpClient.layerUndici)
const list = (): Promise<number> =>
  Effect.runPromise(
    Effect.flatMap(EventsApi.EventsApi, (service) =>
      Stream.runFold(service.list({ from: FROM, to: TO, max: 1000 }), 0, (n) => n + 1)).pipe(Effect.provide(api))
  )

// Both must see every event, or the comparison is meaningless.
const [floorCount, listCount] = [await floor(), await list()]
if (floorCount !== COUNT || listCount !== COUNT) throw new Error(`floor saw ${floorCount}, list ${listCount}, of ${COUNT}`)

let kept = 0
const options = { time: 1500, warmupTime: 0, warmupIterations: 1, iterations: 3 }

describe(`${COUNT} events in 1000-event pages over loopback`, () => {
  bench("baseline: fetch + .json() per page", async () => {
    kept += await floor()
  }, options)

  bench("EventsApi.list()", async () => {
    kept += await list()
  }, options)
})

export { kept }
