// Reading kustomize's output into objects. Parsing up to 64 MiB of YAML takes seconds of CPU (js-yaml: ~1.4 s for
// 63 MB on the test machine), and a tenant controls what it parses and substitutes; on the controller's one event
// loop that would stall /healthz, lease renewal and every other tenant. So it runs in a worker thread with a heap
// limit and a wall clock, and only the JSON of the result (JSON.parse: ~0.2 s for the same output) comes back.
import { existsSync } from "node:fs";
import { Worker } from "node:worker_threads";
import { type Disposition, FerryError } from "../errors.ts";
import type { ManifestObject } from "./build.ts";
import type { OutputJob, OutputResult } from "./output-worker.ts";

/** The worker's old-generation heap: kustomize output is at most 64 MiB, and its objects a few times that. */
export const OUTPUT_WORKER_HEAP_MB = 512;
/** Parsing and substituting the largest output takes about 2 s; anything much slower is an attack or a bug. */
export const OUTPUT_WORKER_TIMEOUT_MS = 20_000;

/**
 * A worker's default young generation is small: parsing 63 MB of YAML then spends most of its time in scavenges
 * (10.1 s with the default, 6.2 s with 64 MiB, on the test machine).
 */
const WORKER_LIMITS = { maxOldGenerationSizeMb: OUTPUT_WORKER_HEAP_MB, maxYoungGenerationSizeMb: 64 };

/** The output could not be read within the worker's bounds. */
export class OutputLimitError extends FerryError {
  readonly code = "KUSTOMIZE_OUTPUT_LIMIT";
  readonly disposition: Disposition = "stall";
}

/** Rebuilds a worker's typed failure; only the classes the worker can raise are known here. */
export type ErrorFactory = (name: string, message: string) => Error;

/** The bundled worker sits beside the bundle's chunks (cli/bundle.ts); from source it is output-worker.ts. */
function workerUrl(): URL {
  const bundled = new URL("./kustomize-output-worker.mjs", import.meta.url);
  return existsSync(bundled) ? bundled : new URL("./output-worker.ts", import.meta.url);
}

export function readOutputInWorker(
  job: OutputJob,
  rebuildError: ErrorFactory,
  signal?: AbortSignal,
): Promise<ManifestObject[]> {
  return new Promise((resolve, reject) => {
    const worker = new Worker(workerUrl(), { workerData: job, resourceLimits: WORKER_LIMITS });
    let settled = false;
    const finish = (outcome: () => void) => {
      if (settled) return;
      settled = true;
      clearTimeout(timer);
      signal?.removeEventListener("abort", onAbort);
      void worker.terminate();
      outcome();
    };
    const timer = setTimeout(() => finish(() => reject(new OutputLimitError(`reading ${job.origin} took longer than ${OUTPUT_WORKER_TIMEOUT_MS / 1000} s`))), OUTPUT_WORKER_TIMEOUT_MS);
    const onAbort = () => finish(() => reject(new OutputLimitError(`reading ${job.origin} stopped: the reconcile's timeout passed`)));
    signal?.addEventListener("abort", onAbort, { once: true });
    if (signal?.aborted) onAbort();
    worker.once("message", (result: OutputResult) => finish(() => {
      if ("json" in result) resolve(JSON.parse(result.json) as ManifestObject[]);
      else reject(rebuildError(result.error.name, result.error.message));
    }));
    worker.once("error", (error: Error & { code?: string }) => finish(() => {
      reject(error.code === "ERR_WORKER_OUT_OF_MEMORY"
        ? new OutputLimitError(`reading ${job.origin} needed more than ${OUTPUT_WORKER_HEAP_MB} MiB`, { cause: error })
        : error);
    }));
    worker.once("exit", (code) => finish(() => reject(new OutputLimitError(`reading ${job.origin} stopped: the worker exited with ${code}`))));
  });
}
