// Verifying an artifact before anything uses it: resolve to a digest, then accept it only if a signature made by one
// of the trusted keys binds exactly that digest. Bundles are tried first, then legacy `.sig` signatures.
import { createHash, type KeyObject, verify as verifyBytes } from "node:crypto";
import type { RegistryClient } from "../registry/client.ts";
import type { Descriptor } from "../registry/oci.ts";
import { formatReference, type Reference } from "../registry/reference.ts";
import { checkSignatureStatement, requireAcceptedDigest, statementOfBundle, verifyBundleWithKeys } from "./bundle.ts";
import { VerificationError, type VerificationFailure } from "./errors.ts";
import { type IdentityPolicy, verifyKeylessBundle } from "./keyless.ts";
import { keyFingerprint } from "./keys.ts";
import { findBundles, findLegacySignatures, type FoundLegacySignature, type RefusedSignature, type Repository } from "./store.ts";

export type SignatureFormat = "bundle" | "legacy";

export interface VerifiedArtifact {
  readonly reference: Reference;
  readonly digest: string;
  readonly format: SignatureFormat;
  /** `SHA256:<hex>` of the key that verified (key-based signatures). */
  readonly keyFingerprint?: string;
  /** The certificate identity and OIDC issuer (keyless signatures). */
  readonly identity?: string;
  readonly issuer?: string;
  /** When the signature was attached (bundle referrers carry it); absent for legacy signatures. */
  readonly signedAt?: string;
}

/** Checks one legacy simple-signing signature: the key, then the claim that it names this digest. */
export function verifyLegacySignature(found: FoundLegacySignature, digest: string, publicKeys: readonly KeyObject[]): KeyObject {
  const key = publicKeys.find((candidate) => {
    try {
      return verifyBytes("sha256", found.payload, candidate, found.signature);
    } catch {
      return false;
    }
  });
  if (!key) throw new VerificationError("wrong-key", "legacy signature does not verify with the given key");
  let payload: { critical?: { type?: string; image?: { "docker-manifest-digest"?: string } } };
  try {
    payload = JSON.parse(found.payload.toString("utf8"));
  } catch (error) {
    throw new VerificationError("malformed", "legacy signature payload is not JSON", { cause: error });
  }
  if (payload.critical?.type !== "cosign container image signature") {
    throw new VerificationError("malformed", `legacy signature payload has type ${payload.critical?.type}`);
  }
  const signed = payload.critical.image?.["docker-manifest-digest"];
  if (typeof signed !== "string") throw new VerificationError("malformed", "legacy signature payload names no docker-manifest-digest");
  requireAcceptedDigest(signed, "legacy signature's docker-manifest-digest");
  if (signed !== digest) throw new VerificationError("digest-mismatch", `legacy signature is for ${signed}, not ${digest}`);
  return key;
}

/** The most telling failure among several signatures: a signature for another digest beats a wrong key. */
function mostSpecific(errors: readonly VerificationError[]): VerificationError | undefined {
  const order: VerificationFailure[] = ["digest-mismatch", "tampered", "identity-mismatch", "wrong-key", "untrusted", "malformed", "no-signature"];
  return [...errors].sort((a, b) => order.indexOf(a.reason) - order.indexOf(b.reason))[0];
}

export interface KeylessTrust {
  /** Trusted root JSON (public-good Sigstore by default at the CLI; a private one with --trusted-root). */
  readonly trustedRoot: unknown;
  readonly policy: IdentityPolicy;
  readonly ignoreTlog?: boolean;
}

/** Everything that decides whether a signature is accepted: keys, or keyless policies (any one may match). */
export interface VerificationInputs {
  readonly publicKeys?: readonly KeyObject[];
  readonly keyless?: readonly KeylessTrust[];
}

/**
 * `sha256:<hex>` of the verification inputs, so that a verification can be recorded and found stale once they
 * change. It hashes key fingerprints and the trusted root, which are public, never where they came from.
 */
export function fingerprintInputs(inputs: VerificationInputs): string {
  const keys = [...new Set((inputs.publicKeys ?? []).map(keyFingerprint))].sort();
  const keyless = (inputs.keyless ?? []).map((trust) => ({
    policy: [trust.policy.identity, trust.policy.identityRegexp, trust.policy.issuer, trust.policy.issuerRegexp],
    ignoreTlog: trust.ignoreTlog === true,
    trustedRoot: createHash("sha256").update(JSON.stringify(trust.trustedRoot)).digest("hex"),
  }));
  return `sha256:${createHash("sha256").update(JSON.stringify({ keys, keyless })).digest("hex")}`;
}

/** Who signed, for status and logs: a key fingerprint or a certificate identity, never key material. */
export function describeSigner(verified: VerifiedArtifact): string {
  if (verified.keyFingerprint) return `key ${verified.keyFingerprint}`;
  return `identity ${verified.identity ?? "unknown"} (issuer ${verified.issuer ?? "unknown"})`;
}

function isRefused(found: object): found is RefusedSignature {
  return "refused" in found;
}

export async function verifyArtifact(
  client: RegistryClient,
  reference: Reference,
  options: { publicKeys?: readonly KeyObject[]; keyless?: KeylessTrust; subject?: Descriptor },
): Promise<VerifiedArtifact> {
  const publicKeys = options.publicKeys ?? [];
  if (publicKeys.length === 0 && !options.keyless) throw new VerificationError("untrusted", "no public key or keyless policy to verify with");
  const subject = options.subject ?? (await client.resolve(reference));
  const digest = subject.digest;
  requireAcceptedDigest(digest, "artifact digest");
  const repo: Repository = { registry: reference.registry, repository: reference.repository };
  const shown = formatReference({ ...repo, digest });
  const failures: VerificationError[] = [];
  const record = (error: unknown) => {
    if (error instanceof VerificationError) failures.push(error);
    else throw error;
  };

  for (const found of await findBundles(client, repo, digest)) {
    if (isRefused(found)) {
      failures.push(found.refused);
      continue;
    }
    try {
      if (options.keyless) {
        const verified = verifyKeylessBundle(found.bundle, digest, options.keyless);
        checkSignatureStatement(statementOfBundle(found.bundle), digest);
        return {
          reference,
          digest,
          format: "bundle",
          identity: verified.identity,
          issuer: verified.issuer,
          ...(found.created ? { signedAt: found.created } : {}),
        };
      }
      const verified = verifyBundleWithKeys(found.bundle, digest, publicKeys);
      return {
        reference,
        digest,
        format: "bundle",
        keyFingerprint: keyFingerprint(verified.publicKey),
        ...(found.created ? { signedAt: found.created } : {}),
      };
    } catch (error) {
      record(error);
    }
  }
  // Keyless legacy signatures need a Rekor lookup to be trusted; Ferry reads keyless signatures from bundles only.
  for (const found of options.keyless ? [] : await findLegacySignatures(client, repo, digest)) {
    if (isRefused(found)) {
      failures.push(found.refused);
      continue;
    }
    try {
      const key = verifyLegacySignature(found, digest, publicKeys);
      return { reference, digest, format: "legacy", keyFingerprint: keyFingerprint(key) };
    } catch (error) {
      record(error);
    }
  }
  const worst = mostSpecific(failures);
  if (!worst) throw new VerificationError("no-signature", `no signature found for ${shown}`);
  throw new VerificationError(worst.reason, `verification of ${shown} failed: ${worst.message}`, { cause: worst });
}
