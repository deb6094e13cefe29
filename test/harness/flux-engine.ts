// Runs the test bed's flux-engine: Flux's engine (the fluxcd/pkg libraries kustomize-controller is built on, driven
// the way kustomize-controller drives them), not Flux's controller. See test/testbed/modules/flux-engine/main.go.
import { execFile } from "node:child_process";
import { mkdtemp, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { binary } from "./binaries.ts";

export interface KstatusResult {
  readonly status: string;
  readonly message: string;
}

/** One object's verdicts. A status kstatus cannot compute is Unknown with the error as message, as its poller says. */
export interface KstatusVerdict extends KstatusResult {
  /** github.com/fluxcd/cli-utils (Flux's fork of kstatus, the one fluxcd/pkg/ssa uses) status.Compute. */
  readonly flux: KstatusResult;
  /**
   * What kustomize-controller's status poller reports: its own Job reader (fluxcd/pkg/runtime/statusreaders, which
   * skips kstatus' generic checks and keeps a running Job InProgress) for batch Jobs, Flux's status.Compute otherwise.
   */
  readonly controller: KstatusResult;
  readonly error?: string;
}

export interface FluxBuildOptions {
  /** The directory to build (spec.path), inside `root`. */
  readonly path: string;
  /** The artifact root that bounds the build (default: `path`). */
  readonly root?: string;
  /** A Flux Kustomization file whose spec drives the generator (targetNamespace, patches, images...) and postBuild. */
  readonly kustomization?: string;
  /** Or that spec itself (written to a temporary file): `{ targetNamespace: "apps", postBuild: {...} }`. */
  readonly spec?: Readonly<Record<string, unknown>>;
  /** postBuild.substitute; any entry (or a strategy) turns postBuild on, as a postBuild block does in Flux. */
  readonly substitute?: Readonly<Record<string, string>>;
  readonly strategy?: "WithVariables" | "Always";
  /** kustomize-controller's StrictPostBuildSubstitutions feature gate (off by default in Flux). */
  readonly strict?: boolean;
}

export interface FluxApplyOptions extends FluxBuildOptions {
  readonly kubeconfig: string;
  readonly namespace: string;
  readonly name: string;
  /** A file with the previous inventory ([{id, v}] or {entries: [...]}): what it lists and this apply does not is pruned. */
  readonly pruneInventory?: string;
  readonly wait?: boolean;
  /** Go durations, e.g. "2m", "500ms". */
  readonly timeout?: string;
  readonly interval?: string;
  readonly force?: boolean;
}

export interface FluxChangeSetEntry {
  readonly id: string;
  readonly subject: string;
  readonly version: string;
  readonly action: string;
}

export interface FluxApplyResult {
  readonly changeSet: FluxChangeSetEntry[];
  readonly pruned: FluxChangeSetEntry[];
  /** Flux's status.inventory.entries. */
  readonly inventory: Array<{ id: string; v: string }>;
  /** Applied (and, with wait, every applied object Current within the timeout). */
  readonly ready: boolean;
  readonly message: string;
}

export class FluxEngineError extends Error {
  readonly stderr: string;
  readonly stdout: string;
  constructor(message: string, stderr: string, stdout: string) {
    super(message);
    this.stderr = stderr;
    this.stdout = stdout;
  }
}

function run(args: readonly string[], input?: string): Promise<{ stdout: string; stderr: string }> {
  return new Promise((resolve, reject) => {
    const child = execFile(
      binary("flux-engine"),
      args,
      { encoding: "utf8", maxBuffer: 256 * 1024 * 1024, timeout: 600_000 },
      (error, stdout, stderr) => {
        if (error) {
          reject(new FluxEngineError(`flux-engine ${args.join(" ")} failed (exit ${String(error.code)}): ${stderr.trim()}`, stderr, stdout));
        } else resolve({ stdout, stderr });
      },
    );
    child.stdin?.end(input ?? "");
  });
}

/** Runs flux-engine with the build flags, writing `spec` to a temporary Kustomization file for the call. */
async function withBuildArgs<T>(options: FluxBuildOptions, call: (args: string[]) => Promise<T>): Promise<T> {
  if (options.spec === undefined) return call(buildArgs(options, options.kustomization));
  const dir = await mkdtemp(join(tmpdir(), "ferry-flux-engine-"));
  try {
    const file = join(dir, "kustomization.json");
    await writeFile(file, JSON.stringify({ apiVersion: "kustomize.toolkit.fluxcd.io/v1", kind: "Kustomization", spec: options.spec }));
    return await call(buildArgs(options, file));
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
}

function buildArgs(options: FluxBuildOptions, kustomization: string | undefined): string[] {
  const args = ["--path", options.path];
  if (options.root !== undefined) args.push("--root", options.root);
  if (kustomization !== undefined) args.push("--kustomization", kustomization);
  for (const [key, value] of Object.entries(options.substitute ?? {})) args.push("--substitute", `${key}=${value}`);
  if (options.strategy !== undefined) args.push("--strategy", options.strategy);
  if (options.strict) args.push("--strict");
  return args;
}

/** kstatus' verdicts for each object, in order. */
export async function fluxKstatus(objects: readonly unknown[]): Promise<KstatusVerdict[]> {
  const { stdout } = await run(["kstatus"], JSON.stringify(objects));
  return JSON.parse(stdout) as KstatusVerdict[];
}

/** The YAML kustomize-controller's build (generator, SecureBuild, postBuild substitution) renders; rejects on error. */
export async function fluxBuild(options: FluxBuildOptions): Promise<string> {
  const { stdout } = await withBuildArgs(options, (args) => run(["build", ...args]));
  return stdout;
}

/**
 * Builds, applies with kustomize-controller's staged server-side apply, prunes, and waits. An apply error rejects
 * (its FluxEngineError's stdout has the partial result); a failed wait resolves with ready false.
 */
export async function fluxApply(options: FluxApplyOptions): Promise<FluxApplyResult> {
  const args = [
    "--kubeconfig", options.kubeconfig,
    "--namespace", options.namespace,
    "--name", options.name,
  ];
  if (options.pruneInventory !== undefined) args.push("--prune-inventory", options.pruneInventory);
  if (options.wait) args.push("--wait");
  if (options.timeout !== undefined) args.push("--timeout", options.timeout);
  if (options.interval !== undefined) args.push("--interval", options.interval);
  if (options.force) args.push("--force");
  const { stdout } = await withBuildArgs(options, (build) => run(["apply", ...build, ...args]));
  return JSON.parse(stdout) as FluxApplyResult;
}
