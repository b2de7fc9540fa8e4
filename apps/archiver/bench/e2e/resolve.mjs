// Where the benchmark's children find the library and its dependencies. The scripts live at the
// repository root, which has no `effect` of its own: they load what the library itself loads
// (packages/events-api/node_modules, realpath'd), so there is one copy of Effect in each process.
import * as fs from "node:fs"
import * as path from "node:path"
import { fileURLToPath, pathToFileURL } from "node:url"

export const repoRoot = path.resolve(path.dirname(fileURLToPath(import.meta.url)), "../../../..")
export const libDir = path.join(repoRoot, "packages/events-api")
export const archiverBin = path.join(repoRoot, "apps/archiver/bin/webex-archiver.mjs")

const readJson = (file) => JSON.parse(fs.readFileSync(file, "utf8"))

/** The `import` target of an `exports` entry, whatever its nesting. */
const importTarget = (entry) => {
  let target = entry
  while (target !== null && typeof target === "object") target = target.import ?? target.default
  return typeof target === "string" ? target : undefined
}

/**
 * The library's compiled entry (`"."` or `"./testing"`): the package's exports if they point at
 * JavaScript, otherwise its `publishConfig.exports` (the emitted build). Compiled JS, not the
 * TypeScript sources, so no transpiler runs in the measured processes.
 */
export const libEntry = (subpath) => {
  const pkg = readJson(path.join(libDir, "package.json"))
  for (const exports of [pkg.exports, pkg.publishConfig?.exports]) {
    const target = importTarget(exports?.[subpath])
    if (target !== undefined && target.endsWith(".js")) {
      const file = path.join(libDir, target)
      if (!fs.existsSync(file)) throw new Error(`${file} is missing: build the library first (npx tsc -b)`)
      return pathToFileURL(file).href
    }
  }
  throw new Error(`@webex-compliance/events-api has no compiled entry for ${subpath}`)
}

/** A dependency of the library (`"effect/Effect"`, `"@effect/platform-node/NodeHttpClient"`), as it resolves it. */
export const libDependency = (specifier) => {
  const parts = specifier.split("/")
  const name = parts[0].startsWith("@") ? `${parts.shift()}/${parts.shift()}` : parts.shift()
  const subpath = parts.length > 0 ? `./${parts.join("/")}` : "."
  const dir = fs.realpathSync(path.join(libDir, "node_modules", name))
  const target = importTarget(readJson(path.join(dir, "package.json")).exports?.[subpath])
  if (target === undefined) throw new Error(`cannot resolve ${specifier} from ${libDir}`)
  return pathToFileURL(path.join(dir, target)).href
}
