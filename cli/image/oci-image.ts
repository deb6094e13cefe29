// The image's OCI documents: the image config (what runs, as whom, with which layers), one manifest per platform,
// and the index joining them. Pure, with fixed key order and a fixed `created`, so the same inputs give the same
// digests.
import { OCI_INDEX, OCI_MANIFEST } from "../../src/registry/oci.ts";
import { type Layer, LAYER_MEDIA_TYPE, sha256 } from "./layer.ts";

export const OCI_IMAGE_CONFIG = "application/vnd.oci.image.config.v1+json";

export interface Platform {
  readonly architecture: "amd64" | "arm64";
  readonly os: "linux";
  readonly variant?: "v8";
}

export const PLATFORMS = {
  amd64: { architecture: "amd64", os: "linux" },
  arm64: { architecture: "arm64", os: "linux", variant: "v8" },
} as const satisfies Record<string, Platform>;

export interface RunSettings {
  readonly user: string;
  readonly entrypoint: readonly string[];
  readonly cmd: readonly string[];
  readonly env: readonly string[];
  readonly workingDir: string;
  readonly labels: Readonly<Record<string, string>>;
}

export interface Blob {
  readonly mediaType: string;
  readonly digest: string;
  readonly size: number;
  readonly bytes: Buffer;
}

export function blob(mediaType: string, bytes: Buffer): Blob {
  return { mediaType, digest: sha256(bytes), size: bytes.length, bytes };
}

export function descriptor({ mediaType, digest, size }: Blob) {
  return { mediaType, digest, size };
}

/** RFC 3339 of a Unix time in seconds (SOURCE_DATE_EPOCH's unit). */
export function rfc3339(epochSeconds: number): string {
  return new Date(epochSeconds * 1000).toISOString().replace(/\.000Z$/, "Z");
}

export interface NamedLayer {
  readonly layer: Layer;
  /** What the layer holds, for `history` (docker history, crane config). */
  readonly comment: string;
}

export function imageConfig(platform: Platform, layers: readonly NamedLayer[], run: RunSettings, created: string): Blob {
  const config = {
    created,
    architecture: platform.architecture,
    os: platform.os,
    ...(platform.variant ? { variant: platform.variant } : {}),
    config: {
      User: run.user,
      Env: [...run.env],
      Entrypoint: [...run.entrypoint],
      Cmd: [...run.cmd],
      WorkingDir: run.workingDir,
      Labels: run.labels,
    },
    rootfs: { type: "layers", diff_ids: layers.map(({ layer }) => layer.diffId) },
    history: layers.map(({ comment }) => ({ created, created_by: "npm run image", comment })),
  };
  return blob(OCI_IMAGE_CONFIG, Buffer.from(JSON.stringify(config)));
}

export function imageManifest(config: Blob, layers: readonly NamedLayer[], annotations: Readonly<Record<string, string>>): Blob {
  const manifest = {
    schemaVersion: 2,
    mediaType: OCI_MANIFEST,
    config: descriptor(config),
    layers: layers.map(({ layer }) => ({ mediaType: LAYER_MEDIA_TYPE, digest: layer.digest, size: layer.blob.length })),
    annotations,
  };
  return blob(OCI_MANIFEST, Buffer.from(JSON.stringify(manifest)));
}

type Annotations = Readonly<Record<string, string>>;

export function imageIndex(manifests: readonly { manifest: Blob; platform: Platform }[], annotations: Annotations): Blob {
  const index = {
    schemaVersion: 2,
    mediaType: OCI_INDEX,
    manifests: manifests.map(({ manifest, platform }) => ({ ...descriptor(manifest), platform })),
    annotations,
  };
  return blob(OCI_INDEX, Buffer.from(JSON.stringify(index)));
}

export const OCI_EMPTY_CONFIG = blob("application/vnd.oci.empty.v1+json", Buffer.from("{}"));

/** An OCI 1.1 artifact manifest pointing at `subject`, as `oras attach` writes one: empty config, one layer. */
export function referrerManifest(subject: Blob, artifactType: string, payload: Blob, annotations: Readonly<Record<string, string>>): Blob {
  const manifest = {
    schemaVersion: 2,
    mediaType: OCI_MANIFEST,
    artifactType,
    config: descriptor(OCI_EMPTY_CONFIG),
    layers: [descriptor(payload)],
    subject: descriptor(subject),
    annotations,
  };
  return blob(OCI_MANIFEST, Buffer.from(JSON.stringify(manifest)));
}
