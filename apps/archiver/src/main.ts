/**
 * Entry point of `webex-archiver`. Logs go to stderr (logfmt, or JSON with `--log-format json`),
 * results to stdout. Any failure ends with one line on stderr and a non-zero exit code; SIGTERM
 * and SIGINT interrupt the program, which runs its finalizers (unlock, close files) and exits 0.
 */
import * as ValidationError from "@effect/cli/ValidationError"
import * as NodeContext from "@effect/platform-node/NodeContext"
import * as NodeRuntime from "@effect/platform-node/NodeRuntime"
import * as Console from "effect/Console"
import * as Effect from "effect/Effect"
import * as Logger from "effect/Logger"
import { messageOf } from "./ArchiveSession.js"
import { cli } from "./Cli.js"

// The logger must be in place before the command line is parsed, hence this early peek.
const json = process.argv.some((a, i) => a === "--log-format=json" || (a === "--log-format" && process.argv[i + 1] === "json"))
const logger = Logger.replace(
  Logger.defaultLogger,
  Logger.withConsoleError(json ? Logger.jsonLogger : Logger.logfmtLogger)
)

const program = cli(process.argv).pipe(
  Effect.tapError((e) =>
    // @effect/cli has already printed its own explanation of a bad flag.
    ValidationError.isValidationError(e) ? Effect.void : Console.error(`webex-archiver: ${messageOf(e)}`)
  ),
  Effect.provide(NodeContext.layer),
  Effect.provide(logger)
)

NodeRuntime.runMain(program, { disableErrorReporting: true })
