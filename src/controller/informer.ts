// Keeps a live view of one resource type: list, then watch from the list's resourceVersion, for as long as it runs.
// A watch the server ends is started again at once from where it got to; one that fails (apiserver restarting,
// network down) is retried with capped backoff, or after the server's Retry-After; 410 Gone (the version was
// compacted away, or a restarted apiserver no longer has it) means list again. A watch with no event or bookmark
// for silenceMs is restarted, since a connection can hang, even before its headers, without ever failing.
import { performance } from "node:perf_hooks";
import { setTimeout as sleep } from "node:timers/promises";
import { withDeadline } from "../deadline.ts";
import { trimForCache } from "./cache-trim.ts";
import { httpStatusOf, type KubeClient, type ResourceType } from "../kube/client.ts";
import type { Log } from "./log.ts";
import { watchResource, WatchFailedError } from "../kube/watch.ts";

interface Keyed {
  metadata: { namespace: string; name: string; resourceVersion?: string };
}

export interface InformerOptions<T> {
  readonly type: ResourceType;
  /** Only this namespace's objects; every namespace's when undefined. */
  readonly namespace?: string | undefined;
  /** Only objects this label selector selects (--watch-label-selector), on the list and the watch alike. */
  readonly labelSelector?: string | undefined;
  /** Called for every added or changed object, and for every object at each resync. */
  readonly onUpsert: (object: T, previous: T | undefined) => void;
  readonly onDelete: (object: T) => void;
  readonly resyncMs: number;
  /** A watch with no event (not even a bookmark) for this long is restarted. */
  readonly silenceMs: number;
  readonly log: Log;
}

export function objectKey(object: Keyed): string {
  return `${object.metadata.namespace}/${object.metadata.name}`;
}

/** The first retry after a failure waits this long, doubling up to WATCH_RETRY_MAX_MS. */
export const WATCH_RETRY_BASE_MS = 250;
/**
 * Short, so that a change made just after the apiserver comes back is seen within seconds; a controller's two
 * informers retrying every few seconds is no load for an apiserver.
 */
export const WATCH_RETRY_MAX_MS = 4000;

/** How long to wait before attempt `failures + 1`: the server's Retry-After if it gave one, else capped backoff with jitter. */
export function watchRetryDelayMs(failures: number, retryAfterMs?: number, random = Math.random()): number {
  if (failures <= 0) return 0;
  if (retryAfterMs !== undefined) return Math.min(retryAfterMs, WATCH_RETRY_MAX_MS);
  const ceiling = Math.min(WATCH_RETRY_MAX_MS, WATCH_RETRY_BASE_MS * 2 ** Math.min(failures - 1, 16));
  return Math.round(ceiling * (0.75 + random * 0.25));
}

/** A list at a resourceVersion the apiserver no longer has (410) or does not have yet (504 "Too large resource version"). */
function versionUnavailable(error: unknown): boolean {
  const status = httpStatusOf(error);
  return status === 410 || (status === 504 && /too large resource version/i.test(String((error as { body?: unknown }).body ?? (error as Error).message)));
}

/** The resourceVersion this informer holds is gone from the apiserver (410): only a new list can continue. */
function isGone(error: unknown): boolean {
  return error instanceof WatchFailedError && error.statusCode === 410;
}

/** Why a watch was stopped from this side; the loop tells these apart from the server's own failures. */
class WatchSilentError extends Error {}

/** Watches that end sooner than this without an event are treated as failures, so a flapping server is not hammered. */
const MIN_USEFUL_WATCH_MS = 1000;

export class Informer<T extends Keyed> {
  readonly #client: KubeClient;
  readonly #options: InformerOptions<T>;
  readonly #store = new Map<string, T>();
  #watch: AbortController | undefined;
  #resourceVersion = "";
  /** The newest resourceVersion seen (a list's, an event's, a bookmark's): a relist asks for a state at least as new. */
  #lastSynced = "";
  /** performance.now() of the last sign of life from the apiserver: a list, an accepted watch, an event. */
  #lastActivity: number | undefined;
  #stopped = false;
  #resync: NodeJS.Timeout | undefined;
  /** Consecutive attempts that failed to reach a working apiserver. */
  #failures = 0;
  /** Consecutive 410s without an event between them: a relist that keeps expiring at once is backed off too. */
  #gones = 0;

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

  /** Milliseconds since the apiserver last showed this informer it is alive (or since start; 0 before). */
  idleMs(now = performance.now()): number {
    return this.#lastActivity === undefined ? 0 : now - this.#lastActivity;
  }

  /** Resolves after the first list (retried until it succeeds); watching continues in the background. */
  async start(): Promise<void> {
    this.#lastActivity = performance.now();
    // The first list can fail while the apiserver warms up (a CRD's storage answers 429 right after it is
    // established); keep trying rather than exit.
    for (let attempt = 1; !this.#stopped; attempt++) {
      try {
        await this.#relist();
        break;
      } catch (error) {
        this.#options.log("initial list failed; retrying", { attempt, error: firstLine(error) }, "error");
        await sleep(watchRetryDelayMs(attempt));
      }
    }
    if (this.#stopped) return;
    this.#resync = setInterval(() => {
      for (const object of this.#store.values()) this.#options.onUpsert(object, object);
    }, this.#options.resyncMs);
    void this.#run();
  }

  async #run(): Promise<void> {
    while (!this.#stopped) {
      const delayMs = await this.#cycle();
      if (delayMs > 0 && !this.#stopped) await sleep(delayMs);
    }
  }

  /** One list-if-needed and watch; returns how long to wait before the next. */
  async #cycle(): Promise<number> {
    try {
      if (this.#resourceVersion === "") await this.#relist();
      const useful = await this.#watchOnce();
      if (useful) return 0;
      this.#failures += 1;
      return watchRetryDelayMs(this.#failures);
    } catch (error) {
      if (this.#stopped) return 0;
      if (isGone(error)) {
        this.#resourceVersion = "";
        this.#gones += 1;
        this.#options.log("watch expired (410 Gone); relisting", { kind: this.#options.type.plural, code: 410, attempt: this.#gones });
        return watchRetryDelayMs(this.#gones - 1);
      }
      if (error instanceof WatchSilentError) {
        this.#options.log("watch went silent; restarting it", { kind: this.#options.type.plural, silentMs: this.#options.silenceMs });
        return 0;
      }
      this.#failures += 1;
      const delayMs = watchRetryDelayMs(this.#failures, error instanceof WatchFailedError ? error.retryAfterMs : undefined);
      const fields = { kind: this.#options.type.plural, error: firstLine(error), attempt: this.#failures, retryInMs: delayMs };
      this.#options.log("watch failed; retrying", fields, "error");
      return delayMs;
    }
  }

  /** The apiserver answered: healthy as far as /healthz is concerned. */
  #heard(): void {
    this.#lastActivity = performance.now();
  }

  /** The apiserver served what was asked: the backoff starts again from the bottom. */
  #served(): void {
    this.#heard();
    this.#failures = 0;
  }

  async #relist(): Promise<void> {
    // A list hangs behind a dead link as a watch does; it must not outlast the watchdog's patience either.
    const { type, namespace, labelSelector, silenceMs } = this.#options;
    const listAt = (version: string) =>
      withDeadline(silenceMs, () => this.#client.list<T>(type, namespace, labelSelector, { resourceVersion: version }));
    // As client-go's reflector: the first list takes any version from the watch cache ("0"); a relist asks for one not
    // older than what this store already holds, so it never goes back in time (a cache behind etcd after the 410 could
    // otherwise resurrect a deleted object or an old generation). When the apiserver cannot serve that version (410
    // Expired, or 504 "Too large resource version"), a consistent read from etcd starts afresh.
    const since = this.#lastSynced || "0";
    const { items, resourceVersion } = await listAt(since).catch((error: unknown) => {
      if (since !== "0" && versionUnavailable(error)) return listAt("");
      throw error;
    });
    this.#served();
    const seen = new Set<string>();
    for (const item of items) {
      const key = objectKey(item);
      seen.add(key);
      const previous = this.#store.get(key);
      this.#store.set(key, trimForCache(item));
      this.#options.onUpsert(item, previous);
    }
    for (const [key, object] of this.#store) {
      if (!seen.has(key)) {
        this.#store.delete(key);
        this.#options.onDelete(object);
      }
    }
    this.#resourceVersion = resourceVersion;
    this.#lastSynced = resourceVersion;
  }

  /** Watches until the watch ends; true if it was worth having (delivered events, or stayed open a while). */
  async #watchOnce(): Promise<boolean> {
    const abort = new AbortController();
    this.#watch = abort;
    const started = performance.now();
    let lastEvent = started;
    let events = 0;
    const watchdog = setInterval(() => {
      if (performance.now() - lastEvent > this.#options.silenceMs) abort.abort(new WatchSilentError());
    }, Math.max(100, Math.min(1000, this.#options.silenceMs / 4)));
    try {
      await watchResource(this.#client.config, this.#options.type, this.#resourceVersion, abort.signal, {
        onOpen: () => this.#heard(),
        onEvent: (type, object) => {
          lastEvent = performance.now();
          if (!this.#apply(type, object, abort)) return;
          events += 1;
          this.#served();
        },
      }, this.#options.namespace, this.#options.labelSelector);
    } finally {
      clearInterval(watchdog);
      abort.abort();
    }
    return events > 0 || performance.now() - started >= MIN_USEFUL_WATCH_MS;
  }

  /** Applies one watch event to the store; false for an ERROR, which ends the watch. */
  #apply(type: string, raw: unknown, watch: AbortController): boolean {
    const object = raw as T & { code?: number; message?: string };
    if (type === "ERROR") {
      // Whatever the error, the stream's position can no longer be trusted: list again, as client-go does.
      this.#resourceVersion = "";
      watch.abort(new WatchFailedError(`watch ${this.#options.type.plural}: ${object.message ?? "error event"}`, object.code !== undefined ? { statusCode: object.code } : {}));
      return false;
    }
    this.#gones = 0;
    if (object.metadata?.resourceVersion) this.#resourceVersion = this.#lastSynced = object.metadata.resourceVersion;
    if (type === "BOOKMARK") return true;
    const key = objectKey(object);
    if (type === "DELETED") {
      this.#store.delete(key);
      this.#options.onDelete(object);
      return true;
    }
    const previous = this.#store.get(key);
    this.#store.set(key, trimForCache(object));
    this.#options.onUpsert(object, previous);
    return true;
  }

  stop(): void {
    this.#stopped = true;
    this.#watch?.abort();
    clearInterval(this.#resync);
  }
}

function firstLine(error: unknown): string {
  return (error instanceof Error ? error.message : String(error)).split("\n")[0] ?? "";
}
