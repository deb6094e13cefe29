// `npm run bench:artifacts [-- --runs N]`: push and pull podinfo and kube-prometheus with Ferry and with the flux
// CLI against the same local zot, alternating which goes first, and print medians and the Ferry/flux ratio.
// A third program, bench/floor (node:http, no checks), shows the least a Node.js process takes for the same job:
// Ferry cannot beat that, so its ratio to flux is the best Ferry/flux ratio this machine allows.
import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { parseArgs } from "node:util";
import { binary } from "../test/harness/binaries.ts";
import { FERRY_BUNDLE } from "../test/harness/ferry.ts";
import { startRegistry } from "../test/harness/registry.ts";
import { buildTestbed } from "../test/testbed/build.ts";
import { type Measurement, measure, median } from "./measure.ts";

const CORPORA = join(import.meta.dirname, "..", "..", "shared", "corpora");
const CASES = [
  { name: "podinfo", path: join(CORPORA, "podinfo") },
  { name: "kube-prometheus", path: join(CORPORA, "kube-prometheus", "manifests") },
];
const REVISION = "main@sha1:0123456789abcdef0123456789abcdef01234567";

type Tool = "ferry" | "flux" | "floor";
type Operation = "push" | "pull";

const { values } = parseArgs({ options: { runs: { type: "string", default: "7" } } });
const runs = Number(values.runs);

await buildTestbed({ only: ["zot", "flux"], quiet: true });
const registry = await startRegistry({ kind: "zot" });
const scratch = await mkdtemp(join(tmpdir(), "ferry-bench-"));
const results = new Map<string, Measurement[]>();
const record = (key: string, measurement: Measurement) => results.set(key, [...(results.get(key) ?? []), measurement]);

const FLOOR = join(import.meta.dirname, "floor");

function floorCommand(operation: Operation, url: string, path: string): [string, string[]] {
  const [, host = "", rest = ""] = /^oci:\/\/([^/]+)\/(.*)$/.exec(url) ?? [];
  const [repository = "", tag = ""] = rest.split(":");
  return operation === "push"
    ? [process.execPath, [join(FLOOR, "push.cjs"), host, repository, tag, path, "https://bench", REVISION]]
    : [process.execPath, [join(FLOOR, "pull.cjs"), host, repository, tag, path]];
}

function command(tool: Tool, operation: Operation, url: string, path: string): [string, string[]] {
  if (tool === "floor") return floorCommand(operation, url, path);
  const args
    = operation === "push"
      ? ["push", "artifact", url, `--path=${path}`, "--source=https://bench", `--revision=${REVISION}`, "--insecure-registry"]
      : ["pull", "artifact", url, `--output=${path}`, "--insecure-registry"];
  return tool === "ferry" ? [process.execPath, [FERRY_BUNDLE, ...args]] : [binary("flux"), args];
}

try {
  for (const testCase of CASES) {
    // One unmeasured round each, so both start with warm page caches.
    for (let run = 0; run <= runs; run++) {
      const order: Tool[] = run % 2 === 0 ? ["ferry", "flux", "floor"] : ["floor", "flux", "ferry"];
      for (const tool of order) {
        // A fresh repository per run: every push uploads its blobs instead of finding them already there.
        const url = `oci://${registry.host}/bench/${tool}-${run}/${testCase.name}:v1`;
        const push = await measure(...command(tool, "push", url, testCase.path));
        const output = await mkdtemp(join(scratch, `${tool}-`));
        const pull = await measure(...command(tool, "pull", url, output));
        await rm(output, { recursive: true, force: true });
        if (run === 0) continue;
        record(`${testCase.name}|push|${tool}`, push);
        record(`${testCase.name}|pull|${tool}`, pull);
      }
    }
  }
} finally {
  await registry.stop();
  await rm(scratch, { recursive: true, force: true });
}

const rows: string[][] = [];
for (const testCase of CASES) {
  for (const operation of ["push", "pull"] as const) {
    const ferry = results.get(`${testCase.name}|${operation}|ferry`) ?? [];
    const flux = results.get(`${testCase.name}|${operation}|flux`) ?? [];
    const floor = results.get(`${testCase.name}|${operation}|floor`) ?? [];
    const ferryMs = median(ferry.map((m) => m.wallMs));
    const fluxMs = median(flux.map((m) => m.wallMs));
    const floorMs = median(floor.map((m) => m.wallMs));
    rows.push([
      `${testCase.name} ${operation}`,
      ferryMs.toFixed(0),
      fluxMs.toFixed(0),
      (ferryMs / fluxMs).toFixed(2),
      floorMs.toFixed(0),
      (floorMs / fluxMs).toFixed(2),
      (Math.max(...ferry.map((m) => m.peakRssKiB)) / 1024).toFixed(0),
      (Math.max(...flux.map((m) => m.peakRssKiB)) / 1024).toFixed(0),
    ]);
  }
}
const headers = ["case", "ferry ms", "flux ms", "ferry/flux", "node floor ms", "floor/flux", "ferry peak MiB", "flux peak MiB"];
const widths = headers.map((header, column) => Math.max(header.length, ...rows.map((row) => row[column]?.length ?? 0)));
const line = (cells: readonly string[]) => cells.map((cell, column) => cell.padStart(widths[column] ?? 0)).join("  ");
console.log(`median of ${runs} runs each, alternating order, one local zot (${registry.host})`);
console.log("node floor: bench/floor, the least a Node.js process does for the same push or pull (no checks)");
console.log(line(headers));
for (const row of rows) console.log(line(row));
