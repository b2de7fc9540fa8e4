/**
 * The evidence subcommands of `webex-archiver`: `seal`, `verify`, `query`, `gaps` and `keygen`.
 * Registered in `Cli.ts` as `...EvidenceCli.commands`. Declarations only: what each command does is in
 * `EvidenceCommands.ts`, loaded when it runs.
 *
 * @since 0.2.0
 */
import * as Command from "@effect/cli/Command"
import * as Options from "@effect/cli/Options"
import * as Duration from "effect/Duration"
import * as Effect from "effect/Effect"
import { archiveDir, choice, fileOption, INSTANT, instant, optionalText, parsedBy } from "./CliOptions.js"
import { CONTENT_FIELDS } from "./Query.js"

/** The implementations, loaded on first use (a chunk of their own in the bundle). */
const load = Effect.promise(() => import("./EvidenceCommands.js"))

const out = archiveDir("Archive directory (env ARCHIVE_DIR; default ./archive).")

const optionalInstant = (name: string, description: string) =>
  instant(name).pipe(Options.optional, Options.withDescription(`${INSTANT} ${description}`))

const json = Options.boolean("json").pipe(Options.withDescription("Print JSON instead of text."))

/** A settle time: a duration, and 0 too (seal whatever is covered), unlike for intervals. */
export const parseSettle = (s: string) =>
  /^0+[smhd]?$/.test(s.trim()) ? Effect.succeed(Duration.zero) : parsedBy("--settle", (m) => m.parseDuration)(s)

/** `--signing-key`, shared by `seal`, `backfill` and `run`. */
export const signingKeyOption = fileOption(
  "signing-key",
  "An Ed25519 private key (PEM, mode 0600) that signs every new manifest entry; create one with keygen."
)

// ---------------------------------------------------------------------------------------------
// seal
// ---------------------------------------------------------------------------------------------

const seal = Command.make(
  "seal",
  {
    out,
    settle: Options.text("settle").pipe(
      Options.withPseudoName("duration"),
      Options.withDefault("1h"),
      Options.mapEffect(parseSettle),
      Options.withDescription("How long after its end a covered day stays open for late events (default 1h, the daemon's lookback).")
    ),
    signingKey: signingKeyOption
  },
  (c) => Effect.flatMap(load, (m) => m.seal(c))
).pipe(Command.withDescription(
  "Seal every day that the checkpoint covers completely and that ended more than --settle ago: compressed to events/DAY.ndjson.gz (later events of a sealed day to DAY.2.ndjson.gz, …), recorded in the hash-chained manifest.ndjson. Takes the archive lock; safe to repeat."
))

// ---------------------------------------------------------------------------------------------
// verify
// ---------------------------------------------------------------------------------------------

const verify = Command.make(
  "verify",
  {
    out,
    json,
    publicKey: fileOption(
      "public-key",
      "An Ed25519 public key (PEM): every manifest entry must carry a valid signature by its private key."
    ),
    head: Options.text("head").pipe(
      Options.withPseudoName("sha256"),
      Options.optional,
      Options.withDescription("A head hash printed by an earlier verify: it must still be in the chain (nothing was rewritten since).")
    )
  },
  (c) => Effect.flatMap(load, (m) => m.verify(c))
).pipe(Command.withDescription(
  "Prove the archive intact: recompute every sealed file's SHA-256 against the manifest, check the manifest's hash chain (and signatures with --public-key), look for duplicate ids and coverage holes. Names each problem; prints the chain's head hash. Exit 0 only when intact."
))

// ---------------------------------------------------------------------------------------------
// query
// ---------------------------------------------------------------------------------------------

const query = Command.make(
  "query",
  {
    out,
    from: optionalInstant("from", "Events created at or after this instant."),
    to: optionalInstant("to", "Events created before this instant."),
    resource: optionalText("resource", "name", "Only this resource, e.g. messages."),
    type: optionalText("type", "name", "Only this event type, e.g. deleted."),
    actor: optionalText("actor", "person-id", "Only events by this person id (actorId)."),
    id: optionalText("id", "event-id", "Only the event with this id."),
    text: optionalText("text", "substring", `Case-insensitive substring of a content field (data.${CONTENT_FIELDS.join(", data.")}).`),
    format: choice("format", ["ndjson", "csv"]).pipe(
      Options.withDefault("ndjson" as const),
      Options.withDescription("The output format: ndjson (default), each event exactly as archived, one per line; or csv, a flat table with a header row.")
    )
  },
  (c) => Effect.flatMap(load, (m) => m.query(c))
).pipe(Command.withDescription(
  "Print the archived events that match every filter, exactly as archived (one JSON object per line; pipe into jq), or as CSV. Reads open and sealed files; skips files that cannot match."
))

// ---------------------------------------------------------------------------------------------
// gaps
// ---------------------------------------------------------------------------------------------

const gaps = Command.make(
  "gaps",
  {
    out,
    json,
    from: optionalInstant("from", "Start of the range to check (default: the first covered instant)."),
    to: optionalInstant("to", "End of the range (default: now).")
  },
  (c) => Effect.flatMap(load, (m) => m.gaps(c))
).pipe(Command.withDescription(
  "Print the time intervals the archive does not cover between --from and --to, one ISO-8601 interval start/end per line (or --json). Exit 0 whether or not there are gaps."
))

// ---------------------------------------------------------------------------------------------
// keygen
// ---------------------------------------------------------------------------------------------

const keygen = Command.make(
  "keygen",
  {
    privateKey: Options.text("private-key").pipe(Options.withPseudoName("file"), Options.withDescription("Where to write the private key (PEM, 0600); keep it with the archiver.")),
    publicKey: Options.text("public-key").pipe(Options.withPseudoName("file"), Options.withDescription("Where to write the public key (PEM); give it to whoever verifies."))
  },
  (c) => Effect.flatMap(load, (m) => m.keygen(c))
).pipe(Command.withDescription("Create an Ed25519 key pair for signing the manifest (seal/run --signing-key, verify --public-key)."))

/** The evidence subcommands, for `Command.withSubcommands` in `Cli.ts`. */
export const commands = [seal, verify, query, gaps, keygen] as const

