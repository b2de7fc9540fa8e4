import { defineProject } from "vitest/config"

// Tests run the TypeScript sources of the events-api library (its `@webex-compliance/source`
// export condition), not its dist/.
const conditions = ["@webex-compliance/source", "module", "node", "development|production"]

export default defineProject({
  resolve: { conditions },
  ssr: { resolve: { conditions } },
  test: {
    name: "archiver",
    include: ["test/**/*.test.ts"],
    // `pnpm bench` (vitest bench) only; `vitest run` never picks these up.
    benchmark: { include: ["bench/**/*.bench.ts"] },
    // The e2e tests spawn the built CLI (bin/ → dist/): rebuild it first if any source changed.
    globalSetup: ["test/support/buildCli.ts"],
    // Children a test runs through tsx (storage-crash-child.ts) resolve the library to its sources
    // too, never to a stale or missing dist/. (spawnCli drops NODE_OPTIONS: the CLI is a bundle.)
    env: { NODE_OPTIONS: "--conditions=@webex-compliance/source" },
    // The crash/restart tests spawn the real CLI as child processes.
    testTimeout: 120_000,
    hookTimeout: 60_000
  }
})
