// A work queue with the guarantees a reconciler needs: one reconcile per key at a time, a bounded number of
// concurrent reconciles, a key added while it is being processed runs again afterwards, and delayed requeues.
import { timerMs } from "../api/duration.ts";

export type Reconcile = (key: string) => Promise<{ requeueAfterMs?: number }>;

export interface QueueOptions {
  readonly concurrency: number;
  /** Backoff after a failed reconcile: base * 2^(failures-1), capped, with jitter. */
  readonly minRetryMs: number;
  readonly maxRetryMs: number;
  readonly onError?: (key: string, error: unknown) => void;
  /** The soonest a key runs again, whatever delay is asked for; defaults to DEFAULT_MIN_DELAY_MS. */
  readonly minDelayMs?: number;
  /**
   * At most this many keys of one group (a key's namespace: the part before "/") run at once, so that one tenant's
   * slow reconciles can never hold every worker. Defaults to all of them.
   */
  readonly maxActivePerGroup?: number;
}

function groupOf(key: string): string {
  return key.slice(0, Math.max(0, key.indexOf("/")));
}

/**
 * A delay of zero (or NaN) from a reconciler would otherwise run its key again at once, for ever. Reconcilers floor
 * spec intervals themselves (MIN_INTERVAL_MS); this lower floor also lets their short health polls through.
 */
export const DEFAULT_MIN_DELAY_MS = 50;

export class WorkQueue {
  readonly #pending: string[] = [];
  readonly #queued = new Set<string>();
  readonly #active = new Set<string>();
  readonly #activeByGroup = new Map<string, number>();
  readonly #dirty = new Set<string>();
  readonly #timers = new Map<string, NodeJS.Timeout>();
  readonly #failures = new Map<string, number>();
  readonly #idle: Array<() => void> = [];
  readonly #reconcile: Reconcile;
  readonly #options: QueueOptions;
  #running = 0;
  #stopped = false;

  constructor(reconcile: Reconcile, options: QueueOptions) {
    this.#reconcile = reconcile;
    this.#options = options;
  }

  get depth(): number {
    return this.#pending.length;
  }

  add(key: string): void {
    if (this.#stopped) return;
    const timer = this.#timers.get(key);
    if (timer) {
      clearTimeout(timer);
      this.#timers.delete(key);
    }
    if (this.#active.has(key)) {
      this.#dirty.add(key);
      return;
    }
    if (this.#queued.has(key)) return;
    this.#queued.add(key);
    this.#pending.push(key);
    this.#pump();
  }

  addAfter(key: string, delayMs: number): void {
    if (this.#stopped) return;
    const existing = this.#timers.get(key);
    if (existing) clearTimeout(existing);
    const timer = setTimeout(() => {
      this.#timers.delete(key);
      this.add(key);
    }, timerMs(delayMs, this.#options.minDelayMs ?? DEFAULT_MIN_DELAY_MS));
    timer.unref();
    this.#timers.set(key, timer);
  }

  /** Whether the key is queued, running or scheduled: a resync then has nothing to add for it. */
  tracks(key: string): boolean {
    return this.#queued.has(key) || this.#active.has(key) || this.#timers.has(key);
  }

  forget(key: string): void {
    this.#failures.delete(key);
    const timer = this.#timers.get(key);
    if (timer) clearTimeout(timer);
    this.#timers.delete(key);
  }

  #pump(): void {
    while (!this.#stopped && this.#running < this.#options.concurrency) {
      // The oldest pending key whose group has a worker to spare; the others keep their place in line.
      const index = this.#pending.findIndex((candidate) => this.#groupHasRoom(candidate));
      if (index < 0) break;
      const [key] = this.#pending.splice(index, 1) as [string];
      this.#queued.delete(key);
      this.#active.add(key);
      this.#activeByGroup.set(groupOf(key), (this.#activeByGroup.get(groupOf(key)) ?? 0) + 1);
      this.#running++;
      void this.#process(key);
    }
    if (this.#running === 0 && this.#pending.length === 0) for (const resolve of this.#idle.splice(0)) resolve();
  }

  async #process(key: string): Promise<void> {
    try {
      const result = await this.#reconcile(key);
      this.#failures.delete(key);
      if (result.requeueAfterMs !== undefined) this.addAfter(key, result.requeueAfterMs);
    } catch (error) {
      const failures = (this.#failures.get(key) ?? 0) + 1;
      this.#failures.set(key, failures);
      this.#options.onError?.(key, error);
      const backoff = Math.min(this.#options.maxRetryMs, this.#options.minRetryMs * 2 ** (failures - 1));
      this.addAfter(key, Math.round(backoff / 2 + (Math.random() * backoff) / 2));
    } finally {
      this.#active.delete(key);
      const group = groupOf(key);
      const active = (this.#activeByGroup.get(group) ?? 1) - 1;
      if (active === 0) this.#activeByGroup.delete(group);
      else this.#activeByGroup.set(group, active);
      this.#running--;
      if (this.#dirty.delete(key)) this.add(key);
      this.#pump();
    }
  }

  #groupHasRoom(key: string): boolean {
    const limit = this.#options.maxActivePerGroup ?? this.#options.concurrency;
    return (this.#activeByGroup.get(groupOf(key)) ?? 0) < limit;
  }

  /** Stops taking work; resolves when in-flight reconciles have finished. */
  async shutdown(): Promise<void> {
    this.#stopped = true;
    for (const timer of this.#timers.values()) clearTimeout(timer);
    this.#timers.clear();
    this.#pending.length = 0;
    this.#queued.clear();
    if (this.#running > 0) await new Promise<void>((resolve) => this.#idle.push(resolve));
  }
}
