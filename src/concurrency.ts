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
