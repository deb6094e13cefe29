// Runs reconcilers: an informer feeds a work queue; reconcile results decide requeues. Logs are JSON lines.
import { requestChanged } from "../api/flux-annotations.ts";
import type { ArtifactCache } from "../artifact/cache.ts";
import type { KubeClient } from "../kube/client.ts";
import {
  KUSTOMIZATION,
  type Kustomization,
  KustomizationReconciler,
  type KustomizationReconcilerOptions,
} from "../reconcilers/kustomization.ts";
import {
  OCI_REPOSITORY,
  type OCIRepository,
  OCIRepositoryReconciler,
  type ReconcilerDeps,
} from "../reconcilers/ocirepository.ts";
import { jsonLog, logAt } from "./log.ts";
import { Informer, objectKey } from "./informer.ts";
import { ControllerMetrics } from "./metrics.ts";
import { WorkQueue } from "./queue.ts";

export interface ManagerOptions {
  readonly kube: KubeClient;
  readonly cache: ArtifactCache;
  readonly concurrency: number;
  /** At most this many reconciles of one namespace at once (default: half the workers, at least one). */
  readonly maxConcurrentPerNamespace?: number;
  readonly resyncMs?: number;
  /** Watch only this namespace's OCIRepositories and Kustomizations (--watch-all-namespaces=false). */
  readonly watchNamespace?: string;
  /** A watch with no event or bookmark for this long is restarted; /healthz fails after twice this with no answer. */
  readonly watchIdleTimeoutMs?: number;
  readonly metrics?: ControllerMetrics;
  readonly kustomizations?: Pick<
    KustomizationReconcilerOptions,
    | "noCrossNamespaceRefs"
    | "noCrossNamespaceTargets"
    | "tenantLockdown"
    | "defaultServiceAccount"
    | "requeueDependencyMs"
    | "sandbox"
  >;
  readonly sources?: Pick<ReconcilerDeps, "maxArtifactBytes">;
}

/**
 * Longer than a healthy watch goes without a bookmark on a busy resource (about a minute); a quiet one may see none
 * for longer, and is then restarted from where it was, which costs one request.
 */
export const DEFAULT_WATCH_IDLE_TIMEOUT_MS = 90_000;

export { jsonLog };

/** Reconcile when the spec changed, a reconcile was requested, or the object is being deleted; not on our own status writes. */
function needsReconcile(object: OCIRepository | Kustomization, previous: OCIRepository | Kustomization | undefined): boolean {
  if (!previous) return true;
  return object.metadata.generation !== previous.metadata.generation
    || requestChanged(object.metadata.annotations, previous.metadata.annotations)
    || object.metadata.deletionTimestamp !== previous.metadata.deletionTimestamp;
}

function readiness(object: Kustomization | undefined): string {
  const ready = object?.status?.conditions?.find((condition) => condition.type === "Ready");
  return `${ready?.status}/${object?.status?.lastAppliedRevision}/${object?.status?.observedGeneration}`;
}

interface Watched<T> {
  readonly informer: Informer<T & { metadata: { namespace: string; name: string } }>;
  readonly queue: WorkQueue;
}

export class Manager {
  readonly #sources: Watched<OCIRepository>;
  readonly #kustomizations: Watched<Kustomization>;
  readonly metrics: ControllerMetrics;
  readonly #cache: ArtifactCache;
  readonly #watchIdleTimeoutMs: number;
  #started = false;

  constructor(options: ManagerOptions) {
    this.metrics = options.metrics ?? new ControllerMetrics();
    this.#cache = options.cache;
    this.#watchIdleTimeoutMs = options.watchIdleTimeoutMs ?? DEFAULT_WATCH_IDLE_TIMEOUT_MS;
    const sources = new OCIRepositoryReconciler({
      ...options.sources,
      kube: options.kube,
      cache: options.cache,
      log: jsonLog,
      recordEvents: true,
    });
    const kustomizations = new KustomizationReconciler({
      ...options.kustomizations,
      kube: options.kube,
      cache: options.cache,
      log: jsonLog,
      recordEvents: true,
    });
    this.#sources = this.#watch<OCIRepository>(options, "OCIRepository", OCI_REPOSITORY, (object) => sources.reconcile(object), (object, previous) => {
      // A new artifact revision is what Kustomizations wait for: reconcile those that use this source.
      if (object.status?.artifact?.revision !== previous?.status?.artifact?.revision) {
        for (const key of this.#kustomizationsOf(object)) this.#kustomizations.queue.add(key);
      }
    });
    this.#kustomizations = this.#watch<Kustomization>(options, "Kustomization", KUSTOMIZATION, (object) => kustomizations.reconcile(object), (object, previous) => {
      // A dependency that became Ready, or applied a new revision, releases the Kustomizations waiting on it.
      if (readiness(object) !== readiness(previous)) {
        for (const key of this.#dependentsOf(object)) this.#kustomizations.queue.add(key);
      }
    });
  }

  /** One informer feeding one queue whose reconciles are timed, counted and logged. */
  #watch<T extends OCIRepository | Kustomization>(
    options: ManagerOptions,
    kind: string,
    type: typeof OCI_REPOSITORY,
    reconcile: (object: T) => Promise<{ requeueAfterMs?: number }>,
    alsoOnUpsert?: (object: T, previous: T | undefined) => void,
  ): Watched<T> {
    const watched: { informer?: Informer<T> } = {};
    const queue = new WorkQueue(
      async (key) => {
        const object = watched.informer?.get(key);
        if (!object) return {};
        const started = Date.now();
        try {
          const result = await reconcile(object);
          this.metrics.recordReconcile(kind, "success", (Date.now() - started) / 1000);
          jsonLog("reconciled", { kind, object: key, durationMs: Date.now() - started });
          return result;
        } catch (error) {
          this.metrics.recordReconcile(kind, "error", (Date.now() - started) / 1000);
          throw error;
        }
      },
      {
        concurrency: options.concurrency,
        maxActivePerGroup: options.maxConcurrentPerNamespace ?? Math.max(1, Math.ceil(options.concurrency / 2)),
        minRetryMs: 750,
        maxRetryMs: 15 * 60_000,
        onError: (key, error) => logAt("error", "reconcile failed", { kind, object: key, error: (error as Error).message }),
      },
    );
    const informer = new Informer<T>(options.kube, {
      type,
      namespace: options.watchNamespace,
      resyncMs: options.resyncMs ?? 10 * 60_000,
      silenceMs: options.watchIdleTimeoutMs ?? DEFAULT_WATCH_IDLE_TIMEOUT_MS,
      log: jsonLog,
      onUpsert: (object, previous) => {
        // A resync hands over every object; one that is already scheduled (its interval, a retry) keeps its
        // schedule, or every object would reconcile at each resync whatever its interval says.
        const key = objectKey(object);
        if (object === previous ? !queue.tracks(key) : needsReconcile(object, previous)) queue.add(key);
        alsoOnUpsert?.(object, previous);
      },
      onDelete: (object) => queue.forget(objectKey(object)),
    });
    watched.informer = informer;
    return { informer, queue };
  }

  #kustomizationsOf(source: OCIRepository): string[] {
    return this.#kustomizations.informer
      .all()
      .filter((ks) => ks.spec.sourceRef.name === source.metadata.name)
      .filter((ks) => (ks.spec.sourceRef.namespace ?? ks.metadata.namespace) === source.metadata.namespace)
      .map(objectKey);
  }

  #dependentsOf(dependency: Kustomization): string[] {
    return this.#kustomizations.informer
      .all()
      .filter((ks) => ks.spec.dependsOn?.some((reference) =>
        reference.name === dependency.metadata.name && (reference.namespace ?? ks.metadata.namespace) === dependency.metadata.namespace))
      .map(objectKey);
  }

  get started(): boolean {
    return this.#started;
  }

  /**
   * Why /healthz should fail: a watch that has heard nothing from the apiserver for twice the idle timeout, when
   * a live one is restarted (and heard from) after one. Empty when healthy.
   */
  healthProblems(now?: number): string[] {
    const limitMs = 2 * this.#watchIdleTimeoutMs;
    const informers = { OCIRepository: this.#sources.informer, Kustomization: this.#kustomizations.informer };
    return Object.entries(informers).flatMap(([kind, informer]) => {
      const idleMs = informer.idleMs(now);
      return idleMs > limitMs ? [`${kind} watch: no answer from the apiserver for ${Math.round(idleMs / 1000)}s (limit ${limitMs / 1000}s)`] : [];
    });
  }

  async start(): Promise<void> {
    this.metrics.queueDepth = () => this.#sources.queue.depth + this.#kustomizations.queue.depth;
    await this.#kustomizations.informer.start();
    await this.#sources.informer.start();
    this.#started = true;
    jsonLog("controller started", { kinds: ["OCIRepository", "Kustomization"] });
    const removed = await this.#cache.collectGarbage("OCIRepository", (namespace, name) => this.#sources.informer.get(`${namespace}/${name}`) !== undefined)
      .catch((error: unknown) => {
        jsonLog("cache garbage collection failed", { error: (error as Error).message });
        return 0;
      });
    if (removed > 0) jsonLog("removed stale cache entries", { removed });
  }

  async stop(): Promise<void> {
    this.#sources.informer.stop();
    this.#kustomizations.informer.stop();
    await Promise.all([this.#sources.queue.shutdown(), this.#kustomizations.queue.shutdown()]);
  }
}
