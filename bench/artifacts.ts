// `npm run bench:artifacts [-- --runs N --large-runs N --sea PATH]`: push and pull podinfo, kube-prometheus and a
// generated 100 MB tree with Ferry (the npm CLI, dist/ferry.mjs, and the single executable, dist/ferry) and with
// the flux CLI against the same local zot, alternating which goes first, and print medians and the ratios to flux.
// A fourth program, bench/floor (node:http, no checks), shows the least a Node.js process takes for the same job:
// for the small cases Ferry cannot beat that, so its ratio to flux is the best Ferry/flux ratio this machine allows.
// The generated tree is where Ferry's parallel gzip should beat both (flux and the floor compress on one core).
import { createCipheriv, createHash } from "node:crypto";
import { existsSync } from "node:fs";
import { mkdir, mkdtemp, rm, writeFile } from "node:fs/promises";
import { loadavg, tmpdir } from "node:os";
import { join } from "node:path";
import { parseArgs } from "node:util";
import { buildSea } from "../cli/sea/build.ts";
import { binary } from "../test/harness/binaries.ts";
import { FERRY_BUNDLE } from "../test/harness/ferry.ts";
import { startRegistry } from "../test/harness/registry.ts";
import { buildTestbed } from "../test/testbed/build.ts";
import { type Measurement, measure, median } from "./measure.ts";

const CORPORA = join(import.meta.dirname, "..", "..", "shared", "corpora");
const REVISION = "main@sha1:0123456789abcdef0123456789abcdef01234567";
const GENERATED_BYTES = 100 * 1024 * 1024;

type Tool = "ferry" | "sea" | "flux" | "floor";
type Operation = "push" | "pull";
const TOOLS: readonly Tool[] = ["ferry", "sea", "flux", "floor"];

const { values } = parseArgs({
  options: {
    runs: { type: "string", default: "7" },
    // Each run of the 100 MB case moves 800 MB through zot; fewer runs keep the benchmark within minutes.
    "large-runs": { type: "string", default: "3" },
    // The single executable to measure; without it dist/ferry is built (npm run sea) if missing.
    sea: { type: "string" },
    only: { type: "string" },
  },
});
const runs = Number(values.runs);
const largeRuns = Number(values["large-runs"]);

await buildTestbed({ only: ["zot", "flux"], quiet: true });
const SEA = values.sea ?? join(import.meta.dirname, "..", "dist", "ferry");
if (!existsSync(SEA)) await buildSea(SEA);
const registry = await startRegistry({ kind: "zot" });
const scratch = await mkdtemp(join(tmpdir(), "ferry-bench-"));
const generated = join(scratch, "generated");
const generatedBytes = await generateTree(generated, GENERATED_BYTES);
const CASES = [
  { name: "podinfo", path: join(CORPORA, "podinfo"), runs, bytes: 0 },
  { name: "kube-prometheus", path: join(CORPORA, "kube-prometheus", "manifests"), runs, bytes: 0 },
  { name: "generated-100mb", path: generated, runs: largeRuns, bytes: generatedBytes },
].filter((testCase) => values.only === undefined || values.only.split(",").includes(testCase.name));
const loadBefore = loadavg()[0] ?? 0;
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
  if (tool === "ferry") return [process.execPath, [FERRY_BUNDLE, ...args]];
  return tool === "sea" ? [SEA, args] : [binary("flux"), args];
}

/**
 * A deterministic tree of about `total` bytes in files of realistic sizes: mostly manifests and configuration of
 * 1-64 KiB (YAML-like text, compressible), some larger text, and some incompressible blobs (already-compressed
 * assets, certificates' bundles), from a fixed seed so every run and every machine pushes the same bytes.
 */
async function generateTree(directory: string, total: number): Promise<number> {
  let seed = 0x5eed;
  const random = () => {
    // mulberry32
    seed = (seed + 0x6d2b79f5) | 0;
    let t = Math.imul(seed ^ (seed >>> 15), seed | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
  const words = ["apiVersion", "kind", "metadata", "name", "namespace", "labels", "app", "spec", "replicas", "template",
    "containers", "image", "ports", "containerPort", "resources", "limits", "requests", "cpu", "memory", "env", "value",
    "volumeMounts", "mountPath", "readinessProbe", "httpGet", "path", "port", "selector", "matchLabels", "annotations"];
  const text = (size: number) => {
    const lines: string[] = [];
    let length = 0;
    while (length < size) {
      const depth = Math.floor(random() * 6);
      const key = words[Math.floor(random() * words.length)] ?? "key";
      const value = random() < 0.3 ? Math.floor(random() * 1e6).toString(36) : (words[Math.floor(random() * words.length)] ?? "");
      const line = `${"  ".repeat(depth)}${key}: ${value}`;
      lines.push(line);
      length += line.length + 1;
    }
    return Buffer.from(lines.join("\n")).subarray(0, size);
  };
  // AES-CTR over zeros with a fixed key: fast, deterministic, incompressible bytes.
  const key = createHash("sha256").update("ferry-bench").digest().subarray(0, 16);
  const noise = createCipheriv("aes-128-ctr", key, Buffer.alloc(16));
  let written = 0;
  for (let index = 0; written < total; index++) {
    // 90% of files: manifests of 1-64 KiB; 7%: 256 KiB-1 MiB; 3%: 1-4 MiB. Of the larger ones, 40% are binary.
    const kind = random();
    const size = Math.min(total - written, kind < 0.9
      ? 1024 + Math.floor(random() * 63 * 1024)
      : kind < 0.97 ? 256 * 1024 + Math.floor(random() * 768 * 1024) : 1024 * 1024 + Math.floor(random() * 3 * 1024 * 1024));
    const binaryFile = kind >= 0.9 && random() < 0.4;
    const folder = join(directory, `d${index % 16}`, `s${Math.floor(index / 16) % 8}`);
    await mkdir(folder, { recursive: true });
    await writeFile(join(folder, `f${index}.${binaryFile ? "bin" : "yaml"}`), binaryFile ? noise.update(Buffer.alloc(size)) : text(size));
    written += size;
  }
  return written;
}

try {
  for (const testCase of CASES) {
    // One unmeasured round each, so all start with warm page caches.
    for (let run = 0; run <= testCase.runs; run++) {
      const order: Tool[] = run % 2 === 0 ? [...TOOLS] : [...TOOLS].reverse();
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
const MIB = 1024 * 1024;
for (const testCase of CASES) {
  for (const operation of ["push", "pull"] as const) {
    const of = (tool: Tool) => results.get(`${testCase.name}|${operation}|${tool}`) ?? [];
    const ms = Object.fromEntries(TOOLS.map((tool) => [tool, median(of(tool).map((m) => m.wallMs))])) as Record<Tool, number>;
    const throughput = (tool: Tool) => (testCase.bytes ? (testCase.bytes / MIB / (ms[tool] / 1000)).toFixed(0) : "");
    const peak = (tool: Tool) => (Math.max(...of(tool).map((m) => m.peakRssKiB)) / 1024).toFixed(0);
    rows.push([
      `${testCase.name} ${operation}`,
      ms.ferry.toFixed(0),
      ms.sea.toFixed(0),
      ms.flux.toFixed(0),
      ms.floor.toFixed(0),
      (ms.ferry / ms.flux).toFixed(2),
      (ms.sea / ms.flux).toFixed(2),
      (ms.floor / ms.flux).toFixed(2),
      throughput("ferry"),
      throughput("sea"),
      throughput("flux"),
      throughput("floor"),
      peak("ferry"),
      peak("sea"),
      peak("flux"),
    ]);
  }
}
const headers = ["case", "npm ms", "sea ms", "flux ms", "floor ms", "npm/flux", "sea/flux", "floor/flux",
  "npm MB/s", "sea MB/s", "flux MB/s", "floor MB/s", "npm MiB", "sea MiB", "flux MiB"];
const widths = headers.map((header, column) => Math.max(header.length, ...rows.map((row) => row[column]?.length ?? 0)));
const line = (cells: readonly string[]) => cells.map((cell, column) => cell.padStart(widths[column] ?? 0)).join("  ");
const runsNote = CASES.map((testCase) => `${testCase.name} ${testCase.runs}`).join(", ");
console.log(`median of runs (${runsNote}), alternating order, one local zot (${registry.host})`);
console.log(`load average ${loadBefore.toFixed(2)} before, ${(loadavg()[0] ?? 0).toFixed(2)} after (${process.env.CI ? "CI" : "shared machine"})`);
console.log("npm: node dist/ferry.mjs; sea: the single executable (dist/ferry); floor: bench/floor, the least a Node.js process does");
console.log(`generated-100mb: ${(generatedBytes / MIB).toFixed(0)} MiB in many files (90% are text of 1-64 KiB; about a third of the bytes incompressible), MB/s is MiB of tree per second;`
  + " MiB columns: peak RSS");
console.log(line(headers));
for (const row of rows) console.log(line(row));
