// Child processes of the test bed: logged to files, stopped on teardown, and killed if the test process dies.
import { type ChildProcess, spawn } from "node:child_process";
import { createWriteStream, readFileSync } from "node:fs";
import { readFile } from "node:fs/promises";
import { createServer } from "node:net";

const live = new Set<ChildProcess>();

// A crashed or interrupted test run must not leave apiservers and registries behind holding ports.
process.on("exit", () => {
  for (const child of live) child.kill("SIGKILL");
});
for (const signal of ["SIGINT", "SIGTERM", "SIGHUP"] as const) {
  process.once(signal, () => {
    // A program with its own handler (npm run testbed) stops its processes gracefully itself.
    if (process.listenerCount(signal) > 0) return;
    for (const child of live) child.kill("SIGKILL");
    process.exit(128 + (signal === "SIGINT" ? 2 : signal === "SIGTERM" ? 15 : 1));
  });
}

export interface ManagedProcess {
  readonly name: string;
  readonly pid: number | undefined;
  readonly logFile: string;
  /** Rejects as soon as the process exits, so readiness waits fail fast with its log. */
  readonly exited: Promise<never>;
  stop(): Promise<void>;
  /** Sends a signal without waiting, e.g. SIGKILL to simulate a crash; resolves when the process is gone. */
  kill(signal: NodeJS.Signals): Promise<void>;
  tail(lines?: number): Promise<string>;
}

export function startProcess(
  name: string,
  command: string,
  args: readonly string[],
  options: { logFile: string; env?: NodeJS.ProcessEnv; cwd?: string },
): ManagedProcess {
  const log = createWriteStream(options.logFile, { flags: "a" });
  const child = spawn(command, args, {
    cwd: options.cwd,
    env: { ...process.env, ...options.env },
    stdio: ["ignore", "pipe", "pipe"],
  });
  live.add(child);
  child.stdout?.pipe(log, { end: false });
  child.stderr?.pipe(log, { end: false });

  const tail = async (lines = 30): Promise<string> => {
    const text = await readFile(options.logFile, "utf8").catch(() => "");
    return text.trimEnd().split("\n").slice(-lines).join("\n");
  };
  let stopping = false;
  const closed = new Promise<number | null>((resolve) => {
    child.once("close", (code) => {
      live.delete(child);
      log.end();
      resolve(code);
    });
  });
  const exited = new Promise<never>((_, reject) => {
    child.once("error", (error) => reject(new Error(`${name} could not start: ${error.message}`)));
    void closed.then(async (code) => {
      if (!stopping) reject(new Error(`${name} exited with code ${code}; last log lines:\n${await tail()}`));
    });
  });
  exited.catch(() => {}); // observed by whoever awaits readiness; unobserved exits are not fatal here

  return {
    name,
    pid: child.pid,
    logFile: options.logFile,
    exited,
    tail,
    async kill(signal) {
      stopping = true;
      // Like a container being killed: the whole process tree goes, not just the process the harness started.
      for (const pid of descendants(child.pid)) {
        try {
          process.kill(pid, signal);
        } catch {
          // already gone
        }
      }
      child.kill(signal);
      await closed;
    },
    async stop() {
      stopping = true;
      if (child.exitCode !== null || child.signalCode !== null) return;
      child.kill("SIGTERM");
      const timer = setTimeout(() => child.kill("SIGKILL"), 5_000);
      await closed;
      clearTimeout(timer);
    },
  };
}

/** Every descendant of `pid`, deepest first, from /proc (Linux). */
function descendants(pid: number | undefined): number[] {
  if (pid === undefined) return [];
  let listed: string;
  try {
    listed = readFileSync(`/proc/${pid}/task/${pid}/children`, "utf8");
  } catch {
    return [];
  }
  const children = listed.trim().split(/\s+/).filter(Boolean).map(Number);
  return children.flatMap((child) => [...descendants(child), child]);
}

/** A port that was free a moment ago; callers retry startup if another process takes it first. */
export async function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const server = createServer();
    server.unref();
    server.once("error", reject);
    server.listen(0, "127.0.0.1", () => {
      const address = server.address();
      server.close(() => {
        if (address && typeof address === "object") resolve(address.port);
        else reject(new Error("could not allocate a port"));
      });
    });
  });
}

/** Polls `check` until it returns true, failing early if the process exits and late with a clear timeout. */
export async function waitUntil(
  description: string,
  check: () => Promise<boolean>,
  options: { timeoutMs: number; process?: ManagedProcess; intervalMs?: number },
): Promise<void> {
  const deadline = Date.now() + options.timeoutMs;
  let lastError: unknown;
  let abandoned = false;
  const poll = async () => {
    while (Date.now() < deadline && !abandoned) {
      try {
        if (await check()) return;
      } catch (error) {
        lastError = error;
      }
      await new Promise((resolve) => setTimeout(resolve, options.intervalMs ?? 100));
    }
    const reason = lastError instanceof Error ? ` (last error: ${lastError.message})` : "";
    const logs = options.process ? `\n${options.process.name} log:\n${await options.process.tail()}` : "";
    throw new Error(`timed out after ${options.timeoutMs} ms waiting for ${description}${reason}${logs}`);
  };
  try {
    await (options.process ? Promise.race([poll(), options.process.exited]) : poll());
  } finally {
    abandoned = true;
  }
}
