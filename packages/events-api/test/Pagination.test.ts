import { describe, expect, it } from "@effect/vitest"
import * as FastCheck from "effect/FastCheck"
import * as Option from "effect/Option"
import * as Pagination from "../src/internal/pagination.js"

const PAGE = "https://webexapis.com/v1/events?max=10"

describe("nextLink", () => {
  it("reads rel=\"next\" quoted and unquoted, case-insensitively", () => {
    expect(Pagination.nextLink(`<https://webexapis.com/v1/events?cursor=a>; rel="next"`, PAGE))
      .toEqual(Option.some("https://webexapis.com/v1/events?cursor=a"))
    expect(Pagination.nextLink(`<https://webexapis.com/v1/events?cursor=b>;rel=next`, PAGE))
      .toEqual(Option.some("https://webexapis.com/v1/events?cursor=b"))
    expect(Pagination.nextLink(`<https://webexapis.com/v1/events?cursor=c> ; REL = "NEXT"`, PAGE))
      .toEqual(Option.some("https://webexapis.com/v1/events?cursor=c"))
  })

  it("picks next among several links, whatever their order, and among several rel values", () => {
    const header = `<https://webexapis.com/v1/events?cursor=first>; rel="first", ` +
      `<https://webexapis.com/v1/events?cursor=n>; rel="next", <https://webexapis.com/v1/events?cursor=p>; rel="prev"`
    expect(Pagination.nextLink(header, PAGE)).toEqual(Option.some("https://webexapis.com/v1/events?cursor=n"))
    expect(Pagination.nextLink(`<https://webexapis.com/v1/events?cursor=m>; rel="prefetch next"`, PAGE))
      .toEqual(Option.some("https://webexapis.com/v1/events?cursor=m"))
    // "nextpage" is not "next"
    expect(Pagination.nextLink(`<https://webexapis.com/v1/events?cursor=x>; rel="nextpage"`, PAGE)).toEqual(Option.none())
  })

  it("keeps commas inside URLs", () => {
    const header = `<https://webexapis.com/v1/events?resource=messages,rooms&cursor=a,b>; rel="prev", ` +
      `<https://webexapis.com/v1/events?resource=messages,rooms&cursor=c,d>; rel="next"`
    expect(Pagination.nextLink(header, PAGE))
      .toEqual(Option.some("https://webexapis.com/v1/events?resource=messages,rooms&cursor=c,d"))
  })

  it("is not fooled by a quoted parameter holding a comma or <...> (RFC 8288, as http-link-header parses it)", () => {
    expect(Pagination.nextLink(`<https://a/x?c=3>; title="x, <y>"; rel="next"`, "https://a/"))
      .toEqual(Option.some("https://a/x?c=3"))
    // The fake target inside the quotes, and a rel inside another link's title, are not links.
    expect(Pagination.nextLink(`<https://a/p>; title="see, <https://evil/n>; rel=next", rel="prev"`, "https://a/"))
      .toEqual(Option.none())
    expect(
      Pagination.nextLink(`<https://a/p>; title="a \\"quoted, <x>\\" title"; rel="prev", <https://a/n>; rel="next"`, "https://a/")
    ).toEqual(Option.some("https://a/n"))
    // Only the first rel of a link counts (RFC 8288 §3.3).
    expect(Pagination.nextLink(`<https://a/p>; rel="prev"; rel="next"`, "https://a/")).toEqual(Option.none())
  })

  it.prop(
    "finds the next link whatever quoted parameters surround it",
    {
      title: FastCheck.string({ unit: FastCheck.constantFrom("a", ",", "<", ">", ";", "=", " ", "\\", "\"", "n", "e", "x", "t") }),
      before: FastCheck.boolean()
    },
    ({ before, title }) => {
      const quoted = `"${title.replace(/[\\"]/g, (c) => `\\${c}`)}"`
      const other = `<https://a/other>; title=${quoted}; rel="prev"`
      const next = `<https://a/next?c=1>; title=${quoted}; rel="next"`
      const header = before ? `${other}, ${next}` : `${next}, ${other}`
      expect(Pagination.nextLink(header, "https://a/")).toEqual(Option.some("https://a/next?c=1"))
      expect(Pagination.parseLinks(header).map((l) => l.params.find(([n]) => n === "title")?.[1])).toEqual([title, title])
    }
  )

  it("resolves relative URLs against the page URL", () => {
    expect(Pagination.nextLink(`</v1/events?cursor=r>; rel="next"`, PAGE))
      .toEqual(Option.some("https://webexapis.com/v1/events?cursor=r"))
    expect(Pagination.nextLink(`<events?cursor=s>; rel="next"`, PAGE))
      .toEqual(Option.some("https://webexapis.com/v1/events?cursor=s"))
    expect(Pagination.nextLink(`<?cursor=t>; rel="next"`, PAGE))
      .toEqual(Option.some("https://webexapis.com/v1/events?cursor=t"))
  })

  it("is none without a next link", () => {
    expect(Pagination.nextLink(undefined, PAGE)).toEqual(Option.none())
    expect(Pagination.nextLink("", PAGE)).toEqual(Option.none())
    expect(Pagination.nextLink(`<https://webexapis.com/v1/events?cursor=p>; rel="prev"`, PAGE)).toEqual(Option.none())
    expect(Pagination.nextLink(`<https://webexapis.com/v1/events?cursor=p>`, PAGE)).toEqual(Option.none())
    expect(Pagination.nextLink(`garbage; rel="next"`, PAGE)).toEqual(Option.none())
  })
})

describe("repair", () => {
  const filters = { resource: "messages", type: "created", actorId: "p1", from: "2024-01-01T00:00:00.000Z", to: "2024-02-01T00:00:00.000Z", max: "50" }
  const paramsOf = (url: string) => Object.fromEntries(new URL(url).searchParams)

  it("leaves a complete link exactly as it is", () => {
    const url = "https://webexapis.com/v1/events?resource=messages&type=created&actorId=p1" +
      "&from=2024-01-01T00:00:00.000Z&to=2024-02-01T00:00:00.000Z&max=50&cursor=abc"
    expect(Pagination.repair(url, filters)).toEqual({ url, repaired: [] })
  })

  it("restores max and each filter when absent, empty or null", () => {
    for (const key of Object.keys(filters)) {
      for (const broken of ["absent", "", "null"]) {
        const params = new URLSearchParams({ ...filters, cursor: "abc" })
        if (broken === "absent") params.delete(key)
        else params.set(key, broken)
        const result = Pagination.repair(`https://webexapis.com/v1/events?${params}`, filters)
        expect(result.repaired, `${key} ${broken}`).toEqual([key])
        expect(paramsOf(result.url)).toEqual({ ...filters, cursor: "abc" })
      }
    }
  })

  it("restores everything a next link lost at once", () => {
    const result = Pagination.repair("https://webexapis.com/v1/events?max=null&cursor=abc", filters)
    expect([...result.repaired].sort()).toEqual(Object.keys(filters).sort())
    expect(paramsOf(result.url)).toEqual({ ...filters, cursor: "abc" })
  })

  it("does not overwrite values the server chose", () => {
    const url = "https://webexapis.com/v1/events?max=25&resource=messages&cursor=abc"
    const result = Pagination.repair(url, { max: "50", resource: "rooms" })
    expect(result).toEqual({ url, repaired: [] })
  })

  it("leaves the cursor's text byte for byte as the server wrote it", () => {
    const cursor = "cursor=YWJj%2B%2F%3D%3D==:a,b+c%20d~e*f"
    const result = Pagination.repair(`https://webexapis.com/v1/events?${cursor}&max=null`, { max: "50", resource: "messages" })
    expect(new URL(result.url).search.slice(1).split("&")).toContain(cursor)
    expect(result.url.startsWith(`https://webexapis.com/v1/events?${cursor}&`)).toBe(true)
    expect(paramsOf(result.url)).toMatchObject({ max: "50", resource: "messages" })
  })

  it("removes max=null when the caller gave no page size", () => {
    const result = Pagination.repair("https://webexapis.com/v1/events?cursor=abc&max=null", { resource: "messages" })
    expect(paramsOf(result.url)).toEqual({ cursor: "abc", resource: "messages" })
    expect(result.repaired).toContain("max")
  })

  it("encodes restored values so they survive the round trip", () => {
    const expected = { actorId: "a&b=c d+é" }
    const result = Pagination.repair("https://webexapis.com/v1/events?cursor=abc", expected)
    expect(paramsOf(result.url)).toEqual({ cursor: "abc", ...expected })
  })

  it.prop(
    "after repair every expected parameter is present and the other parameters keep their text",
    {
      cursor: FastCheck.string({ minLength: 1 }),
      values: FastCheck.dictionary(FastCheck.constantFrom("resource", "type", "actorId", "max"), FastCheck.string({ minLength: 1 })),
      present: FastCheck.subarray(["resource", "type", "actorId", "max"])
    },
    ({ cursor, present, values }) => {
      const query = new URLSearchParams({ cursor })
      for (const key of present) query.set(key, "null")
      const url = `https://webexapis.com/v1/events?${query}`
      const result = Pagination.repair(url, values)
      const params = new URL(result.url).searchParams
      for (const [key, value] of Object.entries(values)) expect(params.get(key)).toBe(value)
      expect(params.get("cursor")).toBe(cursor)
      expect(result.url).toContain(`?${new URLSearchParams({ cursor })}`)
    }
  )
})

describe("withMax and maxOf", () => {
  it("replace and read the page size, keeping the rest of the URL", () => {
    const url = "https://webexapis.com/v1/events?cursor=a%20b:c&max=100&resource=messages"
    const smaller = Pagination.withMax(url, 50)
    expect(Pagination.maxOf(smaller)).toEqual(Option.some(50))
    expect(smaller).toBe("https://webexapis.com/v1/events?cursor=a%20b:c&max=50&resource=messages")
    expect(Pagination.maxOf("https://webexapis.com/v1/events")).toEqual(Option.none())
    expect(Pagination.maxOf("https://webexapis.com/v1/events?max=null")).toEqual(Option.none())
    expect(Pagination.maxOf("https://webexapis.com/v1/events?max=1.5")).toEqual(Option.none())
  })
})

describe("sameOrigin", () => {
  it("requires the same scheme, host and port", () => {
    const origin = "https://webexapis.com"
    expect(Pagination.sameOrigin("https://webexapis.com/v1/events?cursor=a", origin)).toBe(true)
    expect(Pagination.sameOrigin("https://WEBEXAPIS.com:443/v1/events", origin)).toBe(true)
    expect(Pagination.sameOrigin("http://webexapis.com/v1/events", origin)).toBe(false)
    expect(Pagination.sameOrigin("https://webexapis.com:8443/v1/events", origin)).toBe(false)
    expect(Pagination.sameOrigin("https://evil.example/v1/events", origin)).toBe(false)
    expect(Pagination.sameOrigin("https://webexapis.com.evil.example/v1/events", origin)).toBe(false)
    expect(Pagination.sameOrigin("https://webexapis.com@evil.example/v1/events", origin)).toBe(false)
    expect(Pagination.sameOrigin("https://api.webexapis.com/v1/events", origin)).toBe(false)
    expect(Pagination.sameOrigin("not a url", origin)).toBe(false)
  })
})
