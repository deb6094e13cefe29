// Decrypting one SOPS-encrypted file or value with age identities, as `sops decrypt` does: read the format, open the
// data key, decrypt every value the rules mark as encrypted, verify the MAC, and write the plaintext. Bounded: the
// input is at most MAX_SOPS_BYTES (Flux's 5 MiB), and every error names the file, never a value.
import type { AgeIdentities } from "./age-keys.ts";
import { DecryptionError } from "./errors.ts";
import { emitPlain, loadEncrypted, type SopsFormat } from "./sops-formats.ts";
import { readMetadata } from "./sops-metadata.ts";
import { decryptDocuments } from "./sops-tree.ts";

export const MAX_SOPS_BYTES = 5 * 1024 * 1024;

export interface SopsDecryption {
  readonly input: SopsFormat;
  readonly output: SopsFormat;
  /** Names the file or Secret field in errors. */
  readonly where: string;
  /** Called with every decrypted value, so that callers can keep it out of messages. */
  readonly reveal?: (value: string) => void;
}

export async function decryptSops(data: Buffer, identities: AgeIdentities, options: SopsDecryption): Promise<Buffer> {
  const { where } = options;
  if (data.length > MAX_SOPS_BYTES) throw new DecryptionError(`${where} is ${data.length} bytes, over the ${MAX_SOPS_BYTES}-byte limit for encrypted files`);
  const text = data.toString("utf8");
  const file = loadEncrypted(text, options.input, where, MAX_SOPS_BYTES);
  const metadata = readMetadata(file.metadata, where);
  const key = await identities.dataKey(metadata, where);
  const plain = decryptDocuments(file.documents, metadata, key, where, options.reveal);
  key.fill(0);
  return emitPlain(plain, options.output, where);
}
