// ferry migrate on a real apiserver with Flux's own CRDs and Flux's real controllers (source-controller and
// kustomize-controller v1.9.5, the test bed's peers): podinfo is reconciled to Ready by Flux's OCIRepository and
// Kustomization, and then `ferry migrate` hands everything to Ferry's controller: same objects (uids), Flux's suspended,
// and a later revision that drops an object and a field is pruned and applied by Ferry. Flux's objects are then
// deleted while kustomize-controller runs: its finalizer skips a suspended Kustomization (finalizerShouldDeleteResources
// in v1.9.5), so no workload goes. --rollback hands it all back, and kustomize-controller takes it up again.
// Only the in-flight case uses the flux-engine peer (Flux's apply without the controller): it fakes a Reconciling
// status the real controller would overwrite, so it runs first, before Flux's controllers start.
import assert from "node:assert/strict";
import { cp, mkdtemp, readFile, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, before, describe, test } from "node:test";
import { skipUnlessBuilt } from "../harness/binaries.ts";
import { DeliveryBed, readyWith } from "../harness/delivery.ts";
import { ferry, ferryOk } from "../harness/ferry.ts";
import { FLUX_CRDS_PEER_BINARY, FLUX_KUSTOMIZE_API_VERSION, FLUX_SOURCE_API_VERSION, installFluxCrds } from "../harness/flux-crds.ts";
import { fluxApply } from "../harness/flux-engine.ts";
import { type KustomizeController, startKustomizeController } from "../harness/kustomize-controller.ts";
import { waitUntil } from "../harness/processes.ts";
import { type SourceController, startSourceController } from "../harness/source-controller.ts";

const PODINFO = join(import.meta.dirname, "..", "..", "..", "shared", "corpora", "podinfo", "kustomize");

const FLUX_KS = "kustomizations.kustomize.toolkit.fluxcd.io";
const FLUX_OCI = "ocirepositories.source.toolkit.fluxcd.io";

interface Live {
  metadata: {
    uid: string;
    generation?: number;
    labels?: Record<string, string>;
    managedFields?: Array<{ manager: string; operation: string }>;
  };
  spec?: Record<string, unknown>;
  status?: {
    inventory?: { entries: Array<{ id: string; v: string }> };
    conditions?: Array<{ type: string; status: string }>;
    lastAppliedRevision?: string;
    observedGeneration?: number;
    lastHandledReconcileAt?: string;
  };
}

/** kubectl arguments that read the object of a Flux inventory id. */
function getArgs(id: string): string[] {
  const parts = id.split("_");
  const kind = parts.pop() ?? "";
  const group = parts.pop() ?? "";
  const namespace = parts.shift() ?? "";
  return [group ? `${kind}.${group}` : kind, parts.join("_"), ...(namespace ? ["-n", namespace] : [])];
}

describe("ferry migrate: Flux's Kustomization taken over in place", {
  skip: skipUnlessBuilt(FLUX_CRDS_PEER_BINARY, "flux-engine", "etcd", "kube-apiserver", "kube-controller-manager", "kwok", "kubectl", "zot", "kustomize",
    "source-controller", "kustomize-controller"),
}, () => {
  let bed: DeliveryBed;
  let dir: string;
  let sourceController: SourceController | undefined;
  let kustomizeController: KustomizeController | undefined;

  before(async () => {
    dir = await mkdtemp(join(tmpdir(), "ferry-e2e-migrate-"));
    bed = await DeliveryBed.start();
    await installFluxCrds(bed.cluster);
    await bed.cluster.kubectl(["create", "namespace", "flux-system"]);
  });
  after(async () => {
    await Promise.all([sourceController?.stop(), kustomizeController?.stop()]);
    await bed?.stop();
    if (dir) await rm(dir, { recursive: true, force: true });
  });

  const kubeconfig = () => `--kubeconfig=${bed.cluster.kubeconfig}`;
  const get = async (args: readonly string[]) => JSON.parse(await bed.cluster.kubectl(["get", ...args, "--show-managed-fields", "-o", "json"])) as Live;

  /** podinfo applied by Flux's engine as Kustomization namespace/name, and Flux's objects for it, as Flux leaves them. */
  async function deliveredByFlux(namespace: string, name: string, target: string) {
    const root = join(dir, name);
    await cp(PODINFO, root, { recursive: true });
    await bed.cluster.kubectl(["create", "namespace", namespace]);
    await bed.cluster.kubectl(["create", "namespace", target]);
    const repository = `migrate/${name}`;
    const digest = await bed.push(root, repository);
    const applied = await fluxApply({
      kubeconfig: bed.cluster.kubeconfig, namespace, name, root, path: root, spec: { targetNamespace: target },
    });
    assert.equal(applied.inventory.length, 3);
    await bed.applyObjects([
      {
        apiVersion: "source.toolkit.fluxcd.io/v1",
        kind: "OCIRepository",
        metadata: { namespace, name },
        spec: { url: `oci://${bed.registry.host}/${repository}`, ref: { tag: "v1" }, interval: "1h", insecure: true },
      },
      {
        apiVersion: "kustomize.toolkit.fluxcd.io/v1",
        kind: "Kustomization",
        metadata: { namespace, name },
        spec: { sourceRef: { kind: "OCIRepository", name }, path: "./", interval: "1h", prune: true, targetNamespace: target },
      },
    ]);
    await bed.cluster.kubectl([
      "patch", FLUX_KS, name, "-n", namespace, "--subresource=status", "--type=merge",
      "-p", JSON.stringify({ status: { inventory: { entries: applied.inventory } } }),
    ]);
    return { root, digest, inventory: applied.inventory };
  }

  /** Flux's real source-controller and kustomize-controller, started once (after the in-flight case). */
  async function fluxControllers(): Promise<KustomizeController> {
    if (!sourceController || !kustomizeController) {
      [sourceController, kustomizeController] = await Promise.all([
        startSourceController({ kubeconfig: bed.cluster.kubeconfig, dir }),
        startKustomizeController({ kubeconfig: bed.cluster.kubeconfig, dir }),
      ]);
    }
    return kustomizeController;
  }

  async function waitForFlux(namespace: string, name: string, description: string, check: (object: Live) => boolean): Promise<Live> {
    const controller = await fluxControllers();
    let last: Live | undefined;
    await waitUntil(`Flux's ${namespace}/${name}: ${description}`, async () => check((last = await get([FLUX_KS, name, "-n", namespace]))), {
      timeoutMs: 120_000, intervalMs: 300, process: controller.process,
    }).catch((error: Error) => {
      throw new Error(`${error.message}\nlast status: ${JSON.stringify(last?.status, null, 2)}`);
    });
    return last as Live;
  }

  const fluxReadyAt = (digest: string) => (object: Live) =>
    object.status?.lastAppliedRevision === `v1@${digest}` && object.status?.conditions?.some((c) => c.type === "Ready" && c.status === "True") === true;

  /** podinfo reconciled to Ready by Flux's real controllers as Kustomization namespace/name, applied into `target`. */
  async function deliveredByRealFlux(namespace: string, name: string, target: string) {
    await fluxControllers();
    const root = join(dir, name);
    await cp(PODINFO, root, { recursive: true });
    await bed.cluster.kubectl(["create", "namespace", namespace]);
    await bed.cluster.kubectl(["create", "namespace", target]);
    const repository = `migrate/${name}`;
    const digest = await bed.push(root, repository);
    await bed.applyObjects([
      {
        apiVersion: FLUX_SOURCE_API_VERSION,
        kind: "OCIRepository",
        metadata: { namespace, name },
        spec: { url: `oci://${bed.registry.host}/${repository}`, ref: { tag: "v1" }, interval: "1h", insecure: true },
      },
      {
        apiVersion: FLUX_KUSTOMIZE_API_VERSION,
        kind: "Kustomization",
        metadata: { namespace, name },
        spec: { sourceRef: { kind: "OCIRepository", name }, path: "./", interval: "1h", prune: true, targetNamespace: target },
      },
    ]);
    const ready = await waitForFlux(namespace, name, "Ready at v1", fluxReadyAt(digest));
    const inventory = ready.status?.inventory?.entries ?? [];
    assert.equal(inventory.length, 3);
    return { root, digest, inventory };
  }

  const uids = async (inventory: ReadonlyArray<{ id: string }>) =>
    Promise.all(inventory.map(async (entry) => (await get(getArgs(entry.id))).metadata.uid));

  // Flux's engine, not its controller, and before the controller starts: the status is faked as a reconcile in flight.
  test("a reconcile Flux has in flight when suspended is waited for, and the inventory it leaves is the one carried", async () => {
    const { inventory } = await deliveredByFlux("busy", "busy", "web3");
    const inFlight = { type: "Reconciling", status: "True", reason: "Progressing", message: "Reconciliation in progress", lastTransitionTime: new Date().toISOString() };
    const patchStatus = (status: unknown) => bed.cluster.kubectl([
      "patch", FLUX_KS, "busy", "-n", "busy", "--subresource=status", "--type=merge", "-p", JSON.stringify({ status }),
    ]);
    // As listed: mid-reconcile, the HPA not yet in the inventory.
    await patchStatus({ conditions: [inFlight], inventory: { entries: inventory.filter((entry) => !entry.id.endsWith("HorizontalPodAutoscaler")) } });
    const migration = ferry(["migrate", "-n", "busy", kubeconfig()]);
    for (let polls = 0; (await get([FLUX_KS, "busy", "-n", "busy"])).spec?.suspend !== true; polls++) {
      assert.ok(polls < 100, "Flux's Kustomization was suspended");
      await new Promise((resolve) => setTimeout(resolve, 200));
    }
    await new Promise((resolve) => setTimeout(resolve, 1_000));
    await patchStatus({ conditions: [], inventory: { entries: inventory } });
    const result = await migration;
    assert.equal(result.status, 0, result.stderr);
    assert.match(result.stderr, /waiting for kustomize-controller to finish reconciling Kustomization busy\/busy/);
    const carried = await get(["kustomizations.kustomize.ferry.dev", "busy", "-n", "busy"]);
    assert.deepEqual(carried.status?.inventory?.entries.map((entry) => entry.id).sort(), inventory.map((entry) => entry.id).sort());
  });

  test("Ferry takes over: Flux's suspended, same uids, a later revision prunes an object and removes a field", async () => {
    const { root, digest, inventory } = await deliveredByRealFlux("apps", "podinfo", "web");
    const before = await uids(inventory);
    const deployment = await get(["deployment", "podinfo", "-n", "web"]);
    assert.ok(deployment.metadata.managedFields?.some((entry) => entry.manager === "kustomize-controller" && entry.operation === "Apply"));

    const plan = await ferryOk(["migrate", "-n", "apps", "--dry-run", kubeconfig()]);
    assert.match(plan.stdout, /suspend Kustomization apps\/podinfo/);
    assert.match(plan.stdout, /create Kustomization apps\/podinfo \(kustomize\.ferry\.dev\/v1\), inventory of 3 object\(s\)/);
    assert.notEqual((await get([FLUX_KS, "podinfo", "-n", "apps"])).spec?.suspend, true, "a dry run changes nothing");
    const exported = JSON.parse((await ferryOk(["migrate", "-n", "apps", "--export", "-o", "json", kubeconfig()])).stdout) as { items: Live[] };
    assert.deepEqual(exported.items.map((item) => (item as unknown as { apiVersion: string }).apiVersion), ["source.ferry.dev/v1", "kustomize.ferry.dev/v1"]);

    const migrated = await ferryOk(["migrate", "-n", "apps", kubeconfig()]);
    assert.match(migrated.stderr, /3 object\(s\) handed from kustomize-controller to Ferry/);
    assert.equal((await get([FLUX_KS, "podinfo", "-n", "apps"])).spec?.suspend, true);
    assert.equal((await get([FLUX_OCI, "podinfo", "-n", "apps"])).spec?.suspend, true);
    const ferryKs = await get(["kustomizations.kustomize.ferry.dev", "podinfo", "-n", "apps"]);
    assert.deepEqual(ferryKs.status?.inventory?.entries, inventory);
    const handed = await get(["deployment", "podinfo", "-n", "web"]);
    assert.equal(handed.metadata.labels?.["kustomize.ferry.dev/name"], "podinfo");
    assert.equal(handed.metadata.labels?.["kustomize.toolkit.fluxcd.io/name"], undefined);
    assert.deepEqual(
      handed.metadata.managedFields?.filter((entry) => !("subresource" in entry)).map((entry) => `${entry.manager}/${entry.operation}`),
      ["ferry/Apply"],
      "kustomize-controller's fields and the relabelling are Ferry's alone",
    );

    bed.startController();
    await bed.waitForKustomization("apps", "podinfo", "Ready at v1", readyWith(digest), 120_000);
    assert.deepEqual(await uids(inventory), before, "nothing was deleted or re-created");
    const again = await ferryOk(["migrate", "-n", "apps", kubeconfig()]);
    assert.match(again.stderr, /Kustomization apps\/podinfo was already migrated and is Ferry's/, "a second run is harmless");

    // v2: the HPA leaves the artifact, and the Deployment loses minReadySeconds.
    await rm(join(root, "hpa.yaml"));
    await writeFile(join(root, "kustomization.yaml"), (await readFile(join(root, "kustomization.yaml"), "utf8")).replace("  - hpa.yaml\n", ""));
    await writeFile(join(root, "deployment.yaml"), (await readFile(join(root, "deployment.yaml"), "utf8")).replace("  minReadySeconds: 3\n", ""));
    const v2 = await bed.push(root, "migrate/podinfo");
    await bed.reconcileSource("apps", "podinfo");
    await bed.waitForKustomization("apps", "podinfo", "Ready at v2", readyWith(v2), 120_000);
    const hpa = await bed.cluster.kubectl(["get", "hpa", "-n", "web", "-o", "name"]);
    assert.equal(hpa.trim(), "", "Flux's HPA was pruned by Ferry");
    const after = await get(["deployment", "podinfo", "-n", "web"]);
    assert.equal(after.spec?.minReadySeconds, undefined, "the removed field is gone: Ferry owns what kustomize-controller applied");
    assert.equal(after.metadata.uid, deployment.metadata.uid);

    // Deleted while kustomize-controller runs: its finalizer (prune: true) skips the Kustomization because it is suspended.
    const fluxKs = await get([FLUX_KS, "podinfo", "-n", "apps"]);
    assert.ok((fluxKs.metadata as { finalizers?: string[] }).finalizers?.includes("finalizers.fluxcd.io"), "Flux's finalizer is there to run");
    assert.equal(fluxKs.spec?.prune, true);
    await bed.cluster.kubectl(["delete", FLUX_KS, "podinfo", "-n", "apps", "--wait=true", "--timeout=60s"]);
    await bed.cluster.kubectl(["delete", FLUX_OCI, "podinfo", "-n", "apps", "--wait=true", "--timeout=60s"]);
    await assert.rejects(bed.cluster.kubectl(["get", FLUX_KS, "podinfo", "-n", "apps"]), /NotFound/);
    await new Promise((resolve) => setTimeout(resolve, 2_000));
    for (const args of [["deployment", "podinfo", "-n", "web"], ["service", "podinfo", "-n", "web"]]) {
      const live = await get(args);
      assert.equal((live.metadata as { deletionTimestamp?: string }).deletionTimestamp, undefined, `${args.join(" ")} is not being deleted`);
    }
    assert.equal((await get(["deployment", "podinfo", "-n", "web"])).metadata.uid, deployment.metadata.uid, "deleting Flux's objects deletes no workload");
    assert.deepEqual(await uids(inventory.filter((entry) => !entry.id.endsWith("HorizontalPodAutoscaler"))),
      before.filter((_, index) => !inventory[index]?.id.endsWith("HorizontalPodAutoscaler")));
    await bed.waitForKustomization("apps", "podinfo", "still Ready at v2", readyWith(v2));
  });

  test("a Flux Kustomization whose suspend another Flux Kustomization's manifest sets is refused: that apply would resume it", async () => {
    await fluxControllers();
    await bed.cluster.kubectl(["create", "namespace", "fleet"]);
    // flux bootstrap's shape: a parent Kustomization applies the child's OCIRepository and Kustomization from its source.
    const fleet = await mkdtemp(join(dir, "fleet-"));
    const child = (kind: string, apiVersion: string, spec: Record<string, unknown>) => JSON.stringify({ apiVersion, kind, metadata: { name: "child", namespace: "fleet" }, spec });
    await writeFile(join(fleet, "child.yaml"), [
      child("OCIRepository", FLUX_SOURCE_API_VERSION, { url: `oci://${bed.registry.host}/migrate/fleet`, ref: { tag: "v1" }, interval: "1h", insecure: true }),
      child("Kustomization", FLUX_KUSTOMIZE_API_VERSION, { sourceRef: { kind: "OCIRepository", name: "child" }, path: "./none", interval: "1h", prune: true, suspend: false }),
    ].join("\n---\n"));
    const digest = await bed.push(fleet, "migrate/fleet");
    await bed.applyObjects([
      { apiVersion: FLUX_SOURCE_API_VERSION, kind: "OCIRepository", metadata: { namespace: "fleet", name: "parent" },
        spec: { url: `oci://${bed.registry.host}/migrate/fleet`, ref: { tag: "v1" }, interval: "1h", insecure: true } },
      { apiVersion: FLUX_KUSTOMIZE_API_VERSION, kind: "Kustomization", metadata: { namespace: "fleet", name: "parent" },
        spec: { sourceRef: { kind: "OCIRepository", name: "parent" }, path: "./", interval: "1h", prune: false } },
    ]);
    await waitForFlux("fleet", "parent", "Ready at v1", fluxReadyAt(digest));
    const refused = await ferry(["migrate", "-n", "fleet", "--name", "child", kubeconfig()]);
    assert.equal(refused.status, 1, refused.stderr);
    assert.match(refused.stderr, /Kustomization fleet\/child: spec\.suspend is set by Flux Kustomization fleet\/parent's manifest/);
    assert.notEqual((await get([FLUX_KS, "child", "-n", "fleet"])).spec?.suspend, true, "a refusal changes nothing");
  });

  test("refusals change nothing; --rollback hands everything back to Flux and deletes Ferry's orphaning", async () => {
    const { inventory, digest } = await deliveredByRealFlux("team", "rollback", "web2");
    const before = await uids(inventory);
    await bed.applyObjects([{
      apiVersion: "source.toolkit.fluxcd.io/v1",
      kind: "GitRepository",
      metadata: { namespace: "team", name: "fleet" },
      spec: { url: "https://github.com/example/fleet", interval: "1h", ref: { branch: "main" } },
    }, {
      apiVersion: "kustomize.toolkit.fluxcd.io/v1",
      kind: "Kustomization",
      metadata: { namespace: "team", name: "from-git" },
      spec: { sourceRef: { kind: "GitRepository", name: "fleet" }, interval: "1h", prune: true },
    }]);
    const refused = await ferry(["migrate", "-n", "team", kubeconfig()]);
    assert.equal(refused.status, 1);
    assert.match(refused.stderr, /Kustomization team\/from-git: spec\.sourceRef\.kind GitRepository/);
    assert.notEqual((await get([FLUX_KS, "rollback", "-n", "team"])).spec?.suspend, true, "a refusal changes nothing");

    // From files, as kept in Git: the specs come from the file, the inventory from the live objects' status.
    const file = join(dir, "flux-rollback.yaml");
    await writeFile(file, await bed.cluster.kubectl(["get", `${FLUX_OCI}/rollback`, `${FLUX_KS}/rollback`, "-n", "team", "-o", "yaml"]));
    const fromFile = await ferryOk(["migrate", "-f", file, kubeconfig()]);
    assert.match(fromFile.stderr, /with Flux's inventory of 3 object\(s\)/);
    await bed.waitForKustomization("team", "rollback", "Ready", (object) => object.status?.conditions?.some((c) => c.type === "Ready" && c.status === "True") === true, 120_000);
    await ferryOk(["migrate", "--rollback", "-n", "team", "--name", "rollback", kubeconfig()]);
    await assert.rejects(bed.cluster.kubectl(["get", "kustomizations.kustomize.ferry.dev", "rollback", "-n", "team"]), /NotFound/);
    await assert.rejects(bed.cluster.kubectl(["get", "ocirepositories.source.ferry.dev", "rollback", "-n", "team"]), /NotFound/);
    assert.deepEqual(await uids(inventory), before, "rollback deletes nothing Ferry applied");
    const flux = await get([FLUX_KS, "rollback", "-n", "team"]);
    assert.equal(flux.spec?.suspend, false);
    assert.equal((flux.metadata as { annotations?: Record<string, string> }).annotations?.["migrate.ferry.dev/suspended"], undefined);
    assert.deepEqual(flux.status?.inventory?.entries.map((entry) => entry.id).sort(), inventory.map((entry) => entry.id).sort());
    const deployment = await get(["deployment", "podinfo", "-n", "web2"]);
    assert.equal(deployment.metadata.labels?.["kustomize.toolkit.fluxcd.io/name"], "rollback");
    assert.equal(deployment.metadata.labels?.["kustomize.ferry.dev/name"], undefined);
    assert.ok(deployment.metadata.managedFields?.some((entry) => entry.manager === "kustomize-controller" && entry.operation === "Apply"));
    assert.ok(!deployment.metadata.managedFields?.some((entry) => entry.manager === "ferry" || entry.manager === "ferry-migrate"));
    // kustomize-controller takes it up again: resumed, it reconciles to Ready on the same objects.
    await bed.cluster.kubectl(["annotate", FLUX_KS, "rollback", "-n", "team", "--overwrite", `reconcile.fluxcd.io/requestedAt=${Date.now()}`]);
    await waitForFlux("team", "rollback", "Ready again after the rollback", (object) => fluxReadyAt(digest)(object)
      && object.metadata.generation === object.status?.observedGeneration && object.status?.lastHandledReconcileAt !== undefined);
    assert.deepEqual(await uids(inventory), before, "Flux's reconcile after the rollback re-creates nothing");
  });
});
