// Runs a command and reports its wall time and peak resident memory, as GNU time measures them.
import { execFile } from "node:child_process";
import { existsSync } from "node:fs";

export interface Measurement {
  readonly wallMs: number;
  readonly peakRssKiB: number;
}

const GNU_TIME = "/usr/bin/time";

export function measure(
  command: string,
  args: readonly string[],
  options: { cwd?: string; env?: NodeJS.ProcessEnv } = {},
): Promise<Measurement> {
  if (!existsSync(GNU_TIME)) throw new Error(`${GNU_TIME} (Debian package "time") is needed to measure peak memory`);
  return new Promise((resolve, reject) => {
    const started = process.hrtime.bigint();
    execFile(
      GNU_TIME,
      ["-f", "__PEAK_RSS_KIB__=%M", command, ...args],
      { cwd: options.cwd, env: { ...process.env, ...options.env }, maxBuffer: 64 * 1024 * 1024 },
      (error, _stdout, stderr) => {
        const wallMs = Number(process.hrtime.bigint() - started) / 1e6;
        if (error) return reject(new Error(`${command} ${args.join(" ")} failed: ${stderr}`));
        const peak = /__PEAK_RSS_KIB__=(\d+)/.exec(stderr)?.[1];
        resolve({ wallMs, peakRssKiB: Number(peak ?? Number.NaN) });
      },
    );
  });
}

export function median(values: readonly number[]): number {
  const sorted = [...values].sort((a, b) => a - b);
  const middle = Math.floor(sorted.length / 2);
  return sorted.length % 2 ? (sorted[middle] ?? Number.NaN) : ((sorted[middle - 1] ?? 0) + (sorted[middle] ?? 0)) / 2;
}
