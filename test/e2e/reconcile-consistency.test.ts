// Reconciles that start from a view of the cluster that is out of date, on the test bed. The reconcilers run in this
// process against the real apiserver and registry, so a test can hand one exactly the stale copy an informer that
// lags behind would hand it.
import assert from "node:assert/strict";
import { mkdtemp, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, before, describe, test } from "node:test";
import yaml from "js-yaml";
import { ArtifactCache } from "../../src/artifact/cache.ts";
import { KubeClient } from "../../src/kube/client.ts";
import { KUSTOMIZATION, type Kustomization, KustomizationReconciler } from "../../src/reconcilers/kustomization.ts";
import { OCI_REPOSITORY, type OCIRepository, OCIRepositoryReconciler } from "../../src/reconcilers/ocirepository.ts";
import { probeSandbox } from "../../src/sandbox/sandbox.ts";
import { binary, skipUnlessBuilt } from "../harness/binaries.ts";
import { condition, DeliveryBed } from "../harness/delivery.ts";

const SANDBOX = join(import.meta.dirname, "..", "..", "dist", "ferry-sandbox");

describe("reconciles from a stale view", { skip: skipUnlessBuilt("etcd", "kube-apiserver", "kube-controller-manager", "kube-scheduler", "kubectl", "kwok", "zot", "kustomize") }, () => {
  let bed: DeliveryBed;
  let kube: KubeClient;
  let sources: OCIRepositoryReconciler;
  let kustomizations: KustomizationReconciler;
  let fixture: string;

  /** Pushes one ConfigMap named `name` as the artifact's whole content. */
  const pushOnly = async (name: string) => {
    await writeFile(join(fixture, "cm.yaml"), yaml.dump({ apiVersion: "v1", kind: "ConfigMap", metadata: { name }, data: { v: name } }));
    return bed.push(fixture, "consistency/app");
  };
  const fetchSource = async (namespace: string, name: string) => {
    for (let attempt = 0; attempt < 3; attempt++) {
      const source = await kube.get<OCIRepository>(OCI_REPOSITORY, namespace, name);
      await sources.reconcile(source as OCIRepository);
    }
  };
  const reconcileKustomization = async (object: Kustomization) => {
    await kustomizations.reconcile(object);
    return kube.get<Kustomization>(KUSTOMIZATION, object.metadata.namespace, object.metadata.name) as Promise<Kustomization>;
  };

  before(async () => {
    process.env.FERRY_KUSTOMIZE = binary("kustomize");
    bed = await DeliveryBed.start();
    fixture = await mkdtemp(join(tmpdir(), "ferry-consistency-"));
    kube = KubeClient.fromFile(bed.cluster.kubeconfig);
    const cache = new ArtifactCache(join(bed.dir, "cache"));
    const sandbox = await probeSandbox(SANDBOX, { maxMemoryBytes: 1024 ** 3, maxCpuSeconds: 60 });
    sources = new OCIRepositoryReconciler({ kube, cache, log: () => {} });
    kustomizations = new KustomizationReconciler({ kube, cache, log: () => {}, sandbox });
  });
  after(async () => {
    await Promise.all([bed?.stop(), fixture && rm(fixture, { recursive: true, force: true })]);
  });

  test("dropping spec.ignore clears observedIgnore, and the next reconciles do not download the artifact again", async () => {
    await bed.cluster.kubectl(["create", "namespace", "ignored"]);
    await pushOnly("kept");
    await bed.deliver("ignored", "app", "consistency/app", {});
    await bed.cluster.kubectl(["patch", "ocirepository", "app", "-n", "ignored", "--type=merge", "-p", JSON.stringify({ spec: { ignore: "*.md" } })]);
    await fetchSource("ignored", "app");
    const source = async () => (await kube.get<OCIRepository>(OCI_REPOSITORY, "ignored", "app")) as OCIRepository;
    assert.equal((await source()).status?.observedIgnore, "*.md");
    await bed.cluster.kubectl(["patch", "ocirepository", "app", "-n", "ignored", "--type=json", "-p", JSON.stringify([{ op: "remove", path: "/spec/ignore" }])]);
    await fetchSource("ignored", "app");
    const fetched = await source();
    assert.equal(fetched.status?.observedIgnore, undefined);
    const stored = fetched.status?.artifact?.lastUpdateTime;
    await new Promise((resolve) => setTimeout(resolve, 1100));
    await fetchSource("ignored", "app");
    assert.equal((await source()).status?.artifact?.lastUpdateTime, stored, "the artifact was downloaded again");
  });

  test("a reconcile handed a copy from before the last revision still prunes what that revision applied", async () => {
    await bed.cluster.kubectl(["create", "namespace", "consistency"]);
    await pushOnly("first");
    await bed.deliver("consistency", "app", "consistency/app", {});
    await fetchSource("consistency", "app");
    let object = await kube.get<Kustomization>(KUSTOMIZATION, "consistency", "app") as Kustomization;
    for (let attempt = 0; attempt < 2; attempt++) object = await reconcileKustomization(object);
    assert.equal(condition(object, "Ready")?.status, "True", JSON.stringify(object.status));
    const stale = structuredClone(object);

    await pushOnly("second");
    await fetchSource("consistency", "app");
    object = await reconcileKustomization(object);
    assert.deepEqual(object.status?.inventory?.entries.map((entry) => entry.id), ["consistency_second__ConfigMap"]);

    // The informer has not seen the status that recorded "second" yet: it hands over the copy from "first".
    await pushOnly("third");
    await fetchSource("consistency", "app");
    object = await reconcileKustomization(stale);
    assert.deepEqual(object.status?.inventory?.entries.map((entry) => entry.id), ["consistency_third__ConfigMap"]);
    await assert.rejects(bed.cluster.kubectl(["get", "configmap", "second", "-n", "consistency"]), /NotFound/, "second was orphaned");
  });
});
