#!/usr/bin/env node
// The built program (scripts/build.mjs): plain JavaScript, no transpiler at run time.
// In a checkout, build first: `pnpm archiver …` at the root does, incrementally.
import { existsSync } from "node:fs"
import * as module from "node:module"
import * as v8 from "node:v8"

const main = new URL("../dist/main.mjs", import.meta.url)
if (!existsSync(main)) {
  process.stderr.write("webex-archiver: not built (no dist/main.mjs). In a checkout, run `pnpm archiver` or `pnpm --filter @webex-compliance/archiver build`.\n")
  process.exit(70)
}
// A small, flat footprint (issue 8). V8 lets the old generation grow to two or three times what is
// live before it collects again; a backfill's garbage (a page's text and parsed JSON, page after
// page) then holds 100 MB and more of resident memory that nothing uses. Collecting once the heap
// has grown by this percentage keeps it near what is live, for some more CPU (both measured by
// bench/e2e). And V8 starts marking for that collection once 85 % of the room is used: left to
// itself it starts as soon as less room is left than its young generation holds, which with room
// this small is at once, so it marked all the time. In a 200k backfill: 29 full collections at
// 100 % without the trigger, 21 at 40 % with it, 0.4-0.6 s less CPU and 2-8 MB more resident
// memory (bench/README.md, round 8). Integer flags V8 reads when it decides; Node keeps V8's
// flags writable after start-up for `v8.setFlagsFromString`. WEBEX_ARCHIVER_HEAP_GROWING_PERCENT=0
// leaves V8's own heuristics (more memory, less CPU).
const GROWING = "WEBEX_ARCHIVER_HEAP_GROWING_PERCENT"
const growing = process.env[GROWING] === undefined || process.env[GROWING] === "" ? 40 : Number(process.env[GROWING])
if (!(Number.isInteger(growing) && growing >= 0 && growing <= 1000)) {
  process.stderr.write(`webex-archiver: ${GROWING} must be a whole number from 0 to 1000, got ${JSON.stringify(process.env[GROWING]).slice(0, 40)}\n`)
  process.exit(78)
}
if (growing > 0) {
  v8.setFlagsFromString(`--heap-growing-percent=${growing}`)
  v8.setFlagsFromString("--incremental-marking-soft-trigger=85")
}
// Node >= 22.1 can keep the compiled bundle between runs (faster starts); Node 20 lacks the API.
if (typeof module.enableCompileCache === "function") module.enableCompileCache()
await import(main.href)
