// Runs a node program as a child process and measures its peak resident memory (VmHWM): memory bounds are asserted
// on a separate process, so the test runner's own heap never counts.
import { spawn } from "node:child_process";
import { mkdtemp, readFile, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";

const REPORTER = join(import.meta.dirname, "report-peak-rss.ts");
const MIB = 1024 * 1024;

export interface MeasuredRun {
  readonly status: number | null;
  readonly stdout: string;
  readonly stderr: string;
  /** The child's peak RSS in bytes: what it reported as it exited, else the highest value sampled while it ran. */
  readonly peakRssBytes: number;
}

async function sampledHighWater(pid: number): Promise<number> {
  const status = await readFile(`/proc/${pid}/status`, "utf8").catch(() => "");
  return Number(/VmHWM:\s+(\d+) kB/.exec(status)?.[1] ?? 0) * 1024;
}

/** `node --import report-peak-rss.ts <args>`; stdout is kept to its last 1 MiB. */
export async function runMeasured(args: readonly string[], options: { env?: NodeJS.ProcessEnv } = {}): Promise<MeasuredRun> {
  const dir = await mkdtemp(join(tmpdir(), "ferry-peak-rss-"));
  const reportFile = join(dir, "vmhwm");
  try {
    const child = spawn(process.execPath, ["--import", REPORTER, ...args], {
      env: { ...process.env, ...options.env, FERRY_PEAK_RSS_FILE: reportFile },
      stdio: ["ignore", "pipe", "pipe"],
    });
    let stdout = "";
    let stderr = "";
    child.stdout.on("data", (chunk: Buffer) => {
      stdout = (stdout + chunk.toString()).slice(-MIB);
    });
    child.stderr.on("data", (chunk: Buffer) => {
      stderr = (stderr + chunk.toString()).slice(-MIB);
    });
    let sampled = 0;
    // A child killed for its memory never reports; the samples then say how far it got.
    const sampler = setInterval(() => {
      void sampledHighWater(child.pid ?? 0).then((bytes) => {
        sampled = Math.max(sampled, bytes);
      });
    }, 100);
    const status = await new Promise<number | null>((resolve, reject) => {
      child.on("error", reject);
      child.on("close", (code, signal) => resolve(code ?? (signal ? 128 : null)));
    }).finally(() => clearInterval(sampler));
    const reported = Number(await readFile(reportFile, "utf8").catch(() => "0")) * 1024;
    return { status, stdout, stderr, peakRssBytes: Math.max(reported, sampled) };
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
}

export function mib(bytes: number): string {
  return `${(bytes / MIB).toFixed(1)} MiB`;
}
