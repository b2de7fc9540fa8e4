// Preloaded (`node --import`) into every measured child: at exit, writes the process's own
// resource usage (CPU user+sys, peak RSS as the kernel counts it) to $BENCH_USAGE_FILE.
import * as fs from "node:fs"

const file = process.env.BENCH_USAGE_FILE
if (file !== undefined && file !== "") {
  process.on("exit", (code) => {
    const u = process.resourceUsage()
    fs.writeFileSync(file, JSON.stringify({
      code,
      userMs: u.userCPUTime / 1000,
      systemMs: u.systemCPUTime / 1000,
      // ru_maxrss, in KiB on Linux.
      maxRssKiB: u.maxRSS
    }))
  })
}
