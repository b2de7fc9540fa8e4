/**
 * The app's own failures (as opposed to the library's and the storage layer's): data with the
 * flag or setting at fault, and a message computed from it, in the `AiError` shape.
 *
 * @since 0.1.0
 */
import * as Schema from "effect/Schema"

/** The command cannot start as asked (exit 64): nothing was written. */
export class ArchiverUsageError extends Schema.TaggedError<ArchiverUsageError>()("ArchiverUsageError", {
  /** The flag at fault, e.g. `--from`, when one is. */
  flag: Schema.optional(Schema.String),
  /** What is wrong with it, for the user. */
  problem: Schema.String
}) {
  override get message(): string {
    return this.flag === undefined ? this.problem : `${this.flag}: ${this.problem}`
  }
}

/** A setting (flag or environment variable) that cannot work, found before any request (exit 78). */
export class ArchiverConfigError extends Schema.TaggedError<ArchiverConfigError>()("ArchiverConfigError", {
  /** `--base-url`, `WEBEX_BASE_URL`, …: where the bad value came from. */
  setting: Schema.String,
  problem: Schema.String
}) {
  override get message(): string {
    return `${this.setting}: ${this.problem}`
  }
}
