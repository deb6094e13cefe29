// Key handling and bundle verification as pure logic: every way a signature can be wrong has its own reason.
import assert from "node:assert/strict";
import { generateKeyPairSync } from "node:crypto";
import { describe, test } from "node:test";
import { signDigestWithKey, signStatement, verifyBundleWithKeys } from "../../src/signing/bundle.ts";
import { KeyError, VerificationError } from "../../src/signing/errors.ts";
import { decryptPrivateKey, encryptPrivateKey, generateKeyPair, keyFingerprint, keyHint, parsePublicKey } from "../../src/signing/keys.ts";
import { simpleSigningPayload } from "../../src/signing/store.ts";
import { verifyLegacySignature } from "../../src/signing/verify.ts";
import { sign } from "node:crypto";

const DIGEST = `sha256:${"ab".repeat(32)}`;
const OTHER = `sha256:${"cd".repeat(32)}`;

function rejectsWith(reason: VerificationError["reason"], pattern: RegExp) {
  return (error: unknown) => error instanceof VerificationError && error.reason === reason && pattern.test(error.message);
}

describe("cosign keys", () => {
  test("an encrypted key round-trips, and a wrong password is named as such", async () => {
    const pair = await generateKeyPair("correct horse");
    assert.match(pair.privateKeyPem, /^-----BEGIN ENCRYPTED SIGSTORE PRIVATE KEY-----\n/);
    assert.match(pair.publicKeyPem, /^-----BEGIN PUBLIC KEY-----\n/);
    const envelope = JSON.parse(Buffer.from(pair.privateKeyPem.split("\n").slice(1, -2).join(""), "base64").toString());
    assert.deepEqual(envelope.kdf.params, { N: 65536, r: 8, p: 1 });
    assert.equal(envelope.cipher.name, "nacl/secretbox");
    const key = await decryptPrivateKey(pair.privateKeyPem, "correct horse");
    assert.equal(key.asymmetricKeyType, "ec");
    await assert.rejects(decryptPrivateKey(pair.privateKeyPem, "wrong"), (error: unknown) => error instanceof KeyError && /wrong password/.test(error.message));
  });

  test("keys under cosign's older PEM label are read too", async () => {
    const pair = await generateKeyPair("pw");
    const legacyLabel = pair.privateKeyPem.replaceAll("ENCRYPTED SIGSTORE PRIVATE KEY", "ENCRYPTED COSIGN PRIVATE KEY");
    assert.equal((await decryptPrivateKey(legacyLabel, "pw")).asymmetricKeyType, "ec");
  });

  test("an empty password is legal, as in cosign", async () => {
    const { privateKey } = generateKeyPairSync("ec", { namedCurve: "prime256v1" });
    const pem = await encryptPrivateKey(privateKey, "");
    assert.equal((await decryptPrivateKey(pem, "")).asymmetricKeyType, "ec");
  });

  test("keys that are not cosign keys are refused with the reason", async () => {
    const { privateKey } = generateKeyPairSync("ec", { namedCurve: "prime256v1" });
    const plain = privateKey.export({ type: "pkcs8", format: "pem" }).toString();
    await assert.rejects(decryptPrivateKey(plain, ""), /not an encrypted cosign\/sigstore private key/);
    const weak = (await encryptPrivateKey(privateKey, "")).split("\n");
    const body = JSON.parse(Buffer.from(weak.slice(1, -2).join(""), "base64").toString());
    body.kdf.params.N = 1024;
    const tampered = `-----BEGIN ENCRYPTED SIGSTORE PRIVATE KEY-----\n${Buffer.from(JSON.stringify(body)).toString("base64")}\n-----END ENCRYPTED SIGSTORE PRIVATE KEY-----\n`;
    await assert.rejects(decryptPrivateKey(tampered, ""), /unsupported scrypt parameters N=1024/);
    assert.throws(() => parsePublicKey("not a key", "cosign.pub"), /cosign\.pub is not a PEM public key/);
  });

  test("the key hint is base64 of the SPKI digest and the fingerprint its hex", () => {
    const { publicKey } = generateKeyPairSync("ec", { namedCurve: "prime256v1" });
    assert.equal(Buffer.from(keyHint(publicKey), "base64").toString("hex"), keyFingerprint(publicKey).slice("SHA256:".length));
  });
});

describe("bundle verification", () => {
  const signer = generateKeyPairSync("ec", { namedCurve: "prime256v1" });
  const stranger = generateKeyPairSync("ec", { namedCurve: "prime256v1" });

  test("the statement is cosign's: unnamed subject with the manifest digest and the cosign sign predicate", () => {
    assert.deepEqual(JSON.parse(signStatement(DIGEST).toString()), {
      _type: "https://in-toto.io/Statement/v1",
      subject: [{ digest: { sha256: "ab".repeat(32) } }],
      predicateType: "https://sigstore.dev/cosign/sign/v1",
      predicate: {},
    });
  });

  test("a bundle verifies with its key, and with a key list that contains it", async () => {
    const bundle = await signDigestWithKey(DIGEST, signer.privateKey);
    assert.equal(verifyBundleWithKeys(bundle, DIGEST, [signer.publicKey]).publicKey, signer.publicKey);
    assert.equal(verifyBundleWithKeys(bundle, DIGEST, [stranger.publicKey, signer.publicKey]).publicKey, signer.publicKey);
    assert.equal(JSON.parse(bundle.toString()).dsseEnvelope.signatures[0].keyid, undefined, "cosign-style: no DSSE keyid");
  });

  test("each failure names its reason: another key, another digest, an altered payload, garbage", async () => {
    const bundle = await signDigestWithKey(DIGEST, signer.privateKey);
    assert.throws(() => verifyBundleWithKeys(bundle, DIGEST, [stranger.publicKey]), rejectsWith("wrong-key", /does not verify with the given key/));
    assert.throws(() => verifyBundleWithKeys(bundle, OTHER, [signer.publicKey]), rejectsWith("digest-mismatch", new RegExp(`is for ${DIGEST}, not ${OTHER}`)));
    const altered = JSON.parse(bundle.toString());
    altered.dsseEnvelope.payload = Buffer.from(signStatement(OTHER)).toString("base64");
    assert.throws(() => verifyBundleWithKeys(Buffer.from(JSON.stringify(altered)), OTHER, [signer.publicKey]), rejectsWith("tampered", /altered after signing/));
    assert.throws(() => verifyBundleWithKeys(Buffer.from("{}"), DIGEST, [signer.publicKey]), rejectsWith("malformed", /not a valid Sigstore bundle/));
  });

  test("legacy signatures check the key and the digest claim", () => {
    const repo = { registry: "127.0.0.1:5000", repository: "app" };
    const payload = simpleSigningPayload(repo, DIGEST);
    const signature = sign("sha256", payload, signer.privateKey);
    assert.equal(verifyLegacySignature({ payload, signature }, DIGEST, [signer.publicKey]), signer.publicKey);
    assert.throws(() => verifyLegacySignature({ payload, signature }, DIGEST, [stranger.publicKey]), rejectsWith("wrong-key", /legacy signature/));
    assert.throws(() => verifyLegacySignature({ payload, signature }, OTHER, [signer.publicKey]), rejectsWith("digest-mismatch", /is for sha256:abab/));
  });
});
