import { defineProject } from "vitest/config"

// Tests run the TypeScript sources: `@webex-compliance/events-api` (a self-reference in the README
// test) resolves through the package's `@webex-compliance/source` export condition, not dist/.
const conditions = ["@webex-compliance/source", "module", "node", "development|production"]

export default defineProject({
  resolve: { conditions },
  ssr: { resolve: { conditions } },
  test: {
    name: "events-api",
    include: ["test/**/*.test.ts"],
    // `pnpm bench` (vitest bench) only; `vitest run` never picks these up.
    benchmark: { include: ["bench/**/*.bench.ts"] }
  }
})
