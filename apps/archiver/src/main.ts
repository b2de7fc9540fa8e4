/**
 * Entry point of `webex-archiver`. Logs go to stderr (logfmt, or JSON with `--log-format json`),
 * results to stdout. Any failure ends with one line on stderr, `webex-archiver: …` naming the flag
 * or file at fault, and the exit code of `ExitCode.ts`; SIGTERM and SIGINT interrupt the program,
 * which runs its finalizers (unlock, close files) and exits 0.
 */
import * as Command from "@effect/cli/Command"
import * as Descriptor from "@effect/cli/CommandDescriptor"
import * as HelpDoc from "@effect/cli/HelpDoc"
import * as Usage from "@effect/cli/Usage"
import * as ValidationError from "@effect/cli/ValidationError"
import * as NodeContext from "@effect/platform-node/NodeContext"
import * as NodeRuntime from "@effect/platform-node/NodeRuntime"
import * as Cause from "effect/Cause"
import * as Console from "effect/Console"
import * as Effect from "effect/Effect"
import * as Exit from "effect/Exit"
import * as HashMap from "effect/HashMap"
import * as Option from "effect/Option"
import { cli, command } from "./Cli.js"
import { DecoderScript } from "./DecoderScript.js"
import * as ExitCode from "./ExitCode.js"
import * as Logging from "./Logging.js"
import { safeText } from "./Redaction.js"

// eslint-disable-next-line no-control-regex
const ANSI = /\u001b\[[0-9;?]*[A-Za-z]/g

const LOG_LEVELS = ["all", "trace", "debug", "info", "warning", "error", "fatal", "none"]

/**
 * `--log-level` is a built-in option of the top-level command in @effect/cli, accepted only
 * before the subcommand. Users put it anywhere (as with `--log-format`), so it is moved there.
 * Its value is checked here: @effect/cli would report a bad one as an "invalid subcommand".
 */
const hoistLogLevel = (argv: ReadonlyArray<string>) => {
  const [node, script, ...rest] = argv
  const hoisted: Array<string> = []
  const others: Array<string> = []
  let badLevel: string | undefined
  for (let i = 0; i < rest.length; i++) {
    const arg = rest[i]!
    const value = arg === "--log-level" && i + 1 < rest.length ? rest[i + 1]! : arg.startsWith("--log-level=") ? arg.slice(12) : undefined
    if (value === undefined) {
      others.push(arg)
      continue
    }
    if (arg === "--log-level") hoisted.push(arg, rest[++i]!)
    else hoisted.push(arg)
    if (!LOG_LEVELS.includes(value)) badLevel ??= value
  }
  return { argv: [node!, script!, ...hoisted, ...others], others, badLevel }
}

const BUILT_IN_FLAGS = new Set(["--help", "--wizard", "--version", "--completions", "--log-level"])

/**
 * The first `--flag` that the chosen subcommand does not have. @effect/cli, given one, reports
 * another flag as missing ("Expected to find option: '--from'" when --from is there), so a
 * refused command line is checked for it first.
 */
const unknownFlag = (args: ReadonlyArray<string>): string | undefined => {
  const [name, ...rest] = args
  if (name === undefined) return undefined
  const sub = HashMap.get(Command.getSubcommands(command), name)
  if (sub._tag === "None") return undefined
  const usage = HelpDoc.toAnsiText(Usage.getHelp(Descriptor.getUsage(sub.value))).replace(ANSI, "")
  const known = new Set(usage.match(/--[A-Za-z0-9][\w-]*/g) ?? [])
  const unknown = rest.map((a) => a.split("=")[0]!).find((f) => f.startsWith("--") && !known.has(f) && !BUILT_IN_FLAGS.has(f))
  return unknown === undefined ? undefined : `${name} has no flag ${safeText(unknown)} (see webex-archiver ${name} --help)`
}

/** Help and results in colour only for a person at a terminal who has not asked for none. */
const plain = !process.stdout.isTTY || (process.env.NO_COLOR !== undefined && process.env.NO_COLOR !== "")

/**
 * @effect/cli describes each option's type with generic text ("A user-defined piece of text.")
 * before our own words: in a help text those placeholders are dropped, every option keeps its
 * description.
 */
const PLACEHOLDER = /^\s*(A user-defined piece of text\.|A true or false value\.|An integer\.|A floating point number\.|One of the following: .*)\s*$/

/**
 * Without placeholders, and with a subcommand's usage line spelled as it is typed:
 * @effect/cli prints `$ backfill …` for `webex-archiver backfill …`.
 */
const cleanHelp = (text: string): string =>
  /\nUSAGE\n/.test(text.replace(ANSI, ""))
    ? text.split("\n").filter((l, i, all) => !PLACEHOLDER.test(l.replace(ANSI, "")) && !(l.trim() === "" && PLACEHOLDER.test((all[i - 1] ?? "").replace(ANSI, ""))))
      .map((l) => l.replace(/^((?:\u001b\[[0-9;]*m)*\$ )(?!webex-archiver\b)/, "$1webex-archiver ")).join("\n")
    : text

const forStdout = (a: unknown) => typeof a === "string" ? cleanHelp(plain ? a.replace(ANSI, "") : a) : a

/**
 * The console @effect/cli prints through: without ANSI escapes when `plain`, and without its own
 * rendering of a refused argument (a multi-line block), which `report` prints as one line instead.
 * Logs do not pass through here: `Logging.ts` writes them to stderr itself.
 */
const cliConsole = Effect.map(Console.consoleWith(Effect.succeed), (console): Console.Console => ({
  ...console,
  log: (...args) => console.log(...args.map(forStdout)),
  error: () => Effect.void,
  unsafe: {
    ...console.unsafe,
    log: (...args) => console.unsafe.log(...args.map(forStdout)),
    error: () => {}
  }
}))

/** One line, no colour, from @effect/cli's rendering of a refused argument. */
const flatten = (doc: HelpDoc.HelpDoc): string =>
  HelpDoc.toAnsiText(doc).replace(ANSI, "").split("\n").map((l) => l.trim()).filter((l) => l !== "").join(" ")

const say = (text: string) => Effect.sync(() => process.stderr.write(`webex-archiver: ${text}\n`))

const args = hoistLogLevel(process.argv)

/** The one line the user reads about a failure. */
const report = (cause: Cause.Cause<unknown>): Effect.Effect<void> => {
  // A stop signal is a clean exit, not an error.
  if (Cause.isInterruptedOnly(cause)) return Effect.void
  const failure = Cause.failureOption(cause)
  if (Option.isSome(failure) && ValidationError.isValidationError(failure.value)) {
    return say(unknownFlag(args.others) ?? safeText(flatten(failure.value.error)))
  }
  // Any other failure comes from a command that ran, which has loaded the library already;
  // loading FailureMessage on this path alone keeps it out of `--help` and a refused flag.
  return Effect.flatMap(Effect.promise(() => import("./FailureMessage.js")), ({ messageOf }) =>
    say(Option.match(failure, {
      onNone: () => `internal error: ${messageOf(Cause.squash(cause))}`,
      onSome: messageOf
    })))
}

const program = Effect.flatMap(cliConsole, (console) =>
  (args.badLevel !== undefined
    ? Effect.fail(ValidationError.invalidValue(HelpDoc.p(
      `--log-level: must be one of ${LOG_LEVELS.join(", ")}, got ${JSON.stringify(args.badLevel)}`
    )))
    : cli(args.argv)).pipe(
    Effect.withConsole(console),
    Effect.tapErrorCause(report),
    Effect.provide(NodeContext.layer),
    // The bundle's page decoder thread, beside this file (scripts/build.mjs builds both).
    Effect.provideService(DecoderScript, new URL("./sortWorker.mjs", import.meta.url)),
    // Text until the command line is parsed; each command then installs the format it was given.
    Effect.provide(Logging.layer)
  ))

// No pretty logger: it would print logs to stdout, which is for results only.
NodeRuntime.runMain(program, {
  disableErrorReporting: true,
  disablePrettyLogger: true,
  teardown: (exit, onExit) => onExit(Exit.isSuccess(exit) ? ExitCode.OK : ExitCode.ofCause(exit.cause))
})
