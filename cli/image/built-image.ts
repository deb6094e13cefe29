// A built image in memory: one image per platform, the index joining them, and the SBOM referrer; and every blob
// they reference, in the order a registry must receive them (content before the manifests that name it).
import { type Blob, type NamedLayer, OCI_EMPTY_CONFIG, type Platform } from "./oci-image.ts";
import { LAYER_MEDIA_TYPE } from "./layer.ts";

export interface PlatformImage {
  readonly platform: Platform;
  readonly layers: readonly NamedLayer[];
  readonly config: Blob;
  readonly manifest: Blob;
}

export interface BuiltImage {
  readonly platforms: readonly PlatformImage[];
  readonly index: Blob;
  readonly sbom: { readonly document: Blob; readonly manifest: Blob };
}

/** Layers and configs, each digest once (platforms may share a layer, such as the arch-independent bundle). */
export function contentBlobs(image: BuiltImage): Blob[] {
  const blobs = new Map<string, Blob>();
  for (const platform of image.platforms) {
    for (const { layer } of platform.layers) {
      blobs.set(layer.digest, { mediaType: LAYER_MEDIA_TYPE, digest: layer.digest, size: layer.blob.length, bytes: layer.blob });
    }
    blobs.set(platform.config.digest, platform.config);
  }
  blobs.set(OCI_EMPTY_CONFIG.digest, OCI_EMPTY_CONFIG);
  blobs.set(image.sbom.document.digest, image.sbom.document);
  return [...blobs.values()];
}

/** Every blob of the image, manifests last, index after the platform manifests. */
export function allBlobs(image: BuiltImage): Blob[] {
  return [...contentBlobs(image), ...image.platforms.map((platform) => platform.manifest), image.index, image.sbom.manifest];
}
