// `ferry controller` runs with a V8 heap sized for its container: V8 otherwise sizes the heap from the machine's
// memory and collects lazily below that, holding far more than the controller needs. This module is loaded before
// the controller code, so the short-lived parent that applies the budget stays small.
import { spawn } from "node:child_process";
import { readFileSync } from "node:fs";

export const SIZED_ENV = "FERRY_CONTROLLER_HEAP_SIZED";
const MIB = 1024 * 1024;

/** --max-heap-mib, else half the cgroup memory limit, else 192 MiB (kube-prometheus, 131 objects with large CRDs, fits with room). */
export function heapBudgetMiB(args: readonly string[]): number {
  const index = args.findIndex((arg) => arg.startsWith("--max-heap-mib"));
  const flag = index === -1 ? undefined : (args[index]?.split("=")[1] ?? args[index + 1]);
  if (flag !== undefined) {
    const value = Number(flag);
    if (!Number.isInteger(value) || value < 32) throw new Error("--max-heap-mib must be an integer of at least 32");
    return value;
  }
  try {
    const limit = Number(readFileSync("/sys/fs/cgroup/memory.max", "utf8").trim());
    if (Number.isFinite(limit) && limit > 0) return Math.min(2048, Math.max(64, Math.floor(limit / MIB / 2)));
  } catch {
    // no cgroup v2 limit visible
  }
  return 192;
}

/** True when this process should re-run itself with a heap budget (no explicit setting, not already sized). */
export function needsHeapBudget(): boolean {
  const explicit = process.execArgv.some((arg) => arg.startsWith("--max-old-space-size"))
    || (process.env.NODE_OPTIONS ?? "").includes("--max-old-space-size");
  return !explicit && process.env[SIZED_ENV] === undefined;
}

/** Re-runs this command with the budget; the parent only forwards signals and the exit code. */
export function runWithHeapBudget(budgetMiB: number): Promise<never> {
  const child = spawn(process.execPath, [`--max-old-space-size=${budgetMiB}`, ...process.execArgv, ...process.argv.slice(1)], {
    stdio: "inherit",
    env: { ...process.env, [SIZED_ENV]: String(process.pid) },
  });
  for (const signal of ["SIGTERM", "SIGINT"] as const) process.on(signal, () => child.kill(signal));
  return new Promise(() => {
    child.on("exit", (code, signal) => process.exit(code ?? (signal ? 1 : 0)));
  });
}

/** In the sized child: exit if the parent dies (SIGKILL), rather than live on holding the leader lease. */
export function exitWithParent(): void {
  const parent = Number(process.env[SIZED_ENV]);
  if (!parent) return;
  setInterval(() => {
    if (process.ppid !== parent) process.exit(1);
  }, 500).unref();
}
