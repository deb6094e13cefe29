// Flux's source-controller (the test bed's source-controller peer, v1.9.5 as flux v2.9.5 installs it) run out of
// cluster as upstream's `make run` does: against a test-bed apiserver with Flux's CRDs (harness/flux-crds.ts), its
// artifact storage in a temporary directory served on 127.0.0.1, metrics and health on free ports.
import { mkdir, mkdtemp, rm } from "node:fs/promises";
import { join } from "node:path";
import { binary } from "./binaries.ts";
import { probe } from "./http.ts";
import { freePort, type ManagedProcess, startProcess, waitUntil } from "./processes.ts";

export interface SourceController {
  readonly process: ManagedProcess;
  /** host:port of the artifact server, the host of every status.artifact.url. */
  readonly storageAddress: string;
  readonly storagePath: string;
  readonly healthAddress: string;
  readonly metricsAddress: string;
  stop(): Promise<void>;
}

export interface SourceControllerOptions {
  /** A kubeconfig with the rights source-controller's ClusterRole grants (the test bed's admin one will do). */
  readonly kubeconfig: string;
  /** Parent of the storage and log; a temporary directory is made inside. */
  readonly dir: string;
  readonly extraArgs?: readonly string[];
  readonly timeoutMs?: number;
}

export async function startSourceController(options: SourceControllerOptions): Promise<SourceController> {
  const dir = await mkdtemp(join(options.dir, "source-controller-"));
  const storagePath = join(dir, "storage");
  await mkdir(storagePath);
  const [storagePort, metricsPort, healthPort] = [await freePort(), await freePort(), await freePort()];
  const storageAddress = `127.0.0.1:${storagePort}`;
  const healthAddress = `127.0.0.1:${healthPort}`;
  const metricsAddress = `127.0.0.1:${metricsPort}`;
  const process = startProcess(
    "source-controller",
    binary("source-controller"),
    [
      `--storage-path=${storagePath}`,
      `--storage-addr=${storageAddress}`,
      `--storage-adv-addr=${storageAddress}`,
      `--metrics-addr=${metricsAddress}`,
      `--health-addr=${healthAddress}`,
      "--watch-all-namespaces=true",
      "--log-level=debug",
      "--log-encoding=json",
      ...(options.extraArgs ?? []),
    ],
    // RUNTIME_NAMESPACE names the controller's own namespace (events, leader election when on).
    { logFile: join(dir, "source-controller.log"), env: { KUBECONFIG: options.kubeconfig, RUNTIME_NAMESPACE: "flux-system" } },
  );
  try {
    await waitUntil("source-controller ready", async () => (await probe(`http://${healthAddress}/readyz`)).status === 200, {
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
    storageAddress,
    storagePath,
    healthAddress,
    metricsAddress,
    async stop() {
      await process.stop();
      await rm(dir, { recursive: true, force: true });
    },
  };
}
