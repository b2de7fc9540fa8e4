import { defineProject } from "vitest/config"

export default defineProject({
  test: {
    name: "events-api",
    include: ["test/**/*.test.ts"],
    // `pnpm bench` (vitest bench) only; `vitest run` never picks these up.
    benchmark: { include: ["bench/**/*.bench.ts"] }
  }
})
