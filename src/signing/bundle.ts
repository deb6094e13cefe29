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

/** A signed in-toto statement as parsed: nothing in it is trusted until checkSignatureStatement accepts it. */
export interface SignedStatement {
  readonly _type?: unknown;
  readonly predicateType?: unknown;
  readonly subject?: ReadonlyArray<{ readonly digest?: Readonly<Record<string, string>> }>;
}

export interface BundleVerification {
  /** Fingerprint source: the key that verified. */
  readonly publicKey: KeyObject;
  readonly statement: SignedStatement;
}

/** Only these name content strongly enough to be signed: the registry client verifies content with no others. */
const ACCEPTED_DIGEST = /^(sha256:[a-f0-9]{64}|sha512:[a-f0-9]{128})$/;

/** Why `digest` cannot name signed content (md5, sha1, anything but full sha256 or sha512), or undefined if it can. */
export function refusedDigest(digest: string, what: string): VerificationError | undefined {
  if (ACCEPTED_DIGEST.test(digest)) return undefined;
  const algorithm = digest.includes(":") ? digest.slice(0, Math.min(digest.indexOf(":"), 32)).toLowerCase() : "";
  const why = algorithm === "sha256" || algorithm === "sha512"
    ? "is not a complete lowercase hex digest"
    : `uses ${algorithm ? `the ${algorithm} algorithm` : "no known algorithm"}, which Ferry refuses: only sha256 and sha512 digests are accepted`;
  return new VerificationError("untrusted", `${what} ${shortened(digest)} ${why}`);
}

export function requireAcceptedDigest(digest: string, what: string): void {
  const refusal = refusedDigest(digest, what);
  if (refusal) throw refusal;
}

/** The statement inside a DSSE payload; a payload that is not a JSON object is no statement. */
export function parseStatement(payload: Buffer): SignedStatement {
  let statement: unknown;
  try {
    statement = JSON.parse(payload.toString("utf8"));
  } catch (error) {
    throw new VerificationError("malformed", "signed payload is not an in-toto statement", { cause: error });
  }
  if (typeof statement !== "object" || statement === null || Array.isArray(statement)) {
    throw new VerificationError("malformed", "signed payload is not an in-toto statement");
  }
  return statement as SignedStatement;
}

/** The statement a serialised DSSE bundle carries (read after its signature verified, so that it can be trusted). */
export function statementOfBundle(bundleBytes: Buffer): SignedStatement {
  let bundle;
  try {
    bundle = bundleFromJSON(JSON.parse(bundleBytes.toString("utf8")));
  } catch (error) {
    throw new VerificationError("malformed", `signature bundle is not a valid Sigstore bundle: ${(error as Error).message}`, { cause: error });
  }
  if (bundle.content.$case !== "dsseEnvelope") throw new VerificationError("malformed", "signature bundle does not contain a DSSE envelope");
  return parseStatement(Buffer.from(bundle.content.dsseEnvelope.payload));
}

/** Text from a signed payload as an error message shows it: short however long it is. */
function shortened(text: string): string {
  return text.length > 200 ? `${text.slice(0, 200)}…` : text;
}

function shown(value: unknown): string {
  return shortened(JSON.stringify(value) ?? "nothing");
}

function subjectDigests(statement: SignedStatement): string[] {
  const subjects = Array.isArray(statement.subject) ? statement.subject : [];
  return subjects.flatMap((subject) => Object.entries(subject?.digest ?? {}).map(([algorithm, hex]) => `${algorithm}:${String(hex)}`));
}

/**
 * Accepts a verified statement as a signature of `manifestDigest` only if it is what `cosign sign` signs: an in-toto
 * v1 statement with cosign's signing predicate whose subject names that digest. The same key or identity may sign
 * attestations (SLSA provenance, SBOMs) for the same digest; those say something about the artifact, not "I approve
 * it", so they do not count, whatever Flux does.
 */
export function checkSignatureStatement(statement: SignedStatement, manifestDigest: string): void {
  requireAcceptedDigest(manifestDigest, "artifact digest");
  if (statement.predicateType !== COSIGN_SIGN_PREDICATE) {
    throw new VerificationError("no-signature", `bundle is an attestation with predicate type ${shown(statement.predicateType)}, not a signature (${COSIGN_SIGN_PREDICATE})`);
  }
  if (statement._type !== IN_TOTO_STATEMENT_TYPE) {
    throw new VerificationError("malformed", `signed statement has type ${shown(statement._type)}, not ${IN_TOTO_STATEMENT_TYPE}`);
  }
  const named = subjectDigests(statement);
  if (named.includes(manifestDigest)) return;
  if (named.length > 0 && named.every((digest) => refusedDigest(digest, "") !== undefined)) {
    throw new VerificationError("untrusted", `signature names its subject only as ${shown(named.join(", "))}: only sha256 and sha512 digests are accepted`);
  }
  throw new VerificationError("digest-mismatch", `signature is for ${shortened(named.join(" ")) || "no digest"}, not ${manifestDigest}`);
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

  const statement = parseStatement(Buffer.from(envelope.payload));
  checkSignatureStatement(statement, manifestDigest);
  return { publicKey: verifiedBy, statement };
}
