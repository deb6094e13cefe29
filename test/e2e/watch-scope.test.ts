// --watch-all-namespaces=false: the controller reconciles the objects of its own namespace (POD_NAMESPACE) and
// leaves every other namespace's alone, even where its RBAC would let it read them (the bed's controller runs
// without --multi-tenant, its rules bound cluster-wide); a Kustomization there may not name a source in another
// namespace. --log-level=error keeps routine lines out of its log, and failures in.
import assert from "node:assert/strict";
import { setTimeout as sleep } from "node:timers/promises";
import { after, before, describe, test } from "node:test";
import { skipUnlessBuilt } from "../harness/binaries.ts";
import { ControllerBed, type ObservedRepository, type Replica } from "../harness/controller-bed.ts";
import { waitUntil } from "../harness/processes.ts";

describe("controller watch scope", { skip: skipUnlessBuilt("etcd", "kube-apiserver", "kubectl", "zot") }, () => {
  let bed: ControllerBed;
  let replica: Replica;

  const applyRepository = (namespace: string, tag: string) => bed.cluster.kubectl(["apply", "-f", "-"], {
    input: JSON.stringify({
      apiVersion: "source.ferry.dev/v1",
      kind: "OCIRepository",
      metadata: { namespace, name: "app" },
      spec: { url: `oci://${bed.registry.host}/scope/app`, ref: { tag }, interval: "1h", insecure: true },
    }),
  });
  const repository = async (namespace: string) =>
    JSON.parse(await bed.cluster.kubectl(["get", "ocirepository", "app", "-n", namespace, "-o", "json"])) as ObservedRepository;

  before(async () => {
    bed = await ControllerBed.start();
    for (const namespace of ["team-a", "team-b"]) await bed.cluster.kubectl(["create", "namespace", namespace]);
  });
  after(async () => {
    await bed?.stop();
  });

  test("only the controller's own namespace is reconciled", async () => {
    await bed.push("scope/app", "v1");
    const env = { POD_NAMESPACE: "team-a" };
    replica = await bed.startController("scoped", ["--watch-all-namespaces=false", "--log-level=error"], { env, behindProxy: true });
    await applyRepository("team-b", "v1");
    await applyRepository("team-a", "v1");
    await waitUntil("team-a/app has an artifact", async () => (await repository("team-a")).status?.artifact !== undefined, { timeoutMs: 30_000, intervalMs: 200 });
    // team-b's object was created first: had the controller watched it, it would have been reconciled by now.
    await sleep(2_000);
    const untouched = (await repository("team-b")).status;
    assert.equal(untouched?.artifact, undefined, "team-b/app was never reconciled");
    assert.equal(untouched?.conditions, undefined);
    const lines = await replica.logs();
    assert.ok(!lines.some((line) => line.msg === "reconciled"), "--log-level=error leaves out info lines");
  });

  test("a Kustomization in the watched namespace may not name a source in another: AccessDenied, stalled", async () => {
    await bed.cluster.kubectl(["apply", "-f", "-"], {
      input: JSON.stringify({
        apiVersion: "kustomize.ferry.dev/v1",
        kind: "Kustomization",
        metadata: { namespace: "team-a", name: "borrowed" },
        spec: { sourceRef: { kind: "OCIRepository", name: "app", namespace: "team-b" }, path: "./", interval: "1h", prune: true },
      }),
    });
    type Observed = { status?: { conditions?: Array<{ type: string; status: string; reason: string; message: string }> } };
    const conditionOf = async (type: string) => {
      const object = JSON.parse(await bed.cluster.kubectl(["get", "kustomization", "borrowed", "-n", "team-a", "-o", "json"])) as Observed;
      return object.status?.conditions?.find((condition) => condition.type === type);
    };
    await waitUntil("team-a/borrowed is Stalled", async () => (await conditionOf("Stalled"))?.status === "True", { timeoutMs: 30_000, intervalMs: 200 });
    assert.equal((await conditionOf("Ready"))?.reason, "AccessDenied");
    assert.match((await conditionOf("Stalled"))?.message ?? "", /cross-namespace sourceRef to 'team-b\/app' is not allowed/);
  });

  test("at --log-level=error, a failed watch is still logged, at error level", async () => {
    const cut = Date.now();
    replica.proxy?.dropConnections();
    const errorLines = async () => (await replica.logs()).filter((line) => line.at >= cut && line.fields.level === "error");
    await waitUntil("an error line after the cut", async () => (await errorLines()).length > 0, { timeoutMs: 30_000, intervalMs: 200 });
    assert.ok((await errorLines()).some((line) => line.msg === "watch failed; retrying"));
  });
});
