// Which objects a Kustomization's health check reads. As in Flux (inventory.ReferenceToObjMetadataSet and the status
// poller's RESTMapper), a healthChecks entry names a group and kind, not a version: an entry without apiVersion is in
// the apps group (Kustomization v1beta1's default), and the object is read at the version the cluster prefers for
// that kind, found by discovery, so an entry written for a version no longer served keeps working.
import { ApisApi, KubernetesObjectApi } from "@kubernetes/client-node";
import type { KustomizationSpecType } from "../api/kustomize.ts";
import { groupOf, type ObjectRef } from "../inventory/inventory.ts";
import type { KubeClient } from "../kube/client.ts";

/** Flux's default for an entry without apiVersion (for backwards compatibility with Kustomization v1beta1). */
export const DEFAULT_HEALTH_CHECK_API_VERSION = "apps/v1";

/** Discovery is read again after this long, so a CRD's new preferred version is picked up. */
const DISCOVERY_TTL_MS = 60_000;

/** Exposes client-node's discovery lookup (cached per API version for the life of this object). */
class KindDiscovery extends KubernetesObjectApi {
  async serves(apiVersion: string, kind: string): Promise<boolean> {
    return (await this.resource(apiVersion, kind).catch(() => undefined)) !== undefined;
  }
}

interface ClusterDiscovery {
  readonly at: number;
  readonly kinds: KindDiscovery;
  /** Each group's versions, the preferred one first, as a RESTMapper orders them. */
  readonly groups: Promise<ReadonlyMap<string, readonly string[]>>;
}

const discoveries = new WeakMap<KubeClient, ClusterDiscovery>();

function discoveryOf(kube: KubeClient): ClusterDiscovery {
  const cached = discoveries.get(kube);
  if (cached && Date.now() - cached.at < DISCOVERY_TTL_MS) return cached;
  const groups = kube.api(ApisApi).getAPIVersions().then((list) => new Map(list.groups.map((group) => {
    const preferred = group.preferredVersion?.groupVersion;
    const versions = group.versions.map((version) => version.groupVersion);
    return [group.name, preferred ? [preferred, ...versions.filter((version) => version !== preferred)] : versions] as const;
  })));
  const fresh = { at: Date.now(), kinds: kube.api(KindDiscovery), groups };
  // A failed discovery is not cached: the next poll asks again.
  groups.catch(() => discoveries.delete(kube));
  discoveries.set(kube, fresh);
  return fresh;
}

/**
 * The apiVersion to read `kind` of `apiVersion`'s group at: the first version the cluster serves it in, preferred
 * first. The given apiVersion when discovery cannot tell (the kind is not served, or discovery failed): reading it
 * then reports the object as not found, and the check waits, naming it, as Flux's does.
 */
export async function preferredApiVersion(kube: KubeClient, apiVersion: string, kind: string): Promise<string> {
  const group = groupOf(apiVersion);
  if (group === "") return apiVersion;
  const discovery = discoveryOf(kube);
  const versions = await discovery.groups.catch(() => new Map<string, readonly string[]>());
  for (const candidate of versions.get(group) ?? []) {
    if (await discovery.kinds.serves(candidate, kind)) return candidate;
  }
  return apiVersion;
}

/**
 * spec.healthChecks as the objects to read, at the versions the cluster prefers. The Kustomization itself is left
 * out, as Flux does, since waiting on itself would never end.
 */
export async function healthCheckRefs(
  kube: KubeClient,
  self: { readonly name: string; readonly namespace: string },
  checks: NonNullable<KustomizationSpecType["healthChecks"]>,
): Promise<ObjectRef[]> {
  const refs = await Promise.all(checks.map(async (check): Promise<ObjectRef> => {
    const apiVersion = check.apiVersion || DEFAULT_HEALTH_CHECK_API_VERSION;
    return {
      apiVersion: await preferredApiVersion(kube, apiVersion, check.kind),
      kind: check.kind,
      name: check.name,
      namespace: check.namespace ?? self.namespace,
    };
  }));
  return refs.filter((ref) => !(ref.kind === "Kustomization" && ref.name === self.name && ref.namespace === self.namespace));
}
