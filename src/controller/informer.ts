// Keeps a live view of one resource type: list, then watch from the list's resourceVersion; relist when the
// watch ends with 410 Gone or any error; restart a watch that goes silent; resync every object periodically.
import type { KubeClient, ResourceType } from "../kube/client.ts";

interface Keyed {
  metadata: { namespace: string; name: string; resourceVersion?: string };
}

export interface InformerOptions<T> {
  readonly type: ResourceType;
  /** Called for every added or changed object, and for every object at each resync. */
  readonly onUpsert: (object: T, previous: T | undefined) => void;
  readonly onDelete: (object: T) => void;
  readonly resyncMs: number;
  /** A watch with no event (not even a bookmark) for this long is restarted. */
  readonly silenceMs: number;
  readonly log: (message: string, fields?: Record<string, unknown>) => void;
}

export function objectKey(object: Keyed): string {
  return `${object.metadata.namespace}/${object.metadata.name}`;
}

export class Informer<T extends Keyed> {
  readonly #client: KubeClient;
  readonly #options: InformerOptions<T>;
  readonly #store = new Map<string, T>();
  #abort: AbortController | undefined;
  #resourceVersion = "";
  #lastEvent = Date.now();
  #stopped = false;
  #timers: NodeJS.Timeout[] = [];
  #restarting = false;

  constructor(client: KubeClient, options: InformerOptions<T>) {
    this.#client = client;
    this.#options = options;
  }

  get(key: string): T | undefined {
    return this.#store.get(key);
  }

  all(): T[] {
    return [...this.#store.values()];
  }

  async start(): Promise<void> {
    // The first list can fail while the apiserver warms up (a CRD's storage answers 429 right after it is
    // established); keep trying rather than exit.
    for (let attempt = 1; ; attempt++) {
      try {
        await this.#relist();
        break;
      } catch (error) {
        if (this.#stopped) return;
        this.#options.log("initial list failed; retrying", { attempt, error: (error as Error).message.split("\n")[0] });
        await new Promise((resolve) => setTimeout(resolve, Math.min(5000, 250 * 2 ** Math.min(attempt, 5))));
      }
    }
    this.#timers.push(
      setInterval(() => {
        for (const object of this.#store.values()) this.#options.onUpsert(object, object);
      }, this.#options.resyncMs),
      setInterval(() => {
        if (Date.now() - this.#lastEvent > this.#options.silenceMs) {
          this.#options.log("watch went silent; restarting it", { silentMs: Date.now() - this.#lastEvent });
          void this.#restart();
        }
      }, Math.max(1000, this.#options.silenceMs / 4)),
    );
  }

  async #relist(): Promise<void> {
    const { items, resourceVersion } = await this.#client.list<T>(this.#options.type);
    const seen = new Set<string>();
    for (const item of items) {
      const key = objectKey(item);
      seen.add(key);
      const previous = this.#store.get(key);
      this.#store.set(key, item);
      this.#options.onUpsert(item, previous);
    }
    for (const [key, object] of this.#store) {
      if (!seen.has(key)) {
        this.#store.delete(key);
        this.#options.onDelete(object);
      }
    }
    this.#resourceVersion = resourceVersion;
    await this.#watch();
  }

  async #watch(): Promise<void> {
    this.#lastEvent = Date.now();
    this.#abort = await this.#client.watch(
      this.#options.type,
      this.#resourceVersion,
      (phase, raw) => {
        this.#lastEvent = Date.now();
        const object = raw as T & { code?: number };
        if (phase === "ERROR") {
          this.#options.log("watch error; relisting", { code: object.code });
          this.#resourceVersion = "";
          void this.#restart();
          return;
        }
        if (object.metadata?.resourceVersion) this.#resourceVersion = object.metadata.resourceVersion;
        if (phase === "BOOKMARK") return;
        const key = objectKey(object);
        if (phase === "DELETED") {
          this.#store.delete(key);
          this.#options.onDelete(object);
          return;
        }
        const previous = this.#store.get(key);
        this.#store.set(key, object);
        this.#options.onUpsert(object, previous);
      },
      (error) => {
        if (this.#stopped) return;
        // The server ends watches after timeoutSeconds; 410 Gone means our resourceVersion is too old.
        const gone = (error as { statusCode?: number; code?: number })?.statusCode === 410;
        if (gone) this.#resourceVersion = "";
        void this.#restart();
      },
    );
  }

  async #restart(): Promise<void> {
    if (this.#stopped || this.#restarting) return;
    this.#restarting = true;
    try {
      this.#abort?.abort();
      if (this.#resourceVersion === "") await this.#relist();
      else await this.#watch();
    } catch (error) {
      this.#options.log("relist failed; retrying", { error: (error as Error).message });
      const timer = setTimeout(() => void this.#restart(), 2000);
      timer.unref();
    } finally {
      this.#restarting = false;
    }
  }

  /**
   * Restarts the watch from `resourceVersion` as if the previous watch had ended there. Tests use it with an
   * ancient version to make the apiserver answer 410 Gone, the way a long network partition would.
   */
  async rewatchFrom(resourceVersion: string): Promise<void> {
    this.#abort?.abort();
    this.#resourceVersion = resourceVersion;
    await this.#watch();
  }

  stop(): void {
    this.#stopped = true;
    this.#abort?.abort();
    for (const timer of this.#timers) clearInterval(timer);
  }
}
