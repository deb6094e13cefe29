// The inventory of applied objects, in Flux's id format, and the diff that decides what to prune. Pure.
import type { InventoryEntryType } from "../api/kustomize.ts";

export interface ObjectRef {
  readonly apiVersion: string;
  readonly kind: string;
  readonly name: string;
  readonly namespace?: string;
}

export function groupOf(apiVersion: string): string {
  return apiVersion.includes("/") ? (apiVersion.split("/")[0] ?? "") : "";
}

/** `<namespace>_<name>_<group>_<kind>`; RBAC names transcode ":" as "__", as Flux does. */
export function inventoryId(ref: ObjectRef): string {
  const name = ref.kind.match(/^(Cluster)?Role(Binding)?$/) ? ref.name.replaceAll(":", "__") : ref.name;
  return `${ref.namespace ?? ""}_${name}_${groupOf(ref.apiVersion)}_${ref.kind}`;
}

export function toEntry(ref: ObjectRef): InventoryEntryType {
  return { id: inventoryId(ref), v: ref.apiVersion.split("/").at(-1) ?? ref.apiVersion };
}

/**
 * Parses an id back. Names may contain "_", so namespace and group/kind are taken from the ends and the name is
 * whatever lies between (Flux cannot parse such names; a Kubernetes namespace, group or kind never contains "_").
 */
export function parseEntry(entry: InventoryEntryType): ObjectRef {
  const first = entry.id.indexOf("_");
  const last = entry.id.lastIndexOf("_");
  const beforeLast = entry.id.lastIndexOf("_", last - 1);
  if (first === -1 || last <= first || beforeLast < first) throw new Error(`invalid inventory id ${entry.id}`);
  const namespace = entry.id.slice(0, first);
  let name = entry.id.slice(first + 1, beforeLast);
  const group = entry.id.slice(beforeLast + 1, last);
  const kind = entry.id.slice(last + 1);
  if (kind.match(/^(Cluster)?Role(Binding)?$/)) name = name.replaceAll("__", ":");
  return { apiVersion: group ? `${group}/${entry.v}` : entry.v, kind, name, ...(namespace ? { namespace } : {}) };
}

/** Entries in `previous` that are not in `current`: the objects to prune. */
export function staleEntries(previous: readonly InventoryEntryType[], current: readonly InventoryEntryType[]): InventoryEntryType[] {
  const kept = new Set(current.map((entry) => entry.id));
  return previous.filter((entry) => !kept.has(entry.id));
}
