// The Kustomization reconciler: build the source artifact's path, apply it with server-side apply in stages,
// record the inventory, prune what left the artifact, and optionally wait for the applied workloads.
import { join } from "node:path";
import { setTimeout as sleep } from "node:timers/promises";
import {
  KUSTOMIZE_GROUP,
  KUSTOMIZE_VERSION,
  KustomizationSpec,
  type KustomizationSpecType,
  type KustomizationStatusType,
} from "../api/kustomize.ts";
import { specDurationMs } from "../api/duration.ts";
import type { ConditionType } from "../api/meta.ts";
import { Applier, refOf } from "../apply/apply.ts";
import type { ArtifactCache } from "../artifact/cache.ts";
import { parseEntry, staleEntries, toEntry } from "../inventory/inventory.ts";
import type { CustomObject, KubeClient, ResourceType } from "../kube/client.ts";
import { buildManifests, type ManifestObject } from "../kustomize/build.ts";
import { removeCondition, setCondition } from "./conditions.ts";
import { FINALIZER, OCI_REPOSITORY, type OCIRepository, REQUESTED_AT_ANNOTATION } from "./ocirepository.ts";

export const KUSTOMIZATION: ResourceType = { group: KUSTOMIZE_GROUP, version: KUSTOMIZE_VERSION, plural: "kustomizations" };
export const NAME_LABEL = `${KUSTOMIZE_GROUP}/name`;
export const NAMESPACE_LABEL = `${KUSTOMIZE_GROUP}/namespace`;

export type Kustomization = CustomObject<KustomizationSpecType, KustomizationStatusType>;

class KustomizationFailure extends Error {
  readonly reason: string;
  readonly requeueAfterMs?: number;
  constructor(reason: string, message: string, requeueAfterMs?: number) {
    super(message);
    this.reason = reason;
    if (requeueAfterMs !== undefined) this.requeueAfterMs = requeueAfterMs;
  }
}

export class KustomizationReconciler {
  readonly #kube: KubeClient;
  readonly #cache: ArtifactCache;
  readonly #applier: Applier;
  readonly #log: (message: string, fields?: Record<string, unknown>) => void;

  constructor(deps: { kube: KubeClient; cache: ArtifactCache; log: (message: string, fields?: Record<string, unknown>) => void }) {
    this.#kube = deps.kube;
    this.#cache = deps.cache;
    this.#applier = new Applier(deps.kube);
    this.#log = deps.log;
  }

  async reconcile(object: Kustomization): Promise<{ requeueAfterMs?: number }> {
    const { metadata } = object;
    const spec = KustomizationSpec.parse(object.spec);
    const inventory = object.status?.inventory?.entries ?? [];
    if (metadata.deletionTimestamp) {
      if (spec.prune) await this.#prune(inventory, object);
      if (metadata.finalizers?.includes(FINALIZER)) {
        await this.#kube.setFinalizers(KUSTOMIZATION, metadata, metadata.finalizers.filter((finalizer) => finalizer !== FINALIZER));
      }
      return {};
    }
    if (!metadata.finalizers?.includes(FINALIZER)) {
      await this.#kube.setFinalizers(KUSTOMIZATION, metadata, [...(metadata.finalizers ?? []), FINALIZER]);
    }
    if (spec.suspend) return {};

    const generation = metadata.generation ?? 0;
    const interval = specDurationMs(spec.interval);
    const timeoutMs = Math.max(30_000, spec.timeout ? specDurationMs(spec.timeout) : interval - 30_000);
    let conditions: ConditionType[] = [...(object.status?.conditions ?? [])];
    const requestedAt = metadata.annotations?.[REQUESTED_AT_ANNOTATION];
    const handled = requestedAt ? { lastHandledReconcileAt: requestedAt } : {};
    try {
      const { revision, objects } = await this.#build(object, spec);
      const applied = await this.#applier.apply(objects, { timeoutMs });
      const entries = objects.map((manifest) => toEntry(refOf(manifest)));
      const pruned = spec.prune ? await this.#prune(staleEntries(inventory, entries), object) : [];
      if (spec.wait) {
        await this.#waitForWorkloads(objects, timeoutMs);
        conditions = setCondition(conditions, "Healthy", "True", "Succeeded", "Health check passed", generation);
      }
      const changed = applied.changes.filter((change) => change.action !== "unchanged").length;
      this.#log("applied", { object: `${metadata.namespace}/${metadata.name}`, revision, objects: entries.length, changed, pruned: pruned.length });
      const message = `Applied revision: ${revision}`;
      conditions = removeCondition(removeCondition(conditions, "Reconciling"), "Stalled");
      conditions = setCondition(conditions, "Ready", "True", "ReconciliationSucceeded", message, generation);
      await this.#writeStatus(object, {
        ...object.status,
        conditions,
        observedGeneration: generation,
        lastAppliedRevision: revision,
        lastAttemptedRevision: revision,
        inventory: { entries },
        ...handled,
      });
      return { requeueAfterMs: Math.round(interval * (0.95 + Math.random() * 0.1)) };
    } catch (error) {
      const failure = error instanceof KustomizationFailure ? error : new KustomizationFailure("ReconciliationFailed", (error as Error).message);
      if (spec.wait && failure.reason === "HealthCheckFailed") {
        conditions = setCondition(conditions, "Healthy", "False", failure.reason, failure.message, generation);
      }
      conditions = setCondition(conditions, "Ready", "False", failure.reason, failure.message, generation);
      await this.#writeStatus(object, { ...object.status, conditions, ...handled });
      if (failure.requeueAfterMs !== undefined) return { requeueAfterMs: failure.requeueAfterMs };
      throw failure;
    }
  }

  async #build(object: Kustomization, spec: KustomizationSpecType): Promise<{ revision: string; objects: ManifestObject[] }> {
    const sourceNamespace = spec.sourceRef.namespace ?? object.metadata.namespace;
    const source = await this.#kube.get<OCIRepository>(OCI_REPOSITORY, sourceNamespace, spec.sourceRef.name);
    if (!source) {
      throw new KustomizationFailure("ArtifactFailed", `OCIRepository '${sourceNamespace}/${spec.sourceRef.name}' not found`, 30_000);
    }
    const artifact = source.status?.artifact;
    if (!artifact) throw new KustomizationFailure("ArtifactFailed", "Source artifact not found, retrying in 30s", 30_000);
    let objects: ManifestObject[];
    try {
      objects = await buildManifests(join(this.#cache.root, artifact.path), spec.path);
    } catch (error) {
      throw new KustomizationFailure("BuildFailed", (error as Error).message);
    }
    const namespace = spec.targetNamespace ?? object.metadata.namespace;
    objects = await this.#applier.resolveNamespaces(objects, namespace, spec.targetNamespace !== undefined);
    // Owner labels mark what this Kustomization manages, so pruning never deletes what it did not create.
    objects = objects.map((manifest) => ({
      ...manifest,
      metadata: {
        ...manifest.metadata,
        labels: { ...manifest.metadata.labels, [NAME_LABEL]: object.metadata.name, [NAMESPACE_LABEL]: object.metadata.namespace },
      },
    }));
    return { revision: artifact.revision, objects };
  }

  async #prune(stale: ReturnType<typeof staleEntries>, owner: Kustomization): Promise<string[]> {
    const refs = stale.map(parseEntry);
    const deleted = await this.#applier.delete(refs, { [NAME_LABEL]: owner.metadata.name, [NAMESPACE_LABEL]: owner.metadata.namespace });
    if (deleted.length > 0) this.#log("pruned", { object: `${owner.metadata.namespace}/${owner.metadata.name}`, deleted });
    return deleted;
  }

  /** Deployments must be Available with every replica updated; other kinds count as ready once applied. */
  async #waitForWorkloads(objects: readonly ManifestObject[], timeoutMs: number): Promise<void> {
    const deployments = objects.filter((object) => object.kind === "Deployment");
    const deadline = Date.now() + timeoutMs;
    for (const deployment of deployments) {
      for (;;) {
        const current = await this.#applier.read(deployment);
        type DeploymentStatus = { observedGeneration?: number; updatedReplicas?: number; availableReplicas?: number };
        const status = (current as { status?: DeploymentStatus }).status ?? {};
        const generation = (current as { metadata?: { generation?: number } }).metadata?.generation ?? 0;
        const wanted = (current as { spec?: { replicas?: number } }).spec?.replicas ?? 1;
        const ready = (status.observedGeneration ?? 0) >= generation
          && (status.updatedReplicas ?? 0) >= wanted
          && (status.availableReplicas ?? 0) >= wanted;
        if (ready) break;
        if (Date.now() > deadline) {
          throw new KustomizationFailure("HealthCheckFailed", `Deployment/${deployment.metadata.namespace}/${deployment.metadata.name} is not ready: ${status.availableReplicas ?? 0}/${wanted} available`);
        }
        await sleep(500);
      }
    }
  }

  async #writeStatus(object: Kustomization, status: KustomizationStatusType): Promise<void> {
    if (JSON.stringify(status) === JSON.stringify(object.status ?? {})) return;
    await this.#kube.patchStatus(KUSTOMIZATION, object.metadata.namespace, object.metadata.name, status);
  }
}
