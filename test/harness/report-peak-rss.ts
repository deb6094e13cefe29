// Preloaded into a measured child (node --import): it writes its own peak RSS (VmHWM, KiB) as it exits, since the
// parent can no longer read /proc/<pid>/status once the child is gone, and sampling can miss a last short peak.
import { readFileSync, writeFileSync } from "node:fs";

const reportFile = process.env.FERRY_PEAK_RSS_FILE;
if (reportFile) {
  process.on("exit", () => {
    const highWaterKiB = /VmHWM:\s+(\d+) kB/.exec(readFileSync("/proc/self/status", "utf8"))?.[1];
    if (highWaterKiB) writeFileSync(reportFile, highWaterKiB);
  });
}
