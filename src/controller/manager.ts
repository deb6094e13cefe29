// Runs reconcilers: an informer feeds a work queue; reconcile results decide requeues. Logs are JSON lines.
import type { ArtifactCache } from "../artifact/cache.ts";
import type { KubeClient } from "../kube/client.ts";
import { KUSTOMIZATION, type Kustomization, KustomizationReconciler } from "../reconcilers/kustomization.ts";
import { OCI_REPOSITORY, type OCIRepository, OCIRepositoryReconciler, REQUESTED_AT_ANNOTATION } from "../reconcilers/ocirepository.ts";
import { Informer, objectKey } from "./informer.ts";
import { ControllerMetrics } from "./metrics.ts";
import { WorkQueue } from "./queue.ts";

export interface ManagerOptions {
  readonly kube: KubeClient;
  readonly cache: ArtifactCache;
  readonly concurrency: number;
  readonly resyncMs?: number;
  readonly metrics?: ControllerMetrics;
}

export function jsonLog(message: string, fields: Record<string, unknown> = {}): void {
  process.stderr.write(`${JSON.stringify({ level: "info", ts: new Date().toISOString(), msg: message, ...fields })}\n`);
}

/** Reconcile when the spec changed, a reconcile was requested, or the object is being deleted; not on our own status writes. */
function needsReconcile(object: OCIRepository | Kustomization, previous: OCIRepository | Kustomization | undefined): boolean {
  if (!previous || object === previous) return true;
  return object.metadata.generation !== previous.metadata.generation
    || object.metadata.annotations?.[REQUESTED_AT_ANNOTATION] !== previous.metadata.annotations?.[REQUESTED_AT_ANNOTATION]
    || object.metadata.deletionTimestamp !== previous.metadata.deletionTimestamp;
}

export class Manager {
  readonly #informer: Informer<OCIRepository>;
  readonly #queue: WorkQueue;
  readonly #kustomizations: Informer<Kustomization>;
  readonly #kustomizationQueue: WorkQueue;
  readonly metrics: ControllerMetrics;
  #started = false;

  constructor(options: ManagerOptions) {
    this.metrics = options.metrics ?? new ControllerMetrics();
    const reconciler = new OCIRepositoryReconciler({ kube: options.kube, cache: options.cache, log: jsonLog, recordEvents: true });
    this.#queue = new WorkQueue(
      async (key) => {
        const object = this.#informer.get(key);
        if (!object) return {};
        const started = Date.now();
        try {
          const result = await reconciler.reconcile(object);
          this.metrics.recordReconcile("OCIRepository", "success", (Date.now() - started) / 1000);
          jsonLog("reconciled", { kind: "OCIRepository", object: key, durationMs: Date.now() - started });
          return result;
        } catch (error) {
          this.metrics.recordReconcile("OCIRepository", "error", (Date.now() - started) / 1000);
          throw error;
        }
      },
      {
        concurrency: options.concurrency,
        minRetryMs: 750,
        maxRetryMs: 15 * 60_000,
        onError: (key, error) => jsonLog("reconcile failed", { kind: "OCIRepository", object: key, error: (error as Error).message }),
      },
    );
    this.#informer = new Informer<OCIRepository>(options.kube, {
      type: OCI_REPOSITORY,
      resyncMs: options.resyncMs ?? 10 * 60_000,
      silenceMs: 6 * 60_000,
      log: jsonLog,
      onUpsert: (object, previous) => {
        if (needsReconcile(object, previous)) this.#queue.add(objectKey(object));
        // A new artifact revision is what Kustomizations wait for: reconcile those that use this source.
        if (object.status?.artifact?.revision !== previous?.status?.artifact?.revision) {
          for (const key of this.#kustomizationsOf(object)) this.#kustomizationQueue.add(key);
        }
      },
      onDelete: (object) => this.#queue.forget(objectKey(object)),
    });

    const kustomizations = new KustomizationReconciler({ kube: options.kube, cache: options.cache, log: jsonLog });
    this.#kustomizationQueue = new WorkQueue(
      async (key) => {
        const object = this.#kustomizations.get(key);
        if (!object) return {};
        const started = Date.now();
        try {
          const result = await kustomizations.reconcile(object);
          this.metrics.recordReconcile("Kustomization", "success", (Date.now() - started) / 1000);
          jsonLog("reconciled", { kind: "Kustomization", object: key, durationMs: Date.now() - started });
          return result;
        } catch (error) {
          this.metrics.recordReconcile("Kustomization", "error", (Date.now() - started) / 1000);
          throw error;
        }
      },
      {
        concurrency: options.concurrency,
        minRetryMs: 750,
        maxRetryMs: 15 * 60_000,
        onError: (key, error) => jsonLog("reconcile failed", { kind: "Kustomization", object: key, error: (error as Error).message }),
      },
    );
    this.#kustomizations = new Informer<Kustomization>(options.kube, {
      type: KUSTOMIZATION,
      resyncMs: options.resyncMs ?? 10 * 60_000,
      silenceMs: 6 * 60_000,
      log: jsonLog,
      onUpsert: (object, previous) => {
        if (needsReconcile(object, previous)) this.#kustomizationQueue.add(objectKey(object));
      },
      onDelete: (object) => this.#kustomizationQueue.forget(objectKey(object)),
    });
  }

  #kustomizationsOf(source: OCIRepository): string[] {
    return this.#kustomizations
      .all()
      .filter((ks) => ks.spec.sourceRef.name === source.metadata.name)
      .filter((ks) => (ks.spec.sourceRef.namespace ?? ks.metadata.namespace) === source.metadata.namespace)
      .map(objectKey);
  }

  get started(): boolean {
    return this.#started;
  }

  async start(): Promise<void> {
    this.metrics.queueDepth = () => this.#queue.depth + this.#kustomizationQueue.depth;
    await this.#kustomizations.start();
    await this.#informer.start();
    this.#started = true;
    jsonLog("controller started", { kinds: ["OCIRepository", "Kustomization"] });
  }

  async stop(): Promise<void> {
    this.#informer.stop();
    this.#kustomizations.stop();
    await Promise.all([this.#queue.shutdown(), this.#kustomizationQueue.shutdown()]);
  }
}
