// The pure rules of applying: stage and order of kinds (as Flux orders them), per-object policies read from
// annotations or labels, and when a dry-run result means "nothing would change".
import { createHash, type Hash } from "node:crypto";
import { policyMatches } from "../api/flux-annotations.ts";
import type { ManifestObject } from "../kustomize/build.ts";

export const SSA_POLICY_KEY = "kustomize.ferry.dev/ssa";
export const FORCE_KEY = "kustomize.ferry.dev/force";
export const PRUNE_KEY = "kustomize.ferry.dev/prune";
/** `disabled` pauses Ferry (and Flux) on one object: it is neither applied nor pruned, judged on the manifest and live. */
export const RECONCILE_KEY = "kustomize.ferry.dev/reconcile";

export type SsaPolicy = "Override" | "Merge" | "IfNotPresent" | "Ignore";

interface Metadata {
  readonly labels?: Readonly<Record<string, string>>;
  readonly annotations?: Readonly<Record<string, string>>;
}

/** When a label and an annotation disagree, Flux's selectors make the more protective policy win, in this order. */
export function ssaPolicy(metadata: Metadata | undefined): SsaPolicy {
  if (policyMatches(metadata, SSA_POLICY_KEY, "Ignore")) return "Ignore";
  if (policyMatches(metadata, SSA_POLICY_KEY, "IfNotPresent")) return "IfNotPresent";
  if (policyMatches(metadata, SSA_POLICY_KEY, "Merge")) return "Merge";
  return "Override";
}

export function forceEnabled(metadata: Metadata | undefined): boolean {
  return policyMatches(metadata, FORCE_KEY, "enabled");
}

/**
 * Objects never applied (Flux's apply ExclusionSelector: reconcile: disabled, ssa: Ignore). Asked of the manifest and
 * of the live object: a user pauses one object by annotating it in the cluster.
 */
export function applyExcluded(metadata: Metadata | undefined): boolean {
  return policyMatches(metadata, RECONCILE_KEY, "disabled") || ssaPolicy(metadata) === "Ignore";
}

/** Objects a prune or a deletion must leave alone, judged on the live object (Flux's DeleteOptions.Exclusions). */
export function pruneDisabled(metadata: Metadata | undefined): boolean {
  return policyMatches(metadata, PRUNE_KEY, "disabled") || applyExcluded(metadata);
}

/** Stage 0 must exist before anything can use it; stage 1 are the *Class objects; stage 2 everything else. */
export function stageOf(object: ManifestObject): 0 | 1 | 2 {
  if (object.kind === "CustomResourceDefinition" || object.kind === "Namespace" || object.kind === "ClusterRole") return 0;
  if (object.kind.endsWith("Class")) return 1;
  return 2;
}

const KIND_ORDER = [
  "CustomResourceDefinition", "Namespace", "ClusterRole", "ClusterClass", "RuntimeClass", "PriorityClass", "StorageClass",
  "VolumeSnapshotClass", "IngressClass", "GatewayClass", "ClusterRoleBinding", "ResourceQuota", "ServiceAccount", "Role",
  "RoleBinding", "ConfigMap", "Secret", "Service", "LimitRange", "Deployment", "StatefulSet", "CronJob", "PodDisruptionBudget",
];
const LAST_KINDS = ["MutatingWebhookConfiguration", "ValidatingWebhookConfiguration"];

function kindRank(kind: string): number {
  const index = KIND_ORDER.indexOf(kind);
  if (index !== -1) return index;
  const last = LAST_KINDS.indexOf(kind);
  return last === -1 ? KIND_ORDER.length : KIND_ORDER.length + 1 + last;
}

/** Flux's apply order: by kind rank, then namespace, then name; webhooks last so they cannot block the rest. */
export function sortForApply<T extends ManifestObject>(objects: readonly T[]): T[] {
  return [...objects].sort((a, b) =>
    kindRank(a.kind) - kindRank(b.kind)
    || (a.metadata.namespace ?? "").localeCompare(b.metadata.namespace ?? "")
    || a.metadata.name.localeCompare(b.metadata.name));
}

export function describeObject(object: { kind: string; metadata: { name: string; namespace?: string } }): string {
  return `${object.kind}/${object.metadata.namespace ? `${object.metadata.namespace}/` : ""}${object.metadata.name}`;
}

/** The API server's words for a change it refuses because the field cannot be updated in place. */
export function isImmutableFieldError(message: string): boolean {
  // RBAC says "cannot change roleRef" of a binding's roleRef (Flux's ssa matches it too).
  return /field is immutable|is immutable|updates to .* are forbidden|may not change once set|cannot change roleRef/i.test(message);
}

type Json = null | boolean | number | string | Json[] | { [key: string]: Json };

export const CHECKSUM_ANNOTATION = "kustomize.ferry.dev/checksum";

/** Feeds a canonical JSON form (sorted keys) to the hash piece by piece; CRDs are too big to build as one string. */
function hashCanonical(hash: Hash, value: unknown): void {
  if (Array.isArray(value)) {
    hash.update("[");
    value.forEach((item, index) => {
      if (index > 0) hash.update(",");
      hashCanonical(hash, item);
    });
    hash.update("]");
  } else if (value && typeof value === "object") {
    hash.update("{");
    const entries = Object.entries(value).filter(([, child]) => child !== undefined).sort(([a], [b]) => (a < b ? -1 : 1));
    entries.forEach(([key, child], index) => {
      hash.update(`${index > 0 ? "," : ""}${JSON.stringify(key)}:`);
      hashCanonical(hash, child);
    });
    hash.update("}");
  } else hash.update(JSON.stringify(value) ?? "null");
}

/**
 * A Secret as the checksum sees it: its keys without their values. The annotation is readable wherever metadata is
 * (audit logs, metadata-only watches), and a hash over the values would let anyone confirm a guessed value offline.
 * A changed value is still caught: appliedAndUntouched also compares every desired field with the live object.
 */
function withoutSecretValues(object: ManifestObject): ManifestObject {
  if (object.kind !== "Secret" || object.apiVersion !== "v1") return object;
  const blind = (values: unknown) =>
    values && typeof values === "object" ? Object.fromEntries(Object.keys(values).map((key) => [key, ""])) : values;
  return { ...object, data: blind(object.data), stringData: blind(object.stringData) };
}

/** The object with an annotation holding the checksum of everything else in it: what Ferry last applied. */
export function withChecksum<T extends ManifestObject>(object: T): T {
  const annotations = Object.fromEntries(Object.entries(object.metadata.annotations ?? {}).filter(([key]) => key !== CHECKSUM_ANNOTATION));
  const bare = withoutSecretValues({ ...object, metadata: { ...object.metadata, annotations } });
  const hash = createHash("sha256");
  hashCanonical(hash, bare);
  const checksum = hash.digest("hex").slice(0, 32);
  return { ...object, metadata: { ...object.metadata, annotations: { ...annotations, [CHECKSUM_ANNOTATION]: checksum } } };
}

/** Every field of `desired` is in `live` with the same value (live may have more: defaults, others' fields). */
export function containedIn(desired: unknown, live: unknown): boolean {
  if (desired === live) return true;
  if (typeof desired !== "object" || typeof live !== "object" || desired === null || live === null) return false;
  if (Array.isArray(desired) || Array.isArray(live)) {
    return Array.isArray(desired) && Array.isArray(live) && desired.length === live.length
      && desired.every((item, index) => containedIn(item, live[index]));
  }
  return Object.entries(desired).every(([key, value]) => value === undefined || containedIn(value, (live as Record<string, unknown>)[key]));
}

/**
 * True when applying `desired` (stamped by withChecksum) cannot change `live`: the live object carries the same
 * checksum, so the manifest is the one applied last time and no field was dropped from it, and every field of the
 * manifest still has its value, so nobody edited it since. Values the server normalises make this false, never
 * wrongly true; those objects are compared by server-side dry-run instead.
 */
export function appliedAndUntouched(desired: ManifestObject, live: unknown): boolean {
  const liveAnnotations = (live as { metadata?: { annotations?: Record<string, string> } }).metadata?.annotations;
  const checksum = desired.metadata.annotations?.[CHECKSUM_ANNOTATION];
  return checksum !== undefined && liveAnnotations?.[CHECKSUM_ANNOTATION] === checksum && containedIn(desired, live);
}

/** Server-maintained metadata that changes without the object changing. */
function comparable(object: unknown): Json {
  const copy = structuredClone(object) as { metadata?: Record<string, unknown> };
  if (copy.metadata) {
    delete copy.metadata.managedFields;
    delete copy.metadata.resourceVersion;
  }
  return copy as Json;
}

function equalJson(a: Json, b: Json): boolean {
  if (a === b) return true;
  if (typeof a !== "object" || typeof b !== "object" || a === null || b === null) return false;
  if (Array.isArray(a) || Array.isArray(b)) {
    return Array.isArray(a) && Array.isArray(b) && a.length === b.length && a.every((item, index) => equalJson(item, b[index] as Json));
  }
  const keys = Object.keys(a);
  if (keys.length !== Object.keys(b).length) return false;
  return keys.every((key) => key in b && equalJson(a[key] as Json, b[key] as Json));
}

/** True when a server-side dry-run of the apply yields the live object: applying would change nothing. */
export function dryRunMatches(live: unknown, dryRun: unknown): boolean {
  return equalJson(comparable(live), comparable(dryRun));
}

/** What kubectl and first applies leave behind; Flux's Override takes these fields over so removals apply. */
const TAKEN_OVER = [
  { manager: "kubectl", operation: "Apply" },
  { manager: "kubectl", operation: "Update" },
  { manager: "kubectl-client-side-apply", operation: "Update" },
  { manager: "before-first-apply", operation: "Update" },
];
export const LAST_APPLIED_ANNOTATION = "kubectl.kubernetes.io/last-applied-configuration";

export interface ManagedFieldsEntry {
  manager?: string;
  operation?: string;
  apiVersion?: string;
  fieldsType?: string;
  fieldsV1?: Record<string, unknown>;
  time?: string;
  subresource?: string;
}

function mergeFieldSets(a: Record<string, unknown>, b: Record<string, unknown>): Record<string, unknown> {
  const merged: Record<string, unknown> = { ...a };
  for (const [key, value] of Object.entries(b)) {
    const existing = merged[key];
    merged[key] = existing && typeof existing === "object" && value && typeof value === "object"
      ? mergeFieldSets(existing as Record<string, unknown>, value as Record<string, unknown>)
      : value;
  }
  return merged;
}

/**
 * The managedFields after `manager` takes over the fields kubectl's applies and edits own: their field sets join
 * the manager's Apply entry, so the next server-side apply removes what the manifest no longer has. Undefined when
 * nothing is to be taken over.
 */
export function takeOverManagedFields(
  entries: readonly ManagedFieldsEntry[] | undefined,
  manager: string,
  apiVersion: string,
): ManagedFieldsEntry[] | undefined {
  const isTaken = (entry: ManagedFieldsEntry) =>
    !entry.subresource && TAKEN_OVER.some((taken) => taken.manager === entry.manager && taken.operation === entry.operation);
  const taken = (entries ?? []).filter(isTaken);
  if (taken.length === 0) return undefined;
  const kept = (entries ?? []).filter((entry) => !isTaken(entry));
  const ours = kept.find((entry) => entry.manager === manager && entry.operation === "Apply" && !entry.subresource);
  const fields = taken.reduce((set, entry) => mergeFieldSets(set, entry.fieldsV1 ?? {}), ours?.fieldsV1 ?? {});
  const replacement: ManagedFieldsEntry = {
    manager,
    operation: "Apply",
    apiVersion: ours?.apiVersion ?? apiVersion,
    fieldsType: "FieldsV1",
    fieldsV1: fields,
    time: new Date().toISOString().replace(/\.\d+Z$/, "Z"),
  };
  return [...kept.filter((entry) => entry !== ours), replacement];
}
