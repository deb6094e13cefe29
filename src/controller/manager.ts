// Runs reconcilers: an informer feeds a work queue; reconcile results decide requeues. Logs are JSON lines.
import type { ArtifactCache } from "../artifact/cache.ts";
import type { KubeClient } from "../kube/client.ts";
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
function needsReconcile(object: OCIRepository, previous: OCIRepository | undefined): boolean {
  if (!previous || object === previous) return true;
  return object.metadata.generation !== previous.metadata.generation
    || object.metadata.annotations?.[REQUESTED_AT_ANNOTATION] !== previous.metadata.annotations?.[REQUESTED_AT_ANNOTATION]
    || object.metadata.deletionTimestamp !== previous.metadata.deletionTimestamp;
}

export class Manager {
  readonly #informer: Informer<OCIRepository>;
  readonly #queue: WorkQueue;
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
      },
      onDelete: (object) => this.#queue.forget(objectKey(object)),
    });
  }

  get started(): boolean {
    return this.#started;
  }

  async start(): Promise<void> {
    this.metrics.queueDepth = () => this.#queue.depth;
    await this.#informer.start();
    this.#started = true;
    jsonLog("controller started", { kinds: ["OCIRepository"] });
  }

  async stop(): Promise<void> {
    this.#informer.stop();
    await this.#queue.shutdown();
  }
}
