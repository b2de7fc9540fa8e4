import { defineProject } from "vitest/config"

export default defineProject({
  test: {
    name: "archiver",
    include: ["test/**/*.test.ts"],
    // `pnpm bench` (vitest bench) only; `vitest run` never picks these up.
    benchmark: { include: ["bench/**/*.bench.ts"] },
    // The crash/restart tests spawn the real CLI as child processes.
    testTimeout: 120_000,
    hookTimeout: 60_000
  }
})
