/**
 * Runs the real `webex-archiver` CLI (`apps/archiver/bin/webex-archiver.mjs`) as a child process,
 * the way an operator or systemd does, and watches it from the outside.
 */
import { type ChildProcess, spawn } from "node:child_process"
import * as fs from "node:fs"
import * as path from "node:path"
import { fileURLToPath } from "node:url"

/** The repository root, from this file's location: works from any clone. */
export const repoRoot = path.resolve(path.dirname(fileURLToPath(import.meta.url)), "../../../..")
export const binPath = path.join(repoRoot, "apps/archiver/bin/webex-archiver.mjs")

export interface SpawnOptions {
  /** `WEBEX_TOKEN` of the child; omitted when undefined. */
  readonly token?: string | undefined
  /**
   * The child's umask, set by `sh -c 'umask …; exec node …'` (the pid stays the node process).
   * Default `000`, the loosest: the archive's modes must hold whatever the umask.
   */
  readonly umask?: string | undefined
  /** Extra environment. */
  readonly env?: Readonly<Record<string, string>> | undefined
  /** Extra node flags, e.g. `--max-old-space-size=128`. */
  readonly nodeArgs?: ReadonlyArray<string> | undefined
  /** The child's working directory; default the repository root. */
  readonly cwd?: string | undefined
}

export interface Exited {
  readonly code: number | null
  readonly signal: NodeJS.Signals | null
  readonly stdout: string
  readonly stderr: string
  /** Milliseconds from spawn to exit. */
  readonly ms: number
}

export interface CliProcess {
  readonly child: ChildProcess
  readonly pid: number
  readonly args: ReadonlyArray<string>
  readonly stdout: () => string
  readonly stderr: () => string
  readonly exited: Promise<Exited>
  /** Whether the process has exited. */
  readonly done: () => boolean
  /** Resolves when `predicate` holds of the output so far; rejects on exit or timeout. */
  readonly waitFor: (predicate: (out: { stdout: string; stderr: string }) => boolean, timeoutMs: number, what?: string) => Promise<void>
  /**
   * Waits for the exit; SIGKILLs the process and rejects after `timeoutMs`. Also rejects when the
   * token given in the options appears on stdout or stderr.
   */
  readonly wait: (timeoutMs: number) => Promise<Exited>
  readonly kill: (signal: NodeJS.Signals) => void
}

const cleanEnv = (): Record<string, string> => {
  const env: Record<string, string> = {}
  for (const [k, v] of Object.entries(process.env)) {
    if (v === undefined) continue
    // Nothing of the test runner's environment may steer the archiver.
    if (k === "NODE_OPTIONS" || k === "WEBEX_TOKEN" || k === "WEBEX_BASE_URL" || k === "ARCHIVE_DIR") continue
    if (k.startsWith("VITEST") || k === "TEST") continue
    env[k] = v
  }
  return env
}

const live = new Set<ChildProcess>()

/** SIGKILLs every child still running (for `afterAll`, so a failed test leaves nothing behind). */
export const killAll = () => {
  for (const child of live) child.kill("SIGKILL")
  live.clear()
}

export const spawnCli = (args: ReadonlyArray<string>, options: SpawnOptions = {}): CliProcess => {
  const env = { ...cleanEnv(), ...options.env }
  if (options.token !== undefined) env.WEBEX_TOKEN = options.token
  const umask = options.umask ?? "000"
  const child = spawn(
    "/bin/sh",
    ["-c", `umask ${umask} && exec "$@"`, "sh", process.execPath, ...(options.nodeArgs ?? []), binPath, ...args],
    { cwd: options.cwd ?? repoRoot, env, stdio: ["ignore", "pipe", "pipe"] }
  )
  live.add(child)
  const started = Date.now()
  let stdout = ""
  let stderr = ""
  const listeners = new Set<() => void>()
  const notify = () => {
    for (const l of [...listeners]) l()
  }
  child.stdout!.setEncoding("utf8").on("data", (chunk: string) => {
    stdout += chunk
    notify()
  })
  child.stderr!.setEncoding("utf8").on("data", (chunk: string) => {
    stderr += chunk
    notify()
  })
  let finished = false
  const exited = new Promise<Exited>((resolve, reject) => {
    child.on("error", reject)
    // "close": the process is gone *and* its output has been read to the end.
    child.on("close", (code, signal) => {
      finished = true
      live.delete(child)
      notify()
      resolve({ code, signal, stdout, stderr, ms: Date.now() - started })
    })
  })
  const describe = () => `webex-archiver ${args.join(" ")}\n--- stdout\n${stdout}\n--- stderr\n${stderr.slice(-4000)}`

  const waitFor: CliProcess["waitFor"] = (predicate, timeoutMs, what = "output") =>
    new Promise<void>((resolve, reject) => {
      const check = () => {
        if (predicate({ stdout, stderr })) {
          cleanup()
          resolve()
        } else if (finished) {
          cleanup()
          reject(new Error(`exited before ${what}: ${describe()}`))
        }
      }
      const timer = setTimeout(() => {
        cleanup()
        reject(new Error(`timed out after ${timeoutMs} ms waiting for ${what}: ${describe()}`))
      }, timeoutMs)
      const cleanup = () => {
        clearTimeout(timer)
        listeners.delete(check)
      }
      listeners.add(check)
      check()
    })

  const wait: CliProcess["wait"] = (timeoutMs) =>
    new Promise<Exited>((resolve, reject) => {
      const timer = setTimeout(() => {
        child.kill("SIGKILL")
        reject(new Error(`did not exit within ${timeoutMs} ms: ${describe()}`))
      }, timeoutMs)
      exited.then((e) => {
        clearTimeout(timer)
        // Checked on every run of every test: the token never shows in what the CLI prints.
        if (options.token !== undefined && (e.stdout.includes(options.token) || e.stderr.includes(options.token))) {
          reject(new Error(`the token appeared in the output of: ${describe()}`))
        } else {
          resolve(e)
        }
      }, (e) => {
        clearTimeout(timer)
        reject(e)
      })
    })

  return {
    child,
    pid: child.pid!,
    args,
    stdout: () => stdout,
    stderr: () => stderr,
    exited,
    done: () => finished,
    waitFor,
    wait,
    kill: (signal) => {
      if (!finished) child.kill(signal)
    }
  }
}

/** Runs the CLI to completion. */
export const runCli = (args: ReadonlyArray<string>, options: SpawnOptions & { readonly timeoutMs?: number } = {}) =>
  spawnCli(args, options).wait(options.timeoutMs ?? 90_000)

/** Lines of stderr that are not log lines (logfmt `timestamp=… level=…`): what the user is told. */
export const messageLines = (stderr: string): ReadonlyArray<string> =>
  stderr.split("\n").filter((l) => l.trim() !== "" && !/^timestamp=\S+ level=/.test(l))

/** The log lines of stderr (logfmt). */
export const logLines = (stderr: string): ReadonlyArray<string> =>
  stderr.split("\n").filter((l) => /^timestamp=\S+ level=/.test(l))

/**
 * The peak resident set size (VmHWM, KiB) of a process, polled from `/proc/<pid>/status` until it
 * exits. VmHWM is the kernel's own high-water mark, so polling only risks missing the last few
 * milliseconds of the process's life.
 */
export const watchPeakRss = (pid: number, everyMs = 20) => {
  let peak = 0
  const read = () => {
    try {
      const m = /^VmHWM:\s+(\d+) kB/m.exec(fs.readFileSync(`/proc/${pid}/status`, "utf8"))
      if (m !== null) peak = Math.max(peak, Number(m[1]))
    } catch {
      // gone
    }
  }
  read()
  const timer = setInterval(read, everyMs)
  return {
    stop: () => {
      clearInterval(timer)
      return peak
    }
  }
}

export const sleep = (ms: number) => new Promise<void>((r) => setTimeout(r, ms))

/** Polls `predicate` until it holds; rejects with `what` after `timeoutMs`. */
export const waitUntil = async (predicate: () => boolean | Promise<boolean>, timeoutMs: number, what: string, everyMs = 50) => {
  const deadline = Date.now() + timeoutMs
  for (;;) {
    if (await predicate()) return
    if (Date.now() > deadline) throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}`)
    await sleep(everyMs)
  }
}

export interface BackfillSummary {
  readonly written: number
  readonly duplicates: number
  readonly quarantined: number
  readonly pages: number
  readonly windows: number
}

/** The counts of `backfill`'s result line on stdout. */
export const backfillSummary = (stdout: string): BackfillSummary => {
  const m = /^Back-fill complete: (\d+) new events archived, (\d+) already present, (\d+) quarantined, (\d+) pages in (\d+) windows/m
    .exec(stdout)
  if (m === null) throw new Error(`no back-fill summary in stdout:\n${stdout}`)
  return { written: Number(m[1]), duplicates: Number(m[2]), quarantined: Number(m[3]), pages: Number(m[4]), windows: Number(m[5]) }
}

/** The `key=value` annotations of logfmt log lines with the given message. */
export const logEntries = (stderr: string, message: string): ReadonlyArray<Record<string, string>> =>
  logLines(stderr)
    .filter((l) => l.includes(`message="${message}"`) || l.includes(`message=${message} `))
    .map((l) => {
      const fields: Record<string, string> = {}
      for (const m of l.matchAll(/(\w+)=("(?:[^"\\]|\\.)*"|\S+)/g)) fields[m[1]!] = m[2]!.replace(/^"|"$/g, "")
      return fields
    })
