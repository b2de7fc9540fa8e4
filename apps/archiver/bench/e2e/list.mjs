// The library's `list()` and nothing else: every event of the range streamed through
// `EventsApi.list`, counted, dropped. No disk. Loads the compiled library (see resolve.mjs), or
// the build in packages/events-api/$LIB_DIST when that is set, so that two builds can be
// alternated in one run (packages/events-api/bench/e2e/ab.mjs).
//
// usage: [LIB_DIST=dist-main] node list.mjs <base-url> <from> <to> <max>   (token in WEBEX_TOKEN)
import * as path from "node:path"
import { pathToFileURL } from "node:url"
import { libDependency, libDir, libEntry } from "./resolve.mjs"

const [baseUrl, from, to, max] = process.argv.slice(2)
const entry = process.env.LIB_DIST !== undefined
  ? pathToFileURL(path.join(libDir, process.env.LIB_DIST, "index.js")).href
  : libEntry(".")
const { EventsApi } = await import(entry)
const Effect = await import(libDependency("effect/Effect"))
const Layer = await import(libDependency("effect/Layer"))
const Redacted = await import(libDependency("effect/Redacted"))
const Stream = await import(libDependency("effect/Stream"))
const NodeHttpClient = await import(libDependency("@effect/platform-node/NodeHttpClient"))

const program = Effect.gen(function*() {
  const api = yield* EventsApi.EventsApi
  let events = 0
  yield* Stream.runForEach(api.list({ from, to, max: Number(max) }), () => Effect.sync(() => void events++))
  return events
})

const layer = EventsApi.layer({ token: Redacted.make(process.env.WEBEX_TOKEN), baseUrl }).pipe(
  Layer.provide(NodeHttpClient.layerUndici)
)
const events = await Effect.runPromise(Effect.provide(program, layer))
console.log(JSON.stringify({ events }))
