// Running a tool on a tenant's files inside ferry-sandbox (main.go beside this file): the kernel (Landlock) lets the
// process read the directories it is given and execute the tool, nothing else, and rlimits bound its memory and CPU.
// Checking in advance what a kustomization may name is a second fence only: kustomize reads files through builtin
// generators, transformers and validators in more ways than any list keeps up with.
import { execFile } from "node:child_process";
import { existsSync } from "node:fs";
import { access, constants } from "node:fs/promises";
import { dirname, join, resolve } from "node:path";
import { type Disposition, FerryError } from "../errors.ts";

/** The sandbox cannot be set up here: no binary, or a kernel without Landlock. Nothing may run unconfined instead. */
export class SandboxUnavailableError extends FerryError {
  readonly code = "SANDBOX_UNAVAILABLE";
  readonly disposition: Disposition = "retry";
}

export interface Sandbox {
  /** Absolute path of the ferry-sandbox binary. */
  readonly binary: string;
  /** Landlock ABI version of this kernel, as probed. */
  readonly abi: number;
  /** Address-space limit for the confined process, in bytes. */
  readonly maxMemoryBytes: number;
  /** CPU time limit for the confined process, in seconds. */
  readonly maxCpuSeconds: number;
}

/** What ferry-sandbox exits with when it could not confine the program: the program never ran. */
export const SANDBOX_SETUP_FAILED = 125;

export const SANDBOX_BINARY = "ferry-sandbox";

/**
 * FERRY_SANDBOX, else ferry-sandbox beside the running script (the bundle's dist/, the image's /opt/ferry/dist), else
 * in dist/ of the checkout when the CLI runs from source (cli/ferry.ts).
 */
export function defaultSandboxBinary(): string {
  if (process.env.FERRY_SANDBOX) return process.env.FERRY_SANDBOX;
  const scriptDir = dirname(resolve(process.argv[1] ?? "."));
  const candidates = [join(scriptDir, SANDBOX_BINARY), join(scriptDir, "..", "dist", SANDBOX_BINARY)];
  return candidates.find((candidate) => existsSync(candidate)) ?? join(scriptDir, SANDBOX_BINARY);
}

/** Checks that the binary runs and this kernel can confine; the controller refuses to build tenant input otherwise. */
export async function probeSandbox(
  binary: string,
  limits: { maxMemoryBytes: number; maxCpuSeconds: number },
): Promise<Sandbox> {
  const absolute = resolve(binary);
  await access(absolute, constants.X_OK).catch(() => {
    throw new SandboxUnavailableError(`the build sandbox ${absolute} is missing or not executable (build it with \`npm run build\`, or set FERRY_SANDBOX)`);
  });
  const abi = await new Promise<number>((resolveAbi, reject) => {
    execFile(absolute, ["--probe"], { timeout: 10_000 }, (error, stdout, stderr) => {
      if (error) reject(new SandboxUnavailableError(`the build sandbox cannot confine processes on this kernel: ${String(stderr).trim() || error.message}`));
      else resolveAbi(Number(stdout.trim()));
    });
  });
  return { binary: absolute, abi, ...limits };
}

/** The command line that runs `program args` confined to reading `readable` (and executing `program`). */
export function confinedCommand(
  sandbox: Sandbox,
  program: string,
  args: readonly string[],
  readable: readonly string[],
): { command: string; args: string[] } {
  return {
    command: sandbox.binary,
    args: [
      ...readable.flatMap((directory) => ["--read", resolve(directory)]),
      "--exec", resolve(program),
      "--max-memory", String(sandbox.maxMemoryBytes),
      "--max-cpu-seconds", String(sandbox.maxCpuSeconds),
      "--",
      ...args,
    ],
  };
}
