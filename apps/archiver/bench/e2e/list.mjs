// The library's `list()` and nothing else (listProgram.mjs), as an application that imports it
// from node_modules runs it: the compiled library (see resolve.mjs) and Effect loaded module by
// module. Or the build in packages/events-api/$LIB_DIST when that is set, so that two builds can be
// alternated in one run (packages/events-api/bench/e2e/ab.mjs).
//
// usage: [LIB_DIST=dist-main] node list.mjs <base-url> <from> <to> <max>   (token in WEBEX_TOKEN)
import * as path from "node:path"
import { pathToFileURL } from "node:url"
import { listAll } from "./listProgram.mjs"
import { libDependency, libDir, libEntry } from "./resolve.mjs"

const entry = process.env.LIB_DIST !== undefined
  ? pathToFileURL(path.join(libDir, process.env.LIB_DIST, "index.js")).href
  : libEntry(".")
await listAll({
  EventsApi: (await import(entry)).EventsApi,
  Effect: await import(libDependency("effect/Effect")),
  Layer: await import(libDependency("effect/Layer")),
  Redacted: await import(libDependency("effect/Redacted")),
  Stream: await import(libDependency("effect/Stream")),
  NodeHttpClient: await import(libDependency("@effect/platform-node/NodeHttpClient"))
})
