/**
 * A real `node:http` server on 127.0.0.1 (a free port) for a test's scope, answering every request
 * with the handler given: for tests that need real sockets rather than a scripted client.
 */
import * as Effect from "effect/Effect"
import * as Http from "node:http"
import type { AddressInfo } from "node:net"

export interface Loopback {
  readonly server: Http.Server
  readonly port: number
  /** `http://127.0.0.1:<port>` */
  readonly origin: string
}

/** Listens until the scope closes; then its connections are cut and it is closed. */
export const loopback = (handler: Http.RequestListener) =>
  Effect.acquireRelease(
    Effect.async<Loopback>((resume) => {
      const server = Http.createServer(handler)
      server.listen(0, "127.0.0.1", () => {
        const { port } = server.address() as AddressInfo
        resume(Effect.succeed({ server, port, origin: `http://127.0.0.1:${port}` }))
      })
    }),
    ({ server }) =>
      Effect.async<void>((resume) => {
        server.closeAllConnections()
        server.close(() => resume(Effect.void))
      })
  )
