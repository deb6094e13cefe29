// Signing an artifact's manifest digest in the formats cosign and Flux verify.
import type { KeyObject } from "node:crypto";
import type { RegistryClient } from "../registry/client.ts";
import type { Descriptor } from "../registry/oci.ts";
import type { Reference } from "../registry/reference.ts";
import { signDigestWithKey } from "./bundle.ts";
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
  options: { privateKey: KeyObject; format?: SignatureFormatOption; subject?: Descriptor },
): Promise<SignResult> {
  const subject = options.subject ?? (await client.resolve(reference));
  const repo = { registry: reference.registry, repository: reference.repository };
  const format = options.format ?? "bundle";
  let bundleReferrer: string | undefined;
  if (format !== "legacy") {
    const bundle = await signDigestWithKey(subject.digest, options.privateKey);
    bundleReferrer = await attachBundle(client, repo, subject, bundle);
  }
  if (format !== "bundle") await attachLegacySignature(client, repo, subject.digest, options.privateKey);
  return {
    digest: subject.digest,
    ...(bundleReferrer ? { bundleReferrer } : {}),
    ...(format !== "bundle" ? { legacyTag: `${subject.digest.replace(":", "-")}.sig` } : {}),
  };
}
