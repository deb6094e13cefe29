// Server-side apply in stages, as Flux orders them: CRDs, Namespaces and cluster roles first (waiting until the
// CRDs are Established), then *Class objects, then everything else. Every object is first planned with a GET and a
// server-side dry-run: an invalid object fails the whole set before anything is written, and an object whose
// dry-run equals the live object is left alone ("unchanged"). The field manager is "ferry".
import {
  ApiException,
  HttpMethod,
  type KubernetesObject,
  KubernetesObjectApi,
  PatchStrategy,
  type ResponseContext,
} from "@kubernetes/client-node";
import { setTimeout as sleep } from "node:timers/promises";
import { type Disposition, FerryError } from "../errors.ts";
import type { ManifestObject } from "../kustomize/build.ts";
import { httpStatusOf, type KubeClient } from "../kube/client.ts";
import { groupOf, inventoryId, type ObjectRef, toEntry } from "../inventory/inventory.ts";
import { type CompiledIgnoreRule, ignoredPaths, matchesIgnoring, payloadIgnoring } from "./drift-ignore.ts";
import {
  appliedAndUntouched,
  describeObject,
  dryRunMatches,
  forceEnabled,
  isImmutableFieldError,
  LAST_APPLIED_ANNOTATION,
  type ManagedFieldsEntry,
  applyExcluded,
  pruneDisabled,
  sortForApply,
  ssaPolicy,
  stageOf,
  takeOverManagedFields,
  withChecksum,
} from "./policy.ts";
import { normalizeForApply } from "./normalize.ts";
import { mapBounded } from "../concurrency.ts";

export const FIELD_MANAGER = "ferry";

export class ApplyError extends FerryError {
  readonly code = "APPLY_FAILED";
  readonly disposition: Disposition = "retry";
  /** Objects written before the failure, so the inventory can keep track of them. */
  applied: readonly Change[] = [];
}

export type ChangeAction = "created" | "configured" | "unchanged" | "skipped";

export interface Change {
  /** The inventory id and version of the object. */
  readonly id: string;
  readonly v: string;
  /** Kind/namespace/name, as kubectl and Flux print it. */
  readonly subject: string;
  readonly action: ChangeAction;
}

export interface ApplyOptions {
  readonly timeoutMs: number;
  /** Requests in flight at once. */
  readonly concurrency?: number;
  /** Recreate objects whose immutable fields changed (spec.force). */
  readonly force?: boolean;
  /** Fields left out of drift detection and never reverted (Kustomization spec.ignore). */
  readonly ignore?: readonly CompiledIgnoreRule[];
}

export interface PruneResult {
  readonly deleted: string[];
  readonly failed: Array<{ id: string; error: string }>;
}

export interface ApplyResult {
  readonly changes: readonly Change[];
}

export interface PlannedChange extends Change {
  readonly live?: unknown;
  /** What the object would look like after the apply (the server-side dry-run), when the server could tell. */
  readonly merged?: unknown;
}

/**
 * What applying one object will do. Only verdicts are kept, not the objects: a plan of the whole set is held until
 * every stage is applied, and live and dry-run copies of large CRDs would not fit a small heap.
 */
interface Plan {
  readonly exists?: boolean;
  /** Applying would change nothing: checksum and fields intact, or the dry-run equals the live object. */
  readonly unchanged?: boolean;
  readonly skip?: boolean;
  /** The kind is not served yet or the namespace does not exist yet: it comes from an earlier stage. */
  readonly deferred?: boolean;
  readonly recreate?: boolean;
  /** JSON patch that hands kubectl's fields to Ferry before the apply (ssa Override, the default). */
  readonly takeOver?: readonly unknown[];
  /** What to apply instead of the manifest: ignored fields that drifted are left out or carry the live value. */
  readonly payload?: ManifestObject;
  /** For `ferry diff`: the live object and the dry-run result. */
  readonly live?: unknown;
  readonly merged?: unknown;
}

/**
 * client-node's generic object API converts objects of built-in kinds through its typed models, which drops
 * fields the models do not name (x-kubernetes-* in CRD schemas, for one). Ferry sends and receives objects as
 * plain JSON instead; this subclass also exposes the protected discovery lookup.
 */
class RawObjectApi extends KubernetesObjectApi {
  lookup(apiVersion: string, kind: string) {
    return this.resource(apiVersion, kind);
  }

  protected override async processResponse<T extends KubernetesObject>(response: ResponseContext): Promise<T> {
    if (response.httpStatusCode >= 200 && response.httpStatusCode <= 299) return JSON.parse(await response.body.text()) as T;
    throw new ApiException(response.httpStatusCode, "Unsuccessful HTTP Request", await response.getBodyAsAny(), response.headers);
  }

  async jsonPatch(object: ManifestObject, operations: readonly unknown[]): Promise<unknown> {
    const context = this.configuration.baseServer.makeRequestContext(await this.specUriPath(object as KubernetesObject, "patch"), HttpMethod.PATCH);
    context.setHeaderParam("Accept", "application/json");
    context.setHeaderParam("Content-Type", PatchStrategy.JsonPatch);
    context.setBody(JSON.stringify(operations));
    return this.requestPromise(context);
  }

  async serverSideApply(object: ManifestObject, options: { dryRun: boolean; fieldManager: string }): Promise<unknown> {
    const context = this.configuration.baseServer.makeRequestContext(await this.specUriPath(object as KubernetesObject, "patch"), HttpMethod.PATCH);
    context.setHeaderParam("Accept", "application/json");
    context.setHeaderParam("Content-Type", PatchStrategy.ServerSideApply);
    if (options.dryRun) context.setQueryParam("dryRun", "All");
    context.setQueryParam("fieldManager", options.fieldManager);
    context.setQueryParam("force", "true");
    context.setBody(JSON.stringify(object));
    return this.requestPromise(context);
  }
}

/**
 * The JSON patch that takes kubectl's fields over and drops its last-applied annotation, guarded by the live
 * resourceVersion so a concurrent writer is not overwritten. Undefined when there is nothing to take over.
 */
function takeOverPatch(object: ManifestObject, live: unknown): unknown[] | undefined {
  type LiveMetadata = { managedFields?: ManagedFieldsEntry[]; annotations?: Record<string, string>; resourceVersion?: string };
  const metadata = (live as { metadata?: LiveMetadata }).metadata;
  const managedFields = takeOverManagedFields(metadata?.managedFields, FIELD_MANAGER, object.apiVersion);
  const lastApplied = metadata?.annotations?.[LAST_APPLIED_ANNOTATION] !== undefined;
  if (!managedFields && !lastApplied) return undefined;
  return [
    { op: "test", path: "/metadata/resourceVersion", value: metadata?.resourceVersion },
    ...(managedFields ? [{ op: "replace", path: "/metadata/managedFields", value: managedFields }] : []),
    ...(lastApplied ? [{ op: "remove", path: `/metadata/annotations/${LAST_APPLIED_ANNOTATION.replace("~", "~0").replace("/", "~1")}` }] : []),
  ];
}

function apiMessage(error: unknown): string {
  const body = (error as { body?: unknown }).body;
  if (typeof body === "string") {
    try {
      return (JSON.parse(body) as { message?: string }).message ?? body;
    } catch {
      return body;
    }
  }
  if (body && typeof body === "object" && typeof (body as { message?: unknown }).message === "string") return (body as { message: string }).message;
  return (error as Error).message;
}

/** Flux's drift check with ignore rules: unchanged when only ignored paths differ; else what to apply. */
function ignoringPlan(object: ManifestObject, live: unknown, dryRun: unknown, paths: readonly string[]): Pick<Plan, "unchanged" | "payload"> {
  if (matchesIgnoring(live, dryRun, paths)) return { unchanged: true };
  return { unchanged: false, payload: payloadIgnoring(object, live, dryRun, paths, FIELD_MANAGER) };
}

/** Runs `work` over `items` with at most `limit` in flight; every item runs, and the errors are returned, not thrown. */
async function inPool<T>(items: readonly T[], limit: number, work: (item: T) => Promise<void>): Promise<Error[]> {
  const outcomes = await mapBounded(items, (item) => work(item).then(() => undefined, (error: unknown) => error as Error), limit);
  return outcomes.filter((outcome): outcome is Error => outcome !== undefined);
}

function combined(errors: readonly Error[]): ApplyError {
  if (errors.length === 1 && errors[0] instanceof ApplyError) return errors[0];
  return new ApplyError(errors.map((error) => error.message).join("; "), { cause: errors[0] });
}

export class Applier {
  readonly #api: RawObjectApi;

  constructor(kube: KubeClient) {
    this.#api = kube.api(RawObjectApi);
  }

  async #get(object: ManifestObject): Promise<unknown> {
    return this.#api.read(object as never).catch((error: unknown) => {
      // A kind no longer served (its CRD was deleted) took its objects with it.
      if (httpStatusOf(error) === 404 || /Unrecognized API version and kind/.test((error as Error).message)) return undefined;
      throw new ApplyError(`${describeObject(object)} could not be read: ${apiMessage(error)}`, { cause: error });
    });
  }

  /** The API resource serving the object's kind, undefined when none does; discovery failures are errors. */
  async #resource(object: ManifestObject) {
    return this.#api.lookup(object.apiVersion, object.kind).catch((error: unknown) => {
      if (httpStatusOf(error) === 404) return undefined;
      throw new ApplyError(`discovery of ${object.apiVersion} failed: ${apiMessage(error)}`, { cause: error });
    });
  }

  async #served(object: ManifestObject): Promise<boolean> {
    return (await this.#resource(object)) !== undefined;
  }

  async #serverSideApply(object: ManifestObject, dryRun: boolean): Promise<unknown> {
    return this.#api.serverSideApply(object, { dryRun, fieldManager: FIELD_MANAGER });
  }

  async #plan(object: ManifestObject, force: boolean, keepObjects = false, ignore: readonly CompiledIgnoreRule[] = []): Promise<Plan> {
    if (applyExcluded(object.metadata)) return { skip: true };
    const policy = ssaPolicy(object.metadata);
    if (!(await this.#served(object))) return { deferred: true };
    const existing = await this.#get(object);
    if (existing && applyExcluded((existing as ManifestObject).metadata)) return { skip: true };
    if (existing && policy === "IfNotPresent") return { skip: true };
    const exists = existing !== undefined;
    const takeOver = exists && policy === "Override" ? takeOverPatch(object, existing) : undefined;
    if (takeOver) {
      await this.#serverSideApply(object, true).catch((error: unknown) => {
        throw new ApplyError(`${describeObject(object)} dry-run failed: ${apiMessage(error)}`, { cause: error });
      });
      return { exists, takeOver, ...(keepObjects ? { live: existing } : {}) };
    }
    if (exists && appliedAndUntouched(object, existing)) return { exists, unchanged: true, ...(keepObjects ? { live: existing } : {}) };
    try {
      const merged = await this.#serverSideApply(object, true);
      const ignored = exists && ignore.length > 0 ? ignoredPaths(ignore, merged as ManifestObject) : [];
      if (ignored.length > 0) {
        return { exists, ...ignoringPlan(object, existing, merged, ignored), ...(keepObjects ? { live: existing, merged } : {}) };
      }
      const unchanged = exists && dryRunMatches(existing, merged);
      return { exists, unchanged, ...(keepObjects ? { live: existing, merged } : {}) };
    } catch (error) {
      const message = apiMessage(error);
      if (httpStatusOf(error) === 404 && /namespaces? .*not found/i.test(message)) return { exists, deferred: true };
      if (exists && httpStatusOf(error) === 422 && isImmutableFieldError(message)) {
        if (force || forceEnabled(object.metadata)) return { exists, recreate: true, ...(keepObjects ? { live: existing } : {}) };
        throw new ApplyError(
          `${describeObject(object)} has an immutable field change (set spec.force or the kustomize.ferry.dev/force: enabled annotation `
          + `to recreate it): ${message}`,
          { cause: error },
        );
      }
      throw new ApplyError(`${describeObject(object)} dry-run failed: ${message}`, { cause: error });
    }
  }

  async #apply(object: ManifestObject): Promise<void> {
    try {
      await this.#serverSideApply(object, false);
    } catch (error) {
      throw new ApplyError(`${describeObject(object)} apply failed: ${apiMessage(error)}`, { cause: error });
    }
  }

  async #recreate(object: ManifestObject, timeoutMs: number): Promise<void> {
    await this.#api.delete(object as never, undefined, undefined, undefined, undefined, "Background").catch((error: unknown) => {
      if (httpStatusOf(error) !== 404) throw new ApplyError(`${describeObject(object)} delete for recreation failed: ${apiMessage(error)}`);
    });
    const deadline = Date.now() + timeoutMs;
    while (await this.#get(object)) {
      if (Date.now() > deadline) throw new ApplyError(`${describeObject(object)} was not deleted within ${timeoutMs} ms for recreation`);
      await sleep(200);
    }
    await this.#apply(object);
  }

  /** Carries out a plan; `replan` when an earlier stage changed something the dry-run may depend on. */
  async #execute(object: ManifestObject, plan: Plan, options: { timeoutMs: number; force: boolean }): Promise<ChangeAction> {
    if (plan.skip) return "skipped";
    if (plan.deferred) {
      if (!(await this.#served(object))) {
        throw new ApplyError(`${describeObject(object)}: no kind ${object.kind} is served in ${object.apiVersion} (is its CRD installed?)`);
      }
      // Its kind or namespace did not exist when it was planned, so neither did the object.
      await this.#apply(object);
      return "created";
    }
    if (plan.unchanged) return "unchanged";
    if (plan.recreate) {
      await this.#recreate(object, options.timeoutMs);
      return "created";
    }
    if (!plan.exists) {
      await this.#apply(object);
      return "created";
    }
    if (plan.takeOver) {
      await this.#api.jsonPatch(object, plan.takeOver).catch((error: unknown) => {
        throw new ApplyError(`${describeObject(object)}: taking over kubectl's fields failed: ${apiMessage(error)}`, { cause: error });
      });
    }
    await this.#apply(plan.payload ?? object);
    return "configured";
  }

  /**
   * Plans every object, fails before writing anything if one is invalid, then applies stage by stage with at most
   * `concurrency` requests in flight, waiting for CRDs to be Established between stages.
   */
  async apply(objects: readonly ManifestObject[], options: ApplyOptions): Promise<ApplyResult> {
    const concurrency = options.concurrency ?? 8;
    const force = options.force ?? false;
    const ignore = options.ignore ?? [];
    const sorted = sortForApply(objects.map((object) => withChecksum(normalizeForApply(object))));
    const plans = new Map<ManifestObject, Plan>();
    // Objects in a namespace this set creates cannot exist yet: no GET or dry-run until the namespace does.
    const newNamespaces = new Set<string>();
    await inPool(sorted.filter((object) => object.kind === "Namespace" && object.apiVersion === "v1"), concurrency, async (namespace) => {
      if (!(await this.#get(namespace))) newNamespaces.add(namespace.metadata.name);
    });
    const planErrors = await inPool(sorted, concurrency, async (object) => {
      const waitsForNamespace = object.metadata.namespace !== undefined && newNamespaces.has(object.metadata.namespace);
      const deferred = waitsForNamespace && !applyExcluded(object.metadata);
      plans.set(object, deferred ? { deferred: true } : await this.#plan(object, force, false, ignore));
    });
    if (planErrors.length > 0) throw combined(planErrors);

    const actions = new Map<ManifestObject, ChangeAction>();
    // A CRD changed in stage 0 may change how its custom resources default; only their dry-runs are stale then.
    const changedKinds = new Set<string>();
    for (const stage of [0, 1, 2]) {
      const batch = sorted.filter((object) => stageOf(object) === stage);
      const errors = await inPool(batch, concurrency, async (object) => {
        let plan = plans.get(object) ?? { deferred: true };
        if (plan.exists && changedKinds.has(`${groupOf(object.apiVersion)}/${object.kind}`)) plan = await this.#plan(object, force, false, ignore);
        actions.set(object, await this.#execute(object, plan, { timeoutMs: options.timeoutMs, force }));
      });
      const written = (object: ManifestObject) => actions.get(object) === "created" || actions.get(object) === "configured";
      for (const crd of batch.filter((object) => object.kind === "CustomResourceDefinition" && written(object))) {
        if (errors.length > 0) break;
        await this.#waitEstablished(crd, options.timeoutMs).catch((error: unknown) => errors.push(error as Error));
      }
      if (errors.length > 0) {
        const failure = combined(errors);
        failure.applied = this.#changes(sorted, actions).filter((change) => change.action === "created" || change.action === "configured");
        throw failure;
      }
      for (const crd of batch) {
        if (crd.kind !== "CustomResourceDefinition" || actions.get(crd) === "unchanged" || actions.get(crd) === "skipped") continue;
        const { group, names } = (crd as { spec?: { group?: string; names?: { kind?: string } } }).spec ?? {};
        changedKinds.add(`${group}/${names?.kind}`);
      }
    }
    return { changes: this.#changes(sorted, actions) };
  }

  #changes(objects: readonly ManifestObject[], actions: ReadonlyMap<ManifestObject, ChangeAction>): Change[] {
    return objects
      .filter((object) => actions.has(object))
      .map((object) => ({ ...toEntry(refOf(object)), subject: describeObject(object), action: actions.get(object) as ChangeAction }));
  }

  /** What applying would do to each object, by server-side dry-run; nothing is written. */
  async plan(objects: readonly ManifestObject[], options: { concurrency?: number; force?: boolean } = {}): Promise<PlannedChange[]> {
    const sorted = sortForApply(objects.map((object) => withChecksum(normalizeForApply(object))));
    const planned = new Map<ManifestObject, PlannedChange>();
    const errors = await inPool(sorted, options.concurrency ?? 8, async (object) => {
      const plan = await this.#plan(object, options.force ?? false, true);
      const base = { ...toEntry(refOf(object)), subject: describeObject(object) };
      let action: ChangeAction;
      if (plan.skip) action = "skipped";
      else if (!plan.exists) action = "created";
      else action = plan.unchanged ? "unchanged" : "configured";
      const shown = { ...(plan.live ? { live: plan.live } : {}), ...(plan.merged ? { merged: plan.merged } : {}) };
      planned.set(object, { ...base, action, ...shown });
    });
    if (errors.length > 0) throw combined(errors);
    return sorted.map((object) => planned.get(object) as PlannedChange);
  }

  /**
   * Puts namespaced objects into `namespace` when they name none (or always, for a targetNamespace), and refuses
   * kinds the cluster does not serve, naming them, before anything is applied.
   */
  async resolveNamespaces(objects: readonly ManifestObject[], namespace: string, override: boolean): Promise<ManifestObject[]> {
    const crdsInSet = new Set(
      objects
        .filter((object) => object.kind === "CustomResourceDefinition")
        .map((crd) => {
          const spec = (crd as { spec?: { group?: string; names?: { kind?: string }; scope?: string } }).spec;
          return `${spec?.group}/${spec?.names?.kind}/${spec?.scope}`;
        }),
    );
    const resolved: ManifestObject[] = [];
    for (const object of objects) {
      let namespaced: boolean;
      const resource = await this.#resource(object);
      if (resource) namespaced = resource.namespaced;
      else {
        const group = object.apiVersion.split("/")[0];
        const fromSet = [...crdsInSet].find((entry) => entry.startsWith(`${group}/${object.kind}/`));
        if (!fromSet) throw new ApplyError(`${describeObject(object)}: no kind ${object.kind} is served in ${object.apiVersion} (is its CRD installed?)`);
        namespaced = fromSet.endsWith("/Namespaced");
      }
      const metadata = { ...object.metadata };
      if (namespaced && (override || !metadata.namespace)) metadata.namespace = namespace;
      if (!namespaced) delete metadata.namespace;
      resolved.push({ ...object, metadata });
    }
    return resolved;
  }

  async #waitEstablished(crd: ManifestObject, timeoutMs: number): Promise<void> {
    const deadline = Date.now() + timeoutMs;
    while (Date.now() < deadline) {
      const current = (await this.#get(crd)) as { status?: { conditions?: Array<{ type: string; status: string }> } } | undefined;
      if (current?.status?.conditions?.some((condition) => condition.type === "Established" && condition.status === "True")) return;
      await sleep(200);
    }
    throw new ApplyError(`${describeObject(crd)} was not Established within ${timeoutMs} ms`);
  }

  /** The live object, or undefined when it does not exist. */
  async read(ref: ObjectRef): Promise<unknown> {
    const metadata = { name: ref.name, ...(ref.namespace ? { namespace: ref.namespace } : {}) };
    return this.#get({ apiVersion: ref.apiVersion, kind: ref.kind, metadata });
  }

  /**
   * Deletes objects that still carry `ownerLabels` and whose live object does not opt out of pruning
   * (kustomize.ferry.dev/prune: disabled, kustomize.ferry.dev/ssa: Ignore); objects already gone count as deleted.
   * Returns the ids deleted; failures are collected so one stuck object does not keep the rest alive.
   */
  async delete(refs: readonly ObjectRef[], ownerLabels: Readonly<Record<string, string>>): Promise<PruneResult> {
    const deleted: string[] = [];
    const failed: Array<{ id: string; error: string }> = [];
    for (const ref of refs) {
      const metadata = { name: ref.name, ...(ref.namespace ? { namespace: ref.namespace } : {}) };
      const spec = { apiVersion: ref.apiVersion, kind: ref.kind, metadata };
      try {
        type Meta = { metadata?: { annotations?: Record<string, string>; labels?: Record<string, string>; uid?: string } };
        const current = (await this.#get(spec)) as Meta | undefined;
        if (current) {
          if (pruneDisabled(current.metadata)) continue;
          if (Object.entries(ownerLabels).some(([key, value]) => current.metadata?.labels?.[key] !== value)) continue;
          // Only the object just checked: one recreated in between by someone else is not ours to delete.
          const preconditions = current.metadata?.uid ? { preconditions: { uid: current.metadata.uid } } : {};
          await this.#api.delete(spec as never, undefined, undefined, undefined, undefined, "Background", preconditions);
        }
        deleted.push(inventoryId(ref));
      } catch (error) {
        if (httpStatusOf(error) === 404) deleted.push(inventoryId(ref));
        else failed.push({ id: inventoryId(ref), error: error instanceof ApplyError ? error.message : `${describeObject(spec)}: ${apiMessage(error)}` });
      }
    }
    return { deleted, failed };
  }
}

export function refOf(object: ManifestObject): ObjectRef {
  return {
    apiVersion: object.apiVersion,
    kind: object.kind,
    name: object.metadata.name,
    ...(object.metadata.namespace ? { namespace: object.metadata.namespace } : {}),
  };
}
