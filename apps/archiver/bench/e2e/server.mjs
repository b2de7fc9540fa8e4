// The fake Webex server of the benchmark, in a process of its own so that it never shares a CPU
// budget or a heap with what is measured. Generates the org as it stores it (SeedOrg.iterateOrg:
// a million events never exist as one array), prints `{"baseUrl","token","from","to","events"}` as
// one JSON line, then answers `requests` on stdin with the request log as one JSON line.
//
// usage: node server.mjs --events N --from ISO --to ISO [--seed S] [--rate-limit-every K]
//          [--order newest-first|oldest-first|shuffled]   (FakeWebex's listing order; default newest-first)
import * as readline from "node:readline"
import { libDependency, libEntry } from "./resolve.mjs"

const args = Object.fromEntries(
  process.argv.slice(2).reduce((pairs, arg, i, all) => (arg.startsWith("--") ? [...pairs, [arg.slice(2), all[i + 1]]] : pairs), [])
)
const { FakeWebex, SeedOrg } = await import(libEntry("./testing"))
const Effect = await import(libDependency("effect/Effect"))
const Redacted = await import(libDependency("effect/Redacted"))
const Scope = await import(libDependency("effect/Scope"))

const count = Number(args.events)
const options = { count, seed: Number(args.seed ?? 1), from: args.from, to: args.to }
const rateLimitEvery = Number(args["rate-limit-every"] ?? 0)
const started = performance.now()
const scope = Effect.runSync(Scope.make())
const webex = await Effect.runPromise(Scope.extend(
  FakeWebex.make({
    events: SeedOrg.iterateOrg(options),
    token: `bench-${process.pid}-${Date.now()}`,
    ...(args.order !== undefined ? { order: args.order } : {}),
    faults: rateLimitEvery > 0 ? { rateLimitEvery, retryAfter: "seconds", retryAfterSeconds: 1 } : {}
  }),
  scope
))
console.log(JSON.stringify({
  baseUrl: webex.baseUrl,
  token: Redacted.value(webex.token),
  from: args.from,
  to: args.to,
  events: count,
  startMs: Math.round(performance.now() - started),
  rssMiB: Math.round(process.memoryUsage().rss / 1048576)
}))

readline.createInterface({ input: process.stdin }).on("line", async (line) => {
  if (line.trim() === "requests") {
    const requests = await Effect.runPromise(webex.requests)
    console.log(JSON.stringify(requests.map((r) => ({ url: r.url, status: r.status, at: r.at, fault: r.fault }))))
  }
}).on("close", () => process.exit(0))
