// A SOPS document as sops sees it: ordered mappings of string keys (order matters, since the MAC hashes values in
// document order), lists, and scalars. Decrypting walks it as sops' Tree.Decrypt does, opening every value the
// metadata's rules mark as encrypted and hashing every value the MAC covers, then checks the result against the MAC
// stored in the metadata (itself encrypted under the data key, bound to lastmodified).
import { createHash, timingSafeEqual } from "node:crypto";
import { DecryptionError } from "./errors.ts";
import type { SopsMetadata } from "./sops-metadata.ts";
import { isEnvelope, macBytes, openEnvelope, type SopsScalar, typedPlaintext } from "./sops-value.ts";

export class SopsMapping {
  readonly entries: Array<[string, SopsValue]>;

  constructor(entries: Array<[string, SopsValue]>) {
    this.entries = entries;
  }

  get(key: string): SopsValue | undefined {
    return this.entries.find(([name]) => name === key)?.[1];
  }
}

export type SopsValue = SopsScalar | SopsValue[] | SopsMapping;

/** sops' MACOnlyEncryptedInitialization: a MAC over encrypted values only never equals one over all values. */
const MAC_ONLY_ENCRYPTED_INIT = Buffer.from("8a3fd2ad54ce66527b1034f3d147be0b0b975b3bf44f72c6fdadec8176f27d69", "hex");

interface Walk {
  readonly metadata: SopsMetadata;
  readonly key: Buffer;
  readonly where: string;
  readonly hash: ReturnType<typeof createHash>;
  readonly reveal: ((value: string) => void) | undefined;
}

function decryptLeaf(value: SopsScalar, path: readonly string[], walk: Walk): SopsScalar {
  const encrypted = walk.metadata.shouldBeEncrypted(path);
  let plain = value;
  if (encrypted) {
    const shown = path.join(":");
    if (typeof value !== "string") throw new DecryptionError(`${walk.where}: value at '${shown}' should be encrypted but is a ${typeof value}`);
    // sops leaves empty strings as they are rather than encrypting them.
    if (value !== "") {
      if (!isEnvelope(value)) throw new DecryptionError(`${walk.where}: value at '${shown}' should be encrypted but is not`);
      const aad = `${shown}:`;
      const { bytes, type } = openEnvelope(value, walk.key, aad, walk.where);
      plain = typedPlaintext(bytes, type, shown, walk.where);
      walk.reveal?.(bytes.toString("utf8"));
    }
  }
  if (!walk.metadata.macOnlyEncrypted || encrypted) walk.hash.update(macBytes(plain));
  return plain;
}

function decryptValue(value: SopsValue, path: readonly string[], walk: Walk): SopsValue {
  // null is never encrypted and never hashed (sops' walkValue skips it).
  if (value === null) return null;
  if (value instanceof SopsMapping) {
    return new SopsMapping(value.entries.map(([key, child]) => [key, decryptValue(child, [...path, key], walk)]));
  }
  // List items share their list's path: sops adds no index to the additional data.
  if (Array.isArray(value)) return value.map((item) => decryptValue(item, path, walk));
  return decryptLeaf(value, path, walk);
}

/**
 * The plaintext of `documents` (the branches of one file, metadata removed), checked against the metadata's MAC.
 * Throws DecryptionError naming the file for a value that fails authentication and for a MAC mismatch.
 */
export function decryptDocuments(
  documents: readonly SopsMapping[],
  metadata: SopsMetadata,
  key: Buffer,
  where: string,
  reveal?: (value: string) => void,
): SopsMapping[] {
  const hash = createHash("sha512");
  if (metadata.macOnlyEncrypted) hash.update(MAC_ONLY_ENCRYPTED_INIT);
  const walk: Walk = { metadata, key, where, hash, reveal };
  const plain = documents.map((document) => decryptValue(document, [], walk) as SopsMapping);
  const computed = Buffer.from(hash.digest("hex").toUpperCase());
  let stored: { bytes: Buffer };
  try {
    stored = openEnvelope(metadata.mac, key, metadata.lastModified, where);
  } catch {
    throw new DecryptionError(`${where}: the SOPS MAC cannot be opened: sops.mac or sops.lastmodified was changed after encryption`);
  }
  if (stored.bytes.length !== computed.length || !timingSafeEqual(stored.bytes, computed)) {
    throw new DecryptionError(`${where}: the SOPS MAC does not match the decrypted content: the file was changed after it was encrypted`);
  }
  return plain;
}
