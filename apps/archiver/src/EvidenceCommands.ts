/**
 * What `seal`, `verify`, `query`, `gaps` and `keygen` do once their command line is parsed.
 * `EvidenceCli.ts` declares those commands and loads this module with `import()` only when one of
 * them runs, so that `--help` does not load the archive's code.
 *
 * @since 0.2.0
 */
import { generateKeyPairSync } from "node:crypto"
import * as fs from "node:fs"
import * as fsp from "node:fs/promises"
import * as path from "node:path"
import * as Clock from "effect/Clock"
import * as Console from "effect/Console"
import type * as Duration from "effect/Duration"
import * as Effect from "effect/Effect"
import * as Option from "effect/Option"
import * as Schema from "effect/Schema"
import { ArchiveWriteError, existingArchive } from "./ArchiveError.js"
import * as ArchiveLock from "./ArchiveLock.js"
import { loadCheckpoint } from "./Checkpoint.js"
import { coveredMillis, gapsOf } from "./Gaps.js"
import * as Manifest from "./Manifest.js"
import * as Query from "./Query.js"
import * as Seal from "./Seal.js"
import * as Verify from "./Verify.js"

/** A file to create: refused if it exists, so a key is never overwritten by accident. */
export class KeygenError extends Schema.TaggedError<KeygenError>()("KeygenError", {
  path: Schema.String,
  message: Schema.String
}) {}

export const seal = (c: { readonly out: string; readonly settle: Duration.Duration; readonly signingKey: Option.Option<string> }) =>
  Effect.scoped(Effect.gen(function*() {
    const dir = yield* existingArchive(c.out)
    const signingKey = Option.isSome(c.signingKey) ? yield* Manifest.loadSigningKey(c.signingKey.value) : undefined
    yield* ArchiveLock.acquire(dir)
    const state = yield* loadCheckpoint(dir)
    const r = yield* Seal.sealSettled({
      dir,
      coverage: Option.match(state, { onNone: () => [], onSome: coveredMillis }),
      now: yield* Clock.currentTimeMillis,
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

export const verify = (c: { readonly out: string; readonly json: boolean; readonly publicKey: Option.Option<string>; readonly head: Option.Option<string> }) =>
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

/** The filters of `query`, as parsed. */
export interface QueryOptions {
  readonly out: string
  readonly from: Option.Option<number>
  readonly to: Option.Option<number>
  readonly resource: Option.Option<string>
  readonly type: Option.Option<string>
  readonly actor: Option.Option<string>
  readonly id: Option.Option<string>
  readonly text: Option.Option<string>
  readonly format: "ndjson" | "csv"
}

export const query = (c: QueryOptions) =>
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

export const gaps = (c: { readonly out: string; readonly json: boolean; readonly from: Option.Option<number>; readonly to: Option.Option<number> }) =>
  Effect.gen(function*() {
    const state = yield* loadCheckpoint(yield* existingArchive(c.out))
    const list = gapsOf(state, Option.getOrUndefined(c.from), Option.getOrUndefined(c.to) ?? (yield* Clock.currentTimeMillis))
    if (c.json) yield* Console.log(JSON.stringify(list))
    else for (const g of list) yield* Console.log(`${g.start}/${g.end}`)
  })

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

export const keygen = (c: { readonly privateKey: string; readonly publicKey: string }) =>
  Effect.gen(function*() {
    const { privateKey, publicKey } = generateKeyPairSync("ed25519")
    yield* writeNew(c.privateKey, privateKey.export({ type: "pkcs8", format: "pem" }).toString(), 0o600)
    yield* writeNew(c.publicKey, publicKey.export({ type: "spki", format: "pem" }).toString(), 0o644)
    yield* Console.log(`Wrote the signing key ${c.privateKey} (0600) and the public key ${c.publicKey}`)
  })
