// `ferry check [--pre]`, `ferry version` and `ferry uninstall` on one test bed: an install (`ferry install`, its pod
// on kwok) beside a real controller process running as the install's ServiceAccount with leader election, which
// delivers podinfo with prune: true. Uninstall must leave podinfo in place although that controller keeps running
// (and holds cluster-admin through the install's binding) until uninstall deletes its RBAC and ServiceAccount.
import assert from "node:assert/strict";
import { cp, mkdir, writeFile } from "node:fs/promises";
import { join } from "node:path";
import { setTimeout as sleep } from "node:timers/promises";
import { after, before, describe, test } from "node:test";
import yaml from "js-yaml";
import { skipUnlessBuilt } from "../harness/binaries.ts";
import { condition, DeliveryBed } from "../harness/delivery.ts";
import { ferry, ferryOk } from "../harness/ferry.ts";
import { waitUntil } from "../harness/processes.ts";

const PODINFO = join(import.meta.dirname, "..", "..", "..", "shared", "corpora", "podinfo", "kustomize");
const NEEDS = ["etcd", "kube-apiserver", "kube-controller-manager", "kube-scheduler", "kubectl", "kwok", "zot", "kustomize"];

describe("ferry check, version and uninstall", { skip: skipUnlessBuilt(...NEEDS) }, () => {
  let bed: DeliveryBed;
  let kubeconfig: string;

  before(async () => {
    bed = await DeliveryBed.start();
    kubeconfig = `--kubeconfig=${bed.cluster.kubeconfig}`;
  });
  after(async () => {
    await bed?.stop();
  });

  const exists = async (...args: string[]) => (await bed.cluster.kubectl(["get", ...args, "--ignore-not-found", "-o", "name"])).trim() !== "";
  const ready = (namespace: string, name: string) =>
    bed.waitForKustomization(namespace, name, "Ready", (object) => condition(object, "Ready")?.status === "True");

  test("check --pre passes for the cluster admin and names what a user without rights cannot do", async () => {
    const admin = await ferryOk(["check", "--pre", kubeconfig]);
    assert.match(admin.stderr, /✔ Kubernetes v1\.\d+\.\d+ >=1\.29[\s\S]*✔ can install Ferry \(\d+ permissions checked\)[\s\S]*✔ prerequisites checks passed/);
    const nobody = await bed.cluster.serviceAccountKubeconfig("default", "nobody");
    const refused = await ferry(["check", "--pre", `--kubeconfig=${nobody}`, "-o", "json"]);
    assert.equal(refused.status, 1, refused.stderr);
    const report = JSON.parse(refused.stdout) as { ok: boolean; checks: Array<{ ok: boolean; message: string }> };
    const failures = report.checks.filter((check) => !check.ok).map((check) => check.message);
    assert.ok(failures.includes("cannot create customresourcedefinitions"), failures.join("\n"));
    assert.ok(failures.includes("cannot bind ClusterRole cluster-admin (bind, or hold its rules)"), failures.join("\n"));
  });

  test("before the install, check fails naming the missing controller; after it, check and version report it", async () => {
    const before = await ferry(["check", kubeconfig]);
    assert.equal(before.status, 1);
    assert.match(before.stderr, /✗ Deployment ferry-system\/ferry-controller not found/);
    await ferryOk(["install", "--image=registry.example/ferry:test", kubeconfig, "--timeout=2m"]);
    bed.startController(["--leader-elect", "--leader-election-namespace=ferry-system"]);
    await waitUntil("the controller leads", async () => (await ferry(["check", kubeconfig])).status === 0, { timeoutMs: 30_000, intervalMs: 500 });
    const checked = await ferryOk(["check", kubeconfig]);
    assert.match(checked.stderr, /✔ CRD kustomizations\.kustomize\.ferry\.dev Established[\s\S]*✔ Deployment ferry-system\/ferry-controller Ready/);
    assert.match(checked.stderr, /✔ leader \S+ \(renewed [^)]+, lease 15s\)[\s\S]*✔ all checks passed/);
    const report = JSON.parse((await ferryOk(["check", kubeconfig, "-o", "json"])).stdout) as { leader: { holder: string; fresh: boolean } };
    assert.equal(report.leader.fresh, true);
    assert.notEqual(report.leader.holder, "");
    const version = JSON.parse((await ferryOk(["version", kubeconfig, "-o", "json"])).stdout);
    assert.equal(version.server.controller.image, "registry.example/ferry:test");
    assert.equal(version.server.controller.version, version.client.version);
    assert.equal(version.server.crds["ocirepositories.source.ferry.dev"], version.client.version);
  });

  test("the negative control: a Kustomization deleted the plain way prunes what it applied", async () => {
    await bed.cluster.kubectl(["create", "namespace", "control"]);
    await bed.push(await copyOfPodinfo(bed), "apps/podinfo");
    await bed.deliver("control", "podinfo", "apps/podinfo", { targetNamespace: "control" });
    await ready("control", "podinfo");
    assert.ok(await exists("deployment/podinfo", "-n", "control"));
    await bed.cluster.kubectl(["delete", "kustomization", "podinfo", "-n", "control", "--wait=false"]);
    await waitUntil("the controller prunes podinfo", async () => !(await exists("deployment/podinfo", "-n", "control")), { timeoutMs: 30_000, intervalMs: 300 });
  });

  /**
   * A second install beside ferry-system (install --force), uninstalled again: only its own namespace and
   * cluster-scoped RBAC go; ferry-system's bindings, the shared CRDs and the Kustomizations stay as they were.
   */
  const uninstallSecondInstall = async () => {
    await ferryOk(["install", "--force", "--image=registry.example/ferry:test", "--namespace=ferry-second", kubeconfig, "--timeout=2m"]);
    assert.ok(await exists("clusterrolebinding/ferry-controller-applier-ferry-second"));
    const dryRun = await ferryOk(["uninstall", "-n", "ferry-second", "--dry-run", kubeconfig]);
    assert.doesNotMatch(dryRun.stdout, /CustomResourceDefinition|-ferry-system\b|Kustomizations and OCIRepositories \(/, dryRun.stdout);
    assert.match(dryRun.stdout, /ClusterRoleBinding ferry-controller-applier-ferry-second[\s\S]*\(kept: the CRDs .* Ferry in ferry-system uses\)/);
    await ferryOk(["uninstall", "-n", "ferry-second", "--silent", kubeconfig, "--timeout=2m"]);
    for (const gone of ["namespace/ferry-second", "clusterrolebinding/ferry-controller-applier-ferry-second", "clusterrole/ferry-view-ferry-second"]) {
      assert.equal(await exists(gone), false, `${gone} is left after uninstalling ferry-second`);
    }
    for (const kept of ["clusterrolebinding/ferry-controller-applier-ferry-system", "clusterrolebinding/ferry-controller-ferry-system",
      "clusterrole/ferry-view-ferry-system", "crd/kustomizations.kustomize.ferry.dev", "crd/ocirepositories.source.ferry.dev"]) {
      assert.ok(await exists(kept), `uninstalling ferry-second deleted ${kept}`);
    }
    const podinfo = await bed.getJson(["kustomization", "podinfo", "-n", "default"]) as { metadata: { finalizers?: string[] }; spec: { suspend?: boolean } };
    assert.notEqual(podinfo.spec.suspend, true, "uninstalling ferry-second suspended a Kustomization outside its namespace");
    assert.ok((podinfo.metadata.finalizers ?? []).length > 0, "uninstalling ferry-second released a Kustomization outside its namespace");
  };

  test("uninstall --keep-namespace beside another install releases the sync objects that deliver it, and its Secrets go", async () => {
    // As bootstrap leaves a second install: its ferry-system OCIRepository and Kustomization deliver its own Deployment
    // and RBAC, and the other install's controller (watching all namespaces) is the one that reconciles them.
    await ferryOk(["install", "--force", "--image=registry.example/ferry:test", "--namespace=ferry-third", kubeconfig, "--timeout=2m"]);
    const exported = (await ferryOk(["install", "--export", "--image=registry.example/ferry:test", "--namespace=ferry-third"])).stdout;
    const own = yaml.loadAll(exported).filter((object) => ["Deployment", "ServiceAccount", "ClusterRoleBinding"].includes((object as { kind: string }).kind));
    const artifact = join(bed.dir, "ferry-third");
    await mkdir(artifact, { recursive: true });
    await writeFile(join(artifact, "ferry.yaml"), own.map((object) => yaml.dump(object)).join("---\n"));
    await bed.push(artifact, "fleet/ferry-third");
    await bed.deliver("ferry-third", "ferry-system", "fleet/ferry-third", { interval: "2s" });
    await bed.cluster.kubectl(["label", "-n", "ferry-third", "ocirepository/ferry-system", "kustomization/ferry-system", "app.kubernetes.io/part-of=ferry"]);
    await bed.cluster.kubectl(["create", "secret", "generic", "ferry-registry", "-n", "ferry-third", "--from-literal=a=b"]);
    await bed.cluster.kubectl(["label", "-n", "ferry-third", "secret/ferry-registry", "app.kubernetes.io/part-of=ferry"]);
    await ready("ferry-third", "ferry-system");

    await ferryOk(["uninstall", "-n", "ferry-third", "--keep-namespace", "--silent", kubeconfig, "--timeout=2m"]);
    // Time for the other controller to re-apply the artifact (every 2s), had the Kustomization been left behind.
    await sleep(6_000);
    for (const gone of ["deployment/ferry-controller", "serviceaccount/ferry-controller", "kustomization/ferry-system", "ocirepository/ferry-system", "secret/ferry-registry"]) {
      assert.equal(await exists(gone, "-n", "ferry-third"), false, `${gone} is in ferry-third after uninstall --keep-namespace`);
    }
    assert.equal(await exists("clusterrolebinding/ferry-controller-applier-ferry-third"), false);
    assert.ok(await exists("namespace/ferry-third"), "--keep-namespace kept the namespace");
  });

  test("uninstall removes Ferry and keeps podinfo, although a controller still runs during it; a second run has nothing to do", async () => {
    await bed.cluster.kubectl(["create", "namespace", "apps"]);
    await bed.deliver("default", "podinfo", "apps/podinfo", { targetNamespace: "apps" });
    await ready("default", "podinfo");
    await uninstallSecondInstall();
    const dryRun = await ferryOk(["uninstall", "--dry-run", kubeconfig]);
    assert.match(dryRun.stdout, /Deployment ferry-system\/ferry-controller[\s\S]*CustomResourceDefinition kustomizations\.kustomize\.ferry\.dev[\s\S]*Namespace ferry-system/);
    assert.ok(await exists("kustomization/podinfo", "-n", "default"), "--dry-run changed nothing");

    // As bootstrap marks them, so that no Kustomization prunes them; uninstall deletes them all the same.
    await bed.cluster.kubectl(["annotate", "namespace/ferry-system", "crd/kustomizations.kustomize.ferry.dev", "kustomize.ferry.dev/prune=disabled"]);
    const started = Date.now();
    const uninstall = await ferryOk(["uninstall", "--silent", kubeconfig, "--timeout=2m"]);
    const seconds = ((Date.now() - started) / 1000).toFixed(1);
    console.log(`ferry uninstall took ${seconds} s`);
    assert.match(uninstall.stderr, /ferry-controller deleted, its pods are gone[\s\S]*Kustomization default\/podinfo suspended, released and deleted[\s\S]*✔ uninstall finished/);
    for (const gone of ["crd/kustomizations.kustomize.ferry.dev", "crd/ocirepositories.source.ferry.dev", "namespace/ferry-system",
      "clusterrole/ferry-controller-ferry-system", "clusterrole/ferry-view-ferry-system", "clusterrolebinding/ferry-controller-ferry-system",
      "clusterrolebinding/ferry-controller-applier-ferry-system"]) {
      assert.equal(await exists(gone), false, `${gone} is left after uninstall (${seconds} s)`);
    }
    // The controller process outlived the release of its Kustomization: give it time to act, had it anything to do.
    await sleep(5_000);
    for (const kept of ["deployment/podinfo", "service/podinfo", "horizontalpodautoscaler/podinfo"]) {
      assert.ok(await exists(kept, "-n", "apps"), `${kept} was deleted by the uninstall`);
    }
    const deployment = await bed.getJson(["deployment", "podinfo", "-n", "apps"]) as { metadata: { deletionTimestamp?: string } };
    assert.equal(deployment.metadata.deletionTimestamp, undefined);

    const again = await ferryOk(["uninstall", "--silent", kubeconfig]);
    assert.match(again.stderr, /nothing to uninstall/);
    const checked = await ferry(["check", kubeconfig]);
    assert.equal(checked.status, 1);
    assert.match(checked.stderr, /✗ CRD kustomizations\.kustomize\.ferry\.dev is not installed/);
    const version = await ferry(["version", kubeconfig]);
    assert.equal(version.status, 1);
    assert.match(version.stdout, /controller: not found in ferry-system/);
  });
});

async function copyOfPodinfo(bed: DeliveryBed): Promise<string> {
  const source = join(bed.dir, "podinfo");
  await cp(PODINFO, source, { recursive: true });
  return source;
}
