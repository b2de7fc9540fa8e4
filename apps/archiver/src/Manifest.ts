/**
 * `manifest.ndjson`: the archive's append-only, hash-chained record of what was sealed.
 *
 * One JSON object per line. Each entry carries `prev`, the SHA-256 (hex) of the previous entry's
 * line bytes (64 zeros for the first), and `seq`, its position: an entry edited, removed or
 * reordered breaks the chain at the next entry. The last line's hash is the chain's *head*: an
 * operator who keeps it elsewhere can later prove that nothing before it was rewritten. With a
 * signing key every entry also carries `sig`, an Ed25519 signature of the line without it, so an
 * archive rewritten wholesale (chain recomputed) is still caught by `verify --public-key`.
 *
 * Each append is one write and an fsync; a torn last line (a crash mid-append) was never complete,
 * and is cut off by the next seal (its segment is then adopted again, see `Seal.ts`).
 *
 * @since 0.2.0
 */
import { createHash, createPrivateKey, createPublicKey, type KeyObject, sign, verify } from "node:crypto"
import * as fsp from "node:fs/promises"
import * as path from "node:path"
import * as Effect from "effect/Effect"
import * as Either from "effect/Either"
import * as Schema from "effect/Schema"
import { appendLines, layout, readIfExists, repairTail } from "./internal/archiveFs.js"

export const GENESIS = "0".repeat(64)

export const manifestPath = (dir: string) => path.join(layout(dir).root, "manifest.ndjson")

const Hex64 = Schema.String.pipe(Schema.pattern(/^[0-9a-f]{64}$/))
const Count = Schema.NonNegativeInt

/** A covered window, `[from, through)`, ISO-8601. */
export const Window = Schema.Struct({ from: Schema.String, through: Schema.String })
export interface Window extends Schema.Schema.Type<typeof Window> {}

const Common = {
  v: Schema.Literal(1),
  seq: Count,
  day: Schema.String,
  /** What the checkpoint proved covered on this day when the entry was written (empty windows too). */
  covered: Schema.Array(Window),
  sealedAt: Schema.String,
  prev: Hex64
}

/** A sealed segment: a gzip file under `events/`, never rewritten. */
export const SegmentEntry = Schema.Struct({
  kind: Schema.Literal("segment"),
  ...Common,
  /** Relative to the archive root, e.g. `events/2024-05-01.ndjson.gz`. */
  path: Schema.String,
  segment: Schema.Int,
  /** SHA-256 and size of the file as stored (compressed). */
  sha256: Hex64,
  bytes: Count,
  /** SHA-256 and size of its events once decompressed: the exact lines as archived. */
  content: Schema.Struct({ sha256: Hex64, bytes: Count }),
  lines: Count,
  byResource: Schema.Record({ key: Schema.String, value: Count }),
  minCreated: Schema.NullOr(Schema.String),
  maxCreated: Schema.NullOr(Schema.String)
})
export interface SegmentEntry extends Schema.Schema.Type<typeof SegmentEntry> {}

/** A covered day that holds no events at all: the proof that Webex was asked and had nothing. */
export const EmptyDayEntry = Schema.Struct({ kind: Schema.Literal("empty"), ...Common })
export interface EmptyDayEntry extends Schema.Schema.Type<typeof EmptyDayEntry> {}

/**
 * A quarantine file (`quarantine/DAY.ndjson`, items set aside on the UTC day DAY) recorded once
 * that day is over and nothing is appended to it any more: the evidence of what the archive could
 * not file (junk items, variants, moved-day copies) is chained like the events.
 */
export const QuarantineEntry = Schema.Struct({
  kind: Schema.Literal("quarantine"),
  v: Common.v,
  seq: Common.seq,
  /** The day the items were quarantined (not the day of their events). */
  day: Common.day,
  sealedAt: Common.sealedAt,
  prev: Common.prev,
  /** Relative to the archive root, e.g. `quarantine/2024-05-01.ndjson`. */
  path: Schema.String,
  /** SHA-256 and size of the file's bytes, and its line count. */
  sha256: Hex64,
  bytes: Count,
  lines: Count
})
export interface QuarantineEntry extends Schema.Schema.Type<typeof QuarantineEntry> {}

export const Entry = Schema.Union(SegmentEntry, EmptyDayEntry, QuarantineEntry)
export type Entry = SegmentEntry | EmptyDayEntry | QuarantineEntry

/** An entry before it is chained: `seq` and `prev` are filled in when it is appended. */
export type Draft = Entry extends infer E ? E extends Entry ? Omit<E, "seq" | "prev" | "v"> : never : never

const decodeEntry = Schema.decodeUnknownEither(Entry)

export const hashLine = (line: string): string => createHash("sha256").update(line, "utf8").digest("hex")

const SIG = /,"sig":"([A-Za-z0-9+/=]*)"\}$/

/** The line without its signature (the signed bytes), and the signature. */
export const splitSignature = (line: string): { readonly body: string; readonly sig: string | undefined } => {
  const m = SIG.exec(line)
  return m === null ? { body: line, sig: undefined } : { body: `${line.slice(0, m.index)}}`, sig: m[1]! }
}

export const signLine = (body: string, key: KeyObject): string =>
  `${body.slice(0, -1)},"sig":"${sign(null, Buffer.from(body, "utf8"), key).toString("base64")}"}`

export const verifyLine = (body: string, sig: string, key: KeyObject): boolean => {
  try {
    return verify(null, Buffer.from(body, "utf8"), key, Buffer.from(sig, "base64"))
  } catch {
    return false
  }
}

/** Parses one manifest line: the entry, or why it is not one. */
export const parseLine = (line: string): Either.Either<Entry, string> => {
  let json: unknown
  try {
    json = JSON.parse(line)
  } catch {
    return Either.left("not JSON")
  }
  if (typeof json === "object" && json !== null && "sig" in json) delete (json as { sig?: unknown }).sig
  return Either.mapLeft(decodeEntry(json), () => "not a manifest entry")
}

export interface ChainedLine {
  readonly line: string
  readonly entry: Entry
}

/**
 * The manifest's text, read without following a link (a link or a special file there is an
 * `UnsafePath`); `undefined` when there is none.
 */
export const readManifestText = (dir: string): Promise<string | undefined> => readIfExists(manifestPath(dir))

/**
 * Reads the whole manifest (entries are small: one per sealed file or empty day). Missing file:
 * no entries. Lines that do not parse are skipped here; `verify` reads the raw lines itself.
 */
export const readEntries = async (dir: string): Promise<ReadonlyArray<ChainedLine>> => {
  // Never through a link: a planted `manifest.ndjson` link is an `UnsafePath`, not a chain.
  const text = await readManifestText(dir)
  if (text === undefined) return []
  const out: Array<ChainedLine> = []
  for (const line of text.split("\n")) {
    if (line === "") continue
    const entry = parseLine(line)
    if (Either.isRight(entry)) out.push({ line, entry: entry.right })
  }
  return out
}

/** The head hash of a manifest whose last line is `lastLine` (GENESIS when empty). */
export const headOf = (lastLine: string | undefined): string => lastLine === undefined ? GENESIS : hashLine(lastLine)

/**
 * Appends entries to the manifest, chained after `lastLine`, in one durable write. Cuts a torn
 * last line first (never acknowledged). Returns the new last line.
 */
export const appendEntries = async (
  dir: string,
  lastLine: string | undefined,
  nextSeq: number,
  drafts: ReadonlyArray<Draft>,
  signingKey: KeyObject | undefined
): Promise<string | undefined> => {
  if (drafts.length === 0) return lastLine
  let prevLine = lastLine
  let seq = nextSeq
  const lines: Array<string> = []
  for (const draft of drafts) {
    const { kind, ...rest } = draft
    // `kind`, `v`, `seq` first: a reader of the file sees what each line is at a glance.
    const body = JSON.stringify({ kind, v: 1 as const, seq, ...rest, prev: headOf(prevLine) })
    const line = signingKey !== undefined ? signLine(body, signingKey) : body
    lines.push(line)
    prevLine = line
    seq++
  }
  await appendLines(manifestPath(dir), Buffer.from(lines.map((l) => `${l}\n`).join(""), "utf8"))
  return prevLine
}

/** Cuts a torn last line (a crash mid-append) off the manifest. */
export const repairManifest = (dir: string): Promise<number> => repairTail(manifestPath(dir))

// ---------------------------------------------------------------------------------------------
// Keys
// ---------------------------------------------------------------------------------------------

/** A signing or verifying key that cannot be used, or a key file that is not safe. */
export class KeyError extends Schema.TaggedError<KeyError>()("KeyError", {
  path: Schema.String,
  message: Schema.String
}) {}

const readKeyFile = (file: string) =>
  Effect.tryPromise({
    try: () => fsp.readFile(file, "utf8"),
    catch: (e) => new KeyError({ path: file, message: `Cannot read the key file ${file}: ${e instanceof Error ? e.message : e}` })
  })

/**
 * Loads an Ed25519 private key (PEM). The file must be the owner's alone (0600 or stricter): a key
 * others can read can sign a forged manifest.
 */
export const loadSigningKey = (file: string): Effect.Effect<KeyObject, KeyError> =>
  Effect.gen(function*() {
    const st = yield* Effect.tryPromise({
      try: () => fsp.stat(file),
      catch: (e) => new KeyError({ path: file, message: `Cannot read the signing key ${file}: ${e instanceof Error ? e.message : e}` })
    })
    if ((st.mode & 0o077) !== 0) {
      return yield* new KeyError({
        path: file,
        message: `The signing key ${file} is readable by others (mode ${(st.mode & 0o777).toString(8)}): run chmod 600 ${file}`
      })
    }
    const pem = yield* readKeyFile(file)
    return yield* Effect.try({
      try: () => {
        const key = createPrivateKey(pem)
        if (key.asymmetricKeyType !== "ed25519") throw new Error(`a ${key.asymmetricKeyType} key, not Ed25519`)
        return key
      },
      catch: (e) => new KeyError({ path: file, message: `The signing key ${file} is not an Ed25519 private key (PEM): ${e instanceof Error ? e.message : e}` })
    })
  })

/** Loads an Ed25519 public key (PEM) for `verify --public-key`. */
export const loadPublicKey = (file: string): Effect.Effect<KeyObject, KeyError> =>
  Effect.flatMap(readKeyFile(file), (pem) =>
    Effect.try({
      try: () => {
        const key = createPublicKey(pem)
        if (key.asymmetricKeyType !== "ed25519") throw new Error(`a ${key.asymmetricKeyType} key, not Ed25519`)
        return key
      },
      catch: (e) => new KeyError({ path: file, message: `The public key ${file} is not an Ed25519 public key (PEM): ${e instanceof Error ? e.message : e}` })
    }))

