/**
 * One session with an archive: the directory locked, every layer built, the last failure kept.
 * Every command that writes (`backfill`, `run`, `demo`) goes through here, so they share one
 * code path.
 */
import * as NodeHttpClient from "@effect/platform-node/NodeHttpClient"
import { EventsApi } from "@webex-compliance/events-api"
import * as Effect from "effect/Effect"
import * as Layer from "effect/Layer"
import * as path from "node:path"
import * as ArchiveLock from "./ArchiveLock.js"
import * as Archiver from "./Archiver.js"
import * as Checkpoint from "./Checkpoint.js"
import type * as Credentials from "./Credentials.js"
import * as NdjsonSink from "./NdjsonSink.js"

/**
 * Runs `use` with the archive locked and every layer built: lock first, so that the sink's
 * start-up repair never races another archiver.
 */
export const withArchive = <A, E>(
  options: {
    readonly dir: string
    readonly credentials: Credentials.Credentials
    readonly baseUrl: string
    readonly settings: Archiver.Settings
    readonly retry?: EventsApi.Options["retry"]
  },
  use: (archiver: Archiver.Service) => Effect.Effect<A, E>
) =>
  Effect.scoped(
    Effect.gen(function*() {
      const dir = path.resolve(options.dir)
      yield* ArchiveLock.acquire(dir)
      const layers = Archiver.layer.pipe(
        Layer.provide(Layer.succeed(Archiver.ArchiverSettings, options.settings)),
        Layer.provide(
          EventsApi.layer({ ...options.credentials, baseUrl: options.baseUrl, retry: options.retry }).pipe(
            Layer.provide(NodeHttpClient.layerUndici),
            // A bad base URL fails here, as one of the archiver's errors.
            Layer.mapError((e): Archiver.ArchiverError => e)
          )
        ),
        Layer.provide(NdjsonSink.layer(dir)),
        Layer.provide(Checkpoint.layer(dir))
      )
      return yield* Effect.flatMap(Archiver.Archiver, use).pipe(
        Effect.provide(layers),
        // The last failure is kept in the archive for `status`, then reported as usual.
        Effect.tapError((e) => Checkpoint.recordError(dir, messageOf(e)).pipe(Effect.ignore)),
        Effect.onInterrupt(() =>
          Effect.logInfo(
            "Stopping on request: the page being written was completed, or dropped before any of it was written; " +
              "every finished window is in the checkpoint and the next start carries on from there"
          )
        )
      )
    })
  )

/** One line a person can act on, for any failure. */
export const messageOf = (e: unknown): string => {
  if (typeof e === "object" && e !== null) {
    const err = e as { _tag?: string; message?: string; hint?: string; trackingId?: string; status?: number }
    const parts = [err.message ?? String(e)]
    if (err.hint !== undefined) parts.push(err.hint)
    if (err._tag === "TransportError") parts.push("(no answer from the API after every retry: check the network, DNS and --base-url)")
    if (err.trackingId !== undefined) parts.push(`(trackingId ${err.trackingId})`)
    return parts.join(" ")
  }
  return String(e)
}

