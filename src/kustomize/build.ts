// Building the manifests of a Kustomization as Flux does: a kustomization file is generated (or the existing one
// overlaid with the spec's namespace, prefixes, patches, images and components), built with a pinned kustomize
// that may not reach the network, and the output optionally run through ${var} substitution.
import { execFile } from "node:child_process";
import { cp, mkdtemp, rm, stat } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join, resolve } from "node:path";
import yaml from "js-yaml";
import { type Disposition, FerryError } from "../errors.ts";
import { isInside } from "../artifact/tarball.ts";
import { type KustomizeOverlay, prepareKustomization, refuseRemoteBases } from "./generate.ts";
import { substituteManifests } from "./substitute.ts";
import { yamlErrorSummary } from "./yaml-error.ts";

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

function execute(command: string, args: readonly string[]): Promise<string> {
  return new Promise((resolveOutput, reject) => {
    const options = { maxBuffer: 256 * 1024 * 1024, timeout: 120_000, env: { ...process.env, ...NO_NETWORK_ENV } };
    execFile(command, args, options, (error, stdout, stderr) => {
      if (error) reject(Object.assign(error, { stderr }));
      else resolveOutput(stdout);
    });
  });
}

/** FERRY_KUSTOMIZE, else `kustomize` on the PATH, else `kubectl kustomize`. */
async function runKustomize(directory: string): Promise<string> {
  const args = ["--load-restrictor", "LoadRestrictionsNone", directory];
  const candidates: Array<[string, string[]]> = process.env.FERRY_KUSTOMIZE
    ? [[process.env.FERRY_KUSTOMIZE, ["build", ...args]]]
    : [["kustomize", ["build", ...args]], ["kubectl", ["kustomize", ...args]]];
  for (const [command, commandArgs] of candidates) {
    try {
      return await execute(command, commandArgs);
    } catch (error) {
      if ((error as NodeJS.ErrnoException).code === "ENOENT") continue;
      const stderr = String((error as { stderr?: unknown }).stderr ?? "").trim().replaceAll(`${directory}/`, "").replaceAll(directory, ".");
      throw new BuildError(`kustomize build failed: ${stderr || (error as Error).message}`, { cause: error });
    }
  }
  throw new BuildError("kustomize not found: install kustomize or kubectl, or set FERRY_KUSTOMIZE to kustomize's path");
}

export function parseManifests(text: string, origin: string): ManifestObject[] {
  let documents: unknown[];
  try {
    documents = yaml.loadAll(text);
  } catch (error) {
    throw new BuildError(`${origin} is not valid YAML: ${yamlErrorSummary(error)}`, { cause: error });
  }
  const objects: ManifestObject[] = [];
  for (const document of documents) {
    if (document === null || document === undefined) continue;
    const object = document as Partial<ManifestObject>;
    if (!object.apiVersion || !object.kind || !object.metadata?.name) {
      throw new BuildError(`${origin} has a document without apiVersion, kind or metadata.name`);
    }
    objects.push(object as ManifestObject);
  }
  return objects;
}

export interface BuildOptions {
  readonly overlay?: KustomizeOverlay;
  /** Post-build ${var} substitution; skipped when empty, as Flux does. */
  readonly variables?: Readonly<Record<string, string>>;
  readonly strictSubstitution?: boolean;
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
  const work = await mkdtemp(join(tmpdir(), "ferry-build-"));
  try {
    const copy = join(work, "artifact");
    await cp(root, copy, { recursive: true, verbatimSymlinks: true });
    const directory = resolve(copy, relative);
    await prepareKustomization(copy, directory, options.overlay ?? {});
    await refuseRemoteBases(copy, directory);
    const output = await runKustomize(directory);
    const variables = options.variables ?? {};
    if (Object.keys(variables).length === 0) return parseManifests(output, `kustomize build ${path || "."}`);
    return substituteManifests(output, variables, { strict: options.strictSubstitution ?? true });
  } finally {
    await rm(work, { recursive: true, force: true });
  }
}
