/**
 * `query`'s filters and CSV rows, in-process (the CLI paths are in `evidence.test.ts`).
 */
import { describe, expect, it } from "vitest"
import * as Query from "../src/Query.js"
import { fieldsOf } from "../src/Segments.js"

const line = JSON.stringify({
  id: "ev-1",
  resource: "messages",
  type: "created",
  actorId: "alice",
  created: "2024-03-05T10:00:00+00:00",
  data: { personId: "p-1", personEmail: "alice@example.com", roomId: "r-1", text: "=HYPERLINK(\"http://x\")\nSecond, \"quoted\" line" }
})

describe("query", () => {
  it("matches every filter; --text is case-insensitive on content fields only", () => {
    const f = fieldsOf(line)!
    expect(Query.matches(f, {})).toBe(true)
    expect(Query.matches(f, { from: Date.parse("2024-03-05T10:00:00Z"), to: Date.parse("2024-03-05T10:00:00.001Z") })).toBe(true)
    expect(Query.matches(f, { to: Date.parse("2024-03-05T10:00:00Z") })).toBe(false)
    expect(Query.matches(f, { resource: "messages", type: "created", actorId: "alice", id: "ev-1" })).toBe(true)
    expect(Query.matches(f, { actorId: "bob" })).toBe(false)
    expect(Query.matches(f, { text: "SECOND, \"QUOTED\"" })).toBe(true)
    expect(Query.matches(f, { text: "ALICE@EXAMPLE" })).toBe(true)
    // Ids and other non-content fields are not searched as text.
    expect(Query.matches(f, { text: "r-1" })).toBe(false)
  })

  it("a CSV row quotes commas, quotes and line breaks, and keeps formulas as text", () => {
    expect(Query.CSV_COLUMNS.join(",")).toBe("id,created,resource,type,actorId,personId,personEmail,roomId,text")
    expect(Query.csvRow(line)).toBe(
      "ev-1,2024-03-05T10:00:00+00:00,messages,created,alice,p-1,alice@example.com,r-1," +
        "\"'=HYPERLINK(\"\"http://x\"\")\nSecond, \"\"quoted\"\" line\""
    )
    expect(Query.csvRow(JSON.stringify({ id: "ev-2", data: { markdown: "-1" } }))).toBe("ev-2,,,,,,,,'-1")
  })
})
