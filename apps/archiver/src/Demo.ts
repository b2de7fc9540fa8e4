/**
 * `webex-archiver demo`: the whole product in one command, no token needed.
 *
 * Starts the fake Webex from the events-api test kit on loopback, seeded with a realistic org
 * and with faults switched on, archives it through exactly the code path of `backfill`, then
 * lets late events arrive and re-runs the back-fill (sealing settled days as it goes), and finally
 * checks the archive against the server (every event present once, byte for byte as served) and
 * against its own manifest, as `verify` does.
 */
import type { EventsApiError } from "@webex-compliance/events-api"
import { FakeWebex, SeedOrg } from "@webex-compliance/events-api/testing"
import * as Clock from "effect/Clock"
import * as Console from "effect/Console"
import * as Duration from "effect/Duration"
import * as Effect from "effect/Effect"
import * as Option from "effect/Option"
import * as Schema from "effect/Schema"
import * as fs from "node:fs"
import * as path from "node:path"
import { ArchiverUsageError } from "./ArchiverError.js"
import * as ArchiveStatus from "./ArchiveStatus.js"
import { withArchive } from "./ArchiveSession.js"
import { eventLines, listEventFiles } from "./Segments.js"
import * as Verify from "./Verify.js"

export interface DemoOptions {
  readonly out: string
  readonly events: number
  readonly days: number
}

const DAY = 86_400_000

/** What the demo can fail with besides its own errors: the archiver's run against the fake server. */
export type DemoApiError = EventsApiError.EventsApiError

/** The demo's archive does not match what its server holds: a bug in the archiver (exit 70). */
export class DemoVerificationFailed extends Schema.TaggedError<DemoVerificationFailed>()("DemoVerificationFailed", {
  missing: Schema.Number,
  altered: Schema.Number,
  duplicated: Schema.Number
}) {
  override get message(): string {
    return `the demo archive does not match the server: ${this.missing} missing, ${this.altered} altered, ${this.duplicated} duplicated`
  }
}

/** Every archived line, by event id (the demo's archive is small enough to hold). */
const readArchive = (dir: string) =>
  Effect.promise(async () => {
    const lines = new Map<string, Array<string>>()
    // Open day files and sealed segments alike (gunzipped).
    for (const { file } of await listEventFiles(path.join(dir, "events"))) {
      for await (const line of eventLines(file)) {
        const id = (JSON.parse(line) as { id: string }).id
        lines.set(id, [...(lines.get(id) ?? []), line])
      }
    }
    return lines
  })

export const run = (options: DemoOptions) =>
  Effect.scoped(
    Effect.gen(function*() {
      if (!(options.events >= 1 && options.days >= 1)) {
        return yield* new ArchiverUsageError({ problem: `--events and --days must be at least 1, got ${options.events} and ${options.days}` })
      }
      const now = yield* Clock.currentTimeMillis
      // The org is a function of the UTC day: running the demo again today into the same --out
      // finds every event already archived, byte for byte; tomorrow's org is another one (other
      // ids), never the same ids with other content.
      const today = Math.floor(now / DAY) * DAY
      const from = new Date(today - options.days * DAY)
      const to = new Date(today)
      const daySeed = today / DAY
      const existing = fs.existsSync(path.join(options.out, "events"))
      const seeded = SeedOrg.generateOrg({ count: options.events, seed: 2026 + daySeed, from, to })
      const fake = yield* FakeWebex.make({
        events: seeded,
        order: "shuffled",
        seed: 7,
        // Every kind of fault, a few times each: a 429 or 423 costs the full second its Retry-After
        // asks for, so they are spaced out enough for the demo to take seconds, not a minute.
        faults: {
          rateLimitEvery: 20,
          retryAfter: "seconds",
          retryAfterSeconds: 1,
          lockedEvery: 29,
          serverErrorEvery: 11,
          dropConnectionEvery: 17,
          malformedItemEvery: 25,
          nextLinkMaxNull: true,
          nextLinkDropsFilters: true
        }
      })
      yield* Console.log(
        `Simulated Webex at ${fake.baseUrl}: ${seeded.length} events over ${options.days} days, with 429s, 423s, 5xx, ` +
          "dropped connections, junk items and broken next links switched on.\n"
      )
      const archive = (label: string, recheck: boolean) =>
        withArchive(
          {
            dir: options.out,
            credentials: { token: fake.token },
            baseUrl: fake.baseUrl,
            settings: { scope: {}, max: 200, window: Duration.days(1) },
            // Every past day is covered once the back-fill ends: seal it at once (a daemon waits
            // --lookback); late events for a sealed day then go to a segment of their own.
            seal: { settle: Duration.zero },
            // The server's Retry-After is honoured as in production; only the backoff after a 5xx
            // or a dropped connection starts lower (100 ms, not 500 ms), so that the demo is quick.
            retry: { baseDelay: Duration.millis(100) }
          },
          (a) => a.backfill({ from: from.getTime(), to: Option.none(), recheck })
        ).pipe(
          Effect.tap((t) =>
            Console.log(
              `${label}: ${t.written} new events written${recheck ? ` (${t.late} found late in covered days)` : ""}, ` +
                `${t.duplicates} already archived, ${t.quarantined} items quarantined (${t.pages} pages, ${t.windows} windows)`
            )
          )
        )
      if (existing) {
        yield* Console.log(`${options.out} already holds an archive: what is already there is skipped. Use another --out for a clean run.\n`)
      }
      const started = yield* Clock.currentTimeMillis
      const finished = Effect.map(Clock.currentTimeMillis, (t) => ((t - started) / 1000).toFixed(1))
      yield* archive("Back-fill", false)

      // Events that the API lists only later, with `created` in the past: a re-run adds just those.
      const late = SeedOrg.generateOrg({ count: 25, seed: 99 + daySeed, from, to })
      yield* fake.addEvents(late)
      // Their days are covered already: only a re-check lists them again.
      yield* archive("Re-check after 25 late events arrived", true)

      const seconds = yield* finished
      const served = yield* fake.events
      const archived = yield* readArchive(options.out)
      let missing = 0
      let altered = 0
      for (const raw of served) {
        const id = (JSON.parse(raw) as { id: string }).id
        const lines = archived.get(id)
        if (lines === undefined) missing++
        else if (lines.length !== 1 || lines[0] !== raw) altered++
      }
      const duplicated = [...archived.values()].filter((l) => l.length > 1).length
      const status = yield* ArchiveStatus.readStatus(path.resolve(options.out))
      yield* Console.log(`\n${ArchiveStatus.formatStatus(status)}\n`)
      yield* Console.log(
        missing === 0 && altered === 0 && duplicated === 0
          ? `Verified: all ${served.length} events the server holds are archived exactly once, byte for byte, in ${
seconds} s.`
          : `VERIFICATION FAILED: ${missing} missing, ${altered} altered, ${duplicated} duplicated`
      )
      // The archive's own proof, as `webex-archiver verify` gives it: sealed files against the
      // hash-chained manifest, no duplicate ids, no coverage holes.
      const report = yield* Verify.verify({ dir: path.resolve(options.out) })
      yield* Console.log(`\n${Verify.formatReport(report)}\n`)
      yield* Console.log(
        `Archive: ${path.resolve(options.out)}  (try: ls ${path.join(options.out, "events")} | head; ` +
          `webex-archiver verify --out ${options.out}; webex-archiver query --out ${options.out} --type deleted | head)`
      )
      if (missing + altered + duplicated > 0) return yield* new DemoVerificationFailed({ missing, altered, duplicated })
      if (!report.intact) {
        return yield* new Verify.ArchiveNotIntact({
          path: path.resolve(options.out),
          problems: report.problems.length,
          message: `the demo archive does not verify: ${report.problems.map((p) => p.message).join("; ")}`
        })
      }
    })
  )
