// `npm run bench:controllers [-- --count 100,1000 --runs 3 --idle-minutes 2 --rows sources,kustomizations,kube-prometheus,push]`:
// Ferry's controller against Flux's real controllers (test-bed peers run out of cluster), each on a fresh apiserver
// and registry per tool and run, alternating which tool goes first, medians of the runs. Prints one table: row,
// Ferry, Flux, ratio (Ferry/Flux) and the issue's goals. Progress and per-run detail go to stderr.
import { rm, writeFile } from "node:fs/promises";
import { cpus, loadavg } from "node:os";
import { parseArgs } from "node:util";
import { buildTestbed } from "../test/testbed/build.ts";
import { PEERS } from "../test/testbed/peers.ts";
import { fluxTool, loadKustomizeController, pinBundle, type Tool, TOOLS, type ToolName } from "./controllers/beds.ts";
import { kubePrometheusRun, pushRun } from "./controllers/delivery.ts";
import { kustomizationsRun } from "./controllers/kustomizations.ts";
import { sourcesRun } from "./controllers/sources.ts";
import { formatTable, type Goal, type Row } from "./controllers/stats.ts";

const ROWS = ["sources", "kustomizations", "kube-prometheus", "push"] as const;
type RowName = (typeof ROWS)[number];

const { values } = parseArgs({
  options: {
    count: { type: "string", default: "100,1000" },
    "kustomization-count": { type: "string" },
    runs: { type: "string", default: "3" },
    "idle-minutes": { type: "string", default: "2" },
    pushes: { type: "string", default: "20" },
    rows: { type: "string", default: ROWS.join(",") },
    /** Ferry,Flux by default; one of them to check a row's setup quickly. */
    tools: { type: "string", default: "Ferry,Flux" },
    /** Also write every sample, by row and tool, to this file. */
    json: { type: "string" },
  },
});
const counts = (values.count ?? "").split(",").map(Number);
const kustomizationCounts = (values["kustomization-count"] ?? values.count ?? "").split(",").map(Number);
const runs = Number(values.runs);
const idleMinutes = Number(values["idle-minutes"]);
const pushes = Number(values.pushes);
const rows = (values.rows ?? "").split(",") as RowName[];
for (const row of rows) if (!ROWS.includes(row)) throw new Error(`unknown row ${row}; rows: ${ROWS.join(", ")}`);

const log = (line: string) => console.error(`[${new Date().toISOString().slice(11, 19)}] ${line}`);
const load = () => loadavg().map((value) => value.toFixed(1)).join(" ");

/** samples[label][tool] */
const samples = new Map<string, Map<ToolName, number[]>>();
const meta = new Map<string, { digits?: number; goal?: Goal; fluxMissing?: string }>();
function record(label: string, tool: ToolName, value: number, options: { digits?: number; goal?: Goal } = {}) {
  if (!samples.has(label)) samples.set(label, new Map());
  const byTool = samples.get(label) as Map<ToolName, number[]>;
  byTool.set(tool, [...(byTool.get(tool) ?? []), value]);
  meta.set(label, { ...meta.get(label), ...options });
}
function missing(label: string, tool: ToolName, reason: string, options: { digits?: number; goal?: Goal } = {}) {
  if (!samples.has(label)) samples.set(label, new Map());
  meta.set(label, { ...meta.get(label), ...options, ...(tool === "Flux" ? { fluxMissing: reason } : {}) });
}

const failures: string[] = [];
const HALF: Goal = { kind: "ratio-at-most", value: 0.5 };

/** Runs `measure` once per tool per run, alternating which tool goes first. */
async function alternate(what: string, measure: (tool: Tool, run: number) => Promise<void>) {
  for (let run = 0; run < runs; run++) {
    const order = run % 2 === 0 ? TOOLS : [...TOOLS].reverse();
    for (const tool of order.filter((one) => (values.tools ?? "").split(",").includes(one.name))) {
      log(`${what}: run ${run + 1}/${runs}, ${tool.name} (load ${load()})`);
      try {
        await measure(tool, run);
      } catch (error) {
        // One failed run costs its samples, not the table of everything measured so far.
        failures.push(`${what}, run ${run + 1}, ${tool.name}: ${(error as Error).message.split("\n")[0]}`);
        log(`FAILED ${failures.at(-1)}\n${(error as Error).message}`);
      }
    }
  }
}

async function sourcesRows() {
  for (const count of counts) {
    const labels = {
      ready: `${count} OCIRepositories: all Ready (s)`,
      requests: `${count} OCIRepositories: registry requests per unchanged reconcile`,
      rss: `${count} OCIRepositories: peak RSS of controllers (MiB)`,
      idle: `${count} OCIRepositories at 1m: idle CPU s over ${idleMinutes} min`,
    };
    await alternate(`sources N=${count}`, async (tool) => {
      const result = await sourcesRun(tool, count, { idleMinutes, log });
      record(labels.ready, tool.name, result.readySeconds, { goal: HALF });
      record(labels.requests, tool.name, result.requestsPerUnchangedReconcile, { digits: 2, goal: { kind: "ferry-exactly", value: 1 } });
      record(labels.rss, tool.name, result.peakRssMiB, { digits: 0, goal: HALF });
      if (result.idle) record(labels.idle, tool.name, result.idle.cpuSeconds, { digits: 2, goal: HALF });
    });
  }
}

/** Runs `measure` per run for Ferry and, when its kustomize-controller peer exists, for Flux. */
async function alternateKustomize(
  what: string,
  labels: Record<string, { label: string; digits?: number; goal?: Goal }>,
  measure: (tool: Tool) => Promise<Record<string, number>>,
) {
  const fluxMissing = fluxTool.kustomizeMissing();
  await alternate(what, async (tool) => {
    if (tool.name === "Flux" && fluxMissing) {
      for (const { label, ...options } of Object.values(labels)) missing(label, "Flux", fluxMissing, options);
      return;
    }
    const result = await measure(tool);
    for (const [key, { label, ...options }] of Object.entries(labels)) {
      const value = result[key];
      if (value !== undefined) record(label, tool.name, value, options);
    }
  });
}

async function kustomizationRows() {
  for (const count of kustomizationCounts) {
    await alternateKustomize(`Kustomizations N=${count}`, {
      ready: { label: `${count} podinfo Kustomizations (wait): all Ready (s)`, goal: HALF },
      noChange: { label: `${count} podinfo Kustomizations: requested no-change reconcile (s)`, goal: HALF },
      rss: { label: `${count} podinfo Kustomizations: peak RSS of controllers (MiB)`, digits: 0, goal: HALF },
    }, async (tool) => {
      const result = await kustomizationsRun(tool, count, log);
      return { ready: result.readySeconds, noChange: result.noChangeSeconds, rss: result.peakRssMiB };
    });
  }
}

async function kubePrometheusRows() {
  const label = (what: string) => `kube-prometheus: ${what}`;
  await alternateKustomize("kube-prometheus", {
    first: { label: label("first apply (s)"), goal: HALF },
    noChange: { label: label("no-change reconcile (s)"), goal: HALF },
    change: { label: label("one-object change (s)"), goal: HALF },
    firstRequests: { label: label("apiserver requests, first apply"), digits: 0 },
    noChangeRequests: { label: label("apiserver requests, no-change reconcile"), digits: 0 },
    changeRequests: { label: label("apiserver requests, one-object change"), digits: 0 },
  }, async (tool) => {
    const { seconds, requests } = await kubePrometheusRun(tool, log);
    return {
      first: seconds.first,
      noChange: seconds.noChange,
      change: seconds.change,
      firstRequests: requests.first,
      noChangeRequests: requests.noChange,
      changeRequests: requests.change,
    };
  });
}

async function pushRows() {
  await alternateKustomize(`push -> applied (${pushes} pushes)`, {
    p50: { label: `push -> applied, p50 of ${pushes} (s)`, digits: 2, goal: { kind: "ferry-below", value: 2 } },
    p95: { label: `push -> applied, p95 of ${pushes} (s)`, digits: 2 },
  }, async (tool) => {
    const result = await pushRun(tool, pushes, log);
    return { p50: result.p50Seconds, p95: result.p95Seconds };
  });
}

async function main() {
  const kustomizeController = PEERS.find((peer) => peer.module === "kustomize-controller");
  await buildTestbed({
    only: ["k8s", "etcd", "kwok", "zot", "kustomize", "source-controller", "flux-crds", ...(kustomizeController ? ["kustomize-controller"] : [])],
    quiet: true,
  });
  const pinned = await pinBundle();
  await loadKustomizeController();
  const fluxKustomize = fluxTool.kustomizeMissing();
  console.log(`bench:controllers: ${process.argv.slice(2).join(" ") || "(defaults)"}; ${runs} run(s) per tool, alternating which goes first; `
    + `${cpus().length} cores; load average before: ${load()}`);
  console.log(`Flux: source-controller v1.9.5 (test-bed peer)${fluxKustomize ? `; kustomize-controller: ${fluxKustomize}` : " + kustomize-controller (test-bed peer)"}`);
  try {
    if (rows.includes("sources")) await sourcesRows();
    if (rows.includes("kustomizations")) await kustomizationRows();
    if (rows.includes("kube-prometheus")) await kubePrometheusRows();
    if (rows.includes("push")) await pushRows();
  } finally {
    await rm(pinned, { recursive: true, force: true });
  }
  console.log(`load average after: ${load()}`);
  for (const failure of failures) console.log(`failed run (left out of the medians): ${failure}`);
  if (values.json) {
    const all = Object.fromEntries([...samples].map(([label, byTool]) => [label, Object.fromEntries(byTool)]));
    await writeFile(values.json, JSON.stringify(all, null, 2));
  }
  const table: Row[] = [...samples].map(([label, byTool]) => {
    const info = meta.get(label) ?? {};
    return {
      label,
      ferry: byTool.get("Ferry") ?? [],
      ...(info.fluxMissing ? { fluxMissing: info.fluxMissing } : { flux: byTool.get("Flux") ?? [] }),
      ...(info.digits === undefined ? {} : { digits: info.digits }),
      ...(info.goal ? { goal: info.goal } : {}),
    };
  });
  console.log(formatTable(table));
}

await main();
