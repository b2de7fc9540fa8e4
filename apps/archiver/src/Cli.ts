/**
 * The `webex-archiver` command line: `backfill`, `run`, `status`, `demo` and the evidence
 * commands of `EvidenceCli.ts`.
 *
 * This module only declares the commands: their options, descriptions and help. What a command
 * does is in `Commands.ts`, loaded with `import()` when it runs, so that `--help` (and a refused
 * flag) parses @effect/cli and little else: no HTTP client, no archive code (issue 6).
 */
import * as Command from "@effect/cli/Command"
import * as HelpDoc from "@effect/cli/HelpDoc"
import * as Options from "@effect/cli/Options"
import type { EventsApiError } from "@webex-compliance/events-api"
import * as Config from "effect/Config"
import * as Effect from "effect/Effect"
import * as Either from "effect/Either"
import { archiveDir, choice, fileOption, INSTANT, instant, optionalText, parsed, parsedBy } from "./CliOptions.js"
import * as EvidenceCli from "./EvidenceCli.js"

/** The library's failures, as the commands report them (named here so the commands' types are portable). */
export type ApiFailure = EventsApiError.EventsApiError

/** The implementations, loaded on first use (a chunk of their own in the bundle). */
const commands = Effect.promise(() => import("./Commands.js"))

/**
 * `EventsApi.DEFAULT_BASE_URL`, repeated so that declaring the flag does not load the client
 * (cli-input.test.ts checks that the two agree).
 */
export const DEFAULT_BASE_URL = "https://webexapis.com/v1"

const duration = (name: string, fallback: string) =>
  Options.text(name).pipe(
    Options.withPseudoName("duration"),
    Options.withDefault(fallback),
    Options.mapEffect(parsedBy(`--${name}`, (m) => m.parseDuration)))

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

const out = archiveDir("The archive directory, created on first use (env ARCHIVE_DIR; default ./archive).")

// Checked in the command (Commands.ts), not here: a bad base URL is a configuration error (exit 78), whether
// it came from the flag or from WEBEX_BASE_URL.
const baseUrl = Options.text("base-url").pipe(
  Options.withPseudoName("url"),
  Options.withFallbackConfig(Config.string("WEBEX_BASE_URL")),
  Options.withDefault(DEFAULT_BASE_URL),
  Options.withDescription("The API's base URL (env WEBEX_BASE_URL; default https://webexapis.com/v1). https only, except to this machine.")
)

// Files are read by `Credentials.read`, which names one it cannot use (a configuration error).
const tokenFile = fileOption(
  "token-file",
  "A file holding the access token. Without it the token comes from env WEBEX_TOKEN. Secrets are never accepted as flag values: flags end up in shell history and process listings."
)

const refreshTokenFile = fileOption(
  "refresh-token-file",
  "A file holding an OAuth integration's refresh token, for runs longer than an access token lives (~14 days). The archiver refreshes the access token when needed and rewrites this file (0600) with each rotated refresh token. Needs --client-id and --client-secret-file (or env WEBEX_CLIENT_ID, WEBEX_CLIENT_SECRET)."
)

const clientId = Options.text("client-id").pipe(
  Options.withPseudoName("id"),
  Options.optional,
  Options.withDescription("The OAuth integration's client id (else env WEBEX_CLIENT_ID), with --refresh-token-file.")
)

const clientSecretFile = fileOption(
  "client-secret-file",
  "A file holding the integration's client secret (else env WEBEX_CLIENT_SECRET), with --refresh-token-file."
)

const filters = {
  resource: optionalText("resource", "name", "Archive only this resource, e.g. messages."),
  type: optionalText("type", "name", "Archive only this event type, e.g. deleted."),
  actor: optionalText("actor", "person-id", "Archive only events by this person id.")
}

const max = integer("max", 1, 1000, 1000).pipe(Options.withDescription("Events per page, 1 to 1000 (default 1000)."))

const window = duration("window", "6h").pipe(
  Options.withDescription("The checkpoint window, e.g. 1h, 6h, 1d (default 6h): progress is saved after each fully written window. Where events are sparse, windows grow (see --max-window).")
)

const maxWindow = duration("max-window", "7d").pipe(
  Options.withDescription("How long a window may grow where events are sparse (default 7d): windows start at --window and grow toward about 1000 events each, so a sparse backfill of years costs few requests and checkpoints. Equal to --window, every window has that length.")
)

const logFormat = choice("log-format", ["text", "json"]).pipe(
  Options.withDefault("text" as const),
  Options.withDescription("Log lines on stderr as logfmt text or JSON objects (default text). The level: --log-level debug|info|warning|error.")
)

const json = Options.boolean("json").pipe(
  Options.withDescription("Print the final summary on stdout as one JSON object instead of a sentence.")
)

const common = { out, baseUrl, tokenFile, refreshTokenFile, clientId, clientSecretFile, ...filters, max, window, maxWindow, logFormat }

const settle = Options.text("settle").pipe(
  Options.withPseudoName("duration"),
  Options.mapEffect(EvidenceCli.parseSettle),
  Options.optional,
  Options.withDescription(
    "Seal a day (compress it into events/DAY.ndjson.gz and chain it into manifest.ndjson) once the archive covers it whole and it ended this long ago (default: --lookback for run, 1h for backfill; 0 seals at once)."
  )
)

const sealing = { settle, signingKey: EvidenceCli.signingKeyOption }

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
  (c) => Effect.flatMap(commands, (m) => m.backfill(c))
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
  (c) => Effect.flatMap(commands, (m) => m.run(c))
).pipe(Command.withDescription(
  "The daemon: continue from the end of what the archive covers (or --from on a first start), catch up to now, then poll every --interval, re-reading the last --lookback. SIGTERM/SIGINT stop it cleanly (exit 0)."
))

const status = Command.make(
  "status",
  {
    out: archiveDir("The archive directory to report on (env ARCHIVE_DIR; default ./archive)."),
    json: Options.boolean("json").pipe(Options.withDescription("Print the status as JSON."))
  },
  (c) => Effect.flatMap(commands, (m) => m.status(c))
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
  (c) => Effect.flatMap(commands, (m) => m.demo(c))
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
  HelpDoc.p("webex-archiver run --out ./archive --token-file /etc/webex/token --from 2024-06-01 --interval 5m --signing-key /etc/webex/manifest.key"),
  HelpDoc.p("webex-archiver backfill --out ./archive --from 2024-05-01 --recheck --json"),
  HelpDoc.p("webex-archiver status --out ./archive --json"),
  HelpDoc.p("webex-archiver keygen --private-key /etc/webex/manifest.key --public-key manifest.pub"),
  HelpDoc.p("webex-archiver seal --out ./archive --settle 1h --signing-key /etc/webex/manifest.key"),
  HelpDoc.p("webex-archiver verify --out ./archive --public-key manifest.pub"),
  HelpDoc.p("webex-archiver query --out ./archive --from 2024-05-01 --resource messages --type deleted | jq .id"),
  HelpDoc.p("webex-archiver gaps --out ./archive --from 2024-05-01"),
  HelpDoc.h1("EXIT CODES"),
  HelpDoc.p(
    "0 success or clean stop (SIGTERM, SIGINT); 64 bad flag or argument; 65 verify found the archive damaged; 70 internal error; 73 keygen cannot create its files; 74 archive cannot be read or written, or is unsafe; " +
      "75 temporary (archive locked, API unreachable or throttled after retries); 76 the API answered something it does not document; " +
      "77 not authorised (token refused, no compliance access, refresh refused); 78 configuration (no or unreadable token, bad base URL, invalid checkpoint, bad signing key)."
  )
])

export const cli = Command.run(command, { name: "webex-archiver", version: "0.1.0", footer })
