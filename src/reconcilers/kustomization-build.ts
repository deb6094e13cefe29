// Turning a Kustomization's artifact directory into the objects to apply: the kustomize build with the spec's
// overlay and substitutions, namespaces resolved against the target cluster, and the owner labels and common
// metadata set. Shared by the reconciler and `ferry diff kustomization`, so both see the same objects.
import { KUSTOMIZE_GROUP, type KustomizationSpecType } from "../api/kustomize.ts";
import type { Applier } from "../apply/apply.ts";
import type { KubeClient } from "../kube/client.ts";
import { buildManifests, type ManifestObject } from "../kustomize/build.ts";
import type { Sandbox } from "../sandbox/sandbox.ts";
import type { SecretValues } from "./secret-values.ts";
import { decryptBuiltObjects } from "../decryption/built-objects.ts";
import { type DecryptionContext, decryptKustomizationFiles } from "../decryption/kustomization-files.ts";
import { decryptionFailure, decryptionIdentities, KustomizationFailure, substitutionVariables } from "./kustomization-inputs.ts";

export const NAME_LABEL = `${KUSTOMIZE_GROUP}/name`;
export const NAMESPACE_LABEL = `${KUSTOMIZE_GROUP}/namespace`;

interface KustomizationIdentity {
  readonly metadata: { readonly name: string; readonly namespace: string };
}

export function ownerLabels(object: KustomizationIdentity): Record<string, string> {
  return { [NAME_LABEL]: object.metadata.name, [NAMESPACE_LABEL]: object.metadata.namespace };
}

/**
 * Builds `spec.path` of the artifact extracted at `root`. Substitution variables are read with `kube` (the tenant's
 * ServiceAccount under --tenant-lockdown, else the controller's own client); namespaces are resolved with `applier`
 * (the target cluster, as the tenant). The controller passes a sandbox, since the artifact is a tenant's
 * (`ferry build` on the user's own files does not), and collects the values of Secrets read or built into `secrets`,
 * so that no message reports them.
 */
export async function buildKustomization(
  root: string,
  object: KustomizationIdentity,
  spec: KustomizationSpecType,
  clients: { readonly kube: KubeClient; readonly applier: Applier },
  options: { readonly sandbox?: Sandbox | undefined; readonly secrets?: SecretValues; readonly scratchDir?: string } = {},
): Promise<ManifestObject[]> {
  const { sandbox, secrets, scratchDir } = options;
  const variables = spec.postBuild ? await substitutionVariables(clients.kube, object.metadata.namespace, spec, secrets) : {};
  const identities = await decryptionIdentities(clients.kube, object.metadata.namespace, spec, secrets);
  const reveal = secrets ? { reveal: (value: string) => secrets.add(value) } : {};
  const decryption: DecryptionContext | undefined = identities && { identities, ...reveal };
  let objects: ManifestObject[];
  try {
    objects = await buildManifests(root, spec.path, {
      overlay: {
        ...(spec.targetNamespace ? { targetNamespace: spec.targetNamespace } : {}),
        ...(spec.namePrefix ? { namePrefix: spec.namePrefix } : {}),
        ...(spec.nameSuffix ? { nameSuffix: spec.nameSuffix } : {}),
        ...(spec.patches ? { patches: spec.patches } : {}),
        ...(spec.images ? { images: spec.images } : {}),
        ...(spec.components ? { components: spec.components } : {}),
        ...(spec.ignoreMissingComponents ? { ignoreMissingComponents: true } : {}),
        ...(spec.buildMetadata?.length ? { buildMetadata: spec.buildMetadata } : {}),
      },
      variables,
      ...(spec.postBuild?.substituteStrategy === "Always" ? { substituteAlways: true } : {}),
      ...(sandbox ? { sandbox } : {}),
      ...(scratchDir ? { scratchDir } : {}),
      ...(decryption ? { prepare: (copy: string, directory: string) => decryptKustomizationFiles(copy, directory, decryption) } : {}),
    });
    if (decryption) objects = await decryptBuiltObjects(objects, decryption);
  } catch (error) {
    throw decryptionFailure(error) ?? new KustomizationFailure("BuildFailed", (error as Error).message);
  }
  // Before anything is sent to a server whose errors quote what it refused.
  for (const manifest of objects) secrets?.addSecretObject(manifest);
  const namespace = spec.targetNamespace ?? object.metadata.namespace;
  try {
    objects = await clients.applier.resolveNamespaces(objects, namespace, spec.targetNamespace !== undefined);
  } catch (error) {
    throw new KustomizationFailure("ReconciliationFailed", (error as Error).message);
  }
  const common = spec.commonMetadata;
  // Owner labels mark what this Kustomization manages, so pruning never deletes what it did not create.
  return objects.map((manifest) => ({
    ...manifest,
    metadata: {
      ...manifest.metadata,
      labels: { ...manifest.metadata.labels, ...common?.labels, ...ownerLabels(object) },
      ...(common?.annotations || manifest.metadata.annotations
        ? { annotations: { ...manifest.metadata.annotations, ...common?.annotations } }
        : {}),
    },
  }));
}
