// The Kubernetes edge for the controller: typed access to Ferry's custom resources and the Secrets they reference,
// on @kubernetes/client-node. Errors carry the HTTP status so callers can tell "gone" from "failed".
import { createHash, randomBytes } from "node:crypto";
import {
  type Configuration,
  CoordinationV1Api,
  CoreV1Api,
  createConfiguration,
  CustomObjectsApi,
  KubeConfig,
  PatchStrategy,
  ServerConfiguration,
  setHeaderOptions,
} from "@kubernetes/client-node";
import { boundedTransport, MAX_KUBE_RESPONSE_BYTES } from "./transport.ts";

/** Objects per page of a list: a few MiB of custom resources per answer. */
export const LIST_PAGE_SIZE = 500;

/** The largest answer read from a cluster named by a tenant's kubeConfig. */
export const TENANT_MAX_RESPONSE_BYTES = 16 * 1024 * 1024;
import { FerryError } from "../errors.ts";
import { loadTenantKubeconfig, type TenantKubeconfigOptions } from "./tenant-kubeconfig.ts";

export interface ObjectMeta {
  name: string;
  namespace: string;
  uid?: string;
  generation?: number;
  resourceVersion?: string;
  annotations?: Record<string, string>;
  finalizers?: string[];
  deletionTimestamp?: string;
}

export interface CustomObject<Spec, Status> {
  apiVersion: string;
  kind: string;
  metadata: ObjectMeta;
  spec: Spec;
  status?: Status;
}

export interface ResourceType {
  readonly group: string;
  readonly version: string;
  readonly plural: string;
}

/** The kubeconfig is missing or unreadable: nothing works until someone fixes it. */
export class KubeconfigError extends FerryError {
  readonly code = "KUBECONFIG_INVALID";
  readonly disposition = "stall";
}

export function httpStatusOf(error: unknown): number | undefined {
  const code = (error as { code?: unknown; statusCode?: unknown }).code ?? (error as { statusCode?: unknown }).statusCode;
  return typeof code === "number" ? code : undefined;
}

type AgentFactory = (cluster: { server?: string; proxyUrl?: string } | null, options: Record<string, unknown>) => unknown;

function fingerprint(value: unknown): string {
  if (value === undefined || value === null) return "";
  return createHash("sha256").update(Buffer.isBuffer(value) ? value : String(value)).digest("hex").slice(0, 16);
}

/** Keep-alive agents kept at once: one per API server and TLS identity the controller talks to. */
export const MAX_SHARED_AGENTS = 64;

/**
 * Keep-alive agents by server, proxy and TLS settings, shared by every KubeClient in the process, least recently used
 * first. Credentials other than a client certificate (tokens, basic auth) and impersonation travel in headers, so the
 * clients of many tenants' ServiceAccounts on one cluster share one connection pool instead of each keeping its own.
 */
const sharedAgents = new Map<string, unknown>();

/** Closes an evicted agent's idle connections; those in use close when their request ends, not kept for reuse. */
function retire(agent: unknown): void {
  const pooled = agent as { keepAlive?: boolean; freeSockets?: Record<string, Array<{ destroy(): void }> | undefined> };
  if (typeof pooled.keepAlive === "boolean") pooled.keepAlive = false;
  for (const sockets of Object.values(pooled.freeSockets ?? {})) for (const socket of sockets ?? []) socket.destroy();
}

/**
 * client-node builds a new https.Agent for every request, so every request pays a TCP and TLS handshake (and the
 * CA is parsed again). One keep-alive agent per server, TLS settings and client certificate is reused instead,
 * across KubeClients (impersonating ones included).
 */
function reuseAgents(config: KubeConfig): void {
  const target = config as unknown as { createAgent: AgentFactory };
  const create = target.createAgent.bind(config);
  target.createAgent = (cluster, options) => {
    const key = [
      cluster?.server, cluster?.proxyUrl, options.rejectUnauthorized, options.servername, fingerprint(options.ca),
      fingerprint(options.cert), fingerprint(options.key), fingerprint(options.pfx), fingerprint(options.passphrase),
    ].join("|");
    let agent = sharedAgents.get(key);
    if (agent) {
      sharedAgents.delete(key);
    } else {
      agent = create(cluster, { ...options, keepAlive: true });
      for (const [oldest, evicted] of sharedAgents) {
        if (sharedAgents.size < MAX_SHARED_AGENTS) break;
        sharedAgents.delete(oldest);
        retire(evicted);
      }
    }
    sharedAgents.set(key, agent);
    return agent;
  };
}

export class KubeClient {
  readonly config: KubeConfig;
  readonly #custom: CustomObjectsApi;
  readonly #core: CoreV1Api;
  readonly #coordination: CoordinationV1Api;
  readonly #maxResponseBytes: number;

  constructor(config: KubeConfig, options: { maxResponseBytes?: number } = {}) {
    reuseAgents(config);
    this.config = config;
    this.#maxResponseBytes = options.maxResponseBytes ?? MAX_KUBE_RESPONSE_BYTES;
    this.#custom = this.api(CustomObjectsApi);
    this.#core = this.api(CoreV1Api);
    this.#coordination = this.api(CoordinationV1Api);
  }

  /** A client-node API class on this cluster, over the bounded transport (never client-node's own makeApiClient). */
  api<T>(type: new (configuration: Configuration) => T): T {
    const server = this.config.getCurrentCluster()?.server;
    if (!server) throw new KubeconfigError("the kubeconfig has no current cluster");
    return new type(createConfiguration({
      baseServer: new ServerConfiguration(server, {}),
      authMethods: { default: this.config },
      httpApi: boundedTransport(this.#maxResponseBytes),
    }));
  }

  /**
   * A client for the cluster of a kubeconfig a tenant put in a Secret. Never through client-node's loaders: they read
   * the files a kubeconfig names and run its exec plugins while loading, before any check could refuse them.
   */
  static fromUntrustedString(kubeconfig: string, options: TenantKubeconfigOptions = {}): KubeClient {
    // A tenant's server picks the size of its answers, and the controller parses each on its event loop: one
    // object, a discovery document or a dry-run result fits in far less than the controller's own lists need.
    return new KubeClient(loadTenantKubeconfig(kubeconfig, options), { maxResponseBytes: TENANT_MAX_RESPONSE_BYTES });
  }

  /** The same cluster and credentials, acting as `user` through Kubernetes impersonation (Impersonate-User). */
  impersonating(user: string): KubeClient {
    const current = this.config.getCurrentUser();
    // Without a user entry to mark, the client would silently act as the controller itself.
    if (!current) throw new Error("the kubeconfig has no current user to impersonate from");
    const config = new KubeConfig();
    config.loadFromOptions({
      clusters: this.config.getClusters(),
      contexts: this.config.getContexts(),
      currentContext: this.config.getCurrentContext(),
      users: this.config.getUsers().map((entry) => (entry.name === current?.name ? { ...entry, impersonateUser: user } : entry)),
    });
    return new KubeClient(config, { maxResponseBytes: this.#maxResponseBytes });
  }

  /** `path` (--kubeconfig), else KUBECONFIG (a list of files, merged), else ~/.kube/config, as kubectl reads them. */
  static fromFile(path?: string): KubeClient {
    const config = new KubeConfig();
    const source = path ?? process.env.KUBECONFIG ?? "~/.kube/config";
    try {
      if (path) config.loadFromFile(path);
      else config.loadFromDefault();
    } catch (error) {
      throw new KubeconfigError(`cannot load kubeconfig ${source}: ${(error as Error).message}`, { cause: error });
    }
    return new KubeClient(config);
  }

  /**
   * Every object of `type`, in one namespace or (namespace undefined) in all of them; only those labelSelector selects.
   * Read in pages of `limit` (LIST_PAGE_SIZE) objects, so a big list is not one answer the apiserver builds and this
   * process parses whole. `resourceVersion` as the API reads it: unset is a consistent read; "0" is any version,
   * served from the apiserver's watch cache rather than etcd (as client-go's informers list); another version is
   * one at least that new (resourceVersionMatch=NotOlderThan), also from the cache.
   */
  async list<T>(
    type: ResourceType,
    namespace?: string,
    labelSelector?: string,
    options: { resourceVersion?: string; limit?: number } = {},
  ): Promise<{ items: T[]; resourceVersion: string }> {
    const { group, version, plural } = type;
    const selected = labelSelector ? { labelSelector } : {};
    const { resourceVersion } = options;
    const atVersion = resourceVersion === undefined || resourceVersion === ""
      ? {}
      : { resourceVersion, ...(resourceVersion === "0" ? {} : { resourceVersionMatch: "NotOlderThan" }) };
    const items: T[] = [];
    let token: string | undefined;
    for (;;) {
      // A continued page carries its version in the token: the first page's resourceVersion is not sent again.
      const limit = options.limit ?? LIST_PAGE_SIZE;
      const page = { group, version, plural, ...selected, limit, ...(token ? { _continue: token } : atVersion) };
      const list = namespace === undefined
        ? await this.#custom.listClusterCustomObject(page)
        : await this.#custom.listNamespacedCustomObject({ ...page, namespace });
      for (const item of list.items as T[]) items.push(item);
      token = list.metadata?._continue || list.metadata?.continue || undefined;
      if (!token) return { items, resourceVersion: list.metadata?.resourceVersion ?? "" };
    }
  }

  async get<T>(type: ResourceType, namespace: string, name: string): Promise<T | undefined> {
    try {
      return (await this.#custom.getNamespacedCustomObject({ ...type, namespace, name })) as T;
    } catch (error) {
      if (httpStatusOf(error) === 404) return undefined;
      throw error;
    }
  }

  /** Replaces status through the status subresource with a JSON merge patch. */
  async patchStatus(type: ResourceType, namespace: string, name: string, status: unknown): Promise<void> {
    await this.#custom.patchNamespacedCustomObjectStatus(
      { ...type, namespace, name, body: { status } },
      setHeaderOptions("Content-Type", PatchStrategy.MergePatch),
    );
  }

  /** Sets metadata.finalizers, guarded by resourceVersion so a concurrent change is not overwritten. */
  async setFinalizers(type: ResourceType, meta: ObjectMeta, finalizers: string[]): Promise<void> {
    await this.#custom.patchNamespacedCustomObject(
      { ...type, namespace: meta.namespace, name: meta.name, body: { metadata: { finalizers, resourceVersion: meta.resourceVersion } } },
      setHeaderOptions("Content-Type", PatchStrategy.MergePatch),
    );
  }

  async listNamespaced<T>(type: ResourceType, namespace: string): Promise<T[]> {
    const list = await this.#custom.listNamespacedCustomObject({ ...type, namespace });
    return list.items as T[];
  }

  async create(type: ResourceType, namespace: string, body: unknown): Promise<void> {
    await this.#custom.createNamespacedCustomObject({ ...type, namespace, body });
  }

  /** A JSON merge patch of the object (not its status), e.g. spec.suspend or an annotation. */
  async mergePatch(type: ResourceType, namespace: string, name: string, body: unknown): Promise<void> {
    await this.#custom.patchNamespacedCustomObject(
      { ...type, namespace, name, body },
      setHeaderOptions("Content-Type", PatchStrategy.MergePatch),
    );
  }

  /** The namespace of the kubeconfig's current context, else "default". */
  defaultNamespace(): string {
    const context = this.config.getContextObject(this.config.getCurrentContext());
    return context?.namespace ?? "default";
  }

  /** Records a core/v1 Event about an object, as `kubectl describe` and `kubectl events` show them. */
  async event(
    involved: { apiVersion: string; kind: string; metadata: ObjectMeta },
    type: "Normal" | "Warning",
    reason: string,
    message: string,
    annotations: Record<string, string> = {},
  ): Promise<void> {
    const now = new Date();
    await this.#core.createNamespacedEvent({
      namespace: involved.metadata.namespace,
      body: {
        metadata: { name: `${involved.metadata.name}.${randomBytes(8).toString("hex")}`, namespace: involved.metadata.namespace, annotations },
        involvedObject: {
          apiVersion: involved.apiVersion,
          kind: involved.kind,
          name: involved.metadata.name,
          namespace: involved.metadata.namespace,
          ...(involved.metadata.uid ? { uid: involved.metadata.uid } : {}),
          ...(involved.metadata.resourceVersion ? { resourceVersion: involved.metadata.resourceVersion } : {}),
        },
        type,
        reason,
        message: message.slice(0, 1024),
        source: { component: "ferry-controller" },
        firstTimestamp: now,
        lastTimestamp: now,
        count: 1,
        reportingComponent: "ferry-controller",
      },
    });
  }

  async getLease(namespace: string, name: string) {
    try {
      return await this.#coordination.readNamespacedLease({ namespace, name });
    } catch (error) {
      if (httpStatusOf(error) === 404) return undefined;
      throw error;
    }
  }

  async createLease(namespace: string, name: string, spec: Record<string, unknown>): Promise<void> {
    await this.#coordination.createNamespacedLease({ namespace, body: { metadata: { name, namespace }, spec } });
  }

  /** Replaces a Lease; fails with 409 when someone else changed it since `resourceVersion`. */
  async replaceLease(namespace: string, name: string, resourceVersion: string, spec: Record<string, unknown>): Promise<void> {
    await this.#coordination.replaceNamespacedLease({ namespace, name, body: { metadata: { name, namespace, resourceVersion }, spec } });
  }

  async serviceAccountExists(namespace: string, name: string): Promise<boolean> {
    try {
      await this.#core.readNamespacedServiceAccount({ namespace, name });
      return true;
    } catch (error) {
      if (httpStatusOf(error) === 404) return false;
      throw error;
    }
  }

  /** Names of a ServiceAccount's imagePullSecrets; empty when it has none or does not exist. */
  async imagePullSecrets(namespace: string, name: string): Promise<string[]> {
    try {
      const account = await this.#core.readNamespacedServiceAccount({ namespace, name });
      return (account.imagePullSecrets ?? []).map((reference) => reference.name ?? "").filter(Boolean);
    } catch (error) {
      if (httpStatusOf(error) === 404) return [];
      throw error;
    }
  }

  async secretData(namespace: string, name: string): Promise<Record<string, Buffer> | undefined> {
    try {
      const secret = await this.#core.readNamespacedSecret({ namespace, name });
      return Object.fromEntries(Object.entries(secret.data ?? {}).map(([key, value]) => [key, Buffer.from(value, "base64")]));
    } catch (error) {
      if (httpStatusOf(error) === 404) return undefined;
      throw error;
    }
  }

  async configMapData(namespace: string, name: string): Promise<Record<string, string> | undefined> {
    try {
      return (await this.#core.readNamespacedConfigMap({ namespace, name })).data ?? {};
    } catch (error) {
      if (httpStatusOf(error) === 404) return undefined;
      throw error;
    }
  }
}
