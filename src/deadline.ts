// One deadline per reconcile. A tenant can point a Kustomization at a server that accepts connections and never
// answers; without a bound, that reconcile holds a worker for ever and a few of them stop every tenant. The
// reconcile's deadline (its spec.timeout) travels with the async work it starts, so every Kubernetes request made
// on its behalf carries it without each call site having to remember; registry and kustomize calls take the same
// signal explicitly. Every Kubernetes request also has its own timeout, inside a reconcile or not.
import asyncHooks from "node:async_hooks";
import { timerMs } from "./api/duration.ts";

/** How long one Kubernetes request may take, whatever the reconcile's deadline; list and apply calls answer in far less. */
export const KUBE_REQUEST_TIMEOUT_MS = 60_000;

// AsyncLocalStorage is a lazy getter of node:async_hooks, which the bundle reaches only through the default export.
const deadlines = new asyncHooks.AsyncLocalStorage<AbortSignal>();

/** Runs `work` with a deadline `ms` from now; what it starts inherits it (see deadlineSignal). */
export function withDeadline<T>(ms: number, work: () => Promise<T>): Promise<T> {
  // AbortSignal.timeout, like setTimeout, fires at once for a delay over 2^31-1 ms: timerMs clamps it.
  return deadlines.run(AbortSignal.timeout(timerMs(ms)), work);
}

/** The deadline of the reconcile this code runs for, if any. */
export function deadlineSignal(): AbortSignal | undefined {
  return deadlines.getStore();
}

/** True when the current reconcile ran out of time: its failures are that, whatever error the abort surfaced as. */
export function deadlineExceeded(): boolean {
  return deadlines.getStore()?.aborted ?? false;
}

/**
 * Runs `work` without the reconcile's deadline: the status write and event that report a timed-out reconcile must
 * still go out (each request keeps its own timeout).
 */
export function outsideDeadline<T>(work: () => T): T {
  return deadlines.exit(work);
}

/** The signal for one Kubernetes request: its own timeout, and the reconcile's deadline when there is one. */
export function kubeRequestSignal(): AbortSignal {
  const own = AbortSignal.timeout(KUBE_REQUEST_TIMEOUT_MS);
  const deadline = deadlines.getStore();
  return deadline ? AbortSignal.any([own, deadline]) : own;
}
