// Sharding (issue 15) with Flux's labels: a main controller (--watch-label-selector='!sharding.fluxcd.io/key'), two
// replicas of shard1 and one of shard2, all with leader election. Each shard elects on its own Lease, reconciles only
// the objects labelled for it (no other controller's log names them), and a Kustomization of shard1 whose source is
// the main controller's is applied from that source's artifact, fetched into shard1's own cache. When shard1's
// leader is killed, its standby takes shard1's lease over (the other shards' leases are untouched) and reconciles
// new revisions, of its own source and of the other shard's.
import assert from "node:assert/strict";
import { after, before, describe, test } from "node:test";
import { shardLeaseName } from "../../src/controller/selector.ts";
import { binary, skipUnlessBuilt } from "../harness/binaries.ts";
import { ControllerBed, type LogLine, type Replica } from "../harness/controller-bed.ts";
import { waitUntil } from "../harness/processes.ts";

const SHARD_KEY = "sharding.fluxcd.io/key";
const ELECTION = ["--leader-elect", "--leader-election-namespace=ferry-system", "--lease-duration=4s", "--renew-deadline=3s", "--retry-period=500ms"];
const SELECTORS = { main: `!${SHARD_KEY}`, shard1: `${SHARD_KEY}=shard1`, shard2: `${SHARD_KEY}=shard2` } as const;

interface Lease {
  metadata: { resourceVersion: string };
  spec: { holderIdentity?: string; leaseTransitions?: number };
}

interface Kustomization {
  status?: { lastAppliedRevision?: string; conditions?: Array<{ type: string; status: string; message?: string }> };
}

/** The objects a controller's log says it reconciled ("reconciled" lines), as kind namespace/name. */
function reconciled(lines: readonly LogLine[]): Set<string> {
  return new Set(lines.filter((line) => line.msg === "reconciled").map((line) => `${String(line.fields.kind)} ${String(line.fields.object)}`));
}

const identityOf = (lines: readonly LogLine[]) => lines.find((line) => line.msg === "became leader")?.fields.identity as string | undefined;

describe("sharding", { skip: skipUnlessBuilt("etcd", "kube-apiserver", "kubectl", "zot", "kustomize") }, () => {
  let bed: ControllerBed;
  const digests: Record<string, string> = {};
  /** The replicas left running by the first test: shard1's leader after the takeover, and shard2's. */
  const replicas: { shard1?: Replica; shard2?: Replica } = {};

  const source = (name: string, repository: string, tag: string, shard?: string) => ({
    apiVersion: "source.ferry.dev/v1",
    kind: "OCIRepository",
    metadata: { namespace: "default", name, ...(shard ? { labels: { [SHARD_KEY]: shard } } : {}) },
    spec: { url: `oci://${bed.registry.host}/${repository}`, ref: { tag }, interval: "1h", insecure: true },
  });
  const kustomization = (name: string, sourceName: string, targetNamespace: string, shard?: string) => ({
    apiVersion: "kustomize.ferry.dev/v1",
    kind: "Kustomization",
    metadata: { namespace: "default", name, ...(shard ? { labels: { [SHARD_KEY]: shard } } : {}) },
    spec: { sourceRef: { kind: "OCIRepository", name: sourceName }, path: "./", interval: "1h", prune: true, targetNamespace },
  });
  const apply = (objects: readonly unknown[]) =>
    bed.cluster.kubectl(["apply", "--server-side", "--force-conflicts", "-f", "-"], { input: JSON.stringify({ apiVersion: "v1", kind: "List", items: objects }) });
  const getKustomization = async (name: string) => JSON.parse(await bed.cluster.kubectl(["get", "kustomization", name, "-n", "default", "-o", "json"])) as Kustomization;
  const lease = async (name: string) => JSON.parse(await bed.cluster.kubectl(["get", "lease", name, "-n", "ferry-system", "-o", "json"])) as Lease;
  const waitApplied = (name: string, digest: string, replica: Replica, timeoutMs = 60_000) => {
    let last: Kustomization | undefined;
    return waitUntil(`${name} applies ${digest}`, async () => {
      last = await getKustomization(name);
      return last.status?.lastAppliedRevision?.endsWith(digest) === true && last.status.conditions?.find((c) => c.type === "Ready")?.status === "True";
    }, { timeoutMs, intervalMs: 250, process: replica.process }).catch((error: Error) => {
      throw new Error(`${error.message}\nlast status: ${JSON.stringify(last?.status)}`);
    });
  };
  const start = (name: string, selector: string) =>
    bed.startController(name, [...ELECTION, `--watch-label-selector=${selector}`], { env: { FERRY_KUSTOMIZE: binary("kustomize") } });

  before(async () => {
    bed = await ControllerBed.start();
    // The bed's controller RBAC has no applier rights; these Kustomizations apply ConfigMaps.
    await bed.cluster.kubectl(["create", "clusterrolebinding", "ferry-e2e-applier", "--clusterrole=cluster-admin", "--serviceaccount=ferry-system:ferry-controller"]);
    await bed.cluster.kubectl(["create", "namespace", "cross"]);
    for (const repository of ["apps/main", "apps/one", "apps/two"]) digests[repository] = await bed.push(repository, "v1");
  });
  after(async () => {
    await bed?.stop();
  });

  test("each shard reconciles only its objects, on its own lease; a standby of a shard takes over its lease alone", async () => {
    const main = await start("main", SELECTORS.main);
    const shard1a = await start("shard1-a", SELECTORS.shard1);
    const shard2 = await start("shard2", SELECTORS.shard2);
    for (const replica of [main, shard1a, shard2]) {
      await waitUntil("leadership", async () => identityOf(await replica.logs()) !== undefined, { timeoutMs: 20_000, process: replica.process });
    }
    // Started once shard1-a leads, so that it is the standby.
    const shard1b = await start("shard1-b", SELECTORS.shard1);
    // An unsharded controller (as before install --shards) reconciles what the main one does: it shares its lease.
    const unsharded = await bed.startController("unsharded", ELECTION, { env: { FERRY_KUSTOMIZE: binary("kustomize") } });

    await apply([
      source("main", "apps/main", "v1"),
      kustomization("main", "main", "default"),
      source("one", "apps/one", "v1", "shard1"),
      kustomization("one", "one", "default", "shard1"),
      source("two", "apps/two", "v1", "shard2"),
      kustomization("two", "two", "default", "shard2"),
      // shard1's Kustomization following the main controller's source: its artifact is in main's cache, not shard1's.
      kustomization("cross", "main", "cross", "shard1"),
    ]);
    await waitApplied("main", digests["apps/main"] as string, main);
    await waitApplied("one", digests["apps/one"] as string, shard1a);
    await waitApplied("two", digests["apps/two"] as string, shard2);
    await waitApplied("cross", digests["apps/main"] as string, shard1a);
    for (const [namespace, name] of [["default", "apps-main"], ["default", "apps-one"], ["default", "apps-two"], ["cross", "apps-main"]]) {
      await bed.cluster.kubectl(["get", "configmap", name as string, "-n", namespace as string]);
    }

    // Three leases, one per selector, each held by that shard's leader; the main controller's is the unsharded name.
    const leaseNames = {
      main: "ferry-controller-leader",
      shard1: shardLeaseName("ferry-controller-leader", SELECTORS.shard1),
      shard2: shardLeaseName("ferry-controller-leader", SELECTORS.shard2),
    };
    const [mainLogs, shard1aLogs, shard2Logs, shard1bLogs] = await Promise.all([
      main.logs(), shard1a.logs(), shard2.logs(), shard1b.logs(),
    ]);
    assert.equal((await lease(leaseNames.main)).spec.holderIdentity, identityOf(mainLogs));
    assert.equal((await lease(leaseNames.shard1)).spec.holderIdentity, identityOf(shard1aLogs));
    assert.equal((await lease(leaseNames.shard2)).spec.holderIdentity, identityOf(shard2Logs));
    const leaseList = await bed.cluster.kubectl(["get", "lease", "-n", "ferry-system", "-o", "name"]);
    const leases = leaseList.trim().split("\n").map((name) => name.replace(/^.*\//, ""));
    assert.deepEqual(leases.sort(), Object.values(leaseNames).sort(), "one lease per shard, and no other");
    assert.equal(identityOf(shard1bLogs), undefined, "shard1's standby led while shard1's leader renewed");
    const unshardedLogs = await unsharded.logs();
    assert.equal(identityOf(unshardedLogs), undefined, "an unsharded controller led beside the main one");
    assert.deepEqual([...reconciled(unshardedLogs)], []);
    await unsharded.process.stop();

    // Each controller reconciled its own objects and nothing else.
    assert.deepEqual([...reconciled(mainLogs)].sort(), ["Kustomization default/main", "OCIRepository default/main"]);
    const shard1Objects = ["Kustomization default/cross", "Kustomization default/one", "OCIRepository default/one"];
    assert.deepEqual([...reconciled(shard1aLogs)].sort(), shard1Objects);
    assert.deepEqual([...reconciled(shard2Logs)].sort(), ["Kustomization default/two", "OCIRepository default/two"]);
    assert.deepEqual([...reconciled(shard1bLogs)], []);
    assert.ok(shard1aLogs.some((line) => line.msg === "fetched the artifact of another shard's source" && line.fields.object === "default/main"),
      "shard1 did not fetch the main controller's artifact itself");

    // shard1's leader dies (no lease release): its standby takes over shard1's lease, and only that one.
    const before = { main: await lease(leaseNames.main), shard2: await lease(leaseNames.shard2) };
    const newOne = await bed.push("apps/one", "v2");
    const newMain = await bed.push("apps/main", "v2");
    await shard1a.process.kill("SIGKILL");
    const killed = Date.now();
    await waitUntil("shard1-b to lead", async () => identityOf(await shard1b.logs()) !== undefined, { timeoutMs: 20_000, process: shard1b.process });
    console.log(`shard1's standby became leader ${Date.now() - killed} ms after its leader was killed`);
    await apply([source("one", "apps/one", "v2", "shard1"), source("main", "apps/main", "v2")]);
    await waitApplied("one", newOne, shard1b);
    // The main controller stores the new artifact; shard1's new leader, whose cache is empty, fetches it and applies it.
    await waitApplied("main", newMain, main);
    await waitApplied("cross", newMain, shard1b);
    assert.equal((await lease(leaseNames.shard1)).spec.holderIdentity, identityOf(await shard1b.logs()));
    const afterTakeover = { main: await lease(leaseNames.main), shard2: await lease(leaseNames.shard2) };
    for (const shard of ["main", "shard2"] as const) {
      assert.equal(afterTakeover[shard].spec.holderIdentity, before[shard].spec.holderIdentity, `${shard}'s lease changed hands`);
      assert.equal(afterTakeover[shard].spec.leaseTransitions ?? 0, before[shard].spec.leaseTransitions ?? 0, `${shard}'s lease changed hands`);
    }
    const [mainAfter, shard2After, shard1bAfter] = await Promise.all([main.logs(), shard2.logs(), shard1b.logs()]);
    assert.deepEqual([...reconciled(mainAfter)].sort(), ["Kustomization default/main", "OCIRepository default/main"]);
    assert.deepEqual([...reconciled(shard2After)].sort(), ["Kustomization default/two", "OCIRepository default/two"]);
    assert.deepEqual([...reconciled(shard1bAfter)].sort(), shard1Objects);
    replicas.shard1 = shard1b;
    replicas.shard2 = shard2;
  });

  test("moving an object between shards: relabelled, the old shard lets go of it and the new one reconciles it", async () => {
    // After the first test: main, shard1-b (shard1's leader) and shard2 run. Kustomization two moves to shard1.
    assert.ok(replicas.shard1 && replicas.shard2, "runs after the first test");
    const { shard1, shard2 } = replicas;
    const moved = Date.now();
    await bed.cluster.kubectl(["label", "kustomization", "two", "-n", "default", `${SHARD_KEY}=shard1`, "--overwrite"]);
    const after = (lines: readonly LogLine[]) => lines.filter((line) => line.at >= moved);
    await waitUntil("shard1 to reconcile the moved Kustomization", async () => reconciled(after(await shard1.logs())).has("Kustomization default/two"), {
      timeoutMs: 30_000, process: shard1.process,
    });
    // A reconcile requested now is shard1's alone.
    const requested = Date.now();
    await bed.cluster.kubectl(["annotate", "kustomization", "two", "-n", "default", `reconcile.ferry.dev/requestedAt=${requested}`, "--overwrite"]);
    const handled = () => bed.cluster.kubectl(["get", "kustomization", "two", "-n", "default", "-o", "jsonpath={.status.lastHandledReconcileAt}"]);
    await waitUntil("the request handled", async () => (await handled()).trim() === String(requested), { timeoutMs: 30_000, process: shard1.process });
    assert.ok(!reconciled(after(await shard2.logs())).has("Kustomization default/two"), "shard2 reconciled a Kustomization moved out of it");
    // Its source stays in shard2, which still reconciles it; shard1 follows it as another shard's source.
    assert.ok(!reconciled(after(await shard1.logs())).has("OCIRepository default/two"));
  });

  test("--watch-namespace with a selector: one namespace's objects of one shard", async () => {
    const scoped = await bed.startController("scoped", ["--watch-namespace=cross", `--watch-label-selector=${SHARD_KEY}=shard3`]);
    const inCross = { ...source("scoped", "apps/one", "v1", "shard3"), metadata: { namespace: "cross", name: "scoped", labels: { [SHARD_KEY]: "shard3" } } };
    await apply([inCross, source("elsewhere", "apps/one", "v1", "shard3")]);
    await waitUntil("the scoped controller to reconcile cross/scoped", async () => reconciled(await scoped.logs()).has("OCIRepository cross/scoped"), {
      timeoutMs: 30_000, process: scoped.process,
    });
    // default/elsewhere is in shard3 but outside the namespace: never listed, never reconciled.
    const untouched = await bed.cluster.kubectl(["get", "ocirepository", "elsewhere", "-n", "default", "-o", "jsonpath={.status.conditions}{.metadata.finalizers}"]);
    assert.equal(untouched.trim(), "", "default/elsewhere has conditions or a finalizer");
    assert.deepEqual([...reconciled(await scoped.logs())], ["OCIRepository cross/scoped"]);
  });
});
