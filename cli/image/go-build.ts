// The image's Go binaries, cross-compiled for each architecture: ferry-sandbox (src/sandbox, as
// cli/build-sandbox.ts builds it) and kustomize at the version the test bed pins, built from the test bed's wrapper
// module so its go.sum pins every dependency. Static (CGO_ENABLED=0), -trimpath, no VCS stamp, the local toolchain:
// the same source gives the same binary on any machine with the same Go.
import { execFile } from "node:child_process";
import { readFile } from "node:fs/promises";
import { join } from "node:path";

export type GoArch = "amd64" | "arm64";

export const KUSTOMIZE_MODULE = "sigs.k8s.io/kustomize/kustomize/v5";

export class GoBuildError extends Error {
  constructor(message: string, options?: ErrorOptions) {
    super(message, options);
    this.name = "GoBuildError";
  }
}

export function goEnv(arch: GoArch): NodeJS.ProcessEnv {
  return { ...process.env, CGO_ENABLED: "0", GOOS: "linux", GOARCH: arch, GOTOOLCHAIN: "local", GOFLAGS: "-buildvcs=false" };
}

function goBuild(cwd: string, arch: GoArch, output: string, target: string, ldflags: string): Promise<void> {
  return new Promise((resolve, reject) => {
    execFile("go", ["build", "-trimpath", "-ldflags", ldflags, "-o", output, target], { cwd, env: goEnv(arch), maxBuffer: 16 * 1024 * 1024 }, (error, _stdout, stderr) => {
      if (!error) resolve();
      else if ((error as NodeJS.ErrnoException).code === "ENOENT") reject(new GoBuildError("go is not installed; the image's ferry-sandbox and kustomize are built with Go 1.26+"));
      else reject(new GoBuildError(`go build ${target} for linux/${arch} failed:\n${stderr.trim()}`));
    });
  });
}

/** The kustomize wrapper module of the test bed and the version its go.mod requires. */
export async function kustomizePin(root: string): Promise<{ moduleDir: string; version: string }> {
  const moduleDir = join(root, "test", "testbed", "modules", "kustomize");
  const goMod = await readFile(join(moduleDir, "go.mod"), "utf8");
  const version = new RegExp(`^\\s*(?:require\\s+)?${KUSTOMIZE_MODULE.replace(/\./g, "\\.")}\\s+(v\\S+)`, "m").exec(goMod)?.[1];
  if (!version) throw new GoBuildError(`${moduleDir}/go.mod does not require ${KUSTOMIZE_MODULE}`);
  return { moduleDir, version };
}

export function buildSandbox(root: string, arch: GoArch, output: string): Promise<void> {
  return goBuild(join(root, "src", "sandbox"), arch, output, ".", "-s -w");
}

export function buildKustomize(moduleDir: string, arch: GoArch, output: string): Promise<void> {
  return goBuild(moduleDir, arch, output, KUSTOMIZE_MODULE, "-s -w");
}
