// The program both `list()` contestants run: every event of the range streamed through
// `EventsApi.list`, counted, dropped; no disk. The modules are passed in, so that list.mjs can load
// them from wherever the library resolves them (or from another build), and list-app.mjs can import
// them statically for esbuild to bundle.
//
// usage (of both): node <script> <base-url> <from> <to> <max>   (token in WEBEX_TOKEN)
export const listAll = async ({ EventsApi, Effect, Layer, Redacted, Stream, NodeHttpClient }) => {
  const [baseUrl, from, to, max] = process.argv.slice(2)
  const program = Effect.gen(function*() {
    const api = yield* EventsApi.EventsApi
    let events = 0
    yield* Stream.runForEach(api.list({ from, to, max: Number(max) }), () => Effect.sync(() => void events++))
    return events
  })
  // The transport the library's README gives: Node's own `http`, connections kept alive.
  const layer = EventsApi.layer({ token: Redacted.make(process.env.WEBEX_TOKEN), baseUrl }).pipe(
    Layer.provide(NodeHttpClient.layerWithoutAgent.pipe(Layer.provide(NodeHttpClient.makeAgentLayer({ keepAlive: true }))))
  )
  const events = await Effect.runPromise(Effect.provide(program, layer))
  console.log(JSON.stringify({ events }))
}
