// Server-side apply in stages, as Flux orders them: CRDs, Namespaces and cluster roles first (waiting until the
// CRDs are Established), then *Class objects, then everything else. The field manager is "ferry".
import { KubernetesObjectApi, PatchStrategy } from "@kubernetes/client-node";
import { setTimeout as sleep } from "node:timers/promises";
import { type Disposition, FerryError } from "../errors.ts";
import type { ManifestObject } from "../kustomize/build.ts";
import { httpStatusOf, type KubeClient } from "../kube/client.ts";
import { inventoryId, type ObjectRef } from "../inventory/inventory.ts";

export const FIELD_MANAGER = "ferry";

export class ApplyError extends FerryError {
  readonly code = "APPLY_FAILED";
  readonly disposition: Disposition = "retry";
}

export type ChangeAction = "created" | "configured" | "unchanged";

export interface ApplyResult {
  readonly changes: ReadonlyArray<{ readonly id: string; readonly action: ChangeAction }>;
}

function stageOf(object: ManifestObject): number {
  if (object.kind === "CustomResourceDefinition" || object.kind === "Namespace" || object.kind === "ClusterRole") return 0;
  if (object.kind.endsWith("Class")) return 1;
  return 2;
}

function describe(object: ManifestObject): string {
  return `${object.kind}/${object.metadata.namespace ? `${object.metadata.namespace}/` : ""}${object.metadata.name}`;
}

/** client-node keeps its discovery lookup protected; this subclass exposes it for namespace resolution. */
class DiscoveringObjectApi extends KubernetesObjectApi {
  lookup(apiVersion: string, kind: string) {
    return this.resource(apiVersion, kind);
  }
}

export class Applier {
  readonly #api: DiscoveringObjectApi;

  constructor(kube: KubeClient) {
    this.#api = kube.config.makeApiClient(DiscoveringObjectApi);
  }

  async #applyOne(object: ManifestObject): Promise<ChangeAction> {
    const existing = await this.#api.read(object as never).catch((error: unknown) => {
      if (httpStatusOf(error) === 404) return undefined;
      throw error;
    });
    const before = (existing as { metadata?: { resourceVersion?: string } } | undefined)?.metadata?.resourceVersion;
    try {
      const applied = await this.#api.patch(object as never, undefined, undefined, FIELD_MANAGER, true, PatchStrategy.ServerSideApply);
      const after = (applied as { metadata?: { resourceVersion?: string } }).metadata?.resourceVersion;
      if (!existing) return "created";
      return after === before ? "unchanged" : "configured";
    } catch (error) {
      const body = (error as { body?: unknown }).body;
      const detail = typeof body === "string" ? (JSON.parse(body) as { message?: string }).message : (error as Error).message;
      throw new ApplyError(`${describe(object)} apply failed: ${detail}`, { cause: error });
    }
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
      const resource = await this.#api.lookup(object.apiVersion, object.kind).catch(() => undefined);
      if (resource) namespaced = resource.namespaced;
      else {
        const group = object.apiVersion.split("/")[0];
        const fromSet = [...crdsInSet].find((entry) => entry.startsWith(`${group}/${object.kind}/`));
        if (!fromSet) throw new ApplyError(`${describe(object)}: no kind ${object.kind} in ${object.apiVersion} is served (is its CRD installed?)`);
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
      const current = (await this.#api.read(crd as never)) as { status?: { conditions?: Array<{ type: string; status: string }> } };
      if (current.status?.conditions?.some((condition) => condition.type === "Established" && condition.status === "True")) return;
      await sleep(200);
    }
    throw new ApplyError(`${describe(crd)} was not Established within ${timeoutMs} ms`);
  }

  async apply(objects: readonly ManifestObject[], options: { timeoutMs: number; concurrency?: number }): Promise<ApplyResult> {
    const changes: Array<{ id: string; action: ChangeAction }> = [];
    for (const stage of [0, 1, 2]) {
      const batch = objects.filter((object) => stageOf(object) === stage);
      const concurrency = options.concurrency ?? 4;
      for (let index = 0; index < batch.length; index += concurrency) {
        const slice = batch.slice(index, index + concurrency);
        const actions = await Promise.all(slice.map((object) => this.#applyOne(object)));
        slice.forEach((object, position) => changes.push({ id: inventoryId(refOf(object)), action: actions[position] ?? "unchanged" }));
      }
      for (const crd of batch.filter((object) => object.kind === "CustomResourceDefinition")) {
        await this.#waitEstablished(crd, options.timeoutMs);
      }
    }
    return { changes };
  }

  async read(object: ManifestObject): Promise<unknown> {
    return this.#api.read(object as never);
  }

  /**
   * Deletes objects that still carry `ownerLabels` and are not annotated kustomize.ferry.dev/prune: disabled;
   * objects already gone count as deleted. Returns the ids deleted.
   */
  async delete(refs: readonly ObjectRef[], ownerLabels: Readonly<Record<string, string>>): Promise<string[]> {
    const deleted: string[] = [];
    for (const ref of refs) {
      const metadata = { name: ref.name, ...(ref.namespace ? { namespace: ref.namespace } : {}) };
      const spec = { apiVersion: ref.apiVersion, kind: ref.kind, metadata };
      try {
        type Meta = { metadata?: { annotations?: Record<string, string>; labels?: Record<string, string> } };
        const current = (await this.#api.read(spec as never)) as Meta;
        if (current.metadata?.annotations?.["kustomize.ferry.dev/prune"] === "disabled") continue;
        if (Object.entries(ownerLabels).some(([key, value]) => current.metadata?.labels?.[key] !== value)) continue;
        await this.#api.delete(spec as never, undefined, undefined, undefined, undefined, "Background");
        deleted.push(inventoryId(ref));
      } catch (error) {
        if (httpStatusOf(error) !== 404) throw new ApplyError(`deleting ${ref.kind}/${ref.name} failed: ${(error as Error).message}`, { cause: error });
        deleted.push(inventoryId(ref));
      }
    }
    return deleted;
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
