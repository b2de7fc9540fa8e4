/**
 * Child process for `storage-crash.test.ts`: writes batches to an archive and saves a checkpoint
 * after each, printing `ack <batch>` once both are durable, until it is killed with SIGKILL.
 *
 * Batch `b` holds events `b*PER .. b*PER+PER-1` plus the previous batch's last events again (an
 * overlap, as with re-fetched windows), spread over five days.
 */
import * as Effect from "effect/Effect"
import * as Checkpoint from "../src/Checkpoint.js"
import * as NdjsonSink from "../src/NdjsonSink.js"

export const PER = 40
export const dayOf = (n: number) => `2024-01-0${1 + (n % 5)}`
export const eventOf = (n: number): NdjsonSink.ArchiveRecord => {
  const day = dayOf(n)
  // Large enough that a kill often lands inside a write.
  const raw = `{"id":"ev-${n}","resource":"messages","created":"${day}T12:00:00.000Z","data":{"text":"${"é".repeat(1500)}"}}`
  return { id: `ev-${n}`, day, raw }
}
export const batchOf = (b: number): ReadonlyArray<NdjsonSink.ArchiveRecord> => {
  const out: Array<NdjsonSink.ArchiveRecord> = []
  for (let n = Math.max(0, b * PER - 5); n < (b + 1) * PER; n++) out.push(eventOf(n))
  return out
}

const main = (dir: string, start: number) =>
  Effect.gen(function*() {
    const sink = yield* NdjsonSink.make(dir)
    const checkpoint = yield* Checkpoint.make(dir)
    process.stdout.write("ready\n")
    for (let b = start;; b++) {
      yield* sink.writeBatch(batchOf(b), [{ raw: `bad item ${b}`, reason: "test" }])
      yield* checkpoint.save({
        version: 1,
        scope: {},
        covered: [{ from: Date.parse("2024-01-01T00:00:00.000Z"), through: Date.parse("2024-01-06T00:00:00.000Z") }],
        updatedAt: Date.now(),
        runs: b
      })
      process.stdout.write(`ack ${b}\n`)
    }
  })

if (process.argv[2] !== undefined) {
  Effect.runPromise(main(process.argv[2], Number(process.argv[3] ?? 0))).catch((e) => {
    process.stderr.write(`${e}\n`)
    process.exit(1)
  })
}
