// The manifest as it is applied, normalised as Flux's kustomize-controller normalises every object before applying
// (fluxcd/pkg/ssa normalize.UnstructuredList). Each step exists because server-side apply would otherwise get it wrong:
// a Secret's stringData is write-only, so keys removed from it would never leave the Secret; a port without a protocol
// is keyed by (port, protocol) in the apiserver's merge, so it drifts against the defaulted TCP the cluster stores.
import type { ManifestObject } from "../kustomize/build.ts";

type Json = Record<string, unknown>;

const isRecord = (value: unknown): value is Json => typeof value === "object" && value !== null && !Array.isArray(value);

/**
 * Without status: Flux never applies it. A CustomResourceDefinition keeps its status (kstatus reads it); Role and
 * ClusterRole are left exactly as written, as Flux skips them (its typed round trip once reset their rules).
 */
export function withoutStatus<T extends ManifestObject>(object: T): T {
  if (!("status" in object)) return object;
  if (object.kind === "CustomResourceDefinition" && object.apiVersion.startsWith("apiextensions.k8s.io/")) return object;
  if (isRbacRole(object)) return object;
  const rest: Record<string, unknown> = { ...object };
  delete rest.status;
  return rest as T;
}

function isRbacRole(object: ManifestObject): boolean {
  return object.apiVersion === "rbac.authorization.k8s.io/v1" && (object.kind === "Role" || object.kind === "ClusterRole");
}

/**
 * stringData folded into data (base64 of its UTF-8), stringData winning a key both have, as the apiserver does. Flux
 * does the same (kubernetes/kubernetes#108008). Left alone when a value is not a string: Flux's typed conversion fails
 * on it too, and the apiserver's refusal names the field.
 */
function secretWithData(object: ManifestObject): ManifestObject {
  const { stringData, data } = object as { stringData?: unknown; data?: unknown };
  if (!isRecord(stringData) || Object.keys(stringData).length === 0) return object;
  if (data !== undefined && data !== null && !isRecord(data)) return object;
  const values = Object.values(stringData);
  if (!values.every((value) => typeof value === "string") || !Object.values(data ?? {}).every((value) => typeof value === "string")) return object;
  const encoded = Object.fromEntries(Object.entries(stringData).map(([key, value]) => [key, Buffer.from(value as string, "utf8").toString("base64")]));
  const rest: Record<string, unknown> = { ...object, data: { ...(data ?? {}), ...encoded } };
  delete rest.stringData;
  return rest as ManifestObject;
}

/** Each port of `ports` without a protocol gets TCP, the apiserver's default; anything unexpected is left as it is. */
function withDefaultProtocols(ports: unknown): unknown {
  if (!Array.isArray(ports)) return ports;
  return ports.map((port) => (isRecord(port) && (port.protocol === undefined || port.protocol === "") ? { ...port, protocol: "TCP" } : port));
}

/** Flux defaults the protocol of the containers' ports only (not init containers'). */
function podSpecWithProtocols(podSpec: unknown): unknown {
  if (!isRecord(podSpec) || !Array.isArray(podSpec.containers)) return podSpec;
  const containers = podSpec.containers.map((container) => (isRecord(container) && "ports" in container
    ? { ...container, ports: withDefaultProtocols(container.ports) }
    : container));
  return { ...podSpec, containers };
}

/** `object` with the value at `path` replaced by `update(value)`; unchanged when a step of the path is not an object. */
function updatedAt(object: Json, path: readonly string[], update: (value: unknown) => unknown): Json {
  const [head, ...rest] = path;
  if (head === undefined || (!isRecord(object[head]) && rest.length > 0)) return object;
  if (!(head in object)) return object;
  return { ...object, [head]: rest.length === 0 ? update(object[head]) : updatedAt(object[head] as Json, rest, update) };
}

/** Where the pod spec is in each workload kind Flux normalises, by apiVersion/kind (typed kinds of client-go only). */
const POD_SPEC_PATHS: Readonly<Record<string, readonly string[]>> = {
  "v1/Pod": ["spec"],
  "apps/v1/Deployment": ["spec", "template", "spec"],
  "apps/v1/StatefulSet": ["spec", "template", "spec"],
  "apps/v1/DaemonSet": ["spec", "template", "spec"],
  "apps/v1/ReplicaSet": ["spec", "template", "spec"],
  "batch/v1/Job": ["spec", "template", "spec"],
  "batch/v1/CronJob": ["spec", "jobTemplate", "spec", "template", "spec"],
};

export function normalizeForApply<T extends ManifestObject>(object: T): T {
  let result: ManifestObject = withoutStatus(object);
  const type = `${result.apiVersion}/${result.kind}`;
  if (type === "v1/Secret") result = secretWithData(result);
  else if (type === "v1/Service") result = updatedAt(result as Json, ["spec", "ports"], withDefaultProtocols) as ManifestObject;
  else {
    const podSpec = POD_SPEC_PATHS[type];
    if (podSpec) result = updatedAt(result as Json, podSpec, podSpecWithProtocols) as ManifestObject;
  }
  return result as T;
}
