// Flux's kustomize-controller (the test bed's kustomize-controller peer, v1.9.5 as flux v2.9.5 installs it) run out of
// cluster as upstream's `make run` does: against a test-bed apiserver with Flux's CRDs (harness/flux-crds.ts), watching
// all namespaces, metrics and health on free 127.0.0.1 ports. It downloads each artifact from the source's
// status.artifact.url, so it works beside a source-controller from harness/source-controller.ts, whose artifact
// server advertises 127.0.0.1:<port> (no SOURCE_CONTROLLER_LOCALHOST needed; it would rewrite that URL's host).
import { mkdtemp, rm } from "node:fs/promises";
import { join } from "node:path";
import { binary } from "./binaries.ts";
import { probe } from "./http.ts";
import { freePort, type ManagedProcess, startProcess, waitUntil } from "./processes.ts";

export interface KustomizeController {
  readonly process: ManagedProcess;
  readonly healthAddress: string;
  readonly metricsAddress: string;
  stop(): Promise<void>;
}

export interface KustomizeControllerOptions {
  /** A kubeconfig with the rights kustomize-controller's ClusterRole grants (the test bed's admin one will do). */
  readonly kubeconfig: string;
  /** Parent of the controller's log and temporary directory; a directory is made inside. */
  readonly dir: string;
  /**
   * kustomize-controller flags added after the defaults, e.g. `--feature-gates=StrictPostBuildSubstitutions=true`
   * or `--requeue-dependency=2s` (the default is 30s).
   */
  readonly extraArgs?: readonly string[];
  readonly timeoutMs?: number;
}

export async function startKustomizeController(options: KustomizeControllerOptions): Promise<KustomizeController> {
  const dir = await mkdtemp(join(options.dir, "kustomize-controller-"));
  const [metricsPort, healthPort] = [await freePort(), await freePort()];
  const healthAddress = `127.0.0.1:${healthPort}`;
  const metricsAddress = `127.0.0.1:${metricsPort}`;
  const process = startProcess(
    "kustomize-controller",
    binary("kustomize-controller"),
    [
      `--metrics-addr=${metricsAddress}`,
      `--health-addr=${healthAddress}`,
      "--watch-all-namespaces=true",
      // Overlays may not fetch remote bases (as Flux's multi-tenancy lockdown sets it; flux install does not): the test
      // bed reaches nothing beyond 127.0.0.1, so one that tries fails at once instead of waiting out a timeout.
      "--no-remote-bases=true",
      "--log-level=debug",
      "--log-encoding=json",
      ...(options.extraArgs ?? []),
    ],
    {
      logFile: join(dir, "kustomize-controller.log"),
      // RUNTIME_NAMESPACE names the controller's own namespace (events, --sops-age-secret, leader election when on);
      // TMPDIR keeps the artifacts it extracts for each reconcile inside this directory.
      env: { KUBECONFIG: options.kubeconfig, RUNTIME_NAMESPACE: "flux-system", TMPDIR: dir },
    },
  );
  try {
    await waitUntil("kustomize-controller ready", async () => (await probe(`http://${healthAddress}/readyz`)).status === 200, {
      timeoutMs: options.timeoutMs ?? 60_000,
      intervalMs: 200,
      process,
    });
  } catch (error) {
    await process.stop();
    throw error;
  }
  return {
    process,
    healthAddress,
    metricsAddress,
    async stop() {
      await process.stop();
      await rm(dir, { recursive: true, force: true });
    },
  };
}
