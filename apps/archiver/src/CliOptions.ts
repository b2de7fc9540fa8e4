/**
 * The builders both command modules (`Cli.ts`, `EvidenceCli.ts`) declare their flags with, so that
 * a flag means and reads the same in every command: a refused value names its flag, instants and
 * durations are parsed by `CliInput` (loaded when a value is parsed, not for `--help`), and the
 * archive directory and the file flags are declared once.
 */
import * as HelpDoc from "@effect/cli/HelpDoc"
import * as Options from "@effect/cli/Options"
import * as ValidationError from "@effect/cli/ValidationError"
import * as Config from "effect/Config"
import * as Effect from "effect/Effect"
import * as Either from "effect/Either"
import type * as CliInput from "./CliInput.js"

/** How an instant is written, for the descriptions of the flags that take one. */
export const INSTANT = "An ISO-8601 date-time with a zone (2024-05-01T00:00:00Z) or a date (2024-05-01, midnight UTC)."

/** A refused flag value: the message names the flag, as every error line of the CLI does. */
export const invalid = (flag: string, message: string) => ValidationError.invalidValue(HelpDoc.p(`${flag}: ${message}`))

/** A flag's value parsed by `parse`; a refusal names the flag. */
export const parsed = <A>(flag: string, parse: (s: string) => Either.Either<A, string>) => (s: string) =>
  Either.match(parse(s), { onLeft: (e) => Effect.fail(invalid(flag, e)), onRight: Effect.succeed })

// CliInput decodes instants with the library's schemas: loaded when a value is parsed, not for --help.
const cliInput = Effect.promise(() => import("./CliInput.js"))

/** A flag's value parsed by one of `CliInput`'s parsers; a refusal names the flag. */
export const parsedBy =
  <A>(flag: string, parser: (m: typeof CliInput) => (s: string) => Either.Either<A, string>) => (s: string) =>
    Effect.flatMap(cliInput, (m) => parsed(flag, parser(m))(s))

/** A flag taking an instant (`Options.optional` makes it optional). */
export const instant = (name: string) =>
  Options.text(name).pipe(Options.withPseudoName("date-time"), Options.mapEffect(parsedBy(`--${name}`, (m) => m.parseInstant)))

/**
 * `--out`, the archive directory (env ARCHIVE_DIR, default ./archive). Plain text, not
 * `Options.directory`: the archive's own checks explain a bad path better.
 */
export const archiveDir = (description: string) =>
  Options.text("out").pipe(
    Options.withPseudoName("directory"),
    Options.withFallbackConfig(Config.string("ARCHIVE_DIR")),
    Options.withDefault("./archive"),
    Options.withDescription(description)
  )

/** An optional flag taking text. */
export const optionalText = (name: string, pseudoName: string, description: string) =>
  Options.text(name).pipe(Options.withPseudoName(pseudoName), Options.optional, Options.withDescription(description))

/**
 * An optional flag naming a file (a secret, a key). Plain text, not `Options.file`: what reads the
 * file names it and says what is wrong with it (missing, unreadable, readable by others, not what
 * it should hold), a configuration error (exit 78).
 */
export const fileOption = (name: string, description: string) => optionalText(name, "file", description)

/**
 * One of a few words. @effect/cli's own `Options.choice` refuses a value without naming the flag;
 * this one names it, like every error line of the CLI.
 */
export const choice = <const C extends ReadonlyArray<string>>(name: string, choices: C) =>
  Options.text(name).pipe(
    Options.withPseudoName(choices.join(" | ")),
    Options.mapEffect((s) =>
      choices.includes(s)
        ? Effect.succeed(s as C[number])
        : Effect.fail(invalid(`--${name}`, `must be one of ${choices.join(", ")}, got ${JSON.stringify(s)}`))
    )
  )
