/**
 * The page decoder thread (`PageSorter.layerWorker`): decodes each body it is sent into a
 * `PageCompact.Compact` and sends it back, the body's buffer and the typed arrays moved, not copied.
 * Bundled as its own entry, `dist/sortWorker.mjs`.
 */
import * as Either from "effect/Either"
import { parentPort } from "node:worker_threads"
import { compact, type Reply, type Request, transferables } from "./PageCompact.js"

const port = parentPort
if (port === null) throw new Error("sortWorker runs as a worker thread (PageSorter.layerWorker)")

port.on("message", ({ body, seq }: Request) => {
  let reply: Reply
  try {
    const page = compact(body)
    if (Either.isLeft(page)) reply = { seq, _tag: "Unusable", reason: page.left }
    else return port.postMessage({ seq, _tag: "Page", page: page.right } satisfies Reply, transferables(page.right))
  } catch (e) {
    reply = { seq, _tag: "Defect", message: e instanceof Error ? `${e.name}: ${e.message}` : String(e) }
  }
  port.postMessage(reply)
})
