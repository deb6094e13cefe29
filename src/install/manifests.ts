// What installing Ferry puts into a cluster, as objects: the namespace (enforcing the restricted Pod Security
// Standard), the CRDs, the controller's ServiceAccount and RBAC, its Deployment, a metrics Service and a
// NetworkPolicy. Pure: `ferry install --export` prints it, `ferry install` applies it, and tests check both.
import { CRDS } from "../api/crd.ts";
import { controllerRbac } from "../api/rbac.ts";
import type { LogLevel } from "../controller/log.ts";
import { FERRY_VERSION } from "../version.ts";

export interface InstallOptions {
  readonly namespace?: string;
  /** The controller image; defaults to ghcr.io/ferry-cd/ferry:<version>, or `<registry>/ferry:<version>`. */
  readonly image?: string;
  /** An image registry mirror, for air-gapped installs (ignored when `image` is given). */
  readonly registry?: string;
  readonly imagePullSecret?: string;
  /** Installs --tenant-lockdown and binds only impersonation, no cluster-admin. */
  readonly multiTenant?: boolean;
  readonly networkPolicy?: boolean;
  /** The controller's memory limit in MiB; its heap budget is derived from it. */
  readonly memoryLimitMiB?: number;
  /** false: the controller reconciles only objects in its own namespace, and reads Secrets only there. */
  readonly watchAllNamespaces?: boolean;
  readonly logLevel?: LogLevel;
  /** More controller flags, e.g. --concurrency=8 (bootstrap keeps them in the artifact). */
  readonly extraArgs?: readonly string[];
  /**
   * Shard controllers beside the main one (Flux's sharding): ferry-controller-shard1..N reconcile the objects labelled
   * sharding.fluxcd.io/key=shardK, the main one those without the label. 0 or undefined: one controller for all.
   */
  readonly shards?: number;
  /**
   * sizeLimit of the artifact cache and /tmp emptyDirs (Kubernetes quantities), or "0" for none. Past one the kubelet
   * evicts the pod, which fetches everything again: set them above what the sources in the cluster need.
   */
  readonly cacheVolumeSize?: string;
  readonly tmpVolumeSize?: string;
}

export const DEFAULT_NAMESPACE = "ferry-system";
export const CONTROLLER_NAME = "ferry-controller";
const NAME = CONTROLLER_NAME;
const UID = 65532;
const METRICS_PORT = 9440;
const LABELS = { "app.kubernetes.io/name": "ferry", "app.kubernetes.io/component": "controller", "app.kubernetes.io/part-of": "ferry" };

/** Flux's shard label: an object labelled sharding.fluxcd.io/key=shardK is reconciled by shard K's controller only. */
export const SHARD_KEY_LABEL = "sharding.fluxcd.io/key";
/** On a shard controller's Deployment and pods: which shard it is (the main controller has none). */
export const SHARD_LABEL = "ferry.dev/shard";
/** At most this many shards: each is a Deployment with its own cache and lease; past this, a second install. */
export const MAX_SHARDS = 32;

/** shard1..shardN, as Flux's sharding guide names them. */
export function shardNames(count: number | undefined): string[] {
  return Array.from({ length: count ?? 0 }, (_, index) => `shard${index + 1}`);
}

/** The Deployment that reconciles `shard`'s objects; the main controller's without one. */
export function controllerName(shard?: string): string {
  return shard ? `${CONTROLLER_NAME}-${shard}` : CONTROLLER_NAME;
}

/**
 * The --watch-label-selector of the main controller (`shard` undefined) or of a shard's: with shards, the main
 * controller takes the objects without Flux's shard label, each shard those labelled with its name. None without
 * shards, so an unsharded install reconciles labelled objects too.
 */
export function shardSelector(shards: number | undefined, shard?: string): string | undefined {
  if (shard) return `${SHARD_KEY_LABEL}=${shard}`;
  return (shards ?? 0) > 0 ? `!${SHARD_KEY_LABEL}` : undefined;
}

function image(options: InstallOptions): string {
  if (options.image) return options.image;
  return `${options.registry ?? "ghcr.io/ferry-cd"}/ferry:v${FERRY_VERSION}`;
}

function namespaceObject(namespace: string) {
  // The controller needs nothing the restricted profile forbids; enforcing it keeps it that way.
  const restricted = Object.fromEntries(["enforce", "audit", "warn"].map((mode) => [`pod-security.kubernetes.io/${mode}`, "restricted"]));
  return { apiVersion: "v1", kind: "Namespace", metadata: { name: namespace, labels: { ...restricted, "app.kubernetes.io/part-of": "ferry" } } };
}

function controllerArgs(options: InstallOptions, namespace: string, memoryLimitMiB: number, shard: string | undefined): string[] {
  const selector = shardSelector(options.shards, shard);
  return [
    "controller",
    "--cache-dir=/var/cache/ferry",
    `--health-addr=:${METRICS_PORT}`,
    `--leader-election-namespace=${namespace}`,
    ...(options.multiTenant ? ["--tenant-lockdown"] : []),
    ...(options.watchAllNamespaces === false ? ["--watch-all-namespaces=false"] : []),
    ...(options.logLevel ? [`--log-level=${options.logLevel}`] : []),
    // Each selector has its own lease (named after it), so shards elect their leaders independently.
    ...(selector ? [`--watch-label-selector=${selector}`] : []),
    ...(options.extraArgs ?? []),
  ];
}

/**
 * Bounds of the controller's disk: the artifact cache, of many sources of up to 512 MiB each (--max-artifact-size),
 * and /tmp, where an artifact is unpacked and built. The kubelet evicts the pod past them rather than let a flood of
 * artifacts fill the node's disk under its other pods.
 */
export const DEFAULT_CACHE_VOLUME_SIZE = "4Gi";
/** Room for a few artifacts of the default --max-artifact-size (512Mi) unpacked and built at once. */
export const DEFAULT_TMP_VOLUME_SIZE = "2Gi";

const emptyDir = (size: string) => (size === "0" ? {} : { sizeLimit: size });

/**
 * The controller's Deployment, or a shard's. A shard's pods carry ferry.dev/shard, which its selector requires, so
 * its selector matches none of the main controller's pods (the main selector, immutable since the first install,
 * also matches the shards' pods; ReplicaSets claim pods by owner reference, so no Deployment takes another's). The
 * Service, the NetworkPolicy and uninstall find every controller's pods by the common labels.
 */
function deployment(options: InstallOptions, namespace: string, shard?: string) {
  const memoryLimitMiB = options.memoryLimitMiB ?? 1024;
  const probe = (path: string) => ({ httpGet: { path, port: "http-metrics" }, periodSeconds: 10, timeoutSeconds: 5 });
  const labels = shard ? { ...LABELS, [SHARD_LABEL]: shard } : LABELS;
  return {
    apiVersion: "apps/v1",
    kind: "Deployment",
    metadata: { name: controllerName(shard), namespace, labels },
    spec: {
      replicas: 1,
      // The new pod starts beside the old one and takes over when the old one, stopped once the new one is Ready,
      // hands its lease over: leader election keeps one reconciling, and a standby is Ready without the lease
      // (cli/commands/controller.ts), so the rollout proceeds. A new pod that cannot start (a bad image, a crash)
      // leaves the old one running instead of no controller at all, as Recreate did.
      strategy: { type: "RollingUpdate", rollingUpdate: { maxSurge: 1, maxUnavailable: 0 } },
      selector: { matchLabels: labels },
      template: {
        metadata: { labels },
        spec: {
          serviceAccountName: NAME,
          terminationGracePeriodSeconds: 60,
          securityContext: { runAsNonRoot: true, runAsUser: UID, runAsGroup: UID, fsGroup: UID, seccompProfile: { type: "RuntimeDefault" } },
          ...(options.imagePullSecret ? { imagePullSecrets: [{ name: options.imagePullSecret }] } : {}),
          containers: [{
            name: "controller",
            image: image(options),
            imagePullPolicy: "IfNotPresent",
            args: controllerArgs(options, namespace, memoryLimitMiB, shard),
            env: [
              { name: "POD_NAMESPACE", valueFrom: { fieldRef: { fieldPath: "metadata.namespace" } } },
              // Three quarters of the limit for the heap: the rest is Node's own memory, the output workers' and
              // kustomize's. Given to Node directly, `ferry controller` does not re-run itself to size its heap
              // (--max-heap-mib), which kept a second Node process of ~50 MiB alive beside it.
              { name: "NODE_OPTIONS", value: `--max-old-space-size=${Math.floor(memoryLimitMiB * 0.75)}` },
            ],
            ports: [{ name: "http-metrics", containerPort: METRICS_PORT, protocol: "TCP" }],
            livenessProbe: probe("/healthz"),
            readinessProbe: probe("/readyz"),
            resources: { requests: { cpu: "100m", memory: "256Mi" }, limits: { memory: `${memoryLimitMiB}Mi` } },
            securityContext: { allowPrivilegeEscalation: false, readOnlyRootFilesystem: true, capabilities: { drop: ["ALL"] } },
            volumeMounts: [{ name: "cache", mountPath: "/var/cache/ferry" }, { name: "tmp", mountPath: "/tmp" }],
          }],
          volumes: [
            { name: "cache", emptyDir: emptyDir(options.cacheVolumeSize ?? DEFAULT_CACHE_VOLUME_SIZE) },
            { name: "tmp", emptyDir: emptyDir(options.tmpVolumeSize ?? DEFAULT_TMP_VOLUME_SIZE) },
          ],
        },
      },
    },
  };
}

function metricsService(namespace: string) {
  return {
    apiVersion: "v1",
    kind: "Service",
    metadata: { name: NAME, namespace, labels: LABELS },
    spec: { selector: LABELS, ports: [{ name: "http-metrics", port: METRICS_PORT, targetPort: "http-metrics", protocol: "TCP" }] },
  };
}

/** Nothing may connect to the controller but to its probes and metrics; it reaches out to apiserver and registries. */
function networkPolicy(namespace: string) {
  return {
    apiVersion: "networking.k8s.io/v1",
    kind: "NetworkPolicy",
    metadata: { name: NAME, namespace, labels: LABELS },
    spec: {
      podSelector: { matchLabels: LABELS },
      policyTypes: ["Ingress"],
      ingress: [{ ports: [{ port: METRICS_PORT, protocol: "TCP" }] }],
    },
  };
}

/** Labels every object of an install carries: `ferry uninstall` and `ferry check` find them by these. */
export const PART_OF_LABEL = "app.kubernetes.io/part-of";
export const VERSION_LABEL = "app.kubernetes.io/version";

/**
 * The namespaces, other than `namespace`, where a controller Deployment of another Ferry install runs. Two installs
 * watching all namespaces would both reconcile every Kustomization, and they share the CRDs: install refuses to add
 * a second one without --force, and uninstall then keeps what the other still needs.
 */
export function otherInstallNamespaces(deployments: readonly unknown[], namespace: string): string[] {
  type Meta = { metadata?: { namespace?: string; labels?: Record<string, string> } };
  const namespaces = (deployments as readonly Meta[])
    .filter((deployment) => deployment.metadata?.labels?.[PART_OF_LABEL] === "ferry")
    .map((deployment) => deployment.metadata?.namespace ?? "")
    .filter((other) => other !== "" && other !== namespace);
  return [...new Set(namespaces)].sort();
}

interface Labelled {
  readonly apiVersion: string;
  readonly kind: string;
  readonly metadata: { readonly name: string; readonly namespace?: string; readonly labels?: Record<string, string> };
}

function withInstallLabels<T extends Labelled>(object: T): T {
  return { ...object, metadata: { ...object.metadata, labels: { ...object.metadata.labels, [PART_OF_LABEL]: "ferry", [VERSION_LABEL]: `v${FERRY_VERSION}` } } };
}

/** Every object of an install, in the order they are applied. */
export function installManifests(options: InstallOptions = {}): object[] {
  const namespace = options.namespace ?? DEFAULT_NAMESPACE;
  const rbac = controllerRbac(namespace, NAME, {
    applier: options.multiTenant ? "impersonation" : true,
    watchAllNamespaces: options.watchAllNamespaces ?? true,
  });
  const objects: Labelled[] = [
    namespaceObject(namespace),
    ...Object.values(CRDS) as Labelled[],
    { apiVersion: "v1", kind: "ServiceAccount", metadata: { name: NAME, namespace, labels: LABELS } },
    ...rbac,
    deployment(options, namespace),
    ...shardNames(options.shards).map((shard) => deployment(options, namespace, shard)),
    metricsService(namespace),
    ...(options.networkPolicy === false ? [] : [networkPolicy(namespace)]),
  ];
  return objects.map(withInstallLabels);
}
