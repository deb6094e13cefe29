// `ferry controller`: runs the in-cluster reconcilers (OCIRepository so far) until SIGTERM, with leader election
// and /healthz, /readyz and /metrics.
import { resolve } from "node:path";
import { ArtifactCache } from "../../src/artifact/cache.ts";
import { LeaderElectionConfigError, LeaderElector } from "../../src/controller/leader.ts";
import { canonicalLabelSelector, CONTROLLER_LEASE_NAME, LabelSelectorError, shardLeaseName } from "../../src/controller/selector.ts";
import { isLogLevel, LOG_LEVELS, logAt, setLogLevel } from "../../src/controller/log.ts";
import { jsonLog, Manager } from "../../src/controller/manager.ts";
import { startProbeServer } from "../../src/controller/probes.ts";
import { KubeClient } from "../../src/kube/client.ts";
import { defaultSandboxBinary, probeSandbox, type Sandbox } from "../../src/sandbox/sandbox.ts";
import { UsageError } from "../errors.ts";
import { exitWithParent } from "../heap.ts";
import { parse, parseDuration } from "../flags.ts";

function hostPort(value: string, flag: string): { host: string; port: number } {
  const match = /^(.*):(\d+)$/.exec(value);
  if (!match) throw new UsageError(`${flag} must be host:port, e.g. :9440 or 127.0.0.1:0`);
  return { host: match[1] || "0.0.0.0", port: Number(match[2]) };
}

function atLeastOneSecond(ms: number, flag: string): number {
  if (!(ms >= 1000) || ms > 2 ** 31 - 1) throw new UsageError(`${flag} must be between 1s and 596h`);
  return ms;
}

function positiveInteger(value: string, flag: string): number {
  const number = Number(value);
  if (!Number.isInteger(number) || number < 1) throw new UsageError(`${flag} must be a positive integer`);
  return number;
}

const SIZE_UNITS: Record<string, number> = { "": 1, Ki: 1024, Mi: 1024 ** 2, Gi: 1024 ** 3 };

/** A size as Kubernetes writes quantities: 536870912, 512Mi, 1Gi. */
function byteSize(value: string, flag: string): number {
  const match = /^(\d+)(Ki|Mi|Gi)?$/.exec(value.trim());
  const bytes = match ? Number(match[1]) * (SIZE_UNITS[match[2] ?? ""] ?? 1) : 0;
  if (!Number.isSafeInteger(bytes) || bytes < 1) throw new UsageError(`${flag} must be a size such as 512Mi or 2Gi, not "${value}"`);
  return bytes;
}

/**
 * Kustomize runs on tenants' artifacts, so it runs confined (src/sandbox). A kernel that cannot confine stops the
 * controller at start with the reason, rather than building unconfined; --insecure-unconfined-builds is for
 * clusters where every artifact is trusted.
 */
async function buildSandbox(values: Record<string, string | boolean | undefined>): Promise<Sandbox | undefined> {
  if (values["insecure-unconfined-builds"]) {
    // At error level: a weakened fence must show even in a log filtered down to errors.
    logAt("error", "kustomize runs unconfined (--insecure-unconfined-builds): any artifact can read the controller's files");
    return undefined;
  }
  const limits = {
    maxMemoryBytes: positiveInteger(String(values["build-max-memory-mib"] ?? "1024"), "--build-max-memory-mib") * 1024 * 1024,
    maxCpuSeconds: positiveInteger(String(values["build-max-cpu-seconds"] ?? "60"), "--build-max-cpu-seconds"),
  };
  try {
    const sandbox = await probeSandbox(defaultSandboxBinary(), limits);
    jsonLog("kustomize runs confined", { sandbox: sandbox.binary, landlockAbi: sandbox.abi });
    return sandbox;
  } catch (error) {
    throw new UsageError(`${(error as Error).message}; start with --insecure-unconfined-builds only if every artifact is trusted`);
  }
}

/**
 * --watch-label-selector in canonical form, undefined for none; a selector Kubernetes would refuse is a usage error
 * at start (exit 2), not a list the apiserver refuses over and over.
 */
export function watchLabelSelector(value: string | undefined): string | undefined {
  if (value === undefined) return undefined;
  try {
    const canonical = canonicalLabelSelector(value);
    if (canonical === "") throw new LabelSelectorError("it is empty; leave the flag out to watch every object");
    return canonical;
  } catch (error) {
    if (error instanceof LabelSelectorError) throw new UsageError(`--watch-label-selector "${value}": ${error.message}`);
    throw error;
  }
}

/** The elector for --leader-elect, its timings checked before anything starts (as client-go checks them). */
function leaderElector(
  kube: KubeClient,
  values: Record<string, string | boolean | undefined>,
  labelSelector: string | undefined,
): LeaderElector {
  const durationFlag = (flag: string, fallback: string) => parseDuration(String(values[flag] ?? fallback), `--${flag}`);
  try {
    return new LeaderElector(kube, {
      namespace: String(values["leader-election-namespace"] ?? process.env.POD_NAMESPACE ?? "ferry-system"),
      // Replicas of one shard share a lease, and shards never contend for one (Flux's GenerateID naming).
      name: shardLeaseName(CONTROLLER_LEASE_NAME, labelSelector),
      leaseDurationMs: durationFlag("lease-duration", "15s"),
      renewDeadlineMs: durationFlag("renew-deadline", "10s"),
      retryPeriodMs: durationFlag("retry-period", "2s"),
      log: jsonLog,
    });
  } catch (error) {
    if (error instanceof LeaderElectionConfigError) throw new UsageError(`--lease-duration, --renew-deadline, --retry-period: ${error.message}`);
    throw error;
  }
}

/**
 * --watch-all-namespaces=false: only the controller's own namespace (POD_NAMESPACE), as Flux's controllers do. It
 * implies --no-cross-namespace-refs: the RBAC a scoped install binds in its namespace does not stop a controller
 * that also holds the applier's cluster-admin binding from reading elsewhere, so a Kustomization in the watched
 * namespace must not be able to pull another namespace's source or dependencies in through it.
 */
function watchScope(allNamespaces: boolean | undefined, watchNamespace: string | undefined): { watchNamespace?: string } {
  if (watchNamespace !== undefined) {
    // --watch-namespace=NS names the namespace outright (Ferry's own flag; Flux's controllers only have the one above).
    if (allNamespaces === true) throw new UsageError("--watch-namespace and --watch-all-namespaces=true contradict each other");
    if (!/^[a-z0-9]([-a-z0-9]*[a-z0-9])?$/.test(watchNamespace) || watchNamespace.length > 63) {
      throw new UsageError(`--watch-namespace "${watchNamespace}" is not a namespace name`);
    }
    jsonLog("watching one namespace; references to other namespaces are refused", { namespace: watchNamespace });
    return { watchNamespace };
  }
  if (allNamespaces ?? true) return {};
  const namespace = process.env.POD_NAMESPACE;
  if (!namespace) throw new UsageError("--watch-all-namespaces=false needs POD_NAMESPACE, the namespace to watch");
  jsonLog("watching one namespace; references to other namespaces are refused", { namespace });
  return { watchNamespace: namespace };
}

export async function controllerCommand(args: readonly string[]): Promise<void> {
  exitWithParent();
  const { values } = parse(args, {
    "max-heap-mib": { type: "string" },
    kubeconfig: { type: "string" },
    "cache-dir": { type: "string" },
    concurrency: { type: "string" },
    "max-concurrent-per-namespace": { type: "string" },
    "health-addr": { type: "string" },
    "leader-elect": { type: "boolean" },
    "leader-election-namespace": { type: "string" },
    "lease-duration": { type: "string" },
    "renew-deadline": { type: "string" },
    "retry-period": { type: "string" },
    "watch-idle-timeout": { type: "string" },
    "no-cross-namespace-refs": { type: "boolean" },
    "no-cross-namespace-targets": { type: "boolean" },
    "tenant-lockdown": { type: "boolean" },
    "default-service-account": { type: "string" },
    "requeue-dependency": { type: "string" },
    "sync-period": { type: "string" },
    "insecure-unconfined-builds": { type: "boolean" },
    "build-max-memory-mib": { type: "string" },
    "build-max-cpu-seconds": { type: "string" },
    "max-artifact-size": { type: "string" },
    "watch-all-namespaces": { type: "boolean" },
    "watch-label-selector": { type: "string" },
    "watch-namespace": { type: "string" },
    "log-level": { type: "string" },
  });
  const logLevel = values["log-level"] ?? "info";
  if (!isLogLevel(logLevel)) throw new UsageError(`--log-level must be one of ${LOG_LEVELS.join(", ")}, not "${logLevel}"`);
  setLogLevel(logLevel);
  const concurrency = positiveInteger(String(values.concurrency ?? "4"), "--concurrency");
  const labelSelector = watchLabelSelector(values["watch-label-selector"]);
  const scope = watchScope(values["watch-all-namespaces"], values["watch-namespace"]);
  const probes = hostPort(values["health-addr"] ?? ":9440", "--health-addr");
  const sandbox = await buildSandbox(values);
  const kube = KubeClient.fromFile(values.kubeconfig);
  const cache = new ArtifactCache(resolve(values["cache-dir"] ?? "/var/cache/ferry"));
  const watchIdleTimeoutMs = parseDuration(values["watch-idle-timeout"] ?? "90s", "--watch-idle-timeout");
  if (watchIdleTimeoutMs < 1000) throw new UsageError("--watch-idle-timeout must be at least 1s");
  const elector = (values["leader-elect"] ?? true) ? leaderElector(kube, values, labelSelector) : undefined;
  if (labelSelector) jsonLog("reconciling only the objects the label selector selects", { labelSelector });
  const manager = new Manager({
    kube,
    ...scope,
    ...(labelSelector ? { labelSelector } : {}),
    cache,
    concurrency,
    // One tenant's slow cluster or huge build must leave workers for the others.
    ...(values["max-concurrent-per-namespace"]
      ? { maxConcurrentPerNamespace: positiveInteger(String(values["max-concurrent-per-namespace"]), "--max-concurrent-per-namespace") }
      : {}),
    // How often every object is looked at again in case an event was missed; scheduled objects keep their schedule.
    resyncMs: atLeastOneSecond(parseDuration(values["sync-period"] ?? "10m", "--sync-period"), "--sync-period"),
    watchIdleTimeoutMs,
    sources: { maxArtifactBytes: byteSize(values["max-artifact-size"] ?? "512Mi", "--max-artifact-size") },
    kustomizations: {
      noCrossNamespaceRefs: (values["no-cross-namespace-refs"] ?? false) || scope.watchNamespace !== undefined,
      noCrossNamespaceTargets: values["no-cross-namespace-targets"] ?? false,
      tenantLockdown: values["tenant-lockdown"] ?? false,
      ...(values["default-service-account"] ? { defaultServiceAccount: values["default-service-account"] } : {}),
      ...(sandbox ? { sandbox } : {}),
      requeueDependencyMs: parseDuration(values["requeue-dependency"] ?? "30s", "--requeue-dependency"),
    },
  });
  let waitingForLeadership = false;
  const { server, address } = await startProbeServer({
    ...probes,
    metrics: manager.metrics,
    // A standby waiting for the lease is Ready: the install's RollingUpdate waits for the new pod to be Ready before
    // stopping the old one, which holds the lease until then; were readiness tied to the lease, no rollout could end.
    isReady: () => manager.started || waitingForLeadership,
    healthProblems: () => [...manager.healthProblems(), ...(elector?.healthProblem() ?? [])],
  });
  jsonLog("serving probes and metrics", { address });

  let stopping = false;
  const stopped = new Promise<void>((done) => {
    const shutdown = (signal: string) => {
      if (stopping) return;
      stopping = true;
      jsonLog("shutting down", { signal });
      void (async () => {
        await manager.stop();
        await elector?.release();
        await server.close();
        done();
      })();
    };
    process.once("SIGTERM", () => shutdown("SIGTERM"));
    process.once("SIGINT", () => shutdown("SIGINT"));
  });
  if (elector) {
    waitingForLeadership = true;
    await elector.acquire(() => {
      // Another replica may take over once the lease expires: stop at once, in-flight reconciles included.
      process.exit(1);
    });
    waitingForLeadership = false;
  }
  if (!stopping) await manager.start();
  await stopped;
}
