// The informer against a real apiserver: it lists, then watches, and a watch that goes silent is restarted; events
// keep arriving. (410 Gone after a real etcd compaction and apiserver restarts: watch-recovery.test.ts.)
import assert from "node:assert/strict";
import { join } from "node:path";
import { after, before, describe, test } from "node:test";
import { Informer } from "../../src/controller/informer.ts";
import { KubeClient } from "../../src/kube/client.ts";
import { OCI_REPOSITORY, type OCIRepository } from "../../src/reconcilers/ocirepository.ts";
import { skipUnlessBuilt } from "../harness/binaries.ts";
import { type ControlPlane, startControlPlane } from "../harness/control-plane.ts";
import { waitUntil } from "../harness/processes.ts";

const CRDS = join(import.meta.dirname, "..", "..", "crds");

describe("informer", { skip: skipUnlessBuilt("etcd", "kube-apiserver", "kubectl") }, () => {
  let cluster: ControlPlane;
  let informer: Informer<OCIRepository>;
  const seen = new Set<string>();
  const logs: string[] = [];

  const create = (name: string) =>
    cluster.kubectl(["apply", "-f", "-"], {
      input: JSON.stringify({
        apiVersion: "source.ferry.dev/v1",
        kind: "OCIRepository",
        metadata: { namespace: "default", name },
        spec: { url: "oci://registry.invalid/app", interval: "1h" },
      }),
    });

  before(async () => {
    cluster = await startControlPlane({ apiserverOnly: true });
    await cluster.kubectl(["apply", "--server-side", "-f", CRDS]);
    await cluster.kubectl(["wait", "--for=condition=Established", "crd/ocirepositories.source.ferry.dev", "--timeout=30s"]);
    await create("before-start");
    informer = new Informer<OCIRepository>(KubeClient.fromFile(cluster.kubeconfig), {
      type: OCI_REPOSITORY,
      resyncMs: 60 * 60_000,
      silenceMs: 1500,
      log: (message) => logs.push(message),
      onUpsert: (object) => seen.add(object.metadata.name),
      onDelete: (object) => seen.delete(object.metadata.name),
    });
    await informer.start();
  });
  after(async () => {
    informer?.stop();
    await cluster?.stop();
  });

  test("lists what exists, then sees new objects through the watch", async () => {
    assert.ok(seen.has("before-start"));
    await create("after-start");
    await waitUntil("after-start seen", async () => seen.has("after-start"), { timeoutMs: 10_000 });
  });

  test("a silent watch is restarted and events keep arriving", async () => {
    const before = logs.filter((message) => message.includes("silent")).length;
    await waitUntil("a silent-watch restart", async () => logs.filter((message) => message.includes("silent")).length > before, { timeoutMs: 10_000 });
    await create("after-silence");
    await waitUntil("after-silence seen", async () => seen.has("after-silence"), { timeoutMs: 10_000 });
  });
});
