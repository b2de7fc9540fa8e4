/**
 * Durable file-system primitives shared by the storage modules: the archive layout, explicit
 * modes, fsync of files and directories, atomic replace, torn-tail repair and line streaming.
 *
 * Node's `fs/promises` is used directly because durability needs what `@effect/platform`'s
 * FileSystem does not expose together: `O_EXCL`, `fchmod`, `ftruncate`, `fsync` on directories.
 *
 * @internal
 */
import * as fs from "node:fs"
import * as fsp from "node:fs/promises"
import * as path from "node:path"
import * as readline from "node:readline"
import * as Effect from "effect/Effect"
import { ArchiveReadError, ArchiveWriteError } from "../ArchiveError.js"

export const FILE_MODE = 0o600
export const DIR_MODE = 0o700

/** Where everything lives inside an archive directory (see `NdjsonSink.ts` for the layout). */
export const layout = (dir: string) => {
  const root = path.resolve(dir)
  const state = path.join(root, "state")
  return {
    root,
    events: path.join(root, "events"),
    quarantine: path.join(root, "quarantine"),
    state,
    checkpoint: path.join(state, "checkpoint.json"),
    checkpointTmp: path.join(state, "checkpoint.json.tmp"),
    lock: path.join(state, "archiver.lock"),
    lastError: path.join(state, "last-error.json"),
    lastErrorTmp: path.join(state, "last-error.json.tmp")
  } as const
}

export const DAY = /^\d{4}-\d{2}-\d{2}$/
export const DAY_FILE = /^(\d{4}-\d{2}-\d{2})\.ndjson$/

/** `YYYY-MM-DD` and a real calendar day (no `2024-02-30`). */
export const isDay = (day: string): boolean => {
  if (!DAY.test(day)) return false
  const d = new Date(`${day}T00:00:00.000Z`)
  return !Number.isNaN(d.getTime()) && d.toISOString().slice(0, 10) === day
}

// ---------------------------------------------------------------------------------------------
// Errors
// ---------------------------------------------------------------------------------------------

export const errnoCode = (e: unknown): string | undefined =>
  typeof e === "object" && e !== null && "code" in e && typeof e.code === "string" ? e.code : undefined

const HUMAN: Record<string, string> = {
  ENOSPC: "No space left on device",
  EDQUOT: "Disk quota exceeded",
  EFBIG: "File too large",
  EACCES: "Permission denied",
  EPERM: "Operation not permitted",
  EROFS: "Read-only file system",
  ENOTDIR: "Not a directory (a file is where a directory should be)",
  EISDIR: "Is a directory (a directory is where a file should be)",
  ENOENT: "No such file or directory",
  EIO: "Input/output error (the disk or file system may be failing)",
  EMFILE: "Too many open files",
  ENFILE: "Too many open files in the system",
  ELOOP: "Too many levels of symbolic links",
  ENAMETOOLONG: "File name too long"
}

const HINT: Record<string, string> = {
  ENOSPC: "free some space and run again; the archive is intact up to its last checkpoint",
  EDQUOT: "raise the quota or free some space and run again",
  EACCES: "check the owner and permissions of the archive directory",
  EPERM: "check the owner and permissions of the archive directory",
  EROFS: "the archive must live on a writable file system",
  ENOTDIR: "remove or rename the file that is in the way"
}

const describe = (operation: string, file: string, cause: unknown) => {
  const code = errnoCode(cause)
  const human = code !== undefined ? HUMAN[code] : undefined
  const detail = cause instanceof Error ? cause.message : String(cause)
  const hint = code !== undefined ? HINT[code] : undefined
  const message = human !== undefined
    ? `${human} while ${operation} ${file}${hint !== undefined ? `: ${hint}` : ""}`
    : `Failed while ${operation} ${file}: ${detail}`
  return code !== undefined ? { code, message } : { message }
}

/** A failure inside a multi-step async operation, remembering which step and which file. */
export class StepFailure extends Error {
  constructor(readonly file: string, readonly operation: string, override readonly cause: unknown) {
    super(`${operation} ${file}`)
  }
}

/** Runs one step of an async operation, labelling its failure. */
export const at = async <A>(file: string, operation: string, f: () => Promise<A>): Promise<A> => {
  try {
    return await f()
  } catch (e) {
    throw e instanceof StepFailure ? e : new StepFailure(file, operation, e)
  }
}

export const toWriteError = (file: string, operation: string, e: unknown): ArchiveWriteError => {
  const f = e instanceof StepFailure ? e : new StepFailure(file, operation, e)
  return new ArchiveWriteError({ path: f.file, operation: f.operation, ...describe(f.operation, f.file, f.cause) })
}

export const toReadError = (file: string, operation: string, e: unknown): ArchiveReadError => {
  const f = e instanceof StepFailure ? e : new StepFailure(file, operation, e)
  return new ArchiveReadError({ path: f.file, operation: f.operation, ...describe(f.operation, f.file, f.cause) })
}

/** An async write-path operation as an Effect failing with {@link ArchiveWriteError}. */
export const tryWrite = <A>(
  file: string,
  operation: string,
  f: (signal: AbortSignal) => Promise<A>
): Effect.Effect<A, ArchiveWriteError> =>
  Effect.tryPromise({ try: f, catch: (e) => toWriteError(file, operation, e) })

/** An async read-only operation as an Effect failing with {@link ArchiveReadError}. */
export const tryRead = <A>(
  file: string,
  operation: string,
  f: (signal: AbortSignal) => Promise<A>
): Effect.Effect<A, ArchiveReadError> =>
  Effect.tryPromise({ try: f, catch: (e) => toReadError(file, operation, e) })

// ---------------------------------------------------------------------------------------------
// Directories and modes
// ---------------------------------------------------------------------------------------------

/** fsync a directory, so that entries created, renamed or removed in it survive a power loss. */
export const fsyncDir = async (dir: string): Promise<void> => {
  const h = await at(dir, "opening directory", () => fsp.open(dir, fs.constants.O_RDONLY | fs.constants.O_DIRECTORY))
  try {
    await at(dir, "syncing directory", async () => {
      try {
        await h.sync()
      } catch (e) {
        // A few file systems refuse fsync on directories; there is nothing more to do there.
        if (errnoCode(e) !== "EINVAL") throw e
      }
    })
  } finally {
    await h.close().catch(() => undefined)
  }
}

/** Creates `dir` (0700 whatever the umask) if needed, or tightens an existing one to 0700. */
export const ensureDir = async (dir: string): Promise<void> => {
  let created = false
  try {
    await fsp.mkdir(dir, { mode: DIR_MODE })
    created = true
  } catch (e) {
    const code = errnoCode(e)
    if (code === "ENOENT") {
      // The parent is missing too: create the whole path (only `dir` itself gets 0700 below).
      await at(dir, "creating directory", () => fsp.mkdir(dir, { recursive: true, mode: DIR_MODE }))
      created = true
    } else if (code !== "EEXIST") {
      throw new StepFailure(dir, "creating directory", e)
    }
  }
  const st = await at(dir, "checking directory", () => fsp.stat(dir))
  if (!st.isDirectory()) {
    throw new StepFailure(
      dir,
      "creating directory",
      Object.assign(new Error(`ENOTDIR: not a directory, ${dir}`), { code: "ENOTDIR" })
    )
  }
  if ((st.mode & 0o777) !== DIR_MODE) {
    await at(dir, "setting permissions on", () => fsp.chmod(dir, DIR_MODE))
  }
  if (created) await fsyncDir(path.dirname(dir))
}

/** Tightens every regular file directly in `dir` to 0600 (symlinks are left alone). */
export const tightenFiles = async (dir: string): Promise<void> => {
  const names = await at(dir, "listing", () => fsp.readdir(dir))
  for (const name of names) {
    const file = path.join(dir, name)
    const st = await at(file, "checking", () => fsp.lstat(file))
    if (st.isFile() && (st.mode & 0o777) !== FILE_MODE) {
      await at(file, "setting permissions on", () => fsp.chmod(file, FILE_MODE))
    }
  }
}

/** Creates the archive's directories with their modes and tightens existing files. */
export const ensureArchiveLayout = (dir: string): Effect.Effect<void, ArchiveWriteError> => {
  const l = layout(dir)
  return tryWrite(l.root, "preparing", async () => {
    await ensureDir(l.root)
    for (const sub of [l.events, l.quarantine, l.state]) {
      await ensureDir(sub)
      await tightenFiles(sub)
    }
  })
}

// ---------------------------------------------------------------------------------------------
// Files
// ---------------------------------------------------------------------------------------------

/**
 * Replaces `target` atomically: write `tmp` (0600), fsync it, rename it over `target`, fsync the
 * directory. A crash at any instant leaves either the old or the new content at `target`.
 */
export const writeFileAtomic = async (target: string, tmp: string, data: string): Promise<void> => {
  try {
    const h = await at(tmp, "creating", () => fsp.open(tmp, "w", FILE_MODE))
    try {
      await at(tmp, "setting permissions on", () => h.chmod(FILE_MODE))
      await at(tmp, "writing", () => h.writeFile(data, "utf8"))
      await at(tmp, "syncing", () => h.sync())
    } finally {
      await h.close().catch(() => undefined)
    }
    await at(target, "replacing", () => fsp.rename(tmp, target))
  } catch (e) {
    await fsp.unlink(tmp).catch(() => undefined)
    throw e
  }
  await fsyncDir(path.dirname(target))
}

/** Reads a small file as text; `undefined` when it does not exist. */
export const readIfExists = async (file: string): Promise<string | undefined> => {
  try {
    return await fsp.readFile(file, "utf8")
  } catch (e) {
    if (errnoCode(e) === "ENOENT") return undefined
    throw new StepFailure(file, "reading", e)
  }
}

const NL = 0x0a
const TAIL_CHUNK = 64 * 1024

/**
 * The length of the file's complete-lines prefix: the offset just after its last `\n` (0 when
 * there is none). Reads backwards from the end, so only the torn tail is read, never the file.
 */
export const completeLength = async (h: fsp.FileHandle, size: number): Promise<number> => {
  if (size === 0) return 0
  const last = Buffer.alloc(1)
  await h.read(last, 0, 1, size - 1)
  if (last[0] === NL) return size
  const buf = Buffer.allocUnsafe(TAIL_CHUNK)
  let end = size
  while (end > 0) {
    const start = Math.max(0, end - TAIL_CHUNK)
    const { bytesRead } = await h.read(buf, 0, end - start, start)
    const i = buf.subarray(0, bytesRead).lastIndexOf(NL)
    if (i >= 0) return start + i + 1
    end = start
  }
  return 0
}

/**
 * Cuts a torn last line (left by a crash mid-append) off an NDJSON file. Returns the number of
 * bytes removed (0 when the file ends with `\n`, is empty, missing or not a regular file).
 */
export const repairTail = async (file: string): Promise<number> => {
  let h: fsp.FileHandle
  try {
    h = await fsp.open(file, fs.constants.O_RDWR)
  } catch (e) {
    if (errnoCode(e) === "ENOENT") return 0
    throw new StepFailure(file, "opening", e)
  }
  try {
    const st = await at(file, "checking", () => h.stat())
    if (!st.isFile()) return 0
    const keep = await at(file, "reading the end of", () => completeLength(h, st.size))
    if (keep === st.size) return 0
    await at(file, "truncating a torn line off", () => h.truncate(keep))
    await at(file, "syncing", () => h.sync())
    return st.size - keep
  } finally {
    await h.close().catch(() => undefined)
  }
}

/** The `.ndjson` day files directly in `dir`, sorted by day; empty if `dir` does not exist. */
export const dayFiles = async (dir: string): Promise<ReadonlyArray<{ day: string; file: string }>> => {
  let names: Array<string>
  try {
    names = await fsp.readdir(dir)
  } catch (e) {
    if (errnoCode(e) === "ENOENT") return []
    throw new StepFailure(dir, "listing", e)
  }
  const out: Array<{ day: string; file: string }> = []
  for (const name of names.sort()) {
    const m = DAY_FILE.exec(name)
    if (m !== null) out.push({ day: m[1]!, file: path.join(dir, name) })
  }
  return out
}

/**
 * Calls `onLine` for every non-empty line of a regular file, streaming (constant memory however
 * large the file). A missing file or a non-regular one (a device, a FIFO) has no lines.
 */
export const forEachLine = async (
  file: string,
  onLine: (line: string) => void,
  signal?: AbortSignal
): Promise<void> => {
  let st: fs.Stats
  try {
    st = await fsp.stat(file)
  } catch (e) {
    if (errnoCode(e) === "ENOENT") return
    throw new StepFailure(file, "reading", e)
  }
  if (!st.isFile()) return
  await at(file, "reading", async () => {
    const input = fs.createReadStream(file, signal !== undefined ? { encoding: "utf8", signal } : { encoding: "utf8" })
    const lines = readline.createInterface({ input, crlfDelay: Infinity })
    try {
      for await (const line of lines) {
        if (line.length > 0) onLine(line)
      }
    } finally {
      lines.close()
      input.destroy()
    }
  })
}

// Events archived as the API sent them almost always start with their id: read it without parsing.
const LEADING_ID = /^\{\s*"id"\s*:\s*"([^"\\]*)"\s*[,}]/

/** The top-level `id` of a JSON object text, or `undefined` if it has none or is not JSON. */
export const extractId = (line: string): string | undefined => {
  const m = LEADING_ID.exec(line)
  // A regex match is a slice that keeps its whole line alive in V8: copy it, or a day's id index
  // would hold the day file itself in memory.
  if (m !== null) return Buffer.from(m[1]!, "utf8").toString("utf8")
  try {
    const v: unknown = JSON.parse(line)
    if (typeof v === "object" && v !== null && !Array.isArray(v) && "id" in v && typeof v.id === "string") {
      return v.id
    }
  } catch {
    // not JSON
  }
  return undefined
}

/**
 * Appends complete lines to an NDJSON file durably: one append write (looping only on a short
 * write), then fsync. A file created here gets 0600 and its directory is fsync'd *before* any data
 * goes in, so once this resolves nothing can be lost and nothing is left to fail.
 *
 * If the file does not end with `\n` (a torn line the process could not roll back), that tail is
 * cut first. If the write or the fsync fails, the file is truncated back to its previous length,
 * so no torn or unacknowledged line stays behind; should even that fail, the next append or the
 * next start cuts the torn tail. Returns the number of torn bytes cut before appending.
 */
export const appendLines = async (file: string, data: Buffer): Promise<{ readonly repairedBytes: number }> => {
  const { O_RDWR, O_APPEND, O_CREAT, O_EXCL } = fs.constants
  let h: fsp.FileHandle
  let created = false
  try {
    h = await fsp.open(file, O_RDWR | O_APPEND | O_CREAT | O_EXCL, FILE_MODE)
    created = true
  } catch (e) {
    if (errnoCode(e) !== "EEXIST") throw new StepFailure(file, "creating", e)
    h = await at(file, "opening", () => fsp.open(file, O_RDWR | O_APPEND))
  }
  try {
    if (created) {
      await at(file, "setting permissions on", () => h.chmod(FILE_MODE))
      await fsyncDir(path.dirname(file))
    }
    const st = await at(file, "checking", () => h.stat())
    // Devices and other special files have no length to repair or roll back to.
    const regular = st.isFile()
    let size = st.size
    let repairedBytes = 0
    if (regular && size > 0) {
      const keep = await at(file, "reading the end of", () => completeLength(h, size))
      if (keep < size) {
        await at(file, "truncating a torn line off", () => h.truncate(keep))
        await at(file, "syncing", () => h.sync())
        repairedBytes = size - keep
        size = keep
      }
    }
    try {
      await at(file, "appending to", async () => {
        let offset = 0
        while (offset < data.length) {
          const { bytesWritten } = await h.write(data, offset, data.length - offset)
          offset += bytesWritten
        }
      })
      await at(file, "syncing", () => h.sync())
    } catch (e) {
      if (regular) {
        try {
          await h.truncate(size)
          await h.sync()
        } catch {
          // Left for the next append or the next start to cut (see above).
        }
      }
      throw e
    }
    return { repairedBytes }
  } finally {
    await h.close().catch(() => undefined)
  }
}
