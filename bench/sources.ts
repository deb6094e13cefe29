// `npm run bench:sources [-- --count 100,1000]`: N OCIRepositories (one repository each) against one local zot and a
// bare apiserver. Reports the time until all are Ready, registry requests per reconcile when nothing changed
// (counted by a pass-through proxy), and the controller's peak RSS.
import { readFile, mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { parseArgs } from "node:util";
import { type FaultProxy, startFaultProxy } from "../registry-fixtures/fault-proxy.ts";
import { pushArtifact } from "../src/artifact/push.ts";
import { RegistryClient } from "../src/registry/client.ts";
import { startControlPlane } from "../test/harness/control-plane.ts";
import { FERRY_BUNDLE } from "../test/harness/ferry.ts";
import { startProcess, waitUntil } from "../test/harness/processes.ts";
import { startRegistry } from "../test/harness/registry.ts";
import { buildTestbed } from "../test/testbed/build.ts";

const CRDS = join(import.meta.dirname, "..", "crds");
const PODINFO = join(import.meta.dirname, "..", "..", "shared", "corpora", "podinfo", "kustomize");
const { values } = parseArgs({ options: { count: { type: "string", default: "100,1000" }, concurrency: { type: "string", default: "4" } } });

interface ListedItem {
  metadata: { name: string; annotations?: Record<string, string> };
  status?: { conditions?: Array<{ type: string; status: string }>; lastHandledReconcileAt?: string };
}

interface Listed {
  items: ListedItem[];
}

async function run(count: number, proxy: FaultProxy, registryHost: string) {
  const cluster = await startControlPlane({ apiserverOnly: true });
  const dir = await mkdtemp(join(tmpdir(), "ferry-bench-sources-"));
  try {
    await cluster.kubectl(["apply", "--server-side", "-f", CRDS]);
    await cluster.kubectl(["wait", "--for=condition=Established", "crd/ocirepositories.source.ferry.dev", "--timeout=30s"]);
    const client = new RegistryClient({ insecure: true });
    const names = Array.from({ length: count }, (_, index) => `app-${String(index).padStart(4, "0")}`);
    for (let index = 0; index < names.length; index += 16) {
      await Promise.all(
        names.slice(index, index + 16).map((name) =>
          pushArtifact(client, { registry: registryHost, repository: `bench/${name}`, tag: "v1" }, { path: PODINFO, source: "bench", revision: name, reproducible: true }),
        ),
      );
    }
    await client.close();
    const items = names.map((name) => ({
      apiVersion: "source.ferry.dev/v1",
      kind: "OCIRepository",
      metadata: { namespace: "default", name },
      spec: { url: `oci://${proxy.host}/bench/${name}`, ref: { tag: "v1" }, interval: "1h", insecure: true },
    }));
    await cluster.kubectl(["apply", "--server-side", "-f", "-"], { input: JSON.stringify({ apiVersion: "v1", kind: "List", items }) });

    const list = async (): Promise<Listed> => JSON.parse(await cluster.kubectl(["get", "ocirepositories", "-o", "json"]));
    const ready = (listed: Listed) => listed.items.filter((item) => item.status?.conditions?.some((c) => c.type === "Ready" && c.status === "True")).length;

    proxy.requests.length = 0;
    const started = Date.now();
    const controller = startProcess("ferry controller", process.execPath, [
      ...(process.env.BENCH_NODE_OPTIONS ? process.env.BENCH_NODE_OPTIONS.split(" ") : []),
      FERRY_BUNDLE, "controller", `--kubeconfig=${cluster.kubeconfig}`, `--cache-dir=${join(dir, "cache")}`, "--health-addr=127.0.0.1:0",
      "--leader-elect=false", `--concurrency=${values.concurrency}`,
    ], { logFile: join(dir, "controller.log") });
    await waitUntil(`${count} OCIRepositories Ready`, async () => ready(await list()) === count, { timeoutMs: 30 * 60_000, intervalMs: 1000, process: controller });
    const allReadyMs = Date.now() - started;
    const initialRequests = proxy.requests.length;

    // Nothing changed: a requested reconcile of every object should cost one manifest request each.
    proxy.requests.length = 0;
    const requestedAt = new Date().toISOString();
    await cluster.kubectl(["annotate", "--overwrite", "--all", "ocirepositories", `reconcile.ferry.dev/requestedAt=${requestedAt}`]);
    await waitUntil("every object reconciled again", async () => (await list()).items.every((item) => item.status?.lastHandledReconcileAt === requestedAt), {
      timeoutMs: 30 * 60_000,
      intervalMs: 1000,
      process: controller,
    });
    const unchangedRequests = proxy.requests.length;
    const breakdown = new Map<string, number>();
    for (const request of proxy.requests) {
      const kind = `${request.method} ${request.path.replace(/\/v2\/bench\/app-\d+/, "").replace(/sha256:[a-f0-9]+/, "<digest>")}`;
      breakdown.set(kind, (breakdown.get(kind) ?? 0) + 1);
    }
    console.error(`requests when unchanged: ${JSON.stringify(Object.fromEntries(breakdown))}`);
    // `ferry controller` re-runs itself with a heap budget: count the wrapper and the process doing the work.
    const children = (await readFile(`/proc/${controller.pid}/task/${controller.pid}/children`, "utf8").catch(() => "")).trim().split(/\s+/).filter(Boolean);
    let peakRssMiB = 0;
    for (const pid of [String(controller.pid), ...children]) {
      const statusText = await readFile(`/proc/${pid}/status`, "utf8");
      peakRssMiB += Number(/VmHWM:\s+(\d+) kB/.exec(statusText)?.[1] ?? Number.NaN) / 1024;
    }
    await controller.stop();
    return { count, allReadyMs, initialRequests, unchangedRequests, peakRssMiB };
  } finally {
    await cluster.stop();
    await rm(dir, { recursive: true, force: true });
  }
}

await buildTestbed({ only: ["k8s", "etcd", "zot"], quiet: true });
const registry = await startRegistry({ kind: "zot" });
const proxy = await startFaultProxy(registry.host);
try {
  console.log(`ferry controller, concurrency ${values.concurrency}, apiserver + etcd + zot on this machine (2 cores)`);
  console.log("count  all Ready    registry requests  requests/reconcile when unchanged  peak RSS");
  for (const count of (values.count ?? "100").split(",").map(Number)) {
    const result = await run(count, proxy, registry.host);
    console.log(
      `${String(result.count).padStart(5)}  ${(result.allReadyMs / 1000).toFixed(1).padStart(7)} s  ${String(result.initialRequests).padStart(17)}  ${(result.unchangedRequests / result.count).toFixed(2).padStart(33)}  ${result.peakRssMiB.toFixed(0).padStart(5)} MiB`,
    );
  }
} finally {
  await proxy.stop();
  await registry.stop();
}
