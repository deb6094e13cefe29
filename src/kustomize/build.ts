// Building the manifests of a Kustomization: `kustomize build` when the directory has a kustomization file,
// otherwise every YAML document under it, as Flux generates a kustomization for such directories.
import { execFile } from "node:child_process";
import { readdir, readFile, stat } from "node:fs/promises";
import { join, resolve } from "node:path";
import yaml from "js-yaml";
import { type Disposition, FerryError } from "../errors.ts";
import { isInside } from "../artifact/tarball.ts";

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

const KUSTOMIZATION_FILES = ["kustomization.yaml", "kustomization.yml", "Kustomization"];

function kustomizeCommand(): [string, string[]] {
  const configured = process.env.FERRY_KUSTOMIZE;
  return configured ? [configured, ["build"]] : ["kustomize", ["build"]];
}

function runKustomize(directory: string): Promise<string> {
  const [command, args] = kustomizeCommand();
  return new Promise((resolveOutput, reject) => {
    execFile(command, [...args, directory], { maxBuffer: 256 * 1024 * 1024, timeout: 120_000 }, (error, stdout, stderr) => {
      if (error) reject(new BuildError(`kustomize build failed: ${stderr.trim() || error.message}`, { cause: error }));
      else resolveOutput(stdout);
    });
  });
}

async function yamlFiles(directory: string): Promise<string[]> {
  const files: string[] = [];
  for (const entry of (await readdir(directory, { withFileTypes: true })).sort((a, b) => (a.name < b.name ? -1 : 1))) {
    const full = join(directory, entry.name);
    if (entry.isDirectory()) files.push(...(await yamlFiles(full)));
    else if (entry.isFile() && /\.ya?ml$/.test(entry.name)) files.push(full);
  }
  return files;
}

export function parseManifests(text: string, origin: string): ManifestObject[] {
  let documents: unknown[];
  try {
    documents = yaml.loadAll(text);
  } catch (error) {
    throw new BuildError(`${origin} is not valid YAML: ${(error as Error).message}`, { cause: error });
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

/** Builds `path` inside the artifact at `root`; the path may not leave the artifact. */
export async function buildManifests(root: string, path = ""): Promise<ManifestObject[]> {
  const directory = resolve(root, path.replace(/^\.?\//, ""));
  if (!isInside(resolve(root), directory)) throw new BuildError(`path ${path} leaves the artifact`);
  const info = await stat(directory).catch(() => undefined);
  if (!info?.isDirectory()) throw new BuildError(`kustomization path not found: ${path || "."}`);
  const entries = await readdir(directory);
  if (KUSTOMIZATION_FILES.some((name) => entries.includes(name))) {
    return parseManifests(await runKustomize(directory), `kustomize build ${path || "."}`);
  }
  const objects: ManifestObject[] = [];
  for (const file of await yamlFiles(directory)) {
    objects.push(...parseManifests(await readFile(file, "utf8"), file.slice(resolve(root).length + 1)));
  }
  return objects;
}
