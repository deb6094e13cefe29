// Runs the ferry CLI as a user would: a separate node process, with its exit code, stdout and stderr.
import { spawn } from "node:child_process";
import { join } from "node:path";

export const FERRY_CLI = join(import.meta.dirname, "..", "..", "cli", "ferry.ts");
/** The bundled CLI that `npm run build` (and `npm ci`, through prepare) writes; what users run. */
export const FERRY_BUNDLE = join(import.meta.dirname, "..", "..", "dist", "ferry.mjs");

export interface FerryResult {
  readonly status: number | null;
  readonly stdout: string;
  readonly stderr: string;
}

export function ferry(
  args: readonly string[],
  options: { env?: NodeJS.ProcessEnv; input?: string | Buffer; cwd?: string; bundle?: boolean } = {},
): Promise<FerryResult> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, [options.bundle ? FERRY_BUNDLE : FERRY_CLI, ...args], {
      env: { ...process.env, ...options.env },
      cwd: options.cwd,
      stdio: ["pipe", "pipe", "pipe"],
    });
    let stdout = "";
    let stderr = "";
    child.stdout.on("data", (chunk: Buffer) => {
      stdout += chunk;
    });
    child.stderr.on("data", (chunk: Buffer) => {
      stderr += chunk;
    });
    child.on("error", reject);
    child.on("close", (status) => resolve({ status, stdout, stderr }));
    child.stdin.end(options.input);
  });
}

/** Runs ferry and fails with its stderr unless it exits 0. */
export async function ferryOk(args: readonly string[], options: Parameters<typeof ferry>[1] = {}): Promise<FerryResult> {
  const result = await ferry(args, options);
  if (result.status !== 0) throw new Error(`ferry ${args.join(" ")} exited ${result.status}:\n${result.stderr}`);
  return result;
}
