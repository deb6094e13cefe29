// Signing an artifact's manifest digest in the formats cosign and Flux verify.
import type { KeyObject } from "node:crypto";
import type { RegistryClient } from "../registry/client.ts";
import type { Descriptor } from "../registry/oci.ts";
import type { Reference } from "../registry/reference.ts";
import { signDigestWithKey } from "./bundle.ts";
import { type KeylessSignOptions, signDigestKeyless } from "./keyless.ts";
import { attachBundle, attachLegacySignature } from "./store.ts";

/** bundle: Sigstore bundle referrer (cosign v3's default); legacy: the `.sig` tag older verifiers read; both. */
export type SignatureFormatOption = "bundle" | "legacy" | "both";

export interface SignResult {
  readonly digest: string;
  readonly bundleReferrer?: string;
  readonly legacyTag?: string;
}

export async function signArtifact(
  client: RegistryClient,
  reference: Reference,
  options: { privateKey?: KeyObject; keyless?: KeylessSignOptions; format?: SignatureFormatOption; subject?: Descriptor },
): Promise<SignResult> {
  const { privateKey } = options;
  if (!privateKey && !options.keyless) throw new Error("signing needs a private key or keyless options");
  if (!privateKey && options.format && options.format !== "bundle") {
    throw new Error("keyless signing writes Sigstore bundles only (--signature-format bundle)");
  }
  const subject = options.subject ?? (await client.resolve(reference));
  const repo = { registry: reference.registry, repository: reference.repository };
  const format = options.format ?? "bundle";
  let bundleReferrer: string | undefined;
  if (format !== "legacy") {
    const bundle = privateKey
      ? await signDigestWithKey(subject.digest, privateKey)
      : await signDigestKeyless(subject.digest, options.keyless);
    bundleReferrer = await attachBundle(client, repo, subject, bundle);
  }
  if (format !== "bundle" && privateKey) await attachLegacySignature(client, repo, subject.digest, privateKey);
  return {
    digest: subject.digest,
    ...(bundleReferrer ? { bundleReferrer } : {}),
    ...(format !== "bundle" ? { legacyTag: `${subject.digest.replace(":", "-")}.sig` } : {}),
  };
}
