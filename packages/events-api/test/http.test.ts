/**
 * How a response body is read (`internal/http.ts`): the platform's own responses from their
 * source, others through their `Stream`. The size cap and failures over each transport are in
 * hostile.test.ts; this file pins down which path each transport takes, since a fallback to the
 * `Stream` would pass every other test and only cost CPU (about 1 s over a 200-page backfill).
 */
import { NodeHttpClient } from "@effect/platform-node"
import * as FetchHttpClient from "@effect/platform/FetchHttpClient"
import * as HttpClient from "@effect/platform/HttpClient"
import * as HttpClientRequest from "@effect/platform/HttpClientRequest"
import type * as HttpClientResponse from "@effect/platform/HttpClientResponse"
import { describe, expect, it } from "@effect/vitest"
import * as Effect from "effect/Effect"
import * as Exit from "effect/Exit"
import type * as Layer from "effect/Layer"
import * as Stream from "effect/Stream"
import * as Http from "../src/internal/http.js"
import { loopback } from "./support/Loopback.js"

const BODY = Buffer.from(JSON.stringify({ items: [{ id: "e1", text: "ünïcödé" }] }))

/** A loopback server answering every request with BODY, for the test's scope. */
const server = loopback((_, res) => res.end(BODY))

/** `response` with its `stream` made unusable: a read that goes through it dies. */
const withoutStream = (response: HttpClientResponse.HttpClientResponse): HttpClientResponse.HttpClientResponse =>
  new Proxy(response, {
    get: (target, key) => {
      if (key === "stream") throw new Error("read through the response's Stream")
      return Reflect.get(target, key, target)
    }
  })

/** Reads BODY through `transport`'s client, scoped as the library scopes it, its `stream` unusable. */
const readWithoutStream = (transport: Layer.Layer<HttpClient.HttpClient>) =>
  Effect.scoped(Effect.gen(function*() {
    const { port } = yield* server
    const client = Http.scopedClient(yield* HttpClient.HttpClient)
    const response = yield* client.execute(HttpClientRequest.get(`http://127.0.0.1:${port}/`))
    const { bytes, over } = yield* Http.readCapped(withoutStream(response), 1024, undefined, undefined)
    return { text: Buffer.from(bytes).toString(), over }
  })).pipe(Effect.provide(transport), Effect.exit)

describe("reading a body", () => {
  it.live("node:http's responses are read from their IncomingMessage", () =>
    Effect.gen(function*() {
      const exit = yield* readWithoutStream(NodeHttpClient.layer)
      expect(exit).toStrictEqual(Exit.succeed({ text: BODY.toString(), over: false }))
    }))

  it.live("fetch's responses are read from their web Response", () =>
    Effect.gen(function*() {
      const exit = yield* readWithoutStream(FetchHttpClient.layer)
      expect(exit).toStrictEqual(Exit.succeed({ text: BODY.toString(), over: false }))
    }))

  it.live("undici's responses go through their Stream", () =>
    Effect.gen(function*() {
      const exit = yield* readWithoutStream(NodeHttpClient.layerUndici)
      expect(Exit.isFailure(exit) && String(exit.cause)).toContain("read through the response's Stream")
    }))

  it.live("a body dropped before its read begins is a failure, not an empty body (node:http, fetch)", () =>
    Effect.gen(function*() {
      for (const transport of [NodeHttpClient.layer, FetchHttpClient.layer]) {
        const exit = yield* Effect.scoped(Effect.gen(function*() {
          const { port } = yield* loopback((_, res) => {
            res.writeHead(200, { "content-length": "100000" })
            res.write("0123456789", () => res.socket?.destroy())
          })
          const client = Http.scopedClient(yield* HttpClient.HttpClient)
          const response = yield* client.execute(HttpClientRequest.get(`http://127.0.0.1:${port}/`))
          // The connection is gone before the body is read: nothing is listening for its error.
          yield* Effect.sleep("100 millis")
          return yield* Http.readCapped(response, 1024 * 1024, 100000, undefined)
        })).pipe(Effect.provide(transport), Effect.exit)
        expect(Exit.isFailure(exit) && String(exit.cause)).toContain("ResponseError")
      }
    }))

  it.live("no body at all (a 204) is an empty body over every transport", () =>
    Effect.gen(function*() {
      for (const transport of [NodeHttpClient.layer, FetchHttpClient.layer, NodeHttpClient.layerUndici]) {
        const result = yield* Effect.scoped(Effect.gen(function*() {
          const { port } = yield* loopback((_, res) => {
            res.writeHead(204)
            res.end()
          })
          const client = Http.scopedClient(yield* HttpClient.HttpClient)
          const response = yield* client.execute(HttpClientRequest.get(`http://127.0.0.1:${port}/`))
          return yield* Http.readCapped(response, 1024, undefined, undefined)
        })).pipe(Effect.provide(transport))
        expect(result).toStrictEqual({ bytes: new Uint8Array(0), over: false })
      }
    }))

  it.effect("a Stream is read up to the cap: the first chunk past it is cut, and nothing after it is pulled", () =>
    Effect.gen(function*() {
      let pulled = 0
      const chunks = Stream.fromIterable([[1, 2, 3], [4, 5, 6], [7, 8, 9]]).pipe(
        Stream.map((c) => new Uint8Array(c)),
        Stream.tap(() => Effect.sync(() => pulled++)),
        Stream.rechunk(1)
      )
      const response = { stream: chunks } as unknown as HttpClientResponse.HttpClientResponse
      const result = yield* Http.readCapped(response, 5, undefined, undefined)
      expect(result).toStrictEqual({ bytes: new Uint8Array([1, 2, 3, 4, 5]), over: true })
      expect(pulled).toBe(2)
    }))
})
