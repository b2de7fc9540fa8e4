/**
 * The archive's file layer: every open below the archive root refuses to follow a symbolic link,
 * every directory is checked with `lstat`, temporary files get random names and `O_EXCL`, and
 * durability is explicit (fsync of files and of the directories whose entries change).
 *
 * Why `node:fs` and not `@effect/platform`'s FileSystem: that one covers `O_EXCL` ("wx"/"ax+"),
 * truncate and sync, but its `open` takes only the string flags, and the archive needs
 * `O_NOFOLLOW` (numeric) on every open, plus `fchmod` on the open handle and `fsync` of
 * directories. Keeping all opens in one small layer is what makes "never follows a link" checkable.
 *
 * What this does not defend against (left to the operating system): a process running as the
 * archive's owner that swaps a checked directory for a link between our `lstat` and our `open`.
 * Directories are 0700, so only the owner (or root) can do that.
 *
 * @internal
 */
import { randomBytes } from "node:crypto"
import * as fs from "node:fs"
import * as fsp from "node:fs/promises"
import * as path from "node:path"
import { at, errnoCode, StepFailure, unlessGone, UnsafePath } from "./errors.js"
import { DIR_MODE, FILE_MODE } from "./layout.js"

const { O_NOFOLLOW, O_NONBLOCK, O_RDONLY, O_DIRECTORY, O_RDWR, O_APPEND, O_CREAT, O_EXCL, O_WRONLY } = fs.constants

/**
 * Opens `file` without following a symbolic link at its last component; a link there, or a
 * non-regular file (a FIFO, a device), is an {@link UnsafePath}. Flags are `fs.constants` bits.
 */
export const openNoFollow = async (file: string, flags: number, mode?: number): Promise<fsp.FileHandle> => {
  let h: fsp.FileHandle
  try {
    // O_NONBLOCK: a FIFO planted here must not hang the open (it is refused just below); it
    // changes nothing for a regular file.
    h = await fsp.open(file, flags | O_NOFOLLOW | O_NONBLOCK, mode)
  } catch (e) {
    // Linux reports ELOOP for a link under O_NOFOLLOW; the BSDs (and macOS) EMLINK.
    const code = errnoCode(e)
    if (code === "ELOOP" || code === "EMLINK") throw new UnsafePath(file, "is a symbolic link")
    throw e
  }
  try {
    const st = await h.stat()
    if (!st.isFile()) throw new UnsafePath(file, "is not a regular file")
  } catch (e) {
    await h.close().catch(() => undefined)
    throw e
  }
  return h
}

/** `lstat` that is `undefined` for a missing path. */
export const lstatIfExists = async (p: string): Promise<fs.Stats | undefined> => {
  try {
    return await fsp.lstat(p)
  } catch (e) {
    if (errnoCode(e) === "ENOENT") return undefined
    throw e
  }
}

/** fsync a directory, so that entries created, renamed or removed in it survive a power loss. */
export const fsyncDir = async (dir: string): Promise<void> => {
  const h = await at(dir, "opening directory", () => fsp.open(dir, O_RDONLY | O_DIRECTORY))
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

/** {@link fsyncDir}, synchronously (for the id index's open); failures are not labelled. */
export const fsyncDirSync = (dir: string): void => {
  const fd = fs.openSync(dir, O_RDONLY | O_DIRECTORY)
  try {
    fs.fsyncSync(fd)
  } catch (e) {
    if (errnoCode(e) !== "EINVAL") throw e
  } finally {
    fs.closeSync(fd)
  }
}

/** A mode change the archive made, reported as a warning by the caller. */
export interface Tightened {
  readonly path: string
  readonly from: number
  readonly to: number
}

/**
 * Checks a directory of the archive: an existing one must be a real directory (not a link to one)
 * and writable by its owner. An owner who made the archive read-only (0500) meant it: refused,
 * not reopened. Broader modes are tightened to 0700 and reported in `tightened`.
 */
export const ensureDir = async (dir: string, tightened: Array<Tightened> = [], mayBeLink = false): Promise<void> => {
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
  // The root itself may be reached through a link the operator chose; nothing below it may.
  const lst = await at(dir, "checking directory", () => fsp.lstat(dir))
  if (lst.isSymbolicLink() && !mayBeLink) throw new UnsafePath(dir, "is a symbolic link, not a directory")
  const st = lst.isSymbolicLink() ? await at(dir, "checking directory", () => fsp.stat(dir)) : lst
  if (!st.isDirectory()) {
    throw new StepFailure(
      dir,
      "creating directory",
      Object.assign(new Error(`ENOTDIR: not a directory, ${dir}`), { code: "ENOTDIR" })
    )
  }
  const mode = st.mode & 0o777
  if (!created && (mode & 0o200) === 0) {
    throw new UnsafePath(
      dir,
      `is read-only (mode ${mode.toString(8).padStart(4, "0")}), as its owner set it; make it writable (chmod 700) ` +
        "if the archive is meant to be written again"
    )
  }
  if (mode !== DIR_MODE) {
    if (!created) tightened.push({ path: dir, from: mode, to: DIR_MODE })
    await at(dir, "setting permissions on", () => fsp.chmod(dir, DIR_MODE))
  }
  if (created) await fsyncDir(path.dirname(dir))
}

/**
 * Tightens every regular file directly in `dir` to 0600, reporting each change in `tightened`.
 * A symbolic link is never followed: with `refuseLinks` it is an {@link UnsafePath}.
 */
export const tightenFiles = async (dir: string, tightened: Array<Tightened> = [], refuseLinks = false): Promise<void> => {
  const names = await at(dir, "listing", () => fsp.readdir(dir))
  for (const name of names) {
    const file = path.join(dir, name)
    // A name listed a moment ago may be gone: another opener of the archive renamed its
    // temporary file (`ids.json.<hex>.tmp`, `checkpoint.json.<hex>.tmp`) over its target meanwhile.
    // Nothing is left to tighten. Only "not found" counts as gone: a link is still seen and refused.
    const st = await at(file, "checking", () => lstatIfExists(file))
    if (st === undefined) continue
    if (st.isSymbolicLink() && refuseLinks) throw new UnsafePath(file, "is a symbolic link")
    if (st.isFile() && (st.mode & 0o777) !== FILE_MODE) {
      // Through a handle opened without following links: a link swapped in after the lstat
      // fails here rather than having its target's mode changed. Gone since the lstat: skipped.
      const h = await at(file, "setting permissions on", () => unlessGone(() => openNoFollow(file, O_RDONLY)))
      if (h === undefined) continue
      tightened.push({ path: file, from: st.mode & 0o777, to: FILE_MODE })
      try {
        await at(file, "setting permissions on", () => h.chmod(FILE_MODE))
      } finally {
        await h.close().catch(() => undefined)
      }
    }
  }
}

/** Writes all of `buf` at the handle's position, looping on short writes. */
export const writeAll = async (h: fsp.FileHandle, buf: Uint8Array): Promise<void> => {
  let offset = 0
  while (offset < buf.length) offset += (await h.write(buf, offset, buf.length - offset)).bytesWritten
}

/** A temporary name next to `target` that nobody can have planted in advance. */
const tmpName = (target: string) => `${target}.${randomBytes(6).toString("hex")}.tmp`

/** Writes a new file's content through its handle (`writeFileAtomic` syncs and closes it after). */
export type FileWriter = (h: fsp.FileHandle) => Promise<void>

/**
 * Replaces `target` atomically: write a fresh temporary file (random name, `O_EXCL`, 0600),
 * fsync it, rename it over `target`, fsync the directory. A crash at any instant leaves either the
 * old or the new content at `target`. A link at `target` is replaced, never written through.
 * `data` is the content, or a {@link FileWriter} that streams it into the temporary file.
 * With `syncDir: false` the directory is not fsync'd: for a caller that fsyncs it itself once
 * several files are in place (the rename is durable only after that).
 * `_legacyTmp` is ignored: kept so
 * callers that name a fixed temporary file still compile; a fixed name is what a planted link
 * could hijack.
 */
export const writeFileAtomic = async (
  target: string,
  _legacyTmp: string | undefined,
  data: string | Uint8Array | FileWriter,
  options?: { readonly syncDir?: boolean }
): Promise<void> => {
  const tmp = tmpName(target)
  try {
    const h = await at(tmp, "creating", () => openNoFollow(tmp, O_WRONLY | O_CREAT | O_EXCL, FILE_MODE))
    try {
      await at(tmp, "setting permissions on", () => h.chmod(FILE_MODE))
      await at(tmp, "writing", () => typeof data === "function" ? data(h) : h.writeFile(data))
      await at(tmp, "syncing", () => h.sync())
    } finally {
      await h.close().catch(() => undefined)
    }
    // rename(2) replaces a link at `target` itself, never what it points to. (Links inside the
    // archive are refused when it is opened; a token file outside it may legitimately be one.)
    await at(target, "replacing", () => fsp.rename(tmp, target))
  } catch (e) {
    await fsp.unlink(tmp).catch(() => undefined)
    throw e
  }
  if (options?.syncDir !== false) await fsyncDir(path.dirname(target))
}

/** Reads a small file as text without following a link; `undefined` when it does not exist. */
export const readIfExists = async (file: string): Promise<string | undefined> => {
  let h: fsp.FileHandle
  try {
    h = await openNoFollow(file, O_RDONLY)
  } catch (e) {
    if (errnoCode(e) === "ENOENT") return undefined
    if (e instanceof UnsafePath) throw e
    throw new StepFailure(file, "reading", e)
  }
  try {
    return await at(file, "reading", () => h.readFile("utf8"))
  } finally {
    await h.close().catch(() => undefined)
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
 * bytes removed (0 when the file ends with `\n`, is empty or missing). A link or a non-regular
 * file there is an {@link UnsafePath}: it is never truncated.
 */
export const repairTail = async (file: string): Promise<number> => {
  let h: fsp.FileHandle
  try {
    h = await openNoFollow(file, O_RDWR)
  } catch (e) {
    if (errnoCode(e) === "ENOENT") return 0
    if (e instanceof UnsafePath) throw e
    throw new StepFailure(file, "opening", e)
  }
  try {
    const st = await at(file, "checking", () => h.stat())
    const keep = await at(file, "reading the end of", () => completeLength(h, st.size))
    if (keep === st.size) return 0
    await at(file, "truncating a torn line off", () => h.truncate(keep))
    await at(file, "syncing", () => h.sync())
    return st.size - keep
  } finally {
    await h.close().catch(() => undefined)
  }
}

/** What an append left behind, for the id index: the file's identity and its new length. */
export interface Appended {
  readonly repairedBytes: number
  readonly ino: number
  readonly size: number
}

/**
 * Appends complete lines to an NDJSON file durably: one append write (looping only on a short
 * write), then fsync. A file created here gets 0600 and its directory is fsync'd *before* any data
 * goes in, so once this resolves nothing can be lost and nothing is left to fail.
 *
 * If the file does not end with `\n` (a torn line the process could not roll back), that tail is
 * cut first. If the write or the fsync fails, the file is truncated back to its previous length,
 * so no torn or unacknowledged line stays behind; should even that fail, the next append or the
 * next start cuts the torn tail. A link planted at `file` is refused, never appended through.
 * `known` is what the previous append by this process left (inode, length): when the file is
 * still exactly that, its end need not be read.
 */
export const appendLines = async (
  file: string,
  data: Uint8Array,
  known?: { readonly ino: number; readonly size: number }
): Promise<Appended> => {
  let h: fsp.FileHandle
  let created = false
  if (known !== undefined) {
    // Appended to by this process before: no need to try creating it first.
    h = await at(file, "opening", () => openNoFollow(file, O_RDWR | O_APPEND | O_CREAT, FILE_MODE))
  } else {
    try {
      h = await openNoFollow(file, O_RDWR | O_APPEND | O_CREAT | O_EXCL, FILE_MODE)
      created = true
    } catch (e) {
      if (e instanceof UnsafePath) throw e
      if (errnoCode(e) !== "EEXIST") throw new StepFailure(file, "creating", e)
      h = await at(file, "opening", () => openNoFollow(file, O_RDWR | O_APPEND))
    }
  }
  try {
    const st = await at(file, "checking", () => h.stat())
    // Created here, or recreated since (sealed away and removed meanwhile): new to the directory.
    if (created || (known !== undefined && (st.ino !== known.ino || st.size === 0))) {
      await at(file, "setting permissions on", () => h.chmod(FILE_MODE))
      await fsyncDir(path.dirname(file))
    }
    let size = st.size
    let repairedBytes = 0
    // Exactly as this process left it: it ends with a complete line, no need to read its end.
    const intact = known !== undefined && st.ino === known.ino && st.size === known.size
    if (size > 0 && !intact) {
      const keep = await at(file, "reading the end of", () => completeLength(h, size))
      if (keep < size) {
        await at(file, "truncating a torn line off", () => h.truncate(keep))
        await at(file, "syncing", () => h.sync())
        repairedBytes = size - keep
        size = keep
      }
    }
    try {
      await at(file, "appending to", () => writeAll(h, data))
      await at(file, "syncing", () => h.sync())
    } catch (e) {
      try {
        await h.truncate(size)
        await h.sync()
      } catch {
        // Left for the next append or the next start to cut (see above).
      }
      throw e
    }
    return { repairedBytes, ino: st.ino, size: size + data.length }
  } finally {
    await h.close().catch(() => undefined)
  }
}
