// `ferry uninstall`: removes Ferry from a cluster and leaves everything Ferry applied in place. The order and why
// it is safe are in src/install/uninstall.ts; here the requests are made and waited for.
import { createInterface } from "node:readline/promises";
import { setTimeout as sleep } from "node:timers/promises";
import { AppsV1Api, CoreV1Api, CustomObjectsApi, KubernetesObjectApi, PatchStrategy, setHeaderOptions } from "@kubernetes/client-node";
import { Applier } from "../../src/apply/apply.ts";
import { type Disposition, FerryError } from "../../src/errors.ts";
import { DEFAULT_NAMESPACE, otherInstallNamespaces, PART_OF_LABEL } from "../../src/install/manifests.ts";
import {
  CONTROLLER_POD_SELECTOR, controllerRef, CUSTOM_RESOURCES, deliversThisInstall, describeInventory, installObjects, nothingToUninstall,
  ownedByFerry, releasePatch, released, SHARD_DEPLOYMENT_SELECTOR, shardsOf, type UninstallInventory,
} from "../../src/install/uninstall.ts";
import type { ObjectRef } from "../../src/inventory/inventory.ts";
import { httpStatusOf, type KubeClient, type ObjectMeta, type ResourceType } from "../../src/kube/client.ts";
import { UsageError } from "../errors.ts";
import { parse, parseDuration } from "../flags.ts";
import { KUBE_OPTIONS, kubeClient } from "../kube.ts";
import { status } from "../output.ts";
import { serverVersion } from "./check.ts";

const UNINSTALL_OPTIONS = {
  ...KUBE_OPTIONS,
  "keep-namespace": { type: "boolean" },
  silent: { type: "boolean", short: "s" },
  "dry-run": { type: "boolean" },
} as const;

/** Something did not go away within --timeout (another finalizer holds it, or the cluster is slow). */
class UninstallTimeoutError extends FerryError {
  readonly code = "UNINSTALL_TIMEOUT";
  readonly disposition: Disposition = "retry";
}

interface Context {
  readonly kube: KubeClient;
  readonly applier: Applier;
  readonly custom: CustomObjectsApi;
  readonly objects: KubernetesObjectApi;
  readonly namespace: string;
  readonly deadline: number;
  /**
   * Where step 2 releases Kustomizations and OCIRepositories: everywhere (undefined) when the CRDs go; with another
   * install keeping them, only in this install's namespace, and of those with --keep-namespace only the ones that
   * deliver this install (releaseOnly; the rest stay for the other controller).
   */
  releaseIn?: string;
  releaseOnly?: (object: CustomObject) => boolean;
}

type CustomObject = { metadata: ObjectMeta & { name: string }; spec?: { suspend?: boolean } };
const describeRef = (ref: ObjectRef) => `${ref.kind} ${ref.namespace ? `${ref.namespace}/` : ""}${ref.name}`;

async function waitUntil(context: Context, what: string, done: () => Promise<boolean>): Promise<void> {
  while (!(await done())) {
    if (Date.now() > context.deadline) throw new UninstallTimeoutError(`timed out waiting until ${what}`);
    await sleep(500);
  }
}

/** Every Kustomization and OCIRepository to release; none when the CRD is gone (a half-finished earlier run). */
async function listCustomObjects(context: Context, type: ResourceType): Promise<CustomObject[]> {
  try {
    const items = (await context.kube.list<CustomObject>(type, context.releaseIn)).items;
    return context.releaseOnly ? items.filter(context.releaseOnly) : items;
  } catch (error) {
    if (httpStatusOf(error) === 404) return [];
    throw error;
  }
}

/** Namespaces where another install's controller runs (see otherInstallNamespaces). */
async function otherInstalls(context: Context): Promise<string[]> {
  const deployments = await context.kube.api(AppsV1Api).listDeploymentForAllNamespaces({ labelSelector: `${PART_OF_LABEL}=ferry` });
  return otherInstallNamespaces(deployments.items, context.namespace);
}

/** What there is to uninstall; sets context.releaseIn, which depends on whether Ferry is installed elsewhere too. */
async function survey(context: Context, keepNamespace: boolean): Promise<UninstallInventory> {
  const controller = (await context.applier.read(controllerRef(context.namespace))) !== undefined;
  const apps = context.kube.api(AppsV1Api);
  const shardDeployments = await apps.listNamespacedDeployment({ namespace: context.namespace, labelSelector: SHARD_DEPLOYMENT_SELECTOR });
  const shards = shardsOf(shardDeployments.items);
  const others = await otherInstalls(context);
  if (others.length > 0) context.releaseIn = context.namespace;
  if (others.length > 0 && keepNamespace) context.releaseOnly = deliversThisInstall;
  const lists = await Promise.all(CUSTOM_RESOURCES.map((type) => listCustomObjects(context, type)));
  const candidates = installObjects(context.namespace, { keepNamespace, keepCrds: others.length > 0 });
  const live = await Promise.all(candidates.map((ref) => context.applier.read(ref)));
  const owned = candidates.filter((_, index) => ownedByFerry(live[index]));
  return { controller, shards, otherInstalls: others, customObjects: lists.flat().length, installObjects: owned };
}

async function confirm(lines: readonly string[]): Promise<boolean> {
  process.stderr.write(`This deletes from the cluster:\n${lines.map((line) => `  ${line}\n`).join("")}`);
  const prompt = createInterface({ input: process.stdin, output: process.stderr });
  try {
    return /^y(es)?$/i.test((await prompt.question("Are you sure you want to uninstall Ferry? [y/N] ")).trim());
  } finally {
    prompt.close();
  }
}

/**
 * Deletes the object if it carries the install's label, exactly the one read (uid precondition). Not through
 * Applier.delete: that one honours kustomize.ferry.dev/prune: disabled, which bootstrap sets on the namespace and the
 * CRDs so that no Kustomization prunes them, and uninstall must delete them all the same.
 */
async function deleteOwned(context: Context, ref: ObjectRef): Promise<void> {
  const live = (await context.applier.read(ref)) as { metadata?: { uid?: string } } | undefined;
  if (!ownedByFerry(live)) return;
  const metadata = { name: ref.name, ...(ref.namespace ? { namespace: ref.namespace } : {}) };
  const spec = { apiVersion: ref.apiVersion, kind: ref.kind, metadata };
  const body = { preconditions: { uid: live?.metadata?.uid } };
  try {
    await context.objects.delete(spec, undefined, undefined, undefined, undefined, "Background", body);
  } catch (error) {
    if (httpStatusOf(error) !== 404) throw new Error(`deleting ${describeRef(ref)} failed: ${(error as Error).message}`, { cause: error });
  }
}

/** Step 1: no controller of this install (the main one, every shard's) may act while its objects are released. */
async function deleteControllers(context: Context, shards: readonly string[]): Promise<void> {
  const refs = [controllerRef(context.namespace), ...shards.map((shard) => controllerRef(context.namespace, shard))];
  for (const ref of refs) await deleteOwned(context, ref);
  const core = context.kube.api(CoreV1Api);
  await waitUntil(context, "the controllers' pods are gone", async () => {
    const pods = await core.listNamespacedPod({ namespace: context.namespace, labelSelector: CONTROLLER_POD_SELECTOR });
    const live = await Promise.all(refs.map((ref) => context.applier.read(ref)));
    return pods.items.length === 0 && live.every((object) => object === undefined);
  });
  for (const ref of refs) status("✔", `${describeRef(ref)} deleted, its pods are gone`);
}

async function getCustom(context: Context, type: ResourceType, metadata: ObjectMeta): Promise<CustomObject | undefined> {
  return context.kube.get<CustomObject>(type, metadata.namespace, metadata.name);
}

/**
 * Suspends and releases one object, then deletes it at exactly the released resourceVersion. A 409 (someone, say
 * a controller still running, changed it in between) starts over from a fresh read.
 */
async function releaseAndDelete(context: Context, type: ResourceType, initial: CustomObject): Promise<void> {
  let object: CustomObject | undefined = initial;
  const { namespace, name } = initial.metadata;
  while (object) {
    try {
      if (!released(object)) {
        const body = releasePatch(object.metadata);
        const mergePatch = setHeaderOptions("Content-Type", PatchStrategy.MergePatch);
        object = (await context.custom.patchNamespacedCustomObject({ ...type, namespace, name, body }, mergePatch)) as CustomObject;
      }
      const preconditions = { resourceVersion: object.metadata.resourceVersion };
      await context.custom.deleteNamespacedCustomObject({ ...type, namespace, name, body: { preconditions } });
      return;
    } catch (error) {
      const code = httpStatusOf(error);
      if (code === 404) return;
      if (code !== 409 || Date.now() > context.deadline) throw error;
      object = await getCustom(context, type, initial.metadata);
    }
  }
}

/** Step 2, repeated until none is left: an object created meanwhile is released as well. */
async function releaseCustomObjects(context: Context): Promise<void> {
  await waitUntil(context, "every Kustomization and OCIRepository is deleted", async () => {
    let remaining = 0;
    for (const type of CUSTOM_RESOURCES) {
      const objects = await listCustomObjects(context, type);
      remaining += objects.length;
      for (const object of objects) {
        if (object.metadata.deletionTimestamp && released(object)) continue;
        await releaseAndDelete(context, type, object);
        status("✔", `${type.kind} ${object.metadata.namespace}/${object.metadata.name} suspended, released and deleted`);
      }
    }
    return remaining === 0;
  });
}

/** Step 3: the rest of the install, in the order the plan gives, and waits until all of it is gone. */
async function deleteInstallObjects(context: Context, refs: readonly ObjectRef[]): Promise<void> {
  for (const ref of refs) {
    await deleteOwned(context, ref);
    status("✔", `${describeRef(ref)} deleted`);
  }
  await waitUntil(context, "the install's objects are gone", async () => {
    const live = await Promise.all(refs.map((ref) => context.applier.read(ref)));
    return live.every((object) => object === undefined);
  });
}

export async function uninstallCommand(args: readonly string[]): Promise<boolean> {
  const { values } = parse(args, UNINSTALL_OPTIONS);
  // Refused before the cluster is touched: a script must say --silent rather than hang on or fail a prompt later.
  if (!values.silent && !values["dry-run"] && !process.stdin.isTTY) {
    throw new UsageError("stdin is not a terminal to confirm on: pass --silent to uninstall without asking");
  }
  const namespace = values.namespace ?? DEFAULT_NAMESPACE;
  const timeoutMs = parseDuration(values.timeout ?? "5m", "--timeout");
  const kube = kubeClient(values);
  await serverVersion(kube);
  const deadline = Date.now() + timeoutMs;
  const apis = { custom: kube.api(CustomObjectsApi), objects: kube.api(KubernetesObjectApi) };
  const context: Context = { kube, applier: new Applier(kube), ...apis, namespace, deadline };
  const inventory = await survey(context, values["keep-namespace"] ?? false);
  if (nothingToUninstall(inventory)) {
    status("✔", `nothing to uninstall: no Ferry objects found (namespace ${namespace})`);
    return true;
  }
  const lines = describeInventory(inventory, namespace);
  if (values["dry-run"]) {
    status("◎", "would delete (dry run, nothing changed):");
    for (const line of lines) process.stdout.write(`${line}\n`);
    return true;
  }
  if (!values.silent && !(await confirm(lines))) {
    status("✗", "uninstall cancelled");
    return false;
  }
  status("►", `uninstalling Ferry from namespace ${namespace}`);
  if (inventory.controller || inventory.shards?.length) await deleteControllers(context, inventory.shards ?? []);
  await releaseCustomObjects(context);
  await deleteInstallObjects(context, inventory.installObjects);
  status("✔", "uninstall finished");
  return true;
}
