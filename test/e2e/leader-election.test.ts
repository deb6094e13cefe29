// Two controller replicas and one Lease: when the leader is cut off from the apiserver by a partition that swallows
// its traffic (its renewals hang rather than fail), it stops acting before the standby can take the lease over,
// so two replicas never reconcile at once. Timings that could not guarantee that are refused at start.
import assert from "node:assert/strict";
import { join } from "node:path";
import { setTimeout as sleep } from "node:timers/promises";
import { after, before, describe, test } from "node:test";
import { skipUnlessBuilt } from "../harness/binaries.ts";
import { ControllerBed, type LogLine } from "../harness/controller-bed.ts";
import { FERRY_CLI } from "../harness/ferry.ts";
import { type ManagedProcess, startProcess, waitUntil } from "../harness/processes.ts";

const ELECTION = ["--leader-elect", "--leader-election-namespace=ferry-system", "--lease-duration=4s", "--renew-deadline=3s", "--retry-period=500ms"];

const first = (lines: LogLine[], message: string) => lines.find((line) => line.msg === message);
const last = (lines: LogLine[], message: string) => lines.findLast((line) => line.msg === message);

describe("leader election", { skip: skipUnlessBuilt("etcd", "kube-apiserver", "kubectl", "zot") }, () => {
  let bed: ControllerBed;

  before(async () => {
    bed = await ControllerBed.start();
    const digest = await bed.push("apps/busy", "v1");
    // Reconciled every second by whichever replica leads: the "reconciled" lines show who is acting, and when.
    await bed.applyRepository("busy", "apps/busy", "v1", "1s");
    assert.ok(digest);
  });
  after(async () => {
    await bed?.stop();
  });

  test("a leader cut off from the apiserver stops reconciling before the standby acquires the lease", async () => {
    const leader = await bed.startController("a", ELECTION, { behindProxy: true });
    await waitUntil("a to lead and reconcile", async () => first(await leader.logs(), "reconciled") !== undefined, { timeoutMs: 20_000, process: leader.process });
    const standby = await bed.startController("b", ELECTION);
    await sleep(3000);
    assert.equal(first(await standby.logs(), "became leader"), undefined, "the standby took over from a leader that renews");

    leader.proxy?.partition(true);
    const cut = Date.now();
    await waitUntil("b to become leader", async () => first(await standby.logs(), "became leader") !== undefined, { timeoutMs: 20_000, process: standby.process });
    await waitUntil("b to reconcile", async () => first(await standby.logs(), "reconciled") !== undefined, { timeoutMs: 10_000, process: standby.process });
    leader.proxy?.partition(false);

    const [a, b] = [await leader.logs(), await standby.logs()];
    const aLost = last(a, "lost leadership");
    const aLastReconcile = last(a, "reconciled");
    const bBecame = first(b, "became leader");
    assert.ok(aLost, "the cut-off leader never stepped down");
    assert.ok(aLastReconcile && bBecame);
    console.log(`partition at 0 ms: a stepped down at ${aLost.at - cut} ms (${String(aLost.fields.reason)}), b became leader at ${bBecame.at - cut} ms`);
    assert.ok(aLost.at < bBecame.at, `a stepped down ${aLost.at - bBecame.at} ms after b became leader`);
    assert.ok(aLastReconcile.at < bBecame.at, "a reconciled after b became leader");
    assert.match(await outcome(leader.process, 5000), /exited with code 1/, "a kept running after it stepped down");

    const lease = JSON.parse(await bed.cluster.kubectl(["get", "lease", "ferry-controller-leader", "-n", "ferry-system", "-o", "json"])) as {
      spec: { holderIdentity: string; acquireTime: string; leaseTransitions: number };
    };
    assert.equal(lease.spec.holderIdentity, bBecame.fields.identity);
    assert.ok(lease.spec.leaseTransitions >= 1);
    assert.ok(Date.parse(lease.spec.acquireTime) > aLost.at, "the lease records b acquiring before a stepped down");
  });

  test("lease timings that cannot keep two leaders apart are refused at start (exit 2)", async () => {
    const refused = [
      ["--lease-duration=3s", "--renew-deadline=3s", "--retry-period=1s"],
      ["--lease-duration=15s", "--renew-deadline=2s", "--retry-period=2s"],
      ["--lease-duration=15s", "--renew-deadline=10s", "--retry-period=0s"],
    ];
    for (const [index, timings] of refused.entries()) {
      const child = startProcess(`refused controller ${index}`, process.execPath, [
        FERRY_CLI, "controller", `--kubeconfig=${bed.cluster.kubeconfig}`, "--health-addr=127.0.0.1:0", "--leader-elect", ...timings,
      ], { logFile: join(bed.dir, `refused-${index}.log`) });
      const ended = await outcome(child, 20_000);
      await child.stop();
      assert.match(ended, /exited with code 2/, timings.join(" "));
      assert.match(await child.tail(), /--lease-duration, --renew-deadline, --retry-period: the /);
    }
  });
});

/** How the process ended ("… exited with code N …"), or "still running" after `waitMs`. */
function outcome(child: ManagedProcess, waitMs: number): Promise<string> {
  return Promise.race([child.exited.catch((error: Error) => error.message), sleep(waitMs).then(() => "still running")]);
}
