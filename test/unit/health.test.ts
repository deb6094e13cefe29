// kstatus health rules against realistic GET responses: each kind must be Current only once its controller has finished,
// because Ferry's wait and dependsOn gating trust this verdict.
import assert from "node:assert/strict";
import { describe, test } from "node:test";
import { computeHealth, summarizeUnhealthy, type HealthResult } from "../../src/health/kstatus.ts";

const NOW = new Date("2025-06-01T12:00:00Z");

function inProgressWith(message: string): HealthResult {
  return { status: "InProgress", message };
}

function condition(type: string, status: string, reason = "", message = "") {
  return { type, status, reason, message };
}

function deployment(status: Record<string, unknown>, overrides: { replicas?: number; generation?: number } = {}) {
  return {
    apiVersion: "apps/v1",
    kind: "Deployment",
    metadata: { name: "podinfo", namespace: "apps", generation: overrides.generation ?? 2 },
    spec: { replicas: overrides.replicas ?? 2, progressDeadlineSeconds: 600 },
    status: { observedGeneration: 2, ...status },
  };
}

const healthyDeploymentStatus = {
  replicas: 2,
  updatedReplicas: 2,
  readyReplicas: 2,
  availableReplicas: 2,
  conditions: [
    condition("Available", "True", "MinimumReplicasAvailable", "Deployment has minimum availability."),
    condition("Progressing", "True", "NewReplicaSetAvailable", "ReplicaSet \"podinfo-7d9f\" has successfully progressed."),
  ],
};

describe("generic rules", () => {
  test("undefined (and null) is NotFound", () => {
    assert.equal(computeHealth(undefined).status, "NotFound");
    assert.equal(computeHealth(null).status, "NotFound");
  });

  test("something without a kind is Unknown", () => {
    assert.equal(computeHealth({ metadata: { name: "x" } }).status, "Unknown");
    assert.equal(computeHealth("Deployment").status, "Unknown");
  });

  test("an object being deleted is Terminating even if otherwise healthy", () => {
    const object = deployment(healthyDeploymentStatus);
    const deleting = { ...object, metadata: { ...object.metadata, deletionTimestamp: "2025-06-01T11:59:00Z" } };
    const result = computeHealth(deleting);
    assert.equal(result.status, "Terminating");
    assert.match(result.message, /being deleted/);
  });

  test("a spec change the controller has not observed yet is InProgress", () => {
    const result = computeHealth(deployment(healthyDeploymentStatus, { generation: 3 }));
    assert.equal(result.status, "InProgress");
    assert.match(result.message, /generation 3 not yet observed.*observed: 2/);
  });

  test("Reconciling=True is InProgress and Stalled=True is Failed, before any kind rule", () => {
    const reconciling = deployment({
      ...healthyDeploymentStatus,
      conditions: [condition("Reconciling", "True", "Progressing", "rolling out revision 7")],
    });
    assert.deepEqual(computeHealth(reconciling), { status: "InProgress", message: "rolling out revision 7" });

    const stalled = {
      apiVersion: "kustomize.toolkit.fluxcd.io/v1",
      kind: "Kustomization",
      metadata: { name: "apps", generation: 1 },
      status: {
        observedGeneration: 1,
        conditions: [
          condition("Ready", "False", "BuildFailed", "kustomize build failed"),
          condition("Stalled", "True", "BuildFailed", "kustomize build failed: missing resource"),
        ],
      },
    };
    assert.deepEqual(computeHealth(stalled), { status: "Failed", message: "kustomize build failed: missing resource" });
  });
});

describe("Deployment", () => {
  test("fully rolled out and Available is Current", () => {
    assert.deepEqual(computeHealth(deployment(healthyDeploymentStatus)), {
      status: "Current",
      message: "Deployment is available. Replicas: 2",
    });
  });

  test("replicas default to 1 when spec.replicas is unset", () => {
    const object = deployment({ ...healthyDeploymentStatus, replicas: 1, updatedReplicas: 1, readyReplicas: 1, availableReplicas: 1 });
    const withoutReplicas = { ...object, spec: { progressDeadlineSeconds: 600 } };
    assert.equal(computeHealth(withoutReplicas).status, "Current");
  });

  test("a fresh rollout with no updated pods names the counts", () => {
    const result = computeHealth(deployment({ replicas: 2, updatedReplicas: 0, readyReplicas: 2, availableReplicas: 2 }));
    assert.equal(result.status, "InProgress");
    assert.equal(result.message, "Updated: 0/2 replicas");
  });

  test("too few pods created yet", () => {
    const result = computeHealth(deployment({ replicas: 1 }, { replicas: 3 }));
    assert.deepEqual(result, { status: "InProgress", message: "Replicas: 1/3 created" });
  });

  test("old pods still terminating after a rollout", () => {
    const result = computeHealth(deployment({ ...healthyDeploymentStatus, replicas: 3 }));
    assert.equal(result.status, "InProgress");
    assert.match(result.message, /Pending termination: 1/);
  });

  test("updated pods not yet available", () => {
    const result = computeHealth(deployment({ replicas: 2, updatedReplicas: 2, readyReplicas: 2, availableReplicas: 1 }));
    assert.deepEqual(result, { status: "InProgress", message: "Available: 1/2 updated replicas" });
  });

  test("Available condition False keeps it InProgress with the controller's message", () => {
    const result = computeHealth(deployment({
      ...healthyDeploymentStatus,
      conditions: [
        condition("Available", "False", "MinimumReplicasUnavailable", "Deployment does not have minimum availability."),
        condition("Progressing", "True", "NewReplicaSetAvailable", "ok"),
      ],
    }));
    assert.equal(result.status, "InProgress");
    assert.match(result.message, /Deployment does not have minimum availability/);
  });

  test("Progressing not yet NewReplicaSetAvailable is InProgress", () => {
    const result = computeHealth(deployment({
      ...healthyDeploymentStatus,
      conditions: [
        condition("Available", "True", "MinimumReplicasAvailable"),
        condition("Progressing", "True", "ReplicaSetUpdated", "ReplicaSet \"podinfo-7d9f\" is progressing."),
      ],
    }));
    assert.equal(result.status, "InProgress");
    assert.match(result.message, /New ReplicaSet is not available yet/);
  });

  test("ProgressDeadlineExceeded is Failed", () => {
    const result = computeHealth(deployment({
      replicas: 2,
      updatedReplicas: 1,
      readyReplicas: 1,
      availableReplicas: 1,
      conditions: [
        condition("Available", "True", "MinimumReplicasAvailable"),
        condition("Progressing", "False", "ProgressDeadlineExceeded", "ReplicaSet \"podinfo-5c8\" has timed out progressing."),
      ],
    }));
    assert.equal(result.status, "Failed");
    assert.match(result.message, /Progress deadline exceeded: ReplicaSet "podinfo-5c8" has timed out progressing/);
  });

  test("the API group matters: a CRD kind called Deployment only gets the generic rules", () => {
    const foreign = { ...deployment({ replicas: 0 }), apiVersion: "example.com/v1" };
    assert.equal(computeHealth(foreign).status, "Current");
  });
});

describe("StatefulSet", () => {
  function statefulSet(spec: Record<string, unknown>, status: Record<string, unknown>) {
    return {
      apiVersion: "apps/v1",
      kind: "StatefulSet",
      metadata: { name: "redis", namespace: "apps", generation: 4 },
      spec: { replicas: 3, ...spec },
      status: { observedGeneration: 4, ...status },
    };
  }
  const settled = {
    replicas: 3,
    readyReplicas: 3,
    currentReplicas: 3,
    updatedReplicas: 3,
    currentRevision: "redis-6b7",
    updateRevision: "redis-6b7",
  };

  test("all replicas ready on the same revision is Current", () => {
    assert.deepEqual(computeHealth(statefulSet({}, settled)), {
      status: "Current",
      message: "All replicas scheduled as expected. Replicas: 3",
    });
  });

  test("not all replicas ready", () => {
    assert.deepEqual(computeHealth(statefulSet({}, { ...settled, readyReplicas: 1 })), inProgressWith("Ready: 1/3 replicas"));
  });

  test("revision rollout still under way", () => {
    const result = computeHealth(statefulSet({}, { ...settled, currentReplicas: 3, updatedReplicas: 1, updateRevision: "redis-9f1" }));
    assert.equal(result.status, "InProgress");
    assert.match(result.message, /redis-9f1/);
  });

  test("too few current replicas", () => {
    assert.deepEqual(computeHealth(statefulSet({}, { ...settled, currentReplicas: 2 })), inProgressWith("Current: 2/3 replicas"));
  });

  test("OnDelete strategy is Current once observed, whatever the counters say", () => {
    const result = computeHealth(statefulSet({ updateStrategy: { type: "OnDelete" } }, { ...settled, updateRevision: "redis-9f1" }));
    assert.equal(result.status, "Current");
  });

  test("a partitioned rollout only waits for the ordinals above the partition", () => {
    const spec = { updateStrategy: { type: "RollingUpdate", rollingUpdate: { partition: 2 } } };
    const done = computeHealth(statefulSet(spec, { ...settled, updatedReplicas: 1, updateRevision: "redis-9f1" }));
    assert.equal(done.status, "Current");
    const pending = computeHealth(statefulSet(spec, { ...settled, updatedReplicas: 0, updateRevision: "redis-9f1" }));
    assert.deepEqual(pending, { status: "InProgress", message: "Partitioned rollout: 0/1 replicas updated" });
  });
});

describe("DaemonSet", () => {
  function daemonSet(status: Record<string, unknown>) {
    return {
      apiVersion: "apps/v1",
      kind: "DaemonSet",
      metadata: { name: "node-exporter", namespace: "monitoring", generation: 1 },
      spec: {},
      status,
    };
  }
  const settled = {
    observedGeneration: 1,
    desiredNumberScheduled: 3,
    currentNumberScheduled: 3,
    updatedNumberScheduled: 3,
    numberAvailable: 3,
    numberReady: 3,
  };

  test("every node running the updated, ready pod is Current", () => {
    assert.deepEqual(computeHealth(daemonSet(settled)), { status: "Current", message: "All pods scheduled as expected. Pods: 3" });
  });

  test("a rolling update is InProgress with counts", () => {
    assert.deepEqual(computeHealth(daemonSet({ ...settled, updatedNumberScheduled: 1 })), inProgressWith("Updated: 1/3 pods"));
    assert.deepEqual(computeHealth(daemonSet({ ...settled, numberAvailable: 2 })), inProgressWith("Available: 2/3 pods"));
    assert.deepEqual(computeHealth(daemonSet({ ...settled, numberReady: 2 })), inProgressWith("Ready: 2/3 pods"));
    assert.deepEqual(computeHealth(daemonSet({ ...settled, currentNumberScheduled: 2 })), inProgressWith("Scheduled: 2/3 nodes"));
  });

  test("a DaemonSet its controller has not touched yet is InProgress", () => {
    assert.equal(computeHealth(daemonSet({})).status, "InProgress");
    assert.equal(computeHealth(daemonSet({ observedGeneration: 1 })).status, "InProgress");
  });
});

describe("ReplicaSet", () => {
  function replicaSet(status: Record<string, unknown>) {
    return {
      apiVersion: "apps/v1",
      kind: "ReplicaSet",
      metadata: { name: "podinfo-7d9f", namespace: "apps", generation: 1 },
      spec: { replicas: 2 },
      status: { observedGeneration: 1, ...status },
    };
  }

  test("all replicas labelled, available and ready is Current", () => {
    const result = computeHealth(replicaSet({ replicas: 2, fullyLabeledReplicas: 2, availableReplicas: 2, readyReplicas: 2 }));
    assert.deepEqual(result, { status: "Current", message: "ReplicaSet is available. Replicas: 2" });
  });

  test("ReplicaFailure is reported as InProgress with its message", () => {
    const result = computeHealth(replicaSet({
      replicas: 0,
      conditions: [condition("ReplicaFailure", "True", "FailedCreate", "pods \"podinfo-7d9f-x\" is forbidden: exceeded quota")],
    }));
    assert.equal(result.status, "InProgress");
    assert.match(result.message, /exceeded quota/);
  });

  test("too few available", () => {
    const result = computeHealth(replicaSet({ replicas: 2, fullyLabeledReplicas: 2, availableReplicas: 1, readyReplicas: 1 }));
    assert.deepEqual(result, { status: "InProgress", message: "Available: 1/2 replicas" });
  });
});

describe("Job and CronJob", () => {
  function job(status: Record<string, unknown>) {
    return {
      apiVersion: "batch/v1",
      kind: "Job",
      metadata: { name: "db-migrate", namespace: "apps", generation: 1 },
      spec: { completions: 1, parallelism: 1, backoffLimit: 2 },
      status,
    };
  }

  test("Complete=True is Current", () => {
    const result = computeHealth(job({
      startTime: "2025-06-01T11:58:00Z",
      succeeded: 1,
      conditions: [condition("Complete", "True")],
    }));
    assert.deepEqual(result, { status: "Current", message: "Job completed. Succeeded: 1/1" });
  });

  test("Failed=True is Failed with the controller's reason", () => {
    const result = computeHealth(job({
      startTime: "2025-06-01T11:58:00Z",
      failed: 3,
      conditions: [condition("Failed", "True", "BackoffLimitExceeded", "Job has reached the specified backoff limit")],
    }));
    assert.equal(result.status, "Failed");
    assert.equal(result.message, "Job failed: Job has reached the specified backoff limit. Failed pods: 3/1");
  });

  test("a running Job is InProgress with its counts", () => {
    const result = computeHealth(job({ startTime: "2025-06-01T11:58:00Z", active: 1, failed: 1 }));
    assert.deepEqual(result, { status: "InProgress", message: "Job in progress. Succeeded: 0/1, active: 1, failed: 1" });
  });

  test("a Job that has not started is InProgress", () => {
    assert.deepEqual(computeHealth(job({})), { status: "InProgress", message: "Job not started yet. Active: 0/1" });
  });

  test("a suspended Job is Current (spec.suspend, as kustomize-controller's Job reader reads it)", () => {
    const suspended = job({ conditions: [condition("Suspended", "True", "JobSuspended")] });
    const result = computeHealth({ ...suspended, spec: { ...suspended.spec, suspend: true } });
    assert.deepEqual(result, { status: "Current", message: "Job is suspended" });
  });

  test("a Job being deleted is judged by its conditions alone, as kustomize-controller's Job reader does", () => {
    const done = job({ startTime: "2025-06-01T11:58:00Z", succeeded: 1, conditions: [condition("Complete", "True")] });
    assert.equal(computeHealth({ ...done, metadata: { ...done.metadata, deletionTimestamp: "2025-06-01T11:59:00Z" } }).status, "Current");
  });

  test("CronJob is always Current", () => {
    const cronJob = { apiVersion: "batch/v1", kind: "CronJob", metadata: { name: "backup" }, spec: { schedule: "0 3 * * *" }, status: {} };
    assert.equal(computeHealth(cronJob).status, "Current");
  });
});

describe("Pod", () => {
  function pod(status: Record<string, unknown>, creationTimestamp = "2025-06-01T11:00:00Z") {
    const metadata = { name: "podinfo-7d9f-abcde", namespace: "apps", creationTimestamp };
    return { apiVersion: "v1", kind: "Pod", metadata, spec: {}, status };
  }

  test("Running and Ready is Current", () => {
    const result = computeHealth(pod({ phase: "Running", conditions: [{ type: "Ready", status: "True" }] }), NOW);
    assert.deepEqual(result, { status: "Current", message: "Pod is Ready" });
  });

  test("Succeeded and Failed are both Current (finished), as in kstatus, and Failed says why", () => {
    assert.equal(computeHealth(pod({ phase: "Succeeded" }), NOW).status, "Current");
    const result = computeHealth(pod({ phase: "Failed", reason: "Evicted", message: "The node was low on resource: memory." }), NOW);
    assert.equal(result.status, "Current");
    assert.match(result.message, /low on resource: memory/);
  });

  test("a crash-looping container is Failed and named", () => {
    const result = computeHealth(pod({
      phase: "Running",
      conditions: [{ type: "Ready", status: "False", reason: "ContainersNotReady" }],
      containerStatuses: [
        {
          name: "app",
          ready: false,
          state: { waiting: { reason: "CrashLoopBackOff", message: "back-off 5m0s restarting failed container" } },
        },
        { name: "sidecar", ready: true, state: { running: { startedAt: "2025-06-01T11:00:05Z" } } },
      ],
    }), NOW);
    assert.deepEqual(result, { status: "Failed", message: "Containers in CrashLoopBackOff: app" });
  });

  test("an image that cannot be pulled stays InProgress but says why", () => {
    const result = computeHealth(pod({
      phase: "Pending",
      conditions: [{ type: "PodScheduled", status: "True" }],
      containerStatuses: [{ name: "app", ready: false, state: { waiting: { reason: "ImagePullBackOff" } } }],
    }), NOW);
    assert.equal(result.status, "InProgress");
    assert.match(result.message, /app waiting: ImagePullBackOff/);
  });

  test("running but not ready is InProgress", () => {
    const result = computeHealth(pod({ phase: "Running", conditions: [{ type: "Ready", status: "False" }] }), NOW);
    assert.equal(result.status, "InProgress");
  });

  test("Unschedulable is Failed, but only after a short grace period", () => {
    const status = {
      phase: "Pending",
      conditions: [condition("PodScheduled", "False", "Unschedulable", "0/3 nodes are available: 3 Insufficient cpu.")],
    };
    const old = computeHealth(pod(status), NOW);
    assert.equal(old.status, "Failed");
    assert.match(old.message, /Insufficient cpu/);
    assert.equal(computeHealth(pod(status, "2025-06-01T11:59:55Z"), NOW).status, "InProgress");
  });

  test("no phase yet is InProgress", () => {
    assert.equal(computeHealth(pod({}), NOW).status, "InProgress");
  });
});

describe("core kinds with simple rules", () => {
  test("PersistentVolumeClaim is Current only when Bound", () => {
    const pvc = (phase: string) => ({ apiVersion: "v1", kind: "PersistentVolumeClaim", metadata: { name: "data" }, status: { phase } });
    assert.equal(computeHealth(pvc("Bound")).status, "Current");
    assert.deepEqual(computeHealth(pvc("Pending")), { status: "InProgress", message: "PVC is not Bound. Phase: Pending" });
  });

  test("Service: ClusterIP is Current, LoadBalancer waits for its cluster IP but not for an ingress address", () => {
    const service = (type: string, status: Record<string, unknown>) => ({
      apiVersion: "v1",
      kind: "Service",
      metadata: { name: "podinfo", namespace: "apps" },
      spec: { type, clusterIP: "10.96.0.12", ports: [{ port: 80 }] },
      status,
    });
    assert.equal(computeHealth(service("ClusterIP", {})).status, "Current");
    const noIngress = computeHealth(service("LoadBalancer", { loadBalancer: {} }));
    assert.equal(noIngress.status, "Current");
    assert.match(noIngress.message, /no ingress address/);
    const noClusterIP = service("LoadBalancer", {});
    assert.equal(computeHealth({ ...noClusterIP, spec: { type: "LoadBalancer" } }).status, "InProgress");
    const ready = computeHealth(service("LoadBalancer", { loadBalancer: { ingress: [{ ip: "203.0.113.10" }] } }));
    assert.deepEqual(ready, { status: "Current", message: "Service is ready. Ingress: 203.0.113.10" });
  });

  test("PodDisruptionBudget is Current once observed, reporting the healthy counts", () => {
    const pdb = {
      apiVersion: "policy/v1",
      kind: "PodDisruptionBudget",
      metadata: { name: "podinfo", generation: 2 },
      spec: { minAvailable: 2 },
      status: { observedGeneration: 2, disruptionsAllowed: 0, currentHealthy: 1, desiredHealthy: 2, expectedPods: 2 },
    };
    assert.deepEqual(computeHealth(pdb), { status: "Current", message: "Allowed disruptions computed: 0. Healthy: 1/2" });
    assert.equal(computeHealth({ ...pdb, status: { ...pdb.status, observedGeneration: 1 } }).status, "InProgress");
  });

  test("ConfigMap, Secret and RBAC objects are Current", () => {
    assert.equal(computeHealth({ apiVersion: "v1", kind: "ConfigMap", metadata: { name: "cfg" }, data: {} }).status, "Current");
    assert.equal(computeHealth({ apiVersion: "v1", kind: "Secret", metadata: { name: "s" }, type: "Opaque" }).status, "Current");
    const role = { apiVersion: "rbac.authorization.k8s.io/v1", kind: "ClusterRole", metadata: { name: "reader" }, rules: [] };
    assert.equal(computeHealth(role).status, "Current");
  });

  test("Namespace: Active is Current, deletionTimestamp set is Terminating", () => {
    const namespace = { apiVersion: "v1", kind: "Namespace", metadata: { name: "apps" }, status: { phase: "Active" } };
    assert.equal(computeHealth(namespace).status, "Current");
    const terminating = {
      ...namespace,
      metadata: { name: "apps", deletionTimestamp: "2025-06-01T11:59:00Z" },
      status: { phase: "Terminating" },
    };
    assert.equal(computeHealth(terminating).status, "Terminating");
  });
});

describe("CustomResourceDefinition", () => {
  function crd(conditions: Record<string, unknown>[]) {
    return {
      apiVersion: "apiextensions.k8s.io/v1",
      kind: "CustomResourceDefinition",
      metadata: { name: "widgets.example.com", generation: 1 },
      spec: { group: "example.com", names: { kind: "Widget", plural: "widgets" } },
      status: { conditions },
    };
  }

  test("Established=True is Current", () => {
    const result = computeHealth(crd([
      condition("NamesAccepted", "True", "NoConflicts", "no conflicts found"),
      condition("Established", "True", "InitialNamesAccepted", "the initial names have been accepted"),
    ]));
    assert.deepEqual(result, { status: "Current", message: "CRD is established" });
  });

  test("still installing is InProgress", () => {
    assert.equal(computeHealth(crd([])).status, "InProgress");
    assert.equal(computeHealth(crd([condition("Established", "False", "Installing")])).status, "InProgress");
  });

  test("conflicting names are Failed", () => {
    const result = computeHealth(crd([
      condition("NamesAccepted", "False", "PluralConflict", "\"widgets\" is already in use"),
      condition("Established", "False", "NotAccepted", "not all names are accepted"),
    ]));
    assert.equal(result.status, "Failed");
    assert.match(result.message, /"widgets" is already in use/);
  });
});

describe("custom resources", () => {
  function certificate(conditions: Record<string, unknown>[] | undefined) {
    return {
      apiVersion: "cert-manager.io/v1",
      kind: "Certificate",
      metadata: { name: "podinfo-tls", namespace: "apps", generation: 1 },
      spec: { secretName: "podinfo-tls" },
      status: conditions === undefined ? {} : { conditions },
    };
  }

  test("Ready=True is Current", () => {
    const result = computeHealth(certificate([condition("Ready", "True", "Ready", "Certificate is up to date and has not expired")]));
    assert.deepEqual(result, { status: "Current", message: "Certificate is up to date and has not expired" });
  });

  test("Ready=False is InProgress and carries the controller's message", () => {
    const result = computeHealth(certificate([
      condition("Ready", "False", "DoesNotExist", "Issuing certificate as Secret does not exist"),
    ]));
    assert.deepEqual(result, { status: "InProgress", message: "Resource is not Ready: Issuing certificate as Secret does not exist" });
  });

  test("no conditions at all is Current", () => {
    assert.equal(computeHealth(certificate(undefined)).status, "Current");
  });
});

describe("summarizeUnhealthy", () => {
  test("names every object that is not Current and nothing else", () => {
    const results: { id: string; result: HealthResult }[] = [
      {
        id: "Deployment/apps/podinfo",
        result: { status: "InProgress", message: "Deployment is not available: Deployment does not have minimum availability." },
      },
      { id: "Service/apps/podinfo", result: { status: "Current", message: "Service is ready" } },
      { id: "Job/apps/db-migrate", result: { status: "Failed", message: "Job failed.\n  Failed pods: 3" } },
      { id: "ConfigMap/apps/gone", result: { status: "NotFound", message: "" } },
    ];
    assert.equal(
      summarizeUnhealthy(results),
      "Deployment/apps/podinfo status: 'InProgress': Deployment is not available: Deployment does not have minimum availability.; "
      + "Job/apps/db-migrate status: 'Failed': Job failed. Failed pods: 3; "
      + "ConfigMap/apps/gone status: 'NotFound'",
    );
  });

  test("is empty when everything is Current", () => {
    assert.equal(summarizeUnhealthy([{ id: "ConfigMap/apps/cfg", result: { status: "Current", message: "ok" } }]), "");
    assert.equal(summarizeUnhealthy([]), "");
  });

  test("keeps very long messages short", () => {
    const summary = summarizeUnhealthy([{ id: "X/a/b", result: { status: "Failed", message: "x".repeat(5000) } }]);
    assert.ok(summary.length < 300);
    assert.match(summary, /^X\/a\/b status: 'Failed': x+…$/);
  });
});
