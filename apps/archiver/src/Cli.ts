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
import { EventsApi } from "@webex-compliance/events-api"
import * as Config from "effect/Config"
import * as Console from "effect/Console"
import * as Duration from "effect/Duration"
import * as Effect from "effect/Effect"
import * as Either from "effect/Either"
import * as Option from "effect/Option"
import * as path from "node:path"
import * as ArchiveStatus from "./ArchiveStatus.js"
import * as Archiver from "./Archiver.js"
import { parseDuration, parseInstant } from "./CliInput.js"
import * as Credentials from "./Credentials.js"
import * as Demo from "./Demo.js"
import * as EvidenceCli from "./EvidenceCli.js"
import { withArchive } from "./ArchiveSession.js"

const INSTANT = "ISO-8601 with a zone (2024-05-01T00:00:00Z) or a date (2024-05-01, midnight UTC)."

const invalid = (message: string) => ValidationError.invalidValue(HelpDoc.p(message))

const fromEither = <A>(e: Either.Either<A, string>) =>
  Either.isRight(e) ? Effect.succeed(e.right) : Effect.fail(invalid(e.left))

const instant = (name: string) =>
  Options.text(name).pipe(Options.withPseudoName("date-time"), Options.mapEffect((s) => fromEither(parseInstant(s))))

const duration = (name: string, fallback: string) =>
  Options.text(name).pipe(
    Options.withPseudoName("duration"),
    Options.withDefault(fallback),
    Options.mapEffect((s) => fromEither(parseDuration(s))))

// ---------------------------------------------------------------------------------------------
// Common options
// ---------------------------------------------------------------------------------------------

// Plain text, not Options.directory: the archive's own checks explain a bad path better.
const out = Options.text("out").pipe(
  Options.withPseudoName("directory"),
  Options.withFallbackConfig(Config.string("ARCHIVE_DIR")),
  Options.withDefault("./archive"),
  Options.withDescription("Archive directory (env ARCHIVE_DIR; default ./archive).")
)

const baseUrl = Options.text("base-url").pipe(
  Options.withFallbackConfig(Config.string("WEBEX_BASE_URL")),
  Options.withDefault(EventsApi.DEFAULT_BASE_URL),
  Options.mapEffect((s) =>
    /^https?:\/\/[^/]+/i.test(s) && URL.canParse(s)
      ? Effect.succeed(s)
      : Effect.fail(invalid(`--base-url ${JSON.stringify(s)} is not an http(s) URL such as https://webexapis.com/v1`))
  ),
  Options.withDescription("API base URL (env WEBEX_BASE_URL; default https://webexapis.com/v1). https only, except to this machine.")
)

const tokenFile = Options.file("token-file", { exists: "yes" }).pipe(
  Options.optional,
  Options.withDescription(
    "File holding the access token. Without it the token comes from env WEBEX_TOKEN. Secrets are never accepted as flag values: flags end up in shell history and process listings."
  )
)

const refreshTokenFile = Options.file("refresh-token-file", { exists: "yes" }).pipe(
  Options.optional,
  Options.withDescription(
    "File holding an OAuth integration's refresh token, for runs longer than an access token lives (~14 days). The archiver refreshes the access token when needed and rewrites this file (0600) with each rotated refresh token. Needs --client-id and --client-secret-file (or env WEBEX_CLIENT_ID, WEBEX_CLIENT_SECRET)."
  )
)

const clientId = Options.text("client-id").pipe(
  Options.optional,
  Options.withDescription("The OAuth integration's client id (else env WEBEX_CLIENT_ID), with --refresh-token-file.")
)

const clientSecretFile = Options.file("client-secret-file", { exists: "yes" }).pipe(
  Options.optional,
  Options.withDescription("File holding the integration's client secret (else env WEBEX_CLIENT_SECRET), with --refresh-token-file.")
)

const filters = {
  resource: Options.text("resource").pipe(Options.optional, Options.withDescription("Only this resource, e.g. messages.")),
  type: Options.text("type").pipe(Options.optional, Options.withDescription("Only this event type, e.g. deleted.")),
  actor: Options.text("actor").pipe(Options.optional, Options.withDescription("Only events by this person id."))
}

const max = Options.integer("max").pipe(
  Options.withDefault(1000),
  Options.mapEffect((n) => n >= 1 && n <= 1000 ? Effect.succeed(n) : Effect.fail(invalid(`--max must be from 1 to 1000, got ${n}`))),
  Options.withDescription("Page size, 1 to 1000 (default 1000).")
)

const window = duration("window", "6h").pipe(
  Options.withDescription("Checkpoint window, e.g. 1h, 6h, 1d (default 6h): progress is saved after each fully written window.")
)

const logFormat = Options.choice("log-format", ["text", "json"]).pipe(
  Options.withDefault("text" as const),
  Options.withDescription("Log lines on stderr as logfmt text or JSON objects (default text). The level: --log-level debug|info|warning|error.")
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
  readonly logFormat: "text" | "json"
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

const withCommon = (c: Common) =>
  Effect.gen(function*() {
    return {
      dir: c.out,
      credentials: yield* Credentials.read(c),
      baseUrl: c.baseUrl,
      settings: settingsOf(c)
    }
  })

// ---------------------------------------------------------------------------------------------
// Commands
// ---------------------------------------------------------------------------------------------

const backfill = Command.make(
  "backfill",
  { ...common, from: instant("from").pipe(Options.withDescription(INSTANT + " Start of the range (inclusive).")), to: instant("to").pipe(Options.optional, Options.withDescription(INSTANT + " End of the range (exclusive); default now.")) },
  (c) =>
    Effect.gen(function*() {
      // An empty range is refused before the archive directory is even created.
      const end = Option.match(c.to, { onNone: () => Date.now(), onSome: (d) => Math.min(d.getTime(), Date.now()) })
      if (c.from.getTime() >= end) {
        return yield* new Archiver.ArchiverUsageError({
          message: `Nothing to back-fill: --from ${c.from.toISOString()} is not before ${
            Option.isSome(c.to) && c.to.value.getTime() <= Date.now() ? "--to" : "now"
          } (${new Date(end).toISOString()})`
        })
      }
      const opts = yield* withCommon(c)
      const totals = yield* withArchive(opts, (a) => a.backfill(c.from, c.to))
      yield* Console.log(
        `Back-fill complete: ${totals.written} new events archived, ${totals.duplicates} already present, ` +
          `${totals.quarantined} quarantined, ${totals.pages} pages in ${totals.windows} windows → ${path.resolve(c.out)}`
      )
    })
).pipe(Command.withDescription(
  "Archive every event created in [--from, --to) and exit. Re-running over an archived range adds only what is missing; an interrupted run resumes where it stopped."
))

const run = Command.make(
  "run",
  {
    ...common,
    from: instant("from").pipe(Options.optional, Options.withDescription(INSTANT + " Where to start on the first start; later starts resume from the checkpoint.")),
    interval: duration("interval", "5m").pipe(Options.withDescription("Time between polls, e.g. 30s, 5m (default 5m).")),
    lookback: duration("lookback", "1h").pipe(Options.withDescription("How far back each poll (and each restart) re-reads, to catch late-arriving events (default 1h)."))
  },
  (c) =>
    Effect.gen(function*() {
      const opts = yield* withCommon(c)
      yield* withArchive(opts, (a) => a.run({ from: c.from, interval: c.interval, lookback: c.lookback }))
    })
).pipe(Command.withDescription(
  "The daemon: resume from the checkpoint (or --from on a first start), catch up to now, then poll every --interval, re-reading the last --lookback. SIGTERM/SIGINT stop it cleanly (exit 0)."
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
    events: Options.integer("events").pipe(Options.withDefault(5000), Options.withDescription("How many events the simulated org holds (default 5000).")),
    days: Options.integer("days").pipe(Options.withDefault(30), Options.withDescription("Over how many days, up to today (default 30).")),
    logFormat
  },
  (c) => Demo.run({ out: c.out, events: c.events, days: c.days })
).pipe(Command.withDescription(
  "No token needed: start a simulated Webex (thousands of events of every kind, rate limits, 5xx, dropped connections and junk items switched on), archive it, and verify the archive against it."
))

export const command = Command.make("webex-archiver").pipe(
  Command.withDescription(
    "Keeps a complete, exactly-once, crash-safe NDJSON archive of a Webex organisation's compliance events."
  ),
  Command.withSubcommands([backfill, run, status, demo, ...EvidenceCli.commands])
)

export const cli = Command.run(command, { name: "webex-archiver", version: "0.1.0" })
