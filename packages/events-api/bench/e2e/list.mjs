// `EventsApi.list()` of a given build of the library (default: its dist/), every event counted and
// dropped, no disk: apps/archiver/bench/e2e/list.mjs, but with the build chosen by LIB_DIST so two
// builds can be alternated in one run (see ab.mjs).
//
// usage: LIB_DIST=dist node list.mjs <base-url> <from> <to> <max>   (token in WEBEX_TOKEN)
import * as path from "node:path"
import { fileURLToPath, pathToFileURL } from "node:url"

const lib = path.resolve(path.dirname(fileURLToPath(import.meta.url)), "../..", process.env.LIB_DIST ?? "dist")
const [baseUrl, from, to, max] = process.argv.slice(2)
const { EventsApi } = await import(pathToFileURL(path.join(lib, "index.js")).href)
const { Effect, Layer, Redacted, Stream } = await import("effect")
const { NodeHttpClient } = await import("@effect/platform-node")

const program = Effect.gen(function*() {
  const api = yield* EventsApi.EventsApi
  let events = 0
  yield* Stream.runForEach(api.list({ from, to, max: Number(max) }), () => Effect.sync(() => void events++))
  return events
})
const layer = EventsApi.layer({ token: Redacted.make(process.env.WEBEX_TOKEN), baseUrl }).pipe(
  Layer.provide(NodeHttpClient.layerUndici)
)
console.log(JSON.stringify({ events: await Effect.runPromise(Effect.provide(program, layer)) }))
