// Row 1 and row 5 of `npm run bench:controllers`: N OCIRepositories (one repository each) on a fresh bare apiserver
// and a fresh zot behind a counting proxy. Time from the controllers' start to all Ready, registry requests per
// requested reconcile when nothing changed, peak RSS; then (idle row) every interval set to 1m and the controllers'
// CPU seconds over an idle window.
import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { startFaultProxy } from "../../registry-fixtures/fault-proxy.ts";
import { startControlPlane } from "../../test/harness/control-plane.ts";
import { startRegistry } from "../../test/harness/registry.ts";
import { applyObjects, cpuSeconds, isReady, peakRssMiB, pushTrees, requestReconcile, sleep, type Tool, waitForAll } from "./beds.ts";

export const PODINFO = join(import.meta.dirname, "..", "..", "..", "shared", "corpora", "podinfo", "kustomize");

export interface SourcesResult {
  readonly readySeconds: number;
  readonly requestsPerUnchangedReconcile: number;
  readonly requestKinds: string;
  readonly peakRssMiB: number;
  /** Present when an idle window was measured. */
  readonly idle?: { readonly cpuSeconds: number; readonly registryRequestsPerObject: number };
}

export async function sourcesRun(
  tool: Tool,
  count: number,
  options: { idleMinutes: number; log: (line: string) => void },
): Promise<SourcesResult> {
  const dir = await mkdtemp(join(tmpdir(), "ferry-bench-controllers-sources-"));
  const [cluster, registry] = await Promise.all([startControlPlane({ apiserverOnly: true }), startRegistry({ kind: "zot" })]);
  const proxy = await startFaultProxy(registry.host);
  try {
    const names = Array.from({ length: count }, (_, index) => `app-${String(index).padStart(4, "0")}`);
    await pushTrees(registry.host, names.map((name) => `bench/${name}`), PODINFO);
    await tool.installCrds(cluster);
    const sources = (interval: string) => names.map((name) => ({
      apiVersion: tool.sourceApiVersion,
      kind: "OCIRepository",
      metadata: { namespace: "default", name },
      spec: { url: `oci://${proxy.host}/bench/${name}`, ref: { tag: "v1" }, interval, insecure: true },
    }));
    await applyObjects(cluster, sources("1h"));

    proxy.requests.length = 0;
    const started = Date.now();
    const controllers = await tool.start(cluster, dir, { kustomize: false });
    try {
      const wait = (description: string, done: Parameters<typeof waitForAll>[4], since: number) =>
        waitForAll(cluster, tool.sourcePath, count, description, done, { since, controllers });
      const readyMs = await wait(`${count} OCIRepositories Ready`, isReady, started);

      // Nothing changed: a requested reconcile of every object.
      await sleep(2000);
      proxy.requests.length = 0;
      const requestedAt = await requestReconcile(cluster, tool.sourceResource);
      await wait("every OCIRepository reconciled again", (item) => item.status?.lastHandledReconcileAt === requestedAt, Date.now());
      await sleep(1000);
      const unchanged = proxy.requests.length;
      const kinds = new Map<string, number>();
      for (const request of proxy.requests) {
        const kind = `${request.method} ${request.path.replace(/\/v2\/bench\/app-\d+/, "").replace(/sha256:[a-f0-9]+/, "<digest>")}`;
        kinds.set(kind, (kinds.get(kind) ?? 0) + 1);
      }
      const peak = peakRssMiB(controllers);

      let idle: SourcesResult["idle"];
      if (options.idleMinutes > 0) {
        // Every object at interval 1m (one more reconcile each, as the spec changed), then nothing but the interval.
        await applyObjects(cluster, sources("1m"));
        await wait("interval 1m observed", (item) => item.status?.observedGeneration === item.metadata.generation && isReady(item), Date.now());
        await sleep(5000);
        proxy.requests.length = 0;
        const before = cpuSeconds(controllers);
        await sleep(options.idleMinutes * 60_000);
        idle = { cpuSeconds: cpuSeconds(controllers) - before, registryRequestsPerObject: proxy.requests.length / count };
      }
      options.log(`${tool.name} sources N=${count}: Ready ${(readyMs / 1000).toFixed(1)} s; unchanged ${JSON.stringify(Object.fromEntries(kinds))}; `
        + `peak ${peak.toFixed(0)} MiB${idle ? `; idle ${idle.cpuSeconds.toFixed(2)} CPU s, ${idle.registryRequestsPerObject.toFixed(2)} registry requests/object` : ""}`);
      return {
        readySeconds: readyMs / 1000,
        requestsPerUnchangedReconcile: unchanged / count,
        requestKinds: JSON.stringify(Object.fromEntries(kinds)),
        peakRssMiB: peak,
        ...(idle ? { idle } : {}),
      };
    } finally {
      await controllers.stop();
    }
  } finally {
    await proxy.stop();
    await Promise.all([cluster.stop(), registry.stop()]);
    await rm(dir, { recursive: true, force: true });
  }
}
