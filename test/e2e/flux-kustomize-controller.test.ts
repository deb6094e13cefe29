// Flux's own controllers end to end on the test bed: podinfo's kustomize directory pushed by `ferry push artifact`
// is fetched by Flux's source-controller (OCIRepository) and applied by Flux's kustomize-controller (Kustomization),
// both the test bed's peers (v1.9.5, as flux v2.9.5 installs them) run out of cluster on Flux's generated CRDs, with
// kustomize-controller downloading the artifact from source-controller's storage server on 127.0.0.1.
// One control plane (with kwok, so the Deployment really gets Ready pods) and one zot for the whole file.
import assert from "node:assert/strict";
import { cp, mkdtemp, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, before, describe, test } from "node:test";
import { skipUnlessBuilt } from "../harness/binaries.ts";
import { type ControlPlane, startControlPlane } from "../harness/control-plane.ts";
import type { Condition } from "../harness/delivery.ts";
import { ferryOk } from "../harness/ferry.ts";
import { FLUX_CRDS_PEER_BINARY, FLUX_KUSTOMIZE_API_VERSION, FLUX_SOURCE_API_VERSION, installFluxCrds } from "../harness/flux-crds.ts";
import { type KustomizeController, startKustomizeController } from "../harness/kustomize-controller.ts";
import { waitUntil } from "../harness/processes.ts";
import { type Registry, startRegistry } from "../harness/registry.ts";
import { type SourceController, startSourceController } from "../harness/source-controller.ts";

const PODINFO_KUSTOMIZE = join(import.meta.dirname, "..", "..", "..", "shared", "corpora", "podinfo", "kustomize");
const FLUX_NAMESPACE = "flux-system";
const FLUX_KUSTOMIZATION = "kustomizations.kustomize.toolkit.fluxcd.io";
const FLUX_OCI_REPOSITORY = "ocirepositories.source.toolkit.fluxcd.io";

interface FluxObject {
  metadata: { generation: number };
  status?: {
    observedGeneration?: number;
    conditions?: Condition[];
    lastAppliedRevision?: string;
    lastAttemptedRevision?: string;
    artifact?: { revision: string; digest: string; url: string };
    inventory?: { entries: Array<{ id: string; v: string }> };
  };
}

const conditionOf = (object: FluxObject, type: string) => object.status?.conditions?.find((candidate) => candidate.type === type);

describe("Flux's source-controller and kustomize-controller reconcile an artifact pushed by ferry", {
  skip: skipUnlessBuilt("etcd", "kube-apiserver", "kube-controller-manager", "kube-scheduler", "kubectl", "kwok", "zot", "source-controller", "kustomize-controller", FLUX_CRDS_PEER_BINARY),
}, () => {
  let cluster: ControlPlane;
  let registry: Registry;
  let sourceController: SourceController;
  let kustomizeController: KustomizeController;
  let dir: string;

  before(async () => {
    dir = await mkdtemp(join(tmpdir(), "ferry-e2e-flux-kc-"));
    [cluster, registry] = await Promise.all([startControlPlane(), startRegistry({ kind: "zot" })]);
    // No Ferry CRDs on this cluster, so all of Flux's (source and kustomize) can be installed.
    await installFluxCrds(cluster);
    await cluster.kubectl(["create", "namespace", FLUX_NAMESPACE]);
    [sourceController, kustomizeController] = await Promise.all([
      startSourceController({ kubeconfig: cluster.kubeconfig, dir }),
      startKustomizeController({ kubeconfig: cluster.kubeconfig, dir }),
    ]);
  });
  after(async () => {
    await Promise.all([sourceController?.stop(), kustomizeController?.stop()]);
    await Promise.all([registry?.stop(), cluster?.stop()]);
    if (dir) await rm(dir, { recursive: true, force: true });
  });

  async function push(path: string, repository: string): Promise<string> {
    const url = `oci://${registry.host}/${repository}:v1`;
    return (await ferryOk(["push", "artifact", url, `--path=${path}`, "--source=e2e", "--revision=r", "--insecure-registry"])).stdout.trim();
  }

  async function apply(objects: readonly unknown[]): Promise<void> {
    await cluster.kubectl(["apply", "--server-side", "-f", "-"], { input: JSON.stringify({ apiVersion: "v1", kind: "List", items: objects }) });
  }

  async function waitFor(resource: string, name: string, description: string, check: (object: FluxObject) => boolean, timeoutMs = 120_000) {
    let last: FluxObject | undefined;
    const poll = async () => check((last = JSON.parse(await cluster.kubectl(["get", resource, name, "-n", FLUX_NAMESPACE, "-o", "json"]))));
    const process = resource === FLUX_KUSTOMIZATION ? kustomizeController.process : sourceController.process;
    await waitUntil(`${resource} ${name}: ${description}`, poll, { timeoutMs, intervalMs: 300, process })
      .catch((error: Error) => {
        throw new Error(`${error.message}\nlast status: ${JSON.stringify(last?.status, null, 2)}`);
      });
    return last as FluxObject;
  }

  const readyAt = (digest: string) => (object: FluxObject) =>
    object.status?.observedGeneration === object.metadata.generation
    && object.status?.lastAppliedRevision === `v1@${digest}`
    && conditionOf(object, "Ready")?.status === "True";

  test("podinfo: OCIRepository and Kustomization Ready, its objects applied, healthy and in the inventory", async () => {
    await cluster.kubectl(["create", "namespace", "podinfo"]);
    // A copy, so the second test can change it.
    const tree = join(dir, "podinfo");
    await cp(PODINFO_KUSTOMIZE, tree, { recursive: true });
    const digest = await push(tree, "flux-kc/podinfo");
    assert.match(digest, /^sha256:[0-9a-f]{64}$/);
    await apply([
      {
        apiVersion: FLUX_SOURCE_API_VERSION,
        kind: "OCIRepository",
        metadata: { namespace: FLUX_NAMESPACE, name: "podinfo" },
        spec: { url: `oci://${registry.host}/flux-kc/podinfo`, ref: { tag: "v1" }, interval: "3s", insecure: true },
      },
      {
        apiVersion: FLUX_KUSTOMIZE_API_VERSION,
        kind: "Kustomization",
        metadata: { namespace: FLUX_NAMESPACE, name: "podinfo" },
        spec: {
          sourceRef: { kind: "OCIRepository", name: "podinfo" },
          path: "./",
          interval: "10m",
          prune: true,
          wait: true,
          timeout: "2m",
          targetNamespace: "podinfo",
        },
      },
    ]);
    const source = await waitFor(FLUX_OCI_REPOSITORY, "podinfo", "Ready", (o) => conditionOf(o, "Ready")?.status === "True");
    assert.equal(source.status?.artifact?.revision, `v1@${digest}`);
    assert.equal(new URL(source.status?.artifact?.url ?? "").host, sourceController.storageAddress);

    const kustomization = await waitFor(FLUX_KUSTOMIZATION, "podinfo", "Ready on the pushed revision", readyAt(digest));
    assert.equal(conditionOf(kustomization, "Ready")?.reason, "ReconciliationSucceeded");
    assert.equal(conditionOf(kustomization, "Ready")?.message, `Applied revision: v1@${digest}`);
    // wait: true, so Healthy is set too (every applied object Current).
    assert.equal(conditionOf(kustomization, "Healthy")?.status, "True", JSON.stringify(conditionOf(kustomization, "Healthy")));
    assert.deepEqual(kustomization.status?.inventory?.entries.map((entry) => entry.id).sort(), [
      "podinfo_podinfo__Service",
      "podinfo_podinfo_apps_Deployment",
      "podinfo_podinfo_autoscaling_HorizontalPodAutoscaler",
    ]);

    const deployment = JSON.parse(await cluster.kubectl(["get", "deployment", "podinfo", "-n", "podinfo", "--show-managed-fields", "-o", "json"]));
    assert.equal(deployment.metadata.labels["kustomize.toolkit.fluxcd.io/name"], "podinfo");
    assert.equal(deployment.metadata.labels["kustomize.toolkit.fluxcd.io/namespace"], FLUX_NAMESPACE);
    assert.ok(deployment.metadata.managedFields.some((field: { manager: string }) => field.manager === "kustomize-controller"));
    assert.ok((deployment.status.availableReplicas ?? 0) >= 1, JSON.stringify(deployment.status));
    const others = await cluster.kubectl(["get", "service/podinfo", "horizontalpodautoscaler/podinfo", "-n", "podinfo", "-o", "name"]);
    assert.deepEqual(others.trim().split("\n").sort(), ["horizontalpodautoscaler.autoscaling/podinfo", "service/podinfo"]);
  });

  test("a new revision of the same tag: applied, and what it no longer lists is pruned", async () => {
    const tree = join(dir, "podinfo");
    await rm(join(tree, "hpa.yaml"));
    await writeFile(join(tree, "kustomization.yaml"), "apiVersion: kustomize.config.k8s.io/v1beta1\nkind: Kustomization\nresources:\n  - deployment.yaml\n  - service.yaml\n");
    const digest = await push(tree, "flux-kc/podinfo");
    // source-controller polls the tag every 3s; kustomize-controller follows the new artifact revision.
    const kustomization = await waitFor(FLUX_KUSTOMIZATION, "podinfo", "Ready on the second revision", readyAt(digest));
    assert.deepEqual(kustomization.status?.inventory?.entries.map((entry) => entry.id).sort(), [
      "podinfo_podinfo__Service",
      "podinfo_podinfo_apps_Deployment",
    ]);
    await waitUntil("the HorizontalPodAutoscaler pruned", async () =>
      (await cluster.kubectl(["get", "horizontalpodautoscaler", "-n", "podinfo", "-o", "name"])).trim() === "", { timeoutMs: 30_000, intervalMs: 300 });
  });
});
