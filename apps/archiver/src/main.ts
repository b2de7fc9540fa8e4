/**
 * Entry point of `webex-archiver`. Logs go to stderr (logfmt, or JSON with `--log-format json`),
 * results to stdout. Any failure ends with one line on stderr and a non-zero exit code; SIGTERM
 * and SIGINT interrupt the program, which runs its finalizers (unlock, close files) and exits 0.
 */
import * as ValidationError from "@effect/cli/ValidationError"
import * as NodeContext from "@effect/platform-node/NodeContext"
import * as NodeRuntime from "@effect/platform-node/NodeRuntime"
import * as Cause from "effect/Cause"
import * as Console from "effect/Console"
import * as Effect from "effect/Effect"
import * as Logger from "effect/Logger"
import * as Option from "effect/Option"
import { messageOf } from "./ArchiveSession.js"
import { cli } from "./Cli.js"

// The logger must be in place before the command line is parsed, hence this early peek.
const json = process.argv.some((a, i) => a === "--log-format=json" || (a === "--log-format" && process.argv[i + 1] === "json"))
const logger = Logger.replace(
  Logger.defaultLogger,
  Logger.withConsoleError(json ? Logger.jsonLogger : Logger.logfmtLogger)
)

/**
 * `--log-level` is a built-in option of the top-level command in @effect/cli, accepted only
 * before the subcommand. Users put it anywhere (as with `--log-format`), so it is moved there.
 */
const hoistLogLevel = (argv: ReadonlyArray<string>): ReadonlyArray<string> => {
  const [node, script, ...rest] = argv
  const hoisted: Array<string> = []
  const others: Array<string> = []
  for (let i = 0; i < rest.length; i++) {
    const arg = rest[i]!
    if (arg === "--log-level" && i + 1 < rest.length) hoisted.push(arg, rest[++i]!)
    else if (arg.startsWith("--log-level=")) hoisted.push(arg)
    else others.push(arg)
  }
  return [node!, script!, ...hoisted, ...others]
}

const program = cli(hoistLogLevel(process.argv)).pipe(
  Effect.tapErrorCause((cause) => {
    // A stop signal is a clean exit, not an error.
    if (Cause.isInterruptedOnly(cause)) return Effect.void
    const failure = Cause.failureOption(cause)
    // @effect/cli has already printed its own explanation of a bad flag.
    if (Option.isSome(failure) && ValidationError.isValidationError(failure.value)) return Effect.void
    // A defect (e.g. @effect/cli's own check of --out failing with ENOTDIR) must not exit silently.
    return Console.error(`webex-archiver: ${messageOf(Option.isSome(failure) ? failure.value : Cause.squash(cause))}`)
  }),
  Effect.provide(NodeContext.layer),
  Effect.provide(logger)
)

// No pretty logger: it would print logs to stdout, which is for results only.
NodeRuntime.runMain(program, { disableErrorReporting: true, disablePrettyLogger: true })
