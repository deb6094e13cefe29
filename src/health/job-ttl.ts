// Jobs with spec.ttlSecondsAfterFinished are deleted by the cluster's TTL controller once they finish, so a health
// check that reads one after its deletion must count it as done rather than missing: Flux's kustomize-controller
// collects them (fluxcd/pkg/ssa utils.ExtractJobsWithTTL) and its wait counts a NotFound one as Current.
import { inventoryId } from "../inventory/inventory.ts";
import type { ManifestObject } from "../kustomize/build.ts";

/** Inventory ids (group, kind, namespace, name) of the Jobs in `objects` that set ttlSecondsAfterFinished (0 included). */
export function jobsDeletedWhenFinished(objects: readonly ManifestObject[]): ReadonlySet<string> {
  const ids = new Set<string>();
  for (const object of objects) {
    if (object.kind !== "Job" || !object.apiVersion.startsWith("batch/")) continue;
    const ttl = (object as { spec?: { ttlSecondsAfterFinished?: unknown } }).spec?.ttlSecondsAfterFinished;
    if (typeof ttl === "number" && Number.isInteger(ttl)) {
      const { name, namespace } = object.metadata;
      ids.add(inventoryId({ apiVersion: object.apiVersion, kind: object.kind, name, ...(namespace ? { namespace } : {}) }));
    }
  }
  return ids;
}
