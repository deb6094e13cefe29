// Prepares a Kustomization's directory for `kustomize build`, as Flux's kustomize-controller does
// (fluxcd/pkg kustomize/kustomize_generator.go): generate a kustomization.yaml when the directory has none, then overlay
// the spec fields (targetNamespace, namePrefix, nameSuffix, patches, images, components) onto it. It also walks the
// kustomization graph before kustomize runs and refuses remote bases and paths leaving the artifact, so a build only
// ever reads the verified artifact: what was signed is what gets applied, and kustomize never reaches the network.
import { readdir, readFile, realpath, stat, writeFile } from "node:fs/promises";
import { isAbsolute, join, relative, resolve } from "node:path";
import yaml from "js-yaml";
import { type Disposition, FerryError } from "../errors.ts";
import { isInside } from "../artifact/tarball.ts";
import { loadYamlDocument, loadYamlDocuments, YamlInputError } from "./yaml-load.ts";

/** A kustomization references something outside the artifact: a remote base or a path leaving the root. */
export class RemoteBaseError extends FerryError {
  readonly code = "REMOTE_BASE_REFUSED";
  readonly disposition: Disposition = "stall";
}

/** The artifact's manifests or kustomization files cannot be used; only a new artifact revision can fix that. */
export class KustomizationInputError extends FerryError {
  readonly code = "KUSTOMIZATION_INPUT";
  readonly disposition: Disposition = "stall";
}

export interface PatchTarget {
  group?: string;
  version?: string;
  kind?: string;
  name?: string;
  namespace?: string;
  labelSelector?: string;
  annotationSelector?: string;
}

export interface ImageOverride {
  name: string;
  newName?: string;
  newTag?: string;
  digest?: string;
}

/** The Kustomization spec fields that Flux writes into kustomization.yaml before building. */
export interface KustomizeOverlay {
  targetNamespace?: string;
  namePrefix?: string;
  nameSuffix?: string;
  patches?: Array<{ patch: string; target?: PatchTarget }>;
  images?: ImageOverride[];
  components?: string[];
  /** Flux's ignoreMissingComponents: spec components that do not exist are left out. */
  ignoreMissingComponents?: boolean;
  /** kustomize's buildMetadata options; replace the file's own, as Flux does. */
  buildMetadata?: string[];
}

/** The file names kustomize recognises, in the order it looks for them. */
export const KUSTOMIZATION_FILES = ["kustomization.yaml", "kustomization.yml", "Kustomization"] as const;

const KUSTOMIZE_API_VERSION = "kustomize.config.k8s.io/v1beta1";
// kustomize refuses a kustomization with no fields ("kustomization.yaml is empty"); a namespace on zero resources is
// inert, so an empty directory builds to nothing instead of failing, as it does in Flux.
const EMPTY_NAMESPACE = "_placeholder";

type Mapping = Record<string, unknown>;

function isMapping(value: unknown): value is Mapping {
  return typeof value === "object" && value !== null && !Array.isArray(value);
}

function compareNames(a: string, b: string): number {
  // Go's filepath.Walk orders entries bytewise; matching it keeps resource order identical to Flux's.
  return Buffer.compare(Buffer.from(a, "utf8"), Buffer.from(b, "utf8"));
}

async function kustomizationFileIn(directory: string): Promise<string | undefined> {
  for (const name of KUSTOMIZATION_FILES) {
    const info = await stat(join(directory, name)).catch(() => undefined);
    if (info?.isFile()) return name;
  }
  return undefined;
}

function shown(root: string, path: string): string {
  return relative(root, path) || ".";
}

/** YAML that is too big, invalid or expands too far is one more kind of unusable artifact input. */
function asInputError<T>(load: () => T): T {
  try {
    return load();
  } catch (error) {
    if (error instanceof YamlInputError) throw new KustomizationInputError(error.message, { cause: error });
    throw error;
  }
}

// ---- generating ----------------------------------------------------------------------------------------------------

/**
 * Flux fails the build when a *.yaml/*.yml file does not decode as Kubernetes objects, rather than skipping it, and so do
 * we: silently dropping a file (a misspelt `kind`, a stray values.yaml) would apply less than the author meant. Each
 * non-empty document needs apiVersion, kind and metadata.name (lists need no name), as the rest of Ferry requires.
 */
function checkManifestFile(text: string, origin: string): void {
  const documents = asInputError(() => loadYamlDocuments(text, { origin, schema: yaml.CORE_SCHEMA }));
  documents.forEach((document, index) => {
    if (document === null || document === undefined) return;
    const where = documents.length > 1 ? `${origin} (document ${index + 1})` : origin;
    if (!isMapping(document)) throw new KustomizationInputError(`${where} is not a Kubernetes object`);
    const kind = document.kind;
    if (typeof document.apiVersion !== "string" || !document.apiVersion || typeof kind !== "string" || !kind) {
      throw new KustomizationInputError(`${where} is not a Kubernetes object: it has no apiVersion or kind`);
    }
    const metadata = document.metadata;
    if (!kind.endsWith("List") && !(isMapping(metadata) && typeof metadata.name === "string" && metadata.name)) {
      throw new KustomizationInputError(`${where} has a ${kind} without metadata.name`);
    }
  });
}

/** Resources for a generated kustomization: YAML files depth-first in name order, and nested kustomization directories. */
async function generatedResources(root: string, base: string, directory: string): Promise<string[]> {
  const resources: string[] = [];
  const entries = (await readdir(directory, { withFileTypes: true })).sort((a, b) => compareNames(a.name, b.name));
  for (const entry of entries) {
    const full = join(directory, entry.name);
    const resource = `./${relative(base, full)}`;
    if (entry.isDirectory()) {
      if (await kustomizationFileIn(full)) resources.push(resource);
      else resources.push(...(await generatedResources(root, base, full)));
    } else if ((entry.isFile() || entry.isSymbolicLink()) && /\.ya?ml$/.test(entry.name)) {
      // Symlinked directories are not descended (Flux walks with lstat); a symlinked file is read through the link, and
      // refuseRemoteBases rejects it if the link leaves the artifact.
      const info = await stat(full).catch(() => undefined);
      if (!info?.isFile()) continue;
      checkManifestFile(await readFile(full, "utf8"), shown(root, full));
      resources.push(resource);
    }
  }
  return resources;
}

// ---- overlaying ----------------------------------------------------------------------------------------------------

function listField(document: Mapping, field: string, file: string): unknown[] {
  const value = document[field];
  if (value === undefined || value === null) return [];
  if (!Array.isArray(value)) throw new KustomizationInputError(`${file}: ${field} must be a list`);
  return value;
}

function patchEntry(patch: { patch: string; target?: PatchTarget }): Mapping {
  const entry: Mapping = { patch: patch.patch };
  if (patch.target) {
    const target = Object.fromEntries(Object.entries(patch.target).filter(([, value]) => value !== undefined && value !== ""));
    if (Object.keys(target).length > 0) entry.target = target;
  }
  return entry;
}

/** Flux replaces an image entry of the same name as a whole; a digest pins the image, so it replaces any newTag. */
function imageEntry(image: ImageOverride): Mapping {
  const entry: Mapping = { name: image.name };
  if (image.newName) entry.newName = image.newName;
  if (image.digest) entry.digest = image.digest;
  else if (image.newTag) entry.newTag = image.newTag;
  return entry;
}

function isEmptyKustomization(document: Mapping): boolean {
  return Object.entries(document).every(([key, value]) => {
    if (key === "apiVersion" || key === "kind") return true;
    if (value === null || value === undefined || value === "") return true;
    if (Array.isArray(value)) return value.length === 0;
    return isMapping(value) && Object.keys(value).length === 0;
  });
}

async function applyOverlay(root: string, directory: string, file: string, document: Mapping, overlay: KustomizeOverlay) {
  if (overlay.targetNamespace) document.namespace = overlay.targetNamespace;
  // Like targetNamespace, the spec's prefix and suffix replace the file's own rather than stacking on them.
  if (overlay.namePrefix) document.namePrefix = overlay.namePrefix;
  if (overlay.nameSuffix) document.nameSuffix = overlay.nameSuffix;
  if (overlay.patches?.length) {
    document.patches = [...listField(document, "patches", file), ...overlay.patches.map(patchEntry)];
  }
  if (overlay.images?.length) {
    const images = [...listField(document, "images", file)];
    for (const image of overlay.images) {
      const index = images.findIndex((existing) => isMapping(existing) && existing.name === image.name);
      if (index >= 0) images[index] = imageEntry(image);
      else images.push(imageEntry(image));
    }
    document.images = images;
  }
  if (overlay.components?.length) {
    const components = await specComponents(root, directory, file, overlay);
    if (components.length > 0) document.components = [...listField(document, "components", file), ...components];
  }
  if (overlay.buildMetadata?.length) document.buildMetadata = [...overlay.buildMetadata];
}

/**
 * The spec's components that go into the kustomization: each must be a relative path inside the artifact; with
 * ignoreMissingComponents, one that does not exist is left out (Flux checks existence after the path's form).
 */
async function specComponents(root: string, directory: string, file: string, overlay: KustomizeOverlay): Promise<string[]> {
  const walk: Walk = { realRoot: await realpath(root) };
  const realDirectory = await realpath(directory);
  const kept: string[] = [];
  for (const [index, component] of (overlay.components ?? []).entries()) {
    if (isAbsolute(component)) {
      throw new RemoteBaseError(`spec.components[${index}] "${component}" must be a path relative to the kustomization`);
    }
    if (overlay.ignoreMissingComponents && !remoteForm(component) && !(await landing(realDirectory, component)).exists) continue;
    await checkReference(walk, realDirectory, file, `spec.components[${index}]`, component);
    kept.push(component);
  }
  return kept;
}

/**
 * Prepares `directory` (a private, writable copy of the artifact rooted at `root`) for `kustomize build`. An existing
 * kustomization file gets the overlay merged in and is written back under its own name; otherwise kustomization.yaml is
 * generated from every YAML file below the directory. Spec components must be local paths inside the artifact.
 */
export async function prepareKustomization(root: string, directory: string, overlay: KustomizeOverlay): Promise<void> {
  if (!isInside(resolve(root), resolve(directory))) {
    throw new RemoteBaseError(`kustomization path ${directory} is outside the artifact ${root}`);
  }
  const existing = await kustomizationFileIn(directory);
  const fileName = existing ?? KUSTOMIZATION_FILES[0];
  const file = shown(root, join(directory, fileName));
  let document: Mapping;
  if (existing) {
    document = loadKustomization(await readFile(join(directory, existing), "utf8"), file);
  } else {
    const resources = await generatedResources(root, directory, directory);
    document = { apiVersion: KUSTOMIZE_API_VERSION, kind: "Kustomization", ...(resources.length > 0 ? { resources } : {}) };
  }
  const before = JSON.stringify(document);
  await applyOverlay(root, directory, file, document, overlay);
  if (isEmptyKustomization(document)) document.namespace = EMPTY_NAMESPACE;
  // An untouched existing file is left byte for byte as the author wrote it; re-serialising could only lose detail.
  if (existing && JSON.stringify(document) === before) return;
  // Loaded with the YAML 1.2 core schema but dumped with js-yaml's default one, which quotes strings such as dates and
  // "yes" that kustomize's YAML 1.1 parser would otherwise read as something else.
  await writeFile(join(directory, fileName), yaml.dump(document, { lineWidth: -1, noRefs: true }));
}

/** Far above any real kustomization file, which lists paths and small patches; an alias bomb needs no size at all. */
const MAX_KUSTOMIZATION_BYTES = 4 * 1024 * 1024;

function loadKustomization(text: string, file: string): Mapping {
  const options = { origin: file, schema: yaml.CORE_SCHEMA, maxBytes: MAX_KUSTOMIZATION_BYTES };
  const document = asInputError(() => loadYamlDocument(text, options));
  if (document === null || document === undefined) return {};
  if (!isMapping(document)) throw new KustomizationInputError(`${file} is not a kustomization: it is not a mapping`);
  return document;
}

// ---- refusing remote bases -----------------------------------------------------------------------------------------

const SCHEME = /^[a-z][a-z0-9+.-]*:\/\//i; // https://, ssh://, file://, s3:// …
const FORCED_GETTER = /^[a-z][a-z0-9+.-]*::/i; // go-getter's git::https://…
const SCP_LIKE = /^[^/\s@]+@[^/\s:]+:/; // git@github.com:org/repo.git
const GETTER_QUERY = /\?(.*&)?(ref|version|submodules|timeout|depth)=/;
const HOST_SEGMENT = /^[a-z0-9-]+(\.[a-z0-9-]+)*\.[a-z]{2,}$/i;

/** Why `entry` names a remote location, or undefined for a local path. Only a few forms are decidable without the disk. */
function remoteForm(entry: string): string | undefined {
  if (SCHEME.test(entry)) return "a URL";
  if (FORCED_GETTER.test(entry)) return "a go-getter URL";
  if (SCP_LIKE.test(entry)) return "an SSH Git address";
  if (entry.startsWith("gh:")) return "a GitHub shorthand";
  // kustomize clones github.com/... even when a local directory of that name exists.
  if (entry.startsWith("github.com/")) return "a GitHub repository";
  if (GETTER_QUERY.test(entry)) return "a remote reference with a ?ref= style query";
  if (entry.includes("//")) return "a go-getter address (// separates repository and path)";
  return undefined;
}

interface Walk {
  /** The artifact root with symlinks resolved: every reference must land inside it. */
  readonly realRoot: string;
}

/** Where a local reference really lands, following symlinks the way the OS will; lexical when it does not exist. */
async function landing(base: string, entry: string): Promise<{ path: string; exists: boolean }> {
  // kustomize joins lexically (filepath.Join) from its already real root, and the OS then follows links in what remains.
  const lexical = resolve(base, entry);
  try {
    return { path: await realpath(lexical), exists: true };
  } catch {
    return { path: lexical, exists: false };
  }
}

/** Checks one entry of `file` (in the real directory `realBase`) and returns where it really lands. */
async function checkReference(walk: Walk, realBase: string, file: string, field: string, entry: string): Promise<string> {
  const form = remoteForm(entry);
  const named = `${file}: ${field} "${entry}"`;
  if (form) {
    throw new RemoteBaseError(`${named} is ${form}; remote bases are refused, Ferry builds only from the verified artifact`);
  }
  const target = await landing(realBase, entry);
  if (!isInside(walk.realRoot, target.path)) {
    const how = isAbsolute(entry) ? "is an absolute path" : target.exists ? "resolves (following symlinks)" : "resolves";
    throw new RemoteBaseError(`${named} ${how} outside the artifact; only paths inside the artifact can be built`);
  }
  const firstSegment = entry.replace(/^\.\//, "").split("/")[0] ?? "";
  if (!target.exists && !entry.startsWith("./") && HOST_SEGMENT.test(firstSegment)) {
    // Older kustomize versions clone any host/org/repo; a missing path shaped like one is far more likely a remote base.
    throw new RemoteBaseError(`${named} is not in the artifact and looks like a remote repository; remote bases are refused`);
  }
  return target.path;
}

function strings(value: unknown): Array<[number, string]> {
  if (!Array.isArray(value)) return [];
  return value.flatMap((item, index): Array<[number, string]> => (typeof item === "string" ? [[index, item]] : []));
}

// A patchesStrategicMerge, generator or transformer entry may be inline YAML instead of a path; such text names no file.
function isInlineYaml(entry: string): boolean {
  return entry.includes("\n") || /^\s*[{[]/.test(entry) || /:\s/.test(entry);
}

/** The file-only references of one kustomization: [field, entry] pairs whose paths must stay inside the artifact. */
function fileReferences(document: Mapping): Array<[string, string]> {
  const references: Array<[string, string]> = [];
  const add = (field: string, value: unknown) => {
    if (typeof value === "string" && value) references.push([field, value]);
  };
  const eachMapping = (field: string, visit: (item: Mapping, at: string) => void) => {
    const value = document[field];
    if (Array.isArray(value)) value.forEach((item, index) => isMapping(item) && visit(item, `${field}[${index}]`));
  };
  eachMapping("patches", (patch, at) => add(`${at}.path`, patch.path));
  eachMapping("patchesJson6902", (patch, at) => add(`${at}.path`, patch.path));
  eachMapping("replacements", (replacement, at) => add(`${at}.path`, replacement.path));
  for (const [index, entry] of strings(document.patchesStrategicMerge)) {
    if (!isInlineYaml(entry)) add(`patchesStrategicMerge[${index}]`, entry);
  }
  for (const generator of ["configMapGenerator", "secretGenerator"]) {
    eachMapping(generator, (item, at) => {
      // files entries may be "key=path"; the path is what gets read.
      for (const [index, entry] of strings(item.files)) add(`${at}.files[${index}]`, entry.replace(/^[^=]*=/, ""));
      for (const [index, entry] of strings(item.envs)) add(`${at}.envs[${index}]`, entry);
      add(`${at}.env`, item.env);
    });
  }
  for (const field of ["crds", "configurations"]) for (const [index, entry] of strings(document[field])) add(`${field}[${index}]`, entry);
  if (isMapping(document.openapi)) add("openapi.path", document.openapi.path);
  if (isMapping(document.helmGlobals)) add("helmGlobals.chartHome", document.helmGlobals.chartHome);
  eachMapping("helmCharts", (chart, at) => {
    add(`${at}.valuesFile`, chart.valuesFile);
    for (const [index, entry] of strings(chart.additionalValuesFiles)) add(`${at}.additionalValuesFiles[${index}]`, entry);
  });
  return references;
}

/** References that may be directories holding further kustomizations, which are walked in turn. */
function treeReferences(document: Mapping): Array<[string, string]> {
  const references: Array<[string, string]> = [];
  for (const field of ["resources", "bases", "components"]) {
    for (const [index, entry] of strings(document[field])) references.push([`${field}[${index}]`, entry]);
  }
  for (const field of ["generators", "transformers", "validators"]) {
    for (const [index, entry] of strings(document[field])) if (!isInlineYaml(entry)) references.push([`${field}[${index}]`, entry]);
  }
  return references;
}

/** Fields of builtin generator, transformer and validator configs that name files to read (files may be key=path). */
const PLUGIN_PATH_FIELDS = new Set(["path", "paths", "files", "envs", "env", "valuesFile", "additionalValuesFiles", "chartHome"]);

/** Every [field, path] a plugin config names, at any depth (ReplacementTransformer keeps them in replacements[]). */
function pluginConfigReferences(config: unknown, at: string): Array<[string, string]> {
  if (Array.isArray(config)) return config.flatMap((item, index) => pluginConfigReferences(item, `${at}[${index}]`));
  if (!isMapping(config)) return [];
  return Object.entries(config).flatMap(([key, value]): Array<[string, string]> => {
    const field = `${at}.${key}`;
    if (!PLUGIN_PATH_FIELDS.has(key)) return pluginConfigReferences(value, field);
    const entries = typeof value === "string" ? [value] : strings(value).map(([, entry]) => entry);
    return entries.map((entry): [string, string] => [field, key === "files" ? entry.replace(/^[^=]*=/, "") : entry]);
  });
}

/**
 * The configs of `generators`, `transformers` and `validators`, inline or in files: kustomize runs builtin plugins
 * from them, and their file fields are read like any other reference (CVE-2022-24877 went through here).
 */
async function pluginConfigs(
  walk: Walk,
  realDirectory: string,
  file: string,
  document: Mapping,
): Promise<Array<{ at: string; config: unknown }>> {
  const configs: Array<{ at: string; config: unknown }> = [];
  for (const field of ["generators", "transformers", "validators"]) {
    for (const [index, entry] of strings(document[field])) {
      const at = `${field}[${index}]`;
      const origin = `${file}: ${at}`;
      let text = entry;
      if (!isInlineYaml(entry)) {
        const target = await checkReference(walk, realDirectory, file, at, entry);
        const info = await stat(target).catch(() => undefined);
        if (!info?.isFile()) continue;
        text = await readFile(target, "utf8");
      }
      const loaded = asInputError(() => loadYamlDocuments(text, { origin, schema: yaml.CORE_SCHEMA, maxBytes: MAX_KUSTOMIZATION_BYTES }));
      for (const config of loaded) configs.push({ at, config });
    }
  }
  return configs;
}

async function walkKustomization(walk: Walk, realDirectory: string, visited: Set<string>): Promise<void> {
  // kustomize itself reports cycles; the set only keeps this walk finite and visits shared bases once.
  if (visited.has(realDirectory)) return;
  visited.add(realDirectory);
  const name = await kustomizationFileIn(realDirectory);
  if (!name) return;
  const file = shown(walk.realRoot, join(realDirectory, name));
  const document = loadKustomization(await readFile(join(realDirectory, name), "utf8"), file);
  for (const [index, chart] of (Array.isArray(document.helmCharts) ? document.helmCharts : []).entries()) {
    if (isMapping(chart) && typeof chart.repo === "string" && chart.repo) {
      const named = `${file}: helmCharts[${index}].repo "${chart.repo}"`;
      throw new RemoteBaseError(`${named} is a remote chart repository; remote bases are refused`);
    }
  }
  for (const [field, entry] of fileReferences(document)) await checkReference(walk, realDirectory, file, field, entry);
  for (const { at, config } of await pluginConfigs(walk, realDirectory, file, document)) {
    for (const [field, entry] of pluginConfigReferences(config, at)) await checkReference(walk, realDirectory, file, field, entry);
  }
  for (const [field, entry] of treeReferences(document)) {
    const target = await checkReference(walk, realDirectory, file, field, entry);
    const info = await stat(target).catch(() => undefined);
    if (info?.isDirectory()) await walkKustomization(walk, target, visited);
  }
}

/**
 * Walks the kustomization graph from `directory` (resources, bases, components, generators and every file path) and
 * throws RemoteBaseError, naming the file and entry, for any remote reference or any path that resolves outside `root`,
 * symlinks included. Run it after prepareKustomization, so the spec's components are checked along with the rest.
 */
export async function refuseRemoteBases(root: string, directory: string): Promise<void> {
  const realRoot = await realpath(root);
  const realDirectory = await realpath(directory);
  if (!isInside(realRoot, realDirectory)) {
    throw new RemoteBaseError(`kustomization path ${directory} resolves outside the artifact ${root}`);
  }
  await walkKustomization({ realRoot }, realDirectory, new Set());
}
