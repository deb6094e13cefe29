// The Kustomization commands against a real cluster, registry and controller: create (exported and applied with
// kubectl, or created and waited for), get all, and diff of a local directory against what the cluster runs.
import assert from "node:assert/strict";
import { cp, readFile, rm, writeFile } from "node:fs/promises";
import { join } from "node:path";
import { after, before, describe, test } from "node:test";
import yaml from "js-yaml";
import { binary, skipUnlessBuilt } from "../harness/binaries.ts";
import type { ControlPlane } from "../harness/control-plane.ts";
import { DeliveryBed } from "../harness/delivery.ts";
import { ferry, ferryOk } from "../harness/ferry.ts";
import { type ManagedProcess, waitUntil } from "../harness/processes.ts";

const PODINFO = join(import.meta.dirname, "..", "..", "..", "shared", "corpora", "podinfo", "kustomize");

interface Observed {
  status?: { conditions?: Array<{ type: string; status: string }>; lastAppliedRevision?: string };
}

const TOOLS = ["etcd", "kube-apiserver", "kube-controller-manager", "kube-scheduler", "kubectl", "kwok", "zot", "kustomize"] as const;

describe("ferry create|get|diff kustomization", { skip: skipUnlessBuilt(...TOOLS) }, () => {
  let bed: DeliveryBed;
  let cluster: ControlPlane;
  let controller: ManagedProcess;
  let dir: string;
  let kube: string[];
  let digest: string;
  // The CLI builds locally for diff, so it needs kustomize as the controller does.
  const env = () => ({ FERRY_KUSTOMIZE: binary("kustomize") });

  before(async () => {
    bed = await DeliveryBed.start();
    ({ cluster, dir } = bed);
    kube = ["-n", "default", `--kubeconfig=${cluster.kubeconfig}`];
    await cp(PODINFO, join(dir, "podinfo"), { recursive: true });
    for (const namespace of ["apps", "exported"]) await cluster.kubectl(["create", "namespace", namespace]);
    controller = bed.startController();
    digest = await bed.push(join(dir, "podinfo"), "apps/podinfo");
    await ferryOk(["create", "source", "oci", "podinfo", `--url=oci://${bed.registry.host}/apps/podinfo`, "--tag=v1", "--interval=1h", "--insecure", ...kube]);
  });
  after(async () => {
    await bed?.stop();
  });

  test("create kustomization --export writes a manifest kubectl applies and the controller makes Ready", async () => {
    const exported = await ferryOk([
      "create", "kustomization", "exported", "--source=OCIRepository/podinfo.default", "--path=./", "--target-namespace=exported",
      "--prune", "--interval=1h", "--export", "-n", "default",
    ]);
    assert.match(exported.stdout, /^---\napiVersion: kustomize\.ferry\.dev\/v1\nkind: Kustomization\n/);
    await cluster.kubectl(["apply", "-f", "-"], { input: exported.stdout });
    const ready = async () => {
      const object = JSON.parse(await cluster.kubectl(["get", "kustomization", "exported", "-n", "default", "-o", "json"])) as Observed;
      return object.status?.lastAppliedRevision === `v1@${digest}` && object.status.conditions?.some((c) => c.type === "Ready" && c.status === "True") === true;
    };
    await waitUntil("the exported Kustomization Ready", ready, { timeoutMs: 60_000, intervalMs: 300, process: controller });
    await cluster.kubectl(["get", "deployment", "podinfo", "-n", "exported"]);
  });

  test("create kustomization creates it and returns once it is Ready; running it again updates it", async () => {
    const flags = [
      "--source=podinfo", "--path=./", "--target-namespace=apps", "--prune", "--wait", "--health-check-timeout=60s", "--interval=1h", "--timeout=2m",
    ];
    const created = await ferryOk(["create", "kustomization", "podinfo", ...flags, ...kube]);
    assert.match(created.stderr, /Kustomization created[\s\S]*Kustomization podinfo is ready\n✔ applied revision v1@sha256:/);
    const deployment = JSON.parse(await cluster.kubectl(["get", "deployment", "podinfo", "-n", "apps", "-o", "json"]));
    assert.ok(deployment.status.availableReplicas >= 1, "create returned before the Deployment was Available");
    const updated = await ferryOk(["create", "kustomization", "podinfo", ...flags, "--retry-interval=1m", ...kube]);
    assert.match(updated.stderr, /Kustomization updated[\s\S]*Kustomization podinfo is ready/);
    const object = JSON.parse(await cluster.kubectl(["get", "kustomization", "podinfo", "-n", "default", "-o", "json"]));
    assert.equal(object.spec.retryInterval, "1m");
  });

  test("get all lists the OCIRepository and both Kustomizations, Ready", async () => {
    const listed = await ferryOk(["get", "all", ...kube]);
    const lines = listed.stdout.split("\n");
    assert.match(lines[0] ?? "", /^NAME\s+REVISION\s+SUSPENDED\s+READY\s+MESSAGE$/);
    assert.ok(lines.some((line) => /^ocirepository\/podinfo\s+v1@sha256:\S+\s+false\s+True\s/.test(line)), listed.stdout);
    assert.ok(lines.some((line) => /^kustomization\/podinfo\s+v1@sha256:\S+\s+false\s+True\s/.test(line)), listed.stdout);
    assert.ok(lines.some((line) => /^kustomization\/exported\s+v1@sha256:\S+\s+false\s+True\s/.test(line)), listed.stdout);
    assert.equal(lines.filter((line) => line.startsWith("NAME")).length, 2, "one table per kind");
    const everywhere = JSON.parse((await ferryOk(["get", "all", "-A", "-o", "json", `--kubeconfig=${cluster.kubeconfig}`])).stdout);
    assert.deepEqual(everywhere.items.map((item: { kind: string }) => item.kind), ["OCIRepository", "Kustomization", "Kustomization"]);
  });

  test("get kustomizations filters by name, lists every namespace with -A, and prints YAML with -o yaml", async () => {
    const named = (await ferryOk(["get", "kustomizations", "podinfo", ...kube])).stdout.trimEnd().split("\n");
    assert.match(named[0] ?? "", /^NAME\s+REVISION\s+SUSPENDED\s+READY\s+MESSAGE$/);
    assert.match(named[1] ?? "", /^podinfo\s+v1@sha256:\S+\s+false\s+True\s/);
    assert.equal(named.length, 2, "only the named Kustomization");
    const everywhere = (await ferryOk(["get", "kustomizations", "-A", `--kubeconfig=${cluster.kubeconfig}`])).stdout;
    assert.match(everywhere, /^NAMESPACE\s+NAME\s+REVISION/);
    assert.match(everywhere, /^default\s+podinfo\s+v1@sha256:/m);
    const listed = yaml.load((await ferryOk(["get", "kustomizations", "-o", "yaml", ...kube])).stdout) as Array<{ kind: string; metadata: { name: string } }>;
    assert.deepEqual(listed.map((object) => `${object.kind}/${object.metadata.name}`).sort(), ["Kustomization/exported", "Kustomization/podinfo"]);
  });

  test("diff kustomization --path: no changes exits 0; drift, new and removed objects exit 1 and are shown", async () => {
    const local = join(dir, "local");
    await cp(PODINFO, local, { recursive: true });
    const clean = await ferry(["diff", "kustomization", "podinfo", `--path=${local}`, ...kube], { env: env() });
    assert.equal(clean.status, 0, clean.stderr + clean.stdout);
    assert.equal(clean.stdout, "");

    const deployment = join(local, "deployment.yaml");
    await writeFile(deployment, (await readFile(deployment, "utf8")).replace("minReadySeconds: 3", "minReadySeconds: 5"));
    await rm(join(local, "hpa.yaml"));
    await writeFile(join(local, "configmap.yaml"), "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: podinfo-extra\ndata:\n  a: b\n");
    const kustomization = join(local, "kustomization.yaml");
    await writeFile(kustomization, (await readFile(kustomization, "utf8")).replace("  - hpa.yaml\n", "  - configmap.yaml\n"));
    const drifted = await ferry(["diff", "kustomization", "podinfo", `--path=${local}`, ...kube], { env: env() });
    assert.equal(drifted.status, 1, drifted.stderr + drifted.stdout);
    assert.match(drifted.stdout, /^► ConfigMap\/apps\/podinfo-extra created$/m);
    assert.match(drifted.stdout, /^► Deployment\/apps\/podinfo drifted\n@@ spec @@\n[\s\S]*^- {3}minReadySeconds: 3\n\+ {3}minReadySeconds: 5$/m);
    assert.match(drifted.stdout, /^► HorizontalPodAutoscaler\/apps\/podinfo deleted$/m);
    assert.doesNotMatch(drifted.stdout, /Service\/apps\/podinfo/);

    const json = await ferry(["diff", "kustomization", "podinfo", `--path=${local}`, "-o", "json", ...kube], { env: env() });
    assert.equal(json.status, 1);
    assert.deepEqual(JSON.parse(json.stdout).map((entry: { subject: string; action: string }) => `${entry.action} ${entry.subject}`), [
      "created ConfigMap/apps/podinfo-extra",
      "drifted Deployment/apps/podinfo",
      "deleted HorizontalPodAutoscaler/apps/podinfo",
    ]);
    // A dry-run only: the cluster is as it was.
    const live = JSON.parse(await cluster.kubectl(["get", "deployment", "podinfo", "-n", "apps", "-o", "json"]));
    assert.equal(live.spec.minReadySeconds, 3);
    await assert.rejects(cluster.kubectl(["get", "configmap", "podinfo-extra", "-n", "apps"]), /NotFound/);
  });
});
