import { defineProject } from "vitest/config"

export default defineProject({
  test: {
    name: "events-api",
    include: ["test/**/*.test.ts"]
  }
})
