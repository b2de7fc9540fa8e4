// The raw floor: what ten lines of plain Node do. `fetch` every page (following `Link: rel="next"`),
// `JSON.parse` it, append one line per event (`JSON.stringify` of the item) to one file, one
// `fsync` at the end. With `--no-disk` it stops after the parse: the floor of a reader that
// writes nothing, which the library's `list()` is compared with.
//
// usage: node floor.mjs <first-url> <out-file|--no-disk>   (token in WEBEX_TOKEN)
import * as fs from "node:fs"

const [firstUrl, out] = process.argv.slice(2)
const headers = { authorization: `Bearer ${process.env.WEBEX_TOKEN}` }
const fd = out === "--no-disk" ? undefined : fs.openSync(out, "a")
let events = 0
let pages = 0
let url = firstUrl
while (url !== undefined) {
  const response = await fetch(url, { headers })
  if (response.status !== 200) throw new Error(`HTTP ${response.status} for ${url}: ${await response.text()}`)
  const page = JSON.parse(await response.text())
  pages++
  events += page.items.length
  if (fd !== undefined && page.items.length > 0) {
    fs.writeSync(fd, page.items.map((item) => JSON.stringify(item)).join("\n") + "\n")
  }
  url = /<([^>]+)>;\s*rel="next"/.exec(response.headers.get("link") ?? "")?.[1]
}
if (fd !== undefined) {
  fs.fsyncSync(fd)
  fs.closeSync(fd)
}
console.log(JSON.stringify({ events, pages }))
