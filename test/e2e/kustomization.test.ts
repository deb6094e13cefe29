// The delivery loop end to end: an artifact pushed to zot is pulled by an OCIRepository, built with kustomize,
// applied with server-side apply, becomes healthy on kwok nodes, and objects that leave the artifact are pruned.
import assert from "node:assert/strict";
import { cp, readFile, rm, writeFile } from "node:fs/promises";
import { join } from "node:path";
import { after, before, describe, test } from "node:test";
import { skipUnlessBuilt } from "../harness/binaries.ts";
import type { ControlPlane } from "../harness/control-plane.ts";
import { DeliveryBed, type ObservedKustomization } from "../harness/delivery.ts";
import { ferryOk } from "../harness/ferry.ts";

const PODINFO = join(import.meta.dirname, "..", "..", "..", "shared", "corpora", "podinfo", "kustomize");

describe("Kustomization reconciler", { skip: skipUnlessBuilt("etcd", "kube-apiserver", "kube-controller-manager", "kube-scheduler", "kubectl", "kwok", "zot", "kustomize") }, () => {
  let bed: DeliveryBed;
  let cluster: ControlPlane;
  let source: string;

  const push = () => bed.push(source, "apps/podinfo");
  const waitForKs = (description: string, check: (object: ObservedKustomization) => boolean, timeoutMs = 60_000) =>
    bed.waitForKustomization("default", "podinfo", description, check, timeoutMs);

  before(async () => {
    bed = await DeliveryBed.start();
    cluster = bed.cluster;
    source = join(bed.dir, "podinfo");
    await cp(PODINFO, source, { recursive: true });
    await cluster.kubectl(["create", "namespace", "apps"]);
    bed.startController();
  });
  after(async () => {
    await bed?.stop();
  });

  test("podinfo is built with kustomize, applied into its target namespace, becomes healthy, and is inventoried", async () => {
    const digest = await push();
    await cluster.kubectl(["apply", "-f", "-"], {
      input: JSON.stringify({
        apiVersion: "v1",
        kind: "List",
        items: [
          { apiVersion: "source.ferry.dev/v1", kind: "OCIRepository", metadata: { namespace: "default", name: "podinfo" }, spec: { url: `oci://${bed.registry.host}/apps/podinfo`, ref: { tag: "v1" }, interval: "2s", insecure: true } },
          { apiVersion: "kustomize.ferry.dev/v1", kind: "Kustomization", metadata: { namespace: "default", name: "podinfo" }, spec: { sourceRef: { kind: "OCIRepository", name: "podinfo" }, path: "./", interval: "1h", prune: true, wait: true, timeout: "60s", targetNamespace: "apps" } },
        ],
      }),
    });
    const object = await waitForKs("Ready with the pushed revision", (o) => o.status?.lastAppliedRevision === `v1@${digest}` && o.status.conditions?.some((c) => c.type === "Ready" && c.status === "True") === true);
    assert.deepEqual(object.status?.inventory?.entries.map((entry) => entry.id).sort(), [
      "apps_podinfo__Service",
      "apps_podinfo_apps_Deployment",
      "apps_podinfo_autoscaling_HorizontalPodAutoscaler",
    ]);
    assert.equal(object.status?.conditions?.find((c) => c.type === "Healthy")?.status, "True");
    const deployment = JSON.parse(await cluster.kubectl(["get", "deployment", "podinfo", "-n", "apps", "-o", "json", "--show-managed-fields"]));
    assert.equal(deployment.metadata.labels["kustomize.ferry.dev/name"], "podinfo");
    assert.ok(deployment.status.availableReplicas >= 1, "the Deployment never became Available");
    const managers = deployment.metadata.managedFields.map((field: { manager: string }) => field.manager);
    assert.ok(managers.includes("ferry"), `field managers: ${managers.join(", ")}`);
  });

  test("drift in a managed field is reverted on the next reconcile (ferry reconcile kustomization --with-source)", async () => {
    await cluster.kubectl(["label", "deployment", "podinfo", "-n", "apps", "--overwrite", "kustomize.ferry.dev/name=someone-else"]);
    const reconciled = await ferryOk(["reconcile", "kustomization", "podinfo", "-n", "default", "--with-source", `--kubeconfig=${cluster.kubeconfig}`]);
    assert.match(reconciled.stderr, /fetched revision v1@sha256:[\s\S]*applied revision v1@sha256:/);
    const suspended = await ferryOk(["suspend", "kustomization", "podinfo", "-n", "default", `--kubeconfig=${cluster.kubeconfig}`]);
    assert.match(suspended.stderr, /Kustomization podinfo suspended/);
    await ferryOk(["resume", "kustomization", "podinfo", "-n", "default", `--kubeconfig=${cluster.kubeconfig}`]);
    const deployment = JSON.parse(await cluster.kubectl(["get", "deployment", "podinfo", "-n", "apps", "-o", "json"]));
    assert.equal(deployment.metadata.labels["kustomize.ferry.dev/name"], "podinfo");
  });

  test("an object that leaves the artifact is pruned on the next revision", async () => {
    await rm(join(source, "hpa.yaml"));
    await writeFile(join(source, "kustomization.yaml"), (await readFile(join(source, "kustomization.yaml"), "utf8")).replace("  - hpa.yaml\n", ""));
    const digest = await push();
    const object = await waitForKs("the new revision applied", (o) => o.status?.lastAppliedRevision === `v1@${digest}`);
    assert.deepEqual(object.status?.inventory?.entries.map((entry) => entry.id).sort(), ["apps_podinfo__Service", "apps_podinfo_apps_Deployment"]);
    await assert.rejects(cluster.kubectl(["get", "hpa", "podinfo", "-n", "apps"]), /NotFound/);
  });

  test("deleting a pruning Kustomization deletes what it applied", async () => {
    await cluster.kubectl(["delete", "kustomization", "podinfo", "-n", "default", "--timeout=60s"]);
    await assert.rejects(cluster.kubectl(["get", "deployment", "podinfo", "-n", "apps"]), /NotFound/);
    await assert.rejects(cluster.kubectl(["get", "service", "podinfo", "-n", "apps"]), /NotFound/);
  });
});
