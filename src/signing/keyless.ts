// Keyless signatures: a short-lived certificate (Fulcio) names who signed; verification checks the chain against a
// trusted root and the certificate's identity and OIDC issuer against the policy, then binds the digest.
import { verify as verifyBytes } from "node:crypto";
import { type Bundle, bundleFromJSON, bundleToJSON } from "@sigstore/bundle";
import { crypto as sigstoreCrypto, dsse, X509Certificate } from "@sigstore/core";
import { TrustedRoot } from "@sigstore/protobuf-specs";
import { CIContextProvider, DEFAULT_FULCIO_URL, DEFAULT_REKOR_URL, DSSEBundleBuilder, FulcioSigner, RekorWitness } from "@sigstore/sign";
import { toSignedEntity, toTrustMaterial, Verifier } from "@sigstore/verify";
import { GoRegexp, GoRegexpError } from "../go-regexp.ts";
import { BUNDLE_MEDIA_TYPE, IN_TOTO_PAYLOAD_TYPE, signStatement } from "./bundle.ts";
import { VerificationError } from "./errors.ts";

const OID_FULCIO_ISSUER_V1 = "1.3.6.1.4.1.57264.1.1";
const OID_FULCIO_ISSUER_V2 = "1.3.6.1.4.1.57264.1.8";
const OID_CODE_SIGNING = "1.3.6.1.5.5.7.3.3";
const OID_EXTENDED_KEY_USAGE = "2.5.29.37";

export interface KeylessSignOptions {
  /** An OIDC token (SIGSTORE_ID_TOKEN); otherwise GitHub Actions or Buildkite provide one. */
  readonly identityToken?: string;
  readonly fulcioUrl?: string;
  readonly rekorUrl?: string;
  /** Upload to the transparency log (default). Without it, verifiers need --insecure-ignore-tlog. */
  readonly tlogUpload?: boolean;
}

/** Signs with an ephemeral key certified by Fulcio and logged in Rekor. Needs the network. */
export async function signDigestKeyless(manifestDigest: string, options: KeylessSignOptions = {}): Promise<Buffer> {
  const identityProvider = options.identityToken
    ? { getToken: async () => options.identityToken ?? "" }
    : new CIContextProvider("sigstore");
  const builder = new DSSEBundleBuilder({
    signer: new FulcioSigner({ identityProvider, fulcioBaseURL: options.fulcioUrl ?? DEFAULT_FULCIO_URL }),
    witnesses: options.tlogUpload === false
      ? []
      : [new RekorWitness({ rekorBaseURL: options.rekorUrl ?? DEFAULT_REKOR_URL, entryType: "dsse", fetchOnConflict: true })],
  });
  const bundle = await builder.create({ data: signStatement(manifestDigest), type: IN_TOTO_PAYLOAD_TYPE });
  return Buffer.from(JSON.stringify(bundleToJSON(bundle)));
}

/** Who may have signed. Regular expressions must match the whole value (they are anchored, unlike cosign's). */
export interface IdentityPolicy {
  readonly identity?: string;
  readonly identityRegexp?: string;
  readonly issuer?: string;
  readonly issuerRegexp?: string;
}

export interface KeylessVerification {
  readonly identity: string;
  readonly issuer: string;
  /** The time the chain was checked at: the transparency log's integrated time, or now without a log. */
  readonly checkedAt: Date;
}

/** Whether `pattern` matches all of `value`, in linear time whatever the pattern (it comes from a tenant's spec). */
function matchesWhole(pattern: string, value: string, flag: string): boolean {
  let compiled: GoRegexp;
  try {
    compiled = GoRegexp.compile(pattern);
  } catch (error) {
    if (!(error instanceof GoRegexpError)) throw error;
    throw new VerificationError("malformed", `${flag} ${error.message}`, { cause: error });
  }
  // An unanchored "https://github.com/acme/.*" would also accept "https://evil.example/?https://github.com/acme/x".
  return compiled.matchesWhole(value);
}

export function matchesPolicy(policy: IdentityPolicy, identity: string, issuer: string): void {
  if (policy.identity === undefined && policy.identityRegexp === undefined) {
    throw new VerificationError("identity-mismatch", "keyless verification needs --certificate-identity or --certificate-identity-regexp");
  }
  if (policy.issuer === undefined && policy.issuerRegexp === undefined) {
    throw new VerificationError("identity-mismatch", "keyless verification needs --certificate-oidc-issuer or --certificate-oidc-issuer-regexp");
  }
  const identityOk = policy.identity !== undefined ? identity === policy.identity : matchesWhole(policy.identityRegexp ?? "", identity, "--certificate-identity-regexp");
  if (!identityOk) {
    const wanted = policy.identity ?? `/${policy.identityRegexp}/`;
    throw new VerificationError("identity-mismatch", `signed by ${identity}, which does not match ${wanted}`);
  }
  const issuerOk = policy.issuer !== undefined ? issuer === policy.issuer : matchesWhole(policy.issuerRegexp ?? "", issuer, "--certificate-oidc-issuer-regexp");
  if (!issuerOk) {
    throw new VerificationError("identity-mismatch", `certificate issued for OIDC issuer ${issuer}, which does not match ${policy.issuer ?? `/${policy.issuerRegexp}/`}`);
  }
}

function leafCertificate(bundle: Bundle): X509Certificate {
  const material = bundle.verificationMaterial.content;
  const raw = material.$case === "certificate"
    ? material.certificate.rawBytes
    : material.$case === "x509CertificateChain"
      ? material.x509CertificateChain.certificates[0]?.rawBytes
      : undefined;
  if (!raw) throw new VerificationError("wrong-key", "signature was made with a key, not a certificate; verify it with --key");
  return X509Certificate.parse(Buffer.from(raw));
}

function issuerOf(certificate: X509Certificate): string {
  const v2 = certificate.extension(OID_FULCIO_ISSUER_V2);
  if (v2) return v2.valueObj.subs[0]?.value.toString("ascii") ?? "";
  return certificate.extension(OID_FULCIO_ISSUER_V1)?.value.toString("ascii") ?? "";
}

function sanOf(certificate: X509Certificate): string {
  const san = certificate.extSubjectAltName;
  return san?.uri ?? san?.rfc822Name ?? "";
}

/** Checks leaf -> intermediates -> a trusted root CA at `at`, with only Node and @sigstore/core. */
function verifyChain(leaf: X509Certificate, trustedRoot: TrustedRoot, at: Date): void {
  if (!leaf.validForDate(at)) {
    throw new VerificationError("untrusted", `signing certificate is not valid at ${at.toISOString()} (valid ${leaf.notBefore.toISOString()} to ${leaf.notAfter.toISOString()}): expired or not yet valid`);
  }
  // extnValue is an OCTET STRING wrapping SEQUENCE OF KeyPurposeId.
  const extendedKeyUsages = leaf.extension(OID_EXTENDED_KEY_USAGE)?.valueObj.subs[0]?.subs.map((usage) => usage.toOID()) ?? [];
  if (!extendedKeyUsages.includes(OID_CODE_SIGNING)) {
    throw new VerificationError("untrusted", "signing certificate is not for code signing");
  }
  for (const authority of trustedRoot.certificateAuthorities) {
    const chain = authority.certChain?.certificates.map((certificate) => X509Certificate.parse(Buffer.from(certificate.rawBytes))) ?? [];
    let current = leaf;
    let trusted = false;
    for (const candidate of chain) {
      if (!current.verify(candidate) || !candidate.isCA || !candidate.validForDate(at)) break;
      current = candidate;
      if (candidate.verify()) {
        trusted = true;
        break;
      }
    }
    if (trusted) return;
  }
  throw new VerificationError("untrusted", "signing certificate does not chain to a certificate authority of the trusted root");
}

/**
 * Verifies a keyless bundle. With a transparency log entry and log keys in the trusted root, sigstore-js verifies
 * everything (log inclusion, SCTs, chain at the logged time). Without a log (`ignoreTlog`, as cosign's
 * --insecure-ignore-tlog), the chain is checked at the current time and the DSSE signature with the leaf key.
 */
export function verifyKeylessBundle(
  bundleBytes: Buffer,
  manifestDigest: string,
  options: { trustedRoot: unknown; policy: IdentityPolicy; ignoreTlog?: boolean; now?: Date },
): KeylessVerification {
  let bundle: Bundle;
  try {
    bundle = bundleFromJSON(JSON.parse(bundleBytes.toString("utf8")));
  } catch (error) {
    throw new VerificationError("malformed", `signature bundle is not a valid Sigstore bundle: ${(error as Error).message}`, { cause: error });
  }
  if (!bundle.mediaType.startsWith(BUNDLE_MEDIA_TYPE.replace("+json", ""))) {
    throw new VerificationError("malformed", `signature bundle version ${bundle.mediaType} is too old; v0.3 is required`);
  }
  if (bundle.content.$case !== "dsseEnvelope") throw new VerificationError("malformed", "signature bundle does not contain a DSSE envelope");
  const envelope = bundle.content.dsseEnvelope;
  const root = TrustedRoot.fromJSON(options.trustedRoot);
  const leaf = leafCertificate(bundle);
  let checkedAt = options.now ?? new Date();

  if (options.ignoreTlog) {
    verifyChain(leaf, root, checkedAt);
    const signature = envelope.signatures[0]?.sig;
    const signedBytes = dsse.preAuthEncoding(envelope.payloadType, Buffer.from(envelope.payload));
    const leafKey = sigstoreCrypto.createPublicKey(leaf.publicKey);
    const signed = signature !== undefined && verifyBytes(null, signedBytes, leafKey, Buffer.from(signature));
    if (!signed) throw new VerificationError("tampered", "signature does not match the signed content or the certificate's key");
  } else {
    try {
      const thresholds = { tlogThreshold: 1, ctlogThreshold: root.ctlogs.length > 0 ? 1 : 0, timestampThreshold: 1 };
      const verifier = new Verifier(toTrustMaterial(root), thresholds);
      verifier.verify(toSignedEntity(bundle));
    } catch (error) {
      throw new VerificationError("untrusted", `keyless signature failed verification against the trusted root: ${(error as Error).message}`, { cause: error });
    }
    const integrated = bundle.verificationMaterial.tlogEntries[0]?.integratedTime;
    if (integrated) checkedAt = new Date(Number(integrated) * 1000);
  }

  const identity = sanOf(leaf);
  const issuer = issuerOf(leaf);
  matchesPolicy(options.policy, identity, issuer);

  const statement = JSON.parse(Buffer.from(envelope.payload).toString("utf8")) as { subject?: Array<{ digest?: Record<string, string> }> };
  const [algorithm, hex] = manifestDigest.split(":");
  if (!(statement.subject ?? []).some((subject) => algorithm !== undefined && subject.digest?.[algorithm] === hex)) {
    throw new VerificationError("digest-mismatch", `signature is not for ${manifestDigest}`);
  }
  return { identity, issuer, checkedAt };
}
