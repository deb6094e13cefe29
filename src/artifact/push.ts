// Pushing an artifact: build the layer, upload config and layer (skipping what the registry has), then the
// manifest under its tag. The manifest goes last, so a failed push never leaves a tag pointing at missing blobs;
// with a signer, the manifest goes up by digest and is signed before it is tagged, so a consumer that follows the
// tag and verifies never sees the new artifact unsigned.
import { blobFromBuffer, blobFromFile, type ProgressCallback, type RegistryClient } from "../registry/client.ts";
import { OCI_MANIFEST } from "../registry/oci.ts";
import { type Reference, withDigest } from "../registry/reference.ts";
import { type ArtifactMetadata, artifactManifest, FLUX_CONTENT_MEDIA_TYPE, REPRODUCIBLE_CREATED, rfc3339Seconds } from "./format.ts";
import { type BuildOptions, buildTarball } from "./tarball.ts";

export interface PushRequest extends BuildOptions {
  readonly path: string;
  readonly source: string;
  readonly revision: string;
  readonly annotations?: Readonly<Record<string, string>>;
  /** Fixed `created` time, so the same content, source and revision always give the same digest. */
  readonly reproducible?: boolean;
  readonly onProgress?: (event: { phase: "layer"; transferred: number; total: number }) => void;
  readonly signal?: AbortSignal;
  /** Runs after the manifest is pushed by digest and before the tag moves to it: signing goes here. */
  readonly beforeTag?: (manifest: PushResult["manifest"]) => Promise<void>;
}

export interface PushResult {
  readonly reference: Reference;
  readonly digest: string;
  /** The pushed manifest's descriptor, e.g. the subject of a signature. */
  readonly manifest: { readonly mediaType: string; readonly digest: string; readonly size: number };
  readonly layer: { readonly digest: string; readonly size: number; readonly mediaType: string };
  readonly uploaded: "exists" | "mounted" | "uploaded";
  readonly files: number;
}

export function artifactMetadata(request: Pick<PushRequest, "source" | "revision" | "annotations" | "reproducible">): ArtifactMetadata {
  return {
    source: request.source,
    revision: request.revision,
    created: request.reproducible ? REPRODUCIBLE_CREATED : rfc3339Seconds(new Date()),
    ...(request.annotations ? { annotations: request.annotations } : {}),
  };
}

export async function pushArtifact(client: RegistryClient, reference: Reference, request: PushRequest): Promise<PushResult> {
  const tarball = await buildTarball(request.path, request);
  try {
    const built = artifactManifest(tarball, artifactMetadata(request));
    const { registry, repository } = reference;
    const progress: ProgressCallback = (transferred) =>
      request.onProgress?.({ phase: "layer", transferred, total: tarball.size });
    const signal = request.signal ? { signal: request.signal } : {};
    const [uploaded] = await Promise.all([
      client.pushBlob(registry, repository, tarball.digest, blobFromFile(tarball.path, tarball.size), { onProgress: progress, ...signal }),
      client.pushBlob(registry, repository, built.configDigest, blobFromBuffer(built.config), signal),
    ]);
    const target = reference.tag !== undefined ? reference : { ...reference, tag: "latest" };
    let digest: string;
    if (request.beforeTag) {
      digest = await client.pushManifest({ registry, repository }, built.manifest, OCI_MANIFEST, request.signal);
      await request.beforeTag({ mediaType: OCI_MANIFEST, digest, size: built.manifest.length });
    }
    digest = await client.pushManifest(target, built.manifest, OCI_MANIFEST, request.signal);
    return {
      reference: { ...withDigest(reference, digest), tag: target.tag ?? "latest" },
      digest,
      manifest: { mediaType: OCI_MANIFEST, digest, size: built.manifest.length },
      layer: { digest: tarball.digest, size: tarball.size, mediaType: FLUX_CONTENT_MEDIA_TYPE },
      uploaded,
      files: tarball.entries.filter((entry) => entry.kind === "file").length,
    };
  } finally {
    await tarball.dispose();
  }
}
