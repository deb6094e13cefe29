// Building the manifests of a Kustomization as Flux does: a kustomization file is generated (or the existing one
// overlaid with the spec's namespace, prefixes, patches, images and components), built with a pinned kustomize
// that may not reach the network, and the output optionally run through ${var} substitution.
import { execFile } from "node:child_process";
import { access, constants, cp, mkdtemp, rm, stat } from "node:fs/promises";
import { tmpdir } from "node:os";
import { delimiter, join, resolve } from "node:path";
import { type Disposition, FerryError } from "../errors.ts";
import { isInside } from "../artifact/tarball.ts";
import { deadlineSignal } from "../deadline.ts";
import { confinedCommand, SANDBOX_SETUP_FAILED, type Sandbox, SandboxUnavailableError } from "../sandbox/sandbox.ts";
import { type KustomizeOverlay, prepareKustomization, refuseRemoteBases } from "./generate.ts";
import { readOutputInWorker } from "./output.ts";
import { SubstitutionError } from "./substitute.ts";
import { loadYamlDocuments, YamlInputError } from "./yaml-load.ts";

export class BuildError extends FerryError {
  readonly code = "BUILD_FAILED";
  readonly disposition: Disposition = "retry";
}

export interface ManifestObject {
  apiVersion: string;
  kind: string;
  metadata: { name: string; namespace?: string; labels?: Record<string, string>; annotations?: Record<string, string> };
  [key: string]: unknown;
}

/**
 * Every reference was checked to be local before this runs; the proxy settings are a second fence so that a
 * reference the check missed fails instead of reaching the network.
 */
const NO_NETWORK_ENV = {
  HTTP_PROXY: "http://127.0.0.1:9",
  HTTPS_PROXY: "http://127.0.0.1:9",
  http_proxy: "http://127.0.0.1:9",
  https_proxy: "http://127.0.0.1:9",
  NO_PROXY: "",
  no_proxy: "",
  GIT_ALLOW_PROTOCOL: "none",
};

/** Where kustomize output ends up in memory: larger output is refused rather than exhausting the heap. */
export const MAX_KUSTOMIZE_OUTPUT_BYTES = 64 * 1024 * 1024;
const KUSTOMIZE_TIMEOUT_MS = 120_000;

function execute(command: string, args: readonly string[], env: NodeJS.ProcessEnv): Promise<string> {
  return new Promise((resolveOutput, reject) => {
    // The reconcile's deadline kills kustomize as it stops every other call of the reconcile.
    const deadline = deadlineSignal();
    const options = {
      maxBuffer: MAX_KUSTOMIZE_OUTPUT_BYTES, timeout: KUSTOMIZE_TIMEOUT_MS, env, ...(deadline ? { signal: deadline } : {}),
    };
    execFile(command, args, options, (error, stdout, stderr) => {
      if (error) reject(Object.assign(error, { stderr }));
      else resolveOutput(stdout);
    });
  });
}

async function onPath(name: string): Promise<string | undefined> {
  for (const directory of (process.env.PATH ?? "").split(delimiter).filter(Boolean)) {
    const candidate = resolve(directory, name);
    if (await access(candidate, constants.X_OK).then(() => true, () => false)) return candidate;
  }
  return undefined;
}

/** FERRY_KUSTOMIZE, else `kustomize` on the PATH, else `kubectl kustomize`, as an absolute program and its arguments. */
async function kustomizeCommand(directory: string): Promise<{ program: string; args: string[] }> {
  const args = ["--load-restrictor", "LoadRestrictionsNone", directory];
  if (process.env.FERRY_KUSTOMIZE) return { program: resolve(process.env.FERRY_KUSTOMIZE), args: ["build", ...args] };
  const kustomize = await onPath("kustomize");
  if (kustomize) return { program: kustomize, args: ["build", ...args] };
  const kubectl = await onPath("kubectl");
  if (kubectl) return { program: kubectl, args: ["kustomize", ...args] };
  throw new BuildError("kustomize not found: install kustomize or kubectl, or set FERRY_KUSTOMIZE to kustomize's path");
}

/**
 * Runs kustomize on `directory`. With a sandbox, the process can read `readable` (the build copy) and nothing else,
 * and sees none of the controller's environment; without one (the CLI, building the user's own files) it runs as is.
 */
export async function runKustomize(directory: string, readable: string, sandbox?: Sandbox): Promise<string> {
  const { program, args } = await kustomizeCommand(directory);
  const env = sandbox ? { HOME: readable, ...NO_NETWORK_ENV } : { ...process.env, ...NO_NETWORK_ENV };
  const command = sandbox ? confinedCommand(sandbox, program, args, [readable]) : { command: program, args };
  try {
    return await execute(command.command, command.args, env);
  } catch (error) {
    throw kustomizeFailure(error, command.command, directory, sandbox);
  }
}

/** Kustomize's stderr can be a whole Go stack dump: a message keeps its first lines, and names a limit it hit. */
const MAX_STDERR_IN_MESSAGE = 2048;

function kustomizeFailure(error: unknown, command: string, directory: string, sandbox: Sandbox | undefined): FerryError {
  // execFile's error carries the exit status in `code` when the process ran, an errno string when it did not.
  const failure = error as Error & { stderr?: unknown; code?: string | number; signal?: string; killed?: boolean };
  if (failure.name === "AbortError") return new BuildError("kustomize build stopped: the reconcile's timeout passed", { cause: error });
  if (failure.code === "ENOENT") return new BuildError(`cannot run ${command}: not found`, { cause: error });
  if (failure.code === "ERR_CHILD_PROCESS_STDIO_MAXBUFFER") {
    return new BuildError(`kustomize build output exceeds ${MAX_KUSTOMIZE_OUTPUT_BYTES / 1024 / 1024} MiB`, { cause: error });
  }
  const stderr = String(failure.stderr ?? "").trim().replaceAll(`${directory}/`, "").replaceAll(directory, ".");
  if (sandbox && failure.code === SANDBOX_SETUP_FAILED) {
    return new SandboxUnavailableError(`the build sandbox could not start kustomize: ${stderr.slice(0, MAX_STDERR_IN_MESSAGE)}`, { cause: error });
  }
  if (failure.signal === "SIGXCPU" || (sandbox && failure.signal === "SIGKILL" && !failure.killed)) {
    return new BuildError(`kustomize build used more than its ${sandbox?.maxCpuSeconds ?? "?"} s of CPU time`, { cause: error });
  }
  if (failure.killed) return new BuildError(`kustomize build did not finish within ${KUSTOMIZE_TIMEOUT_MS / 1000} s`, { cause: error });
  if (sandbox && /^fatal error: (runtime: )?(out of memory|cannot allocate memory)/m.test(stderr)) {
    return new BuildError(`kustomize build needed more than its ${sandbox.maxMemoryBytes / 1024 / 1024} MiB of memory`, { cause: error });
  }
  const shown = stderr.length > MAX_STDERR_IN_MESSAGE ? `${stderr.slice(0, MAX_STDERR_IN_MESSAGE)}…` : stderr;
  return new BuildError(`kustomize build failed: ${shown || failure.message}`, { cause: error });
}

/**
 * The objects of multi-document YAML, read with the bounds of loadYamlDocuments (size, alias expansion; a
 * YamlInputError otherwise). Each document must name its object; `invalid` makes the error for one that does not.
 */
export function parseManifests(
  text: string,
  origin: string,
  invalid: (message: string) => Error = (message) => new BuildError(message),
): ManifestObject[] {
  const objects: ManifestObject[] = [];
  // kustomize writes every object out in full, never with anchors; whatever expands past the text's own size came
  // from aliases a substituted value brought in, and would multiply the memory a reconcile takes.
  for (const document of loadYamlDocuments(text, { origin, expansionPerByte: 2 })) {
    if (document === null || document === undefined) continue;
    const object = document as Partial<ManifestObject>;
    if (!object.apiVersion || !object.kind || !object.metadata?.name) {
      throw invalid(`${origin} has a document without apiVersion, kind or metadata.name`);
    }
    objects.push(object as ManifestObject);
  }
  return objects;
}

/**
 * The failures the output worker can report, by class name, so they keep their disposition across the thread. (Built
 * on use: substitute.ts imports this module, so its class may not exist yet while this module loads.)
 */
function rebuildOutputError(name: string, message: string): Error {
  const known: Readonly<Record<string, new (message: string) => FerryError>> = { BuildError, SubstitutionError, YamlInputError };
  return new (known[name] ?? BuildError)(message);
}

export interface BuildOptions {
  readonly overlay?: KustomizeOverlay;
  /** Post-build ${var} substitution; skipped when empty, as Flux does. */
  readonly variables?: Readonly<Record<string, string>>;
  readonly strictSubstitution?: boolean;
  /** Substitute even without variables (Flux's substituteStrategy Always), so that ${var:=default} takes effect. */
  readonly substituteAlways?: boolean;
  /** Confines kustomize to the build copy; the controller always sets it, since the artifact is a tenant's. */
  readonly sandbox?: Sandbox;
  /** Where the private copy is made (default: the OS temporary directory); the controller keeps it in its cache. */
  readonly scratchDir?: string;
  /**
   * Runs on the private copy after its references were checked and before kustomize: SOPS decryption writes plaintext
   * here, so it exists only in the build's scratch directory, which is removed when the build ends.
   */
  readonly prepare?: (copy: string, directory: string) => Promise<void>;
}

/**
 * Builds `path` inside the artifact at `root` (which is never modified: the build works on a private copy). The path
 * may not leave the artifact, and neither may any kustomization reference.
 */
export async function buildManifests(root: string, path = "", options: BuildOptions = {}): Promise<ManifestObject[]> {
  const relative = path.replace(/^\.?\//, "");
  const requested = resolve(root, relative);
  if (!isInside(resolve(root), requested)) throw new BuildError(`path ${path} leaves the artifact`);
  const info = await stat(requested).catch(() => undefined);
  if (!info?.isDirectory()) throw new BuildError(`kustomization path not found: ${path || "."}`);
  const work = await mkdtemp(join(options.scratchDir ?? tmpdir(), "ferry-build-"));
  try {
    const copy = join(work, "artifact");
    await cp(root, copy, { recursive: true, verbatimSymlinks: true });
    const directory = resolve(copy, relative);
    await prepareKustomization(copy, directory, options.overlay ?? {});
    await refuseRemoteBases(copy, directory);
    await options.prepare?.(copy, directory);
    const output = await runKustomize(directory, copy, options.sandbox);
    const job = { text: output, origin: `kustomize build ${path || "."}`, variables: options.variables ?? {}, strict: options.strictSubstitution ?? true,
      ...(options.substituteAlways ? { always: true } : {}) };
    return await readOutputInWorker(job, rebuildOutputError, deadlineSignal());
  } finally {
    await rm(work, { recursive: true, force: true });
  }
}
