// The `sops` metadata of an encrypted document, read defensively: which values are encrypted (the suffix and regex
// rules), the encrypted MAC and the time it is bound to, and the age stanzas that wrap the data key. Whatever Ferry
// cannot honour exactly (PGP/KMS/Vault-only files, Shamir key groups, comment-based rules) is refused by name, never
// skipped, since skipping a rule would change which values are decrypted and what the MAC covers.
import { GoRegexp, GoRegexpError } from "../go-regexp.ts";
import { DecryptionError, UnsupportedDecryptionError } from "./errors.ts";

export interface AgeStanza {
  readonly recipient: string;
  /** An armored age file holding the 32-byte data key. */
  readonly enc: string;
}

export interface SopsMetadata {
  readonly age: readonly AgeStanza[];
  /** Key types besides age the file was also encrypted for, named in errors when no age key opens it. */
  readonly otherKeyTypes: readonly string[];
  readonly lastModified: string;
  readonly mac: string;
  readonly macOnlyEncrypted: boolean;
  readonly shouldBeEncrypted: (path: readonly string[]) => boolean;
}

const OTHER_KEY_TYPES = ["pgp", "kms", "gcp_kms", "azure_kv", "hc_vault", "hckms"] as const;
/** The most age recipients a file may name; each costs an X25519 (or ML-KEM) operation per key tried. */
const MAX_AGE_STANZAS = 64;
const MAX_ENC_LENGTH = 16_384;

type Mapping = Record<string, unknown>;

function isMapping(value: unknown): value is Mapping {
  // Plain objects only: a number read from YAML is a SopsNumber object.
  if (typeof value !== "object" || value === null || Array.isArray(value)) return false;
  const prototype = Object.getPrototypeOf(value) as unknown;
  return prototype === Object.prototype || prototype === null;
}

function optionalString(metadata: Mapping, field: string, where: string): string {
  const value = metadata[field];
  if (value === undefined || value === null || value === "") return "";
  if (typeof value !== "string") throw new DecryptionError(`${where}: sops.${field} is not a string`);
  return value;
}

function ageStanzas(value: unknown, where: string): AgeStanza[] {
  if (value === undefined || value === null) return [];
  if (!Array.isArray(value)) throw new DecryptionError(`${where}: sops.age is not a list`);
  if (value.length > MAX_AGE_STANZAS) throw new DecryptionError(`${where}: sops.age names more than ${MAX_AGE_STANZAS} recipients`);
  return value.map((entry: unknown, index) => {
    const { recipient, enc } = isMapping(entry) ? entry : {};
    if (typeof enc !== "string" || enc.length > MAX_ENC_LENGTH) {
      throw new DecryptionError(`${where}: sops.age[${index}].enc is missing or not an armored age file`);
    }
    return { recipient: typeof recipient === "string" ? recipient : "", enc };
  });
}

function compileRule(pattern: string, field: string, where: string): GoRegexp {
  try {
    return GoRegexp.compile(pattern);
  } catch (error) {
    if (error instanceof GoRegexpError) throw new DecryptionError(`${where}: sops.${field} ${error.message}`);
    throw error;
  }
}

/** sops' shouldBeEncrypted, rule by rule in its order: a later rule overrides an earlier one. */
function encryptionRule(metadata: Mapping, where: string): (path: readonly string[]) => boolean {
  const unencryptedSuffix = optionalString(metadata, "unencrypted_suffix", where);
  const encryptedSuffix = optionalString(metadata, "encrypted_suffix", where);
  const unencryptedRegex = optionalString(metadata, "unencrypted_regex", where);
  const encryptedRegex = optionalString(metadata, "encrypted_regex", where);
  const unencrypted = unencryptedRegex ? compileRule(unencryptedRegex, "unencrypted_regex", where) : undefined;
  const encrypted = encryptedRegex ? compileRule(encryptedRegex, "encrypted_regex", where) : undefined;
  return (path) => {
    let result = true;
    if (unencryptedSuffix && path.some((key) => key.endsWith(unencryptedSuffix))) result = false;
    if (encryptedSuffix) result = path.some((key) => key.endsWith(encryptedSuffix));
    if (unencrypted && path.some((key) => unencrypted.test(key))) result = false;
    if (encrypted) result = path.some((key) => encrypted.test(key));
    return result;
  };
}

function refuseUnsupported(metadata: Mapping, where: string): void {
  // Comments are not kept by Ferry's YAML reader, so rules that depend on them cannot be evaluated faithfully.
  for (const field of ["encrypted_comment_regex", "unencrypted_comment_regex"]) {
    if (optionalString(metadata, field, where)) throw new UnsupportedDecryptionError(`${where}: sops.${field} is not supported by Ferry`);
  }
  const groups = metadata.key_groups;
  if (Array.isArray(groups) && groups.length > 0) {
    throw new UnsupportedDecryptionError(`${where}: SOPS key groups (Shamir secret sharing) are not supported; encrypt for age recipients without --shamir-secret-sharing-threshold`);
  }
}

/** The metadata of a document; `metadata` is the `sops` mapping (or the unflattened sops_ entries of dotenv). */
export function readMetadata(metadata: unknown, where: string): SopsMetadata {
  if (!isMapping(metadata)) throw new DecryptionError(`${where}: the sops metadata is not a mapping`);
  refuseUnsupported(metadata, where);
  const mac = optionalString(metadata, "mac", where);
  if (!mac) throw new DecryptionError(`${where}: the sops metadata has no mac, so its integrity cannot be verified`);
  const lastModified = optionalString(metadata, "lastmodified", where);
  if (!lastModified) throw new DecryptionError(`${where}: the sops metadata has no lastmodified`);
  const macOnlyEncrypted = metadata.mac_only_encrypted === true || metadata.mac_only_encrypted === "true";
  const otherKeyTypes = OTHER_KEY_TYPES.filter((type) => Array.isArray(metadata[type]) && (metadata[type] as unknown[]).length > 0);
  return {
    age: ageStanzas(metadata.age, where),
    otherKeyTypes,
    lastModified,
    mac,
    macOnlyEncrypted,
    shouldBeEncrypted: encryptionRule(metadata, where),
  };
}
