// Flux's OCI artifact format, which Ferry writes and reads so that Flux and Ferry read each other's artifacts:
// an OCI image manifest with a Flux config blob and one tar+gzip content layer.
import { OCI_MANIFEST, sha256Digest } from "../registry/oci.ts";

export const FLUX_CONFIG_MEDIA_TYPE = "application/vnd.cncf.flux.config.v1+json";
export const FLUX_CONTENT_MEDIA_TYPE = "application/vnd.cncf.flux.content.v1.tar+gzip";

export const ANNOTATION_CREATED = "org.opencontainers.image.created";
export const ANNOTATION_SOURCE = "org.opencontainers.image.source";
export const ANNOTATION_REVISION = "org.opencontainers.image.revision";

/** The `created` time of a reproducible artifact; always UTC so the digest does not depend on the time zone. */
export const REPRODUCIBLE_CREATED = "1970-01-01T00:00:00Z";

export interface ArtifactMetadata {
  readonly source: string;
  readonly revision: string;
  /** RFC 3339, second precision, UTC. */
  readonly created: string;
  readonly annotations?: Readonly<Record<string, string>>;
}

export interface Layer {
  readonly digest: string;
  readonly size: number;
  /** sha256 of the uncompressed tar. */
  readonly diffId: string;
}

export function rfc3339Seconds(date: Date): string {
  return `${date.toISOString().slice(0, 19)}Z`;
}

/** Manifest annotations: the three standard keys always, then user annotations (which may override them). */
export function artifactAnnotations(metadata: ArtifactMetadata): Record<string, string> {
  const merged: Record<string, string> = {
    [ANNOTATION_CREATED]: metadata.created,
    [ANNOTATION_SOURCE]: metadata.source,
    [ANNOTATION_REVISION]: metadata.revision,
    ...metadata.annotations,
  };
  // Sorted keys, as Go's encoding/json writes maps, so the same input always gives the same digest.
  return Object.fromEntries(Object.entries(merged).sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0)));
}

/** The config blob, in the shape and key order Flux's go-containerregistry writes. */
export function configBlob(layer: Layer, created: string): Buffer {
  const config = {
    architecture: "",
    created,
    history: [{ created: "0001-01-01T00:00:00Z" }],
    os: "",
    rootfs: { type: "layers", diff_ids: [layer.diffId] },
    config: {},
  };
  return Buffer.from(JSON.stringify(config));
}

export interface BuiltManifest {
  readonly manifest: Buffer;
  readonly digest: string;
  readonly config: Buffer;
  readonly configDigest: string;
}

export function artifactManifest(layer: Layer, metadata: ArtifactMetadata): BuiltManifest {
  const annotations = artifactAnnotations(metadata);
  const config = configBlob(layer, annotations[ANNOTATION_CREATED] ?? metadata.created);
  const configDigest = sha256Digest(config);
  const manifest = Buffer.from(
    JSON.stringify({
      schemaVersion: 2,
      mediaType: OCI_MANIFEST,
      config: { mediaType: FLUX_CONFIG_MEDIA_TYPE, size: config.length, digest: configDigest },
      layers: [{ mediaType: FLUX_CONTENT_MEDIA_TYPE, size: layer.size, digest: layer.digest }],
      annotations,
    }),
  );
  return { manifest, digest: sha256Digest(manifest), config, configDigest };
}
