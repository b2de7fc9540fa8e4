#!/usr/bin/env node
// The built program (scripts/build.mjs): plain JavaScript, no transpiler at run time.
// In a checkout, build first: `pnpm archiver …` at the root does, incrementally.
import { existsSync } from "node:fs"
import * as module from "node:module"

const main = new URL("../dist/main.mjs", import.meta.url)
if (!existsSync(main)) {
  process.stderr.write("webex-archiver: not built (no dist/main.mjs). In a checkout, run `pnpm archiver` or `pnpm --filter @webex-compliance/archiver build`.\n")
  process.exit(70)
}
// Node >= 22.1 can keep the compiled bundle between runs (faster starts); Node 20 lacks the API.
if (typeof module.enableCompileCache === "function") module.enableCompileCache()
await import(main.href)
