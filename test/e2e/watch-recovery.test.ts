// The controller's watches survive what happens to real apiservers: a restart (the new apiserver answers the old
// resourceVersion with 429 while its storage initialises, then 410), etcd compacting the controller's
// resourceVersion away (a real 410 Gone), and a network partition in which requests hang, even before their
// headers. After each, a change made 1 s later is reconciled within 10 s; /healthz fails while the watches are dead.
import assert from "node:assert/strict";
import { setTimeout as sleep } from "node:timers/promises";
import { after, before, describe, test } from "node:test";
import { skipUnlessBuilt } from "../harness/binaries.ts";
import { ControllerBed, type Replica } from "../harness/controller-bed.ts";
import { compactEtcd } from "../harness/etcd.ts";
import { probe } from "../harness/http.ts";
import { waitUntil } from "../harness/processes.ts";

const RECONCILE_WITHIN_MS = 10_000;
const IDLE_TIMEOUT_S = 4;

describe("watch recovery", { skip: skipUnlessBuilt("etcd", "kube-apiserver", "kubectl", "zot") }, () => {
  let bed: ControllerBed;
  let controller: Replica;
  const digests: Record<string, string> = {};

  /** Sets default/<name> to follow tag `tag` one second from now, and returns how long until it was reconciled. */
  const changeAndTime = async (name: string, tag: string): Promise<number> => {
    await sleep(1000);
    const changed = Date.now();
    await bed.applyRepository(name, "apps/watched", tag);
    const reconciled = await bed.waitForRevision(name, `${tag}@${digests[tag]}`, 60_000, controller);
    return reconciled - changed;
  };

  const logSince = async (since: number) => (await controller.logs()).filter((line) => line.at >= since).map((line) => line.msg);

  before(async () => {
    bed = await ControllerBed.start();
    for (const tag of ["v1", "v2", "v3", "v4", "v5", "v6"]) digests[tag] = await bed.push("apps/watched", tag);
    controller = await bed.startController("watcher", [`--watch-idle-timeout=${IDLE_TIMEOUT_S}s`], { behindProxy: true });
    for (const name of ["restart", "compaction", "partition"]) await bed.applyRepository(name, "apps/watched", "v1");
    for (const name of ["restart", "compaction", "partition"]) await bed.waitForRevision(name, `v1@${digests.v1}`, 30_000, controller);
  });
  after(async () => {
    await bed?.stop();
  });

  test("a change made 1 s after kube-apiserver restarts is reconciled within 10 s", async () => {
    const restarted = Date.now();
    await bed.cluster.restartApiserver();
    const tookMs = await changeAndTime("restart", "v2");
    console.log(`apiserver restart: change reconciled ${tookMs} ms after it was made (${Date.now() - restarted} ms after the restart began)`);
    assert.ok(tookMs <= RECONCILE_WITHIN_MS, `reconciled ${tookMs} ms after the change`);
    assert.ok((await logSince(restarted)).includes("watch expired (410 Gone); relisting"), "the restarted apiserver did not answer 410");
  });

  test("after etcd compacts the watched resourceVersion away, the 410 Gone leads to a relist and changes keep coming", async () => {
    // Served from the watch cache, an old resourceVersion never reaches etcd; without it, the watch is etcd's own.
    await bed.cluster.restartApiserver({ extraArgs: ["--watch-cache=false"] });
    await bed.applyRepository("compaction", "apps/watched", "v3");
    await bed.waitForRevision("compaction", `v3@${digests.v3}`, 30_000, controller);
    // Revisions the controller's watch never sees, then compaction past them and its own.
    for (let index = 0; index < 3; index++) await bed.cluster.kubectl(["create", "configmap", `bump-${index}`, "-n", "default"]);
    const compacted = Date.now();
    const revision = await compactEtcd(bed.cluster.etcdUrl);
    controller.proxy?.dropConnections();
    const tookMs = await changeAndTime("compaction", "v4");
    console.log(`etcd compaction at revision ${revision}: change reconciled ${tookMs} ms after it was made`);
    assert.ok(tookMs <= RECONCILE_WITHIN_MS, `reconciled ${tookMs} ms after the change`);
    assert.ok((await logSince(compacted)).includes("watch expired (410 Gone); relisting"), "the watch was never answered 410 Gone");
  });

  test("through a partition that swallows every byte, /healthz fails; after it heals, a change made 1 s later is reconciled within 10 s", async () => {
    const health = async () => (await probe(`${controller.healthUrl}/healthz`)).status;
    // Healthy before the cut. The previous test left an apiserver without a watch cache, which sends no bookmarks,
    // so an idle watch is only renewed by the watchdog's restart, and on a loaded machine /healthz can read
    // "no answer" for a moment before that restart lands.
    await waitUntil("/healthz to pass before the cut", async () => (await health()) === 200, { timeoutMs: 30_000, intervalMs: 200 });
    const cut = Date.now();
    controller.proxy?.partition(true);
    try {
      await waitUntil("/healthz to fail", async () => (await health()) === 503, { timeoutMs: 2 * IDLE_TIMEOUT_S * 1000 + 5000, intervalMs: 200 });
      console.log(`partition: /healthz failed ${Date.now() - cut} ms after the cut`);
      const body = (await probe(`${controller.healthUrl}/healthz`)).body.toString();
      assert.match(body, /(OCIRepository|Kustomization) watch: no answer from the apiserver for \d+s/);
      // Long enough for the watchdog to restart a watch that then hangs before its headers.
      await sleep(Math.max(0, 3 * IDLE_TIMEOUT_S * 1000 - (Date.now() - cut)));
    } finally {
      controller.proxy?.partition(false);
    }
    const healed = Date.now();
    const tookMs = await changeAndTime("partition", "v5");
    console.log(`partition healed: change reconciled ${tookMs} ms after it was made`);
    assert.ok(tookMs <= RECONCILE_WITHIN_MS, `reconciled ${tookMs} ms after the change`);
    await waitUntil("/healthz to pass again", async () => (await health()) === 200, { timeoutMs: 5000 });
    assert.ok((await logSince(cut)).includes("watch went silent; restarting it"));
    console.log(`partition healed: /healthz passed again within ${Date.now() - healed} ms`);
  });
});
