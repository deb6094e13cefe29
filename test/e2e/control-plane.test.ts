// Proves the control plane is real: workloads progress through the controller-manager, scheduler and kwok,
// and RBAC decides what a ServiceAccount may do.
import assert from "node:assert/strict";
import { after, before, describe, test } from "node:test";
import { skipUnlessBuilt } from "../harness/binaries.ts";
import { type ControlPlane, FAKE_NODE_NAME, startControlPlane } from "../harness/control-plane.ts";

const CONTROL_PLANE_BINARIES = [
  "etcd",
  "kube-apiserver",
  "kube-controller-manager",
  "kube-scheduler",
  "kubectl",
  "kwok",
];

function deployment(namespace: string, name: string, replicas: number) {
  return {
    apiVersion: "apps/v1",
    kind: "Deployment",
    metadata: { namespace, name },
    spec: {
      replicas,
      selector: { matchLabels: { app: name } },
      template: {
        metadata: { labels: { app: name } },
        spec: { containers: [{ name: "app", image: "registry.invalid/podinfo:6.9.0" }] },
      },
    },
  };
}

describe("control plane", { skip: skipUnlessBuilt(...CONTROL_PLANE_BINARIES) }, () => {
  let cluster: ControlPlane;

  before(async () => {
    const started = Date.now();
    cluster = await startControlPlane();
    console.log(`control plane ready in ${Date.now() - started} ms`);
  });
  after(async () => {
    await cluster?.stop();
  });

  test("serves the pinned Kubernetes version", async () => {
    const version = JSON.parse(await cluster.kubectl(["version", "-o", "json"]));
    assert.equal(version.serverVersion.gitVersion, "v1.36.3");
    assert.equal(version.clientVersion.gitVersion, "v1.36.3");
  });

  test("a Deployment applied with kubectl becomes Available with Running pods on the kwok node", async () => {
    await cluster.kubectl(["create", "namespace", "smoke"]);
    await cluster.kubectl(["apply", "-f", "-"], { input: JSON.stringify(deployment("smoke", "web", 2)) });
    await cluster.kubectl([
      "wait",
      "-n",
      "smoke",
      "deployment/web",
      "--for=condition=Available",
      "--timeout=60s",
    ]);
    const status = JSON.parse(
      await cluster.kubectl(["get", "-n", "smoke", "deployment/web", "-o", "json"]),
    ).status;
    assert.equal(status.readyReplicas, 2);
    assert.equal(status.availableReplicas, 2);
    const pods = JSON.parse(
      await cluster.kubectl(["get", "pods", "-n", "smoke", "-l", "app=web", "-o", "json"]),
    );
    assert.equal(pods.items.length, 2);
    for (const pod of pods.items) {
      assert.equal(pod.status.phase, "Running");
      assert.equal(pod.spec.nodeName, FAKE_NODE_NAME);
    }
  });

  test("a Job's pod runs to completion", async () => {
    await cluster.kubectl(["create", "namespace", "jobs"]);
    await cluster.kubectl(["apply", "-f", "-"], {
      input: JSON.stringify({
        apiVersion: "batch/v1",
        kind: "Job",
        metadata: { namespace: "jobs", name: "once" },
        spec: {
          template: {
            spec: {
              restartPolicy: "Never",
              containers: [{ name: "run", image: "registry.invalid/busybox:1" }],
            },
          },
        },
      }),
    });
    await cluster.kubectl(["wait", "-n", "jobs", "job/once", "--for=condition=Complete", "--timeout=60s"]);
    const job = JSON.parse(await cluster.kubectl(["get", "-n", "jobs", "job/once", "-o", "json"]));
    assert.equal(job.status.succeeded, 1);
  });

  test("RBAC denies a ServiceAccount a namespaced object until a Role allows it", async () => {
    await cluster.kubectl(["create", "namespace", "tenant"]);
    const tenant = await cluster.serviceAccountKubeconfig("tenant", "deployer");
    const configMap = JSON.stringify({
      apiVersion: "v1",
      kind: "ConfigMap",
      metadata: { namespace: "tenant", name: "settings" },
      data: { color: "blue" },
    });

    await assert.rejects(
      cluster.kubectl(["apply", "-f", "-"], { kubeconfig: tenant, input: configMap }),
      /forbidden: User "system:serviceaccount:tenant:deployer" cannot/,
    );
    await assert.rejects(
      cluster.kubectl(["get", "configmaps", "-n", "tenant"], { kubeconfig: tenant }),
      /forbidden/,
    );

    await cluster.kubectl([
      "create",
      "role",
      "configmaps",
      "-n",
      "tenant",
      "--verb=get,list,create,patch",
      "--resource=configmaps",
    ]);
    await cluster.kubectl([
      "create",
      "rolebinding",
      "deployer-configmaps",
      "-n",
      "tenant",
      "--role=configmaps",
      "--serviceaccount=tenant:deployer",
    ]);

    await cluster.kubectl(["apply", "--server-side", "-f", "-"], { kubeconfig: tenant, input: configMap });
    const stored = JSON.parse(
      await cluster.kubectl(["get", "configmap", "settings", "-n", "tenant", "-o", "json"], {
        kubeconfig: tenant,
      }),
    );
    assert.equal(stored.data.color, "blue");
    // The Role is namespaced: the same ServiceAccount still cannot touch another namespace.
    await assert.rejects(
      cluster.kubectl(["get", "configmaps", "-n", "default"], { kubeconfig: tenant }),
      /forbidden/,
    );
  });
});
