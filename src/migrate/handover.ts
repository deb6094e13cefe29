// Handing the objects a Flux Kustomization applied to Ferry's (and back, for --rollback) without touching the objects
// themselves: the owner labels are renamed, and kustomize-controller's server-side apply entry in managedFields
// becomes Ferry's. Without the second step Ferry would only co-own the fields, and a field a later revision drops
// would stay on the object, still owned by a controller that no longer runs. Pure: the JSON patch is computed here,
// sent by the CLI.
import type { ManagedFieldsEntry } from "../apply/policy.ts";
import { FIELD_MANAGER } from "../apply/apply.ts";
import { KUSTOMIZE_GROUP } from "../api/kustomize.ts";
import { FLUX_KUSTOMIZE_GROUP } from "./translate.ts";

/** The field manager fluxcd/pkg/ssa applies as inside kustomize-controller. */
export const FLUX_FIELD_MANAGER = "kustomize-controller";

export interface Owner {
  /** Field manager whose Apply entry owns the applied fields. */
  readonly manager: string;
  /** The API group of the owner labels, <group>/name and <group>/namespace. */
  readonly labelGroup: string;
}

export const FLUX_OWNER: Owner = { manager: FLUX_FIELD_MANAGER, labelGroup: FLUX_KUSTOMIZE_GROUP };
export const FERRY_OWNER: Owner = { manager: FIELD_MANAGER, labelGroup: KUSTOMIZE_GROUP };

export interface LiveObject {
  apiVersion: string;
  kind: string;
  metadata: {
    name: string;
    namespace?: string;
    resourceVersion?: string;
    labels?: Record<string, string>;
    managedFields?: ManagedFieldsEntry[];
  };
}

/** Why an object is left alone, or the patch that hands it over. */
export type Handover = { readonly patch: unknown[] } | { readonly skipped: string };

/**
 * The JSON patch moving `live` from `from` to `to`, for the Kustomization `kustomization` (namespace/name, the same on
 * both sides). Objects not labelled as `from`'s for that Kustomization are skipped: they belong to someone else, and
 * neither Flux nor Ferry would prune them. The resourceVersion test makes a concurrent writer fail the patch rather
 * than be overwritten.
 */
export function handOver(live: LiveObject, kustomization: { namespace: string; name: string }, from: Owner, to: Owner): Handover {
  const labels = live.metadata.labels ?? {};
  const fromName = `${from.labelGroup}/name`;
  const fromNamespace = `${from.labelGroup}/namespace`;
  if (labels[fromName] !== kustomization.name || labels[fromNamespace] !== kustomization.namespace) {
    return { skipped: `not labelled ${fromName}=${kustomization.name}, ${fromNamespace}=${kustomization.namespace}` };
  }
  const renamed = Object.fromEntries(Object.entries(labels).filter(([label]) => label !== fromName && label !== fromNamespace));
  renamed[`${to.labelGroup}/name`] = kustomization.name;
  renamed[`${to.labelGroup}/namespace`] = kustomization.namespace;
  return {
    patch: [
      { op: "test", path: "/metadata/resourceVersion", value: live.metadata.resourceVersion },
      { op: "replace", path: "/metadata/labels", value: renamed },
      ...managedFieldsPatch(live, from, to),
    ],
  };
}

function managedFieldsPatch(live: LiveObject, from: Owner, to: Owner): unknown[] {
  const managedFields = handOverManagedFields(live.metadata.managedFields, from, to, live.apiVersion);
  return managedFields ? [{ op: "replace", path: "/metadata/managedFields", value: managedFields }] : [];
}

/**
 * `from`'s Apply entries joined into `to`'s Apply entry (as Ferry's applier takes kubectl's fields over), with the
 * owner label keys renamed inside the field sets. Undefined when `from` owns nothing.
 */
export function handOverManagedFields(
  entries: readonly ManagedFieldsEntry[] | undefined,
  from: Owner,
  to: Owner,
  apiVersion: string,
): ManagedFieldsEntry[] | undefined {
  return joinEntries(entries, isEntryOf(from.manager, "Apply"), from, to, apiVersion);
}

/** The field manager of the handover patch itself; the apiserver records the relabelling under it. */
export const MIGRATE_FIELD_MANAGER = "ferry-migrate";

/**
 * After the handover patch the apiserver credits the renamed labels to MIGRATE_FIELD_MANAGER (an Update entry); this
 * folds that entry into `to`'s Apply entry too, so no stray manager is left co-owning the owner labels.
 */
export function absorbMigrateEntry(
  entries: readonly ManagedFieldsEntry[] | undefined,
  to: Owner,
  apiVersion: string,
): ManagedFieldsEntry[] | undefined {
  return joinEntries(entries, isEntryOf(MIGRATE_FIELD_MANAGER, "Update"), to, to, apiVersion);
}

function isEntryOf(manager: string, operation: string): (entry: ManagedFieldsEntry) => boolean {
  return (entry) => entry.manager === manager && entry.operation === operation && !entry.subresource;
}

function joinEntries(
  entries: readonly ManagedFieldsEntry[] | undefined,
  isTaken: (entry: ManagedFieldsEntry) => boolean,
  from: Owner,
  to: Owner,
  apiVersion: string,
): ManagedFieldsEntry[] | undefined {
  const isApplyOf = (manager: string) => isEntryOf(manager, "Apply");
  const taken = (entries ?? []).filter(isTaken);
  if (taken.length === 0) return undefined;
  const kept = (entries ?? []).filter((entry) => !isTaken(entry));
  const ours = kept.find(isApplyOf(to.manager));
  const fields = [...taken.map((entry) => entry.fieldsV1 ?? {}), ours?.fieldsV1 ?? {}].reduce(mergeFieldSets, {});
  const replacement: ManagedFieldsEntry = {
    manager: to.manager,
    operation: "Apply",
    apiVersion: ours?.apiVersion ?? taken[0]?.apiVersion ?? apiVersion,
    fieldsType: "FieldsV1",
    fieldsV1: renameLabelFields(fields, from, to),
    time: new Date().toISOString().replace(/\.\d+Z$/, "Z"),
  };
  return [...kept.filter((entry) => entry !== ours), replacement];
}

function mergeFieldSets(a: Record<string, unknown>, b: Record<string, unknown>): Record<string, unknown> {
  const merged: Record<string, unknown> = { ...a };
  for (const [field, value] of Object.entries(b)) {
    const existing = merged[field];
    merged[field] = isRecord(existing) && isRecord(value) ? mergeFieldSets(existing, value) : value;
  }
  return merged;
}

/** f:metadata.f:labels.f:<from>/name becomes f:<to>/name (and namespace): the labels are renamed in the same patch. */
function renameLabelFields(fields: Record<string, unknown>, from: Owner, to: Owner): Record<string, unknown> {
  const metadata = fields["f:metadata"];
  const labels = isRecord(metadata) ? metadata["f:labels"] : undefined;
  if (!isRecord(metadata) || !isRecord(labels)) return fields;
  const renamed = Object.fromEntries(Object.entries(labels).map(([field, value]) => {
    for (const suffix of ["name", "namespace"]) {
      if (field === `f:${from.labelGroup}/${suffix}`) return [`f:${to.labelGroup}/${suffix}`, value];
    }
    return [field, value];
  }));
  return { ...fields, "f:metadata": { ...metadata, "f:labels": renamed } };
}

function isRecord(value: unknown): value is Record<string, unknown> {
  return typeof value === "object" && value !== null && !Array.isArray(value);
}
