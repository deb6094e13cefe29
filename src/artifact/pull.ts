// Pulling an artifact: read the manifest (its digest computed from the bytes), download the content layer verified
// against its digest (into memory when small, else to a temporary file), and only then extract it safely.
import { lstatSync, mkdirSync, readdirSync, renameSync, rmSync } from "node:fs";
import { mkdir, mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { FerryError, type Disposition } from "../errors.ts";
import type { RegistryClient } from "../registry/client.ts";
import { type Descriptor, DOCKER_MANIFEST, type ImageManifest, OCI_MANIFEST } from "../registry/oci.ts";
import { formatReference, type Reference, withDigest } from "../registry/reference.ts";
import { ArtifactFormatError } from "./errors.ts";
import {
  DEFAULT_EXTRACT_LIMITS,
  type ExtractLimits,
  type ExtractResult,
  extractArchiveBuffer,
  extractArchiveFile,
  IN_MEMORY_BLOB_BYTES,
  removeEmptyDirectories,
} from "./extract.ts";
import { ANNOTATION_REVISION, ANNOTATION_SOURCE, FLUX_CONTENT_MEDIA_TYPE } from "./format.ts";

export interface ArtifactInfo {
  readonly reference: Reference;
  readonly digest: string;
  readonly manifest: ImageManifest;
  readonly annotations: Readonly<Record<string, string>>;
  readonly source?: string;
  readonly revision?: string;
}

export interface PullOptions {
  readonly limits?: ExtractLimits;
  /** Pick the layer with this media type; default: the Flux content layer, else the first layer (as Flux does). */
  readonly layerMediaType?: string;
  readonly onProgress?: (event: { phase: "layer"; transferred: number; total: number }) => void;
  readonly signal?: AbortSignal;
}

export interface PullResult extends ArtifactInfo {
  readonly layer: Descriptor;
  readonly extracted: ExtractResult;
}

/** The output directory holds an entry of another kind where the artifact has one: a directory where it has a file. */
export class OutputConflictError extends FerryError {
  readonly code = "OUTPUT_CONFLICT";
  readonly disposition: Disposition = "stall";
}

export function parseImageManifest(bytes: Buffer, reference: Reference): ImageManifest {
  let manifest: ImageManifest & { manifests?: unknown };
  try {
    manifest = JSON.parse(bytes.toString("utf8"));
  } catch (error) {
    throw new ArtifactFormatError(`manifest of ${formatReference(reference)} is not JSON`, { cause: error });
  }
  const mediaType = manifest.mediaType ?? OCI_MANIFEST;
  if (manifest.manifests !== undefined || (mediaType !== OCI_MANIFEST && mediaType !== DOCKER_MANIFEST)) {
    throw new ArtifactFormatError(`${formatReference(reference)} is ${mediaType}, not an artifact (image manifest)`);
  }
  if (!Array.isArray(manifest.layers) || manifest.layers.length === 0) {
    throw new ArtifactFormatError(`${formatReference(reference)} has no layers`);
  }
  return manifest;
}

/**
 * Reads an artifact's manifest. A tag is read in one request, as `flux pull` does: the digest is computed from the
 * bytes received (and checked against Docker-Content-Digest), so what is parsed is exactly what the digest names.
 */
export async function inspectArtifact(client: RegistryClient, reference: Reference, signal?: AbortSignal): Promise<ArtifactInfo> {
  const { bytes, descriptor } = await client.fetchManifest(reference, signal);
  const digest = descriptor.digest;
  const pinned = withDigest(reference, digest);
  const manifest = parseImageManifest(bytes, reference);
  const annotations = manifest.annotations ?? {};
  return {
    reference: { ...pinned, ...(reference.tag !== undefined ? { tag: reference.tag } : {}) },
    digest,
    manifest,
    annotations,
    ...(annotations[ANNOTATION_SOURCE] !== undefined ? { source: annotations[ANNOTATION_SOURCE] } : {}),
    ...(annotations[ANNOTATION_REVISION] !== undefined ? { revision: annotations[ANNOTATION_REVISION] } : {}),
  };
}

export function selectLayer(manifest: ImageManifest, mediaType?: string): Descriptor {
  const wanted = mediaType ?? FLUX_CONTENT_MEDIA_TYPE;
  const layer = manifest.layers.find((candidate) => candidate.mediaType === wanted) ?? (mediaType ? undefined : manifest.layers[0]);
  if (!layer) throw new ArtifactFormatError(`artifact has no layer of media type ${wanted}`);
  return layer;
}

export async function pullArtifact(
  client: RegistryClient,
  reference: Reference,
  output: string,
  options: PullOptions = {},
): Promise<PullResult> {
  const info = await inspectArtifact(client, reference, options.signal);
  const layer = selectLayer(info.manifest, options.layerMediaType);
  const limits = options.limits ?? DEFAULT_EXTRACT_LIMITS;
  const onProgress = (transferred: number) => options.onProgress?.({ phase: "layer", transferred, total: layer.size });
  const download = { maxBytes: limits.maxBytes, onProgress, ...(options.signal ? { signal: options.signal } : {}) };
  if (layer.size <= IN_MEMORY_BLOB_BYTES) {
    const bytes = await client.fetchBlobBytes(reference.registry, reference.repository, layer, download);
    return { ...info, layer, extracted: await extractInto(output, (staging) => extractArchiveBuffer(bytes, staging, limits)) };
  }
  const scratch = await mkdtemp(join(tmpdir(), "ferry-pull-"));
  try {
    const blob = join(scratch, "layer");
    await client.fetchBlobToFile(reference.registry, reference.repository, layer, blob, download);
    const extracted = await extractInto(output, (staging) => extractArchiveFile(blob, staging, limits));
    return { ...info, layer, extracted };
  } finally {
    await rm(scratch, { recursive: true, force: true });
  }
}

/**
 * Extracts into a staging directory inside `output`, then merges it in, as `flux pull artifact` extracts into an
 * existing directory: the artifact's files are added or replace what has their name (a file, or a link itself, never
 * its target), its directories merge with existing ones, and nothing the artifact does not name is touched. A refused
 * archive or a conflict leaves `output` as it was, and a missing `output` is removed again.
 */
async function extractInto(output: string, extract: (staging: string) => Promise<ExtractResult>): Promise<ExtractResult> {
  const createdRoot = await mkdir(output, { recursive: true });
  const staging = await mkdtemp(join(output, ".ferry-pull-"));
  let merged = false;
  try {
    const content = join(staging, "content");
    const extracted = await extract(content);
    mergeInto(content, output, join(staging, "replaced"));
    merged = true;
    return extracted;
  } finally {
    await rm(staging, { recursive: true, force: true });
    if (!merged && createdRoot) removeEmptyDirectories(output, createdRoot);
  }
}

/** One staged entry to move into the output, by its path relative to both roots. */
interface Move {
  readonly path: string;
  /** Something not a directory has this name already; it is set aside first, so a failed merge can put it back. */
  readonly replaces: boolean;
}

function existingEntry(path: string) {
  try {
    return lstatSync(path);
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === "ENOENT") return undefined;
    throw error;
  }
}

/**
 * Lists the moves, and refuses before any is made when an artifact's entry would replace a directory (its content is
 * the user's) or a directory of the artifact would merge into something not a directory, a link included: writing
 * through a link could leave the output.
 */
function planMerge(staged: string, output: string, relative = ""): Move[] {
  const moves: Move[] = [];
  for (const entry of readdirSync(join(staged, relative), { withFileTypes: true })) {
    const path = relative === "" ? entry.name : `${relative}/${entry.name}`;
    const existing = existingEntry(join(output, path));
    if (existing === undefined) moves.push({ path, replaces: false });
    else if (entry.isDirectory() && existing.isDirectory()) moves.push(...planMerge(staged, output, path));
    else if (entry.isDirectory() || existing.isDirectory()) {
      const theirs = existing.isDirectory() ? "a directory" : existing.isSymbolicLink() ? "a link" : "a file";
      throw new OutputConflictError(`the artifact's ${entry.isDirectory() ? "directory" : "file"} ${JSON.stringify(path)} is ${theirs} in ${output}; nothing was written`);
    } else moves.push({ path, replaces: true });
  }
  return moves;
}

/** Moves the staged tree into `output` by renames; if one fails, the moves made are undone in reverse order. */
function mergeInto(staged: string, output: string, setAside: string): void {
  const moves = planMerge(staged, output);
  const undo: Array<() => void> = [];
  try {
    for (const [index, { path, replaces }] of moves.entries()) {
      const target = join(output, path);
      if (replaces) {
        const aside = join(setAside, String(index));
        mkdirSync(setAside, { recursive: true });
        renameSync(target, aside);
        undo.push(() => renameSync(aside, target));
      }
      renameSync(join(staged, path), target);
      undo.push(() => rmSync(target, { recursive: true, force: true }));
    }
  } catch (error) {
    for (const step of undo.reverse()) step();
    throw error;
  }
}
