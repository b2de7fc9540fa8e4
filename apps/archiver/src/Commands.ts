/**
 * What `backfill`, `run`, `status` and `demo` do once their command line is parsed. `Cli.ts`
 * declares the commands and loads this module with `import()` only when one of them runs, so
 * `--help` and a refused flag never load the HTTP client, the archive or the fake server.
 *
 * Each writing command composes the same layers (through `ArchiveSession.withArchive`) —
 * configuration, the Events API client (with its retry policy), the archive lock, the NDJSON
 * sink and the checkpoint — and differs only in what it asks of the `Archiver`.
 */
import { EventsApi, type EventsApiError } from "@webex-compliance/events-api"
import * as Clock from "effect/Clock"
import * as Console from "effect/Console"
import * as Duration from "effect/Duration"
import * as Effect from "effect/Effect"
import * as Option from "effect/Option"
import * as Ref from "effect/Ref"
import * as path from "node:path"
import * as ArchiveStatus from "./ArchiveStatus.js"
import { ArchiverConfigError, ArchiverUsageError } from "./ArchiverError.js"
import type * as Archiver from "./Archiver.js"
import { withArchive } from "./ArchiveSession.js"
import * as Credentials from "./Credentials.js"
import * as Demo from "./Demo.js"
import { toIso } from "./Instant.js"
import * as Logging from "./Logging.js"
import * as Totals from "./Totals.js"

/** The library's failures, as the commands report them (named here so the commands' types are portable). */
export type ApiFailure = EventsApiError.EventsApiError

/** The options `backfill` and `run` share, as parsed. */
export interface Common {
  readonly out: string
  readonly baseUrl: string
  readonly tokenFile: Option.Option<string>
  readonly refreshTokenFile: Option.Option<string>
  readonly clientId: Option.Option<string>
  readonly clientSecretFile: Option.Option<string>
  readonly resource: Option.Option<string>
  readonly type: Option.Option<string>
  readonly actor: Option.Option<string>
  readonly max: number
  readonly window: Duration.Duration
  readonly maxWindow: Duration.Duration
  readonly logFormat: Logging.Format
  readonly settle: Option.Option<Duration.Duration>
  readonly signingKey: Option.Option<string>
  readonly json: boolean
}

// The library's default, checked here (not in the library) so that a bad base URL is a
// configuration error (exit 78), whether it came from the flag or from WEBEX_BASE_URL.
const checkBaseUrl = (s: string) =>
  /^https?:\/\/[^/]+/i.test(s) && URL.canParse(s)
    ? Effect.succeed(s)
    : Effect.fail(
      new ArchiverConfigError({
        setting: "--base-url",
        problem: `${JSON.stringify(s)} is not an http(s) URL such as ${EventsApi.DEFAULT_BASE_URL} (from the flag or WEBEX_BASE_URL)`
      })
    )

const settingsOf = (c: Common): Archiver.Settings => ({
  scope: {
    ...(Option.isSome(c.resource) ? { resource: c.resource.value } : {}),
    ...(Option.isSome(c.type) ? { type: c.type.value } : {}),
    ...(Option.isSome(c.actor) ? { actorId: c.actor.value } : {})
  },
  max: c.max,
  window: c.window,
  longestWindow: c.maxWindow,
  // Stay a little behind the clock: a local clock ahead of Webex's would make "now" a refused future `to`.
  settle: Duration.seconds(10)
})

const withCommon = (c: Common, defaultSettle: Duration.Duration) =>
  Effect.gen(function*() {
    const baseUrl = yield* checkBaseUrl(c.baseUrl)
    return {
      dir: c.out,
      credentials: yield* Credentials.read(c),
      baseUrl,
      settings: settingsOf(c),
      // A run refused for its token must leave nothing on disk: ask once before creating the archive.
      probeFirst: true,
      seal: { settle: Option.getOrElse(c.settle, () => defaultSettle), signingKeyFile: Option.getOrUndefined(c.signingKey) }
    }
  })

/** The parsed `--log-format` is what configures the logger (main.ts installs text until then). */
const logged = <A, E, R>(format: Logging.Format, effect: Effect.Effect<A, E, R>) =>
  Effect.provide(effect, Logging.withFormat(format))

const summaryJson = (command: string, dir: string, totals: Totals.Totals) =>
  JSON.stringify({ command, archive: path.resolve(dir), ...totals })

export const backfill = (
  c: Common & { readonly from: number; readonly to: Option.Option<number>; readonly recheck: boolean }
) =>
  logged(c.logFormat, Effect.gen(function*() {
    // An empty range is refused before the archive directory is even created.
    const now = yield* Clock.currentTimeMillis
    const end = Option.match(c.to, { onNone: () => now, onSome: (to) => Math.min(to, now) })
    if (c.from >= end) {
      const byTo = Option.isSome(c.to) && c.to.value <= now
      return yield* new ArchiverUsageError({
        flag: "--from",
        problem: `nothing to back-fill: ${toIso(c.from)} is not before ${byTo ? "--to" : "now"} (${toIso(end)})`
      })
    }
    const opts = yield* withCommon(c, Duration.hours(1))
    const totals = yield* withArchive(opts, (a) => a.backfill({ from: c.from, to: c.to, recheck: c.recheck }))
    yield* Console.log(
      c.json
        ? summaryJson("backfill", c.out, totals)
        : `Back-fill complete: ${totals.written} new events archived, ${totals.duplicates} already present, ` +
          `${totals.quarantined} quarantined, ${totals.pages} pages in ${totals.windows} windows → ${path.resolve(c.out)}` +
          (c.recheck || totals.late > 0 ? ` (${totals.late} of them late: created in time already covered)` : "")
    )
  }))

export const run = (
  c: Common & { readonly from: Option.Option<number>; readonly interval: Duration.Duration; readonly lookback: Duration.Duration }
) =>
  logged(c.logFormat, Effect.gen(function*() {
    const opts = yield* withCommon(c, c.lookback)
    const totals = yield* Ref.make(Totals.empty)
    const summary = Effect.flatMap(Ref.get(totals), (t) =>
      Console.log(
        c.json
          ? summaryJson("run", c.out, t)
          : `Stopped: ${t.written} new events archived, ${t.late} of them late, ${t.duplicates} already present, ` +
            `${t.quarantined} quarantined, ${t.pages} pages in ${t.windows} windows → ${path.resolve(c.out)}`
      ))
    yield* withArchive(opts, (a) => a.run({ from: c.from, interval: c.interval, lookback: c.lookback, totals })).pipe(
      // The daemon ends only on a stop signal: its summary is printed on the way out.
      Effect.onInterrupt(() => summary)
    )
  }))

export const status = (c: { readonly out: string; readonly json: boolean }) =>
  Effect.gen(function*() {
    const s = yield* ArchiveStatus.readStatus(path.resolve(c.out))
    yield* Console.log(c.json ? JSON.stringify(s, null, 2) : ArchiveStatus.formatStatus(s))
  })

export const demo = (c: Demo.DemoOptions & { readonly logFormat: Logging.Format }) =>
  logged(c.logFormat, Demo.run({ out: c.out, events: c.events, days: c.days }))
