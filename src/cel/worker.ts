// The worker side of CEL evaluation (see evaluate-in-worker.ts): expressions run here, off the controller's event
// loop, under the heap limit and wall clock the main thread set, since the CEL library has no cost budget of its own.
import { parentPort, workerData } from "node:worker_threads";
import { evaluateReadyExpression, type HealthCheckExpressions, HealthExpressions } from "./expressions.ts";
import type { HealthResult } from "../health/kstatus.ts";

export type CelJob
  = | { readonly type: "health"; readonly checks: readonly HealthCheckExpressions[]; readonly objects: readonly unknown[] }
    | { readonly type: "ready"; readonly expression: string; readonly self: unknown; readonly dep: unknown };

export type CelJobResult
  = | { readonly health: readonly HealthResult[] }
    | { readonly ready: boolean }
    | { readonly error: string };

export function runCelJob(job: CelJob): CelJobResult {
  try {
    if (job.type === "health") {
      const expressions = HealthExpressions.compile(job.checks);
      return { health: job.objects.map((object) => expressions.evaluate(object)) };
    }
    return { ready: evaluateReadyExpression(job.expression, job.self, job.dep) };
  } catch (error) {
    return { error: (error as Error).message.split("\n")[0] ?? "" };
  }
}

parentPort?.postMessage(runCelJob(workerData as CelJob));
