// What `ferry uninstall` removes and in which order, so that nothing Ferry applied is deleted with it. Pure:
// cli/commands/uninstall.ts does the requests.
//   1. The controller Deployment, and its pods are waited for: no controller of this install acts during the rest.
//   2. Every Kustomization and OCIRepository, in all namespaces: suspended and stripped of Ferry's finalizer in one
//      patch, then deleted only at that resourceVersion. Without the finalizer the apiserver removes the object at
//      once and no controller (not this install's, nor any other still running) gets to finalize it, which for a
//      Kustomization with prune: true would delete its inventory; suspend covers a controller that re-adds the
//      finalizer in between (the delete's precondition then fails and the step is repeated), as a suspended
//      Kustomization is finalized without pruning.
//   3. The rest of the install, namespaced objects first, then cluster RBAC, the CRDs, and the namespace last.
// When Ferry is installed in another namespace too (install --force), that install still serves the shared CRDs:
// they stay, and step 2 releases only the objects in this install's namespace, which is deleted, so that the other
// controller does not finalize (prune) them as the namespace goes. Cluster RBAC is named after the namespace
// (src/api/rbac.ts), so only this install's is deleted.
import { KUSTOMIZE_GROUP, KUSTOMIZE_VERSION } from "../api/kustomize.ts";
import { SOURCE_GROUP, SOURCE_VERSION } from "../api/source.ts";
import type { ObjectRef } from "../inventory/inventory.ts";
import { inventoryId } from "../inventory/inventory.ts";
import type { ResourceType } from "../kube/client.ts";
import { FINALIZER } from "../reconcilers/ocirepository.ts";
import { BOOTSTRAP_NAME, CLUSTER_CONFIG_NAME, REGISTRY_SECRET, REGISTRY_TLS_SECRET, VERIFY_KEY_SECRET } from "./bootstrap.ts";
import { CONTROLLER_NAME, controllerName, installManifests, PART_OF_LABEL, SHARD_LABEL } from "./manifests.ts";

export { FINALIZER };

/** Ferry's custom resources, Kustomizations first: they are the ones whose finalizer would prune. */
export const CUSTOM_RESOURCES: readonly (ResourceType & { readonly kind: string })[] = [
  { group: KUSTOMIZE_GROUP, version: KUSTOMIZE_VERSION, plural: "kustomizations", kind: "Kustomization" },
  { group: SOURCE_GROUP, version: SOURCE_VERSION, plural: "ocirepositories", kind: "OCIRepository" },
];

/** Only objects carrying the install's part-of label are deleted: a same-named object someone else made stays. */
export function ownedByFerry(object: unknown): boolean {
  return (object as { metadata?: { labels?: Record<string, string> } } | undefined)?.metadata?.labels?.[PART_OF_LABEL] === "ferry";
}

export function controllerRef(namespace: string, shard?: string): ObjectRef {
  return { apiVersion: "apps/v1", kind: "Deployment", namespace, name: shard ? controllerName(shard) : CONTROLLER_NAME };
}

/** The controller's pods, as the install's Deployment selects them: every shard's too (install --shards). */
export const CONTROLLER_POD_SELECTOR = "app.kubernetes.io/name=ferry,app.kubernetes.io/component=controller";

/** The shard controller Deployments of an install (install --shards), found by their label, named as install names them. */
export const SHARD_DEPLOYMENT_SELECTOR = `${PART_OF_LABEL}=ferry,${SHARD_LABEL}`;

/** The shards whose Deployments these are: each labelled ferry.dev/shard and named after it (someone else's are not). */
export function shardsOf(deployments: readonly unknown[]): string[] {
  type Meta = { metadata?: { name?: string; labels?: Record<string, string> } };
  return (deployments as readonly Meta[])
    .map((deployment) => ({ name: deployment.metadata?.name, shard: deployment.metadata?.labels?.[SHARD_LABEL] ?? "" }))
    .filter(({ name, shard }) => shard !== "" && name === controllerName(shard))
    .map(({ shard }) => shard)
    .sort((a, b) => a.localeCompare(b, "en", { numeric: true }));
}

const KIND_ORDER = ["Secret", "NetworkPolicy", "Service", "RoleBinding", "Role", "ServiceAccount", "ClusterRoleBinding", "ClusterRole", "CustomResourceDefinition", "Namespace"];

function refOf(object: object): ObjectRef {
  const { apiVersion, kind, metadata } = object as { apiVersion: string; kind: string; metadata: { name: string; namespace?: string } };
  return { apiVersion, kind, name: metadata.name, ...(metadata.namespace ? { namespace: metadata.namespace } : {}) };
}

/** The Secrets bootstrap stores for the controller (registry credentials, TLS files, verification key). */
function bootstrapSecrets(namespace: string): ObjectRef[] {
  return [REGISTRY_SECRET, REGISTRY_TLS_SECRET, VERIFY_KEY_SECRET].map((name) => ({ apiVersion: "v1", kind: "Secret", namespace, name }));
}

/**
 * Every object but the Deployment that any install into `namespace` has (bootstrap's Secrets included: with
 * --keep-namespace they would otherwise outlive it), in deletion order. The install's options
 * change which RBAC objects exist (--multi-tenant binds impersonation, --watch-all-namespaces=false a RoleBinding),
 * so each variant is rendered: what was not installed is simply not found.
 */
export function installObjects(namespace: string, options: { keepNamespace?: boolean; keepCrds?: boolean } = {}): ObjectRef[] {
  const variants = [{}, { multiTenant: true }, { watchAllNamespaces: false }].map((variant) => installManifests({ namespace, ...variant }));
  const refs = new Map([...variants.flat().map(refOf), ...bootstrapSecrets(namespace)].map((ref) => [inventoryId(ref), ref]));
  const kept = (ref: ObjectRef) => ref.kind === "Deployment"
    || (options.keepNamespace === true && ref.kind === "Namespace")
    || (options.keepCrds === true && ref.kind === "CustomResourceDefinition");
  return [...refs.values()]
    .filter((ref) => !kept(ref))
    .sort((a, b) => KIND_ORDER.indexOf(a.kind) - KIND_ORDER.indexOf(b.kind));
}

interface CustomObjectMeta {
  readonly name: string;
  readonly namespace: string;
  readonly resourceVersion?: string;
  readonly finalizers?: readonly string[];
}

/**
 * The merge patch that suspends an object and drops Ferry's finalizer (others stay), guarded by its resourceVersion
 * so that a finalizer a controller added meanwhile is not overwritten unseen: the patch then fails with 409.
 */
export function releasePatch(metadata: CustomObjectMeta): Record<string, unknown> {
  const finalizers = (metadata.finalizers ?? []).filter((finalizer) => finalizer !== FINALIZER);
  return { metadata: { resourceVersion: metadata.resourceVersion, finalizers }, spec: { suspend: true } };
}

/** Whether an object may be deleted now without Ferry finalizing it. */
export function released(object: { metadata: CustomObjectMeta; spec?: { suspend?: boolean } }): boolean {
  return object.spec?.suspend === true && !(object.metadata.finalizers ?? []).includes(FINALIZER);
}

/**
 * The OCIRepository and Kustomizations bootstrap made in the install's namespace, that deliver Ferry itself (and
 * the cluster config from the same artifact). When another install keeps the CRDs and the namespace is kept, these
 * are still released and deleted: left behind, the other controller (watching all namespaces) would go on applying
 * the artifact and so re-create the Deployment and RBAC just uninstalled.
 */
export function deliversThisInstall(object: { metadata: { name: string } }): boolean {
  return ownedByFerry(object) && [BOOTSTRAP_NAME, CLUSTER_CONFIG_NAME].includes(object.metadata.name);
}

export interface UninstallInventory {
  readonly controller: boolean;
  /** Shard controllers (install --shards), deleted with the main one. */
  readonly shards?: readonly string[];
  /** Namespaces of other installs: the CRDs and their namespaces' custom objects stay. */
  readonly otherInstalls: readonly string[];
  readonly customObjects: number;
  readonly installObjects: readonly ObjectRef[];
}

export function nothingToUninstall(inventory: UninstallInventory): boolean {
  return !inventory.controller && !inventory.shards?.length && inventory.customObjects === 0 && inventory.installObjects.length === 0;
}

/** One line per thing found, for the confirmation prompt and --dry-run. */
export function describeInventory(inventory: UninstallInventory, namespace: string): string[] {
  return [
    ...(inventory.controller ? [`Deployment ${namespace}/${CONTROLLER_NAME} (the controller, deleted first)`] : []),
    ...(inventory.shards ?? []).map((shard) => `Deployment ${namespace}/${controllerName(shard)} (the controller of ${shard}, deleted first)`),
    ...(inventory.customObjects > 0 ? [`${inventory.customObjects} Kustomizations and OCIRepositories (suspended and released: what they applied stays)`] : []),
    ...inventory.installObjects.map((ref) => `${ref.kind} ${ref.namespace ? `${ref.namespace}/` : ""}${ref.name}`),
    ...(inventory.otherInstalls.length > 0
      ? [`(kept: the CRDs and the Kustomizations and OCIRepositories outside ${namespace}, which Ferry in ${inventory.otherInstalls.join(", ")} uses)`]
      : []),
  ];
}
