// What a Kustomization reconcile gathers before it builds and applies: the cluster it applies to (impersonating a
// ServiceAccount, or a remote cluster from a kubeconfig Secret), who reads what it names, the substitution variables,
// and its dependencies.
import { createHash } from "node:crypto";
import type { KustomizationSpecType } from "../api/kustomize.ts";
import { unsupportedDecryption } from "../api/not-yet-supported.ts";
import { Applier } from "../apply/apply.ts";
import { type Disposition, FerryError } from "../errors.ts";
import { httpStatusOf, KubeClient } from "../kube/client.ts";
import { TenantKubeconfigError } from "../kube/tenant-kubeconfig.ts";
import { mergeVariables } from "../kustomize/substitute.ts";
import { AgeIdentities } from "../decryption/age-keys.ts";
import { findCondition } from "./conditions.ts";
import type { SecretValues } from "./secret-values.ts";

/** Flux's condition reasons, so that tools reading Flux's statuses read Ferry's. */
export type KustomizationFailureReason
  = | "AccessDenied"
    | "ArtifactFailed"
    | "BuildFailed"
    | "DecryptionFailed"
    | "DependencyNotReady"
    | "HealthCheckFailed"
    | "InvalidCELExpression"
    | "PruneFailed"
    | "ReconciliationFailed";

/** Why a reconcile cannot go on: the Flux condition reason to report, and the shared disposition (src/errors.ts). */
export class KustomizationFailure extends FerryError {
  readonly code = "KUSTOMIZATION_FAILURE";
  readonly reason: KustomizationFailureReason;
  readonly disposition: Disposition;
  constructor(reason: KustomizationFailureReason, message: string, disposition: Disposition = "retry") {
    super(message);
    this.reason = reason;
    this.disposition = disposition;
  }
}

export const TENANT_LOCKDOWN_FLAG = "--tenant-lockdown";

/** How the controller confines the tenants whose Kustomizations it applies. */
export interface Tenancy {
  /** Impersonated when a Kustomization names no serviceAccountName. */
  readonly defaultServiceAccount?: string | undefined;
  /**
   * --tenant-lockdown: every Kustomization acts as a ServiceAccount of its own namespace, and what it names in the
   * controller's cluster (its source, dependencies, substituteFrom and kubeConfig Secret) is read as that account.
   */
  readonly lockdown?: boolean | undefined;
}

export interface Target {
  readonly kube: KubeClient;
  readonly applier: Applier;
}

const serviceAccountUser = (namespace: string, name: string) => `system:serviceaccount:${namespace}:${name}`;

/** Targets kept: one per tenant identity and kubeconfig; each holds an Applier and its discovery cache. */
export const MAX_TARGETS = 2048;

/** Appliers keep a discovery cache, so one is kept per identity and kubeconfig rather than made per reconcile. */
export class Targets {
  readonly #kube: KubeClient;
  readonly #tenancy: Tenancy;
  readonly #cache = new Map<string, Target>();

  constructor(kube: KubeClient, tenancy: Tenancy = {}) {
    this.#kube = kube;
    this.#tenancy = tenancy;
  }

  /** The ServiceAccount a Kustomization acts as: its own, else the default; none means the controller itself. */
  serviceAccountOf(spec: KustomizationSpecType): string | undefined {
    return spec.serviceAccountName ?? this.#tenancy.defaultServiceAccount;
  }

  /** Under lockdown a Kustomization without a ServiceAccount would act as the controller: it stalls instead. */
  requiredServiceAccount(spec: KustomizationSpecType): string {
    const serviceAccount = this.serviceAccountOf(spec);
    if (serviceAccount) return serviceAccount;
    throw new KustomizationFailure("AccessDenied",
      `spec.serviceAccountName is required: this controller runs with ${TENANT_LOCKDOWN_FLAG} and no --default-service-account`, "stall");
  }

  /**
   * Who reads, in the controller's cluster, what a Kustomization names. Under lockdown its ServiceAccount, so that
   * naming a Secret (or a source, a dependency, a kubeconfig) gets a tenant nothing its account may not read;
   * otherwise the controller itself, as in Flux.
   */
  readerFor(namespace: string, spec: KustomizationSpecType): KubeClient {
    if (!this.#tenancy.lockdown) return this.#kube;
    return this.#target("local", () => this.#kube, serviceAccountUser(namespace, this.requiredServiceAccount(spec))).kube;
  }

  async for(namespace: string, spec: KustomizationSpecType): Promise<Target> {
    const serviceAccount = this.serviceAccountOf(spec);
    const user = serviceAccount ? serviceAccountUser(namespace, serviceAccount) : undefined;
    if (!spec.kubeConfig) return this.#target("local", () => this.#kube, user);
    const kubeconfig = await this.#kubeconfig(namespace, spec.kubeConfig.secretRef, this.readerFor(namespace, spec));
    const digest = createHash("sha256").update(kubeconfig.text).digest("hex");
    return this.#target(digest, () => this.#kubeFrom(kubeconfig.text, kubeconfig.secret), user);
  }

  #target(cluster: string, base: () => KubeClient, user: string | undefined): Target {
    const key = `${cluster}|${user ?? ""}`;
    const cached = this.#cache.get(key);
    if (cached) {
      // Least recently used first out: a busy tenant's target (and its discovery) is never dropped for an idle one.
      this.#cache.delete(key);
      this.#cache.set(key, cached);
      return cached;
    }
    const kube = user ? base().impersonating(user) : base();
    const target = { kube, applier: new Applier(kube) };
    // Was: cleared whole past 256, so with more tenants than that every reconcile rebuilt its Applier and ran discovery.
    for (const oldest of this.#cache.keys()) {
      if (this.#cache.size < MAX_TARGETS) break;
      this.#cache.delete(oldest);
    }
    this.#cache.set(key, target);
    return target;
  }

  /** How many targets are cached; for tests. */
  get size(): number {
    return this.#cache.size;
  }

  /** The kubeconfig text of a kubeConfig.secretRef. Secrets are not watched, so problems are retried, not stalled. */
  async #kubeconfig(
    namespace: string,
    reference: { name: string; key?: string | undefined },
    reader: KubeClient,
  ): Promise<{ text: string; secret: string }> {
    const secret = `${namespace}/${reference.name}`;
    const data = await readFor(`kubeConfig Secret '${secret}'`, reader.secretData(namespace, reference.name));
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

/** The apiserver's own words for a refusal (its Status message), which name the user it refused. */
function statusMessage(error: unknown): string {
  for (let candidate = error; candidate; candidate = (candidate as { cause?: unknown }).cause) {
    const body = (candidate as { body?: unknown }).body;
    const status = typeof body === "string" ? parseJson(body) : body;
    const message = (status as { message?: unknown } | undefined)?.message;
    if (typeof message === "string") return message;
  }
  return (error as Error).message;
}

function parseJson(text: string): unknown {
  try {
    return JSON.parse(text);
  } catch {
    return undefined;
  }
}

/**
 * AccessDenied naming `what` when the apiserver refused (403) a read made for a Kustomization, else undefined.
 * Retried, not stalled: a RoleBinding added later lets it through, and RBAC is not watched.
 */
export function refusalOf(error: unknown, what: string): KustomizationFailure | undefined {
  const forbidden = httpStatusOf(error) === 403 || httpStatusOf((error as { cause?: unknown }).cause ?? {}) === 403;
  return forbidden ? new KustomizationFailure("AccessDenied", `${what} was refused: ${statusMessage(error)}`) : undefined;
}

/** `read`, with a refusal reported as AccessDenied naming `what`. */
export async function readFor<T>(what: string, read: Promise<T>): Promise<T> {
  try {
    return await read;
  } catch (error) {
    throw refusalOf(error, what) ?? error;
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
    const what = `substituteFrom ${reference.kind} '${namespace}/${reference.name}'`;
    const data = reference.kind === "ConfigMap"
      ? await readFor(what, kube.configMapData(namespace, reference.name))
      : await readFor(what, kube.secretData(namespace, reference.name)).then((secret) =>
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

/** A decryption failure as the Kustomization reports it: reason DecryptionFailed, the error's own disposition. */
export function decryptionFailure(error: unknown): KustomizationFailure | undefined {
  if (!(error instanceof FerryError) || !error.code.startsWith("DECRYPTION_")) return undefined;
  return new KustomizationFailure("DecryptionFailed", error.message, error.disposition);
}

/**
 * The age identities of spec.decryption's Secret, read with `kube` (the tenant's ServiceAccount under
 * --tenant-lockdown); undefined without spec.decryption. The Secret is always the Kustomization's own namespace's,
 * as in Flux, so no cross-namespace reference arises. Its values are registered with `secrets`.
 */
export async function decryptionIdentities(
  kube: KubeClient,
  namespace: string,
  spec: KustomizationSpecType,
  secrets?: SecretValues,
): Promise<AgeIdentities | undefined> {
  const decryption = spec.decryption;
  if (!decryption) return undefined;
  const stall = (message: string) => new KustomizationFailure("DecryptionFailed", message, "stall");
  const unsupported = unsupportedDecryption(decryption);
  if (unsupported || !decryption.secretRef) throw stall(unsupported ?? "spec.decryption.secretRef is required");
  const name = `${namespace}/${decryption.secretRef.name}`;
  const data = await readFor(`decryption Secret '${name}'`, kube.secretData(namespace, decryption.secretRef.name));
  if (!data) throw new KustomizationFailure("DecryptionFailed", `decryption Secret '${name}' not found`, "wait");
  for (const value of Object.values(data)) secrets?.add(value.toString("utf8"));
  try {
    return AgeIdentities.fromSecretData(data, name);
  } catch (error) {
    throw decryptionFailure(error) ?? error;
  }
}
