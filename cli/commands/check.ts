// `ferry check [--pre]`: before installing, whether the cluster is new enough and the caller may install Ferry;
// after, whether the install is healthy (CRDs, controller, versions, leader). What it concludes is decided in
// src/install/check.ts; here the cluster is read.
import { AppsV1Api, AuthorizationV1Api, VersionApi } from "@kubernetes/client-node";
import { Applier } from "../../src/apply/apply.ts";
import { mapBounded } from "../../src/concurrency.ts";
import {
  accessKey, accessQuestions, type AccessAttributes, checkKubernetesVersion, type CheckResult, CRD_NAMES, evaluateInstall,
  evaluatePermissions, installRequirements, type InstallReport,
} from "../../src/install/check.ts";
import { DEFAULT_NAMESPACE, installManifests } from "../../src/install/manifests.ts";
import { controllerLeaseName, type ShardObservation } from "../../src/install/check.ts";
import { controllerName } from "../../src/install/manifests.ts";
import { controllerRef, SHARD_DEPLOYMENT_SELECTOR, shardsOf } from "../../src/install/uninstall.ts";
import type { KubeClient } from "../../src/kube/client.ts";
import { FERRY_VERSION } from "../../src/version.ts";
import { parse } from "../flags.ts";
import { KUBE_OPTIONS, kubeClient } from "../kube.ts";
import { type OutputFormat, parseOutputFormat, printStructured, status } from "../output.ts";

const CHECK_OPTIONS = {
  ...KUBE_OPTIONS,
  pre: { type: "boolean" },
  "multi-tenant": { type: "boolean" },
  output: { type: "string", short: "o" },
} as const;

export interface PreflightReport {
  readonly ok: boolean;
  readonly kubernetesVersion: string;
  readonly checks: readonly CheckResult[];
}

/** The server's gitVersion, with an error that says which cluster could not be reached. */
export async function serverVersion(kube: KubeClient): Promise<string> {
  const server = kube.config.getCurrentCluster()?.server ?? "(no server)";
  try {
    return (await kube.api(VersionApi).getCode()).gitVersion;
  } catch (error) {
    throw new Error(`cannot reach the Kubernetes API server at ${server}: ${(error as Error).message}`, { cause: error });
  }
}

async function reviewAccess(kube: KubeClient, questions: readonly AccessAttributes[]): Promise<Map<string, boolean>> {
  const api = kube.api(AuthorizationV1Api);
  const answers = await mapBounded(questions, async (resourceAttributes) => {
    const body = { apiVersion: "authorization.k8s.io/v1", kind: "SelfSubjectAccessReview", spec: { resourceAttributes } };
    return (await api.createSelfSubjectAccessReview({ body })).status?.allowed === true;
  });
  return new Map(questions.map((question, index) => [accessKey(question), answers[index] === true]));
}

/**
 * SelfSubjectAccessReviews rather than a SelfSubjectRulesReview: rules reviews are incomplete for webhook
 * authorizers (as on managed clusters), and an access review asks the authorizer the question the install will.
 */
async function preflight(kube: KubeClient, namespace: string, multiTenant: boolean): Promise<PreflightReport> {
  return preflightFor(kube, installManifests({ namespace, multiTenant }));
}

/** Whether the cluster is new enough and the caller may apply `objects` as an install does; shared with bootstrap. */
export async function preflightFor(kube: KubeClient, objects: readonly object[]): Promise<PreflightReport> {
  const kubernetesVersion = await serverVersion(kube);
  const requirements = installRequirements(objects);
  const allowed = await reviewAccess(kube, accessQuestions(requirements));
  const checks = [checkKubernetesVersion(kubernetesVersion), ...evaluatePermissions(requirements, allowed)];
  return { ok: checks.every((check) => check.ok), kubernetesVersion, checks };
}

/** Reads what `ferry check` judges; shared with `ferry version`, which reports the same versions. */
export async function readInstall(kube: KubeClient, namespace: string): Promise<InstallReport> {
  const applier = new Applier(kube);
  const crd = (name: string) => applier.read({ apiVersion: "apiextensions.k8s.io/v1", kind: "CustomResourceDefinition", name });
  const lease = (name: string | undefined) => (name ? applier.read({ apiVersion: "coordination.k8s.io/v1", kind: "Lease", namespace, name }) : undefined);
  const [crds, deployment, shardDeployments] = await Promise.all([
    Promise.all(CRD_NAMES.map(async (name) => [name, await crd(name)] as const)),
    applier.read(controllerRef(namespace)),
    kube.api(AppsV1Api).listNamespacedDeployment({ namespace, labelSelector: SHARD_DEPLOYMENT_SELECTOR }),
  ]);
  // Each controller's Lease is named after its --watch-label-selector (a sharded install's main controller too).
  const shards: ShardObservation[] = await Promise.all(shardsOf(shardDeployments.items).map(async (shard) => {
    const live = shardDeployments.items.find((item) => item.metadata?.name === controllerName(shard));
    const leaseName = controllerLeaseName(live);
    return { name: controllerName(shard), deployment: live, leaseName, lease: await lease(leaseName) };
  }));
  const mainLease = await lease(deployment === undefined ? undefined : controllerLeaseName(deployment));
  const now = new Date();
  return evaluateInstall({ cliVersion: FERRY_VERSION, namespace, crds: new Map(crds), deployment, lease: mainLease, shards, now });
}

function printChecks(checks: readonly CheckResult[], verbose: boolean): void {
  for (const check of checks) if (verbose || !check.ok) status(check.ok ? "✔" : "✗", check.message);
}

interface Checked {
  readonly ok: boolean;
  readonly checks: readonly CheckResult[];
}

async function report(format: OutputFormat, value: Checked, pre: boolean): Promise<boolean> {
  if (format !== "text") {
    await printStructured(format, value);
    return value.ok;
  }
  // Permissions are many questions: their failures are named one by one, their success summed up in a line.
  const permissions = value.checks.filter((check) => check.name === "permission");
  printChecks(value.checks.filter((check) => check.name !== "permission"), true);
  printChecks(permissions, false);
  if (permissions.length > 0 && permissions.every((check) => check.ok)) status("✔", `can install Ferry (${permissions.length} permissions checked)`);
  const failed = value.checks.filter((check) => !check.ok).length;
  const what = pre ? "prerequisites checks" : "all checks";
  status(value.ok ? "✔" : "✗", value.ok ? `${what} passed` : `${failed} ${failed === 1 ? "check" : "checks"} failed`);
  return value.ok;
}

export async function checkCommand(args: readonly string[]): Promise<boolean> {
  const { values } = parse(args, CHECK_OPTIONS);
  const format = parseOutputFormat(values.output);
  const namespace = values.namespace ?? DEFAULT_NAMESPACE;
  const kube = kubeClient(values);
  if (values.pre) {
    if (format === "text") status("►", "checking prerequisites");
    return report(format, await preflight(kube, namespace, values["multi-tenant"] ?? false), true);
  }
  if (format === "text") status("►", `checking the Ferry install in namespace ${namespace}`);
  const kubernetesVersion = await serverVersion(kube);
  const install = await readInstall(kube, namespace);
  const checks = [checkKubernetesVersion(kubernetesVersion), ...install.checks];
  const full = { ...install, ok: checks.every((check) => check.ok), kubernetesVersion, checks };
  return report(format, full, false);
}
