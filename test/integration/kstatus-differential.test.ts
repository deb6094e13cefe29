// Differential test of Ferry's health rules (src/health/kstatus.ts) against real kstatus, run by the test bed's
// flux-engine (Flux's engine: sigs.k8s.io/cli-utils and Flux's fork github.com/fluxcd/cli-utils, plus the Job status
// reader kustomize-controller's poller puts in front of kstatus). Every case must get the status kustomize-controller's
// poller would report: kstatus' status.Compute for every kind but batch Jobs, Flux's Job reader for those.
import assert from "node:assert/strict";
import { before, describe, test } from "node:test";
import { computeHealth } from "../../src/health/kstatus.ts";
import { skipUnlessBuilt } from "../harness/binaries.ts";
import { fluxKstatus, type KstatusVerdict } from "../harness/flux-engine.ts";

type Obj = Record<string, unknown>;

const NOW = new Date();
const LONG_AGO = "2020-01-01T00:00:00Z";
const JUST_NOW = new Date(NOW.getTime() - 2_000).toISOString().replace(/\.\d+Z$/, "Z");

function cond(type: string, status: string, reason = "", message = ""): Obj {
  return { type, status, reason, message, lastTransitionTime: LONG_AGO };
}

function obj(apiVersion: string, kind: string, extra: { metadata?: Obj; spec?: Obj; status?: Obj } = {}): Obj {
  const metadata = { name: "x", namespace: "default", creationTimestamp: LONG_AGO, ...extra.metadata };
  const result: Obj = { apiVersion, kind, metadata };
  if (extra.spec !== undefined) result.spec = extra.spec;
  if (extra.status !== undefined) result.status = extra.status;
  return result;
}

// ---- Deployments ----
const availableConditions = [
  cond("Available", "True", "MinimumReplicasAvailable"),
  cond("Progressing", "True", "NewReplicaSetAvailable", "ReplicaSet \"x-1\" has successfully progressed."),
];
const fullStatus = (n: number) => ({ observedGeneration: 2, replicas: n, updatedReplicas: n, readyReplicas: n, availableReplicas: n });
function deployment(spec: Obj, status: Obj | undefined, metadata: Obj = {}, apiVersion = "apps/v1"): Obj {
  return obj(apiVersion, "Deployment", { metadata: { generation: 2, ...metadata }, spec: { progressDeadlineSeconds: 600, ...spec }, ...(status ? { status } : {}) });
}

// ---- the table: [case name, object] ----
const CASES: Array<[string, Obj]> = [
  ["Deployment available", deployment({ replicas: 3 }, { ...fullStatus(3), conditions: availableConditions })],
  ["Deployment just created, no status", deployment({ replicas: 3 }, undefined)],
  ["Deployment observedGeneration behind generation", deployment({ replicas: 3 }, { ...fullStatus(3), observedGeneration: 1, conditions: availableConditions })],
  ["Deployment rolling: too few updated", deployment({ replicas: 3 }, { ...fullStatus(3), updatedReplicas: 1, conditions: availableConditions })],
  ["Deployment rolling: too few replicas", deployment({ replicas: 3 }, { ...fullStatus(3), replicas: 2, conditions: availableConditions })],
  ["Deployment rolling: old pods pending termination", deployment({ replicas: 3 }, { ...fullStatus(3), replicas: 4, conditions: availableConditions })],
  ["Deployment rolling: updated but not available", deployment({ replicas: 3 }, { ...fullStatus(3), availableReplicas: 2, conditions: availableConditions })],
  ["Deployment rolling: not all ready", deployment({ replicas: 3 }, { ...fullStatus(3), readyReplicas: 2, conditions: availableConditions })],
  ["Deployment progressing: ReplicaSetUpdated", deployment({ replicas: 1 }, { ...fullStatus(1), conditions: [cond("Available", "True"), cond("Progressing", "True", "ReplicaSetUpdated")] })],
  ["Deployment failed: progress deadline exceeded", deployment({ replicas: 1 }, { ...fullStatus(1), readyReplicas: 0, availableReplicas: 0, conditions: [cond("Available", "False", "MinimumReplicasUnavailable"), cond("Progressing", "False", "ProgressDeadlineExceeded", "ReplicaSet \"x-1\" has timed out progressing.")] })],
  ["Deployment progress deadline exceeded but counts fine", deployment({ replicas: 1 }, { ...fullStatus(1), conditions: [cond("Available", "True"), cond("Progressing", "False", "ProgressDeadlineExceeded")] })],
  ["Deployment paused (progress deadline set)", deployment({ replicas: 2, paused: true }, { ...fullStatus(2), conditions: [cond("Available", "True"), cond("Progressing", "Unknown", "DeploymentPaused")] })],
  ["Deployment paused without a progress deadline", deployment({ replicas: 2, paused: true, progressDeadlineSeconds: undefined }, { ...fullStatus(2), conditions: [cond("Available", "True"), cond("Progressing", "Unknown", "DeploymentPaused")] })],
  ["Deployment without progress deadline, no Progressing condition", deployment({ replicas: 1, progressDeadlineSeconds: 2147483647 }, { ...fullStatus(1), conditions: [cond("Available", "True")] })],
  ["Deployment Available False with full counts", deployment({ replicas: 1 }, { ...fullStatus(1), conditions: [cond("Available", "False", "MinimumReplicasUnavailable"), cond("Progressing", "True", "NewReplicaSetAvailable")] })],
  ["Deployment without conditions, full counts", deployment({ replicas: 1 }, fullStatus(1))],
  ["Deployment scaled to zero", deployment({ replicas: 0 }, { observedGeneration: 2, conditions: availableConditions })],
  ["Deployment replicas unset (defaults to 1)", deployment({}, { ...fullStatus(1), conditions: availableConditions })],
  ["Deployment extensions/v1beta1", deployment({ replicas: 1 }, { ...fullStatus(1), conditions: availableConditions }, {}, "extensions/v1beta1")],
  ["Deployment with Reconciling True", deployment({ replicas: 1 }, { ...fullStatus(1), conditions: [...availableConditions, cond("Reconciling", "True", "Rollout", "rolling out")] })],
  ["Deployment with Stalled True", deployment({ replicas: 1 }, { ...fullStatus(1), conditions: [...availableConditions, cond("Stalled", "True", "Stuck", "cannot proceed")] })],
  ["Deployment being deleted", deployment({ replicas: 1 }, { ...fullStatus(1), conditions: availableConditions }, { deletionTimestamp: JUST_NOW, finalizers: ["x/y"] })],
  ["Deployment with generation but no observedGeneration", deployment({ replicas: 1 }, { replicas: 1, updatedReplicas: 1, readyReplicas: 1, availableReplicas: 1, conditions: availableConditions })],

  // ---- StatefulSets ----
  ["StatefulSet settled", obj("apps/v1", "StatefulSet", { metadata: { generation: 1 }, spec: { replicas: 3 }, status: { observedGeneration: 1, replicas: 3, readyReplicas: 3, currentReplicas: 3, updatedReplicas: 3, currentRevision: "x-1", updateRevision: "x-1" } })],
  ["StatefulSet OnDelete with nothing ready", obj("apps/v1", "StatefulSet", { metadata: { generation: 1 }, spec: { replicas: 3, updateStrategy: { type: "OnDelete" } }, status: { observedGeneration: 1, replicas: 0 } })],
  ["StatefulSet too few replicas", obj("apps/v1", "StatefulSet", { metadata: { generation: 1 }, spec: { replicas: 3 }, status: { observedGeneration: 1, replicas: 2, readyReplicas: 2, currentReplicas: 2, updatedReplicas: 2 } })],
  ["StatefulSet not all ready", obj("apps/v1", "StatefulSet", { metadata: { generation: 1 }, spec: { replicas: 3 }, status: { observedGeneration: 1, replicas: 3, readyReplicas: 1, currentReplicas: 3, updatedReplicas: 3 } })],
  ["StatefulSet scaling down", obj("apps/v1", "StatefulSet", { metadata: { generation: 1 }, spec: { replicas: 1 }, status: { observedGeneration: 1, replicas: 2, readyReplicas: 2, currentReplicas: 2, updatedReplicas: 2 } })],
  ["StatefulSet partitioned rollout in progress", obj("apps/v1", "StatefulSet", { metadata: { generation: 1 }, spec: { replicas: 4, updateStrategy: { type: "RollingUpdate", rollingUpdate: { partition: 2 } } }, status: { observedGeneration: 1, replicas: 4, readyReplicas: 4, currentReplicas: 3, updatedReplicas: 1, currentRevision: "x-1", updateRevision: "x-2" } })],
  ["StatefulSet partitioned rollout complete", obj("apps/v1", "StatefulSet", { metadata: { generation: 1 }, spec: { replicas: 4, updateStrategy: { type: "RollingUpdate", rollingUpdate: { partition: 2 } } }, status: { observedGeneration: 1, replicas: 4, readyReplicas: 4, currentReplicas: 2, updatedReplicas: 2, currentRevision: "x-1", updateRevision: "x-2" } })],
  ["StatefulSet partition 0 with old pods", obj("apps/v1", "StatefulSet", { metadata: { generation: 1 }, spec: { replicas: 2, updateStrategy: { type: "RollingUpdate", rollingUpdate: { partition: 0 } } }, status: { observedGeneration: 1, replicas: 2, readyReplicas: 2, currentReplicas: 2, updatedReplicas: 1, currentRevision: "x-1", updateRevision: "x-2" } })],
  ["StatefulSet too few current", obj("apps/v1", "StatefulSet", { metadata: { generation: 1 }, spec: { replicas: 3 }, status: { observedGeneration: 1, replicas: 3, readyReplicas: 3, currentReplicas: 1, updatedReplicas: 3, currentRevision: "x-1", updateRevision: "x-1" } })],
  ["StatefulSet revision mismatch", obj("apps/v1", "StatefulSet", { metadata: { generation: 1 }, spec: { replicas: 2 }, status: { observedGeneration: 1, replicas: 2, readyReplicas: 2, currentReplicas: 2, updatedReplicas: 2, currentRevision: "x-1", updateRevision: "x-2" } })],
  ["StatefulSet replicas unset (defaults to 1)", obj("apps/v1", "StatefulSet", { metadata: { generation: 1 }, spec: {}, status: { observedGeneration: 1, replicas: 1, readyReplicas: 1, currentReplicas: 1, updatedReplicas: 1, currentRevision: "a", updateRevision: "a" } })],
  ["StatefulSet observedGeneration behind", obj("apps/v1", "StatefulSet", { metadata: { generation: 2 }, spec: { replicas: 1 }, status: { observedGeneration: 1, replicas: 1, readyReplicas: 1, currentReplicas: 1, updatedReplicas: 1 } })],

  // ---- DaemonSets ----
  ["DaemonSet settled", obj("apps/v1", "DaemonSet", { metadata: { generation: 1 }, status: { observedGeneration: 1, desiredNumberScheduled: 2, currentNumberScheduled: 2, updatedNumberScheduled: 2, numberAvailable: 2, numberReady: 2 } })],
  ["DaemonSet without metadata.generation", obj("apps/v1", "DaemonSet", { status: { observedGeneration: 1, desiredNumberScheduled: 1, currentNumberScheduled: 1, updatedNumberScheduled: 1, numberAvailable: 1, numberReady: 1 } })],
  ["DaemonSet not yet observed", obj("apps/v1", "DaemonSet", { metadata: { generation: 1 }, status: {} })],
  ["DaemonSet without desiredNumberScheduled", obj("apps/v1", "DaemonSet", { metadata: { generation: 1 }, status: { observedGeneration: 1 } })],
  ["DaemonSet too few scheduled", obj("apps/v1", "DaemonSet", { metadata: { generation: 1 }, status: { observedGeneration: 1, desiredNumberScheduled: 3, currentNumberScheduled: 2, updatedNumberScheduled: 2, numberAvailable: 2, numberReady: 2 } })],
  ["DaemonSet too few updated", obj("apps/v1", "DaemonSet", { metadata: { generation: 1 }, status: { observedGeneration: 1, desiredNumberScheduled: 3, currentNumberScheduled: 3, updatedNumberScheduled: 1, numberAvailable: 3, numberReady: 3 } })],
  ["DaemonSet too few available", obj("apps/v1", "DaemonSet", { metadata: { generation: 1 }, status: { observedGeneration: 1, desiredNumberScheduled: 3, currentNumberScheduled: 3, updatedNumberScheduled: 3, numberAvailable: 2, numberReady: 3 } })],
  ["DaemonSet too few ready", obj("apps/v1", "DaemonSet", { metadata: { generation: 1 }, status: { observedGeneration: 1, desiredNumberScheduled: 3, currentNumberScheduled: 3, updatedNumberScheduled: 3, numberAvailable: 3, numberReady: 2 } })],
  ["DaemonSet on no nodes", obj("apps/v1", "DaemonSet", { metadata: { generation: 1 }, status: { observedGeneration: 1, desiredNumberScheduled: 0, currentNumberScheduled: 0, numberReady: 0 } })],
  ["DaemonSet extensions/v1beta1", obj("extensions/v1beta1", "DaemonSet", { metadata: { generation: 1 }, status: { observedGeneration: 1, desiredNumberScheduled: 1, currentNumberScheduled: 1, updatedNumberScheduled: 1, numberAvailable: 1, numberReady: 1 } })],

  // ---- ReplicaSets ----
  ["ReplicaSet available", obj("apps/v1", "ReplicaSet", { metadata: { generation: 1 }, spec: { replicas: 2 }, status: { observedGeneration: 1, replicas: 2, fullyLabeledReplicas: 2, readyReplicas: 2, availableReplicas: 2 } })],
  ["ReplicaSet ReplicaFailure", obj("apps/v1", "ReplicaSet", { metadata: { generation: 1 }, spec: { replicas: 2 }, status: { observedGeneration: 1, replicas: 2, fullyLabeledReplicas: 2, readyReplicas: 2, availableReplicas: 2, conditions: [cond("ReplicaFailure", "True", "FailedCreate", "exceeded quota")] } })],
  ["ReplicaSet too few labelled", obj("apps/v1", "ReplicaSet", { metadata: { generation: 1 }, spec: { replicas: 2 }, status: { observedGeneration: 1, replicas: 2, fullyLabeledReplicas: 1, readyReplicas: 2, availableReplicas: 2 } })],
  ["ReplicaSet too few available", obj("apps/v1", "ReplicaSet", { metadata: { generation: 1 }, spec: { replicas: 2 }, status: { observedGeneration: 1, replicas: 2, fullyLabeledReplicas: 2, readyReplicas: 2, availableReplicas: 1 } })],
  ["ReplicaSet too few ready", obj("apps/v1", "ReplicaSet", { metadata: { generation: 1 }, spec: { replicas: 2 }, status: { observedGeneration: 1, replicas: 2, fullyLabeledReplicas: 2, readyReplicas: 1, availableReplicas: 2 } })],
  ["ReplicaSet extra pods", obj("apps/v1", "ReplicaSet", { metadata: { generation: 1 }, spec: { replicas: 1 }, status: { observedGeneration: 1, replicas: 2, fullyLabeledReplicas: 2, readyReplicas: 2, availableReplicas: 2 } })],
  ["ReplicaSet scaled to zero", obj("apps/v1", "ReplicaSet", { metadata: { generation: 1 }, spec: { replicas: 0 }, status: { observedGeneration: 1, replicas: 0 } })],

  // ---- Pods ----
  ["Pod succeeded", obj("v1", "Pod", { status: { phase: "Succeeded" } })],
  ["Pod failed", obj("v1", "Pod", { status: { phase: "Failed", reason: "Evicted", message: "The node was low on resource: memory." } })],
  ["Pod running and Ready", obj("v1", "Pod", { status: { phase: "Running", conditions: [cond("Ready", "True")] } })],
  ["Pod running, not Ready", obj("v1", "Pod", { status: { phase: "Running", conditions: [cond("Ready", "False", "ContainersNotReady")], containerStatuses: [{ name: "app", ready: false, state: { running: {} } }] } })],
  ["Pod running, CrashLoopBackOff", obj("v1", "Pod", { status: { phase: "Running", conditions: [cond("Ready", "False")], containerStatuses: [{ name: "app", state: { waiting: { reason: "CrashLoopBackOff" } } }, { name: "side", state: { running: {} } }] } })],
  ["Pod running, Ready with a crash-looping sidecar", obj("v1", "Pod", { status: { phase: "Running", conditions: [cond("Ready", "True")], containerStatuses: [{ name: "app", state: { waiting: { reason: "CrashLoopBackOff" } } }] } })],
  ["Pod running, Ready listed twice (False, then True)", obj("v1", "Pod", { status: { phase: "Running", conditions: [cond("Ready", "False"), cond("Ready", "True")] } })],
  ["Pod pending", obj("v1", "Pod", { status: { phase: "Pending", conditions: [cond("PodScheduled", "True")] } })],
  ["Pod pending, ImagePullBackOff", obj("v1", "Pod", { status: { phase: "Pending", containerStatuses: [{ name: "app", state: { waiting: { reason: "ImagePullBackOff" } } }] } })],
  ["Pod pending, unschedulable for long", obj("v1", "Pod", { status: { phase: "Pending", conditions: [cond("PodScheduled", "False", "Unschedulable", "0/1 nodes are available")] } })],
  ["Pod pending, unschedulable just now", obj("v1", "Pod", { metadata: { creationTimestamp: JUST_NOW }, status: { phase: "Pending", conditions: [cond("PodScheduled", "False", "Unschedulable")] } })],
  ["Pod pending, not scheduled for another reason", obj("v1", "Pod", { status: { phase: "Pending", conditions: [cond("PodScheduled", "False", "SchedulerError")] } })],
  ["Pod without a phase", obj("v1", "Pod", { status: {} })],
  ["Pod without status", obj("v1", "Pod", { spec: { containers: [{ name: "app", image: "x" }] } })],
  ["Pod in phase Unknown", obj("v1", "Pod", { status: { phase: "Unknown" } })],
  ["Pod being deleted", obj("v1", "Pod", { metadata: { deletionTimestamp: JUST_NOW }, status: { phase: "Running", conditions: [cond("Ready", "True")] } })],

  // ---- Jobs (kustomize-controller's own Job reader decides these) ----
  ["Job complete", obj("batch/v1", "Job", { spec: { completions: 1 }, status: { startTime: LONG_AGO, succeeded: 1, conditions: [cond("SuccessCriteriaMet", "True"), cond("Complete", "True")] } })],
  ["Job failed", obj("batch/v1", "Job", { spec: { backoffLimit: 1 }, status: { startTime: LONG_AGO, failed: 2, conditions: [cond("FailureTarget", "True", "BackoffLimitExceeded"), cond("Failed", "True", "BackoffLimitExceeded", "Job has reached the specified backoff limit")] } })],
  ["Job running", obj("batch/v1", "Job", { spec: { parallelism: 2, completions: 4 }, status: { startTime: LONG_AGO, active: 2, succeeded: 1 } })],
  ["Job running with a FailureTarget only", obj("batch/v1", "Job", { status: { startTime: LONG_AGO, active: 1, conditions: [cond("FailureTarget", "True", "BackoffLimitExceeded")] } })],
  ["Job not started", obj("batch/v1", "Job", { spec: { completions: 1 } })],
  ["Job suspended (spec.suspend)", obj("batch/v1", "Job", { spec: { suspend: true } })],
  ["Job suspended (spec and condition)", obj("batch/v1", "Job", { spec: { suspend: true }, status: { conditions: [cond("Suspended", "True", "JobSuspended")] } })],
  ["Job complete with ttlSecondsAfterFinished", obj("batch/v1", "Job", { spec: { ttlSecondsAfterFinished: 30 }, status: { startTime: LONG_AGO, succeeded: 1, conditions: [cond("Complete", "True")] } })],
  ["Job running with ttlSecondsAfterFinished", obj("batch/v1", "Job", { spec: { ttlSecondsAfterFinished: 30 }, status: { startTime: LONG_AGO, active: 1 } })],
  ["Job complete and being deleted", obj("batch/v1", "Job", { metadata: { deletionTimestamp: JUST_NOW }, status: { startTime: LONG_AGO, succeeded: 1, conditions: [cond("Complete", "True")] } })],
  ["Job running with Stalled True", obj("batch/v1", "Job", { status: { startTime: LONG_AGO, active: 1, conditions: [cond("Stalled", "True", "X")] } })],
  ["Job Complete False", obj("batch/v1", "Job", { status: { startTime: LONG_AGO, active: 1, conditions: [cond("Complete", "False")] } })],

  // ---- CronJobs ----
  ["CronJob", obj("batch/v1", "CronJob", { metadata: { generation: 1 }, spec: { schedule: "* * * * *" }, status: { lastScheduleTime: LONG_AGO } })],
  ["CronJob suspended", obj("batch/v1", "CronJob", { spec: { schedule: "* * * * *", suspend: true } })],
  ["CronJob with Ready False (ignored)", obj("batch/v1", "CronJob", { status: { conditions: [cond("Ready", "False")] } })],

  // ---- PVCs ----
  ["PVC bound", obj("v1", "PersistentVolumeClaim", { status: { phase: "Bound" } })],
  ["PVC pending", obj("v1", "PersistentVolumeClaim", { status: { phase: "Pending" } })],
  ["PVC lost", obj("v1", "PersistentVolumeClaim", { status: { phase: "Lost" } })],
  ["PVC without status", obj("v1", "PersistentVolumeClaim", { spec: { resources: { requests: { storage: "1Gi" } } } })],

  // ---- Services ----
  ["Service ClusterIP", obj("v1", "Service", { spec: { type: "ClusterIP", clusterIP: "10.0.0.1" } })],
  ["Service without type", obj("v1", "Service", { spec: { clusterIP: "10.0.0.1" } })],
  ["Service headless", obj("v1", "Service", { spec: { clusterIP: "None" } })],
  ["Service NodePort", obj("v1", "Service", { spec: { type: "NodePort", clusterIP: "10.0.0.1" } })],
  ["Service ExternalName", obj("v1", "Service", { spec: { type: "ExternalName", externalName: "example.com" } })],
  ["Service LoadBalancer without ingress", obj("v1", "Service", { spec: { type: "LoadBalancer", clusterIP: "10.0.0.1" }, status: { loadBalancer: {} } })],
  ["Service LoadBalancer with ingress", obj("v1", "Service", { spec: { type: "LoadBalancer", clusterIP: "10.0.0.1" }, status: { loadBalancer: { ingress: [{ ip: "192.0.2.1" }] } } })],
  ["Service LoadBalancer without clusterIP yet", obj("v1", "Service", { spec: { type: "LoadBalancer" } })],

  // ---- Always-ready kinds and kinds without rules ----
  ["ConfigMap", obj("v1", "ConfigMap", {})],
  ["Secret", obj("v1", "Secret", {})],
  ["Secret being deleted", obj("v1", "Secret", { metadata: { deletionTimestamp: JUST_NOW, finalizers: ["x/y"] } })],
  ["ServiceAccount", obj("v1", "ServiceAccount", {})],
  ["ClusterRole", obj("rbac.authorization.k8s.io/v1", "ClusterRole", { metadata: { namespace: undefined } })],
  ["Namespace active", obj("v1", "Namespace", { metadata: { namespace: undefined }, status: { phase: "Active" } })],
  ["Namespace terminating", obj("v1", "Namespace", { metadata: { namespace: undefined, deletionTimestamp: JUST_NOW }, status: { phase: "Terminating" } })],
  ["Ingress without load balancer status", obj("networking.k8s.io/v1", "Ingress", { metadata: { generation: 1 }, spec: { rules: [] }, status: { loadBalancer: {} } })],
  ["Ingress with an address", obj("networking.k8s.io/v1", "Ingress", { metadata: { generation: 1 }, status: { loadBalancer: { ingress: [{ ip: "192.0.2.1" }] } } })],
  ["HorizontalPodAutoscaler", obj("autoscaling/v2", "HorizontalPodAutoscaler", { status: { conditions: [cond("AbleToScale", "True"), cond("ScalingActive", "False")] } })],
  ["PodDisruptionBudget", obj("policy/v1", "PodDisruptionBudget", { metadata: { generation: 1 }, status: { observedGeneration: 1, disruptionsAllowed: 0, currentHealthy: 0, desiredHealthy: 1 } })],
  ["PodDisruptionBudget not yet observed", obj("policy/v1", "PodDisruptionBudget", { metadata: { generation: 2 }, status: { observedGeneration: 1 } })],
  ["PodDisruptionBudget with DisruptionAllowed False", obj("policy/v1", "PodDisruptionBudget", { metadata: { generation: 1 }, status: { observedGeneration: 1, conditions: [cond("DisruptionAllowed", "False", "InsufficientPods")] } })],

  // ---- CustomResourceDefinitions ----
  ["CRD established", obj("apiextensions.k8s.io/v1", "CustomResourceDefinition", { status: { conditions: [cond("NamesAccepted", "True"), cond("Established", "True")] } })],
  ["CRD installing", obj("apiextensions.k8s.io/v1", "CustomResourceDefinition", { status: { conditions: [cond("NamesAccepted", "True"), cond("Established", "False", "Installing")] } })],
  ["CRD names not accepted", obj("apiextensions.k8s.io/v1", "CustomResourceDefinition", { status: { conditions: [cond("NamesAccepted", "False", "MultipleNamesNotAllowed"), cond("Established", "False", "NotAccepted")] } })],
  ["CRD not established for another reason", obj("apiextensions.k8s.io/v1", "CustomResourceDefinition", { status: { conditions: [cond("Established", "False", "Other")] } })],
  ["CRD without conditions", obj("apiextensions.k8s.io/v1", "CustomResourceDefinition", { status: {} })],
  ["CRD established listed before names not accepted", obj("apiextensions.k8s.io/v1", "CustomResourceDefinition", { status: { conditions: [cond("Established", "True"), cond("NamesAccepted", "False", "X")] } })],

  // ---- Custom resources ----
  ["CR with Ready True", obj("example.com/v1", "Widget", { metadata: { generation: 1 }, status: { observedGeneration: 1, conditions: [cond("Ready", "True", "Succeeded")] } })],
  ["CR with Ready False", obj("example.com/v1", "Widget", { metadata: { generation: 1 }, status: { observedGeneration: 1, conditions: [cond("Ready", "False", "Failing", "backend down")] } })],
  ["CR with Ready Unknown", obj("example.com/v1", "Widget", { metadata: { generation: 1 }, status: { observedGeneration: 1, conditions: [cond("Ready", "Unknown", "Progressing")] } })],
  ["CR with Ready of an odd status", obj("example.com/v1", "Widget", { status: { conditions: [cond("Ready", "Maybe")] } })],
  ["CR with two Ready conditions, the first odd", obj("example.com/v1", "Widget", { status: { conditions: [cond("Ready", ""), cond("Ready", "False")] } })],
  ["CR without status", obj("example.com/v1", "Widget", { metadata: { generation: 1 } })],
  ["CR without conditions", obj("example.com/v1", "Widget", { metadata: { generation: 1 }, status: { observedGeneration: 1 } })],
  ["CR observedGeneration behind with Ready True", obj("example.com/v1", "Widget", { metadata: { generation: 3 }, status: { observedGeneration: 2, conditions: [cond("Ready", "True")] } })],
  ["CR observedGeneration ahead", obj("example.com/v1", "Widget", { metadata: { generation: 1 }, status: { observedGeneration: 2, conditions: [cond("Ready", "True")] } })],
  ["CR with observedGeneration but no generation", obj("example.com/v1", "Widget", { status: { observedGeneration: 5, conditions: [cond("Ready", "True")] } })],
  ["CR with Stalled True", obj("example.com/v1", "Widget", { metadata: { generation: 1 }, status: { observedGeneration: 1, conditions: [cond("Ready", "False"), cond("Stalled", "True", "InvalidSpec", "spec is invalid")] } })],
  ["CR with Stalled True and no message", obj("example.com/v1", "Widget", { status: { conditions: [cond("Stalled", "True", "InvalidSpec")] } })],
  ["CR with Reconciling True", obj("example.com/v1", "Widget", { metadata: { generation: 1 }, status: { observedGeneration: 1, conditions: [cond("Reconciling", "True", "Progressing", "working")] } })],
  ["CR with Reconciling True then Stalled True", obj("example.com/v1", "Widget", { status: { conditions: [cond("Reconciling", "True"), cond("Stalled", "True")] } })],
  ["CR with Stalled True then Reconciling True", obj("example.com/v1", "Widget", { status: { conditions: [cond("Stalled", "True"), cond("Reconciling", "True")] } })],
  ["CR with Reconciling False and Ready True", obj("example.com/v1", "Widget", { status: { conditions: [cond("Reconciling", "False"), cond("Stalled", "False"), cond("Ready", "True")] } })],
  ["CR being deleted", obj("example.com/v1", "Widget", { metadata: { deletionTimestamp: JUST_NOW, finalizers: ["x/y"] }, status: { conditions: [cond("Ready", "True")] } })],
  ["Flux Kustomization Ready", obj("kustomize.toolkit.fluxcd.io/v1", "Kustomization", { metadata: { generation: 4 }, status: { observedGeneration: 4, conditions: [cond("Ready", "True", "ReconciliationSucceeded"), cond("Healthy", "True")] } })],
  ["Flux HelmRelease failing", obj("helm.toolkit.fluxcd.io/v2", "HelmRelease", { metadata: { generation: 1 }, status: { observedGeneration: 1, conditions: [cond("Ready", "False", "InstallFailed"), cond("Stalled", "True", "RetriesExceeded")] } })],

  // ---- Malformed objects ----
  ["generation is a string", obj("example.com/v1", "Widget", { metadata: { generation: "1" }, status: { observedGeneration: 1 } })],
  ["observedGeneration is a string", obj("example.com/v1", "Widget", { metadata: { generation: 1 }, status: { observedGeneration: "1" } })],
  ["observedGeneration is a string without generation", obj("example.com/v1", "Widget", { status: { observedGeneration: "1" } })],
  ["conditions is not a list", obj("example.com/v1", "Widget", { status: { conditions: "Ready" } })],
  ["a condition is not an object", obj("example.com/v1", "Widget", { status: { conditions: ["Ready"] } })],
  ["status is not an object", obj("example.com/v1", "Widget", { status: "ok" as unknown as Obj })],
  ["a condition's status is not a string", obj("example.com/v1", "Widget", { status: { conditions: [{ type: "Ready", status: true }] } })],
  ["Deployment with Available listed twice (False, then True)", deployment({ replicas: 1 }, { ...fullStatus(1), conditions: [cond("Available", "False"), ...availableConditions] })],
  ["deletionTimestamp is a number", obj("example.com/v1", "Widget", { metadata: { deletionTimestamp: 5 } })],
  ["Deployment replicas is a string", deployment({ replicas: "3" }, { ...fullStatus(1), conditions: availableConditions })],
];

describe("kstatus differential: Ferry's computeHealth against kstatus and kustomize-controller's poller", { skip: skipUnlessBuilt("flux-engine") }, () => {
  let verdicts: KstatusVerdict[] = [];
  before(async () => {
    verdicts = await fluxKstatus(CASES.map(([, object]) => object));
    assert.equal(verdicts.length, CASES.length);
  });

  CASES.forEach(([name, object], index) => {
    test(name, () => {
      const verdict = verdicts[index];
      assert.ok(verdict);
      // Flux's fork of kstatus and upstream agree on the status of every case.
      assert.equal(verdict.flux.status, verdict.status, `Flux's cli-utils and sigs.k8s.io/cli-utils differ: ${JSON.stringify(verdict)}`);
      const ferry = computeHealth(object, NOW);
      assert.equal(
        ferry.status,
        verdict.controller.status,
        `Ferry says ${ferry.status} (${ferry.message}); kustomize-controller's poller says ${verdict.controller.status} (${verdict.controller.message})`
        + `; kstatus.Compute says ${verdict.status} (${verdict.message})`,
      );
    });
  });

  test("the table covers every kind with a kstatus rule, and Jobs are where the controller departs from kstatus", () => {
    const kinds = new Set(CASES.map(([, object]) => object.kind));
    for (const kind of ["Deployment", "StatefulSet", "DaemonSet", "ReplicaSet", "Pod", "Job", "CronJob", "PersistentVolumeClaim", "Service",
      "PodDisruptionBudget", "CustomResourceDefinition", "ConfigMap", "Secret", "Ingress"]) {
      assert.ok(kinds.has(kind), `no case for ${kind}`);
    }
    const departures = CASES.flatMap(([name, object], index) => (verdicts[index]?.controller.status !== verdicts[index]?.status ? [`${String(object.kind)}: ${name}`] : []));
    assert.ok(departures.length > 0 && departures.every((entry) => entry.startsWith("Job: ")), departures.join("; "));
  });
});
