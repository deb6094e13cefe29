// The Kustomization reconciler: build the source artifact's path, apply it with server-side apply in stages,
// record the inventory, prune what left the artifact, and wait for health, reporting kstatus conditions.
import { pendingRequest } from "../api/flux-annotations.ts";
import { setTimeout as sleep } from "node:timers/promises";
import {
  KUSTOMIZE_GROUP,
  KUSTOMIZE_VERSION,
  KustomizationSpec,
  type KustomizationSpecType,
  type KustomizationStatusType,
  type InventoryEntryType,
} from "../api/kustomize.ts";
import { formatDuration, specDurationMs } from "../api/duration.ts";
import { mapBounded } from "../concurrency.ts";
import { deadlineExceeded, deadlineSignal, outsideDeadline, withDeadline } from "../deadline.ts";
import { CelExpressionError, compileReadyExpression, HealthExpressions } from "../cel/expressions.ts";
import { evaluateHealthInWorker, evaluateReadyInWorker } from "../cel/evaluate-in-worker.ts";
import type { ArtifactType, ConditionType } from "../api/meta.ts";
import { type Applier, ApplyError, type Change } from "../apply/apply.ts";
import { describeObject } from "../apply/policy.ts";
import { isSopsEncryptedSecret } from "../decryption/built-objects.ts";
import { compileIgnoreRules } from "../apply/drift-ignore.ts";
import type { ArtifactCache } from "../artifact/cache.ts";
import { jobsDeletedWhenFinished } from "../health/job-ttl.ts";
import { computeHealth, type HealthResult, summarizeUnhealthy } from "../health/kstatus.ts";
import { inventoryId, type ObjectRef, parseEntry, staleEntries } from "../inventory/inventory.ts";
import type { CustomObject, KubeClient, ResourceType } from "../kube/client.ts";
import type { ManifestObject } from "../kustomize/build.ts";
import type { Sandbox } from "../sandbox/sandbox.ts";
import { findCondition, removeCondition, setCondition } from "./conditions.ts";
import { SecretValues } from "./secret-values.ts";
import { buildKustomization, ownerLabels } from "./kustomization-build.ts";
import { healthCheckRefs } from "./kustomization-health.ts";
import { historyDigest, type HistoryStatus, upsertHistory } from "./kustomization-history.ts";
import {
  dependencyNotReady,
  KustomizationFailure,
  readFor,
  refusalOf,
  type Target,
  Targets,
  TENANT_LOCKDOWN_FLAG,
} from "./kustomization-inputs.ts";
import { FINALIZER, OCI_REPOSITORY, type OCIRepository } from "./ocirepository.ts";

export const KUSTOMIZATION: ResourceType = { group: KUSTOMIZE_GROUP, version: KUSTOMIZE_VERSION, plural: "kustomizations" };
export { NAME_LABEL, NAMESPACE_LABEL } from "./kustomization-build.ts";
const REVISION_ANNOTATION = `${KUSTOMIZE_GROUP}/revision`;

export type Kustomization = CustomObject<KustomizationSpecType, KustomizationStatusType>;
export { buildKustomization } from "./kustomization-build.ts";

export interface KustomizationReconcilerOptions {
  readonly kube: KubeClient;
  readonly cache: ArtifactCache;
  readonly log: (message: string, fields?: Record<string, unknown>) => void;
  readonly recordEvents?: boolean;
  /** Confines kustomize to the build copy. Left out only where every artifact is trusted (--insecure-unconfined-builds). */
  readonly sandbox?: Sandbox;
  /** Refuse sourceRefs and dependsOn in other namespaces (Flux's --no-cross-namespace-refs). */
  readonly noCrossNamespaceRefs?: boolean;
  /** Refuse a targetNamespace other than the Kustomization's own namespace. */
  readonly noCrossNamespaceTargets?: boolean;
  /** Impersonated when a Kustomization names no serviceAccountName (multi-tenancy lockdown). */
  readonly defaultServiceAccount?: string;
  /**
   * --tenant-lockdown: both refusals above, a ServiceAccount for every Kustomization, and what a Kustomization names
   * (source, dependencies, substituteFrom, kubeConfig Secret) read as that ServiceAccount, not as the controller.
   */
  readonly tenantLockdown?: boolean;
  /** How soon to look again at a Kustomization waiting for its dependencies or source. */
  readonly requeueDependencyMs?: number;
  /** How often health is polled while waiting. */
  readonly healthPollMs?: number;
  /**
   * Brings a source's stored artifact into this controller's cache when it is not there: a source another shard
   * reconciles (--watch-label-selector) stores its artifact in that controller's cache, not this one's.
   */
  readonly fetchArtifact?: (source: OCIRepository) => Promise<void>;
}

type PruneFailure = { entry: InventoryEntryType; error: string };

/** A reconcile that got as far as a build: the digest and revisions status.history records, and when it started. */
interface Built {
  readonly digest: string;
  readonly metadata: Readonly<Record<string, string>>;
  readonly started: number;
}

/** A health check's read of one object: the object (undefined when it does not exist), or why it could not be read. */
type HealthRead = { readonly object?: unknown; readonly error?: string };

/** A health check in progress: what was applied, for which revision, and until when to wait. */
interface HealthWait {
  readonly revision: string;
  readonly generation: number;
  readonly requestedAt?: string;
  readonly refs: readonly ObjectRef[];
  readonly target: Target;
  readonly applied: readonly Change[];
  readonly started: number;
  readonly deadline: number;
  /** What was built, for status.history when the health check ends. */
  readonly built: Built;
  /** Inventory ids of Jobs the cluster deletes once finished: gone counts as done (Flux's JobsWithTTL). */
  readonly jobsDeletedWhenFinished: ReadonlySet<string>;
  /** spec.healthCheckExprs, for the objects whose group and kind they cover. */
  readonly expressions?: { readonly checks: KustomizationSpecType["healthCheckExprs"] & object; readonly compiled: HealthExpressions };
}

/** Flux's GetTimeout: spec.timeout, else interval - 30s, and never under 30s. */
function timeoutOf(spec: KustomizationSpecType): number {
  return Math.max(30_000, spec.timeout ? specDurationMs(spec.timeout) : specDurationMs(spec.interval) - 30_000);
}

/** Interval with ±5% jitter, at least a second: a zero interval must not turn into a busy loop. */
const jitter = (ms: number) => Math.round(Math.max(ms, 1000) * (0.95 + Math.random() * 0.1));

export class KustomizationReconciler {
  readonly #options: KustomizationReconcilerOptions;
  readonly #targets: Targets;
  readonly #healthWaits = new Map<string, HealthWait>();

  constructor(options: KustomizationReconcilerOptions) {
    this.#options = options;
    this.#targets = new Targets(options.kube, { defaultServiceAccount: options.defaultServiceAccount, lockdown: options.tenantLockdown });
  }

  /**
   * One reconcile, bounded by the spec's timeout: every Kubernetes request, the kustomize build and health reads stop
   * at the deadline, so an unresponsive target cluster holds a worker for that long at most.
   */
  reconcile(cached: Kustomization): Promise<{ requeueAfterMs?: number }> {
    const parsed = KustomizationSpec.safeParse(cached.spec);
    const deadlineMs = parsed.success ? timeoutOf(parsed.data) : 30_000;
    return withDeadline(deadlineMs, () => this.#reconcile(cached));
  }

  async #reconcile(cached: Kustomization): Promise<{ requeueAfterMs?: number }> {
    // The informer's copy can lag behind this controller's own last status write: a reconcile of the next revision
    // that started from it would prune with the inventory before the last one and orphan what that one applied.
    // The object is read fresh instead (which also leaves the informer's copy untouched for its comparisons).
    const object = await this.#options.kube.get<Kustomization>(KUSTOMIZATION, cached.metadata.namespace, cached.metadata.name);
    if (!object) return {};
    const { metadata } = object;
    const parsed = KustomizationSpec.safeParse(object.spec);
    if (!parsed.success) return this.#invalidSpec(object, parsed.error.message);
    const spec = parsed.data;
    if (metadata.deletionTimestamp) return this.#finalize(object, spec);
    if (!metadata.finalizers?.includes(FINALIZER)) {
      await this.#options.kube.setFinalizers(KUSTOMIZATION, metadata, [...(metadata.finalizers ?? []), FINALIZER]);
    }
    if (spec.suspend) return {};

    const generation = metadata.generation ?? 0;
    const interval = specDurationMs(spec.interval);
    const retryMs = spec.retryInterval ? specDurationMs(spec.retryInterval) : undefined;
    const timeoutMs = timeoutOf(spec);
    const started = Date.now();
    const status: KustomizationStatusType = { ...object.status };
    const requestedAt = pendingRequest(metadata.annotations);
    if (requestedAt) status.lastHandledReconcileAt = requestedAt;
    let conditions: ConditionType[] = [...(status.conditions ?? [])];
    let revision: string | undefined;
    let pollingHealth = false;
    let built: Built | undefined;
    const secrets = new SecretValues();
    try {
      const expressions = healthExpressionsOf(spec);
      this.#checkCrossNamespace(object, spec);
      if (this.#options.tenantLockdown) await this.#checkServiceAccount(metadata.namespace, spec);
      const reader = this.#targets.readerFor(metadata.namespace, spec);
      const artifact = await this.#artifact(object, spec, reader);
      revision = artifact.revision;
      const key = `${metadata.namespace}/${metadata.name}`;
      const waiting = this.#healthWaits.get(key);
      this.#healthWaits.delete(key);
      let applied: readonly Change[];
      let health: HealthWait | undefined;
      if (waiting && waiting.revision === revision && waiting.generation === generation && waiting.requestedAt === requestedAt) {
        // Applied and pruned already; only the health check was still running.
        applied = waiting.applied;
        health = waiting;
        built = waiting.built;
      } else {
        // A new revision, spec or request cancels a running health check and starts over.
        await this.#checkDependencies(object, spec, revision, reader);
        if (revision !== status.lastAppliedRevision || generation !== status.observedGeneration) {
          conditions = setCondition(conditions, "Ready", "Unknown", "Progressing", "Reconciliation in progress", generation);
          conditions = setCondition(conditions, "Reconciling", "True", "Progressing",
            `Fetching manifests for revision ${revision} with a timeout of ${formatDuration(timeoutMs)}`, generation);
          await this.#writeStatus(object, { ...status, conditions, lastAttemptedRevision: revision });
        }
        status.lastAttemptedRevision = revision;

        const target = await this.#targets.for(metadata.namespace, spec);
        const objects = await this.#build(object, spec, artifact, { kube: reader, applier: target.applier }, secrets);
        built = { digest: historyDigest(objects), metadata: historyMetadata(artifact), started };
        applied = await this.#apply(object, spec, objects, target, timeoutMs, status);
        const entries = applied.map((change) => ({ id: change.id, v: change.v }));
        const pruneFailures = spec.prune ? await this.#prune(object, target, staleEntries(status.inventory?.entries ?? [], entries)) : [];
        status.inventory = { entries: [...entries, ...pruneFailures.map((failure) => failure.entry)] };
        if (pruneFailures.length > 0) {
          throw new KustomizationFailure("PruneFailed", `prune failed: ${pruneFailures.map((failure) => failure.error).join("; ")}`);
        }
        const jobs = jobsDeletedWhenFinished(objects);
        health = await this.#healthWait(object, spec, applied, target, { timeoutMs, revision, requestedAt, built, jobs }, expressions);
        if (!health) conditions = removeCondition(conditions, "Healthy");
        else if (applied.some((change) => change.action === "created" || change.action === "configured") || revision !== status.lastAppliedRevision) {
          conditions = setCondition(conditions, "Reconciling", "True", "Progressing",
            `Running health checks for revision ${revision} with a timeout of ${formatDuration(timeoutMs)}`, generation);
          if (conditions.find((condition) => condition.type === "Healthy")?.status !== "True") {
            conditions = setCondition(conditions, "Healthy", "Unknown", "Progressing", "Health check in progress", generation);
          }
          await this.#writeStatus(object, { ...status, conditions });
        }
      }
      if (health) {
        // Between polls the worker is free for other Kustomizations; the next poll is a requeue.
        pollingHealth = true;
        if (!(await this.#pollHealth(health))) {
          this.#healthWaits.set(key, health);
          return { requeueAfterMs: Math.min(this.#options.healthPollMs ?? 2_000, Math.max(100, health.deadline - Date.now())) };
        }
        conditions = setCondition(conditions, "Healthy", "True", "Succeeded", `Health check passed in ${formatDuration(Date.now() - health.started)}`, generation);
      }
      const entries = status.inventory?.entries ?? [];

      conditions = removeCondition(removeCondition(conditions, "Reconciling"), "Stalled");
      conditions = setCondition(conditions, "Ready", "True", "ReconciliationSucceeded", `Applied revision: ${revision}`, generation);
      const origin = artifact.metadata?.["org.opencontainers.image.revision"];
      // Status is written as a merge patch: a field that no longer applies must be sent as null to go away.
      const staleOrigin = !origin && status.lastAppliedOriginRevision !== undefined;
      delete status.lastAppliedOriginRevision;
      recordHistory(status, built, "ReconciliationSucceeded");
      await this.#writeStatus(object, {
        ...status,
        conditions,
        observedGeneration: generation,
        lastAppliedRevision: revision,
        ...(origin ? { lastAppliedOriginRevision: origin } : {}),
        ...(staleOrigin ? ({ lastAppliedOriginRevision: null } as unknown as object) : {}),
      });
      const changed = applied.filter((change) => change.action === "created" || change.action === "configured");
      this.#options.log("applied", {
        object: `${metadata.namespace}/${metadata.name}`, revision, objects: entries.length, changed: changed.length, durationMs: Date.now() - started,
      });
      return { requeueAfterMs: jitter(interval) };
    } catch (error) {
      const failure = failureOf(error, timeoutMs, secrets);
      conditions = setCondition(conditions, "Ready", "False", failure.reason, failure.message, generation);
      if (failure.reason === "HealthCheckFailed" || (pollingHealth && failure.reason === "AccessDenied")) {
        conditions = setCondition(conditions, "Healthy", "False", failure.reason, failure.message, generation);
      }
      if (failure.disposition === "stall") {
        conditions = removeCondition(conditions, "Reconciling");
        conditions = setCondition(conditions, "Stalled", "True", failure.reason,
          `Reconciliation failed terminally due to configuration error: ${failure.message}`, generation);
      } else {
        conditions = removeCondition(conditions, "Stalled");
        conditions = setCondition(conditions, "Reconciling", "True", "ProgressingWithRetry", failure.message, generation);
      }
      recordHistory(status, built, pollingHealth ? "HealthCheckFailed" : failure.reason === "PruneFailed" ? "PruneFailed" : "ReconciliationFailed");
      await this.#writeStatus(object, { ...status, conditions, ...(failure.disposition === "stall" ? { observedGeneration: generation } : {}) });
      const previous = object.status?.conditions?.find((condition) => condition.type === "Ready");
      // A Kustomization waiting on the same thing for hours should not write an Event every few seconds.
      if (previous?.reason !== failure.reason || previous.message !== failure.message) {
        await this.#event(object, "Warning", failure.reason, failure.message, revision);
      }
      if (failure.disposition === "stall") return {};
      if (failure.disposition === "wait") return { requeueAfterMs: this.#options.requeueDependencyMs ?? 30_000 };
      // As in Flux, a failure is retried after retryInterval, which defaults to interval: a fast backoff would
      // overwrite Ready=False with "in progress" before anyone could read it, and hammer a broken cluster.
      return { requeueAfterMs: jitter(retryMs ?? interval) };
    }
  }

  /** A spec the schema refuses (the CRD and this controller disagree): stall, but never block deletion. */
  async #invalidSpec(object: Kustomization, message: string): Promise<{ requeueAfterMs?: number }> {
    const { metadata } = object;
    if (metadata.deletionTimestamp) {
      const finalizers = metadata.finalizers ?? [];
      if (finalizers.includes(FINALIZER)) {
        await this.#options.kube.setFinalizers(KUSTOMIZATION, metadata, finalizers.filter((finalizer) => finalizer !== FINALIZER));
      }
      return {};
    }
    const generation = metadata.generation ?? 0;
    let conditions = setCondition(object.status?.conditions ?? [], "Ready", "False", "InvalidSpec", message, generation);
    conditions = removeCondition(conditions, "Reconciling");
    conditions = setCondition(conditions, "Stalled", "True", "InvalidSpec", `Reconciliation failed terminally due to configuration error: ${message}`, generation);
    await this.#writeStatus(object, { ...object.status, conditions, observedGeneration: generation });
    return {};
  }

  #checkCrossNamespace(object: Kustomization, spec: KustomizationSpecType): void {
    const own = object.metadata.namespace;
    const lockdown = this.#options.tenantLockdown === true;
    const denied = (what: string, flag: string) =>
      new KustomizationFailure("AccessDenied", `${what} is not allowed: this controller runs with ${flag}`, "stall");
    if ((lockdown || this.#options.noCrossNamespaceTargets) && spec.targetNamespace && spec.targetNamespace !== own) {
      throw denied(`targetNamespace '${spec.targetNamespace}'`, lockdown ? TENANT_LOCKDOWN_FLAG : "--no-cross-namespace-targets");
    }
    if (!lockdown && !this.#options.noCrossNamespaceRefs) return;
    const flag = lockdown ? TENANT_LOCKDOWN_FLAG : "--no-cross-namespace-refs";
    if (spec.sourceRef.namespace && spec.sourceRef.namespace !== own) {
      throw denied(`cross-namespace sourceRef to '${spec.sourceRef.namespace}/${spec.sourceRef.name}'`, flag);
    }
    const foreign = spec.dependsOn?.find((dependency) => dependency.namespace && dependency.namespace !== own);
    if (foreign) throw denied(`cross-namespace dependsOn '${foreign.namespace}/${foreign.name}'`, flag);
  }

  /** Acting as an account that does not exist would be refused everything; the missing account is named instead. */
  async #checkServiceAccount(namespace: string, spec: KustomizationSpecType): Promise<void> {
    const serviceAccount = this.#targets.requiredServiceAccount(spec);
    if (await this.#options.kube.serviceAccountExists(namespace, serviceAccount)) return;
    throw new KustomizationFailure("AccessDenied",
      `ServiceAccount '${namespace}/${serviceAccount}' not found: under ${TENANT_LOCKDOWN_FLAG} a Kustomization acts only as its ServiceAccount`, "wait");
  }

  /** The artifact the source has stored; waits (ArtifactFailed) until the source and its artifact exist. */
  async #artifact(object: Kustomization, spec: KustomizationSpecType, reader: KubeClient): Promise<ArtifactType> {
    const namespace = spec.sourceRef.namespace ?? object.metadata.namespace;
    const name = `OCIRepository '${namespace}/${spec.sourceRef.name}'`;
    const source = await readFor(`sourceRef ${name}`, reader.get<OCIRepository>(OCI_REPOSITORY, namespace, spec.sourceRef.name));
    if (!source) throw new KustomizationFailure("ArtifactFailed", `${name} not found`, "wait");
    const artifact = source.status?.artifact;
    if (!artifact) {
      // A source that withdrew its artifact (verification no longer holds) says why in its Ready condition.
      const ready = findCondition(source.status?.conditions, "Ready");
      const why = ready?.status === "False" ? `has no artifact: ${ready.message}` : "has no artifact yet";
      throw new KustomizationFailure("ArtifactFailed", `${name} ${why}`, "wait");
    }
    await this.#localArtifact(source, name, artifact);
    return artifact;
  }

  /** Fetches the source's artifact into this controller's cache when it is missing there (fetchArtifact). */
  async #localArtifact(source: OCIRepository, name: string, artifact: ArtifactType): Promise<void> {
    const { cache, fetchArtifact } = this.#options;
    const entry = cache.entryOf("OCIRepository", source.metadata.namespace, source.metadata.name, artifact.path);
    if (!fetchArtifact || !entry || (await cache.has(entry))) return;
    try {
      await fetchArtifact(source);
    } catch (error) {
      throw new KustomizationFailure("ArtifactFailed", `${name}: fetching its artifact ${artifact.revision} into this controller's cache failed: ${(error as Error).message}`, "wait");
    }
    if (!(await cache.has(entry))) {
      throw new KustomizationFailure("ArtifactFailed", `${name}: its artifact ${artifact.revision} is not in this controller's cache yet`, "wait");
    }
  }

  async #checkDependencies(object: Kustomization, spec: KustomizationSpecType, revision: string, reader: KubeClient): Promise<void> {
    for (const reference of spec.dependsOn ?? []) {
      const namespace = reference.namespace ?? object.metadata.namespace;
      const what = `dependsOn Kustomization '${namespace}/${reference.name}'`;
      const dependency = await readFor(what, reader.get<Kustomization>(KUSTOMIZATION, namespace, reference.name));
      if (reference.readyExpr) {
        // As in Flux (without its AdditiveCELDependencyCheck gate), the expression replaces the built-in check.
        await this.#checkReadyExpression(object, `${namespace}/${reference.name}`, reference.readyExpr, dependency);
        continue;
      }
      const sameSource = dependency
        && dependency.spec.sourceRef.name === spec.sourceRef.name
        && (dependency.spec.sourceRef.namespace ?? namespace) === (spec.sourceRef.namespace ?? object.metadata.namespace);
      const reason = dependencyNotReady(`${namespace}/${reference.name}`, dependency, sameSource ? revision : undefined);
      if (reason) throw new KustomizationFailure("DependencyNotReady", reason, "wait");
    }
  }

  /** Flux's evalReadyExpr: a bad expression stalls, false or an evaluation error waits for the dependency. */
  async #checkReadyExpression(
    object: Kustomization,
    name: string,
    expression: string,
    dependency: Kustomization | undefined,
  ): Promise<void> {
    try {
      compileReadyExpression(expression);
    } catch (error) {
      if (!(error instanceof CelExpressionError)) throw error;
      throw new KustomizationFailure("InvalidCELExpression", `failed to evaluate dependency ${name}: ${error.message}`, "stall");
    }
    if (!dependency) throw new KustomizationFailure("DependencyNotReady", `dependency '${name}' not found`, "wait");
    const ready = await evaluateReadyInWorker(expression, object, dependency, deadlineSignal()).catch((error: unknown) => {
      throw new KustomizationFailure("DependencyNotReady", `dependency '${name}': ${(error as Error).message}`, "wait");
    });
    if (!ready) throw new KustomizationFailure("DependencyNotReady", `dependency '${name}' is not ready according to readyExpr eval`, "wait");
  }

  async #build(
    object: Kustomization,
    spec: KustomizationSpecType,
    artifact: ArtifactType,
    clients: { readonly kube: KubeClient; readonly applier: Applier },
    secrets: SecretValues,
  ): Promise<ManifestObject[]> {
    const namespace = spec.sourceRef.namespace ?? object.metadata.namespace;
    const entry = this.#options.cache.entryOf(spec.sourceRef.kind, namespace, spec.sourceRef.name, artifact.path);
    if (!entry) {
      throw new KustomizationFailure("ArtifactFailed", `OCIRepository '${namespace}/${spec.sourceRef.name}' reports an artifact path that is not one of its cache entries`, "wait");
    }
    const options = { sandbox: this.#options.sandbox, secrets, scratchDir: await this.#options.cache.scratchDir() };
    return this.#options.cache.reading(entry, (root) => buildKustomization(root, object, spec, clients, options));
  }

  async #apply(
    object: Kustomization,
    spec: KustomizationSpecType,
    objects: ManifestObject[],
    target: Target,
    timeoutMs: number,
    status: KustomizationStatusType,
  ): Promise<readonly Change[]> {
    const encrypted = objects.find(isSopsEncryptedSecret);
    if (encrypted) {
      throw new KustomizationFailure("ReconciliationFailed",
        `${describeObject(encrypted)} is SOPS encrypted, configuring decryption is required for this secret to be reconciled`);
    }
    try {
      const ignore = spec.ignore?.length ? compileIgnoreRules(spec.ignore) : undefined;
      const { changes } = await target.applier.apply(objects, { timeoutMs, force: spec.force ?? false, ...(ignore ? { ignore } : {}) });
      const summary = changes.filter((change) => change.action === "created" || change.action === "configured");
      if (summary.length > 0) {
        await this.#event(object, "Normal", "Progressing", summary.map((change) => `${change.subject} ${change.action}`).join("\n"), status.lastAttemptedRevision);
      }
      return changes;
    } catch (error) {
      // Objects written before the failure join the inventory, so a later prune can still find them.
      if (error instanceof ApplyError && error.applied.length > 0) {
        const known = new Set((status.inventory?.entries ?? []).map((entry) => entry.id));
        const added = error.applied.filter((change) => !known.has(change.id)).map((change) => ({ id: change.id, v: change.v }));
        status.inventory = { entries: [...(status.inventory?.entries ?? []), ...added] };
      }
      throw new KustomizationFailure("ReconciliationFailed", (error as Error).message);
    }
  }

  /** Deletes stale objects; returns those that could not be deleted, to be kept in the inventory and retried. */
  async #prune(object: Kustomization, target: Target, stale: InventoryEntryType[]): Promise<PruneFailure[]> {
    if (stale.length === 0) return [];
    const { deleted, failed } = await target.applier.delete(stale.map(parseEntry), ownerLabels(object));
    if (deleted.length > 0) {
      this.#options.log("pruned", { object: `${object.metadata.namespace}/${object.metadata.name}`, deleted });
      await this.#event(object, "Normal", "Progressing", deleted.map((id) => `${describeEntry(id, stale)} deleted`).join("\n"), object.status?.lastAttemptedRevision);
    }
    return failed.map((failure) => ({ entry: stale.find((entry) => entry.id === failure.id) as InventoryEntryType, error: failure.error }));
  }

  /** wait: every applied object; else healthChecks (at the versions the cluster prefers); else nothing to wait for. */
  async #healthWait(
    object: Kustomization,
    spec: KustomizationSpecType,
    applied: readonly Change[],
    target: Target,
    reconcile: {
      readonly timeoutMs: number; readonly revision: string; readonly requestedAt: string | undefined; readonly built: Built;
      readonly jobs: ReadonlySet<string>;
    },
    expressions: HealthExpressions | undefined,
  ): Promise<HealthWait | undefined> {
    const { timeoutMs, revision, requestedAt, built, jobs } = reconcile;
    let refs: ObjectRef[];
    if (spec.wait) refs = applied.filter((change) => change.action !== "skipped").map(parseEntry);
    else if (spec.healthChecks?.length) refs = await healthCheckRefs(target.kube, object.metadata, spec.healthChecks);
    else return undefined;
    const started = Date.now();
    return {
      revision,
      generation: object.metadata.generation ?? 0,
      ...(requestedAt ? { requestedAt } : {}),
      refs,
      target,
      applied,
      started,
      deadline: started + timeoutMs,
      built,
      jobsDeletedWhenFinished: jobs,
      ...(expressions && spec.healthCheckExprs ? { expressions: { checks: spec.healthCheckExprs, compiled: expressions } } : {}),
    };
  }

  /**
   * One look at every object's health: kstatus, or spec.healthCheckExprs for the kinds they cover (evaluated in a
   * worker). True when all are Current; throws when one Failed or time is up.
   */
  async #pollHealth(wait: HealthWait): Promise<boolean> {
    const reads = await mapBounded(wait.refs, async (ref): Promise<HealthRead> =>
      // One failed read (a 5xx) makes that object Unknown for this poll, not the whole reconcile a failure; a refusal
      // fails at once, since waiting out the timeout cannot change the answer.
      wait.target.applier.read(ref).then((object) => ({ object }), (error: unknown) => {
        const refusal = refusalOf(error, `health check of ${subjectOf(ref)}`);
        if (refusal) throw refusal;
        return { error: (error as Error).message };
      }));
    const byExpressions = await this.#expressionHealth(wait, reads);
    const results = wait.refs.map((ref, index): { id: string; result: HealthResult } => {
      const read = reads[index] ?? {};
      const missing = read.error === undefined && read.object === undefined;
      const finishedAndDeleted = missing && wait.jobsDeletedWhenFinished.has(inventoryId(ref));
      const result: HealthResult = read.error !== undefined
        ? { status: "Unknown", message: read.error }
        : finishedAndDeleted ? { status: "Current", message: "Job deleted after it finished (ttlSecondsAfterFinished)" }
          : (byExpressions.get(index) ?? computeHealth(read.object));
      return { id: subjectOf(ref), result };
    });
    const unhealthy = results.filter(({ result }) => result.status !== "Current");
    if (unhealthy.length === 0) return true;
    const failed = unhealthy.filter(({ result }) => result.status === "Failed");
    if (failed.length > 0 || Date.now() >= wait.deadline) {
      const elapsed = formatDuration(Date.now() - wait.started);
      throw new KustomizationFailure("HealthCheckFailed", `health check failed after ${elapsed}: ${summarizeUnhealthy(failed.length > 0 ? failed : unhealthy)}`);
    }
    return false;
  }

  /** The health of the read objects that healthCheckExprs cover, by their index in the wait's refs. */
  async #expressionHealth(wait: HealthWait, reads: readonly HealthRead[]): Promise<Map<number, HealthResult>> {
    const expressions = wait.expressions;
    if (!expressions) return new Map();
    const covered = wait.refs.flatMap((ref, index) =>
      expressions.compiled.covers(ref.apiVersion, ref.kind) && reads[index]?.error === undefined ? [index] : []);
    if (covered.length === 0) return new Map();
    try {
      const results = await evaluateHealthInWorker(expressions.checks, covered.map((index) => reads[index]?.object), deadlineSignal());
      return new Map(covered.map((index, position) => [index, results[position] as HealthResult]));
    } catch (error) {
      throw new KustomizationFailure("HealthCheckFailed", `health check failed: ${(error as Error).message}`);
    }
  }

  async #finalize(object: Kustomization, spec: KustomizationSpecType): Promise<{ requeueAfterMs?: number }> {
    const { metadata } = object;
    if (!metadata.finalizers?.includes(FINALIZER)) return {};
    const policy = spec.deletionPolicy ?? "MirrorPrune";
    const inventory = object.status?.inventory?.entries ?? [];
    const deletes = policy === "Delete" || policy === "WaitForTermination" || (policy === "MirrorPrune" && spec.prune);
    if (deletes && !spec.suspend && inventory.length > 0) {
      const target = await this.#deletionTarget(object, spec);
      if (target) {
        const refs = inventory.map(parseEntry);
        const { failed } = await target.applier.delete(refs, ownerLabels(object));
        if (failed.length > 0) throw new Error(`deleting the inventory failed: ${failed.map((failure) => failure.error).join("; ")}`);
        if (policy === "WaitForTermination") {
          const timeoutMs = timeoutOf(spec);
          const deadline = Date.now() + timeoutMs;
          for (;;) {
            // Reads cut short by the reconcile's deadline mean the same as the wait running out: stop waiting.
            const remaining = await mapBounded(refs, (ref) => target.applier.read(ref)).then(
              (objects) => objects.filter(Boolean).length,
              (error: unknown) => {
                if (deadlineExceeded()) return undefined;
                throw error;
              },
            );
            if (remaining === 0) break;
            if (remaining === undefined || Date.now() > deadline) {
              this.#options.log("objects still terminating after the timeout", { object: `${metadata.namespace}/${metadata.name}`, remaining });
              break;
            }
            await sleep(2_000);
          }
        }
      }
    }
    const finalizers = metadata.finalizers.filter((finalizer) => finalizer !== FINALIZER);
    await outsideDeadline(() => this.#options.kube.setFinalizers(KUSTOMIZATION, metadata, finalizers));
    return {};
  }

  /**
   * The cluster to delete from, or undefined when it is gone for good: its kubeConfig Secret or the impersonated
   * ServiceAccount no longer exists (a tenant namespace being deleted removes them first). Transient errors throw,
   * so the finalizer stays and the deletion is retried rather than orphaning the objects.
   */
  async #deletionTarget(object: Kustomization, spec: KustomizationSpecType): Promise<Target | undefined> {
    const { metadata } = object;
    const gone = async (why: string) => {
      this.#options.log("deleting without pruning", { object: `${metadata.namespace}/${metadata.name}`, why });
      await this.#event(object, "Warning", "DeletionSkipped", `the inventory was not deleted: ${why}`);
      return undefined;
    };
    const serviceAccount = this.#targets.serviceAccountOf(spec);
    // A remote cluster is acted on as its kubeconfig's user (impersonating the account there, if at all), so the
    // account must exist here only without one, or under lockdown, where the kubeconfig Secret is read as it.
    const needsLocalAccount = !spec.kubeConfig || this.#options.tenantLockdown;
    if (serviceAccount && needsLocalAccount && !(await this.#options.kube.serviceAccountExists(metadata.namespace, serviceAccount))) {
      return gone(`ServiceAccount '${metadata.namespace}/${serviceAccount}' no longer exists`);
    }
    try {
      return await this.#targets.for(metadata.namespace, spec);
    } catch (error) {
      if (error instanceof KustomizationFailure && error.disposition !== "retry") return gone(error.message);
      throw error;
    }
  }

  /** Events and status writes report the reconcile, so they are sent even after its deadline passed. */
  async #event(object: Kustomization, type: "Normal" | "Warning", reason: string, message: string, revision?: string): Promise<void> {
    if (!this.#options.recordEvents) return;
    await outsideDeadline(() => this.#recordEvent(object, type, reason, message, revision));
  }

  async #recordEvent(object: Kustomization, type: "Normal" | "Warning", reason: string, message: string, revision?: string): Promise<void> {
    const annotations: Record<string, string> = revision ? { [REVISION_ANNOTATION]: revision } : {};
    await this.#options.kube.event(object, type, reason, message, annotations).catch((error: unknown) => {
      this.#options.log("event not recorded", { error: (error as Error).message });
    });
  }

  async #writeStatus(object: Kustomization, status: KustomizationStatusType): Promise<void> {
    if (JSON.stringify(status) === JSON.stringify(object.status ?? {})) return;
    await outsideDeadline(() => this.#options.kube.patchStatus(KUSTOMIZATION, object.metadata.namespace, object.metadata.name, status));
    object.status = status;
  }
}

/**
 * spec.healthCheckExprs, parsed; undefined when there are none. A list that cannot be used stalls with Flux's
 * InvalidCELExpression, naming the entry and the expression: no reconcile can succeed until the spec changes.
 */
function healthExpressionsOf(spec: KustomizationSpecType): HealthExpressions | undefined {
  if (!spec.healthCheckExprs?.length) return undefined;
  try {
    return HealthExpressions.compile(spec.healthCheckExprs);
  } catch (error) {
    if (!(error instanceof CelExpressionError)) throw error;
    throw new KustomizationFailure("InvalidCELExpression", error.message, "stall");
  }
}

/** Flux's history metadata: the artifact's revision and, when it has one, its origin revision. */
function historyMetadata(artifact: ArtifactType): Record<string, string> {
  const origin = artifact.metadata?.["org.opencontainers.image.revision"];
  return { revision: artifact.revision, ...(origin ? { originRevision: origin } : {}) };
}

/** Adds this reconcile's outcome to status.history, when it got as far as a build (as Flux records it). */
function recordHistory(status: KustomizationStatusType, built: Built | undefined, outcome: HistoryStatus): void {
  if (!built) return;
  status.history = upsertHistory(status.history, {
    digest: built.digest, at: new Date(), durationMs: Date.now() - built.started, status: outcome, metadata: built.metadata,
  });
}

/** What a failed reconcile reports: a deadline names itself, and no message carries a Secret's value. */
function failureOf(error: unknown, timeoutMs: number, secrets: SecretValues): KustomizationFailure {
  const failure = deadlineExceeded()
    ? new KustomizationFailure("ReconciliationFailed", `reconciliation did not finish within its timeout of ${formatDuration(timeoutMs)}: ${(error as Error).message}`)
    : error instanceof KustomizationFailure
      ? error
      : new KustomizationFailure("ReconciliationFailed", (error as Error).message);
  const message = secrets.redact(failure.message);
  return message === failure.message ? failure : new KustomizationFailure(failure.reason, message, failure.disposition);
}

function subjectOf(ref: ObjectRef): string {
  return `${ref.kind}/${ref.namespace ? `${ref.namespace}/` : ""}${ref.name}`;
}

function describeEntry(id: string, entries: readonly InventoryEntryType[]): string {
  const entry = entries.find((candidate) => candidate.id === id);
  return entry ? subjectOf(parseEntry(entry)) : id;
}
