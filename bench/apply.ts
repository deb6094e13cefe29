// `npm run bench:apply`: kube-prometheus applied by Ferry's Applier (in-process, only the apply call timed) and by
// `kubectl apply --server-side`, each on its own bare apiserver + etcd: a first apply on a fresh control plane, a
// no-change reconcile and a one-object change. Prints medians, the Ferry/kubectl ratio and the targets. Then (unless
// BENCH_SKIP_CONTROLLER=1) 100 podinfo Kustomizations run by the ferry controller: time to Ready and peak RSS.
// Env: BENCH_RUNS (3), BENCH_RECONCILES (5 per run), BENCH_CHANGES (3 per run), BENCH_CONCURRENCY (the Applier's
// default unless set), BENCH_KUSTOMIZATIONS (100), BENCH_CONTROLLER_CONCURRENCY (4), BENCH_SKIP_APPLY=1.
import { execFile } from "node:child_process";
import { mkdtemp, rm, writeFile } from "node:fs/promises";
import { cpus, loadavg, tmpdir } from "node:os";
import { join } from "node:path";
import yaml from "js-yaml";
import { Applier, type Change } from "../src/apply/apply.ts";
import { type ManifestObject, buildManifests } from "../src/kustomize/build.ts";
import { KubeClient } from "../src/kube/client.ts";
import { binary } from "../test/harness/binaries.ts";
import { type ControlPlane, startControlPlane } from "../test/harness/control-plane.ts";
import { buildTestbed } from "../test/testbed/build.ts";
import { runControllerBench } from "./apply-controller.ts";
import { median } from "./measure.ts";

const CORPUS = join(import.meta.dirname, "..", "..", "shared", "corpora", "kube-prometheus");
const RUNS = Number(process.env.BENCH_RUNS ?? "3");
const RECONCILES = Number(process.env.BENCH_RECONCILES ?? "5");
const CHANGES = Number(process.env.BENCH_CHANGES ?? "3");
const CONCURRENCY = process.env.BENCH_CONCURRENCY ? Number(process.env.BENCH_CONCURRENCY) : undefined;
const KUSTOMIZATIONS = Number(process.env.BENCH_KUSTOMIZATIONS ?? "100");
const CHANGE_ANNOTATION = "bench.ferry.dev/change";

type Tool = "ferry" | "kubectl";
type Scenario = "first apply" | "no-change reconcile" | "one-object change";
const SCENARIOS: readonly Scenario[] = ["first apply", "no-change reconcile", "one-object change"];

interface Timed {
  readonly ms: number;
  /** What the tool reported doing, to check that both did the same work. */
  readonly outcome: string;
}

interface Driver {
  first(objects: readonly ManifestObject[]): Promise<Timed>;
  again(objects: readonly ManifestObject[]): Promise<Timed>;
}

async function timed(work: () => Promise<string>): Promise<Timed> {
  const started = process.hrtime.bigint();
  const outcome = await work();
  return { ms: Number(process.hrtime.bigint() - started) / 1e6, outcome };
}

const times = new Map<string, number[]>();
const requests = new Map<string, Array<Map<string, number>>>();
const outcomes = new Map<string, Set<string>>();

function record(scenario: Scenario, tool: Tool, ms: number, counts: Map<string, number>, outcome: string) {
  const key = `${scenario}|${tool}`;
  times.set(key, [...(times.get(key) ?? []), ms]);
  requests.set(key, [...(requests.get(key) ?? []), counts]);
  outcomes.set(key, (outcomes.get(key) ?? new Set()).add(outcome));
}

function tally(changes: readonly Change[]): string {
  const counts = new Map<string, number>();
  for (const change of changes) counts.set(change.action, (counts.get(change.action) ?? 0) + 1);
  return [...counts].map(([action, count]) => `${count} ${action}`).join(", ");
}

function ferryDriver(cluster: ControlPlane): Driver {
  // One Applier per plane, as the controller caches one per target cluster: later applies reuse its discovery.
  const applier = new Applier(KubeClient.fromFile(cluster.kubeconfig));
  const options = { timeoutMs: 120_000, ...(CONCURRENCY ? { concurrency: CONCURRENCY } : {}) };
  const apply = (objects: readonly ManifestObject[]) => timed(async () => tally((await applier.apply(objects, options)).changes));
  return { first: apply, again: apply };
}

function kubectlDriver(cluster: ControlPlane, dir: string): Driver {
  const run = (args: readonly string[]) =>
    new Promise<string>((resolve, reject) => {
      // A cache directory per plane: the first apply starts with cold discovery, as on a new cluster.
      const allArgs = [`--kubeconfig=${cluster.kubeconfig}`, `--cache-dir=${join(dir, "kube-cache")}`, ...args];
      execFile(binary("kubectl"), allArgs, { maxBuffer: 64 * 1024 * 1024 }, (error, stdout, stderr) => {
        if (error) reject(new Error(`kubectl ${args.join(" ")} failed: ${stderr}`));
        else resolve(stdout);
      });
    });
  const apply = (file: string) => run(["apply", "--server-side", "--force-conflicts", `--filename=${file}`]);
  const applied = (output: string) => `${output.split("\n").filter((line) => line.endsWith(" serverside-applied")).length} serverside-applied`;
  let written = 0;
  const file = async (objects: readonly ManifestObject[]) => {
    const path = join(dir, `objects-${written++}.yaml`);
    await writeFile(path, objects.map((object) => yaml.dump(object, { noRefs: true, lineWidth: -1 })).join("---\n"));
    return path;
  };
  return {
    // What the kube-prometheus README asks of a kubectl user: CRDs and the namespace, wait until they are served, the rest.
    async first(objects) {
      const setup = objects.filter((object) => object.kind === "CustomResourceDefinition" || object.kind === "Namespace");
      const crds = setup.filter((object) => object.kind === "CustomResourceDefinition").map((crd) => `crd/${crd.metadata.name}`);
      const [setupFile, restFile] = [await file(setup), await file(objects.filter((object) => !setup.includes(object)))];
      // Writing the input files is preparation, not apply time.
      return timed(async () => {
        const outputs = [await apply(setupFile)];
        await run(["wait", "--for=condition=Established", "--timeout=120s", ...crds]);
        outputs.push(await apply(restFile));
        return applied(outputs.join("\n"));
      });
    },
    // Once the CRDs are served, one apply of everything is enough; the cheapest correct kubectl procedure.
    async again(objects) {
      const all = await file(objects);
      return timed(async () => applied(await apply(all)));
    },
  };
}

/**
 * apiserver_request_total by verb (dry-run applies apart), to see how many requests each tool needs; a few PUTs and
 * POSTs are the apiserver's own (CRD and namespace controllers).
 */
async function requestCounts(cluster: ControlPlane): Promise<Map<string, number>> {
  const counts = new Map<string, number>();
  for (const line of (await cluster.kubectl(["get", "--raw", "/metrics"])).split("\n")) {
    if (!line.startsWith("apiserver_request_total{")) continue;
    const verb = /verb="([A-Z]+)"/.exec(line)?.[1] ?? "?";
    const dryRun = /dry_run="All"/.test(line) ? " dry-run" : "";
    const key = `${verb}${dryRun}`;
    counts.set(key, (counts.get(key) ?? 0) + Number(line.split(" ").at(-1)));
  }
  return counts;
}

function difference(after: Map<string, number>, before: Map<string, number>): Map<string, number> {
  const result = new Map<string, number>();
  for (const [key, value] of after) {
    const delta = value - (before.get(key) ?? 0);
    if (delta > 0) result.set(key, delta);
  }
  // The scrape that took `after` counts itself.
  const gets = (result.get("GET") ?? 1) - 1;
  if (gets > 0) result.set("GET", gets);
  else result.delete("GET");
  return result;
}

/** The same set with an annotation on the first Deployment: one object changes, nothing the Deployment rolls out. */
function withChange(objects: readonly ManifestObject[], value: string): ManifestObject[] {
  const index = objects.findIndex((object) => object.kind === "Deployment");
  return objects.map((object, at) => {
    const copy = structuredClone(object);
    if (at === index) copy.metadata.annotations = { ...copy.metadata.annotations, [CHANGE_ANNOTATION]: value };
    return copy;
  });
}

interface Bed {
  readonly tool: Tool;
  readonly cluster: ControlPlane;
  readonly dir: string;
  readonly driver: Driver;
}

async function bed(tool: Tool): Promise<Bed> {
  const cluster = await startControlPlane({ apiserverOnly: true });
  const dir = await mkdtemp(join(tmpdir(), "ferry-bench-apply-"));
  return { tool, cluster, dir, driver: tool === "ferry" ? ferryDriver(cluster) : kubectlDriver(cluster, dir) };
}

/**
 * One run: a fresh plane per tool (SSA field managers would otherwise fight), both up at once so that every Ferry
 * measurement has a kubectl one taken moments apart: on a shared machine the load drifts more than the tools differ.
 */
async function pairedRun(manifests: readonly ManifestObject[], run: number) {
  const recorded = run > 0;
  const order: Tool[] = run % 2 === 0 ? ["ferry", "kubectl"] : ["kubectl", "ferry"];
  const beds = await Promise.all(order.map(bed));
  try {
    const step = async ({ tool, cluster, driver }: Bed, scenario: Scenario, objects: readonly ManifestObject[], first = false) => {
      const set = structuredClone(objects);
      const before = await requestCounts(cluster);
      const { ms, outcome } = await (first ? driver.first(set) : driver.again(set));
      const counts = difference(await requestCounts(cluster), before);
      if (recorded) record(scenario, tool, ms, counts, outcome);
      console.error(`  run ${run}${recorded ? "" : " (warm-up)"} ${tool} ${scenario}: ${ms.toFixed(0)} ms, ${outcome}`);
    };
    for (const one of beds) await step(one, "first apply", manifests, true);
    const ferryBed = beds.find((one) => one.tool === "ferry") as Bed;
    await checkFidelity(ferryBed.cluster, ferryBed.dir, manifests);
    for (let index = 0; index < (recorded ? RECONCILES : 1); index++) {
      for (const one of index % 2 === 0 ? beds : [...beds].reverse()) await step(one, "no-change reconcile", manifests);
    }
    for (let index = 0; index < (recorded ? CHANGES : 1); index++) {
      const changed = withChange(manifests, `${run}-${index}`);
      for (const one of index % 2 === 0 ? beds : [...beds].reverse()) await step(one, "one-object change", changed);
    }
  } finally {
    for (const one of beds) {
      await one.cluster.stop();
      await rm(one.dir, { recursive: true, force: true });
    }
  }
}

/**
 * What Ferry applied must be what kubectl would, or the timings compare different work (client-node's typed models once
 * dropped x-kubernetes-* and NetworkPolicy `from`): `kubectl diff --server-side` of the manifests finds nothing to change.
 */
async function checkFidelity(cluster: ControlPlane, dir: string, manifests: readonly ManifestObject[]) {
  const file = join(dir, "fidelity.yaml");
  await writeFile(file, manifests.map((object) => yaml.dump(object, { noRefs: true, lineWidth: -1 })).join("---\n"));
  const args = [`--kubeconfig=${cluster.kubeconfig}`, "diff", "--server-side", "--force-conflicts", `--filename=${file}`];
  await new Promise<void>((resolve, reject) => {
    execFile(binary("kubectl"), args, { maxBuffer: 64 * 1024 * 1024 }, (error, stdout, stderr) => {
      if (!error) return resolve();
      const changed = [...stdout.matchAll(/^diff -u -N \S+\/LIVE-\d+\/(\S+) /gm)].map((match) => match[1]);
      reject(new Error(`kubectl diff after Ferry's apply: ${changed.length} objects differ (${changed.slice(0, 5).join(", ")}) ${stderr}\n`
        + stdout.slice(0, 3000)));
    });
  });
}

function medianRequests(samples: ReadonlyArray<Map<string, number>>): { total: number; detail: string } {
  const keys = [...new Set(samples.flatMap((sample) => [...sample.keys()]))].sort();
  const detail = keys.map((key) => `${key} ${median(samples.map((sample) => sample.get(key) ?? 0))}`).join(", ");
  return { total: median(samples.map((sample) => [...sample.values()].reduce((sum, value) => sum + value, 0))), detail };
}

function table(rows: readonly string[][]): string {
  const widths = rows[0]?.map((_, column) => Math.max(...rows.map((row) => row[column]?.length ?? 0))) ?? [];
  return rows.map((row) => row.map((cell, column) => (column === 0 ? cell.padEnd(widths[column] ?? 0) : cell.padStart(widths[column] ?? 0))).join("  "))
    .join("\n");
}

async function applyBench() {
  process.env.FERRY_KUSTOMIZE = binary("kustomize");
  // No kustomization.yaml in the corpus: the generated one takes manifests/ and manifests/setup/, as Flux would.
  const objects = await buildManifests(CORPUS, "manifests");
  const kinds = (kind: string) => objects.filter((object) => object.kind === kind).length;
  console.log(
    `kube-prometheus: ${objects.length} objects (${kinds("CustomResourceDefinition")} CRDs, ${kinds("Namespace")} Namespace); `
    + `Ferry Applier concurrency ${CONCURRENCY ?? "default (8)"}; bare kube-apiserver + etcd per tool and run, ${cpus().length} cores`,
  );
  console.log(`${RUNS} runs (+1 warm-up), alternating which tool goes first, each step paired; per run ${RECONCILES} no-change reconciles and ${CHANGES} changes`);
  const load = () => loadavg().map((value) => value.toFixed(1)).join(" ");
  console.log(`load average before: ${load()}`);
  for (let run = 0; run <= RUNS; run++) await pairedRun(objects, run);
  console.log(`load average after: ${load()}`);

  const rows = [["scenario", "ferry ms", "kubectl ms", "ferry/kubectl", "apiserver requests ferry", "kubectl", "target"]];
  const details: string[] = [];
  for (const scenario of SCENARIOS) {
    const ferryMs = median(times.get(`${scenario}|ferry`) ?? []);
    const kubectlMs = median(times.get(`${scenario}|kubectl`) ?? []);
    const ratio = ferryMs / kubectlMs;
    const [ferryRequests, kubectlRequests] = (["ferry", "kubectl"] as const).map((tool) => medianRequests(requests.get(`${scenario}|${tool}`) ?? []));
    let target = "-";
    if (scenario === "first apply") target = `ratio <= 1.00: ${ratio <= 1 ? "met" : "MISSED"}`;
    if (scenario === "no-change reconcile") target = `ferry < 2000 ms: ${ferryMs < 2000 ? "met" : "MISSED"}`;
    const totals = [String(ferryRequests?.total), String(kubectlRequests?.total)];
    rows.push([scenario, ferryMs.toFixed(0), kubectlMs.toFixed(0), ratio.toFixed(2), ...totals, target]);
    for (const tool of ["ferry", "kubectl"] as const) {
      const samples = times.get(`${scenario}|${tool}`) ?? [];
      const shown = tool === "ferry" ? ferryRequests : kubectlRequests;
      details.push(
        `${scenario}, ${tool}: ${samples.map((ms) => ms.toFixed(0)).join(" ")} ms; requests ${shown?.detail}; `
        + `${[...(outcomes.get(`${scenario}|${tool}`) ?? [])].join(" | ")}`,
      );
    }
  }
  console.log(table(rows));
  console.log(details.join("\n"));
}

await buildTestbed({ only: ["k8s", "etcd", "kwok", "zot", "kustomize"], quiet: true });
if (process.env.BENCH_SKIP_APPLY !== "1") await applyBench();
if (process.env.BENCH_SKIP_CONTROLLER !== "1") await runControllerBench(KUSTOMIZATIONS);
