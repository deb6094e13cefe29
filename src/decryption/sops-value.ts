// One SOPS value: `ENC[AES256_GCM,data:…,iv:…,tag:…,type:…]`, AES-256-GCM under the document's data key with the
// value's path (`key:key:`) as additional data, so a value moved to another key does not decrypt. Also the bytes each
// plaintext contributes to the document's MAC, which must be exactly the bytes Go's sops.ToBytes produces.
import { isUtf8 } from "node:buffer";
import { createDecipheriv } from "node:crypto";
import { DecryptionError } from "./errors.ts";

/** A YAML/JSON number kept as text, so that neither precision nor the MAC bytes depend on JavaScript's doubles. */
export class SopsNumber {
  readonly kind: "int" | "float";
  /** The canonical form: Go's strconv.Itoa or strconv.FormatFloat(v, 'f', -1, 64), which the MAC hashes. */
  readonly canonical: string;

  constructor(kind: "int" | "float", canonical: string) {
    this.kind = kind;
    this.canonical = canonical;
  }
}

/** A leaf of a SOPS tree. `Uint8Array` is SOPS' `bytes` type. */
export type SopsScalar = string | boolean | null | SopsNumber | Uint8Array;

const ENVELOPE = /^ENC\[AES256_GCM,data:([^,\]]*),iv:([^,\]]+),tag:([^,\]]+),type:([a-z]+)\]$/;
const BASE64 = /^[A-Za-z0-9+/]*={0,2}$/;
const GCM_TAG_BYTES = 16;

export function isEnvelope(value: unknown): value is string {
  return typeof value === "string" && value.startsWith("ENC[");
}

function base64(field: string, text: string, where: string): Buffer {
  if (!BASE64.test(text) || text.length % 4 !== 0) throw new DecryptionError(`${where}: the ${field} of the encrypted value is not base64`);
  return Buffer.from(text, "base64");
}

/** The plaintext bytes of an envelope and its declared type; a wrong key or a changed value fails GCM's tag check. */
export function openEnvelope(envelope: string, key: Buffer, aad: string, where: string): { bytes: Buffer; type: string } {
  const path = aad.replace(/:$/, "");
  const match = ENVELOPE.exec(envelope);
  if (!match) throw new DecryptionError(`${where}: value at '${path}' is not in SOPS' ENC[AES256_GCM,…] format`);
  const [, data = "", ivText = "", tagText = "", type = ""] = match;
  const iv = base64("iv", ivText, where);
  const tag = base64("tag", tagText, where);
  const ciphertext = base64("data", data, where);
  if (iv.length === 0 || tag.length !== GCM_TAG_BYTES) throw new DecryptionError(`${where}: value at '${path}' has a malformed iv or tag`);
  try {
    const decipher = createDecipheriv("aes-256-gcm", key, iv, { authTagLength: GCM_TAG_BYTES });
    decipher.setAAD(Buffer.from(aad, "utf8"));
    decipher.setAuthTag(tag);
    return { bytes: Buffer.concat([decipher.update(ciphertext), decipher.final()]), type };
  } catch {
    throw new DecryptionError(`${where}: value at '${path}' failed authentication (AES-GCM): it was changed, moved, or encrypted with another data key`);
  }
}

/** The typed plaintext, as sops' aes.Cipher.Decrypt converts it ("comment" values are dropped by the caller). */
export function typedPlaintext(bytes: Buffer, type: string, path: string, where: string): SopsScalar {
  const text = bytes.toString("utf8");
  const bad = () => new DecryptionError(`${where}: value at '${path}' does not decrypt to a valid ${type}`);
  switch (type) {
    case "str":
    case "time":
    case "comment":
      // Go strings hold any bytes (a binary file is one string): keep them raw when they are not UTF-8, so the MAC
      // hashes what sops hashed and a binary file is written back unchanged.
      return isUtf8(bytes) ? text : new Uint8Array(bytes);
    case "bytes":
      return new Uint8Array(bytes);
    case "int": {
      // Go's strconv.Atoi: optional sign, decimal digits, within int64.
      if (!/^[+-]?\d{1,19}$/.test(text)) throw bad();
      const value = BigInt(text);
      if (value > 9223372036854775807n || value < -9223372036854775808n) throw bad();
      return new SopsNumber("int", value.toString());
    }
    case "float":
    {
      const number = floatNumber(text);
      if (!number) throw bad();
      return number;
    }
    case "bool": {
      // Go's strconv.ParseBool.
      if (["1", "t", "T", "TRUE", "true", "True"].includes(text)) return true;
      if (["0", "f", "F", "FALSE", "false", "False"].includes(text)) return false;
      throw bad();
    }
    default:
      throw new DecryptionError(`${where}: value at '${path}' has the unknown type '${type}'`);
  }
}

/** A float's text as Go's strconv.FormatFloat(v, 'f', -1, 64) writes it, or undefined when it is no float. */
export function floatNumber(text: string): SopsNumber | undefined {
  const cleaned = text.replace(/^\+/, "");
  const special: Record<string, string> = { ".inf": "+Inf", "+.inf": "+Inf", "-.inf": "-Inf", ".nan": "NaN", inf: "+Inf", "+inf": "+Inf", "-inf": "-Inf", nan: "NaN" };
  const lowered = text.toLowerCase();
  const named = special[text] ?? special[lowered];
  if (named) return new SopsNumber("float", named);
  if (!/^-?(\d+\.?\d*|\.\d+)([eE][+-]?\d+)?$/.test(cleaned)) return undefined;
  return new SopsNumber("float", fixedNotation(Number(cleaned)));
}

/** JavaScript's shortest round-trip digits (as Go's -1 precision) without exponent notation. */
function fixedNotation(value: number): string {
  if (!Number.isFinite(value)) return value > 0 ? "+Inf" : value < 0 ? "-Inf" : "NaN";
  const shortest = String(value);
  const match = /^(-?)(\d)(?:\.(\d+))?e([+-]\d+)$/.exec(shortest);
  if (!match) return Object.is(value, -0) ? "-0" : shortest;
  const [, sign = "", head = "", tail = "", exponentText = "0"] = match;
  const digits = head + tail;
  const exponent = Number(exponentText);
  if (exponent >= 0) return sign + digits.padEnd(exponent + 1, "0");
  return `${sign}0.${"0".repeat(-exponent - 1)}${digits}`;
}

/** What sops.ToBytes writes into the MAC for a plaintext leaf. */
export function macBytes(value: SopsScalar): Buffer {
  if (typeof value === "string") return Buffer.from(value, "utf8");
  if (typeof value === "boolean") return Buffer.from(value ? "True" : "False");
  if (value instanceof SopsNumber) return Buffer.from(value.canonical);
  if (value instanceof Uint8Array) return Buffer.from(value);
  return Buffer.alloc(0);
}
