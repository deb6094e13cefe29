// Which files and objects of a Kustomization are decrypted, following Flux's kustomize-controller: before the build,
// the files its kustomizations name (resource files, secretGenerator files and envs, patch files), decrypted in the
// private build copy so kustomize reads plaintext; after the build, Secret data values that are themselves SOPS
// files. Decrypting files before kustomize touches them is also what lets Ferry verify every MAC: after the build the
// objects carry namespaces, labels and reordered keys that no MAC covers (which is why Flux skips that check).
import { lstat, readFile, realpath, stat, writeFile } from "node:fs/promises";
import { join, resolve } from "node:path";
import yaml from "js-yaml";
import { isInside } from "../artifact/tarball.ts";
import { policyEntry } from "../api/flux-annotations.ts";
import { KUSTOMIZATION_FILES } from "../kustomize/generate.ts";
import { loadYamlDocument } from "../kustomize/yaml-load.ts";
import type { AgeIdentities } from "./age-keys.ts";
import { DecryptionError } from "./errors.ts";
import { detectFormat, formatForPath, MARKERS, type SopsFormat } from "./sops-formats.ts";
import { decryptSops, MAX_SOPS_BYTES } from "./sops.ts";

export const DECRYPT_ANNOTATION = "kustomize.ferry.dev/decrypt";

export interface DecryptionContext {
  readonly identities: AgeIdentities;
  /** Every plaintext value decrypted, so that no message can quote it (SecretValues.add). */
  readonly reveal?: (value: string) => void;
}

type Mapping = Record<string, unknown>;

interface FileWalk extends DecryptionContext {
  readonly realRoot: string;
  readonly visited: Set<string>;
  readonly decrypted: Set<string>;
}

function isMapping(value: unknown): value is Mapping {
  return typeof value === "object" && value !== null && !Array.isArray(value);
}

function entries(value: unknown): string[] {
  return Array.isArray(value) ? value.filter((item): item is string => typeof item === "string" && item !== "") : [];
}

function mappings(value: unknown): Mapping[] {
  return Array.isArray(value) ? value.filter(isMapping) : [];
}

function shown(walk: FileWalk, path: string): string {
  return path.slice(walk.realRoot.length + 1) || ".";
}

/** Whether the first document of a plaintext-metadata file opts out with kustomize.ferry.dev/decrypt: disabled. */
function decryptionDisabled(text: string): boolean {
  const metadata = /^metadata:/m.test(text) ? (() => {
    try {
      const first = yaml.loadAll(text, undefined, { schema: yaml.FAILSAFE_SCHEMA })[0];
      return isMapping(first) && isMapping(first.metadata) ? first.metadata : undefined;
    } catch {
      return undefined;
    }
  })() : undefined;
  return policyEntry(metadata as never, DECRYPT_ANNOTATION)?.toLowerCase() === "disabled";
}

/** Decrypts one file in place when it carries a SOPS marker; `format` is undefined for a resource (YAML or JSON). */
async function decryptFile(walk: FileWalk, base: string, entry: string, format: SopsFormat | undefined): Promise<void> {
  const lexical = resolve(base, entry);
  const path = await realpath(lexical).catch(() => undefined);
  // Missing files are kustomize's to report; refuseRemoteBases already refused paths leaving the artifact.
  if (!path || walk.decrypted.has(path) || !isInside(walk.realRoot, path)) return;
  const info = await lstat(path);
  if (!info.isFile()) return;
  const where = shown(walk, path);
  if (info.size > MAX_SOPS_BYTES) {
    // A large resource file is most likely plain manifests; a large generator or patch file may be encrypted.
    if (format === undefined && !(await readFile(path, "utf8")).includes("sops")) return;
    throw new DecryptionError(`${where} is ${info.size} bytes, over the ${MAX_SOPS_BYTES}-byte limit for encrypted files`);
  }
  const data = await readFile(path);
  const text = data.toString("utf8");
  const input = format ?? (/\.(ya?ml|json)$/.test(path) ? detectFormat(text) : undefined);
  if (!input || !text.includes(MARKERS[input])) return;
  if (format === undefined && decryptionDisabled(text)) return;
  // A resource file becomes plaintext YAML, which kustomize reads; a generator or patch file keeps its format.
  const options = { input, output: format === undefined ? "yaml" as const : input, where, ...(walk.reveal ? { reveal: walk.reveal } : {}) };
  const plain = await decryptSops(data, walk.identities, options);
  await writeFile(path, plain, { mode: 0o600 });
  walk.decrypted.add(path);
}

async function kustomizationIn(directory: string): Promise<Mapping | undefined> {
  for (const name of KUSTOMIZATION_FILES) {
    const path = join(directory, name);
    if (!(await stat(path).catch(() => undefined))?.isFile()) continue;
    const document = loadYamlDocument(await readFile(path, "utf8"), { origin: name, schema: yaml.CORE_SCHEMA, maxBytes: 4 * 1024 * 1024 });
    return isMapping(document) ? document : undefined;
  }
  return undefined;
}

async function decryptGenerators(walk: FileWalk, directory: string, kustomization: Mapping): Promise<void> {
  for (const generator of mappings(kustomization.secretGenerator)) {
    for (const file of entries(generator.files)) {
      // "key=path" or "path"; the key's extension decides the format, as in Flux.
      const at = file.indexOf("=");
      const key = at < 0 ? file : file.slice(0, at);
      await decryptFile(walk, directory, at < 0 ? file : file.slice(at + 1), formatForPath(key));
    }
    const envs = [...entries(generator.envs), ...entries([generator.env])];
    for (const env of envs) {
      const format = formatForPath(env);
      await decryptFile(walk, directory, env, format === "binary" ? "dotenv" : format);
    }
  }
}

async function walkDirectory(walk: FileWalk, directory: string): Promise<void> {
  const real = await realpath(directory).catch(() => undefined);
  if (!real || walk.visited.has(real) || !isInside(walk.realRoot, real)) return;
  walk.visited.add(real);
  const kustomization = await kustomizationIn(real);
  if (!kustomization) return;
  await decryptGenerators(walk, real, kustomization);
  for (const patch of mappings(kustomization.patches)) {
    if (typeof patch.path === "string" && patch.path) await decryptFile(walk, real, patch.path, formatForPath(patch.path));
  }
  for (const entry of [...entries(kustomization.resources), ...entries(kustomization.bases), ...entries(kustomization.components)]) {
    const target = resolve(real, entry);
    const info = await stat(target).catch(() => undefined);
    if (info?.isDirectory()) await walkDirectory(walk, target);
    else if (info?.isFile()) await decryptFile(walk, real, entry, undefined);
  }
}

/**
 * Decrypts, in place, the SOPS files the kustomization graph at `directory` reads (inside the build copy `root`):
 * encrypted resource files become plaintext YAML, generator and patch files keep their format.
 */
export async function decryptKustomizationFiles(root: string, directory: string, context: DecryptionContext): Promise<void> {
  const walk: FileWalk = { ...context, realRoot: await realpath(root), visited: new Set(), decrypted: new Set() };
  await walkDirectory(walk, directory);
}
