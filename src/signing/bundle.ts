// Sigstore bundles as cosign v3 writes them for an OCI artifact: a DSSE envelope around an in-toto statement whose
// subject is the manifest digest, signed with a cosign key. Verification binds the statement to the exact digest.
import { createPublicKey, type KeyObject, sign } from "node:crypto";
import { bundleFromJSON, bundleToJSON, type SerializedBundle } from "@sigstore/bundle";
import { TrustedRoot } from "@sigstore/protobuf-specs";
import { DSSEBundleBuilder, type Signer } from "@sigstore/sign";
import { toSignedEntity, toTrustMaterial, Verifier } from "@sigstore/verify";
import { VerificationError } from "./errors.ts";
import { keyHint } from "./keys.ts";

export const BUNDLE_MEDIA_TYPE = "application/vnd.dev.sigstore.bundle.v0.3+json";
export const IN_TOTO_PAYLOAD_TYPE = "application/vnd.in-toto+json";
export const IN_TOTO_STATEMENT_TYPE = "https://in-toto.io/Statement/v1";
export const COSIGN_SIGN_PREDICATE = "https://sigstore.dev/cosign/sign/v1";

/** The statement cosign signs for an image: the subject is the manifest digest, unnamed. */
export function signStatement(manifestDigest: string, annotations?: Readonly<Record<string, string>>): Buffer {
  const [algorithm, hex] = manifestDigest.split(":");
  if (!algorithm || !hex) throw new Error(`not a digest: ${manifestDigest}`);
  const subject = { digest: { [algorithm]: hex }, ...(annotations && Object.keys(annotations).length ? { annotations } : {}) };
  return Buffer.from(
    JSON.stringify({ _type: IN_TOTO_STATEMENT_TYPE, subject: [subject], predicateType: COSIGN_SIGN_PREDICATE, predicate: {} }),
  );
}

function keySigner(privateKey: KeyObject): Signer {
  const publicKey = createPublicKey(privateKey);
  const publicKeyPem = publicKey.export({ type: "spki", format: "pem" }).toString();
  const hint = keyHint(publicKey);
  return {
    sign: async (data) => ({
      // ECDSA over SHA-256 in ASN.1 DER, as Go's crypto.Signer and cosign write it.
      signature: sign("sha256", data, privateKey),
      key: { $case: "publicKey", publicKey: publicKeyPem, hint },
    }),
  };
}

/** Signs `manifestDigest` with a key and returns the serialised bundle (no transparency log entry). */
export async function signDigestWithKey(
  manifestDigest: string,
  privateKey: KeyObject,
  annotations?: Readonly<Record<string, string>>,
): Promise<Buffer> {
  const builder = new DSSEBundleBuilder({ signer: keySigner(privateKey), witnesses: [] });
  const bundle = await builder.create({ data: signStatement(manifestDigest, annotations), type: IN_TOTO_PAYLOAD_TYPE });
  const json = bundleToJSON(bundle);
  // cosign leaves the DSSE keyid empty; with it set, sigstore-go skips the signature as made by "another key".
  const envelope = (json as { dsseEnvelope?: { signatures?: Array<{ keyid?: string }> } }).dsseEnvelope;
  for (const signature of envelope?.signatures ?? []) delete signature.keyid;
  return Buffer.from(JSON.stringify(json));
}

const EMPTY_TRUSTED_ROOT = {
  mediaType: "application/vnd.dev.sigstore.trustedroot+json;version=0.1",
  tlogs: [],
  certificateAuthorities: [],
  ctlogs: [],
  timestampAuthorities: [],
};

export interface BundleVerification {
  /** Fingerprint source: the key that verified. */
  readonly publicKey: KeyObject;
  readonly statement: { subject: Array<{ digest: Record<string, string>; annotations?: Record<string, string> }> };
}

/**
 * Verifies a serialised bundle against any of `publicKeys` (as `cosign verify --key` with the tlog ignored) and
 * checks that its in-toto subject is exactly `manifestDigest`; the library alone would accept any subject.
 */
export function verifyBundleWithKeys(bundleBytes: Buffer, manifestDigest: string, publicKeys: readonly KeyObject[]): BundleVerification {
  let serialized: SerializedBundle;
  let bundle;
  try {
    serialized = JSON.parse(bundleBytes.toString("utf8"));
    bundle = bundleFromJSON(serialized);
  } catch (error) {
    throw new VerificationError("malformed", `signature bundle is not a valid Sigstore bundle: ${(error as Error).message}`, { cause: error });
  }
  if (bundle.mediaType !== BUNDLE_MEDIA_TYPE && !bundle.mediaType.startsWith("application/vnd.dev.sigstore.bundle.v0.3")) {
    throw new VerificationError("malformed", `signature bundle version ${bundle.mediaType} is too old; v0.3 is required`);
  }
  if (bundle.content.$case !== "dsseEnvelope") {
    throw new VerificationError("malformed", "signature bundle does not contain a DSSE envelope");
  }
  const envelope = bundle.content.dsseEnvelope;
  if (envelope.payloadType !== IN_TOTO_PAYLOAD_TYPE) {
    throw new VerificationError("malformed", `signature bundle payload type is ${envelope.payloadType}, not ${IN_TOTO_PAYLOAD_TYPE}`);
  }

  let verifiedBy: KeyObject | undefined;
  let lastError: unknown;
  for (const publicKey of publicKeys) {
    try {
      const trust = toTrustMaterial(TrustedRoot.fromJSON(EMPTY_TRUSTED_ROOT), () => ({ publicKey, validFor: () => true }));
      new Verifier(trust, { tlogThreshold: 0, ctlogThreshold: 0, timestampThreshold: 0 }).verify(toSignedEntity(bundle));
      verifiedBy = publicKey;
      break;
    } catch (error) {
      lastError = error;
    }
  }
  if (!verifiedBy) {
    // A bundle that names one of our keys but does not verify with it was altered after signing.
    const hint = bundle.verificationMaterial.content.$case === "publicKey" ? bundle.verificationMaterial.content.publicKey.hint : "";
    if (hint && publicKeys.some((key) => keyHint(key) === hint)) {
      throw new VerificationError("tampered", "signature does not match the signed content: the bundle was altered after signing", {
        cause: lastError,
      });
    }
    throw new VerificationError("wrong-key", `signature does not verify with the given key${publicKeys.length > 1 ? "s" : ""}`, {
      cause: lastError,
    });
  }

  let statement: BundleVerification["statement"];
  try {
    statement = JSON.parse(Buffer.from(envelope.payload).toString("utf8"));
  } catch (error) {
    throw new VerificationError("malformed", "signed payload is not an in-toto statement", { cause: error });
  }
  const [algorithm, hex] = manifestDigest.split(":");
  const matches = (statement.subject ?? []).some((subject) => algorithm !== undefined && subject.digest?.[algorithm] === hex);
  if (!matches) {
    const signed = (statement.subject ?? []).map((subject) => Object.entries(subject.digest ?? {}).map(([a, h]) => `${a}:${h}`).join(",")).join(" ");
    throw new VerificationError("digest-mismatch", `signature is for ${signed || "no digest"}, not ${manifestDigest}`);
  }
  return { publicKey: verifiedBy, statement };
}
