// What every fuzz test shares: its budget, its saved corpus, and what it reports.
//
// Budget: in CI each property runs a fixed number of cases, sized so that a file finishes in 20-30 s on two cores.
// By hand, FERRY_FUZZ_SECONDS=N runs each property for N seconds instead, FERRY_FUZZ_SEED=n replays the seed a
// failure printed, and FERRY_FUZZ_HEALTHZ=1 serves the controller's /healthz from the fuzzing process and polls it from
// a worker thread, to see how long a probe waits while hostile input is being processed.
//
// Corpus: every file in test/fuzz/corpus/<target>/ is replayed before the generated cases, on every run, so a case
// that once failed (saved there, minimized) stays fixed.
import { readdirSync, readFileSync } from "node:fs";
import { join } from "node:path";
import type { TestContext } from "node:test";
import { Worker } from "node:worker_threads";
import fc from "fast-check";

const CORPUS = join(import.meta.dirname, "corpus");

export interface Seed {
  readonly name: string;
  readonly bytes: Buffer;
}

export function corpus(target: string): Seed[] {
  const directory = join(CORPUS, target);
  return readdirSync(directory).sort().map((name) => ({ name, bytes: readFileSync(join(directory, name)) }));
}

export function corpusText(target: string): string[] {
  return corpus(target).map((seed) => seed.bytes.toString("utf8"));
}

export interface FuzzOptions<T> {
  /** Cases per CI run. */
  readonly runs: number;
  readonly examples?: readonly T[];
  /**
   * The longest one case may take. An asynchronous case is abandoned (and fails) past it; a synchronous one cannot be
   * interrupted, so it fails afterwards, and the test timeout is the backstop for one that never returns.
   */
  readonly caseTimeoutMs?: number;
}

export interface FuzzReport {
  readonly runs: number;
  readonly seconds: number;
  /** The longest case: for synchronous code, how long the event loop (and so /healthz) was blocked. */
  readonly slowestCaseMs: number;
  readonly peakRssMiB: number;
}

function parameters<T>(options: FuzzOptions<T>): fc.Parameters<[T]> {
  const seconds = Number(process.env.FERRY_FUZZ_SECONDS ?? 0);
  const seed = process.env.FERRY_FUZZ_SEED;
  return {
    examples: (options.examples ?? []).map((example) => [example]),
    ...(seed ? { seed: Number(seed) } : {}),
    ...(seconds > 0
      ? { numRuns: Number.MAX_SAFE_INTEGER, interruptAfterTimeLimit: seconds * 1000, markInterruptAsFailure: false }
      : { numRuns: options.runs }),
  };
}

class CaseTimeout extends Error {}

async function withinTimeout(work: Promise<unknown>, timeoutMs: number): Promise<void> {
  let timer: NodeJS.Timeout | undefined;
  const expired = new Promise<never>((_resolve, reject) => {
    timer = setTimeout(() => reject(new CaseTimeout(`the case did not finish within ${timeoutMs} ms`)), timeoutMs);
  });
  try {
    await Promise.race([work, expired]);
  } finally {
    clearTimeout(timer);
  }
}

/**
 * Checks `check` on generated values (and the examples first), reporting runs, time, the slowest case and the peak RSS
 * of the process as a test diagnostic.
 */
export async function fuzz<T>(
  context: TestContext,
  arbitrary: fc.Arbitrary<T>,
  options: FuzzOptions<T>,
  check: (value: T) => unknown,
): Promise<FuzzReport> {
  const timeoutMs = options.caseTimeoutMs ?? 10_000;
  const healthz = process.env.FERRY_FUZZ_HEALTHZ ? await startHealthzPoller() : undefined;
  let runs = 0;
  let slowestCaseMs = 0;
  const started = performance.now();
  const property = fc.asyncProperty(arbitrary, async (value) => {
    runs++;
    const caseStarted = performance.now();
    await withinTimeout(Promise.resolve().then(() => check(value)), timeoutMs);
    const elapsed = performance.now() - caseStarted;
    slowestCaseMs = Math.max(slowestCaseMs, elapsed);
    if (elapsed > timeoutMs) throw new CaseTimeout(`the case took ${Math.round(elapsed)} ms, more than ${timeoutMs} ms`);
    // The controller returns to its event loop between reconciles; so do the cases, so /healthz gets its turn.
    await new Promise(setImmediate);
  });
  const report = () => ({
    runs,
    seconds: Math.round(performance.now() - started) / 1000,
    slowestCaseMs: Math.round(slowestCaseMs * 10) / 10,
    peakRssMiB: Math.round(process.resourceUsage().maxRSS / 1024),
  });
  try {
    await fc.assert(property, parameters(options));
    return report();
  } finally {
    const { seconds, peakRssMiB } = report();
    const probe = healthz ? `, ${await healthz.stop()}` : "";
    context.diagnostic(`${runs} runs in ${seconds} s, slowest case ${Math.round(slowestCaseMs)} ms, peak RSS ${peakRssMiB} MiB${probe}`);
  }
}

// The poller runs on its own event loop, so that it measures the fuzzing loop's answers rather than waiting with it.
const POLLER = `
const { parentPort, workerData } = require("node:worker_threads");
const http = require("node:http");
const latencies = [];
let stopped = false;
function poll() {
  if (stopped) return;
  const started = performance.now();
  http.get(workerData.url, (response) => {
    response.resume();
    response.on("end", () => {
      latencies.push(performance.now() - started);
      setTimeout(poll, 20);
    });
  }).on("error", () => setTimeout(poll, 20));
}
poll();
parentPort.on("message", () => {
  stopped = true;
  parentPort.postMessage(latencies);
});
`;

/** Serves the real probe server's /healthz here and polls it from a worker; stop() summarises the latencies seen. */
async function startHealthzPoller(): Promise<{ stop: () => Promise<string> }> {
  const { startProbeServer } = await import("../../src/controller/probes.ts");
  const metrics = { render: () => "" } as unknown as Parameters<typeof startProbeServer>[0]["metrics"];
  const { server, address } = await startProbeServer({ host: "127.0.0.1", port: 0, metrics, isReady: () => true });
  const worker = new Worker(POLLER, { eval: true, workerData: { url: `${address}/healthz` } });
  return {
    stop: async () => {
      const latencies = await new Promise<number[]>((resolve) => {
        worker.once("message", resolve);
        worker.postMessage("stop");
      });
      await worker.terminate();
      await server.close();
      latencies.sort((a, b) => a - b);
      const at = (quantile: number) => Math.round(latencies[Math.min(latencies.length - 1, Math.floor(quantile * latencies.length))] ?? 0);
      return `/healthz polled ${latencies.length} times: p50 ${at(0.5)} ms, p99 ${at(0.99)} ms, max ${at(1)} ms`;
    },
  };
}
