/**
 * The `webex-archiver` command line: `backfill`, `run`, `status` and `demo`.
 *
 * Each command composes the same layers — configuration, the Events API client (with its retry
 * policy), the archive lock, the NDJSON sink and the checkpoint — and differs only in what it
 * asks of the `Archiver`.
 */
import * as Command from "@effect/cli/Command"
import * as HelpDoc from "@effect/cli/HelpDoc"
import * as Options from "@effect/cli/Options"
import * as ValidationError from "@effect/cli/ValidationError"
import { EventsApi, type EventsApiError } from "@webex-compliance/events-api"
import * as Clock from "effect/Clock"
import * as Config from "effect/Config"
import * as Console from "effect/Console"
import * as Duration from "effect/Duration"
import * as Effect from "effect/Effect"
import * as Either from "effect/Either"
import * as Option from "effect/Option"
import * as Ref from "effect/Ref"
import * as path from "node:path"
import * as ArchiveStatus from "./ArchiveStatus.js"
import { ArchiverConfigError, ArchiverUsageError } from "./ArchiverError.js"
import type * as Archiver from "./Archiver.js"
import { withArchive } from "./ArchiveSession.js"
import { parseDuration, parseInstant } from "./CliInput.js"
import * as Credentials from "./Credentials.js"
import * as Demo from "./Demo.js"
import * as EvidenceCli from "./EvidenceCli.js"
import { toIso } from "./Instant.js"
import * as Logging from "./Logging.js"
import * as Totals from "./Totals.js"

/** The library's failures, as the commands report them (named here so the commands' types are portable). */
export type ApiFailure = EventsApiError.EventsApiError

const INSTANT = "An ISO-8601 date-time with a zone (2024-05-01T00:00:00Z) or a date (2024-05-01, midnight UTC)."

/** A refused flag value: the message names the flag, as every error line of the CLI does. */
const invalid = (flag: string, message: string) => ValidationError.invalidValue(HelpDoc.p(`${flag}: ${message}`))

const parsed = <A>(flag: string, parse: (s: string) => Either.Either<A, string>) => (s: string) =>
  Either.match(parse(s), { onLeft: (e) => Effect.fail(invalid(flag, e)), onRight: Effect.succeed })

const instant = (name: string) =>
  Options.text(name).pipe(Options.withPseudoName("date-time"), Options.mapEffect(parsed(`--${name}`, parseInstant)))

const duration = (name: string, fallback: string) =>
  Options.text(name).pipe(
    Options.withPseudoName("duration"),
    Options.withDefault(fallback),
    Options.mapEffect(parsed(`--${name}`, parseDuration)))

/** An integer in `[min, max]`, parsed here so that a refusal names the flag. */
const integer = (name: string, min: number, max: number, fallback: number) =>
  Options.text(name).pipe(
    Options.withPseudoName("n"),
    Options.withDefault(String(fallback)),
    Options.mapEffect(parsed(`--${name}`, (s) => {
      const n = /^\s*\d+\s*$/.test(s) ? Number(s) : Number.NaN
      return Number.isSafeInteger(n) && n >= min && n <= max
        ? Either.right(n)
        : Either.left(`must be a whole number from ${min} to ${max}, got ${JSON.stringify(s)}`)
    }))
  )

// ---------------------------------------------------------------------------------------------
// Common options
// ---------------------------------------------------------------------------------------------

// Plain text, not Options.directory: the archive's own checks explain a bad path better.
const out = Options.text("out").pipe(
  Options.withPseudoName("directory"),
  Options.withFallbackConfig(Config.string("ARCHIVE_DIR")),
  Options.withDefault("./archive"),
  Options.withDescription("The archive directory, created on first use (env ARCHIVE_DIR; default ./archive).")
)

// Checked in the command, not here: a bad base URL is a configuration error (exit 78), whether
// it came from the flag or from WEBEX_BASE_URL.
const baseUrl = Options.text("base-url").pipe(
  Options.withPseudoName("url"),
  Options.withFallbackConfig(Config.string("WEBEX_BASE_URL")),
  Options.withDefault(EventsApi.DEFAULT_BASE_URL),
  Options.withDescription("The API's base URL (env WEBEX_BASE_URL; default https://webexapis.com/v1). https only, except to this machine.")
)

const checkBaseUrl = (s: string) =>
  /^https?:\/\/[^/]+/i.test(s) && URL.canParse(s)
    ? Effect.succeed(s)
    : Effect.fail(
      new ArchiverConfigError({
        setting: "--base-url",
        problem: `${JSON.stringify(s)} is not an http(s) URL such as https://webexapis.com/v1 (from the flag or WEBEX_BASE_URL)`
      })
    )

// Files are checked by `Credentials.read`, so that an unreadable one is a configuration error
// (exit 78) that names it.
const secretFileOption = (name: string, description: string) =>
  Options.text(name).pipe(Options.withPseudoName("file"), Options.optional, Options.withDescription(description))

const tokenFile = secretFileOption(
  "token-file",
  "A file holding the access token. Without it the token comes from env WEBEX_TOKEN. Secrets are never accepted as flag values: flags end up in shell history and process listings."
)

const refreshTokenFile = secretFileOption(
  "refresh-token-file",
  "A file holding an OAuth integration's refresh token, for runs longer than an access token lives (~14 days). The archiver refreshes the access token when needed and rewrites this file (0600) with each rotated refresh token. Needs --client-id and --client-secret-file (or env WEBEX_CLIENT_ID, WEBEX_CLIENT_SECRET)."
)

const clientId = Options.text("client-id").pipe(
  Options.withPseudoName("id"),
  Options.optional,
  Options.withDescription("The OAuth integration's client id (else env WEBEX_CLIENT_ID), with --refresh-token-file.")
)

const clientSecretFile = secretFileOption(
  "client-secret-file",
  "A file holding the integration's client secret (else env WEBEX_CLIENT_SECRET), with --refresh-token-file."
)

const filters = {
  resource: Options.text("resource").pipe(Options.withPseudoName("name"), Options.optional, Options.withDescription("Archive only this resource, e.g. messages.")),
  type: Options.text("type").pipe(Options.withPseudoName("name"), Options.optional, Options.withDescription("Archive only this event type, e.g. deleted.")),
  actor: Options.text("actor").pipe(Options.withPseudoName("person-id"), Options.optional, Options.withDescription("Archive only events by this person id."))
}

const max = integer("max", 1, 1000, 1000).pipe(Options.withDescription("Events per page, 1 to 1000 (default 1000)."))

const window = duration("window", "6h").pipe(
  Options.withDescription("The checkpoint window, e.g. 1h, 6h, 1d (default 6h): progress is saved after each fully written window.")
)

const logFormat = Options.choice("log-format", ["text", "json"]).pipe(
  Options.withDefault("text" as const),
  Options.withDescription("Log lines on stderr as logfmt text or JSON objects (default text). The level: --log-level debug|info|warning|error.")
)

const json = Options.boolean("json").pipe(
  Options.withDescription("Print the final summary on stdout as one JSON object instead of a sentence.")
)

const common = { out, baseUrl, tokenFile, refreshTokenFile, clientId, clientSecretFile, ...filters, max, window, logFormat }

type Common = {
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
  readonly logFormat: Logging.Format
}

const settingsOf = (c: Common): Archiver.Settings => ({
  scope: {
    ...(Option.isSome(c.resource) ? { resource: c.resource.value } : {}),
    ...(Option.isSome(c.type) ? { type: c.type.value } : {}),
    ...(Option.isSome(c.actor) ? { actorId: c.actor.value } : {})
  },
  max: c.max,
  window: c.window,
  // Stay a little behind the clock: a local clock ahead of Webex's would make "now" a refused future `to`.
  settle: Duration.seconds(10)
})

const settle = Options.text("settle").pipe(
  Options.withPseudoName("duration"),
  Options.mapEffect(EvidenceCli.parseSettle),
  Options.optional,
  Options.withDescription(
    "Seal a day (compress it into events/DAY.ndjson.gz and chain it into manifest.ndjson) once the archive covers it whole and it ended this long ago (default: --lookback for run, 1h for backfill; 0 seals at once)."
  )
)

const sealing = { settle, signingKey: EvidenceCli.signingKeyOption }

const withCommon = (
  c: Common & { readonly settle: Option.Option<Duration.Duration>; readonly signingKey: Option.Option<string> },
  defaultSettle: Duration.Duration
) =>
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

// ---------------------------------------------------------------------------------------------
// Commands
// ---------------------------------------------------------------------------------------------

const backfill = Command.make(
  "backfill",
  {
    ...common,
    from: instant("from").pipe(Options.withDescription(INSTANT + " Start of the range (inclusive).")),
    to: instant("to").pipe(Options.optional, Options.withDescription(INSTANT + " End of the range (exclusive); default now.")),
    ...sealing,
    recheck: Options.boolean("recheck").pipe(
      Options.withDescription("Also re-read the parts of the range the archive already covers, to catch events the API listed late; the summary counts them as late.")
    ),
    json
  },
  (c) =>
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
            (c.recheck ? ` (${totals.late} late events found in re-checked windows)` : "")
      )
    }))
).pipe(Command.withDescription(
  "Archive every event created in [--from, --to) and exit. Only what the archive does not cover yet is fetched (--recheck re-reads the rest); an interrupted run resumes where it stopped."
))

const run = Command.make(
  "run",
  {
    ...common,
    from: instant("from").pipe(
      Options.optional,
      Options.withDescription(INSTANT + " Where to start on a first start; later, only what the archive lacks after it is fetched. Without it, the daemon continues from the end of what the archive covers.")
    ),
    interval: duration("interval", "5m").pipe(Options.withDescription("The time between polls, e.g. 30s, 5m (default 5m).")),
    lookback: duration("lookback", "1h").pipe(Options.withDescription("How far back each poll (and each restart) re-reads, to catch late-arriving events (default 1h).")),
    ...sealing,
    json
  },
  (c) =>
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
).pipe(Command.withDescription(
  "The daemon: continue from the end of what the archive covers (or --from on a first start), catch up to now, then poll every --interval, re-reading the last --lookback. SIGTERM/SIGINT stop it cleanly (exit 0)."
))

const status = Command.make(
  "status",
  {
    out,
    json: Options.boolean("json").pipe(Options.withDescription("Print the status as JSON."))
  },
  (c) =>
    Effect.gen(function*() {
      const s = yield* ArchiveStatus.readStatus(path.resolve(c.out))
      yield* Console.log(c.json ? JSON.stringify(s, null, 2) : ArchiveStatus.formatStatus(s))
    })
).pipe(Command.withDescription(
  "What the archive holds: covered time ranges, counts per resource and day, quarantine, last checkpoint, last error."
))

const demo = Command.make(
  "demo",
  {
    out: Options.text("out").pipe(
      Options.withPseudoName("directory"),
      Options.withDefault("./archive-demo"),
      Options.withDescription("Where to write the demo archive (default ./archive-demo).")
    ),
    events: integer("events", 1, 1_000_000, 5000).pipe(Options.withDescription("How many events the simulated org holds (default 5000).")),
    days: integer("days", 1, 3650, 30).pipe(Options.withDescription("Over how many days, up to today (default 30).")),
    logFormat
  },
  (c) => logged(c.logFormat, Demo.run({ out: c.out, events: c.events, days: c.days }))
).pipe(Command.withDescription(
  "No token needed: start a simulated Webex (thousands of events of every kind, rate limits, 5xx, dropped connections and junk items switched on), archive it, and verify the archive against it."
))

export const command = Command.make("webex-archiver").pipe(
  Command.withDescription(
    "Keeps a complete, exactly-once, crash-safe NDJSON archive of a Webex organisation's compliance events."
  ),
  Command.withSubcommands([backfill, run, status, demo, ...EvidenceCli.commands])
)

/** Ends every help text: what to type first, and what the exit codes mean. */
const footer = HelpDoc.blocks([
  HelpDoc.h1("EXAMPLES"),
  HelpDoc.p("webex-archiver demo --out ./archive-demo"),
  HelpDoc.p("WEBEX_TOKEN=... webex-archiver backfill --out ./archive --from 2024-05-01 --to 2024-06-01"),
  HelpDoc.p("webex-archiver run --out ./archive --token-file /etc/webex/token --from 2024-06-01 --interval 5m"),
  HelpDoc.p("webex-archiver backfill --out ./archive --from 2024-05-01 --recheck --json"),
  HelpDoc.p("webex-archiver status --out ./archive --json"),
  HelpDoc.h1("EXIT CODES"),
  HelpDoc.p(
    "0 success or clean stop (SIGTERM, SIGINT); 64 bad flag or argument; 65 verify found the archive damaged; 70 internal error; 73 keygen cannot create its files; 74 archive cannot be read or written, or is unsafe; " +
      "75 temporary (archive locked, API unreachable or throttled after retries); 76 the API answered something it does not document; " +
      "77 not authorised (token refused, no compliance access, refresh refused); 78 configuration (no or unreadable token, bad base URL, invalid checkpoint, bad signing key)."
  )
])

export const cli = Command.run(command, { name: "webex-archiver", version: "0.1.0", footer })
