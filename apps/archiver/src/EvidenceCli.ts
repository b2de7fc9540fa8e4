/**
 * The evidence subcommands of `webex-archiver`: `seal`, `verify`, `query`, `gaps` and `keygen`.
 * Registered in `Cli.ts` as `...EvidenceCli.commands`.
 *
 * @since 0.2.0
 */
import * as Command from "@effect/cli/Command"
import * as HelpDoc from "@effect/cli/HelpDoc"
import * as Options from "@effect/cli/Options"
import * as ValidationError from "@effect/cli/ValidationError"
import { generateKeyPairSync } from "node:crypto"
import * as fs from "node:fs"
import * as fsp from "node:fs/promises"
import * as path from "node:path"
import * as Config from "effect/Config"
import * as Console from "effect/Console"
import * as Duration from "effect/Duration"
import * as Clock from "effect/Clock"
import * as Effect from "effect/Effect"
import * as Either from "effect/Either"
import * as Option from "effect/Option"
import * as Schema from "effect/Schema"
import { ArchiveWriteError } from "./ArchiveError.js"
import * as ArchiveLock from "./ArchiveLock.js"
import { loadCheckpoint } from "./Checkpoint.js"
import { parseDuration, parseInstant } from "./CliInput.js"
import { coveredMillis, gapsOf } from "./Gaps.js"
import * as Manifest from "./Manifest.js"
import * as Query from "./Query.js"
import * as Seal from "./Seal.js"
import * as Verify from "./Verify.js"

const INSTANT = "ISO-8601 with a zone (2024-05-01T00:00:00Z) or a date (2024-05-01, midnight UTC)."

const invalid = (message: string) => ValidationError.invalidValue(HelpDoc.p(message))
const fromEither = <A>(e: Either.Either<A, string>) =>
  Either.isRight(e) ? Effect.succeed(e.right) : Effect.fail(invalid(e.left))

const instant = (name: string, description: string) =>
  Options.text(name).pipe(
    Options.withPseudoName("date-time"),
    Options.mapEffect((s) => fromEither(parseInstant(s))),
    Options.optional,
    Options.withDescription(`${INSTANT} ${description}`)
  )

const out = Options.text("out").pipe(
  Options.withPseudoName("directory"),
  Options.withFallbackConfig(Config.string("ARCHIVE_DIR")),
  Options.withDefault("./archive"),
  Options.withDescription("Archive directory (env ARCHIVE_DIR; default ./archive).")
)

const optionalText = (name: string, description: string) =>
  Options.text(name).pipe(Options.optional, Options.withDescription(description))

const json = Options.boolean("json").pipe(Options.withDescription("Print JSON instead of text."))

/** A file to create: refused if it exists, so a key is never overwritten by accident. */
export class KeygenError extends Schema.TaggedError<KeygenError>()("KeygenError", {
  path: Schema.String,
  message: Schema.String
}) {}

/** A settle time: a duration, and 0 too (seal whatever is covered), unlike for intervals. */
export const parseSettle = (s: string) =>
  /^0+[smhd]?$/.test(s.trim()) ? Effect.succeed(Duration.zero) : fromEither(parseDuration(s))

/** `--signing-key`, shared by `seal`, `backfill` and `run`. */
export const signingKeyOption = Options.file("signing-key", { exists: "yes" }).pipe(
  Options.optional,
  Options.withDescription("Ed25519 private key (PEM, mode 0600) that signs every new manifest entry. See keygen.")
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
  (c) =>
    Effect.scoped(Effect.gen(function*() {
      const dir = path.resolve(c.out)
      const signingKey = Option.isSome(c.signingKey) ? yield* Manifest.loadSigningKey(c.signingKey.value) : undefined
      yield* ArchiveLock.acquire(dir)
      const state = yield* loadCheckpoint(dir)
      const r = yield* Seal.sealSettled({
        dir,
        coverage: Option.match(state, { onNone: () => [], onSome: coveredMillis }),
        now: Date.now(),
        settle: c.settle,
        signingKey
      })
      yield* Console.log(
        `Sealed ${r.sealed.length} file${r.sealed.length === 1 ? "" : "s"}` +
          (r.sealed.length > 0 ? ` (${r.sealed.join(", ")})` : "") +
          `, recorded ${r.emptyDays} empty day${r.emptyDays === 1 ? "" : "s"}` +
          (r.adopted.length > 0 ? `, completed ${r.adopted.length} interrupted seal(s)` : "") +
          ` → ${Manifest.manifestPath(dir)}`
      )
    }))
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
    publicKey: Options.file("public-key", { exists: "yes" }).pipe(
      Options.optional,
      Options.withDescription("Ed25519 public key (PEM): every manifest entry must carry a valid signature by its private key.")
    ),
    head: Options.text("head").pipe(
      Options.withPseudoName("sha256"),
      Options.optional,
      Options.withDescription("A head hash printed by an earlier verify: it must still be in the chain (nothing was rewritten since).")
    )
  },
  (c) =>
    Effect.gen(function*() {
      const dir = path.resolve(c.out)
      const publicKey = Option.isSome(c.publicKey) ? yield* Manifest.loadPublicKey(c.publicKey.value) : undefined
      const tty = process.stderr.isTTY === true
      const report = yield* Verify.verify({
        dir,
        publicKey,
        head: Option.getOrUndefined(c.head),
        progress: tty ? (done, total) => process.stderr.write(`\rverify: ${done}/${total} files`) : undefined
      })
      if (tty) process.stderr.write("\r\x1b[K")
      yield* Console.log(c.json ? JSON.stringify(report, null, 2) : Verify.formatReport(report))
      if (!report.intact) {
        return yield* new Verify.ArchiveNotIntact({
          path: dir,
          problems: report.problems.length,
          message: `The archive at ${dir} is NOT intact: ${report.problems.length} problem${
            report.problems.length === 1 ? "" : "s"
          } (listed on stdout)`
        })
      }
    })
).pipe(Command.withDescription(
  "Prove the archive intact: recompute every sealed file's SHA-256 against the manifest, check the manifest's hash chain (and signatures with --public-key), look for duplicate ids and coverage holes. Names each problem; prints the chain's head hash. Exit 0 only when intact."
))

// ---------------------------------------------------------------------------------------------
// query
// ---------------------------------------------------------------------------------------------

/**
 * Buffered, back-pressured writes to stdout. A reader that goes away (EPIPE: `| head -1`) ends
 * the output quietly: `write` then answers `false`. Any other failure (a full disk under
 * `> file`) is kept in `failure`, and must not pass unnoticed.
 */
const stdoutWriter = () => {
  const stdout = process.stdout
  let closed = false
  let failure: NodeJS.ErrnoException | undefined
  let buffer: Array<Buffer> = []
  let size = 0
  const onError = (e: NodeJS.ErrnoException) => {
    closed = true
    if (e.code !== "EPIPE" && e.code !== "ERR_STREAM_DESTROYED") failure ??= e
  }
  stdout.on("error", onError)
  const drain = () =>
    new Promise<void>((resolve) => {
      const done = () => {
        stdout.off("drain", done).off("close", done).off("error", done)
        resolve()
      }
      stdout.once("drain", done).once("close", done).once("error", done)
    })
  const flush = async () => {
    if (closed || buffer.length === 0) return
    const chunk = Buffer.concat(buffer)
    buffer = []
    size = 0
    if (!stdout.write(chunk)) await drain()
  }
  return {
    write: async (s: string | Buffer, end = ""): Promise<boolean> => {
      if (closed) return false
      buffer.push(typeof s === "string" ? Buffer.from(s + end, "utf8") : s, ...(end !== "" && typeof s !== "string" ? [Buffer.from(end)] : []))
      size += s.length + end.length
      if (size >= 64 * 1024) await flush()
      return !closed
    },
    end: async () => {
      await flush()
      // Let a pending EPIPE surface before the handler goes.
      await new Promise<void>((resolve) => stdout.write("", () => resolve()))
      stdout.off("error", onError)
      if (closed) stdout.on("error", () => undefined)
      return failure
    }
  }
}

const query = Command.make(
  "query",
  {
    out,
    from: instant("from", "Events created at or after this instant."),
    to: instant("to", "Events created before this instant."),
    resource: optionalText("resource", "Only this resource, e.g. messages."),
    type: optionalText("type", "Only this event type, e.g. deleted."),
    actor: optionalText("actor", "Only events by this person id (actorId)."),
    id: optionalText("id", "Only the event with this id."),
    text: optionalText("text", `Case-insensitive substring of a content field (data.${Query.CONTENT_FIELDS.join(", data.")}).`),
    format: Options.choice("format", ["ndjson", "csv"]).pipe(
      Options.withDefault("ndjson" as const),
      Options.withDescription("ndjson (default): each event exactly as archived, one per line; csv: a flat table with a header row.")
    )
  },
  (c) =>
    Effect.gen(function*() {
      const w = stdoutWriter()
      if (c.format === "csv") yield* Effect.promise(() => w.write(`${Query.CSV_COLUMNS.join(",")}\r\n`))
      const stats = yield* Query.run(path.resolve(c.out), {
        from: Option.getOrUndefined(c.from),
        to: Option.getOrUndefined(c.to),
        resource: Option.getOrUndefined(c.resource),
        type: Option.getOrUndefined(c.type),
        actorId: Option.getOrUndefined(c.actor),
        id: Option.getOrUndefined(c.id),
        text: Option.getOrUndefined(c.text)
      }, (line) => c.format === "csv" ? w.write(`${Query.csvRow(line.toString("utf8"))}\r\n`) : w.write(line, "\n"))
      const failure = yield* Effect.promise(() => w.end())
      if (failure !== undefined) {
        return yield* new ArchiveWriteError({
          path: "<stdout>",
          operation: "writing",
          message: `Failed writing the query's output: ${failure.message}`,
          ...(failure.code !== undefined ? { code: failure.code } : {})
        })
      }
      yield* Effect.logDebug("query done").pipe(Effect.annotateLogs({ ...stats }))
    })
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
    from: instant("from", "Start of the range to check (default: the first covered instant)."),
    to: instant("to", "End of the range (default: now).")
  },
  (c) =>
    Effect.gen(function*() {
      const state = yield* loadCheckpoint(path.resolve(c.out))
      const list = gapsOf(state, Option.getOrUndefined(c.from), Option.getOrUndefined(c.to) ?? (yield* Clock.currentTimeMillis))
      if (c.json) yield* Console.log(JSON.stringify(list))
      else for (const g of list) yield* Console.log(`${g.start}/${g.end}`)
    })
).pipe(Command.withDescription(
  "Print the time intervals the archive does not cover between --from and --to, one ISO-8601 interval start/end per line (or --json). Exit 0 whether or not there are gaps."
))

// ---------------------------------------------------------------------------------------------
// keygen
// ---------------------------------------------------------------------------------------------

const writeNew = (file: string, data: string, mode: number) =>
  Effect.tryPromise({
    try: async () => {
      const h = await fsp.open(file, fs.constants.O_WRONLY | fs.constants.O_CREAT | fs.constants.O_EXCL, mode)
      try {
        await h.chmod(mode)
        await h.writeFile(data, "utf8")
        await h.sync()
      } finally {
        await h.close()
      }
    },
    catch: (e) =>
      new KeygenError({
        path: file,
        message: (e as { code?: string }).code === "EEXIST"
          ? `${file} exists already: keygen never overwrites a key`
          : `Cannot write ${file}: ${e instanceof Error ? e.message : e}`
      })
  })

const keygen = Command.make(
  "keygen",
  {
    privateKey: Options.text("private-key").pipe(Options.withPseudoName("file"), Options.withDescription("Where to write the private key (PEM, 0600); keep it with the archiver.")),
    publicKey: Options.text("public-key").pipe(Options.withPseudoName("file"), Options.withDescription("Where to write the public key (PEM); give it to whoever verifies."))
  },
  (c) =>
    Effect.gen(function*() {
      const { privateKey, publicKey } = generateKeyPairSync("ed25519")
      yield* writeNew(c.privateKey, privateKey.export({ type: "pkcs8", format: "pem" }).toString(), 0o600)
      yield* writeNew(c.publicKey, publicKey.export({ type: "spki", format: "pem" }).toString(), 0o644)
      yield* Console.log(`Wrote the signing key ${c.privateKey} (0600) and the public key ${c.publicKey}`)
    })
).pipe(Command.withDescription("Create an Ed25519 key pair for signing the manifest (seal/run --signing-key, verify --public-key)."))

/** The evidence subcommands, for `Command.withSubcommands` in `Cli.ts`. */
export const commands = [seal, verify, query, gaps, keygen] as const

