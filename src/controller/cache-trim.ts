// What the informer cache keeps of an object: what reconcilers read. metadata.managedFields (often the largest part
// of a small object: one entry per manager, each with the whole field set it owns) and kubectl's
// last-applied-configuration annotation (a second copy of the object as applied) are read by no reconciler or
// queue decision, so they are dropped as objects enter the cache. Objects written back are patched field by field
// (status merge patches, finalizers guarded by resourceVersion), never replaced whole from the cache, so nothing
// dropped here is lost on the server.

export const LAST_APPLIED_ANNOTATION = "kubectl.kubernetes.io/last-applied-configuration";

interface Trimmable {
  metadata?: { managedFields?: unknown; annotations?: Record<string, string> };
}

/** Drops managedFields and the last-applied annotation from `object`, in place (it was just parsed); returns it. */
export function trimForCache<T>(object: T): T {
  const metadata = (object as Trimmable | undefined)?.metadata;
  if (!metadata || typeof metadata !== "object") return object;
  delete metadata.managedFields;
  const annotations = metadata.annotations;
  if (annotations && LAST_APPLIED_ANNOTATION in annotations) {
    const kept = Object.fromEntries(Object.entries(annotations).filter(([name]) => name !== LAST_APPLIED_ANNOTATION));
    if (Object.keys(kept).length === 0) delete metadata.annotations;
    else metadata.annotations = kept;
  }
  return object;
}
