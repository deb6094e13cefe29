// `ferry get kustomizations|all`, `ferry create|diff|reconcile|suspend|resume|tree kustomization NAME`.
import { readFile, stat } from "node:fs/promises";
import { posix, resolve } from "node:path";
import { setTimeout as sleep } from "node:timers/promises";
import yaml from "js-yaml";
import { KUSTOMIZE_GROUP, KUSTOMIZE_VERSION, KustomizationSpec, type KustomizationSpecType } from "../../src/api/kustomize.ts";
import { SOURCE_GROUP, SOURCE_VERSION } from "../../src/api/source.ts";
import { Applier } from "../../src/apply/apply.ts";
import { type ObjectRef, parseEntry, staleEntries } from "../../src/inventory/inventory.ts";
import type { KubeClient } from "../../src/kube/client.ts";
import { buildKustomization, KUSTOMIZATION, type Kustomization } from "../../src/reconcilers/kustomization.ts";
import { OCI_REPOSITORY, type OCIRepository } from "../../src/reconcilers/ocirepository.ts";
import { comparableYaml, formatDiff } from "../diff.ts";
import { UsageError } from "../errors.ts";
import { parse, parseDuration, requireOne } from "../flags.ts";
import { KUBE_OPTIONS, kubeClient, LIST_OPTIONS, listingScope } from "../kube.ts";
import { parseOutputFormat, printStructured, printTable, status } from "../output.ts";
import { OCI_SOURCE, requestReconcile, setSuspended, sourceRevision } from "./sources.ts";
import { listObjects, printStatusList, statusHeaders, statusRows } from "./tables.ts";

const KUSTOMIZATION_TARGET = {
  type: KUSTOMIZATION,
  kind: "Kustomization",
  verb: "applied",
  revision: (object: unknown) => (object as Kustomization).status?.lastAppliedRevision,
};

export async function reconcileKustomizationCommand(args: readonly string[]): Promise<boolean> {
  const { values, positionals } = parse(args, { ...KUBE_OPTIONS, "with-source": { type: "boolean" } });
  const name = requireOne(positionals, "Kustomization name");
  const kube = kubeClient(values);
  const namespace = values.namespace ?? kube.defaultNamespace();
  const timeoutMs = parseDuration(values.timeout ?? "5m", "--timeout");
  if (values["with-source"]) {
    const object = await kube.get<Kustomization>(KUSTOMIZATION, namespace, name);
    if (!object) throw new UsageError(`Kustomization ${namespace}/${name} not found`);
    const sourceNamespace = object.spec.sourceRef.namespace ?? namespace;
    if (!(await requestReconcile(kube, OCI_SOURCE, sourceNamespace, object.spec.sourceRef.name, timeoutMs))) return false;
  }
  return requestReconcile(kube, KUSTOMIZATION_TARGET, namespace, name, timeoutMs);
}

async function setKustomizationSuspended(args: readonly string[], suspend: boolean): Promise<void> {
  const { values, positionals } = parse(args, KUBE_OPTIONS);
  const name = requireOne(positionals, "Kustomization name");
  const kube = kubeClient(values);
  await setSuspended(kube, KUSTOMIZATION_TARGET, values.namespace ?? kube.defaultNamespace(), name, suspend);
}

export const suspendKustomizationCommand = (args: readonly string[]) => setKustomizationSuspended(args, true);
export const resumeKustomizationCommand = (args: readonly string[]) => setKustomizationSuspended(args, false);

const kustomizationRevision = (object: Kustomization) => object.status?.lastAppliedRevision;

export async function getKustomizationsCommand(args: readonly string[]): Promise<void> {
  const { values, positionals } = parse(args, LIST_OPTIONS);
  const scope = listingScope(values);
  let objects = await listObjects<Kustomization>(scope.kube, KUSTOMIZATION, scope.namespace);
  if (positionals.length > 0) objects = objects.filter((object) => positionals.includes(object.metadata.name));
  await printStatusList(objects, scope, kustomizationRevision);
}

/** `flux get all` for Ferry's two kinds: one table per kind that has objects, names prefixed with the kind. */
export async function getAllCommand(args: readonly string[]): Promise<void> {
  const { values, positionals } = parse(args, LIST_OPTIONS);
  if (positionals.length > 0) throw new UsageError(`get all takes no names, got ${positionals.join(" ")}`);
  const { kube, format, allNamespaces, namespace } = listingScope(values);
  const [sources, kustomizations] = await Promise.all([
    listObjects<OCIRepository>(kube, OCI_REPOSITORY, namespace),
    listObjects<Kustomization>(kube, KUSTOMIZATION, namespace),
  ]);
  if (format !== "text") {
    await printStructured(format, { apiVersion: "v1", kind: "List", items: [...sources, ...kustomizations] });
    return;
  }
  const tables = [
    ...(sources.length > 0 ? [statusRows(sources, { allNamespaces, revision: sourceRevision, prefix: "ocirepository/" })] : []),
    ...(kustomizations.length > 0 ? [statusRows(kustomizations, { allNamespaces, revision: kustomizationRevision, prefix: "kustomization/" })] : []),
  ];
  if (tables.length === 0) {
    status("⚠", `no objects found in ${namespace === undefined ? "any namespace" : `${namespace} namespace`}`);
    return;
  }
  tables.forEach((rows, index) => {
    if (index > 0) process.stdout.write("\n");
    printTable(statusHeaders(allNamespaces), rows);
  });
}

export async function treeKustomizationCommand(args: readonly string[]): Promise<void> {
  const { values, positionals } = parse(args, KUBE_OPTIONS);
  const name = requireOne(positionals, "Kustomization name");
  const kube = kubeClient(values);
  const namespace = values.namespace ?? kube.defaultNamespace();
  const object = await kube.get<Kustomization>(KUSTOMIZATION, namespace, name);
  if (!object) throw new UsageError(`Kustomization ${namespace}/${name} not found`);
  const entries = (object.status?.inventory?.entries ?? []).map(parseEntry);
  const lines = [`Kustomization/${namespace}/${name}`];
  entries.forEach((entry, index) => {
    const branch = index === entries.length - 1 ? "└──" : "├──";
    lines.push(`${branch} ${entry.kind}/${entry.namespace ? `${entry.namespace}/` : ""}${entry.name}`);
  });
  process.stdout.write(`${lines.join("\n")}\n`);
}

export const CREATE_OPTIONS = {
  ...KUBE_OPTIONS,
  source: { type: "string" },
  path: { type: "string" },
  interval: { type: "string" },
  "retry-interval": { type: "string" },
  prune: { type: "boolean" },
  wait: { type: "boolean" },
  "health-check": { type: "string", multiple: true },
  "health-check-timeout": { type: "string" },
  "depends-on": { type: "string", multiple: true },
  "target-namespace": { type: "string" },
  "service-account": { type: "string" },
  "name-prefix": { type: "string" },
  "name-suffix": { type: "string" },
  force: { type: "boolean" },
  "kubeconfig-secret-ref": { type: "string" },
  label: { type: "string", multiple: true },
  export: { type: "boolean" },
} as const;

type CreateValues = ReturnType<typeof parse<typeof CREATE_OPTIONS>>["values"];

/** flux's `--source=[Kind/]name[.namespace]`; the kind defaults to (and can only be) OCIRepository. */
export function parseSourceRef(value: string): KustomizationSpecType["sourceRef"] {
  const slash = value.indexOf("/");
  const kind = slash === -1 ? "OCIRepository" : value.slice(0, slash);
  if (kind.toLowerCase() !== "ocirepository") throw new UsageError(`--source kind must be OCIRepository, the only source kind Ferry has, not "${kind}"`);
  const [name, namespace, ...rest] = value.slice(slash + 1).split(".");
  if (!name || namespace === "" || rest.length > 0) throw new UsageError(`--source must be [OCIRepository/]NAME[.NAMESPACE], not "${value}"`);
  return { kind: "OCIRepository", name, ...(namespace ? { namespace } : {}) };
}

// flux takes repeated flags and comma-separated lists alike (cobra's StringSlice).
const listValues = (values: readonly string[] | undefined) => (values ?? []).flatMap((value) => value.split(",")).map((value) => value.trim()).filter(Boolean);

export function parseDependsOn(values: readonly string[] | undefined): NonNullable<KustomizationSpecType["dependsOn"]> {
  return listValues(values).map((value) => {
    const parts = value.split("/");
    const [first, second] = parts;
    if (parts.length > 2 || !first || second === "") throw new UsageError(`--depends-on must be NAME or NAMESPACE/NAME, not "${value}"`);
    return second ? { namespace: first, name: second } : { name: first };
  });
}

// The workload kinds kstatus knows, as flux allows them, plus Ferry's own kinds in place of flux's HelmRelease.
const HEALTH_CHECK_KINDS: Record<string, string | undefined> = {
  Deployment: undefined,
  DaemonSet: undefined,
  StatefulSet: undefined,
  Kustomization: `${KUSTOMIZE_GROUP}/${KUSTOMIZE_VERSION}`,
  OCIRepository: `${SOURCE_GROUP}/${SOURCE_VERSION}`,
};

export function parseHealthChecks(values: readonly string[] | undefined): NonNullable<KustomizationSpecType["healthChecks"]> {
  return listValues(values).map((value) => {
    const match = /^([^/]+)\/([^./]+)(?:\.([^./]+))?$/.exec(value);
    if (!match?.[1] || !match[2]) throw new UsageError(`--health-check must be KIND/NAME.NAMESPACE, not "${value}"`);
    const kind = match[1];
    if (!(kind in HEALTH_CHECK_KINDS)) throw new UsageError(`--health-check kind "${kind}" must be one of ${Object.keys(HEALTH_CHECK_KINDS).join(", ")}`);
    const apiVersion = HEALTH_CHECK_KINDS[kind];
    return { ...(apiVersion ? { apiVersion } : {}), kind, name: match[2], ...(match[3] ? { namespace: match[3] } : {}) };
  });
}

/** flux's SafeRelativePath: always "./…", and ".." cannot climb above the source root. */
export function safeRelativePath(value: string): string {
  return `.${posix.normalize(`/${value.trim().replaceAll("\\", "/")}`)}`;
}

function parseLabels(values: readonly string[] | undefined): Record<string, string> {
  return Object.fromEntries(listValues(values).map((value) => {
    const match = /^([A-Za-z0-9][-A-Za-z0-9_./]*)=([-A-Za-z0-9_.]*)$/.exec(value);
    if (!match?.[1]) throw new UsageError(`--label must be KEY=VALUE, not "${value}"`);
    return [match[1], match[2] ?? ""];
  }));
}

const OBJECT_NAME = /^[a-z0-9]([-a-z0-9]{0,61}[a-z0-9])?$/;

/** The Kustomization `create kustomization` writes, as flux builds it from the same flags. */
export function kustomizationManifest(name: string, namespace: string, values: CreateValues) {
  if (!OBJECT_NAME.test(name)) throw new UsageError(`name "${name}" is invalid: lower-case letters, digits and "-", at most 63 characters (RFC 1123)`);
  if (!values.source) throw new UsageError("--source is required: [OCIRepository/]NAME[.NAMESPACE]");
  const interval = values.interval ?? "1m";
  for (const [flag, value] of [["--interval", interval], ["--retry-interval", values["retry-interval"]], ["--health-check-timeout", values["health-check-timeout"]]]) {
    if (value !== undefined) parseDuration(value, flag as string);
  }
  const dependsOn = parseDependsOn(values["depends-on"]);
  const healthChecks = parseHealthChecks(values["health-check"]);
  if (healthChecks.length > 0 && values.wait) status("⚠", "--health-check is ignored with --wait, which checks every applied object");
  const labels = parseLabels(values.label);
  const spec: Record<string, unknown> = {
    ...(dependsOn.length > 0 ? { dependsOn } : {}),
    ...(values.force ? { force: true } : {}),
    ...(healthChecks.length > 0 && !values.wait ? { healthChecks } : {}),
    interval,
    ...(values["kubeconfig-secret-ref"] ? { kubeConfig: { secretRef: { name: values["kubeconfig-secret-ref"] } } } : {}),
    ...(values["name-prefix"] ? { namePrefix: values["name-prefix"] } : {}),
    ...(values["name-suffix"] ? { nameSuffix: values["name-suffix"] } : {}),
    path: safeRelativePath(values.path ?? "./"),
    prune: values.prune ?? false,
    ...(values["retry-interval"] ? { retryInterval: values["retry-interval"] } : {}),
    ...(values["service-account"] ? { serviceAccountName: values["service-account"] } : {}),
    sourceRef: parseSourceRef(values.source),
    ...(values["target-namespace"] ? { targetNamespace: values["target-namespace"] } : {}),
    // As flux: the health-check timeout bounds the controller's wait; --timeout bounds this command's.
    ...(values.wait || healthChecks.length > 0 ? { timeout: values["health-check-timeout"] ?? "2m" } : {}),
    ...(values.wait ? { wait: true } : {}),
  };
  const parsed = KustomizationSpec.safeParse(spec);
  if (!parsed.success) throw new UsageError(`invalid Kustomization: ${parsed.error.issues.map((issue) => `${issue.path.join(".")}: ${issue.message}`).join("; ")}`);
  return {
    apiVersion: `${KUSTOMIZE_GROUP}/${KUSTOMIZE_VERSION}`,
    kind: "Kustomization",
    metadata: { name, namespace, ...(Object.keys(labels).length > 0 ? { labels } : {}) },
    spec,
  };
}

type JsonObject = Record<string, unknown>;
const isObject = (value: unknown): value is JsonObject => typeof value === "object" && value !== null && !Array.isArray(value);

/** A JSON merge patch that turns `current` into `desired`: removed keys become null, as an update would drop them. */
export function replacementPatch(current: JsonObject, desired: JsonObject): JsonObject {
  const patch: JsonObject = {};
  for (const key of Object.keys(current)) if (!(key in desired)) patch[key] = null;
  for (const [key, value] of Object.entries(desired)) {
    const before = current[key];
    patch[key] = isObject(before) && isObject(value) ? replacementPatch(before, value) : value;
  }
  return patch;
}

function condition(object: Kustomization, type: string) {
  return object.status?.conditions?.find((candidate) => candidate.type === type);
}

/** Polls until the controller has observed the latest generation and reports Ready, as flux's create waits. */
async function waitForReady(kube: KubeClient, namespace: string, name: string, timeoutMs: number): Promise<boolean> {
  status("◎", "waiting for Kustomization reconciliation");
  const deadline = Date.now() + timeoutMs;
  let last: Kustomization | undefined;
  while (Date.now() < deadline) {
    last = await kube.get<Kustomization>(KUSTOMIZATION, namespace, name);
    if (!last) throw new Error(`Kustomization ${namespace}/${name} was deleted while waiting for it`);
    if (last.spec.suspend) {
      status("⚠", `Kustomization ${name} is suspended; not waiting for it`);
      return true;
    }
    const observed = last.status?.observedGeneration === last.metadata.generation;
    const stalled = condition(last, "Stalled");
    if (observed && condition(last, "Ready")?.status === "True") {
      status("✔", `Kustomization ${name} is ready`);
      status("✔", `applied revision ${last.status?.lastAppliedRevision ?? ""}`);
      return true;
    }
    if (observed && stalled?.status === "True") {
      status("✗", `${stalled.reason}: ${stalled.message}`);
      return false;
    }
    await sleep(500);
  }
  const ready = last ? condition(last, "Ready") : undefined;
  status("✗", `timed out waiting for Kustomization ${name} to become ready${ready?.message ? `: ${ready.reason}: ${ready.message}` : ""}`);
  return false;
}

export async function createKustomizationCommand(args: readonly string[]): Promise<boolean> {
  const { values, positionals } = parse(args, CREATE_OPTIONS);
  const name = requireOne(positionals, "Kustomization name");
  const timeoutMs = parseDuration(values.timeout ?? "5m", "--timeout");
  const kube = values.export ? undefined : kubeClient(values);
  const namespace = values.namespace ?? kube?.defaultNamespace() ?? "default";
  const object = kustomizationManifest(name, namespace, values);
  if (!kube) {
    process.stdout.write(`---\n${yaml.dump(object, { sortKeys: true, lineWidth: -1, noRefs: true })}`);
    return true;
  }
  status("►", "applying Kustomization");
  const existing = await kube.get<Kustomization & { metadata: { labels?: Record<string, string> } }>(KUSTOMIZATION, namespace, name);
  if (!existing) {
    await kube.create(KUSTOMIZATION, namespace, object);
    status("✔", "Kustomization created");
  } else {
    // flux replaces the spec, so flags left out this time are removed; labels are only added, never taken away.
    const labels = object.metadata.labels ? { labels: object.metadata.labels } : {};
    const spec = replacementPatch(existing.spec as JsonObject, object.spec);
    await kube.mergePatch(KUSTOMIZATION, namespace, name, { metadata: labels, spec });
    status("✔", "Kustomization updated");
  }
  return waitForReady(kube, namespace, name, timeoutMs);
}

interface DiffEntry {
  readonly subject: string;
  readonly action: "created" | "drifted" | "deleted";
  readonly diff?: string;
}

const describeRef = (ref: ObjectRef) => `${ref.kind}/${ref.namespace ? `${ref.namespace}/` : ""}${ref.name}`;

/** A local Kustomization manifest (`--kustomization-file`) in place of the cluster's, as flux diff allows. */
async function kustomizationFromFile(file: string, name: string, namespace: string): Promise<Kustomization> {
  const documents = yaml.loadAll(await readFile(file, "utf8")) as Array<Partial<Kustomization> | null>;
  const found = documents.find((document) => document?.kind === "Kustomization" && document.metadata?.name === name);
  if (!found?.spec || !found.metadata) throw new UsageError(`${file} has no Kustomization named ${name}`);
  return { ...found, metadata: { ...found.metadata, namespace: found.metadata.namespace ?? namespace } } as Kustomization;
}

/**
 * `flux diff kustomization NAME --path DIR`: DIR is built as the Kustomization would build its artifact and
 * planned with a server-side dry-run; nothing is written. Resolves false (exit 1) when anything would change.
 */
export async function diffKustomizationCommand(args: readonly string[]): Promise<boolean> {
  const { values, positionals } = parse(args, {
    kubeconfig: { type: "string" },
    namespace: { type: "string", short: "n" },
    path: { type: "string" },
    "kustomization-file": { type: "string" },
    output: { type: "string", short: "o" },
  });
  const name = requireOne(positionals, "Kustomization name");
  if (!values.path) throw new UsageError("--path is required: the local directory to build and compare");
  const format = parseOutputFormat(values.output);
  if (!(await stat(values.path).catch(() => undefined))?.isDirectory()) throw new UsageError(`--path ${values.path} is not a directory`);
  const kube = kubeClient(values);
  const namespace = values.namespace ?? kube.defaultNamespace();
  const live = await kube.get<Kustomization>(KUSTOMIZATION, namespace, name);
  const object = values["kustomization-file"] ? await kustomizationFromFile(values["kustomization-file"], name, namespace) : live;
  if (!object) throw new UsageError(`Kustomization ${namespace}/${name} not found`);
  const spec = KustomizationSpec.parse(object.spec);
  if (spec.kubeConfig) status("⚠", "spec.kubeConfig is set, but the diff is against the cluster of the current kubeconfig");
  const applier = new Applier(kube);
  // --path points at the directory spec.path would name inside the artifact, so spec.path itself no longer applies.
  const objects = await buildKustomization(resolve(values.path), object, { ...spec, path: "" }, { kube, applier });
  const planned = await applier.plan(objects, { force: spec.force ?? false });
  const entries: DiffEntry[] = [];
  for (const change of planned) {
    if (change.action === "created") entries.push({ subject: change.subject, action: "created" });
    if (change.action !== "configured") continue;
    if (change.merged === undefined) {
      entries.push({ subject: change.subject, action: "drifted" });
      continue;
    }
    const { before, after } = comparableYaml(change.live, change.merged);
    const diff = formatDiff(before, after);
    // A difference only in what the server maintains itself (generation and the like) is not drift.
    if (diff !== "") entries.push({ subject: change.subject, action: "drifted", diff });
  }
  if (spec.prune) {
    const built = planned.map((change) => ({ id: change.id, v: change.v }));
    for (const entry of staleEntries(live?.status?.inventory?.entries ?? [], built)) {
      const ref = parseEntry(entry);
      // Already gone (or its kind with it): a prune would have nothing to delete.
      if ((await applier.read(ref).catch(() => undefined)) !== undefined) entries.push({ subject: describeRef(ref), action: "deleted" });
    }
  }
  if (format !== "text") await printStructured(format, entries);
  else {
    for (const entry of entries) process.stdout.write(`► ${entry.subject} ${entry.action}\n${entry.diff ? `${entry.diff}\n` : ""}`);
  }
  return entries.length === 0;
}
