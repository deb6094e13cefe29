// Bounded parallelism for work one reconcile fans out (health reads, deletions): a Kustomization with thousands of
// objects must not open thousands of requests at once and starve every other tenant's reconciles of the apiserver.

/** How many requests one reconcile keeps in flight for a fan-out, unless it asks for fewer. */
export const DEFAULT_FAN_OUT = 8;

/** `work` applied to every item, at most `limit` at a time; results keep the items' order. */
export async function mapBounded<T, R>(items: readonly T[], work: (item: T) => Promise<R>, limit = DEFAULT_FAN_OUT): Promise<R[]> {
  const results: R[] = new Array<R>(items.length);
  let next = 0;
  const worker = async () => {
    while (next < items.length) {
      const index = next++;
      results[index] = await work(items[index] as T);
    }
  };
  await Promise.all(Array.from({ length: Math.min(Math.max(1, limit), items.length) }, worker));
  return results;
}

/**
 * At most `size` holders at once, process-wide, served in arrival order: for work that costs a thread and its heap
 * (a CEL worker), whose number must not grow with the number of tenants reconciling at the same moment.
 */
export class Slots {
  readonly #size: number;
  #busy = 0;
  readonly #waiting: Array<() => void> = [];

  constructor(size: number) {
    this.#size = Math.max(1, size);
  }

  /** Runs `work` once a slot is free; rejects with the signal's reason if it aborts while waiting. */
  async run<T>(work: () => Promise<T>, signal?: AbortSignal): Promise<T> {
    await this.#acquire(signal);
    try {
      return await work();
    } finally {
      this.#release();
    }
  }

  #acquire(signal?: AbortSignal): Promise<void> {
    signal?.throwIfAborted();
    if (this.#busy < this.#size) {
      this.#busy += 1;
      return Promise.resolve();
    }
    return new Promise((resolve, reject) => {
      const grant = () => {
        signal?.removeEventListener("abort", onAbort);
        this.#busy += 1;
        resolve();
      };
      const onAbort = () => {
        const index = this.#waiting.indexOf(grant);
        if (index !== -1) this.#waiting.splice(index, 1);
        reject(signal?.reason);
      };
      signal?.addEventListener("abort", onAbort, { once: true });
      this.#waiting.push(grant);
    });
  }

  #release(): void {
    this.#busy -= 1;
    this.#waiting.shift()?.();
  }
}
