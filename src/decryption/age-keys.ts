// The age identities of a Kustomization's decryption Secret, and opening a SOPS data key with them. As in Flux, every
// Secret key ending in `.agekey` holds identities, one per line, with `#` comments and blank lines allowed (the format
// of age-keygen's output). Keys for other SOPS backends are refused by name: Ferry decrypts with age only, and a
// Secret that carries a PGP key or cloud credentials must not look as if it worked.
import { armor, Decrypter } from "age-encryption";
import { DecryptionError, DecryptionKeyError, UnsupportedDecryptionError } from "./errors.ts";
import type { SopsMetadata } from "./sops-metadata.ts";

const AGE_EXTENSION = ".agekey";
/** Flux's names for the other backends' entries: a `.asc` PGP key and the token/credential files. */
const OTHER_BACKENDS: ReadonlyArray<[(name: string) => boolean, string]> = [
  [(name) => name.endsWith(".asc"), "PGP"],
  [(name) => name === "sops.vault-token", "HashiCorp Vault"],
  [(name) => name === "sops.aws-kms", "AWS KMS"],
  [(name) => name === "sops.azure-kv", "Azure Key Vault"],
  [(name) => name === "sops.gcp-kms", "GCP KMS"],
];
const IDENTITY = /^AGE-SECRET-KEY-(PQ-)?1[QPZRY9X8GF2TVDW0S3JN54KHCE6MUA7L]+$/;
const MAX_IDENTITIES = 256;
const DATA_KEY_BYTES = 32;

/** The identities of a decryption Secret, as age identity strings (never logged, never put in a message). */
export class AgeIdentities {
  readonly #identities: readonly string[];

  private constructor(identities: readonly string[]) {
    this.#identities = identities;
  }

  get size(): number {
    return this.#identities.length;
  }

  /** Reads the `.agekey` entries of `data`; `secret` names the Secret in errors. */
  static fromSecretData(data: Readonly<Record<string, Buffer>>, secret: string): AgeIdentities {
    const identities: string[] = [];
    for (const [name, value] of Object.entries(data)) {
      const backend = OTHER_BACKENDS.find(([matches]) => matches(name))?.[1];
      if (backend) {
        throw new UnsupportedDecryptionError(`decryption Secret '${secret}' has '${name}', a ${backend} key: Ferry decrypts SOPS with age keys only (entries named *${AGE_EXTENSION})`);
      }
      if (name.endsWith(AGE_EXTENSION)) identities.push(...parseIdentities(value.toString("utf8"), `'${name}' of decryption Secret '${secret}'`));
    }
    if (identities.length === 0) throw new DecryptionError(`decryption Secret '${secret}' has no age identities (entries named *${AGE_EXTENSION})`);
    if (identities.length > MAX_IDENTITIES) throw new DecryptionError(`decryption Secret '${secret}' has more than ${MAX_IDENTITIES} age identities`);
    return new AgeIdentities(identities);
  }

  /** The document's 32-byte data key, from the first age stanza one of the identities opens. */
  async dataKey(metadata: SopsMetadata, where: string): Promise<Buffer> {
    if (metadata.age.length === 0) {
      const others = metadata.otherKeyTypes.length > 0 ? ` (it is encrypted for ${metadata.otherKeyTypes.join(", ")} only)` : "";
      throw new UnsupportedDecryptionError(`${where} has no age recipients${others}: Ferry decrypts SOPS with age keys only`);
    }
    const decrypter = new Decrypter();
    for (const identity of this.#identities) decrypter.addIdentity(identity);
    for (const stanza of metadata.age) {
      const key = await openStanza(decrypter, stanza.enc);
      if (key) {
        if (key.length !== DATA_KEY_BYTES) throw new DecryptionError(`${where}: the age-wrapped data key is not ${DATA_KEY_BYTES} bytes`);
        return key;
      }
    }
    const recipients = metadata.age.map((stanza) => stanza.recipient).filter(Boolean).join(", ");
    throw new DecryptionKeyError(`${where}: no age identity in the decryption Secret matches the file's recipients (${recipients || "unnamed"})`);
  }
}

/** age's identity file format; anything else (SSH keys, plugin identities) is named, without quoting it. */
function parseIdentities(text: string, where: string): string[] {
  const identities: string[] = [];
  for (const [index, raw] of text.split("\n").entries()) {
    const line = raw.trim();
    if (line === "" || line.startsWith("#")) continue;
    if (!IDENTITY.test(line)) {
      const kind = line.startsWith("AGE-PLUGIN-") ? "an age plugin identity" : line.startsWith("-----BEGIN") ? "a PEM or SSH key" : "not an age identity";
      throw new DecryptionError(`line ${index + 1} of ${where} is ${kind}: expected AGE-SECRET-KEY-1… or AGE-SECRET-KEY-PQ-1…`);
    }
    try {
      // age decodes (and checksums) an identity when it is added; its errors could quote the key, so they are not kept.
      new Decrypter().addIdentity(line);
    } catch {
      throw new DecryptionError(`line ${index + 1} of ${where} is not a valid age identity (bad checksum or length)`);
    }
    identities.push(line);
  }
  return identities;
}

/** The data key in one armored age file, or undefined when none of the identities is among its recipients. */
async function openStanza(decrypter: Decrypter, enc: string): Promise<Buffer | undefined> {
  let file: Uint8Array;
  try {
    file = armor.decode(enc);
  } catch {
    throw new DecryptionError("an age stanza of the sops metadata is not a valid armored age file");
  }
  try {
    return Buffer.from(await decrypter.decrypt(file));
  } catch (error) {
    // age says "no identity matched any of the file's recipients" for a file meant for someone else.
    if (/no identity matched/i.test((error as Error).message)) return undefined;
    throw new DecryptionError(`an age stanza of the sops metadata cannot be opened: ${(error as Error).message}`);
  }
}
