import { defineProject } from "vitest/config"

export default defineProject({
  test: {
    name: "archiver",
    include: ["test/**/*.test.ts"],
    // The crash/restart tests spawn the real CLI as child processes.
    testTimeout: 120_000,
    hookTimeout: 60_000
  }
})
