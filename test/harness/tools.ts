// Runs the test bed's client binaries (crane, oras, cosign, flux, kustomize) and reports their stderr on failure.
import { execFile } from "node:child_process";
import { binary } from "./binaries.ts";

export interface ToolResult {
  readonly stdout: Buffer;
  readonly stderr: string;
}

export function runTool(
  name: string,
  args: readonly string[],
  options: { input?: string | Buffer; env?: NodeJS.ProcessEnv; cwd?: string } = {},
): Promise<ToolResult> {
  return new Promise((resolve, reject) => {
    const child = execFile(
      binary(name),
      args,
      {
        encoding: "buffer",
        maxBuffer: 256 * 1024 * 1024,
        env: { ...process.env, HOME: process.env.HOME, ...options.env },
        cwd: options.cwd,
      },
      (error, stdout, stderr) => {
        if (error) {
          // Test credentials are still credentials: keep them out of failure messages.
          const shown = args.map((arg) => arg.replace(/^(--password=).+$/, "$1***"));
          reject(
            new Error(`${name} ${shown.join(" ")} failed (exit ${error.code}): ${stderr.toString().trim()}`),
          );
        } else resolve({ stdout, stderr: stderr.toString() });
      },
    );
    if (options.input !== undefined) child.stdin?.end(options.input);
    else child.stdin?.end();
  });
}
