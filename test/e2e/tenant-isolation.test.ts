// What one tenant can do to the others through the shared controller, on the test bed: hostile objects are bounded
// and reported, and the healthy tenants' Kustomizations still converge.
import assert from "node:assert/strict";
import { mkdtemp, readFile, rm, writeFile } from "node:fs/promises";
import { createServer, type Server, type Socket } from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, before, describe, test } from "node:test";
import yaml from "js-yaml";
import { skipUnlessBuilt } from "../harness/binaries.ts";
import { startFaultProxy } from "../../registry-fixtures/fault-proxy.ts";
import { condition, DeliveryBed, type ObservedKustomization, readyWith } from "../harness/delivery.ts";
import { waitUntil } from "../harness/processes.ts";

/** Accepts TCP connections and never answers: the TLS handshake of every request to it hangs. */
async function startTarpit(): Promise<{ port: number; close: () => Promise<void> }> {
  const sockets = new Set<Socket>();
  const server: Server = createServer((socket) => {
    sockets.add(socket);
    socket.on("close", () => sockets.delete(socket));
    socket.on("error", () => {});
  });
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  const port = (server.address() as { port: number }).port;
  return {
    port,
    close: () => {
      for (const socket of sockets) socket.destroy();
      return new Promise((resolve) => server.close(() => resolve()));
    },
  };
}

describe("tenant isolation", { skip: skipUnlessBuilt("etcd", "kube-apiserver", "kube-controller-manager", "kube-scheduler", "kubectl", "kwok", "zot", "kustomize") }, () => {
  let bed: DeliveryBed;
  let tarpit: Awaited<ReturnType<typeof startTarpit>>;
  let fixture: string;

  before(async () => {
    [bed, tarpit] = await Promise.all([DeliveryBed.start(), startTarpit()]);
    fixture = await mkdtemp(join(tmpdir(), "ferry-tenant-"));
    await writeFile(join(fixture, "cm.yaml"), yaml.dump({ apiVersion: "v1", kind: "ConfigMap", metadata: { name: "app" }, data: { a: "1" } }));
    bed.startController(["--concurrency=2", "--sync-period=2s"]);
  });
  after(async () => {
    await Promise.all([bed?.stop(), tarpit?.close(), fixture && rm(fixture, { recursive: true, force: true })]);
  });

  test("a registry that trickles its tag list forever fails the OCIRepository at its deadline", async () => {
    await bed.cluster.kubectl(["create", "namespace", "trickle"]);
    await bed.push(fixture, "tenants/slow", "1.0.0");
    const proxy = await startFaultProxy(bed.registry.host);
    try {
      // One byte every 300 ms: no inactivity timeout ever fires, and the answer never ends.
      proxy.faults.push({ method: "GET", path: /\/tags\/list/, action: { kind: "trickle", status: 200, prefix: "{\"name\":\"tenants/slow\",\"tags\":[\"", filler: "a", everyMs: 300 } });
      await bed.applyObjects([{
        apiVersion: "source.ferry.dev/v1",
        kind: "OCIRepository",
        metadata: { namespace: "trickle", name: "slow" },
        spec: { url: `oci://${proxy.host}/tenants/slow`, ref: { semver: ">=1.0.0" }, interval: "1h", timeout: "2s", insecure: true },
      }]);
      await waitUntil("the OCIRepository fails at its deadline", async () => {
        const source = JSON.parse(await bed.cluster.kubectl(["get", "ocirepository", "slow", "-n", "trickle", "-o", "json"])) as ObservedKustomization;
        const ready = condition(source, "Ready");
        return ready?.status === "False" && /did not finish within three times its timeout of 2s/.test(ready.message);
      }, { timeoutMs: 60_000, intervalMs: 500 });
    } finally {
      await proxy.stop();
    }
  });

  test("a resync does not reconcile objects whose interval has not come: no reconcile storm every sync period", async () => {
    await bed.cluster.kubectl(["create", "namespace", "quiet"]);
    const digest = await bed.push(fixture, "tenants/quiet");
    await bed.deliver("quiet", "app", "tenants/quiet", {});
    await bed.waitForKustomization("quiet", "app", "Ready", readyWith(digest));
    const reconciles = async () => (await readFile(bed.controller?.logFile ?? "", "utf8")).split("\n")
      .filter((line) => line.startsWith("{"))
      .map((line) => JSON.parse(line) as { msg?: string; kind?: string; object?: string })
      .filter((entry) => entry.msg === "reconciled" && entry.kind === "Kustomization" && entry.object === "quiet/app").length;
    const before = await reconciles();
    await new Promise((resolve) => setTimeout(resolve, 7_000));
    // Three sync periods have passed; the 1h interval has not.
    assert.equal(await reconciles(), before);
  });

  test("a Secret value the apiserver quotes in a validation error reaches neither status nor events", async () => {
    await bed.cluster.kubectl(["create", "namespace", "leaky"]);
    const secretValue = `s3cr3t-${"x".repeat(70)}`;
    await bed.applyObjects([{ apiVersion: "v1", kind: "Secret", metadata: { namespace: "leaky", name: "vars" }, stringData: { label: secretValue } }]);
    const source = await mkdtemp(join(tmpdir(), "ferry-leaky-"));
    // A label value over 63 characters: the apiserver refuses it and quotes it in the error.
    await writeFile(join(source, "cm.yaml"), yaml.dump({ apiVersion: "v1", kind: "ConfigMap", metadata: { name: "leaky", labels: { tier: "${label}" } }, data: { a: "1" } }));
    await bed.push(source, "tenants/leaky");
    await rm(source, { recursive: true, force: true });
    await bed.deliver("leaky", "app", "tenants/leaky", { postBuild: { substituteFrom: [{ kind: "Secret", name: "vars" }] } });
    const failed = await bed.waitForKustomization("leaky", "app", "failed on the apiserver's validation", (o) => condition(o, "Ready")?.status === "False" && /Invalid value/.test(condition(o, "Ready")?.message ?? ""));
    assert.match(condition(failed, "Ready")?.message ?? "", /\[redacted\]/);
    const everything = JSON.stringify(failed.status) + await bed.cluster.kubectl(["get", "events", "-n", "leaky", "-o", "json"]);
    assert.ok(!everything.includes(secretValue.slice(0, 20)), "the Secret's value was reported");
  });

  test("Kustomizations aimed at a server that never answers time out; the other tenants still converge", async () => {
    await bed.cluster.kubectl(["create", "namespace", "attacker"]);
    await bed.cluster.kubectl(["create", "namespace", "victim"]);
    const kubeconfig = yaml.dump({
      apiVersion: "v1",
      kind: "Config",
      clusters: [{ name: "tarpit", cluster: { server: `https://127.0.0.1:${tarpit.port}`, "certificate-authority-data": (await readFile(bed.cluster.caFile)).toString("base64") } }],
      users: [{ name: "tenant", user: { token: "not-a-real-token" } }],
      contexts: [{ name: "tarpit", context: { cluster: "tarpit", user: "tenant" } }],
      "current-context": "tarpit",
    });
    await bed.applyObjects([{ apiVersion: "v1", kind: "Secret", metadata: { namespace: "attacker", name: "tarpit" }, stringData: { value: kubeconfig } }]);
    const digest = await bed.push(fixture, "tenants/app");
    // As many as there are workers: without deadlines each holds its worker for ever and nothing else runs.
    for (const name of ["a", "b"]) {
      await bed.deliver("attacker", name, "tenants/app", { kubeConfig: { secretRef: { name: "tarpit" } }, timeout: "30s" });
    }
    await bed.waitForKustomization("attacker", "a", "building (holding a worker)", (o) => o.status?.lastAttemptedRevision !== undefined, 60_000);
    await bed.deliver("victim", "app", "tenants/app", {});
    await bed.waitForKustomization("victim", "app", "Ready while the tarpits hold workers", readyWith(digest), 120_000);

    const timedOut = await bed.waitForKustomization("attacker", "a", "failed on its deadline", (o) => condition(o, "Ready")?.status === "False", 120_000);
    assert.match(condition(timedOut, "Ready")?.message ?? "", /did not finish within its timeout of 30s/);
  });
});
