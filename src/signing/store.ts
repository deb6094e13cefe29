// Where signatures live in a registry, in cosign's two layouts: a Sigstore bundle as an OCI 1.1 referrer of the
// artifact (with the referrers tag schema where the registry has no referrers API), and the legacy
// `sha256-<hex>.sig` simple-signing image.
import { createPublicKey, type KeyObject, sign as signBytes } from "node:crypto";
import { blobFromBuffer, type RegistryClient } from "../registry/client.ts";
import { NotFoundError } from "../registry/errors.ts";
import { type Descriptor, type ImageIndex, type ImageManifest, OCI_EMPTY, OCI_INDEX, OCI_MANIFEST, referrersTag, sha256Digest } from "../registry/oci.ts";
import type { Reference } from "../registry/reference.ts";
import { BUNDLE_MEDIA_TYPE, COSIGN_SIGN_PREDICATE, refusedDigest } from "./bundle.ts";
import type { VerificationError } from "./errors.ts";

export const SIMPLE_SIGNING_MEDIA_TYPE = "application/vnd.dev.cosign.simplesigning.v1+json";
export const SIGNATURE_ANNOTATION = "dev.cosignproject.cosign/signature";
const EMPTY_CONFIG = Buffer.from("{}");
const MAX_SIGNATURE_BYTES = 1024 * 1024;

export interface Repository {
  readonly registry: string;
  readonly repository: string;
}

function rfc3339(date: Date): string {
  return `${date.toISOString().slice(0, 19)}Z`;
}

export async function supportsReferrersApi(client: RegistryClient, repo: Repository, digest: string): Promise<boolean> {
  const http = client.http(repo.registry);
  const response = await http.send({
    method: "GET",
    url: `/v2/${repo.repository}/referrers/${digest}`,
    scopes: [`repository:${repo.repository}:pull`],
    headers: { accept: OCI_INDEX },
    bareUnauthorizedIsAnswer: true,
  });
  await response.body.dump();
  const type = response.headers["content-type"];
  return response.statusCode === 200 && String(type).startsWith(OCI_INDEX);
}

/** Adds `descriptor` to the subject's fallback index, as go-containerregistry does for cosign. */
export async function updateFallbackIndex(
  client: RegistryClient,
  repo: Repository,
  subject: string,
  descriptor: Descriptor,
): Promise<void> {
  const tag = referrersTag(subject);
  let manifests: Descriptor[] = [];
  try {
    const existing = await client.fetchManifest({ ...repo, tag });
    manifests = [...((JSON.parse(existing.bytes.toString()) as ImageIndex).manifests ?? [])];
  } catch (error) {
    if (!(error instanceof NotFoundError)) throw error;
  }
  if (manifests.some((entry) => entry.digest === descriptor.digest)) return;
  manifests.push(descriptor);
  manifests.sort((a, b) => (a.digest < b.digest ? -1 : 1));
  const index = Buffer.from(JSON.stringify({ schemaVersion: 2, mediaType: OCI_INDEX, manifests }));
  await client.pushManifest({ ...repo, tag }, index, OCI_INDEX);
}

/** Attaches a Sigstore bundle to `subject` as a referrer; returns the referrer manifest's digest. */
export async function attachBundle(client: RegistryClient, repo: Repository, subject: Descriptor, bundle: Buffer): Promise<string> {
  await client.pushBlob(repo.registry, repo.repository, sha256Digest(EMPTY_CONFIG), blobFromBuffer(EMPTY_CONFIG));
  await client.pushBlob(repo.registry, repo.repository, sha256Digest(bundle), blobFromBuffer(bundle));
  const annotations = {
    "dev.sigstore.bundle.content": "dsse-envelope",
    "dev.sigstore.bundle.predicateType": COSIGN_SIGN_PREDICATE,
    "org.opencontainers.image.created": rfc3339(new Date()),
  };
  const manifest = Buffer.from(
    JSON.stringify({
      schemaVersion: 2,
      mediaType: OCI_MANIFEST,
      artifactType: BUNDLE_MEDIA_TYPE,
      config: { mediaType: OCI_EMPTY, digest: sha256Digest(EMPTY_CONFIG), size: EMPTY_CONFIG.length },
      layers: [{ mediaType: BUNDLE_MEDIA_TYPE, digest: sha256Digest(bundle), size: bundle.length }],
      subject: { mediaType: subject.mediaType, digest: subject.digest, size: subject.size },
      annotations,
    }),
  );
  const digest = await client.pushManifest({ ...repo, digest: sha256Digest(manifest) }, manifest, OCI_MANIFEST);
  if (!(await supportsReferrersApi(client, repo, subject.digest))) {
    await updateFallbackIndex(client, repo, subject.digest, {
      mediaType: OCI_MANIFEST,
      digest,
      size: manifest.length,
      artifactType: BUNDLE_MEDIA_TYPE,
      annotations,
    });
  }
  return digest;
}

/** The simple-signing payload cosign signs in the legacy format. */
export function simpleSigningPayload(repo: Repository, digest: string, annotations?: Readonly<Record<string, string>>): Buffer {
  return Buffer.from(
    JSON.stringify({
      critical: {
        identity: { "docker-reference": `${repo.registry}/${repo.repository}` },
        image: { "docker-manifest-digest": digest },
        type: "cosign container image signature",
      },
      optional: annotations && Object.keys(annotations).length ? annotations : null,
    }),
  );
}

/** Adds a legacy signature layer to `sha256-<hex>.sig`, keeping signatures already there. */
export async function attachLegacySignature(
  client: RegistryClient,
  repo: Repository,
  digest: string,
  privateKey: KeyObject,
): Promise<void> {
  const payload = simpleSigningPayload(repo, digest);
  const signature = signBytes("sha256", payload, privateKey).toString("base64");
  const tag = `${referrersTag(digest)}.sig`;
  let layers: Descriptor[] = [];
  try {
    const existing = await client.fetchManifest({ ...repo, tag });
    layers = [...(JSON.parse(existing.bytes.toString()) as ImageManifest).layers];
  } catch (error) {
    if (!(error instanceof NotFoundError)) throw error;
  }
  layers = layers.filter((layer) => layer.annotations?.[SIGNATURE_ANNOTATION] !== signature);
  layers.push({
    mediaType: SIMPLE_SIGNING_MEDIA_TYPE,
    digest: sha256Digest(payload),
    size: payload.length,
    annotations: { [SIGNATURE_ANNOTATION]: signature },
  });
  await client.pushBlob(repo.registry, repo.repository, sha256Digest(payload), blobFromBuffer(payload));
  const config = Buffer.from(
    JSON.stringify({ architecture: "", os: "", config: {}, rootfs: { type: "layers", diff_ids: layers.map((layer) => layer.digest) } }),
  );
  await client.pushBlob(repo.registry, repo.repository, sha256Digest(config), blobFromBuffer(config));
  const manifest = Buffer.from(
    JSON.stringify({
      schemaVersion: 2,
      mediaType: OCI_MANIFEST,
      config: { mediaType: "application/vnd.oci.image.config.v1+json", digest: sha256Digest(config), size: config.length },
      layers,
    }),
  );
  await client.pushManifest({ ...repo, tag }, manifest, OCI_MANIFEST);
}

export interface FoundBundle {
  readonly referrer: Descriptor;
  readonly bundle: Buffer;
  readonly created?: string;
}

/** A signature that was found but not read: it is named by a digest Ferry does not accept (md5, sha1, …). */
export interface RefusedSignature {
  readonly refused: VerificationError;
}

/**
 * Every Sigstore bundle attached to `digest`, read as cosign reads them: all referrers, one bundle layer each. A
 * referrer or layer named by a weak digest is not fetched: content is only as bound as the digest naming it.
 */
export async function findBundles(
  client: RegistryClient,
  repo: Repository,
  digest: string,
): Promise<Array<FoundBundle | RefusedSignature>> {
  const found: Array<FoundBundle | RefusedSignature> = [];
  for (const referrer of await client.referrers(repo.registry, repo.repository, digest)) {
    const weakReferrer = refusedDigest(referrer.digest, "signature referrer");
    if (weakReferrer) {
      found.push({ refused: weakReferrer });
      continue;
    }
    const { bytes } = await client.fetchManifest({ ...repo, digest: referrer.digest });
    const manifest = JSON.parse(bytes.toString()) as ImageManifest;
    const [layer, ...rest] = manifest.layers ?? [];
    if (!layer || rest.length > 0 || !layer.mediaType.startsWith("application/vnd.dev.sigstore.bundle")) continue;
    const weakLayer = refusedDigest(layer.digest, "signature bundle layer");
    if (weakLayer) {
      found.push({ refused: weakLayer });
      continue;
    }
    const bundle = await client.fetchBlobBytes(repo.registry, repo.repository, layer, { maxBytes: MAX_SIGNATURE_BYTES });
    const created = manifest.annotations?.["org.opencontainers.image.created"];
    found.push({ referrer, bundle, ...(created ? { created } : {}) });
  }
  return found;
}

export interface FoundLegacySignature {
  readonly payload: Buffer;
  readonly signature: Buffer;
}

export async function findLegacySignatures(
  client: RegistryClient,
  repo: Repository,
  digest: string,
): Promise<Array<FoundLegacySignature | RefusedSignature>> {
  let manifest: ImageManifest;
  try {
    manifest = JSON.parse((await client.fetchManifest({ ...repo, tag: `${referrersTag(digest)}.sig` })).bytes.toString());
  } catch (error) {
    if (error instanceof NotFoundError) return [];
    throw error;
  }
  const found: Array<FoundLegacySignature | RefusedSignature> = [];
  for (const layer of manifest.layers ?? []) {
    const signature = layer.annotations?.[SIGNATURE_ANNOTATION];
    if (layer.mediaType !== SIMPLE_SIGNING_MEDIA_TYPE || !signature) continue;
    const weakLayer = refusedDigest(layer.digest, "legacy signature payload");
    if (weakLayer) {
      found.push({ refused: weakLayer });
      continue;
    }
    const payload = await client.fetchBlobBytes(repo.registry, repo.repository, layer, { maxBytes: MAX_SIGNATURE_BYTES });
    found.push({ payload, signature: Buffer.from(signature, "base64") });
  }
  return found;
}

export function publicKeyOf(privateKey: KeyObject): KeyObject {
  return createPublicKey(privateKey);
}

export type { Reference };
