/**
 * One session with an archive: the directory locked, every layer built, the last failure kept.
 * Every command that writes (`backfill`, `run`, `demo`) goes through here, so they share one
 * code path.
 */
import * as NodeHttpClient from "@effect/platform-node/NodeHttpClient"
import { EventsApi, type EventsApiError } from "@webex-compliance/events-api"
import * as Clock from "effect/Clock"
import * as Context from "effect/Context"
import type * as Duration from "effect/Duration"
import * as Effect from "effect/Effect"
import * as Layer from "effect/Layer"
import * as Option from "effect/Option"
import * as Stream from "effect/Stream"
import * as fs from "node:fs"
import * as path from "node:path"
import * as ArchiveLock from "./ArchiveLock.js"
import * as Archiver from "./Archiver.js"
import { ArchiverConfigError } from "./ArchiverError.js"
import * as Checkpoint from "./Checkpoint.js"
import { DecoderScript } from "./DecoderScript.js"
import { messageOf } from "./FailureMessage.js"
import type * as Credentials from "./Credentials.js"
import * as Manifest from "./Manifest.js"
import * as NdjsonSink from "./NdjsonSink.js"
import * as PageSorter from "./PageSorter.js"
import { safeText } from "./Redaction.js"
import * as Seal from "./Seal.js"

/**
 * The HTTP client: Node's own `http`/`https` (its C++ parser), connections kept alive between
 * pages (a TLS handshake per page otherwise). Not undici: its WebAssembly parser alone costs
 * ~40 MB of resident memory at start (issue 8: a small fixed footprint).
 */
const httpClient = NodeHttpClient.layerWithoutAgent.pipe(
  Layer.provide(NodeHttpClient.makeAgentLayer({ keepAlive: true }))
)

/** The failures that say the credentials will never work, however often they are tried. */
const REFUSED: ReadonlySet<string> = new Set(["Unauthorized", "Forbidden", "TokenRefreshFailed"])

/**
 * One cheap request (a minute, one item) before a new archive is created: a token the API
 * refuses then leaves nothing on disk, no folder and no unfinished job. Any other failure is
 * left to the run itself (its retries, the daemon's next poll).
 */
const probe = (api: EventsApi.Service) =>
  Effect.gen(function*() {
    const now = yield* Clock.currentTimeMillis
    yield* api.listPages({ from: new Date(now - 70_000), to: new Date(now - 10_000), max: 1 }).pipe(Stream.take(1), Stream.runDrain)
  }).pipe(
    Effect.catchIf(
      (e: EventsApiError.EventsApiError) => !REFUSED.has(e._tag),
      (e) => Effect.logDebug("The start-up probe failed; the run will try again").pipe(Effect.annotateLogs({ error: e._tag }))
    ),
    Effect.withSpan("ArchiveSession.probe")
  )

const DECODE_THREAD = "WEBEX_ARCHIVER_DECODE_THREAD"

/**
 * Where pages are decoded: on the main thread, or with `WEBEX_ARCHIVER_DECODE_THREAD=1` on a thread
 * of their own (the built CLI names the decoder's script), so that a page is written while the
 * next is decoded. The thread pays off where CPUs are spare; on the benchmark's two CPUs, shared
 * with the fake server, it measured no faster and costs ~30 MiB of resident memory (a second heap
 * with its own copy of the code), so it is not the default (apps/archiver/bench/README.md).
 */
const decoder = Effect.gen(function*() {
  const setting = process.env[DECODE_THREAD]
  if (setting !== undefined && setting !== "" && setting !== "0" && setting !== "1") {
    return yield* new ArchiverConfigError({
      setting: DECODE_THREAD,
      problem: `must be 1 (decode pages on a thread of their own) or 0 (on the main thread, the default), got ${
        JSON.stringify(safeText(setting.slice(0, 40)))
      }`
    })
  }
  const script = yield* Effect.serviceOption(DecoderScript)
  // Without a sorter, `Archiver` sorts on the main thread.
  if (setting !== "1" || Option.isNone(script)) return Layer.empty
  yield* Effect.logDebug("Pages are decoded on a thread of their own").pipe(Effect.annotateLogs({ script: script.value.href }))
  return PageSorter.layerWorker(script.value)
})

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
    /** Ask the API once before creating a new archive (see `probe`). */
    readonly probeFirst?: boolean | undefined
    /** Seal settled days as the archive grows (see `Seal.ts`); off when absent. */
    readonly seal?: { readonly settle: Duration.Duration; readonly signingKeyFile?: string | undefined } | undefined
  },
  use: (archiver: Archiver.Service) => Effect.Effect<A, E>
) =>
  Effect.scoped(
    Effect.gen(function*() {
      const dir = path.resolve(options.dir)
      // A bad decoder setting or signing key is a configuration error found before anything is
      // fetched or written.
      const sorter = yield* decoder
      const signingKey = options.seal?.signingKeyFile !== undefined
        ? yield* Manifest.loadSigningKey(options.seal.signingKeyFile)
        : undefined
      const api = yield* Layer.build(
        EventsApi.layer({ ...options.credentials, baseUrl: options.baseUrl, retry: options.retry }).pipe(
          Layer.provide(httpClient)
        )
      )
      if (options.probeFirst === true && !fs.existsSync(dir)) yield* probe(Context.get(api, EventsApi.EventsApi))
      yield* ArchiveLock.acquire(dir)
      const layers = Archiver.layer.pipe(
        Layer.provide(sorter),
        Layer.provide(Layer.succeed(Archiver.ArchiverSettings, options.settings)),
        Layer.provide(Layer.succeedContext(api)),
        Layer.provide(NdjsonSink.layer(dir)),
        Layer.provide(Checkpoint.layer(dir)),
        Layer.provide(options.seal !== undefined ? Seal.layer({ dir, settle: options.seal.settle, signingKey }) : Layer.empty)
      )
      return yield* Effect.flatMap(Archiver.Archiver, use).pipe(
        Effect.provide(layers),
        // The last failure is kept in the archive for `status` (secrets cut out), then reported as usual.
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
