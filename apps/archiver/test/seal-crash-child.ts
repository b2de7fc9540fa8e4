/**
 * Child process for `seal-crash.test.ts`: runs `sealSettled` on an archive and SIGKILLs itself at
 * the given step of the seal of the given day (or, with no step, runs to completion and prints
 * `done <json result>`).
 */
import * as Effect from "effect/Effect"
import * as Seal from "../src/Seal.js"

const [dir, crashStep, crashDay] = process.argv.slice(2)

if (dir !== undefined) {
  Effect.runPromise(Seal.sealSettled({
    dir,
    coverage: [[Date.parse("2024-01-01T00:00:00.000Z"), Date.parse("2024-01-08T00:00:00.000Z")]],
    now: Date.parse("2024-02-01T00:00:00.000Z"),
    settle: "1 hour",
    onStep: (step, day) => {
      if (step === crashStep && day === crashDay) process.kill(process.pid, "SIGKILL")
    }
  })).then((r) => process.stdout.write(`done ${JSON.stringify(r)}\n`), (e) => {
    process.stderr.write(`${e}\n`)
    process.exit(1)
  })
}
