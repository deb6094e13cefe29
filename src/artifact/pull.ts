// Pulling an artifact: read the manifest (its digest computed from the bytes), download the content layer verified
// against its digest (into memory when small, else to a temporary file), and only then extract it safely.
import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
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
    return { ...info, layer, extracted: await extractArchiveBuffer(bytes, output, limits) };
  }
  const scratch = await mkdtemp(join(tmpdir(), "ferry-pull-"));
  try {
    const blob = join(scratch, "layer");
    await client.fetchBlobToFile(reference.registry, reference.repository, layer, blob, download);
    const extracted = await extractArchiveFile(blob, output, limits);
    return { ...info, layer, extracted };
  } finally {
    await rm(scratch, { recursive: true, force: true });
  }
}
