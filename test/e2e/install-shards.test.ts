// `ferry install --shards N` against the test bed (issue 15): the main controller and ferry-controller-shard1..N are
// accepted by the apiserver and its restricted Pod Security admission and become Available on a kwok node, each with
// its selector; a lower --shards deletes the shards no longer wanted and names objects left labelled for one;
// `ferry uninstall` deletes every shard's Deployment with the main one and waits until all their pods are gone.
import assert from "node:assert/strict";
import { after, before, describe, test } from "node:test";
import yaml from "js-yaml";
import { skipUnlessBuilt } from "../harness/binaries.ts";
import { type ControlPlane, startControlPlane } from "../harness/control-plane.ts";
import { ferryOk } from "../harness/ferry.ts";
import { waitUntil } from "../harness/processes.ts";

interface Deployment {
  kind: string;
  metadata: { name: string };
  spec: { template: { spec: { containers: Array<{ args: string[] }> } } };
  status?: { availableReplicas?: number };
}

const selectorOf = (deployment: Deployment) =>
  deployment.spec.template.spec.containers[0]?.args.find((arg) => arg.startsWith("--watch-label-selector="))?.slice("--watch-label-selector=".length);

describe("ferry install --shards", { skip: skipUnlessBuilt("etcd", "kube-apiserver", "kube-controller-manager", "kube-scheduler", "kubectl", "kwok") }, () => {
  let cluster: ControlPlane;

  before(async () => {
    cluster = await startControlPlane();
  });
  after(async () => {
    await cluster?.stop();
  });

  const deployments = async () =>
    (JSON.parse(await cluster.kubectl(["get", "deployments", "-n", "ferry-system", "-o", "json"])) as { items: Deployment[] }).items;

  test("--export shows the shard Deployments; install applies them, each Available with its selector; fewer shards delete the rest", async () => {
    const exported = (yaml.loadAll((await ferryOk(["install", "--export", "--shards=2", "--image=registry.example/ferry:test"])).stdout) as Deployment[])
      .filter((object) => object.kind === "Deployment");
    assert.deepEqual(exported.map((deployment) => [deployment.metadata.name, selectorOf(deployment)]), [
      ["ferry-controller", "!sharding.fluxcd.io/key"],
      ["ferry-controller-shard1", "sharding.fluxcd.io/key=shard1"],
      ["ferry-controller-shard2", "sharding.fluxcd.io/key=shard2"],
    ]);

    const install = (shards: number) => ferryOk(["install", `--shards=${shards}`, "--image=registry.example/ferry:test", `--kubeconfig=${cluster.kubeconfig}`, "--timeout=2m"]);
    const first = await install(2);
    assert.match(first.stderr, /Deployment\/ferry-system\/ferry-controller-shard2 created[\s\S]*✔ install finished/);
    const live = await deployments();
    assert.deepEqual(live.map((deployment) => [deployment.metadata.name, deployment.status?.availableReplicas]).sort(), [
      ["ferry-controller", 1], ["ferry-controller-shard1", 1], ["ferry-controller-shard2", 1],
    ]);

    // An object left labelled for shard2 is named when shard2 goes.
    await cluster.kubectl(["apply", "--server-side", "-f", "-"], {
      input: JSON.stringify({
        apiVersion: "source.ferry.dev/v1",
        kind: "OCIRepository",
        metadata: { name: "orphan", namespace: "default", labels: { "sharding.fluxcd.io/key": "shard2" } },
        spec: { url: "oci://registry.example/x", interval: "1h" },
      }),
    });
    const fewer = await install(1);
    assert.match(fewer.stderr, /Deployment\/ferry-system\/ferry-controller-shard2 deleted \(shard shard2 is no longer installed\)/);
    assert.match(fewer.stderr, /OCIRepository default\/orphan is labelled sharding\.fluxcd\.io\/key=shard2, a shard this install does not run/);
    const names = async () => (await deployments()).map((deployment) => deployment.metadata.name).sort().join(" ");
    await waitUntil("shard2's Deployment to go", async () => (await names()) === "ferry-controller ferry-controller-shard1", { timeoutMs: 30_000 });
  });

  test("ferry uninstall deletes the shard Deployments with the main one, and waits until their pods are gone", async () => {
    const dryRun = await ferryOk(["uninstall", "--dry-run", `--kubeconfig=${cluster.kubeconfig}`]);
    assert.match(dryRun.stdout, /Deployment ferry-system\/ferry-controller-shard1 \(the controller of shard1, deleted first\)/);
    const uninstall = await ferryOk(["uninstall", "--silent", `--kubeconfig=${cluster.kubeconfig}`, "--timeout=3m"]);
    assert.match(uninstall.stderr, /Deployment ferry-system\/ferry-controller-shard1 deleted, its pods are gone/);
    assert.equal((await cluster.kubectl(["get", "namespace", "ferry-system", "--ignore-not-found"])).trim(), "");
  });
});
