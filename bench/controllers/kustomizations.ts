// Row 2 of `npm run bench:controllers`: N podinfo Kustomizations, one per namespace, each with its own OCIRepository
// (own repository), wait: true, on a fresh full control plane (kwok makes the pods Ready) and a fresh zot. Time from
// the controllers' start to all Ready, a requested no-change reconcile of all of them, peak RSS of the controllers.
import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { startControlPlane } from "../../test/harness/control-plane.ts";
import { startRegistry } from "../../test/harness/registry.ts";
import { applyObjects, isReady, peakRssMiB, pushTrees, requestReconcile, sleep, type Tool, waitForAll } from "./beds.ts";
import { PODINFO } from "./sources.ts";

export interface KustomizationsResult {
  readonly readySeconds: number;
  readonly noChangeSeconds: number;
  readonly peakRssMiB: number;
}

export async function kustomizationsRun(tool: Tool, count: number, log: (line: string) => void): Promise<KustomizationsResult> {
  const dir = await mkdtemp(join(tmpdir(), "ferry-bench-controllers-kustomizations-"));
  const [cluster, registry] = await Promise.all([startControlPlane({ timeoutMs: 180_000 }), startRegistry({ kind: "zot" })]);
  try {
    const names = Array.from({ length: count }, (_, index) => `ns-${String(index).padStart(4, "0")}`);
    await pushTrees(registry.host, names.map((name) => `bench/${name}`), PODINFO);
    await tool.installCrds(cluster);
    await applyObjects(cluster, names.map((name) => ({ apiVersion: "v1", kind: "Namespace", metadata: { name } })));
    await applyObjects(cluster, names.flatMap((name) => [
      {
        apiVersion: tool.sourceApiVersion,
        kind: "OCIRepository",
        metadata: { namespace: name, name: "podinfo" },
        spec: { url: `oci://${registry.host}/bench/${name}`, ref: { tag: "v1" }, interval: "1h", insecure: true },
      },
      {
        apiVersion: tool.kustomizeApiVersion,
        kind: "Kustomization",
        metadata: { namespace: name, name: "podinfo" },
        spec: { sourceRef: { kind: "OCIRepository", name: "podinfo" }, path: "./", interval: "1h", prune: true, wait: true, timeout: "5m", targetNamespace: name },
      },
    ]));
    const started = Date.now();
    const controllers = await tool.start(cluster, dir, { kustomize: true });
    try {
      const wait = (description: string, done: Parameters<typeof waitForAll>[4], since: number) =>
        waitForAll(cluster, tool.kustomizationPath, count, description, done, { since, controllers, intervalMs: 1000 });
      const readyMs = await wait(`${count} Kustomizations Ready`, isReady, started);
      await sleep(2000);
      const requested = Date.now();
      const requestedAt = await requestReconcile(cluster, tool.kustomizationResource);
      const noChangeMs = await wait("every Kustomization reconciled again", (item) => item.status?.lastHandledReconcileAt === requestedAt && isReady(item), requested);
      const peak = peakRssMiB(controllers);
      log(`${tool.name} Kustomizations N=${count}: Ready ${(readyMs / 1000).toFixed(1)} s; no-change ${(noChangeMs / 1000).toFixed(1)} s; peak ${peak.toFixed(0)} MiB`);
      return { readySeconds: readyMs / 1000, noChangeSeconds: noChangeMs / 1000, peakRssMiB: peak };
    } finally {
      await controllers.stop();
    }
  } finally {
    await Promise.all([cluster.stop(), registry.stop()]);
    await rm(dir, { recursive: true, force: true });
  }
}
