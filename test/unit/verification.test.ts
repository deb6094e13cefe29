// What counts as a signature, which digests may name signed content, and how a verification is recorded so that
// changed keys are noticed: pure logic, with a registry stand-in where discovery is involved.
import assert from "node:assert/strict";
import { createPublicKey, generateKeyPairSync, type KeyObject, sign } from "node:crypto";
import { describe, test } from "node:test";
import { bundleToJSON } from "@sigstore/bundle";
import { DSSEBundleBuilder } from "@sigstore/sign";
import { NotFoundError } from "../../src/registry/errors.ts";
import type { RegistryClient } from "../../src/registry/client.ts";
import type { Descriptor } from "../../src/registry/oci.ts";
import { recordedVerification, storedArtifactMessage, verificationRecord } from "../../src/reconcilers/ocirepository.ts";
import {
  BUNDLE_MEDIA_TYPE,
  COSIGN_SIGN_PREDICATE,
  IN_TOTO_PAYLOAD_TYPE,
  IN_TOTO_STATEMENT_TYPE,
  refusedDigest,
  signDigestWithKey,
  verifyBundleWithKeys,
} from "../../src/signing/bundle.ts";
import { VerificationError } from "../../src/signing/errors.ts";
import { keyFingerprint, keyHint } from "../../src/signing/keys.ts";
import { simpleSigningPayload } from "../../src/signing/store.ts";
import { describeSigner, fingerprintInputs, verifyArtifact, verifyLegacySignature } from "../../src/signing/verify.ts";

const HEX = "ab".repeat(32);
const DIGEST = `sha256:${HEX}`;
const SLSA_PROVENANCE = "https://slsa.dev/provenance/v1";

function rejectsWith(reason: VerificationError["reason"], pattern: RegExp) {
  return (error: unknown) => error instanceof VerificationError && error.reason === reason && pattern.test(error.message);
}

/** A DSSE bundle over any statement, signed as `ferry sign` and `cosign sign` sign theirs. */
async function signStatementObject(statement: unknown, privateKey: KeyObject): Promise<Buffer> {
  const publicKey = createPublicKey(privateKey);
  const builder = new DSSEBundleBuilder({
    signer: {
      sign: async (data) => ({
        signature: sign("sha256", data, privateKey),
        key: { $case: "publicKey", publicKey: publicKey.export({ type: "spki", format: "pem" }).toString(), hint: keyHint(publicKey) },
      }),
    },
    witnesses: [],
  });
  const bundle = await builder.create({ data: Buffer.from(JSON.stringify(statement)), type: IN_TOTO_PAYLOAD_TYPE });
  return Buffer.from(JSON.stringify(bundleToJSON(bundle)));
}

function statement(fields: Record<string, unknown> = {}) {
  const subject = [{ digest: { sha256: HEX } }];
  return { _type: IN_TOTO_STATEMENT_TYPE, subject, predicateType: COSIGN_SIGN_PREDICATE, predicate: {}, ...fields };
}

describe("what counts as a signature", () => {
  const signer = generateKeyPairSync("ec", { namedCurve: "prime256v1" });

  test("an attestation by the trusted key for the same digest is not a signature", async () => {
    const provenanceStatement = statement({ predicateType: SLSA_PROVENANCE, predicate: { buildDefinition: {} } });
    const provenance = await signStatementObject(provenanceStatement, signer.privateKey);
    assert.throws(() => verifyBundleWithKeys(provenance, DIGEST, [signer.publicKey]), rejectsWith("no-signature", /attestation with predicate type "https:\/\/slsa\.dev\/provenance\/v1", not a signature/));
    const untyped = await signStatementObject(statement({ predicateType: undefined }), signer.privateKey);
    assert.throws(() => verifyBundleWithKeys(untyped, DIGEST, [signer.publicKey]), rejectsWith("no-signature", /predicate type nothing/));
  });

  test("cosign's signing statement verifies; another statement type or a non-object payload does not", async () => {
    const signature = await signStatementObject(statement(), signer.privateKey);
    assert.equal(verifyBundleWithKeys(signature, DIGEST, [signer.publicKey]).publicKey, signer.publicKey);
    const oldStatement = await signStatementObject(statement({ _type: "https://in-toto.io/Statement/v0.1" }), signer.privateKey);
    assert.throws(() => verifyBundleWithKeys(oldStatement, DIGEST, [signer.publicKey]), rejectsWith("malformed", /statement has type "https:\/\/in-toto\.io\/Statement\/v0\.1"/));
    const list = await signStatementObject([statement()], signer.privateKey);
    assert.throws(() => verifyBundleWithKeys(list, DIGEST, [signer.publicKey]), rejectsWith("malformed", /not an in-toto statement/));
  });

  test("a subject named only by a weak digest is refused as such, and an extra weak digest beside sha256 is harmless", async () => {
    const sha1Only = await signStatementObject(statement({ subject: [{ digest: { sha1: "ab".repeat(20) } }] }), signer.privateKey);
    assert.throws(() => verifyBundleWithKeys(sha1Only, DIGEST, [signer.publicKey]), rejectsWith("untrusted", /names its subject only as "sha1:abab.*only sha256 and sha512/));
    const both = await signStatementObject(statement({ subject: [{ digest: { md5: "ab".repeat(16), sha256: HEX } }] }), signer.privateKey);
    assert.equal(verifyBundleWithKeys(both, DIGEST, [signer.publicKey]).publicKey, signer.publicKey);
  });

  test("a legacy payload must be cosign's image signature type and name the digest with an accepted algorithm", () => {
    const signed = (payload: Buffer) => ({ payload, signature: sign("sha256", payload, signer.privateKey) });
    const legacy = (critical: Record<string, unknown>) =>
      signed(Buffer.from(JSON.stringify({ critical: { identity: { "docker-reference": "r/app" }, ...critical }, optional: null })));
    const repo = { registry: "r", repository: "app" };
    assert.equal(verifyLegacySignature(signed(simpleSigningPayload(repo, DIGEST)), DIGEST, [signer.publicKey]), signer.publicKey);
    const otherType = legacy({ image: { "docker-manifest-digest": DIGEST }, type: "atomic container signature" });
    assert.throws(() => verifyLegacySignature(otherType, DIGEST, [signer.publicKey]), rejectsWith("malformed", /has type atomic container signature/));
    const sha1 = legacy({ image: { "docker-manifest-digest": `sha1:${"ab".repeat(20)}` }, type: "cosign container image signature" });
    assert.throws(() => verifyLegacySignature(sha1, DIGEST, [signer.publicKey]), rejectsWith("untrusted", /docker-manifest-digest sha1:abab.* uses the sha1 algorithm, which Ferry refuses/));
    const none = legacy({ type: "cosign container image signature" });
    assert.throws(() => verifyLegacySignature(none, DIGEST, [signer.publicKey]), rejectsWith("malformed", /names no docker-manifest-digest/));
  });
});

describe("digest algorithms", () => {
  test("only complete sha256 and sha512 digests are accepted; md5, sha1 and sha384 are refused by name", () => {
    assert.equal(refusedDigest(DIGEST, "x"), undefined);
    assert.equal(refusedDigest(`sha512:${"cd".repeat(64)}`, "x"), undefined);
    for (const [digest, why] of [
      [`md5:${"ab".repeat(16)}`, /uses the md5 algorithm, which Ferry refuses/],
      [`sha1:${"ab".repeat(20)}`, /uses the sha1 algorithm/],
      // The registry client cannot verify content by sha384, so nothing signed may be named by it.
      [`sha384:${"ab".repeat(48)}`, /uses the sha384 algorithm/],
      [`sha256:${"AB".repeat(32)}`, /is not a complete lowercase hex digest/],
      [`sha256:${"ab".repeat(31)}`, /is not a complete lowercase hex digest/],
      ["deadbeef", /uses no known algorithm/],
    ] as const) {
      const refusal = refusedDigest(digest, "layer");
      assert.ok(refusal instanceof VerificationError && refusal.reason === "untrusted", digest);
      assert.match(refusal.message, why);
      assert.ok(refusal.message.startsWith(`layer ${digest} `));
    }
  });
});

/** A registry that holds the given referrers (manifests and blobs by digest) and no legacy signature. */
function registryWith(referrers: Array<{ descriptor: Descriptor; manifest?: unknown; blob?: Buffer }>): RegistryClient {
  const manifests = new Map(referrers.map((entry) => [entry.descriptor.digest, entry.manifest]));
  const blobs = new Map<string, Buffer>();
  for (const entry of referrers) {
    const layer = (entry.manifest as { layers?: Descriptor[] } | undefined)?.layers?.[0];
    if (layer && entry.blob) blobs.set(layer.digest, entry.blob);
  }
  const stub = {
    referrers: async () => referrers.map((entry) => entry.descriptor),
    fetchManifest: async (reference: { digest?: string; tag?: string }) => {
      const manifest = reference.digest ? manifests.get(reference.digest) : undefined;
      if (reference.digest && !/^sha(256|512):/.test(reference.digest)) throw new Error(`unsupported digest algorithm ${reference.digest.split(":")[0]}`);
      if (!manifest) throw new NotFoundError(`manifest ${reference.digest ?? reference.tag} not found`);
      return { bytes: Buffer.from(JSON.stringify(manifest)), descriptor: { mediaType: "application/vnd.oci.image.manifest.v1+json", digest: reference.digest, size: 1 } };
    },
    fetchBlobBytes: async (_registry: string, _repository: string, descriptor: Descriptor) => {
      if (!/^sha(256|512):/.test(descriptor.digest)) throw new Error(`unsupported digest algorithm ${descriptor.digest.split(":")[0]}`);
      const blob = blobs.get(descriptor.digest);
      if (!blob) throw new NotFoundError(`blob ${descriptor.digest} not found`);
      return blob;
    },
  };
  return stub as unknown as RegistryClient;
}

function bundleReferrer(index: number, bundle: Buffer, digests: { referrer?: string; layer?: string } = {}) {
  const layer = { mediaType: BUNDLE_MEDIA_TYPE, digest: digests.layer ?? `sha256:${String(index).repeat(64)}`, size: bundle.length };
  const descriptor = { mediaType: "application/vnd.oci.image.manifest.v1+json", digest: digests.referrer ?? `sha256:${String(index + 5).repeat(64)}`, size: 1, artifactType: BUNDLE_MEDIA_TYPE };
  return { descriptor, manifest: { schemaVersion: 2, layers: [layer] }, blob: bundle };
}

describe("verifyArtifact", () => {
  const signer = generateKeyPairSync("ec", { namedCurve: "prime256v1" });
  const reference = { registry: "registry.test", repository: "app", tag: "v1" };
  const subject = (digest: string) => ({ mediaType: "application/vnd.oci.image.manifest.v1+json", digest, size: 1 });

  test("an artifact with only an attestation by the trusted key is not verified; with a signature beside it, it is", async () => {
    const provenance = await signStatementObject(statement({ predicateType: SLSA_PROVENANCE }), signer.privateKey);
    const attested = registryWith([bundleReferrer(1, provenance)]);
    await assert.rejects(
      verifyArtifact(attested, reference, { publicKeys: [signer.publicKey], subject: subject(DIGEST) }),
      rejectsWith("no-signature", /failed: bundle is an attestation with predicate type "https:\/\/slsa\.dev\/provenance\/v1"/),
    );
    const signature = await signDigestWithKey(DIGEST, signer.privateKey);
    const signed = registryWith([bundleReferrer(1, provenance), bundleReferrer(2, signature)]);
    const verified = await verifyArtifact(signed, reference, { publicKeys: [signer.publicKey], subject: subject(DIGEST) });
    assert.equal(verified.keyFingerprint, keyFingerprint(signer.publicKey));
  });

  test("an artifact digest other than sha256 or sha512 is refused before any signature is looked for", async () => {
    await assert.rejects(
      verifyArtifact(registryWith([]), reference, { publicKeys: [signer.publicKey], subject: subject(`sha1:${"ab".repeat(20)}`) }),
      rejectsWith("untrusted", /artifact digest sha1:abab.* uses the sha1 algorithm, which Ferry refuses/),
    );
  });

  test("a signature referrer or bundle layer named by md5 is refused with the reason, not fetched", async () => {
    const signature = await signDigestWithKey(DIGEST, signer.privateKey);
    const weakReferrer = registryWith([bundleReferrer(1, signature, { referrer: `md5:${"ab".repeat(16)}` })]);
    await assert.rejects(
      verifyArtifact(weakReferrer, reference, { publicKeys: [signer.publicKey], subject: subject(DIGEST) }),
      rejectsWith("untrusted", /signature referrer md5:abab.* uses the md5 algorithm/),
    );
    const weakLayer = registryWith([bundleReferrer(1, signature, { layer: `sha1:${"ab".repeat(20)}` })]);
    await assert.rejects(
      verifyArtifact(weakLayer, reference, { publicKeys: [signer.publicKey], subject: subject(DIGEST) }),
      rejectsWith("untrusted", /signature bundle layer sha1:abab.* uses the sha1 algorithm/),
    );
    // A refused signature does not hide a good one.
    const mixed = registryWith([bundleReferrer(1, signature, { referrer: `md5:${"ab".repeat(16)}` }), bundleReferrer(2, signature)]);
    assert.equal((await verifyArtifact(mixed, reference, { publicKeys: [signer.publicKey], subject: subject(DIGEST) })).format, "bundle");
  });
});

describe("verification inputs", () => {
  const first = generateKeyPairSync("ec", { namedCurve: "prime256v1" }).publicKey;
  const second = generateKeyPairSync("ec", { namedCurve: "prime256v1" }).publicKey;
  const keyless = (subject: string, trustedRoot: unknown = { tlogs: [] }) => ({ trustedRoot, policy: { identityRegexp: subject, issuerRegexp: "https://issuer" } });

  test("the fingerprint changes with the keys, the identities or the trusted root, not with their order", () => {
    const fingerprint = fingerprintInputs({ publicKeys: [first, second] });
    assert.match(fingerprint, /^sha256:[0-9a-f]{64}$/);
    assert.equal(fingerprintInputs({ publicKeys: [second, first, second] }), fingerprint);
    assert.notEqual(fingerprintInputs({ publicKeys: [first] }), fingerprint);
    assert.notEqual(fingerprintInputs({ publicKeys: [second] }), fingerprintInputs({ publicKeys: [first] }));
    const release = fingerprintInputs({ keyless: [keyless("release")] });
    assert.notEqual(fingerprintInputs({ keyless: [keyless("nightly")] }), release);
    assert.notEqual(fingerprintInputs({ keyless: [keyless("release", { tlogs: [1] })] }), release);
    assert.notEqual(fingerprintInputs({ keyless: [{ ...keyless("release"), ignoreTlog: true }] }), release);
  });

  test("status names the signer by fingerprint or identity, never by key material", () => {
    const pem = first.export({ type: "spki", format: "pem" }).toString();
    const described = describeSigner({ reference: { registry: "r", repository: "a" }, digest: DIGEST, format: "bundle", keyFingerprint: keyFingerprint(first) });
    assert.equal(described, `key ${keyFingerprint(first)}`);
    assert.ok(!described.includes(pem.split("\n")[1] ?? "-"));
    assert.equal(describeSigner({ reference: { registry: "r", repository: "a" }, digest: DIGEST, format: "bundle", identity: "https://ci/release", issuer: "https://issuer" }),
      "identity https://ci/release (issuer https://issuer)");
  });
});

describe("the recorded verification of a stored artifact", () => {
  const fingerprint = `sha256:${"12".repeat(32)}`;
  const revision = `v1@${DIGEST}`;
  const stored = (message: string, status: "True" | "False" = "True") =>
    [{ type: "ArtifactInStorage", status, reason: "Succeeded", message, lastTransitionTime: "2026-01-01T00:00:00Z" }];
  const record = verificationRecord("key SHA256:abc", fingerprint);

  test("is found for the same revision under the same inputs", () => {
    assert.equal(recordedVerification(stored(storedArtifactMessage(revision, record)), revision, fingerprint), record);
  });

  test("is not found for an artifact stored unverified, another revision, other inputs, or no artifact in storage", () => {
    assert.equal(recordedVerification(stored(storedArtifactMessage(revision)), revision, fingerprint), undefined);
    assert.equal(recordedVerification(stored(storedArtifactMessage(`v2@${DIGEST}`, record)), revision, fingerprint), undefined);
    assert.equal(recordedVerification(stored(storedArtifactMessage(revision, record)), revision, `sha256:${"34".repeat(32)}`), undefined);
    assert.equal(recordedVerification(stored(storedArtifactMessage(revision, record), "False"), revision, fingerprint), undefined);
    assert.equal(recordedVerification(undefined, revision, fingerprint), undefined);
  });
});
