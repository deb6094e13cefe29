// `ferry migrate`: Flux's OCIRepositories and Kustomizations become Ferry's, and Ferry takes over what Flux applied
// in place. The order keeps every object owned by exactly one controller at every step: Flux's objects are
// suspended first, then Ferry's are created suspended, given Flux's inventory, and the applied objects are handed
// over (owner labels, field manager); only then is Ferry's Kustomization resumed. `--rollback` walks it backwards.
import {
  ApiException,
  HttpMethod,
  type KubernetesObject,
  KubernetesObjectApi,
  PatchStrategy,
  type ResponseContext,
} from "@kubernetes/client-node";
import { readdir, readFile, stat } from "node:fs/promises";
import { join } from "node:path";
import { setTimeout as sleep } from "node:timers/promises";
import yaml from "js-yaml";
import type { InventoryEntryType } from "../../src/api/kustomize.ts";
import { parseEntry } from "../../src/inventory/inventory.ts";
import { httpStatusOf, type KubeClient, type ResourceType } from "../../src/kube/client.ts";
import {
  absorbMigrateEntry,
  FERRY_OWNER,
  FLUX_OWNER,
  handOver,
  type LiveObject,
  MIGRATE_FIELD_MANAGER,
  type Owner,
} from "../../src/migrate/handover.ts";
import {
  type DeliveryObject,
  describe,
  FLUX_KUSTOMIZE_GROUP,
  FLUX_SOURCE_GROUP,
  FLUX_WAS_SUSPENDED_ANNOTATION,
  isFluxObject,
  MIGRATED_FROM_ANNOTATION,
  MigrationBlocked,
  type MigrationItem,
  type MigrationPlan,
  MigrationRefused,
  planMigration,
  sourceKey,
  SUSPENDED_BY_MIGRATE_ANNOTATION,
  carriedInventory,
} from "../../src/migrate/translate.ts";
import { KUSTOMIZATION } from "../../src/reconcilers/kustomization.ts";
import { OCI_REPOSITORY } from "../../src/reconcilers/ocirepository.ts";
import { UsageError } from "../errors.ts";
import { parse, parseDuration } from "../flags.ts";
import { kubeClient } from "../kube.ts";
import { parseOutputFormat, status } from "../output.ts";

const FLUX_OCI_REPOSITORY: ResourceType = { group: FLUX_SOURCE_GROUP, version: "v1", plural: "ocirepositories" };
const FLUX_KUSTOMIZATION: ResourceType = { group: FLUX_KUSTOMIZE_GROUP, version: "v1", plural: "kustomizations" };
/** helm-controller's HelmReleases follow OCIRepositories through chartRef; one left behind must not lose its source. */
const FLUX_HELM_RELEASE: ResourceType = { group: "helm.toolkit.fluxcd.io", version: "v2", plural: "helmreleases" };
const FLUX_REQUESTED_AT = "reconcile.fluxcd.io/requestedAt";

/** A patch that lost a race with a writer is retried on a fresh read this many times. */
const HANDOVER_ATTEMPTS = 5;
/** Lists answered 429 (storage initializing) are asked again, a second apart, this many times. */
const LIST_ATTEMPTS = 10;

const OPTIONS = {
  kubeconfig: { type: "string" },
  namespace: { type: "string", short: "n" },
  "all-namespaces": { type: "boolean", short: "A" },
  name: { type: "string", multiple: true },
  file: { type: "string", short: "f", multiple: true },
  "dry-run": { type: "boolean" },
  export: { type: "boolean" },
  output: { type: "string", short: "o" },
  force: { type: "boolean" },
  rollback: { type: "boolean" },
  timeout: { type: "string" },
} as const;

type Values = ReturnType<typeof parse<typeof OPTIONS>>["values"];

export async function migrateCommand(args: readonly string[]): Promise<boolean> {
  const { values, positionals } = parse(args, OPTIONS);
  if (positionals.length > 0) throw new UsageError(`unexpected arguments: ${positionals.join(" ")}`);
  checkFlags(values);
  if (values.rollback) return rollback(values);
  const fromFiles = (values.file?.length ?? 0) > 0;
  const offline = fromFiles && (values.export || values["dry-run"]);
  const kube = offline ? undefined : kubeClient(values);
  const plan = planMigration(...await selection(values, kube));
  if (plan.refusals.length > 0) throw new MigrationRefused(plan.refusals);
  if (plan.sources.length + plan.kustomizations.length === 0) throw new UsageError("no Flux OCIRepository or Kustomization selected");
  for (const warning of plan.warnings) status("⚠", warning);
  if (values.export) return printExport(plan, values.output);
  if (values["dry-run"]) return printPlan(plan, kube === undefined);
  if (!kube) throw new UsageError("internal: no cluster");
  // --force: kustomize-controller may be gone, leaving a Reconciling condition nobody will clear.
  await migrate(kube, plan, values.force ? 0 : parseDuration(values.timeout ?? "5m", "--timeout"));
  return true;
}

function checkFlags(values: Values): void {
  parseOutputFormat(values.output);
  if (values.output && !values.export) throw new UsageError("-o/--output prints Ferry's objects: use it with --export");
  if (values["all-namespaces"] && values.namespace) throw new UsageError("--all-namespaces and --namespace exclude each other");
  if (values.file?.length && (values["all-namespaces"] || values.name?.length)) {
    throw new UsageError("-f reads the objects from files: --all-namespaces and --name select them from the cluster");
  }
  if (values.rollback && (values.file?.length || values.export)) throw new UsageError("--rollback works on the cluster: no -f or --export");
}

// ---- selection ------------------------------------------------------------------------------------------------

type Selection = Parameters<typeof planMigration>;

async function selection(values: Values, kube: KubeClient | undefined): Promise<Selection> {
  const fromFiles = (values.file?.length ?? 0) > 0;
  const selected = fromFiles ? await withLiveStatus(kube, await readObjects(values.file ?? [])) : await fromCluster(values, kubeOf(kube));
  if (!kube) return [selected, { force: values.force ?? false, inCluster: !values.export }];
  const everyFluxKustomization = (await listOrEmpty<DeliveryObject>(kube, FLUX_KUSTOMIZATION, undefined))
    .map((object) => ({ ...object, kind: "Kustomization" }));
  const helmReleases = (await listOrEmpty<DeliveryObject>(kube, FLUX_HELM_RELEASE, undefined)).map((object) => ({ ...object, kind: "HelmRelease" }));
  const chosen = new Set(selected.map((object) => `${object.kind}/${object.metadata.namespace ?? "default"}/${object.metadata.name}`));
  const [ferrySources, ferryKustomizations] = [await existing(kube, OCI_REPOSITORY), await existing(kube, KUSTOMIZATION)];
  const names = (objects: readonly DeliveryObject[]) => new Set(objects.map((item) => `${item.metadata.namespace}/${item.metadata.name}`));
  const foreign = [...ferrySources.map((item) => ({ ...item, kind: "OCIRepository" })), ...ferryKustomizations.map((item) => ({ ...item, kind: "Kustomization" }))]
    .filter((item) => item.metadata.annotations?.[MIGRATED_FROM_ANNOTATION] === undefined);
  return [selected, {
    force: values.force ?? false,
    existingFerrySources: names(ferrySources),
    existingFerryKustomizations: names(ferryKustomizations),
    foreignFerryObjects: new Set(foreign.map((item) => `${item.kind}/${item.metadata.namespace}/${item.metadata.name}`)),
    remainingFluxKustomizations: [
      ...everyFluxKustomization.filter((object) => !chosen.has(`Kustomization/${object.metadata.namespace}/${object.metadata.name}`)),
      ...helmReleases,
    ],
    inCluster: !values.export,
  }];
}

function kubeOf(kube: KubeClient | undefined): KubeClient {
  if (!kube) throw new UsageError("internal: no cluster");
  return kube;
}

/** The Flux objects of a namespace (or all), narrowed by --name to those Kustomizations and the sources they follow. */
async function fromCluster(values: Values, kube: KubeClient): Promise<DeliveryObject[]> {
  const namespace = values["all-namespaces"] ? undefined : (values.namespace ?? kube.defaultNamespace());
  const [sources, kustomizations] = await Promise.all([
    listFlux(kube, FLUX_OCI_REPOSITORY, namespace),
    listFlux(kube, FLUX_KUSTOMIZATION, namespace),
  ]);
  const names = values.name ?? [];
  if (names.length === 0) return [...sources, ...kustomizations];
  const chosen = kustomizations.filter((object) => names.includes(object.metadata.name));
  const followed = new Set(chosen.map(sourceKey));
  return [
    ...sources.filter((object) => followed.has(`${object.metadata.namespace}/${object.metadata.name}`) || names.includes(object.metadata.name)),
    ...chosen,
  ];
}

async function listFlux(kube: KubeClient, type: ResourceType, namespace: string | undefined): Promise<DeliveryObject[]> {
  try {
    const { items } = await listPatiently<DeliveryObject>(kube, type, namespace);
    const apiVersion = `${type.group}/${type.version}`;
    return items.map((item) => ({ ...item, apiVersion, kind: type === FLUX_KUSTOMIZATION ? "Kustomization" : "OCIRepository" }));
  } catch (error) {
    if (httpStatusOf(error) === 404) throw new MigrationBlocked(`${type.plural}.${type.group} is not served: Flux's CRDs are not installed in this cluster`);
    throw error;
  }
}

/** The apiserver answers 429 while it (re)initializes a kind's watch cache, e.g. just after a CRD is installed. */
async function listPatiently<T>(kube: KubeClient, type: ResourceType, namespace: string | undefined) {
  for (let attempt = 1; ; attempt++) {
    try {
      return await kube.list<T>(type, namespace);
    } catch (error) {
      if (httpStatusOf(error) !== 429 || attempt >= LIST_ATTEMPTS) throw error;
      await sleep(1_000);
    }
  }
}

async function listOrEmpty<T>(kube: KubeClient, type: ResourceType, namespace: string | undefined): Promise<T[]> {
  try {
    return (await listPatiently<T>(kube, type, namespace)).items;
  } catch (error) {
    if (httpStatusOf(error) === 404) return [];
    throw error;
  }
}

/** Ferry's objects of a kind; Ferry's CRDs missing is said before anything changes (Flux's would be left suspended). */
async function existing(kube: KubeClient, type: ResourceType): Promise<DeliveryObject[]> {
  try {
    return (await listPatiently<DeliveryObject>(kube, type, undefined)).items;
  } catch (error) {
    if (httpStatusOf(error) === 404) throw new MigrationBlocked(`${type.plural}.${type.group} is not served: install Ferry first (ferry install)`);
    throw error;
  }
}

/** YAML or JSON files (multi-document, v1 Lists flattened), or every such file of a directory. */
async function readObjects(paths: readonly string[]): Promise<DeliveryObject[]> {
  const files = (await Promise.all(paths.map(filesOf))).flat();
  const documents = await Promise.all(files.map(async (file) => yaml.loadAll(file === "-" ? await readStdin() : await readFile(file, "utf8"))));
  return documents.flat().flatMap(flattenList).filter((object): object is DeliveryObject => isObject(object));
}

async function filesOf(path: string): Promise<string[]> {
  if (path === "-") return ["-"];
  if (!(await stat(path)).isDirectory()) return [path];
  const entries = await readdir(path);
  return entries.filter((entry) => /\.(ya?ml|json)$/.test(entry)).sort().map((entry) => join(path, entry));
}

/** Read as a stream: /dev/stdin cannot be opened when stdin is a socket (as child processes often get it). */
async function readStdin(): Promise<string> {
  const chunks: Buffer[] = [];
  for await (const chunk of process.stdin) chunks.push(chunk as Buffer);
  return Buffer.concat(chunks).toString("utf8");
}

function flattenList(document: unknown): unknown[] {
  const list = document as { kind?: string; items?: unknown[] } | null;
  return list?.kind === "List" && Array.isArray(list.items) ? list.items : [document];
}

function isObject(value: unknown): value is DeliveryObject {
  const object = value as Partial<DeliveryObject> | null;
  return typeof object?.apiVersion === "string" && typeof object.kind === "string" && typeof object.metadata?.name === "string";
}

/**
 * Files describe specs; the inventory lives in the cluster. When the cluster has the Flux object, its live status
 * (and suspension) is what the migration goes by.
 */
async function withLiveStatus(kube: KubeClient | undefined, objects: DeliveryObject[]): Promise<DeliveryObject[]> {
  if (!kube) return objects;
  return Promise.all(objects.map(async (object) => {
    if (!isFluxObject(object)) return object;
    const namespace = object.metadata.namespace ?? kube.defaultNamespace();
    const live = await kube.get<DeliveryObject>(fluxType(object), namespace, object.metadata.name);
    const metadata = { ...object.metadata, namespace };
    if (!live) return { ...object, metadata };
    // Whether the live object is suspended, and by whom (an interrupted run of ours), is the cluster's to say.
    const ours = live.metadata.annotations?.[SUSPENDED_BY_MIGRATE_ANNOTATION];
    const annotations = { ...metadata.annotations, ...(ours === undefined ? {} : { [SUSPENDED_BY_MIGRATE_ANNOTATION]: ours }) };
    const spec = Object.fromEntries(Object.entries(object.spec ?? {}).filter(([field]) => field !== "suspend"));
    const suspension = live.spec?.suspend === undefined ? {} : { suspend: live.spec.suspend };
    return { ...object, metadata: { ...metadata, annotations }, status: live.status ?? {}, spec: { ...spec, ...suspension } };
  }));
}

function fluxType(object: Pick<DeliveryObject, "kind">): ResourceType {
  return object.kind === "Kustomization" ? FLUX_KUSTOMIZATION : FLUX_OCI_REPOSITORY;
}

function ferryType(object: Pick<DeliveryObject, "kind">): ResourceType {
  return object.kind === "Kustomization" ? KUSTOMIZATION : OCI_REPOSITORY;
}

// ---- output -------------------------------------------------------------------------------------------------

async function printExport(plan: MigrationPlan, output: string | undefined): Promise<boolean> {
  const objects = [...plan.sources, ...plan.kustomizations].map((item) => item.ferry);
  if (parseOutputFormat(output) === "json") {
    process.stdout.write(`${JSON.stringify({ apiVersion: "v1", kind: "List", items: objects }, null, 2)}\n`);
  } else {
    for (const object of objects) process.stdout.write(`---\n${yaml.dump(object, { lineWidth: -1, noRefs: true })}`);
  }
  return true;
}

function printPlan(plan: MigrationPlan, filesOnly: boolean): boolean {
  const lines = [
    ...[...plan.kustomizations, ...plan.sources].map((item) =>
      `suspend ${describe(item.flux)} (${item.flux.apiVersion})${item.fluxWasSuspended ? " [already suspended]" : ""}`),
    ...[...plan.sources, ...plan.kustomizations].map((item) =>
      `create ${describe(item.ferry)} (${item.ferry.apiVersion})${item.kind === "Kustomization" ? `, inventory of ${item.inventory.length} object(s) handed over` : ""}`),
  ];
  process.stdout.write(`${lines.join("\n")}\n`);
  // Offline, so it works without a cluster (CI checks of a repository); the cluster's status is what a run goes by.
  if (filesOnly) status("⚠", "planned from the files alone: inventories, suspensions and other Flux objects in the cluster were not read");
  status("✔", "dry run: nothing was changed");
  return true;
}

// ---- migration ----------------------------------------------------------------------------------------------

async function migrate(kube: KubeClient, plan: MigrationPlan, timeoutMs: number): Promise<void> {
  const api = kube.api(RawObjectApi);
  for (const item of [...plan.kustomizations, ...plan.sources]) {
    if (item.fluxWasSuspended) continue;
    status("►", `suspending Flux's ${describe(item.flux)}`);
    await kube.mergePatch(fluxType(item), item.namespace, item.name, {
      metadata: { annotations: { [SUSPENDED_BY_MIGRATE_ANNOTATION]: "true" } },
      spec: { suspend: true },
    });
  }
  for (const item of plan.sources) {
    status("►", `creating ${describe(item.ferry)}`);
    await createOrKeep(kube, item.ferry);
  }
  for (const item of plan.kustomizations) {
    const inventory = await settledInventory(kube, item, timeoutMs === 0 ? 0 : Date.now() + timeoutMs);
    await migrateKustomization(kube, api, { ...item, inventory });
  }
  status("✔", `migrated ${plan.kustomizations.length} Kustomization(s) and ${plan.sources.length} OCIRepositor${plan.sources.length === 1 ? "y" : "ies"}; Flux's are suspended`);
}

/**
 * Flux's inventory once Flux is done: a reconcile already running when the suspension landed finishes (and may write
 * a newer inventory) before kustomize-controller honours it, so the inventory is read again after the Reconciling
 * condition is gone rather than taken from the listing the plan was made from.
 */
async function settledInventory(kube: KubeClient, item: MigrationItem, deadline: number): Promise<readonly InventoryEntryType[]> {
  const live = await settled(kube, FLUX_KUSTOMIZATION, item.flux, deadline, "kustomize-controller");
  if (!live) return item.inventory;
  const refusals: string[] = [];
  const inventory = carriedInventory({ ...live, kind: "Kustomization" }, refusals);
  if (refusals.length > 0) throw new MigrationRefused(refusals);
  return inventory;
}

type WithConditions = DeliveryObject & { status?: { conditions?: Array<{ type: string; status: string; reason?: string }> } };

/**
 * The object once no reconcile is in flight: Flux and Ferry both say Reconciling=True, reason Progressing, while
 * one runs (ProgressingWithRetry only means a retry is scheduled, which the suspension cancels).
 */
async function settled(kube: KubeClient, type: ResourceType, object: DeliveryObject, deadline: number, controller: string) {
  for (;;) {
    const live = await kube.get<WithConditions>(type, object.metadata.namespace ?? "default", object.metadata.name);
    const inFlight = live?.status?.conditions?.some((condition) =>
      condition.type === "Reconciling" && condition.status === "True" && condition.reason === "Progressing");
    if (!inFlight || deadline === 0) return live;
    if (Date.now() > deadline) {
      throw new MigrationBlocked(`${describe(object)} is still reconciling (${controller}); it is suspended: run ferry migrate again to finish `
        + "(--force if the controller is gone and the condition is stale)");
    }
    status("◎", `waiting for ${controller} to finish reconciling ${describe(object)}`);
    await sleep(2_000);
  }
}

/** Created suspended, so nothing reconciles it before it holds Flux's inventory and owns Flux's objects. */
async function migrateKustomization(kube: KubeClient, api: RawObjectApi, item: MigrationItem): Promise<void> {
  const current = await kube.get<DeliveryObject>(KUSTOMIZATION, item.namespace, item.name);
  if (current?.metadata.annotations?.[MIGRATED_FROM_ANNOTATION] !== undefined && current.spec?.suspend !== true) {
    // A finished earlier run: Ferry has reconciled since, and Flux's older inventory must not replace Ferry's.
    status("✔", `${describe(item.ferry)} was already migrated and is Ferry's`);
    return;
  }
  status("►", `creating ${describe(item.ferry)} (suspended) with Flux's inventory of ${item.inventory.length} object(s)`);
  await createOrKeep(kube, { ...item.ferry, spec: { ...item.ferry.spec, suspend: true } });
  await kube.patchStatus(KUSTOMIZATION, item.namespace, item.name, { inventory: { entries: item.inventory } });
  const handed = await handOverInventory(api, item.inventory, item, FLUX_OWNER, FERRY_OWNER);
  status("✔", `${handed} object(s) handed from kustomize-controller to Ferry`);
  if (item.fluxWasSuspended) {
    status("⚠", `${describe(item.ferry)} stays suspended, as Flux's was`);
    return;
  }
  // null removes the field when Flux's spec did not have it; a present false is kept.
  await kube.mergePatch(KUSTOMIZATION, item.namespace, item.name, { spec: { suspend: item.flux.spec?.suspend === false ? false : null } });
  status("✔", `${describe(item.ferry)} resumed: Ferry reconciles it from now on`);
}

/** An object a previous, interrupted run created is kept (re-running finishes the job); anything else is refused. */
async function createOrKeep(kube: KubeClient, object: DeliveryObject): Promise<void> {
  const namespace = object.metadata.namespace ?? "default";
  const current = await kube.get<DeliveryObject>(ferryType(object), namespace, object.metadata.name);
  if (current) {
    if (current.metadata.annotations?.[MIGRATED_FROM_ANNOTATION] === undefined) {
      throw new MigrationBlocked(`${describe(object)} already exists in Ferry's API and was not written by ferry migrate`);
    }
    if (object.kind === "Kustomization") await kube.mergePatch(KUSTOMIZATION, namespace, object.metadata.name, { spec: { suspend: true } });
    return;
  }
  await kube.create(ferryType(object), namespace, object);
}

async function handOverInventory(
  api: RawObjectApi,
  inventory: readonly InventoryEntryType[],
  kustomization: { namespace: string; name: string },
  from: Owner,
  to: Owner,
): Promise<number> {
  let handed = 0;
  for (const entry of inventory) {
    const outcome = await handOverObject(api, entry, kustomization, from, to);
    if (outcome === true) handed += 1;
    else if (outcome) status("⚠", `${entry.id}: ${outcome}`);
  }
  return handed;
}

/** True when handed over; a reason when left alone; undefined when the object no longer exists. */
async function handOverObject(
  api: RawObjectApi,
  entry: InventoryEntryType,
  kustomization: { namespace: string; name: string },
  from: Owner,
  to: Owner,
): Promise<true | string | undefined> {
  const ref = parseEntry(entry);
  const metadata = { name: ref.name, ...(ref.namespace ? { namespace: ref.namespace } : {}) };
  const target: ObjectKey = { apiVersion: ref.apiVersion, kind: ref.kind, metadata };
  for (let attempt = 1; ; attempt++) {
    const live = await api.read(target as never).catch((error: unknown) => {
      if (httpStatusOf(error) === 404) return undefined;
      throw error;
    }) as unknown as LiveObject | undefined;
    if (!live) return undefined;
    const handover = handOver(live, kustomization, from, to);
    if ("skipped" in handover) return `left alone: ${handover.skipped}`;
    try {
      const patched = await api.jsonPatch(target, handover.patch) as LiveObject;
      await absorbMigrateManager(api, target, patched, to);
      return true;
    } catch (error) {
      // A failed resourceVersion test (422) or conflict (409) means someone wrote in between: read again.
      const code = httpStatusOf(error);
      if ((code !== 409 && code !== 422) || attempt >= HANDOVER_ATTEMPTS) throw error;
    }
  }
}

/** Best effort: a writer in between only means the harmless Update entry of ferry-migrate stays. */
async function absorbMigrateManager(api: RawObjectApi, target: ObjectKey, patched: LiveObject, to: Owner): Promise<void> {
  const managedFields = absorbMigrateEntry(patched.metadata.managedFields, to, patched.apiVersion);
  if (!managedFields) return;
  const patch = [
    { op: "test", path: "/metadata/resourceVersion", value: patched.metadata.resourceVersion },
    { op: "replace", path: "/metadata/managedFields", value: managedFields },
  ];
  await api.jsonPatch(target, patch).catch((error: unknown) => {
    const code = httpStatusOf(error);
    if (code !== 409 && code !== 422) throw error;
  });
}

// ---- rollback -----------------------------------------------------------------------------------------------

/** Back to Flux: Ferry's objects suspended, the applied objects handed back, Ferry's deleted orphaning, Flux's resumed. */
async function rollback(values: Values): Promise<boolean> {
  const kube = kubeClient(values);
  const api = kube.api(RawObjectApi);
  const namespace = values["all-namespaces"] ? undefined : (values.namespace ?? kube.defaultNamespace());
  const migrated = async (type: ResourceType) => (await listOrEmpty<DeliveryObject>(kube, type, namespace))
    .filter((object) => object.metadata.annotations?.[MIGRATED_FROM_ANNOTATION] !== undefined)
    .filter((object) => !values.name?.length || values.name.includes(object.metadata.name));
  const kustomizations = (await migrated(KUSTOMIZATION)).map((object) => ({ ...object, kind: "Kustomization" }));
  const sources = (await migrated(OCI_REPOSITORY)).map((object) => ({ ...object, kind: "OCIRepository" }));
  if (kustomizations.length + sources.length === 0) {
    status("✔", "no Ferry object written by ferry migrate in scope; nothing to roll back");
    return true;
  }
  if (values["dry-run"]) {
    for (const object of [...kustomizations, ...sources]) process.stdout.write(`delete ${describe(object)} (orphaning its objects), resume Flux's\n`);
    status("✔", "dry run: nothing was changed");
    return true;
  }
  const deadline = Date.now() + parseDuration(values.timeout ?? "5m", "--timeout");
  for (const object of kustomizations) await rollBackKustomization(kube, api, object, deadline);
  for (const object of sources) await deleteOrphaning(kube, api, object);
  for (const object of [...sources, ...kustomizations]) await resumeFlux(kube, object);
  status("✔", `rolled back ${kustomizations.length} Kustomization(s) and ${sources.length} OCIRepositor${sources.length === 1 ? "y" : "ies"} to Flux`);
  return true;
}

async function rollBackKustomization(kube: KubeClient, api: RawObjectApi, object: DeliveryObject, deadline: number): Promise<void> {
  const { name } = object.metadata;
  const namespace = object.metadata.namespace ?? "default";
  status("►", `suspending ${describe(object)} (deletionPolicy Orphan)`);
  await kube.mergePatch(KUSTOMIZATION, namespace, name, { spec: { suspend: true, deletionPolicy: "Orphan" } });
  // A reconcile in flight would relabel what is handed back; and what Ferry applied since the migration is Flux's to
  // prune from now on.
  const inventory = (await settled(kube, KUSTOMIZATION, object, deadline, "ferry controller"))?.status?.inventory?.entries ?? [];
  if (await kube.get(FLUX_KUSTOMIZATION, namespace, name)) {
    await kube.patchStatus(FLUX_KUSTOMIZATION, namespace, name, { inventory: { entries: inventory } });
  }
  const handed = await handOverInventory(api, inventory, { namespace, name }, FERRY_OWNER, FLUX_OWNER);
  status("✔", `${handed} object(s) handed back to kustomize-controller`);
  await deleteOrphaning(kube, api, object);
}

/** Suspended and orphaning, so the finalizer would do nothing: it is removed rather than waited for. */
async function deleteOrphaning(kube: KubeClient, api: RawObjectApi, object: DeliveryObject): Promise<void> {
  const type = ferryType(object);
  const namespace = object.metadata.namespace ?? "default";
  await kube.mergePatch(type, namespace, object.metadata.name, { spec: { suspend: true } });
  type Meta = { metadata: { name: string; namespace: string; resourceVersion?: string; finalizers?: string[] } };
  const current = await kube.get<Meta>(type, namespace, object.metadata.name);
  if (!current) return;
  if (current.metadata.finalizers?.length) await kube.setFinalizers(type, current.metadata, []);
  status("►", `deleting ${describe(object)}`);
  await api.delete({ apiVersion: `${type.group}/${type.version}`, kind: object.kind, metadata: { name: object.metadata.name, namespace } } as never)
    .catch((error: unknown) => {
      if (httpStatusOf(error) !== 404) throw error;
    });
}

async function resumeFlux(kube: KubeClient, object: DeliveryObject): Promise<void> {
  const namespace = object.metadata.namespace ?? "default";
  const type = fluxType(object);
  if (!(await kube.get(type, namespace, object.metadata.name))) {
    status("⚠", `Flux's ${describe(object)} no longer exists; not resumed`);
    return;
  }
  if (object.metadata.annotations?.[FLUX_WAS_SUSPENDED_ANNOTATION] === "true") {
    status("⚠", `Flux's ${describe(object)} stays suspended, as it was before the migration`);
    return;
  }
  status("►", `resuming Flux's ${describe(object)}`);
  await kube.mergePatch(type, namespace, object.metadata.name, {
    metadata: { annotations: { [FLUX_REQUESTED_AT]: new Date().toISOString(), [SUSPENDED_BY_MIGRATE_ANNOTATION]: null } },
    spec: { suspend: false },
  });
}

// ---- the generic object API ---------------------------------------------------------------------------------

/**
 * client-node's generic API reads built-in kinds through its typed models, which drop fields they do not name
 * (managedFields survive, but not every CRD field does); objects travel as plain JSON here, as in the applier.
 */
interface ObjectKey {
  apiVersion: string;
  kind: string;
  metadata: { name: string; namespace?: string };
}

class RawObjectApi extends KubernetesObjectApi {
  protected override async processResponse<T extends KubernetesObject>(response: ResponseContext): Promise<T> {
    if (response.httpStatusCode >= 200 && response.httpStatusCode <= 299) return JSON.parse(await response.body.text()) as T;
    throw new ApiException(response.httpStatusCode, "Unsuccessful HTTP Request", await response.getBodyAsAny(), response.headers);
  }

  async jsonPatch(object: ObjectKey, operations: readonly unknown[]): Promise<unknown> {
    const context = this.configuration.baseServer.makeRequestContext(await this.specUriPath(object as KubernetesObject, "patch"), HttpMethod.PATCH);
    context.setHeaderParam("Accept", "application/json");
    context.setHeaderParam("Content-Type", PatchStrategy.JsonPatch);
    context.setQueryParam("fieldManager", MIGRATE_FIELD_MANAGER);
    context.setBody(JSON.stringify(operations));
    return this.requestPromise(context);
  }
}
