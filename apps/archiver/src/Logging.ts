/**
 * The archiver's log lines: on stderr (stdout is for results), logfmt or JSON as `--log-format`
 * says, and safe whatever the server sent: every message and annotation goes through
 * `Redaction.safeText` (known secrets cut out, control characters escaped, long fields cut), so a
 * server cannot repaint the operator's terminal, forge a `level=ERROR` line or write 200 KB lines.
 */
import * as HashMap from "effect/HashMap"
import * as Layer from "effect/Layer"
import * as Logger from "effect/Logger"
import { safeText } from "./Redaction.js"

export type Format = "text" | "json"

const clean = (value: unknown): unknown =>
  typeof value === "string"
    ? safeText(value)
    : Array.isArray(value)
    ? value.map(clean)
    : value instanceof Error
    ? safeText(value.message)
    : value

/** `base`, with every message part and annotation value made safe first. */
export const sanitizing = <O>(base: Logger.Logger<unknown, O>): Logger.Logger<unknown, O> =>
  Logger.mapInputOptions(base, (options) => ({
    ...options,
    message: clean(options.message),
    annotations: HashMap.map(options.annotations, clean)
  }))

/** The logger for `format`: sanitised, one line per entry, written to stderr. */
export const logger = (format: Format): Logger.Logger<unknown, void> =>
  Logger.map(sanitizing(format === "json" ? Logger.jsonLogger : Logger.logfmtLogger), (line) => {
    process.stderr.write(`${line}\n`)
  })

/** The logger in place until the command line is parsed: text. One instance, so it can be replaced. */
const initial = logger("text")

/** Replaces Effect's default logger with the initial (text) one: for `main.ts`. */
export const layer: Layer.Layer<never> = Logger.replace(Logger.defaultLogger, initial)

/**
 * Replaces the initial logger with the one `--log-format` asked for. Replacing (not adding) keeps
 * one line per entry.
 */
export const withFormat = (format: Format): Layer.Layer<never> => Logger.replace(initial, logger(format))
