// Decryption after the build, on the objects kustomize produced, as Flux's DecryptResource does for Secrets: a data
// value that is itself a SOPS file (a secretGenerator entry from a file Flux users encrypt whole, or a value pasted
// in) is decrypted and written in the format its key's extension names. An object that still carries `sops`
// metadata was not decrypted from its file and is refused rather than applied as ciphertext.
import { policyEntry } from "../api/flux-annotations.ts";
import type { ManifestObject } from "../kustomize/build.ts";
import { DecryptionError } from "./errors.ts";
import { DECRYPT_ANNOTATION, type DecryptionContext } from "./kustomization-files.ts";
import { detectFormat, formatForPath } from "./sops-formats.ts";
import { decryptSops } from "./sops.ts";

function nameOf(object: ManifestObject): string {
  return `${object.kind}/${object.metadata.namespace ? `${object.metadata.namespace}/` : ""}${object.metadata.name}`;
}

async function decryptSecretData(object: ManifestObject, context: DecryptionContext): Promise<ManifestObject> {
  const data = object.data;
  if (typeof data !== "object" || data === null || Array.isArray(data)) return object;
  const decrypted: Record<string, unknown> = { ...(data as Record<string, unknown>) };
  for (const [key, value] of Object.entries(decrypted)) {
    if (typeof value !== "string") continue;
    const bytes = Buffer.from(value, "base64");
    const input = detectFormat(bytes.toString("utf8"));
    if (!input) continue;
    const where = `${nameOf(object)} data '${key}'`;
    const options = { input, output: formatForPath(key), where, ...(context.reveal ? { reveal: context.reveal } : {}) };
    const plain = await decryptSops(bytes, context.identities, options);
    decrypted[key] = plain.toString("base64");
  }
  return { ...object, data: decrypted };
}

/** The objects with encrypted Secret data values decrypted; throws for an object still encrypted as a whole. */
export async function decryptBuiltObjects(objects: readonly ManifestObject[], context: DecryptionContext): Promise<ManifestObject[]> {
  const result: ManifestObject[] = [];
  for (const object of objects) {
    if (policyEntry(object.metadata, DECRYPT_ANNOTATION)?.toLowerCase() === "disabled") {
      result.push(object);
      continue;
    }
    const sops = (object as { sops?: unknown }).sops;
    if (typeof sops === "object" && sops !== null && "mac" in sops) {
      throw new DecryptionError(`${nameOf(object)} is still SOPS-encrypted after the build: Ferry decrypts encrypted resources in the files a kustomization's resources list names (a .yaml, .yml or .json file)`);
    }
    result.push(object.kind === "Secret" && object.apiVersion === "v1" ? await decryptSecretData(object, context) : object);
  }
  return result;
}

/**
 * A Secret that reaches the apply with SOPS metadata still on it: applied, it would put ciphertext in the cluster.
 * Flux refuses it (decryptor.IsEncryptedSecret) unless the object opts out of decryption; so does Ferry.
 */
export function isSopsEncryptedSecret(object: ManifestObject): boolean {
  if (object.kind !== "Secret" || object.apiVersion !== "v1" || !("sops" in object)) return false;
  return policyEntry({ annotations: object.metadata.annotations ?? {} }, DECRYPT_ANNOTATION)?.toLowerCase() !== "disabled";
}
