// Runs reconcilers: an informer feeds a work queue; reconcile results decide requeues. Logs are JSON lines.
import { requestChanged } from "../api/flux-annotations.ts";
import type { ArtifactCache } from "../artifact/cache.ts";
import type { KubeClient } from "../kube/client.ts";
import { RegistryClientCache } from "../registry/client-cache.ts";
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
import { parseLabelSelector, type SelectorRequirement, selectorMatches } from "./selector.ts";
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
  /**
   * Reconcile only the OCIRepositories and Kustomizations this label selector selects (--watch-label-selector, in
   * canonical form): one shard of a sharded install, as Flux's sharding.fluxcd.io/key labels divide the objects.
   */
  readonly labelSelector?: string;
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

/**
 * The KubeClient a source of another shard is fetched with: it reads (Secrets, ServiceAccounts) as the controller
 * does, and writes nothing: that source's status, finalizer and events are its own shard's to write. Reads are
 * allowed by name and the known writes do nothing; any other method throws, so a request the reconciler starts
 * making one day fails loudly here rather than writing to another shard's object.
 */
export function readOnlyKube(kube: KubeClient): KubeClient {
  const reads = new Set<PropertyKey>(["get", "list", "listNamespaced", "secretData", "configMapData", "imagePullSecrets", "serviceAccountExists", "defaultNamespace"]);
  const writes = new Set<PropertyKey>(["patchStatus", "setFinalizers", "event", "mergePatch", "create", "createLease", "replaceLease"]);
  return new Proxy(kube, {
    get(target, property) {
      if (writes.has(property)) return async () => {};
      const value: unknown = Reflect.get(target, property, target);
      if (typeof value !== "function") return value;
      if (reads.has(property)) return (value as (...args: unknown[]) => unknown).bind(target);
      return () => {
        throw new Error(`KubeClient.${String(property)} is not allowed when fetching another shard's source`);
      };
    },
  });
}

export class Manager {
  readonly #sources: Watched<OCIRepository>;
  readonly #kustomizations: Watched<Kustomization>;
  /**
   * Under a label selector, every OCIRepository, read-only: a Kustomization of this shard may follow a source of
   * another, and is reconciled when that source stores a new artifact (as kustomize-controller watches every source
   * whatever its shard). Undefined without a selector, when #sources sees them all.
   */
  readonly #allSources: Informer<OCIRepository & { metadata: { namespace: string; name: string } }> | undefined;
  /** Fetches in flight of other shards' artifacts into this controller's cache, one per source. */
  readonly #fetching = new Map<string, Promise<void>>();
  readonly metrics: ControllerMetrics;
  readonly #cache: ArtifactCache;
  readonly #watchIdleTimeoutMs: number;
  readonly #labelSelector: string | undefined;
  readonly #selector: SelectorRequirement[] | undefined;
  #started = false;

  constructor(options: ManagerOptions) {
    this.metrics = options.metrics ?? new ControllerMetrics();
    this.#cache = options.cache;
    this.#watchIdleTimeoutMs = options.watchIdleTimeoutMs ?? DEFAULT_WATCH_IDLE_TIMEOUT_MS;
    this.#labelSelector = options.labelSelector;
    this.#selector = options.labelSelector ? parseLabelSelector(options.labelSelector) : undefined;
    // One pool of registry clients (connections, tokens) for this shard's sources and the foreign fetches alike.
    const registryClients = new RegistryClientCache();
    const sources = new OCIRepositoryReconciler({
      ...options.sources,
      registryClients,
      kube: options.kube,
      cache: options.cache,
      log: jsonLog,
      recordEvents: true,
    });
    // The same fetch, for a source another shard reconciles: its artifact lands in this cache at the path its
    // status names (the path is the digest and extraction options), and nothing is written to the cluster.
    const foreignSources = new OCIRepositoryReconciler({
      ...options.sources,
      registryClients,
      kube: readOnlyKube(options.kube),
      cache: options.cache,
      log: jsonLog,
    });
    const kustomizations = new KustomizationReconciler({
      ...options.kustomizations,
      kube: options.kube,
      cache: options.cache,
      log: jsonLog,
      recordEvents: true,
      fetchArtifact: (source) => this.#fetchForeignArtifact(source, foreignSources),
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
    this.#allSources = options.labelSelector
      ? new Informer<OCIRepository & { metadata: { namespace: string; name: string } }>(options.kube, {
          type: OCI_REPOSITORY,
          namespace: options.watchNamespace,
          resyncMs: options.resyncMs ?? 10 * 60_000,
          silenceMs: this.#watchIdleTimeoutMs,
          log: jsonLog,
          onUpsert: (object, previous) => {
            if (object !== previous && object.status?.artifact?.revision !== previous?.status?.artifact?.revision) {
              for (const key of this.#kustomizationsOf(object)) this.#kustomizations.queue.add(key);
            }
          },
          // Another shard's source that is gone leaves nothing in this cache (its own shard removes its own entries).
          onDelete: (object) => {
            if (this.#selector && selectorMatches(this.#selector, (object.metadata as { labels?: Record<string, string> }).labels)) return;
            void this.#cache.remove("OCIRepository", object.metadata.namespace, object.metadata.name).catch(() => undefined);
          },
        })
      : undefined;
  }

  /**
   * A source whose artifact is not in this controller's cache: one of another shard is fetched here (once at a
   * time per source), exactly the revision its status names as far as its spec still resolves to it. One of this
   * shard is this controller's own to fetch (a new leader's cache starts empty), so it is only queued.
   */
  async #fetchForeignArtifact(source: OCIRepository, reconciler: OCIRepositoryReconciler): Promise<void> {
    const key = objectKey(source);
    // By its labels, not by this shard's informer, which may not have listed it yet: one fetch per source at a time
    // in this cache (the queue's), never the OCIRepository reconcile and this one side by side.
    if (!this.#selector || selectorMatches(this.#selector, (source.metadata as { labels?: Record<string, string> }).labels)) {
      if (this.#sources.informer.get(key)) this.#sources.queue.add(key);
      return;
    }
    const running = this.#fetching.get(key);
    if (running) return running;
    // A suspended source still offers its artifact, as source-controller keeps serving it.
    const fetch = reconciler.reconcile({ ...source, spec: { ...source.spec, suspend: false } }).then(() => {
      jsonLog("fetched the artifact of another shard's source", { object: key, revision: source.status?.artifact?.revision });
    });
    const tracked = fetch.finally(() => this.#fetching.delete(key));
    this.#fetching.set(key, tracked);
    return tracked;
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
      labelSelector: options.labelSelector,
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
    const informers = {
      OCIRepository: this.#sources.informer,
      Kustomization: this.#kustomizations.informer,
      ...(this.#allSources ? { "OCIRepository (all shards)": this.#allSources } : {}),
    };
    return Object.entries(informers).flatMap(([kind, informer]) => {
      const idleMs = informer.idleMs(now);
      return idleMs > limitMs ? [`${kind} watch: no answer from the apiserver for ${Math.round(idleMs / 1000)}s (limit ${limitMs / 1000}s)`] : [];
    });
  }

  async start(): Promise<void> {
    this.metrics.queueDepth = () => this.#sources.queue.depth + this.#kustomizations.queue.depth;
    // Other shards' sources first: a Kustomization queued by its own informer may need one of them at once.
    await this.#allSources?.start();
    await this.#kustomizations.informer.start();
    await this.#sources.informer.start();
    this.#started = true;
    jsonLog("controller started", { kinds: ["OCIRepository", "Kustomization"], ...(this.#labelSelector ? { labelSelector: this.#labelSelector } : {}) });
    // Artifacts of other shards' sources that still exist stay: this shard's Kustomizations may be reading them.
    const exists = (namespace: string, name: string) => this.#sources.informer.get(`${namespace}/${name}`) !== undefined
      || this.#allSources?.get(`${namespace}/${name}`) !== undefined;
    const removed = await this.#cache.collectGarbage("OCIRepository", exists)
      .catch((error: unknown) => {
        jsonLog("cache garbage collection failed", { error: (error as Error).message });
        return 0;
      });
    if (removed > 0) jsonLog("removed stale cache entries", { removed });
  }

  async stop(): Promise<void> {
    this.#sources.informer.stop();
    this.#kustomizations.informer.stop();
    this.#allSources?.stop();
    await Promise.all([this.#sources.queue.shutdown(), this.#kustomizations.queue.shutdown()]);
  }
}
