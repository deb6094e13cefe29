// What a Kustomization reconcile gathers before it builds and applies: the cluster it applies to (impersonating a
// ServiceAccount, or a remote cluster from a kubeconfig Secret), the substitution variables, and its dependencies.
import { createHash } from "node:crypto";
import type { KustomizationSpecType } from "../api/kustomize.ts";
import { Applier } from "../apply/apply.ts";
import { type Disposition, FerryError } from "../errors.ts";
import { KubeClient } from "../kube/client.ts";
import { TenantKubeconfigError } from "../kube/tenant-kubeconfig.ts";
import { mergeVariables } from "../kustomize/substitute.ts";
import { findCondition } from "./conditions.ts";
import type { SecretValues } from "./secret-values.ts";

/** Why a reconcile cannot go on: the Flux condition reason to report, and the shared disposition (src/errors.ts). */
export class KustomizationFailure extends FerryError {
  readonly code = "KUSTOMIZATION_FAILURE";
  readonly reason: string;
  readonly disposition: Disposition;
  constructor(reason: string, message: string, disposition: Disposition = "retry") {
    super(message);
    this.reason = reason;
    this.disposition = disposition;
  }
}

export interface Target {
  readonly kube: KubeClient;
  readonly applier: Applier;
}

/** Appliers keep a discovery cache, so one is kept per identity and kubeconfig rather than made per reconcile. */
export class Targets {
  readonly #kube: KubeClient;
  readonly #cache = new Map<string, Target>();
  readonly #defaultServiceAccount: string | undefined;

  constructor(kube: KubeClient, defaultServiceAccount?: string) {
    this.#kube = kube;
    this.#defaultServiceAccount = defaultServiceAccount;
  }

  async for(namespace: string, spec: KustomizationSpecType): Promise<Target> {
    const kubeconfig = spec.kubeConfig ? await this.#kubeconfig(namespace, spec.kubeConfig.secretRef) : undefined;
    const serviceAccount = spec.serviceAccountName ?? this.#defaultServiceAccount;
    const user = serviceAccount ? `system:serviceaccount:${namespace}:${serviceAccount}` : undefined;
    const key = `${kubeconfig ? createHash("sha256").update(kubeconfig.text).digest("hex") : "local"}|${user ?? ""}`;
    const cached = this.#cache.get(key);
    if (cached) return cached;
    const base = kubeconfig ? this.#kubeFrom(kubeconfig.text, kubeconfig.secret) : this.#kube;
    const kube = user ? base.impersonating(user) : base;
    const target = { kube, applier: new Applier(kube) };
    if (this.#cache.size > 256) this.#cache.clear();
    this.#cache.set(key, target);
    return target;
  }

  /** The kubeconfig text of a kubeConfig.secretRef. Secrets are not watched, so problems are retried, not stalled. */
  async #kubeconfig(namespace: string, reference: { name: string; key?: string | undefined }): Promise<{ text: string; secret: string }> {
    const secret = `${namespace}/${reference.name}`;
    const data = await this.#kube.secretData(namespace, reference.name);
    if (!data) throw new KustomizationFailure("ReconciliationFailed", `kubeConfig Secret '${secret}' not found`, "wait");
    const value = reference.key ? data[reference.key] : (data.value ?? data["value.yaml"]);
    if (!value) throw new KustomizationFailure("ReconciliationFailed", `kubeConfig Secret '${secret}' has no key '${reference.key ?? "value"}'`, "wait");
    return { text: value.toString("utf8"), secret };
  }

  #kubeFrom(kubeconfig: string, secret: string): KubeClient {
    try {
      return KubeClient.fromUntrustedString(kubeconfig);
    } catch (error) {
      // A refused kubeconfig stalls: only an edit to the Secret helps, and the periodic resync picks that up.
      const disposition = error instanceof TenantKubeconfigError ? "stall" : "wait";
      throw new KustomizationFailure("ReconciliationFailed", `kubeConfig Secret '${secret}': ${(error as Error).message}`, disposition);
    }
  }
}

/** Variables from substituteFrom (in order, later wins) and substitute (wins over all), as Flux merges them. */
export async function substitutionVariables(
  kube: KubeClient,
  namespace: string,
  spec: KustomizationSpecType,
  secrets?: SecretValues,
): Promise<Record<string, string>> {
  const fromRefs: Array<Record<string, string>> = [];
  for (const reference of spec.postBuild?.substituteFrom ?? []) {
    const data = reference.kind === "ConfigMap"
      ? await kube.configMapData(namespace, reference.name)
      : await kube.secretData(namespace, reference.name).then((secret) =>
          secret && Object.fromEntries(Object.entries(secret).map(([key, value]) => {
            secrets?.add(value.toString("utf8"));
            return [key, value.toString("utf8")];
          })));
    if (data) fromRefs.push(data);
    else if (!reference.optional) {
      throw new KustomizationFailure("BuildFailed", `substitute from '${reference.kind}/${namespace}/${reference.name}' failed: not found`, "wait");
    }
  }
  return mergeVariables(fromRefs, spec.postBuild?.substitute);
}

interface DependencyStatus {
  metadata: { generation?: number };
  spec: { sourceRef: { name: string; namespace?: string } };
  status?: {
    observedGeneration?: number;
    lastAppliedRevision?: string;
    conditions?: Array<{ type: string; status: string; message: string }>;
  };
}

/**
 * A dependency is ready when it exists, has observed its latest generation, is Ready, and (when it uses the same
 * source) has applied the revision this Kustomization is about to apply. Returns why not, or undefined when ready.
 */
export function dependencyNotReady(
  name: string,
  dependency: DependencyStatus | undefined,
  sameSourceRevision: string | undefined,
): string | undefined {
  if (!dependency) return `dependency '${name}' not found`;
  const ready = findCondition(dependency.status?.conditions as never, "Ready");
  if (dependency.status?.observedGeneration !== dependency.metadata.generation || ready?.status !== "True") {
    return `dependency '${name}' is not ready${ready?.message ? `: ${ready.message}` : ""}`;
  }
  if (sameSourceRevision !== undefined && dependency.status?.lastAppliedRevision !== sameSourceRevision) {
    return `dependency '${name}' has not applied revision ${sameSourceRevision} yet`;
  }
  return undefined;
}
