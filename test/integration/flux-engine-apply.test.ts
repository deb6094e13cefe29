// flux-engine apply against the test bed's real control plane: Flux's engine (fluxcd/pkg/ssa staged server-side apply
// with kustomize-controller's field manager and owner labels, kstatus wait, inventory prune) does what the reference
// differential tests will rely on. Not Flux's controller: there is no reconcile loop here.
import assert from "node:assert/strict";
import { mkdir, mkdtemp, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, before, describe, test } from "node:test";
import { skipUnlessBuilt } from "../harness/binaries.ts";
import { type ControlPlane, startControlPlane } from "../harness/control-plane.ts";
import { fluxApply } from "../harness/flux-engine.ts";

const PODINFO_KUSTOMIZE = join(import.meta.dirname, "..", "..", "..", "shared", "corpora", "podinfo", "kustomize");

describe("flux-engine apply on a real cluster", { skip: skipUnlessBuilt("flux-engine", "kube-apiserver", "etcd", "kwok") }, () => {
  let cluster: ControlPlane;
  let dir: string;
  before(async () => {
    dir = await mkdtemp(join(tmpdir(), "ferry-flux-apply-"));
    cluster = await startControlPlane();
    await cluster.kubectl(["create", "namespace", "apps"]);
  });
  after(async () => {
    await cluster?.stop();
    await rm(dir, { recursive: true, force: true });
  });

  const owner = { namespace: "flux-system", name: "podinfo" };

  test("applies podinfo in stages as kustomize-controller, waits until Current, and a second apply changes nothing", async () => {
    const spec = { targetNamespace: "apps", commonMetadata: { labels: { team: "web" } } };
    const first = await fluxApply({
      kubeconfig: cluster.kubeconfig, ...owner, path: PODINFO_KUSTOMIZE, spec,
      wait: true, timeout: "2m", interval: "1s",
    });
    assert.equal(first.ready, true, first.message);
    assert.match(first.message, /^Health check passed in /);
    assert.deepEqual(first.changeSet.map((entry) => `${entry.subject} ${entry.action}`).sort(), [
      "Deployment/apps/podinfo created",
      "HorizontalPodAutoscaler/apps/podinfo created",
      "Service/apps/podinfo created",
    ]);
    assert.deepEqual(first.inventory.map((entry) => entry.id).sort(), [
      "apps_podinfo__Service",
      "apps_podinfo_apps_Deployment",
      "apps_podinfo_autoscaling_HorizontalPodAutoscaler",
    ]);
    const managers = await cluster.kubectl(["get", "deployment", "podinfo", "-n", "apps", "-o", "jsonpath={.metadata.managedFields[*].manager}"]);
    assert.match(managers, /\bkustomize-controller\b/);
    const labels = JSON.parse(await cluster.kubectl(["get", "deployment", "podinfo", "-n", "apps", "-o", "jsonpath={.metadata.labels}"]));
    assert.equal(labels["kustomize.toolkit.fluxcd.io/name"], "podinfo");
    assert.equal(labels["kustomize.toolkit.fluxcd.io/namespace"], "flux-system");
    assert.equal(labels.team, "web", "spec.commonMetadata");

    const second = await fluxApply({ kubeconfig: cluster.kubeconfig, ...owner, path: PODINFO_KUSTOMIZE, spec });
    assert.deepEqual(second.changeSet.map((entry) => entry.action), ["unchanged", "unchanged", "unchanged"]);
  });

  test("prunes what the previous inventory lists and this apply does not, except objects marked prune: disabled", async () => {
    const labels = "kustomize.toolkit.fluxcd.io/name=podinfo,kustomize.toolkit.fluxcd.io/namespace=flux-system";
    for (const name of ["stale", "kept"]) {
      await cluster.kubectl(["create", "configmap", name, "-n", "apps"]);
      await cluster.kubectl(["label", "configmap", name, "-n", "apps", ...labels.split(",")]);
    }
    await cluster.kubectl(["annotate", "configmap", "kept", "-n", "apps", "kustomize.toolkit.fluxcd.io/prune=disabled"]);
    const inventory = join(dir, "inventory.json");
    await writeFile(inventory, JSON.stringify([
      { id: "apps_podinfo__Service", v: "v1" },
      { id: "apps_stale__ConfigMap", v: "v1" },
      { id: "apps_kept__ConfigMap", v: "v1" },
    ]));
    const result = await fluxApply({
      kubeconfig: cluster.kubeconfig, ...owner, path: PODINFO_KUSTOMIZE, spec: { targetNamespace: "apps", commonMetadata: { labels: { team: "web" } } },
      pruneInventory: inventory,
    });
    assert.deepEqual(result.pruned.map((entry) => `${entry.subject} ${entry.action}`).sort(), [
      "ConfigMap/apps/kept skipped",
      "ConfigMap/apps/stale deleted",
    ]);
    assert.match(await cluster.kubectl(["get", "configmap", "-n", "apps", "-o", "name"]), /configmap\/kept/);
    assert.doesNotMatch(await cluster.kubectl(["get", "configmap", "-n", "apps", "-o", "name"]), /configmap\/stale/);
  });

  test("a wait that times out reports ready false with kstatus' view of what held it up", async () => {
    const source = join(dir, "pvc");
    await mkdir(source);
    await writeFile(join(source, "pvc.yaml"), [
      "apiVersion: v1",
      "kind: PersistentVolumeClaim",
      "metadata: {name: data, namespace: apps}",
      "spec: {accessModes: [ReadWriteOnce], resources: {requests: {storage: 1Gi}}, storageClassName: none}",
      "",
    ].join("\n"));
    const result = await fluxApply({ kubeconfig: cluster.kubeconfig, namespace: "flux-system", name: "pvc", path: source, wait: true, timeout: "4s", interval: "1s" });
    assert.equal(result.ready, false);
    assert.deepEqual(result.changeSet.map((entry) => `${entry.subject} ${entry.action}`), ["PersistentVolumeClaim/apps/data created"]);
    assert.match(result.message, /health check failed after .*PersistentVolumeClaim\/apps\/data status: 'InProgress'/s);
  });
});
