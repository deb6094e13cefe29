// `ferry install`: applies everything the controller needs in a cluster (src/install/manifests.ts) with server-side
// apply and waits until the controller is Available; `--export` prints the YAML instead, for users who apply it
// with their own tools or keep it in a repository.
import { setTimeout as sleep } from "node:timers/promises";
import { AppsV1Api, CoreV1Api } from "@kubernetes/client-node";
import yaml from "js-yaml";
import { Applier } from "../../src/apply/apply.ts";
import { computeHealth } from "../../src/health/kstatus.ts";
import { isLogLevel, LOG_LEVELS } from "../../src/controller/log.ts";
import {
  controllerName, DEFAULT_NAMESPACE, type InstallOptions, installManifests, MAX_SHARDS, otherInstallNamespaces, PART_OF_LABEL,
  SHARD_KEY_LABEL, SHARD_LABEL, shardNames,
} from "../../src/install/manifests.ts";
import { CUSTOM_RESOURCES } from "../../src/install/uninstall.ts";
import { httpStatusOf, type KubeClient } from "../../src/kube/client.ts";
import { BOOTSTRAP_NAME } from "../../src/install/bootstrap.ts";
import { OCI_REPOSITORY } from "../../src/reconcilers/ocirepository.ts";
import { FERRY_VERSION } from "../../src/version.ts";
import type { ManifestObject } from "../../src/kustomize/build.ts";
import { type Disposition, FerryError } from "../../src/errors.ts";
import { UsageError } from "../errors.ts";
import { parse, parseDuration } from "../flags.ts";
import { kubeClient } from "../kube.ts";
import { status } from "../output.ts";

/** What install and bootstrap both take: how the controller is installed. */
export const COMPONENT_OPTIONS = {
  namespace: { type: "string", short: "n" },
  version: { type: "string" },
  image: { type: "string" },
  registry: { type: "string" },
  "image-pull-secret": { type: "string" },
  "multi-tenant": { type: "boolean" },
  "network-policy": { type: "boolean" },
  "memory-limit-mib": { type: "string" },
  "watch-all-namespaces": { type: "boolean" },
  "log-level": { type: "string" },
  shards: { type: "string" },
  "cache-volume-size": { type: "string" },
  "tmp-volume-size": { type: "string" },
} as const;

const INSTALL_OPTIONS = {
  ...COMPONENT_OPTIONS,
  export: { type: "boolean" },
  force: { type: "boolean" },
  kubeconfig: { type: "string" },
  timeout: { type: "string" },
} as const;

type ComponentValues = { [K in keyof typeof COMPONENT_OPTIONS]?: (typeof COMPONENT_OPTIONS)[K]["type"] extends "boolean" ? boolean : string };

/**
 * The install's manifests are generated from this CLI's own schemas, so a CLI installs its own version: another
 * version's CRDs and controller come from that version's CLI (`npx ferry@0.2.0 install`).
 */
function checkVersion(requested: string | undefined): void {
  if (requested === undefined || requested.replace(/^v/, "") === FERRY_VERSION) return;
  throw new UsageError(`this ferry CLI installs v${FERRY_VERSION}, not ${requested}: run the CLI of that version to install it`);
}

/** The install options the flags ask for, checked. */
export function componentOptions(values: ComponentValues): InstallOptions {
  checkVersion(values.version);
  const memoryLimitMiB = values["memory-limit-mib"] === undefined ? undefined : Number(values["memory-limit-mib"]);
  if (memoryLimitMiB !== undefined && !(Number.isInteger(memoryLimitMiB) && memoryLimitMiB >= 256)) {
    throw new UsageError("--memory-limit-mib must be a whole number of MiB, at least 256");
  }
  const shards = values.shards === undefined ? undefined : Number(values.shards);
  if (shards !== undefined && (!(Number.isInteger(shards) && shards >= 0 && shards <= MAX_SHARDS) || values.shards?.trim() === "")) {
    throw new UsageError(`--shards must be a whole number from 0 to ${MAX_SHARDS}`);
  }
  const volumeSize = (flag: "cache-volume-size" | "tmp-volume-size") => {
    const size = values[flag];
    if (size !== undefined && !/^(0|[1-9][0-9]*(Ki|Mi|Gi|Ti))$/.test(size)) {
      throw new UsageError(`--${flag} must be a size such as 8Gi (Ki, Mi, Gi or Ti), or 0 for no limit, not "${size}"`);
    }
    return size;
  };
  const [cacheVolumeSize, tmpVolumeSize] = [volumeSize("cache-volume-size"), volumeSize("tmp-volume-size")];
  const logLevel = values["log-level"];
  if (logLevel !== undefined && !isLogLevel(logLevel)) throw new UsageError(`--log-level must be one of ${LOG_LEVELS.join(", ")}, not "${logLevel}"`);
  return {
    namespace: values.namespace ?? DEFAULT_NAMESPACE,
    ...(values.image ? { image: values.image } : {}),
    ...(values.registry ? { registry: values.registry.replace(/\/+$/, "") } : {}),
    ...(values["image-pull-secret"] ? { imagePullSecret: values["image-pull-secret"] } : {}),
    multiTenant: values["multi-tenant"] ?? false,
    networkPolicy: values["network-policy"] ?? true,
    watchAllNamespaces: values["watch-all-namespaces"] ?? true,
    ...(logLevel ? { logLevel } : {}),
    ...(memoryLimitMiB ? { memoryLimitMiB } : {}),
    ...(shards ? { shards } : {}),
    ...(cacheVolumeSize ? { cacheVolumeSize } : {}),
    ...(tmpVolumeSize ? { tmpVolumeSize } : {}),
  };
}

export function manifestsYaml(objects: readonly object[]): string {
  return objects.map((object) => yaml.dump(object, { lineWidth: -1, noRefs: true })).join("---\n");
}

export async function installCommand(args: readonly string[]): Promise<void> {
  const { values } = parse(args, INSTALL_OPTIONS);
  const options = componentOptions(values);
  const timeoutMs = parseDuration(values.timeout ?? "5m", "--timeout");
  const objects = installManifests(options);
  if (values.export) {
    process.stdout.write(manifestsYaml(objects));
    return;
  }
  const kube = kubeClient(values);
  const namespace = options.namespace ?? DEFAULT_NAMESPACE;
  if (!values.force) await refuseSecondInstall(kube, namespace);
  if (!values.force) await refuseForeignNamespace(kube, namespace);
  if (!values.force) await refuseBootstrapped(kube, namespace);
  const applier = new Applier(kube);
  await applyInstall(applier, objects, namespace, timeoutMs, async () => {
    await deleteRemovedShards(kube, namespace, options.shards ?? 0);
  });
  await warnUnservedShards(kube, options);
  status("✔", "install finished");
}

/**
 * Shard Deployments of an earlier install with more shards (--shards lowered, or left out): deleted, so that two
 * installs' worth of shards do not linger. Their objects are then reconciled by no controller until relabelled.
 */
async function deleteRemovedShards(kube: KubeClient, namespace: string, shards: number): Promise<void> {
  const apps = kube.api(AppsV1Api);
  const wanted = new Set(shardNames(shards));
  const existing = await apps.listNamespacedDeployment({ namespace, labelSelector: `${PART_OF_LABEL}=ferry,${SHARD_LABEL}` });
  for (const deployment of existing.items) {
    const shard = deployment.metadata?.labels?.[SHARD_LABEL] ?? "";
    if (wanted.has(shard) || deployment.metadata?.name !== controllerName(shard)) continue;
    await apps.deleteNamespacedDeployment({ namespace, name: deployment.metadata.name, propagationPolicy: "Background" });
    status("✔", `Deployment/${namespace}/${deployment.metadata.name} deleted (shard ${shard} is no longer installed)`);
  }
}

/**
 * Says which objects are labelled for a shard this install does not run: no controller reconciles them (the main
 * one takes only unlabelled objects, and only when there are shards; without shards it takes everything).
 */
async function warnUnservedShards(kube: KubeClient, options: InstallOptions): Promise<void> {
  if (!options.shards) return;
  const installed = new Set(shardNames(options.shards));
  for (const type of CUSTOM_RESOURCES) {
    type Labelled = { metadata: { namespace: string; name: string; labels?: Record<string, string> } };
    // A CRD created moments ago answers 429 while its storage initialises: retried briefly; the warning is advice,
    // so an install is never failed for want of it.
    let items: Labelled[] | undefined;
    for (let attempt = 0; items === undefined && attempt < 20; attempt++) {
      items = await kube.list<Labelled>(type, undefined, SHARD_KEY_LABEL).then((list) => list.items, async (error: unknown) => {
        if (httpStatusOf(error) !== 429) throw error;
        await sleep(500);
        return undefined;
      });
    }
    for (const item of items ?? []) {
      const shard = item.metadata.labels?.[SHARD_KEY_LABEL] ?? "";
      if (!installed.has(shard)) {
        status("⚠", `${type.kind} ${item.metadata.namespace}/${item.metadata.name} is labelled ${SHARD_KEY_LABEL}=${shard}, a shard this install does not run: no controller reconciles it`);
      }
    }
  }
}

/** Ferry already runs in another namespace of the cluster; --force installs beside it. */
export class InstallConflictError extends FerryError {
  readonly code = "INSTALL_CONFLICT";
  readonly disposition: Disposition = "stall";
}

/**
 * Two installs share the CRDs, and two controllers watching all namespaces would both reconcile (and prune for)
 * every Kustomization: a second install is refused before anything is applied, unless --force says it is meant.
 */
export async function refuseSecondInstall(kube: KubeClient, namespace: string): Promise<void> {
  const deployments = await kube.api(AppsV1Api).listDeploymentForAllNamespaces({ labelSelector: `${PART_OF_LABEL}=ferry` });
  const others = otherInstallNamespaces(deployments.items, namespace);
  if (others.length === 0) return;
  throw new InstallConflictError(`Ferry is already installed in namespace ${others.join(", ")}: a second install in ${namespace} would share `
    + "its CRDs, and two controllers watching all namespaces would both reconcile every Kustomization; pass --force to install anyway");
}

/**
 * The install labels its namespace part-of=ferry and enforces the restricted Pod Security Standard there, and
 * uninstall deletes a namespace so labelled: installing into a namespace Ferry did not create would break the pods
 * already in it and have uninstall delete them. Refused unless --force.
 */
export async function refuseForeignNamespace(kube: KubeClient, namespace: string): Promise<void> {
  const existing = await kube.api(CoreV1Api).readNamespace({ name: namespace }).catch((error: { code?: number }) => {
    if (error.code === 404) return undefined;
    throw error;
  });
  if (!existing || existing.metadata?.labels?.[PART_OF_LABEL] === "ferry") return;
  throw new InstallConflictError(`namespace ${namespace} exists and was not created by Ferry: the install would enforce the restricted Pod `
    + `Security Standard on what runs there, and ferry uninstall would delete it; use a namespace of its own, or pass --force`);
}

/**
 * A bootstrapped install is the controller's to change: it applies Ferry's manifests from the artifact, and the CLI
 * applies with the same field manager, so an install over it would strip what bootstrap marks (prune: disabled on
 * the namespace and CRDs) and be reverted to the artifact's version at the controller's next reconcile.
 */
async function refuseBootstrapped(kube: KubeClient, namespace: string): Promise<void> {
  const source = await kube.get<{ spec: { url: string } }>(OCI_REPOSITORY, namespace, BOOTSTRAP_NAME);
  if (!source) return;
  throw new InstallConflictError(`Ferry in namespace ${namespace} was bootstrapped and upgrades itself from ${source.spec.url} `
    + `(OCIRepository ${namespace}/${BOOTSTRAP_NAME}): the controller would revert an install to the artifact's manifests; `
    + "re-run ferry bootstrap with the new flags instead, or pass --force to install anyway");
}

/** Applies an install (staged: namespace and CRDs first) and waits until the controller is Available. */
export async function applyInstall(
  applier: Applier,
  objects: readonly object[],
  namespace: string,
  timeoutMs: number,
  afterApply?: () => Promise<void>,
): Promise<void> {
  status("►", `installing components in ${namespace} namespace`);
  const { changes } = await applier.apply(objects as ManifestObject[], { timeoutMs });
  for (const change of changes) status("✔", `${change.subject} ${change.action}`);
  await afterApply?.();
  status("◎", "verifying installation");
  // The main controller and every shard's.
  const controllers = (objects as ManifestObject[]).filter((object) => object.kind === "Deployment").map((object) => object.metadata.name);
  const deadline = Date.now() + timeoutMs;
  for (const name of controllers) await waitUntilAvailable(applier, namespace, name, deadline);
}

/** The controller was installed but did not become Available (or failed) in time. */
class ControllerNotAvailableError extends FerryError {
  readonly code = "CONTROLLER_NOT_AVAILABLE";
  readonly disposition: Disposition = "retry";
}

/** Polls a controller Deployment until kstatus calls it Current; a Failed one or the timeout is an error. */
async function waitUntilAvailable(applier: Applier, namespace: string, name: string, deadline: number): Promise<void> {
  const ref = { apiVersion: "apps/v1", kind: "Deployment", namespace, name };
  for (;;) {
    const health = computeHealth(await applier.read(ref));
    if (health.status === "Current") return;
    if (health.status === "Failed" || Date.now() > deadline) {
      throw new ControllerNotAvailableError(`the controller Deployment ${namespace}/${name} is not Available: ${health.message}`);
    }
    await sleep(1_000);
  }
}
