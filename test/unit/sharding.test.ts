// Sharding (issue 15): --watch-label-selector is parsed as Kubernetes parses label selectors and refused at start
// (exit 2) when Kubernetes would refuse it; each selector names its own lease as Flux's GenerateID does; install
// --shards renders shard Deployments with Flux's shard labels; uninstall finds them.
import assert from "node:assert/strict";
import { spawnSync } from "node:child_process";
import { createServer } from "node:http";
import { join } from "node:path";
import { test } from "node:test";
import { KubeConfig } from "@kubernetes/client-node";
import { watchLabelSelector } from "../../cli/commands/controller.ts";
import { componentOptions } from "../../cli/commands/install.ts";
import { UsageError } from "../../cli/errors.ts";
import { Informer } from "../../src/controller/informer.ts";
import { readOnlyKube } from "../../src/controller/manager.ts";
import { canonicalLabelSelector, LabelSelectorError, parseLabelSelector, selectorMatches, shardLeaseName } from "../../src/controller/selector.ts";
import { controllerLeaseName, evaluateInstall } from "../../src/install/check.ts";
import { installManifests } from "../../src/install/manifests.ts";
import { describeInventory, shardsOf } from "../../src/install/uninstall.ts";
import { KubeClient } from "../../src/kube/client.ts";
import { OCI_REPOSITORY } from "../../src/reconcilers/ocirepository.ts";
import { FERRY_VERSION } from "../../src/version.ts";
import { waitUntil } from "../harness/processes.ts";

const FERRY = join(import.meta.dirname, "..", "..", "cli", "ferry.ts");

test("selectors: Flux's shard forms and the rest of Kubernetes' syntax, in canonical form", () => {
  assert.equal(canonicalLabelSelector("!sharding.fluxcd.io/key"), "!sharding.fluxcd.io/key");
  assert.equal(canonicalLabelSelector("sharding.fluxcd.io/key=shard1"), "sharding.fluxcd.io/key=shard1");
  assert.equal(canonicalLabelSelector(" sharding.fluxcd.io/key == shard1 "), "sharding.fluxcd.io/key=shard1");
  assert.equal(canonicalLabelSelector("tier!=db, app in (b, a), env notin (x),has"), "app in (a,b),env notin (x),has,tier!=db");
  assert.equal(canonicalLabelSelector("! a"), "!a");
  assert.equal(canonicalLabelSelector("a="), "a=");
  assert.deepEqual(parseLabelSelector(""), []);
});

test("selectors Kubernetes refuses are refused, naming why", () => {
  for (const bad of ["a b", "a=b=c", "key>1", "a in ()", "a in (x", "a,", "-a=b", "a=-b", "UPPER.example/x=y", `a=${"v".repeat(64)}`, "a notin b", "!a=b"]) {
    assert.throws(() => parseLabelSelector(bad), LabelSelectorError, bad);
  }
});

test("matching: the shard labels divide the objects", () => {
  const main = parseLabelSelector("!sharding.fluxcd.io/key");
  const shard1 = parseLabelSelector("sharding.fluxcd.io/key=shard1");
  const unlabelled = { app: "x" };
  const inShard1 = { "sharding.fluxcd.io/key": "shard1" };
  const inShard2 = { "sharding.fluxcd.io/key": "shard2" };
  assert.deepEqual([unlabelled, inShard1, inShard2, undefined].map((labels) => selectorMatches(main, labels)), [true, false, false, true]);
  assert.deepEqual([unlabelled, inShard1, inShard2].map((labels) => selectorMatches(shard1, labels)), [false, true, false]);
  const set = parseLabelSelector("k in (a,b),j notin (c)");
  assert.equal(selectorMatches(set, { k: "a" }), true);
  assert.equal(selectorMatches(set, { k: "a", j: "c" }), false);
  assert.equal(selectorMatches(set, { j: "d" }), false);
});

test("lease names: Flux's GenerateID for shards (sha256 of the selector, 8 hex), shared by a shard's replicas, distinct across shards", () => {
  // fluxcd/pkg runtime/leaderelection's own test: GenerateID("foo", "bar") == "foo-fcde2b2e".
  assert.equal(shardLeaseName("foo", "bar"), "foo-fcde2b2e");
  assert.equal(shardLeaseName("ferry-controller-leader", undefined), "ferry-controller-leader");
  const main = shardLeaseName("ferry-controller-leader", "!sharding.fluxcd.io/key");
  const shard1 = shardLeaseName("ferry-controller-leader", "sharding.fluxcd.io/key=shard1");
  const shard2 = shardLeaseName("ferry-controller-leader", "sharding.fluxcd.io/key=shard2");
  // The main controller of a sharded install shares the unsharded controller's lease: both reconcile unlabelled
  // objects, so going to shards must hand the lease over, not run both.
  assert.equal(main, "ferry-controller-leader");
  assert.equal(new Set([main, shard1, shard2]).size, 3);
  assert.equal(shardLeaseName("ferry-controller-leader", "sharding.fluxcd.io/key == shard1"), shard1, "two spellings of one shard share its lease");
  assert.match(shard1, /^ferry-controller-leader-[0-9a-f]{8}$/);
});

test("the controller flag: canonical, or a usage error", () => {
  assert.equal(watchLabelSelector(undefined), undefined);
  assert.equal(watchLabelSelector("sharding.fluxcd.io/key==shard1"), "sharding.fluxcd.io/key=shard1");
  assert.throws(() => watchLabelSelector("sharding.fluxcd.io/key=shard 1"), UsageError);
  assert.throws(() => watchLabelSelector(" "), UsageError);
});

test("ferry controller refuses a bad --watch-label-selector at start with exit code 2", () => {
  const result = spawnSync(process.execPath, [FERRY, "controller", "--watch-label-selector=sharding.fluxcd.io/key in shard1", "--kubeconfig=/nonexistent"], {
    encoding: "utf8",
    timeout: 60_000,
  });
  assert.equal(result.status, 2, result.stderr);
  assert.match(result.stderr, /--watch-label-selector "sharding\.fluxcd\.io\/key in shard1"/);
});

type Deployment = {
  kind: string;
  metadata: { name: string; labels: Record<string, string> };
  spec: {
    selector: { matchLabels: Record<string, string> };
    template: { metadata: { labels: Record<string, string> }; spec: { containers: Array<{ args: string[] }> } };
  };
};
const deployments = (objects: object[]) => (objects as Deployment[]).filter((object) => object.kind === "Deployment");
const selectorArg = (deployment: Deployment | undefined) =>
  deployment?.spec.template.spec.containers[0]?.args.filter((arg) => arg.startsWith("--watch-label-selector"));

test("install --shards 2: the main controller takes unlabelled objects, ferry-controller-shard1 and -shard2 their shards", () => {
  const objects = installManifests(componentOptions({ shards: "2", image: "example/ferry:1" }));
  const [main, shard1, shard2, ...rest] = deployments(objects);
  assert.equal(rest.length, 0);
  assert.deepEqual([main, shard1, shard2].map((deployment) => deployment?.metadata.name), ["ferry-controller", "ferry-controller-shard1", "ferry-controller-shard2"]);
  assert.deepEqual(selectorArg(main), ["--watch-label-selector=!sharding.fluxcd.io/key"]);
  assert.deepEqual(selectorArg(shard1), ["--watch-label-selector=sharding.fluxcd.io/key=shard1"]);
  assert.deepEqual(selectorArg(shard2), ["--watch-label-selector=sharding.fluxcd.io/key=shard2"]);
  // A shard's selector matches its own pods only; the main one's (immutable) selector is unchanged.
  assert.deepEqual(main?.spec.selector.matchLabels, { "app.kubernetes.io/name": "ferry", "app.kubernetes.io/component": "controller", "app.kubernetes.io/part-of": "ferry" });
  assert.equal(shard1?.spec.selector.matchLabels["ferry.dev/shard"], "shard1");
  assert.deepEqual(shard1?.spec.template.metadata.labels, shard1?.spec.selector.matchLabels);
  assert.equal(main?.spec.template.metadata.labels["ferry.dev/shard"], undefined);
  // One ServiceAccount and one set of RBAC for all of them.
  assert.equal((objects as Deployment[]).filter((object) => object.kind === "ServiceAccount").length, 1);
  assert.equal(deployments(installManifests(componentOptions({ shards: "0" }))).length, 1);
  assert.deepEqual(selectorArg(deployments(installManifests(componentOptions({})))[0]), [], "without shards the controller reconciles every object");
});

test("--shards is a whole number from 0 to 32", () => {
  for (const bad of ["-1", "1.5", "x", "", "33"]) assert.throws(() => componentOptions({ shards: bad }), UsageError, bad);
});

test("uninstall finds the shard Deployments by label and name", () => {
  const objects = installManifests({ shards: 3 }) as Deployment[];
  const found = shardsOf([...deployments(objects), { metadata: { name: "impostor", labels: { "ferry.dev/shard": "shard9" } } }]);
  assert.deepEqual(found, ["shard1", "shard2", "shard3"]);
  const lines = describeInventory({ controller: true, shards: found, otherInstalls: [], customObjects: 0, installObjects: [] }, "ferry-system");
  assert.deepEqual(lines.slice(0, 2), ["Deployment ferry-system/ferry-controller (the controller, deleted first)", "Deployment ferry-system/ferry-controller-shard1 (the controller of shard1, deleted first)"]);
});

test("the informer sends the selector with its list and its watch (the apiserver filters, not the controller)", async () => {
  const seen: Array<{ watch: boolean; labelSelector: string | null }> = [];
  const server = createServer((request, response) => {
    const url = new URL(request.url ?? "/", "http://localhost");
    const watch = url.searchParams.get("watch") === "true";
    seen.push({ watch, labelSelector: url.searchParams.get("labelSelector") });
    response.setHeader("content-type", "application/json");
    if (!watch) response.end(JSON.stringify({ apiVersion: "v1", kind: "List", items: [], metadata: { resourceVersion: "1" } }));
    else response.write("");
  });
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  const { port } = server.address() as { port: number };
  const config = new KubeConfig();
  config.loadFromOptions({
    clusters: [{ name: "c", server: `http://127.0.0.1:${port}`, skipTLSVerify: true }],
    users: [{ name: "u", token: "t" }],
    contexts: [{ name: "x", cluster: "c", user: "u" }],
    currentContext: "x",
  });
  const informer = new Informer(new KubeClient(config), {
    type: OCI_REPOSITORY, labelSelector: "sharding.fluxcd.io/key=shard1", resyncMs: 60_000, silenceMs: 60_000, log: () => {}, onUpsert: () => {}, onDelete: () => {},
  });
  try {
    await informer.start();
    await waitUntil("a watch", async () => seen.some((request) => request.watch), { timeoutMs: 10_000 });
    assert.deepEqual(seen.slice(0, 2), [{ watch: false, labelSelector: "sharding.fluxcd.io/key=shard1" }, { watch: true, labelSelector: "sharding.fluxcd.io/key=shard1" }]);
  } finally {
    informer.stop();
    server.closeAllConnections();
    server.close();
  }
});

test("ferry check reads each controller's lease by its selector: a sharded main controller's, and one per shard", () => {
  const objects = installManifests({ shards: 1, image: "example/ferry:1" }) as Deployment[];
  const [main, shard1] = deployments(objects);
  assert.equal(controllerLeaseName(main), "ferry-controller-leader");
  assert.equal(controllerLeaseName(shard1), shardLeaseName("ferry-controller-leader", "sharding.fluxcd.io/key=shard1"));
  assert.equal(controllerLeaseName(deployments(installManifests({}))[0]), "ferry-controller-leader");
  const now = new Date("2026-01-01T00:00:30Z");
  const fresh = { spec: { holderIdentity: "pod-a", leaseDurationSeconds: 15, renewTime: "2026-01-01T00:00:25.000000Z" } };
  const ready = (deployment: Deployment | undefined) => ({
    ...deployment,
    status: { observedGeneration: 1, replicas: 1, updatedReplicas: 1, readyReplicas: 1, availableReplicas: 1, conditions: [{ type: "Available", status: "True" }] },
    metadata: { ...deployment?.metadata, generation: 1 },
  });
  const report = evaluateInstall({
    cliVersion: FERRY_VERSION, namespace: "ferry-system", now, crds: new Map(), deployment: ready(main), lease: fresh,
    shards: [{ name: "ferry-controller-shard1", deployment: ready(shard1), leaseName: controllerLeaseName(shard1), lease: undefined }],
  });
  const messages = report.checks.map((check) => check.message);
  assert.ok(messages.includes("Deployment ferry-system/ferry-controller-shard1 Ready"), messages.join("\n"));
  assert.ok(messages.includes(`Lease ferry-system/${controllerLeaseName(shard1)} has no holder: no controller is leading`), messages.join("\n"));
});

test("--watch-namespace names one namespace, checked at start (exit 2), and contradicts --watch-all-namespaces=true", () => {
  const run = (...args: string[]) => spawnSync(process.execPath, [FERRY, "controller", "--kubeconfig=/nonexistent", ...args], { encoding: "utf8", timeout: 60_000 });
  const bad = run("--watch-namespace=Team_A");
  assert.equal(bad.status, 2, bad.stderr);
  assert.match(bad.stderr, /--watch-namespace "Team_A" is not a namespace name/);
  const contradiction = run("--watch-namespace=team-a", "--watch-all-namespaces=true");
  assert.equal(contradiction.status, 2, contradiction.stderr);
  assert.match(contradiction.stderr, /contradict/);
});

test("another shard's source is fetched through a client that reads and never writes", async () => {
  const calls: string[] = [];
  const fake = {
    config: { marker: true },
    secretData: async (namespace: string, name: string) => {
      calls.push(`secretData ${namespace}/${name}`);
      return {};
    },
    patchStatus: async () => calls.push("patchStatus"),
    setFinalizers: async () => calls.push("setFinalizers"),
    event: async () => calls.push("event"),
    api: () => calls.push("api"),
  } as unknown as KubeClient;
  const kube = readOnlyKube(fake);
  await kube.secretData("ns", "auth");
  await kube.patchStatus(OCI_REPOSITORY, "ns", "x", {});
  await kube.setFinalizers(OCI_REPOSITORY, { namespace: "ns", name: "x" }, []);
  await kube.event({ apiVersion: "v1", kind: "X", metadata: { namespace: "ns", name: "x" } }, "Normal", "R", "m");
  assert.throws(() => (kube as unknown as { api: () => void }).api(), /not allowed when fetching another shard's source/);
  assert.deepEqual(calls, ["secretData ns/auth"]);
  assert.deepEqual((kube as unknown as { config: unknown }).config, { marker: true });
});
