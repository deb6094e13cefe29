// kstatus-compatible health of live Kubernetes objects, so Ferry's health checks and wait loops agree with what Flux
// reports for the same objects: the rules of sigs.k8s.io/cli-utils pkg/kstatus/status (status.Compute), except for
// batch Jobs, which kustomize-controller's status poller hands to its own reader (fluxcd/pkg/runtime/statusreaders:
// a running Job is InProgress, a suspended one Current, and kstatus' generic checks are skipped). The statuses agree
// with those of kstatus and of that reader case by case: test/integration/kstatus-differential.test.ts runs both on
// one table. Messages are Ferry's own. Pure: no API calls, only the JSON from GET.

// Terminating: deletionTimestamp is set. Unknown: kstatus could not read the object (a field of the wrong type).
export type HealthStatus = "Current" | "InProgress" | "Failed" | "Terminating" | "NotFound" | "Unknown";

export interface HealthResult {
  readonly status: HealthStatus;
  readonly message: string;
}

type KubeObject = Readonly<Record<string, unknown>>;

interface Condition {
  readonly type: string;
  readonly status: string;
  readonly reason: string;
  readonly message: string;
}

// `now` only matters for Pods: the scheduler gets a grace window before "Unschedulable" counts as a failure.
type KindRule = (object: KubeObject, now: Date) => HealthResult;

// Mirrors kstatus' ScheduleWindow: a brand-new Pod is often briefly unschedulable while the autoscaler adds a node.
const UNSCHEDULABLE_GRACE_MS = 15_000;

// The Deployment controller treats an unset progressDeadlineSeconds as "never time out" and then never sets Progressing.
const NO_PROGRESS_DEADLINE = 2_147_483_647;

export function computeHealth(object: unknown, now: Date = new Date()): HealthResult {
  if (object === undefined || object === null) {
    return { status: "NotFound", message: "Resource not found" };
  }
  if (!isRecord(object) || typeof object.kind !== "string" || object.kind === "") {
    return { status: "Unknown", message: "Not a Kubernetes object: kind is missing" };
  }
  const kind = groupKind(object);
  if (kind === "batch/Job") {
    // kustomize-controller's poller reads Jobs with its own reader alone, without kstatus' generic checks.
    return jobHealth(object);
  }
  const generic = genericHealth(object);
  if (generic) {
    return generic;
  }
  const rule = KIND_RULES[kind];
  return rule ? rule(object, now) : readyConditionHealth(object);
}

// One line per object that is not Current, in input order, so a timeout message names exactly what held it up.
export function summarizeUnhealthy(results: ReadonlyArray<{ id: string; result: HealthResult }>): string {
  return results
    .filter(({ result }) => result.status !== "Current")
    .map(({ id, result }) => {
      const message = shorten(result.message);
      return message === "" ? `${id} status: '${result.status}'` : `${id} status: '${result.status}': ${message}`;
    })
    .join("; ");
}

// Rules shared by every kind. kstatus lets these decide alone: a controller that has not caught up, or that reports the
// standard Reconciling/Stalled conditions, says more than any kind-specific field.
function genericHealth(object: KubeObject): HealthResult | undefined {
  const deletionTimestamp = valueAt(object, ["metadata", "deletionTimestamp"]);
  if (deletionTimestamp !== undefined && deletionTimestamp !== null && typeof deletionTimestamp !== "string") {
    return unreadable("metadata.deletionTimestamp is not a string");
  }
  if (typeof deletionTimestamp === "string" && deletionTimestamp !== "") {
    return { status: "Terminating", message: `${kindOf(object)} is being deleted` };
  }
  // As kstatus: observedGeneration only counts when metadata.generation is there, and either of a wrong type is unreadable.
  const generationValue = valueAt(object, ["metadata", "generation"]);
  if (generationValue !== undefined && generationValue !== null) {
    const generation = integerAt(object, ["metadata", "generation"]);
    if (generation === undefined) {
      return unreadable("metadata.generation is not an integer");
    }
    const observedValue = valueAt(object, ["status", "observedGeneration"]);
    if (observedValue !== undefined && observedValue !== null) {
      const observedGeneration = integerAt(object, ["status", "observedGeneration"]);
      if (observedGeneration === undefined) {
        return unreadable("status.observedGeneration is not an integer");
      }
      if (observedGeneration !== generation) {
        return inProgress(`${kindOf(object)} generation ${generation} not yet observed by its controller (observed: ${observedGeneration})`);
      }
    }
  }
  const conditions = readConditions(object);
  if (typeof conditions === "string") {
    return unreadable(conditions);
  }
  for (const condition of conditions) {
    if (condition.type === "Reconciling" && condition.status === "True") {
      return inProgress(describe(condition, "Reconciling"));
    }
    if (condition.type === "Stalled" && condition.status === "True") {
      return failed(describe(condition, "Stalled"));
    }
  }
  return undefined;
}

const KIND_RULES: Readonly<Record<string, KindRule>> = {
  Service: serviceHealth,
  Pod: podHealth,
  Secret: alwaysCurrent,
  ConfigMap: alwaysCurrent,
  PersistentVolumeClaim: pvcHealth,
  "apps/Deployment": deploymentHealth,
  "extensions/Deployment": deploymentHealth,
  "apps/StatefulSet": statefulSetHealth,
  "apps/DaemonSet": daemonSetHealth,
  "extensions/DaemonSet": daemonSetHealth,
  "apps/ReplicaSet": replicaSetHealth,
  "extensions/ReplicaSet": replicaSetHealth,
  "policy/PodDisruptionBudget": pdbHealth,
  "batch/Job": jobHealth,
  "batch/CronJob": alwaysCurrent,
  "apiextensions.k8s.io/CustomResourceDefinition": crdHealth,
};

function alwaysCurrent(): HealthResult {
  return current("Resource is always ready");
}

function deploymentHealth(object: KubeObject): HealthResult {
  const conditions = conditionsOf(object);
  const deadlineExceeded = conditions.find((condition) => condition.type === "Progressing" && condition.reason === "ProgressDeadlineExceeded");
  if (deadlineExceeded) {
    return failed(withDetail("Progress deadline exceeded", deadlineExceeded.message));
  }
  const progressingCondition = findCondition(conditions, "Progressing");
  const progressDeadline = integerAt(object, ["spec", "progressDeadlineSeconds"]) ?? NO_PROGRESS_DEADLINE;
  const newReplicaSetAvailable = progressDeadline === NO_PROGRESS_DEADLINE
    || hasCondition(conditions, "Progressing", "True", "NewReplicaSetAvailable");
  const availableCondition = findCondition(conditions, "Available");
  const isAvailable = hasCondition(conditions, "Available", "True");

  const desired = integerAt(object, ["spec", "replicas"]) ?? 1;
  const replicas = integerAt(object, ["status", "replicas"]) ?? 0;
  const updated = integerAt(object, ["status", "updatedReplicas"]) ?? 0;
  const ready = integerAt(object, ["status", "readyReplicas"]) ?? 0;
  const available = integerAt(object, ["status", "availableReplicas"]) ?? 0;

  if (desired > replicas) {
    return inProgress(`Replicas: ${replicas}/${desired} created`);
  }
  if (desired > updated) {
    return inProgress(`Updated: ${updated}/${desired} replicas`);
  }
  if (replicas > desired) {
    return inProgress(`Pending termination: ${replicas - desired} old replicas`);
  }
  if (updated > available) {
    return inProgress(`Available: ${available}/${updated} updated replicas`);
  }
  if (desired > ready) {
    return inProgress(`Ready: ${ready}/${desired} replicas`);
  }
  if (!newReplicaSetAvailable) {
    return inProgress(withDetail("New ReplicaSet is not available yet", progressingCondition?.message));
  }
  if (!isAvailable) {
    return inProgress(withDetail("Deployment is not available", availableCondition?.message));
  }
  return current(`Deployment is available. Replicas: ${replicas}`);
}

// The StatefulSet controller never sets conditions, so only the counters and revisions tell whether a rollout finished.
function statefulSetHealth(object: KubeObject): HealthResult {
  if (stringAt(object, ["spec", "updateStrategy", "type"], "") === "OnDelete") {
    // Pods are only replaced when someone deletes them, so there is no rollout to wait for.
    return current("StatefulSet uses the OnDelete update strategy");
  }
  const desired = integerAt(object, ["spec", "replicas"]) ?? 1;
  const replicas = integerAt(object, ["status", "replicas"]) ?? 0;
  const ready = integerAt(object, ["status", "readyReplicas"]) ?? 0;
  const currentReplicas = integerAt(object, ["status", "currentReplicas"]) ?? 0;
  const updated = integerAt(object, ["status", "updatedReplicas"]) ?? 0;
  const partition = integerAt(object, ["spec", "updateStrategy", "rollingUpdate", "partition"]);

  if (desired > replicas) {
    return inProgress(`Replicas: ${replicas}/${desired} created`);
  }
  if (desired > ready) {
    return inProgress(`Ready: ${ready}/${desired} replicas`);
  }
  if (replicas > desired) {
    return inProgress(`Pending termination: ${replicas - desired} replicas`);
  }
  if (partition !== undefined) {
    // Only ordinals at or above the partition are updated; the rest deliberately stay on the old revision.
    const expected = desired - partition;
    if (updated < expected) {
      return inProgress(`Partitioned rollout: ${updated}/${expected} replicas updated`);
    }
    return current(`Partitioned rollout complete. Updated: ${updated}`);
  }
  if (desired > currentReplicas) {
    return inProgress(`Current: ${currentReplicas}/${desired} replicas`);
  }
  const currentRevision = stringAt(object, ["status", "currentRevision"], "");
  const updateRevision = stringAt(object, ["status", "updateRevision"], "");
  if (currentRevision !== updateRevision) {
    return inProgress(`Waiting for revision ${updateRevision || "(unknown)"} to replace ${currentRevision || "(unknown)"}`);
  }
  return current(`All replicas scheduled as expected. Replicas: ${replicas}`);
}

function daemonSetHealth(object: KubeObject): HealthResult {
  // The DaemonSet controller always records generations once it has acted, so their absence means it has not started yet
  // (the generic check tolerates missing fields because many kinds never set them).
  if (integerAt(object, ["metadata", "generation"]) === undefined) {
    return inProgress("DaemonSet metadata.generation not set yet");
  }
  if (integerAt(object, ["status", "observedGeneration"]) === undefined) {
    return inProgress("DaemonSet not yet observed by its controller");
  }
  const desired = integerAt(object, ["status", "desiredNumberScheduled"]);
  if (desired === undefined) {
    return inProgress("DaemonSet status.desiredNumberScheduled not set yet");
  }
  const scheduled = integerAt(object, ["status", "currentNumberScheduled"]) ?? 0;
  const updated = integerAt(object, ["status", "updatedNumberScheduled"]) ?? 0;
  const available = integerAt(object, ["status", "numberAvailable"]) ?? 0;
  const ready = integerAt(object, ["status", "numberReady"]) ?? 0;

  if (desired > scheduled) {
    return inProgress(`Scheduled: ${scheduled}/${desired} nodes`);
  }
  if (desired > updated) {
    return inProgress(`Updated: ${updated}/${desired} pods`);
  }
  if (desired > available) {
    return inProgress(`Available: ${available}/${desired} pods`);
  }
  if (desired > ready) {
    return inProgress(`Ready: ${ready}/${desired} pods`);
  }
  return current(`All pods scheduled as expected. Pods: ${desired}`);
}

function replicaSetHealth(object: KubeObject): HealthResult {
  const replicaFailure = conditionsOf(object).find((condition) => condition.type === "ReplicaFailure" && condition.status === "True");
  if (replicaFailure) {
    // kstatus keeps this InProgress: quota or admission failures often clear up without any change to the ReplicaSet.
    return inProgress(withDetail("ReplicaSet cannot create pods", replicaFailure.message));
  }
  const desired = integerAt(object, ["spec", "replicas"]) ?? 1;
  const replicas = integerAt(object, ["status", "replicas"]) ?? 0;
  const labelled = integerAt(object, ["status", "fullyLabeledReplicas"]) ?? 0;
  const available = integerAt(object, ["status", "availableReplicas"]) ?? 0;
  const ready = integerAt(object, ["status", "readyReplicas"]) ?? 0;

  if (desired > labelled) {
    return inProgress(`Labelled: ${labelled}/${desired} replicas`);
  }
  if (desired > available) {
    return inProgress(`Available: ${available}/${desired} replicas`);
  }
  if (desired > ready) {
    return inProgress(`Ready: ${ready}/${desired} replicas`);
  }
  if (replicas > desired) {
    return inProgress(`Pending termination: ${replicas - desired} replicas`);
  }
  return current(`ReplicaSet is available. Replicas: ${replicas}`);
}

function podHealth(object: KubeObject, now: Date): HealthResult {
  const conditions = conditionsOf(object);
  const phase = stringAt(object, ["status", "phase"], "");
  switch (phase) {
    case "Succeeded":
      return current("Pod has completed successfully");
    case "Failed": {
      // kstatus: a finished Pod is Current whatever its outcome (whatever owns it, a Job say, reports the failure).
      const why = stringAt(object, ["status", "message"], "") || stringAt(object, ["status", "reason"], "");
      return current(withDetail("Pod has completed, but not successfully", why));
    }
    case "Running": {
      if (hasCondition(conditions, "Ready", "True")) {
        return current("Pod is Ready");
      }
      const crashLooping = waitingContainers(object, ["containerStatuses"])
        .filter(({ reason }) => reason === "CrashLoopBackOff")
        .map(({ name }) => name);
      if (crashLooping.length > 0) {
        return failed(`Containers in CrashLoopBackOff: ${crashLooping.join(", ")}`);
      }
      return inProgress(withDetail("Pod is running but not Ready", describeWaiting(object)));
    }
    case "Pending": {
      const scheduled = conditions.find((condition) => condition.type === "PodScheduled" && condition.status === "False");
      if (scheduled?.reason === "Unschedulable") {
        const created = Date.parse(stringAt(object, ["metadata", "creationTimestamp"], ""));
        if (Number.isFinite(created) && now.getTime() - created < UNSCHEDULABLE_GRACE_MS) {
          return inProgress(withDetail("Pod has not been scheduled yet", scheduled.message));
        }
        return failed(withDetail("Pod could not be scheduled", scheduled.message));
      }
      return inProgress(withDetail("Pod is Pending", describeWaiting(object)));
    }
    case "":
      return inProgress("Pod phase not reported yet");
    default:
      return { status: "Unknown", message: `Pod phase is ${phase}` };
  }
}

function pvcHealth(object: KubeObject): HealthResult {
  const phase = stringAt(object, ["status", "phase"], "");
  return phase === "Bound" ? current("PVC is Bound") : inProgress(`PVC is not Bound. Phase: ${phase || "(none)"}`);
}

// kstatus only waits for a LoadBalancer Service's cluster IP, not for an ingress address: clusters without a load-balancer
// implementation (kind, bare metal) never assign one, and Flux does not hold a rollout back for it.
function serviceHealth(object: KubeObject): HealthResult {
  if (stringAt(object, ["spec", "type"], "ClusterIP") !== "LoadBalancer") {
    return current("Service is ready");
  }
  if (stringAt(object, ["spec", "clusterIP"], "") === "") {
    return inProgress("LoadBalancer Service has no cluster IP yet");
  }
  const ingress = valueAt(object, ["status", "loadBalancer", "ingress"]);
  const addresses = (Array.isArray(ingress) ? ingress : [])
    .map((entry) => (isRecord(entry) ? stringAt(entry, ["ip"], "") || stringAt(entry, ["hostname"], "") : ""))
    .filter((address) => address !== "");
  return current(addresses.length > 0 ? `Service is ready. Ingress: ${addresses.join(", ")}` : "Service is ready (no ingress address yet)");
}

// kstatus only needs the disruption controller to have observed the latest spec (the generic generation check). Fewer
// healthy pods than desired is a fact about the selected workload, which reports its own health, not a failed rollout.
function pdbHealth(object: KubeObject): HealthResult {
  const allowed = integerAt(object, ["status", "disruptionsAllowed"]) ?? 0;
  const healthy = integerAt(object, ["status", "currentHealthy"]) ?? 0;
  const desired = integerAt(object, ["status", "desiredHealthy"]) ?? 0;
  return current(`Allowed disruptions computed: ${allowed}. Healthy: ${healthy}/${desired}`);
}

// kustomize-controller's Job reader (fluxcd/pkg/runtime statusreaders): suspended is Current, Complete=True Current,
// Failed=True Failed, and a Job still running is InProgress, so a wait covers a migration Job to its end (kstatus' own
// rule calls a started Job Current). It runs alone: deletion, generations and Reconciling/Stalled are not consulted.
function jobHealth(object: KubeObject): HealthResult {
  if (valueAt(object, ["spec", "suspend"]) === true) {
    return current("Job is suspended");
  }
  const parallelism = integerAt(object, ["spec", "parallelism"]) ?? 1;
  const completions = integerAt(object, ["spec", "completions"]) ?? parallelism;
  const succeeded = integerAt(object, ["status", "succeeded"]) ?? 0;
  const active = integerAt(object, ["status", "active"]) ?? 0;
  const failedPods = integerAt(object, ["status", "failed"]) ?? 0;

  const conditions = readConditions(object);
  if (typeof conditions === "string") {
    return unreadable(conditions);
  }
  for (const condition of conditions) {
    if (condition.status !== "True") {
      continue;
    }
    if (condition.type === "Complete") {
      return current(`Job completed. Succeeded: ${succeeded}/${completions}`);
    }
    if (condition.type === "Failed") {
      return failed(`${withDetail("Job failed", condition.message || condition.reason)}. Failed pods: ${failedPods}/${completions}`);
    }
  }
  if (stringAt(object, ["status", "startTime"], "") === "") {
    return inProgress(`Job not started yet. Active: 0/${parallelism}`);
  }
  return inProgress(`Job in progress. Succeeded: ${succeeded}/${completions}, active: ${active}, failed: ${failedPods}`);
}

// The first decisive condition wins, in the order the API server lists them, as in kstatus.
function crdHealth(object: KubeObject): HealthResult {
  for (const condition of conditionsOf(object)) {
    if (condition.type === "NamesAccepted" && condition.status === "False") {
      return failed(withDetail("CRD names not accepted", condition.message || condition.reason));
    }
    if (condition.type === "Established") {
      if (condition.status === "True") {
        return current("CRD is established");
      }
      // "Installing" is the normal transient state right after creation; any other reason means the API server gave up.
      if (condition.status === "False" && condition.reason !== "Installing") {
        return failed(withDetail("CRD not established", condition.message || condition.reason));
      }
    }
  }
  return inProgress("CRD is not established yet");
}

// Kinds without a rule of their own (custom resources, RBAC, Namespaces...): kstatus calls them Current, but most
// controllers publish a Ready condition, and trusting it lets a Ferry wait cover e.g. a cert-manager Certificate.
// A Ready condition of any other status (a typo, an empty string) is passed over, as kstatus does.
function readyConditionHealth(object: KubeObject): HealthResult {
  for (const ready of conditionsOf(object)) {
    if (ready.type !== "Ready") {
      continue;
    }
    if (ready.status === "True") {
      return current(ready.message || "Resource is Ready");
    }
    if (ready.status === "False" || ready.status === "Unknown") {
      return inProgress(withDetail("Resource is not Ready", ready.message || ready.reason));
    }
  }
  return current("Resource is current");
}

// kstatus fails to decode such an object, and its poller then reports Unknown.
function unreadable(problem: string): HealthResult {
  return { status: "Unknown", message: `cannot compute status: ${problem}` };
}

function inProgress(message: string): HealthResult {
  return { status: "InProgress", message };
}

function failed(message: string): HealthResult {
  return { status: "Failed", message };
}

function current(message: string): HealthResult {
  return { status: "Current", message };
}

function withDetail(summary: string, detail: string | undefined): string {
  const trimmed = detail?.trim() ?? "";
  return trimmed === "" ? summary : `${summary}: ${trimmed}`;
}

function describe(condition: Condition, fallback: string): string {
  return condition.message || condition.reason || fallback;
}

// Collapses multi-line controller messages (CRD validation errors, scheduler output) so each object stays on one line.
function shorten(message: string, limit = 240): string {
  const flat = message.replace(/\s+/g, " ").trim();
  return flat.length > limit ? `${flat.slice(0, limit - 1)}…` : flat;
}

function groupKind(object: KubeObject): string {
  const apiVersion = typeof object.apiVersion === "string" ? object.apiVersion : "";
  const slash = apiVersion.indexOf("/");
  const group = slash === -1 ? "" : apiVersion.slice(0, slash);
  return group === "" ? kindOf(object) : `${group}/${kindOf(object)}`;
}

function kindOf(object: KubeObject): string {
  return typeof object.kind === "string" ? object.kind : "Resource";
}

function waitingContainers(object: KubeObject, statusField: readonly string[]): { name: string; reason: string }[] {
  const statuses = valueAt(object, ["status", ...statusField]);
  if (!Array.isArray(statuses)) {
    return [];
  }
  return statuses.filter(isRecord).flatMap((status) => {
    const reason = stringAt(status, ["state", "waiting", "reason"], "");
    return reason === "" ? [] : [{ name: stringAt(status, ["name"], "(unnamed)"), reason }];
  });
}

// Waiting reasons such as ImagePullBackOff are the first thing anyone debugging a stuck Pod wants to see.
function describeWaiting(object: KubeObject): string {
  return [...waitingContainers(object, ["initContainerStatuses"]), ...waitingContainers(object, ["containerStatuses"])]
    .map(({ name, reason }) => `${name} waiting: ${reason}`)
    .join(", ");
}

/**
 * status.conditions as kstatus decodes them, or why it cannot: status must be an object, conditions a list of objects
 * whose type, status, reason and message are strings (absent or null is fine).
 */
function readConditions(object: KubeObject): Condition[] | string {
  const status = object.status;
  if (status === undefined || status === null) {
    return [];
  }
  if (!isRecord(status)) {
    return "status is not an object";
  }
  const raw = status.conditions;
  if (raw === undefined || raw === null) {
    return [];
  }
  if (!Array.isArray(raw)) {
    return "status.conditions is not a list";
  }
  for (const condition of raw) {
    if (condition === null) {
      continue;
    }
    if (!isRecord(condition)) {
      return "a status condition is not an object";
    }
    for (const field of ["type", "status", "reason", "message"]) {
      const value = condition[field];
      if (value !== undefined && value !== null && typeof value !== "string") {
        return `a status condition's ${field} is not a string`;
      }
    }
  }
  return conditionsOf(object);
}

function hasCondition(conditions: readonly Condition[], type: string, status: string, reason?: string): boolean {
  return conditions.some(
    (condition) => condition.type === type && condition.status === status && (reason === undefined || condition.reason === reason),
  );
}

function conditionsOf(object: KubeObject): Condition[] {
  const raw = valueAt(object, ["status", "conditions"]);
  if (!Array.isArray(raw)) {
    return [];
  }
  return raw.filter(isRecord).map((condition) => ({
    type: stringAt(condition, ["type"], ""),
    status: stringAt(condition, ["status"], ""),
    reason: stringAt(condition, ["reason"], ""),
    message: stringAt(condition, ["message"], ""),
  }));
}

function findCondition(conditions: readonly Condition[], type: string): Condition | undefined {
  return conditions.find((condition) => condition.type === type);
}

function valueAt(object: KubeObject, path: readonly string[]): unknown {
  let value: unknown = object;
  for (const key of path) {
    if (!isRecord(value)) {
      return undefined;
    }
    value = value[key];
  }
  return value;
}

// Like kstatus, a field of the wrong type counts as absent rather than making the whole object unreadable.
function integerAt(object: KubeObject, path: readonly string[]): number | undefined {
  const value = valueAt(object, path);
  return typeof value === "number" && Number.isInteger(value) ? value : undefined;
}

function stringAt(object: KubeObject, path: readonly string[], fallback: string): string {
  const value = valueAt(object, path);
  return typeof value === "string" ? value : fallback;
}

function isRecord(value: unknown): value is Record<string, unknown> {
  return typeof value === "object" && value !== null && !Array.isArray(value);
}
