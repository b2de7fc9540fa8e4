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

/** Replaces the default logger with the one for `format`. */
export const layer = (format: Format): Layer.Layer<never> => Logger.replace(Logger.defaultLogger, logger(format))
