// Pushing a built image with Ferry's own registry client: blobs first (skipping what the registry has), then each
// platform's manifest by digest, then the index under the tag, then the SBOM as a referrer of the index (with the
// referrers tag schema where the registry has no referrers API), then the signature of the index digest.
import type { KeyObject } from "node:crypto";
import { blobFromBuffer, type RegistryClient } from "../../src/registry/client.ts";
import type { Reference } from "../../src/registry/reference.ts";
import { type SignatureFormatOption, signArtifact } from "../../src/signing/sign.ts";
import { supportsReferrersApi, updateFallbackIndex } from "../../src/signing/store.ts";
import { type BuiltImage, contentBlobs } from "./built-image.ts";
import { type Blob, descriptor } from "./oci-image.ts";
import { SPDX_MEDIA_TYPE } from "./sbom.ts";

export interface PushOptions {
  readonly signing?: { readonly privateKey: KeyObject; readonly format: SignatureFormatOption };
  readonly log: (line: string) => void;
  readonly signal?: AbortSignal;
}

export interface PushResult {
  readonly digest: string;
  readonly sbom: string;
  readonly signed: boolean;
}

export async function pushImage(
  client: RegistryClient,
  reference: Reference,
  image: BuiltImage,
  options: PushOptions,
): Promise<PushResult> {
  const { registry, repository } = reference;
  const repo = { registry, repository };
  const signal = options.signal ? { signal: options.signal } : {};
  for (const blob of contentBlobs(image)) {
    const result = await client.pushBlob(registry, repository, blob.digest, blobFromBuffer(blob.bytes), signal);
    if (result !== "exists") options.log(`pushed blob ${blob.digest} (${(blob.size / 1024 / 1024).toFixed(1)} MiB)`);
  }
  const byDigest = (manifest: Blob) =>
    client.pushManifest({ ...repo, digest: manifest.digest }, manifest.bytes, manifest.mediaType, options.signal);
  for (const { manifest } of image.platforms) await byDigest(manifest);
  const digest = await client.pushManifest({ ...repo, tag: reference.tag ?? "latest" }, image.index.bytes, image.index.mediaType, options.signal);
  const sbom = await byDigest(image.sbom.manifest);
  if (!(await supportsReferrersApi(client, repo, digest))) {
    await updateFallbackIndex(client, repo, digest, { ...descriptor(image.sbom.manifest), artifactType: SPDX_MEDIA_TYPE });
  }
  if (options.signing) {
    const { privateKey, format } = options.signing;
    await signArtifact(client, { ...repo, digest }, { privateKey, format, subject: descriptor(image.index) });
  }
  return { digest, sbom, signed: options.signing !== undefined };
}
