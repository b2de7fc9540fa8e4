/**
 * Fresh archive directories for a test file, each in its own temporary folder (so the archive
 * directory itself does not exist yet), all removed after the file's tests.
 */
import * as fs from "node:fs"
import * as os from "node:os"
import * as path from "node:path"
import { afterAll } from "vitest"

export const tmpArchives = (prefix: string): () => string => {
  const made: Array<string> = []
  afterAll(() => {
    for (const dir of made) fs.rmSync(dir, { recursive: true, force: true })
  })
  return () => {
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), prefix))
    made.push(dir)
    return path.join(dir, "archive")
  }
}
