// Runs CEL evaluations in a worker thread. Neither CEL library for JavaScript bounds what an expression costs
// (Kubernetes and cel-go count a cost budget), and a tenant writes the expressions and, in part, the objects they
// read: nested comprehensions over long lists, or a backtracking regular expression in matches(), can take
// minutes. A worker with its own heap limit and a wall clock is stopped instead, and the event loop that renews the
// leader's lease and serves /healthz never runs tenant CEL.
import { existsSync } from "node:fs";
import { Worker } from "node:worker_threads";
import { Slots } from "../concurrency.ts";
import { type Disposition, FerryError } from "../errors.ts";
import type { HealthResult } from "../health/kstatus.ts";
import type { HealthCheckExpressions } from "./expressions.ts";
import type { CelJob, CelJobResult } from "./worker.ts";

/** A health poll's expressions over all its objects; a real one takes milliseconds. */
export const CEL_WORKER_TIMEOUT_MS = 5_000;
/** The objects (up to 16 MiB each from a tenant's cluster) are copied in; expressions may build lists of their own. */
export const CEL_WORKER_HEAP_MB = 128;

/** Workers alive at once across all reconciles: each is a thread with up to CEL_WORKER_HEAP_MB of heap. */
export const CEL_WORKER_SLOTS = 2;
const workerSlots = new Slots(CEL_WORKER_SLOTS);

/** Evaluation did not finish within the worker's bounds; the expression or the objects it reads must change. */
export class CelBudgetError extends FerryError {
  readonly code = "CEL_BUDGET_EXCEEDED";
  readonly disposition: Disposition = "retry";
}

/** A CEL job's own failure (a bad expression found in the worker, or an evaluation error), message as the worker put it. */
export class CelEvaluationError extends FerryError {
  readonly code = "CEL_EVALUATION_FAILED";
  readonly disposition: Disposition = "retry";
}

/** The bundled worker sits beside the bundle's chunks (cli/bundle.ts); from source it is worker.ts. */
function workerUrl(): URL {
  const bundled = new URL("./cel-worker.mjs", import.meta.url);
  return existsSync(bundled) ? bundled : new URL("./worker.ts", import.meta.url);
}

/** The job in a worker of its own once a slot is free; its time limit starts when the worker does. */
async function runInWorker(job: CelJob, what: string, signal?: AbortSignal): Promise<CelJobResult> {
  return workerSlots.run(() => runInNewWorker(job, what, signal), signal).catch((error: unknown) => {
    if (signal?.aborted && error === signal.reason) throw new CelBudgetError(`${what} stopped: the reconcile's timeout passed`);
    throw error;
  });
}

function runInNewWorker(job: CelJob, what: string, signal?: AbortSignal): Promise<CelJobResult> {
  return new Promise((resolve, reject) => {
    const worker = new Worker(workerUrl(), { workerData: job, resourceLimits: { maxOldGenerationSizeMb: CEL_WORKER_HEAP_MB } });
    let settled = false;
    const finish = (outcome: () => void) => {
      if (settled) return;
      settled = true;
      clearTimeout(timer);
      signal?.removeEventListener("abort", onAbort);
      void worker.terminate();
      outcome();
    };
    const timer = setTimeout(() => finish(() => reject(new CelBudgetError(`${what} took longer than ${CEL_WORKER_TIMEOUT_MS / 1000} s and was stopped`))), CEL_WORKER_TIMEOUT_MS);
    const onAbort = () => finish(() => reject(new CelBudgetError(`${what} stopped: the reconcile's timeout passed`)));
    signal?.addEventListener("abort", onAbort, { once: true });
    if (signal?.aborted) onAbort();
    worker.once("message", (result: CelJobResult) => finish(() => resolve(result)));
    worker.once("error", (error: Error & { code?: string }) => finish(() => {
      reject(error.code === "ERR_WORKER_OUT_OF_MEMORY"
        ? new CelBudgetError(`${what} needed more than ${CEL_WORKER_HEAP_MB} MiB and was stopped`, { cause: error })
        : error);
    }));
    worker.once("exit", (code) => finish(() => reject(new CelBudgetError(`${what} stopped: the worker exited with ${code}`))));
  });
}

/** The health of each object (undefined: not found) by the expressions covering its kind. */
export async function evaluateHealthInWorker(
  checks: readonly HealthCheckExpressions[],
  objects: readonly unknown[],
  signal?: AbortSignal,
): Promise<readonly HealthResult[]> {
  // undefined does not survive structured cloning into an array slot as "missing"; null stands for not found.
  const result = await runInWorker({ type: "health", checks, objects: objects.map((object) => object ?? null) }, "evaluating healthCheckExprs", signal);
  if ("health" in result) return result.health;
  throw new CelEvaluationError("error" in result ? result.error : "unexpected result");
}

/** Whether `dep` is ready by `expression` over the dependent (`self`) and the dependency (`dep`). */
export async function evaluateReadyInWorker(expression: string, self: unknown, dep: unknown, signal?: AbortSignal): Promise<boolean> {
  const result = await runInWorker({ type: "ready", expression, self, dep }, "evaluating readyExpr", signal);
  if ("ready" in result) return result.ready;
  throw new CelEvaluationError("error" in result ? result.error : "unexpected result");
}
