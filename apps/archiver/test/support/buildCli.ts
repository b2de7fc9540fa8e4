/**
 * Vitest global setup: the e2e tests spawn `bin/webex-archiver.mjs`, which runs the built bundle,
 * so the bundle is brought up to date with the sources first (a no-op when it already is).
 */
import { execFileSync } from "node:child_process"
import * as path from "node:path"
import { fileURLToPath } from "node:url"

export default function setup() {
  const app = path.resolve(path.dirname(fileURLToPath(import.meta.url)), "../..")
  execFileSync(process.execPath, [path.join(app, "scripts/build.mjs")], { stdio: "inherit" })
}
