// Rows 3 and 4 of `npm run bench:controllers`, one OCIRepository and one Kustomization on a fresh bare apiserver and
// a fresh zot: kube-prometheus (first apply, no-change reconcile, one-object change; apiserver requests of each, from
// apiserver_request_total) and push -> applied (from `ferry push` returning to the new revision applied, with a
// requestedAt annotation on the source; p50 and p95 over the pushes).
import { cp, mkdir, mkdtemp, readFile, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import yaml from "js-yaml";
import { type ControlPlane, startControlPlane } from "../../test/harness/control-plane.ts";
import { type Registry, startRegistry } from "../../test/harness/registry.ts";
import { apiserverRequests, applyObjects, type Controllers, ferryBundle, isReady, type Item, requestReconcile, sleep, type Tool, waitForAll } from "./beds.ts";
import { percentile } from "./stats.ts";

const KUBE_PROMETHEUS = join(import.meta.dirname, "..", "..", "..", "shared", "corpora", "kube-prometheus");
const NAMESPACE = "default";

interface Bed {
  readonly cluster: ControlPlane;
  readonly registry: Registry;
  readonly dir: string;
  readonly controllers: Controllers;
  /** Waits until the one Kustomization satisfies `done`; ms since `since`. */
  kustomization(description: string, done: (item: Item) => boolean, since: number): Promise<number>;
}

async function withBed<T>(
  tool: Tool,
  setup: { repository: string; tree: (dir: string) => Promise<string> },
  work: (bed: Bed) => Promise<T>,
): Promise<T> {
  const dir = await mkdtemp(join(tmpdir(), "ferry-bench-controllers-delivery-"));
  const [cluster, registry] = await Promise.all([startControlPlane({ apiserverOnly: true }), startRegistry({ kind: "zot" })]);
  try {
    const tree = await setup.tree(dir);
    await push(registry, setup.repository, tree);
    await tool.installCrds(cluster);
    await applyObjects(cluster, [{
      apiVersion: tool.sourceApiVersion,
      kind: "OCIRepository",
      metadata: { namespace: NAMESPACE, name: "bench" },
      spec: { url: `oci://${registry.host}/${setup.repository}`, ref: { tag: "v1" }, interval: "1h", insecure: true },
    }]);
    const controllers = await tool.start(cluster, join(dir, "controllers"), { kustomize: true });
    try {
      await waitForAll(cluster, tool.sourcePath, 1, "the OCIRepository Ready", isReady, { since: Date.now(), controllers, intervalMs: 200 });
      return await work({
        cluster,
        registry,
        dir,
        controllers,
        kustomization: (description, done, since) =>
          waitForAll(cluster, tool.kustomizationPath, 1, description, done, { since, controllers, intervalMs: 50, timeoutMs: 10 * 60_000 }),
      });
    } finally {
      await controllers.stop();
    }
  } finally {
    await Promise.all([cluster.stop(), registry.stop()]);
    await rm(dir, { recursive: true, force: true });
  }
}

/** `ferry push artifact` (the bundled CLI, as a user runs it); returns the pushed digest. */
async function push(registry: Registry, repository: string, path: string): Promise<string> {
  const pushed = await ferryBundle(["push", "artifact", `oci://${registry.host}/${repository}:v1`, `--path=${path}`, "--source=bench", "--revision=bench", "--insecure-registry"]);
  return pushed.trim();
}

function kustomization(tool: Tool, path: string, timeout: string) {
  return {
    apiVersion: tool.kustomizeApiVersion,
    kind: "Kustomization",
    metadata: { namespace: NAMESPACE, name: "bench" },
    spec: { sourceRef: { kind: "OCIRepository", name: "bench" }, path, interval: "1h", prune: true, wait: false, timeout },
  };
}

const appliedDigest = (digest: string) => (item: Item) => isReady(item) && (item.status?.lastAppliedRevision ?? "").endsWith(digest);

export interface KubePrometheusResult {
  readonly seconds: { first: number; noChange: number; change: number };
  readonly requests: { first: number; noChange: number; change: number };
}

export async function kubePrometheusRun(tool: Tool, log: (line: string) => void): Promise<KubePrometheusResult> {
  let changeTree = "";
  const tree = async (dir: string) => {
    // A copy with one Deployment annotated, for the one-object change (the corpus itself is never edited).
    changeTree = join(dir, "kube-prometheus-changed");
    await cp(KUBE_PROMETHEUS, changeTree, { recursive: true });
    const file = join(changeTree, "manifests", "prometheusOperator-deployment.yaml");
    const deployment = yaml.load(await readFile(file, "utf8")) as { metadata: { annotations?: Record<string, string> } };
    deployment.metadata.annotations = { ...deployment.metadata.annotations, "bench.ferry.dev/change": "1" };
    await writeFile(file, yaml.dump(deployment, { noRefs: true, lineWidth: -1 }));
    return KUBE_PROMETHEUS;
  };
  return withBed(tool, { repository: "bench/kube-prometheus", tree }, async (bed) => {
    const measure = async (description: string, start: () => Promise<(item: Item) => boolean>) => {
      await sleep(1000);
      const before = await apiserverRequests(bed.cluster);
      const started = Date.now();
      const done = await start();
      const ms = await bed.kustomization(description, done, started);
      await sleep(1000);
      // Minus the scrape that took `before`.
      return { seconds: ms / 1000, requests: (await apiserverRequests(bed.cluster)) - before - 1 };
    };
    const first = await measure("kube-prometheus applied", async () => {
      await applyObjects(bed.cluster, [kustomization(tool, "./manifests", "5m")]);
      return (item) => isReady(item) && Boolean(item.status?.lastAppliedRevision);
    });
    const noChange = await measure("a requested no-change reconcile", async () => {
      const requestedAt = await requestReconcile(bed.cluster, tool.kustomizationResource, { namespace: NAMESPACE, name: "bench" });
      return (item) => isReady(item) && item.status?.lastHandledReconcileAt === requestedAt;
    });
    // The pushed change is in place before the clock starts; the source is asked to look.
    const digest = await push(bed.registry, "bench/kube-prometheus", changeTree);
    const change = await measure("the one-object change applied", async () => {
      await requestReconcile(bed.cluster, tool.sourceResource, { namespace: NAMESPACE, name: "bench" });
      return appliedDigest(digest);
    });
    log(`${tool.name} kube-prometheus: first ${first.seconds.toFixed(1)} s (${first.requests} requests), no-change ${noChange.seconds.toFixed(1)} s `
      + `(${noChange.requests}), change ${change.seconds.toFixed(1)} s (${change.requests})`);
    return {
      seconds: { first: first.seconds, noChange: noChange.seconds, change: change.seconds },
      requests: { first: first.requests, noChange: noChange.requests, change: change.requests },
    };
  });
}

export interface PushResult {
  readonly p50Seconds: number;
  readonly p95Seconds: number;
  readonly samples: readonly number[];
}

export async function pushRun(tool: Tool, pushes: number, log: (line: string) => void): Promise<PushResult> {
  let treeDir = "";
  const write = async (version: number) => {
    await writeFile(join(treeDir, "configmap.yaml"), `apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: bench\n  namespace: ${NAMESPACE}\ndata:\n  version: "${version}"\n`);
  };
  const tree = async (dir: string) => {
    treeDir = join(dir, "tree");
    await mkdir(treeDir);
    await writeFile(join(treeDir, "kustomization.yaml"), "resources:\n  - configmap.yaml\n");
    await write(0);
    return treeDir;
  };
  return withBed(tool, { repository: "bench/push", tree }, async (bed) => {
    await applyObjects(bed.cluster, [kustomization(tool, "./", "1m")]);
    await bed.kustomization("the first revision applied", (item) => isReady(item) && Boolean(item.status?.lastAppliedRevision), Date.now());
    const samples: number[] = [];
    for (let index = 1; index <= pushes; index++) {
      await write(index);
      const digest = await push(bed.registry, "bench/push", treeDir);
      const pushed = Date.now();
      await requestReconcile(bed.cluster, tool.sourceResource, { namespace: NAMESPACE, name: "bench" });
      samples.push((await bed.kustomization(`push ${index} applied`, appliedDigest(digest), pushed)) / 1000);
      await sleep(500);
    }
    const result = { p50Seconds: percentile(samples, 50), p95Seconds: percentile(samples, 95), samples };
    log(`${tool.name} push -> applied: ${samples.map((s) => s.toFixed(2)).join(" ")} s; p50 ${result.p50Seconds.toFixed(2)}, p95 ${result.p95Seconds.toFixed(2)}`);
    return result;
  });
}
