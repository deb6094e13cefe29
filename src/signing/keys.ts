// cosign-compatible keys: `ENCRYPTED SIGSTORE PRIVATE KEY` (scrypt + NaCl secretbox around PKCS#8) and PKIX
// public keys, read and written so that cosign and Ferry use each other's key pairs.
import { createHash, createPrivateKey, createPublicKey, generateKeyPairSync, type KeyObject, randomBytes, scrypt } from "node:crypto";
import nacl from "tweetnacl";
import { KeyError } from "./errors.ts";

const PEM_TYPES = ["ENCRYPTED SIGSTORE PRIVATE KEY", "ENCRYPTED COSIGN PRIVATE KEY"] as const;
const WRITE_PEM_TYPE = "ENCRYPTED SIGSTORE PRIVATE KEY";
/** scrypt cost parameters cosign accepts when decrypting; anything else is refused as cosign refuses it. */
const ACCEPTED_SCRYPT_N = new Set([32768, 65536, 131072]);
const WRITE_SCRYPT_N = 65536;

interface EncryptedKeyEnvelope {
  kdf: { name: string; params: { N: number; r: number; p: number }; salt: string };
  cipher: { name: string; nonce: string };
  ciphertext: string;
}

function derive(password: string, salt: Buffer, n: number): Promise<Buffer> {
  return new Promise((resolve, reject) => {
    // N=65536, r=8 needs 64 MiB, above Node's default scrypt memory cap.
    scrypt(Buffer.from(password, "utf8"), salt, 32, { N: n, r: 8, p: 1, maxmem: 512 * 1024 * 1024 }, (error, key) =>
      error ? reject(error) : resolve(key),
    );
  });
}

function pemBlock(text: string): { type: string; body: Buffer } | undefined {
  const match = /-----BEGIN ([A-Z0-9 ]+)-----([\s\S]*?)-----END \1-----/.exec(text);
  if (!match?.[1] || match[2] === undefined) return undefined;
  return { type: match[1], body: Buffer.from(match[2].replace(/\s+/g, ""), "base64") };
}

function wrapPem(type: string, body: Buffer): string {
  const lines = body.toString("base64").match(/.{1,64}/g) ?? [];
  return `-----BEGIN ${type}-----\n${lines.join("\n")}\n-----END ${type}-----\n`;
}

/** Decrypts a cosign private key; a wrong password is a KeyError saying so. */
export async function decryptPrivateKey(pem: string, password: string, origin = "private key"): Promise<KeyObject> {
  const block = pemBlock(pem);
  if (!block || !(PEM_TYPES as readonly string[]).includes(block.type)) {
    throw new KeyError(`${origin} is not an encrypted cosign/sigstore private key (expected PEM type ${PEM_TYPES.join(" or ")})`);
  }
  let envelope: EncryptedKeyEnvelope;
  try {
    envelope = JSON.parse(block.body.toString("utf8"));
  } catch (error) {
    throw new KeyError(`${origin} has a corrupt envelope`, { cause: error });
  }
  const { kdf, cipher } = envelope;
  if (kdf?.name !== "scrypt" || cipher?.name !== "nacl/secretbox") {
    throw new KeyError(`${origin} uses ${kdf?.name}/${cipher?.name}; only scrypt with nacl/secretbox is supported`);
  }
  if (!ACCEPTED_SCRYPT_N.has(kdf.params.N) || kdf.params.r !== 8 || kdf.params.p !== 1) {
    throw new KeyError(`${origin} has unsupported scrypt parameters N=${kdf.params.N} r=${kdf.params.r} p=${kdf.params.p}`);
  }
  const key = await derive(password, Buffer.from(kdf.salt, "base64"), kdf.params.N);
  const opened = nacl.secretbox.open(Buffer.from(envelope.ciphertext, "base64"), Buffer.from(cipher.nonce, "base64"), key);
  if (!opened) throw new KeyError(`wrong password for ${origin} (decryption failed)`);
  try {
    return createPrivateKey({ key: Buffer.from(opened), format: "der", type: "pkcs8" });
  } catch (error) {
    throw new KeyError(`${origin} does not hold a PKCS#8 private key`, { cause: error });
  }
}

export async function encryptPrivateKey(key: KeyObject, password: string): Promise<string> {
  const salt = randomBytes(32);
  const nonce = randomBytes(24);
  const secret = await derive(password, salt, WRITE_SCRYPT_N);
  const plaintext = key.export({ type: "pkcs8", format: "der" });
  const ciphertext = nacl.secretbox(plaintext, nonce, secret);
  const envelope: EncryptedKeyEnvelope = {
    kdf: { name: "scrypt", params: { N: WRITE_SCRYPT_N, r: 8, p: 1 }, salt: salt.toString("base64") },
    cipher: { name: "nacl/secretbox", nonce: nonce.toString("base64") },
    ciphertext: Buffer.from(ciphertext).toString("base64"),
  };
  return wrapPem(WRITE_PEM_TYPE, Buffer.from(JSON.stringify(envelope)));
}

export interface KeyPair {
  readonly privateKeyPem: string;
  readonly publicKeyPem: string;
}

/** A new ECDSA P-256 pair, the key type cosign, Flux and Ferry all verify with SHA-256. */
export async function generateKeyPair(password: string): Promise<KeyPair> {
  const { privateKey, publicKey } = generateKeyPairSync("ec", { namedCurve: "prime256v1" });
  return {
    privateKeyPem: await encryptPrivateKey(privateKey, password),
    publicKeyPem: publicKey.export({ type: "spki", format: "pem" }).toString(),
  };
}

/** Reads a PKIX (`PUBLIC KEY`) or PKCS#1 (`RSA PUBLIC KEY`) public key. */
export function parsePublicKey(pem: string, origin = "public key"): KeyObject {
  try {
    return createPublicKey(pem);
  } catch (error) {
    throw new KeyError(`${origin} is not a PEM public key: ${(error as Error).message}`, { cause: error });
  }
}

/** base64(sha256(SPKI DER)): the key hint cosign writes into bundles, and the fingerprint Ferry shows. */
export function keyHint(publicKey: KeyObject): string {
  return createHash("sha256").update(publicKey.export({ type: "spki", format: "der" })).digest("base64");
}

/** `SHA256:<hex>` for people, as ssh-keygen and cosign's output show key fingerprints. */
export function keyFingerprint(publicKey: KeyObject): string {
  return `SHA256:${createHash("sha256").update(publicKey.export({ type: "spki", format: "der" })).digest("hex")}`;
}
