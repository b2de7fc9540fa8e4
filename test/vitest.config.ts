import { defineProject } from "vitest/config"

export default defineProject({
  test: {
    name: "packaging",
    include: ["**/*.test.ts"],
    // Packing, installing from the npm registry and type-checking take a while on a shared machine.
    testTimeout: 600_000,
    hookTimeout: 600_000
  }
})
