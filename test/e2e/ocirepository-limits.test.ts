// The controller's --max-artifact-size end to end: the flag reaches the OCIRepository reconciler, a layer over it is
// refused before it is downloaded (Ready=False saying how big it is and what the limit is), and nothing is stored.
import assert from "node:assert/strict";
import { readdir } from "node:fs/promises";
import { join } from "node:path";
import { after, before, describe, test } from "node:test";
import { skipUnlessBuilt } from "../harness/binaries.ts";
import { type Condition, DeliveryBed } from "../harness/delivery.ts";
import { ferry } from "../harness/ferry.ts";
import { waitUntil } from "../harness/processes.ts";

const PODINFO = join(import.meta.dirname, "..", "..", "..", "shared", "corpora", "podinfo", "kustomize");

describe("controller artifact limit", { skip: skipUnlessBuilt("etcd", "kube-apiserver", "kube-controller-manager", "kube-scheduler", "kubectl", "kwok", "zot", "kustomize") }, () => {
  let bed: DeliveryBed;

  before(async () => {
    bed = await DeliveryBed.start();
    // podinfo's layer is about 1.1 KiB: over a 1 KiB limit. Kustomize never runs here, so no sandbox is needed.
    bed.startController(["--max-artifact-size=1Ki", "--insecure-unconfined-builds"]);
  });
  after(async () => {
    await bed?.stop();
  });

  test("a layer over --max-artifact-size leaves the source Ready=False, with nothing downloaded or stored", async () => {
    await bed.push(PODINFO, "limits/podinfo");
    await bed.applyObjects([{
      apiVersion: "source.ferry.dev/v1",
      kind: "OCIRepository",
      metadata: { namespace: "default", name: "limited" },
      spec: { url: `oci://${bed.registry.host}/limits/podinfo`, ref: { tag: "v1" }, interval: "1h", insecure: true },
    }]);
    let ready: Condition | undefined;
    await waitUntil("OCIRepository default/limited refused", async () => {
      const object = await bed.getJson(["ocirepository", "limited", "-n", "default"]) as { status?: { conditions?: Condition[] } };
      ready = object.status?.conditions?.find((condition) => condition.type === "Ready");
      return ready?.status === "False";
    }, { timeoutMs: 60_000, intervalMs: 300, ...(bed.controller ? { process: bed.controller } : {}) });
    assert.equal(ready?.reason, "OCIArtifactPullFailed");
    assert.match(ready?.message ?? "", /^blob sha256:[0-9a-f]{64} is 1\.\d KiB \(\d+ bytes\), over the 1 KiB limit$/);
    const stored = await readdir(join(bed.dir, "cache", "ocirepository", "default", "limited")).catch(() => []);
    assert.deepEqual(stored, []);
  });

  test("a size the flag cannot read is a usage error", async () => {
    const result = await ferry(["controller", "--max-artifact-size=lots", "--insecure-unconfined-builds", `--kubeconfig=${bed.cluster.kubeconfig}`]);
    assert.equal(result.status, 2, result.stderr);
    assert.match(result.stderr, /--max-artifact-size must be a size such as 512Mi or 2Gi, not "lots"/);
  });
});
