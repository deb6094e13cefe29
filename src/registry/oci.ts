// OCI image-spec shapes and media types that the registry client reads and writes.
import { createHash } from "node:crypto";

export const OCI_MANIFEST = "application/vnd.oci.image.manifest.v1+json";
export const OCI_INDEX = "application/vnd.oci.image.index.v1+json";
export const DOCKER_MANIFEST = "application/vnd.docker.distribution.manifest.v2+json";
export const DOCKER_MANIFEST_LIST = "application/vnd.docker.distribution.manifest.list.v2+json";
export const OCI_EMPTY = "application/vnd.oci.empty.v1+json";

export const MANIFEST_MEDIA_TYPES = [OCI_MANIFEST, OCI_INDEX, DOCKER_MANIFEST, DOCKER_MANIFEST_LIST] as const;

export interface Descriptor {
  readonly mediaType: string;
  readonly digest: string;
  readonly size: number;
  readonly artifactType?: string;
  readonly annotations?: Readonly<Record<string, string>>;
}

export interface ImageManifest {
  readonly schemaVersion: 2;
  readonly mediaType?: string;
  readonly artifactType?: string;
  readonly config: Descriptor;
  readonly layers: readonly Descriptor[];
  readonly subject?: Descriptor;
  readonly annotations?: Readonly<Record<string, string>>;
}

export interface ImageIndex {
  readonly schemaVersion: 2;
  readonly mediaType?: string;
  readonly manifests: readonly Descriptor[];
  readonly annotations?: Readonly<Record<string, string>>;
}

export function sha256Digest(bytes: Buffer | string): string {
  return `sha256:${createHash("sha256").update(bytes).digest("hex")}`;
}

/** A digest as the client accepts one: sha256 or sha512 with full lowercase hex, nothing else. */
const WELL_FORMED_DIGEST = /^(sha256:[a-f0-9]{64}|sha512:[a-f0-9]{128})$/;

/**
 * True for a digest the client may use. A registry's answers (Docker-Content-Digest, a manifest's descriptors) are
 * not trusted: a digest becomes a URL path and a cache directory name, where "sha256:../../x" would leave it, and a
 * weak algorithm (md5, sha1) would let a forged blob pass the check.
 */
export function isWellFormedDigest(digest: string): boolean {
  return WELL_FORMED_DIGEST.test(digest);
}

/** Verifies `bytes` against a digest in any algorithm the registry client supports. */
export function digestOf(bytes: Buffer, algorithmOf: string): string {
  const algorithm = algorithmOf.split(":")[0];
  if (algorithm !== "sha256" && algorithm !== "sha512") throw new Error(`unsupported digest algorithm ${algorithm}`);
  return `${algorithm}:${createHash(algorithm).update(bytes).digest("hex")}`;
}

/** The referrers tag schema: `sha256-<hex>` for a subject `sha256:<hex>` (the fallback where there is no referrers API). */
export function referrersTag(digest: string): string {
  const [algorithm = "", hex = ""] = digest.split(":");
  return `${algorithm.slice(0, 32)}-${hex.slice(0, 64)}`.replace(/[^A-Za-z0-9_.-]/g, "-");
}
