// The single executable's main (cli/sea/build.ts bundles it with the CLI). While `npm run sea` builds the startup
// snapshot it pre-loads the command modules, so a run starts with them evaluated instead of parsing and running
// them; when the executable starts from the snapshot it runs the command as dist/ferry.mjs would.
import { spawn } from "node:child_process";
import { startupSnapshot } from "node:v8";
import { heapBudgetMiB, needsHeapBudget, SIZED_ENV } from "../heap.ts";

export type Main = (argv: readonly string[]) => Promise<number>;

export function start(main: Main, preload: () => Promise<unknown>): void {
  if (!startupSnapshot.isBuildingSnapshot()) {
    run(main);
    return;
  }
  // The snapshot is taken once the event loop is empty, so the pre-loading finishes first.
  preload().catch((error: unknown) => {
    process.stderr.write(`ferry: pre-loading the command modules for the snapshot failed: ${String(error)}\n`);
    process.exitCode = 1;
  });
  startupSnapshot.setDeserializeMainFunction(() => run(main));
}

/** In the executable, argv is [ferry, ferry, ...arguments]: the executable stands where node's script would. */
function run(main: Main): void {
  const args = process.argv.slice(2);
  if (controllerNeedsHeapBudget(args)) {
    respawnWithHeapBudget(args);
    return;
  }
  // dist/ferry.mjs awaits main() at its top level; a promise still pending when the event loop empties exits 13 there.
  let settled = false;
  process.once("exit", () => {
    if (!settled) process.exitCode = 13;
  });
  void main(args).then((code) => {
    settled = true;
    process.exitCode = code;
  });
}

function controllerNeedsHeapBudget(args: readonly string[]): boolean {
  if (args[0] !== "controller" || args.includes("--help") || args.includes("-h") || !needsHeapBudget()) return false;
  try {
    heapBudgetMiB(args);
    return true;
  } catch {
    return false; // the command itself reports the bad --max-heap-mib
  }
}

/**
 * `ferry controller` re-runs itself with a heap budget (cli/heap.ts). heap.ts passes --max-old-space-size as a
 * node argument before the script, which an executable would read as a command; the executable takes node options
 * from NODE_OPTIONS instead, so the same re-run is made through it.
 */
function respawnWithHeapBudget(args: readonly string[]): void {
  const budget = `--max-old-space-size=${heapBudgetMiB(args)}`;
  const child = spawn(process.execPath, args, {
    stdio: "inherit",
    env: { ...process.env, NODE_OPTIONS: [process.env.NODE_OPTIONS, budget].filter(Boolean).join(" "), [SIZED_ENV]: String(process.pid) },
  });
  for (const signal of ["SIGTERM", "SIGINT"] as const) process.on(signal, () => child.kill(signal));
  child.on("exit", (code, signal) => process.exit(code ?? (signal ? 1 : 0)));
}
