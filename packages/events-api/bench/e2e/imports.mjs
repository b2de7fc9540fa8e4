// What loading modules costs before the first request: wall, CPU and RSS after importing each
// argument in turn (file URLs or specifiers resolvable from here). Start-up is a fixed part of
// every `list()` run's CPU and most of its baseline RSS (see ../README.md).
//
// usage: node imports.mjs <module> [<module> ...]
const t0 = performance.now()
const c0 = process.cpuUsage()
for (const m of process.argv.slice(2)) await import(m)
const c = process.cpuUsage(c0)
const u = process.memoryUsage()
console.log(
  process.argv.slice(2).join(" "),
  "wall", (performance.now() - t0).toFixed(0), "ms",
  "cpu", ((c.user + c.system) / 1000).toFixed(0), "ms",
  "rss", (u.rss / 1048576).toFixed(0), "MiB",
  "heapUsed", (u.heapUsed / 1048576).toFixed(1), "MiB"
)
