// The two tools `npm run bench:controllers` compares, each started on a cluster it has to itself: Ferry's one
// `ferry controller` process, and Flux's real controllers as test-bed peers run out of cluster (source-controller;
// kustomize-controller once test/harness/kustomize-controller.ts exists). Plus what every row needs: listing objects
// straight from the apiserver, the apiserver's request counter, and memory and CPU of the controllers' processes.
import { execFile } from "node:child_process";
import { existsSync, readdirSync, readFileSync } from "node:fs";
import { cp, mkdir, mkdtemp, readFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { basename, dirname, join } from "node:path";
import { pathToFileURL } from "node:url";
import { pushArtifact } from "../../src/artifact/push.ts";
import { RegistryClient } from "../../src/registry/client.ts";
import { binary } from "../../test/harness/binaries.ts";
import type { ControlPlane } from "../../test/harness/control-plane.ts";
import { FERRY_BUNDLE } from "../../test/harness/ferry.ts";
import { FLUX_KUSTOMIZE_API_VERSION, FLUX_SOURCE_API_VERSION, installFluxCrds } from "../../test/harness/flux-crds.ts";
import { probe } from "../../test/harness/http.ts";
import { type ManagedProcess, startProcess } from "../../test/harness/processes.ts";
import { startSourceController } from "../../test/harness/source-controller.ts";

const CRDS = join(import.meta.dirname, "..", "..", "crds");
/** The kustomize-controller peer's harness, written by another change; the Flux Kustomization rows need it. */
const KUSTOMIZE_CONTROLLER_HARNESS = join(import.meta.dirname, "..", "..", "test", "harness", "kustomize-controller.ts");
/** Both tools honour Flux's annotation (Ferry also reads reconcile.ferry.dev/requestedAt). */
export const REQUESTED_AT = "reconcile.fluxcd.io/requestedAt";
export const PEER_MISSING = "n/a (peer missing)";

export type ToolName = "Ferry" | "Flux";

export interface Controllers {
  /** Root pids of the controllers' processes; their descendants count too. */
  readonly roots: readonly ManagedProcess[];
  stop(): Promise<void>;
}

export interface Tool {
  readonly name: ToolName;
  readonly sourceApiVersion: string;
  readonly kustomizeApiVersion: string;
  /** The API paths of the kinds, for listing: /apis/<group>/<version>/namespaces/<ns>/<plural>. */
  readonly sourcePath: string;
  readonly kustomizationPath: string;
  /** Fully qualified resource names for kubectl: both tools' kinds are called OCIRepository and Kustomization. */
  readonly sourceResource: string;
  readonly kustomizationResource: string;
  /** Why this tool cannot run Kustomizations here, or undefined when it can. */
  kustomizeMissing(): string | undefined;
  installCrds(cluster: ControlPlane): Promise<void>;
  start(cluster: ControlPlane, dir: string, options: { kustomize: boolean }): Promise<Controllers>;
}

const CONCURRENCY = process.env.BENCH_CONTROLLER_CONCURRENCY ?? "4";

/**
 * The bundle every Ferry run uses: a private copy of dist/ taken once at the start, so that a `npm run build` elsewhere
 * in the worktree during a long bench neither breaks a run nor changes the code measured half-way.
 */
let bundle = FERRY_BUNDLE;
export async function pinBundle(): Promise<string> {
  // The bundle reads ../package.json (its version): keep dist/ beside a copy of it.
  const copy = await mkdtemp(join(tmpdir(), "ferry-bench-controllers-dist-"));
  const dist = dirname(FERRY_BUNDLE);
  await cp(dist, join(copy, basename(dist)), { recursive: true });
  await cp(join(dist, "..", "package.json"), join(copy, "package.json"));
  bundle = join(copy, basename(dist), basename(FERRY_BUNDLE));
  return copy;
}

/** `ferry <args>` from the pinned bundle; resolves with stdout, fails with stderr. */
export function ferryBundle(args: readonly string[]): Promise<string> {
  return new Promise((resolve, reject) => {
    execFile(process.execPath, [bundle, ...args], { maxBuffer: 16 * 1024 * 1024 }, (error, stdout, stderr) => {
      if (error) reject(new Error(`ferry ${args.join(" ")} failed: ${stderr}`));
      else resolve(stdout);
    });
  });
}

export const ferryTool: Tool = {
  name: "Ferry",
  sourceApiVersion: "source.ferry.dev/v1",
  kustomizeApiVersion: "kustomize.ferry.dev/v1",
  sourcePath: "/apis/source.ferry.dev/v1/ocirepositories",
  kustomizationPath: "/apis/kustomize.ferry.dev/v1/kustomizations",
  sourceResource: "ocirepositories.source.ferry.dev",
  kustomizationResource: "kustomizations.kustomize.ferry.dev",
  kustomizeMissing: () => undefined,
  async installCrds(cluster) {
    await cluster.kubectl(["apply", "--server-side", "-f", CRDS]);
    await cluster.kubectl(["wait", "--for=condition=Established", "--timeout=60s", "crd/ocirepositories.source.ferry.dev", "crd/kustomizations.kustomize.ferry.dev"]);
  },
  async start(cluster, dir) {
    await mkdir(dir, { recursive: true });
    // One process does sources and Kustomizations, with its heap budget given to Node as the install's Deployment
    // gives it (NODE_OPTIONS, three quarters of the default 1024 MiB limit), so it does not re-run itself.
    const controller = startProcess("ferry controller", process.execPath, [
      "--max-old-space-size=768",
      ...(process.env.BENCH_NODE_OPTIONS ? process.env.BENCH_NODE_OPTIONS.split(" ") : []),
      bundle, "controller", `--kubeconfig=${cluster.kubeconfig}`, `--cache-dir=${join(dir, "ferry-cache")}`, "--health-addr=127.0.0.1:0",
      "--leader-elect=false", `--concurrency=${CONCURRENCY}`,
    ], { logFile: join(dir, "ferry-controller.log"), env: { FERRY_KUSTOMIZE: binary("kustomize") } });
    return { roots: [controller], stop: () => controller.stop() };
  },
};

interface KustomizeControllerHandle {
  readonly process: ManagedProcess;
  stop(): Promise<void>;
}
type StartKustomizeController = (options: {
  kubeconfig: string;
  dir: string;
  extraArgs?: readonly string[];
}) => Promise<KustomizeControllerHandle>;

let kustomizeControllerStarter: StartKustomizeController | undefined;

/** Loads test/harness/kustomize-controller.ts when it exists; undefined until then. */
export async function loadKustomizeController(): Promise<StartKustomizeController | undefined> {
  if (!existsSync(KUSTOMIZE_CONTROLLER_HARNESS)) return undefined;
  const module = await import(pathToFileURL(KUSTOMIZE_CONTROLLER_HARNESS).href) as { startKustomizeController?: StartKustomizeController };
  kustomizeControllerStarter = module.startKustomizeController;
  return kustomizeControllerStarter;
}

export const fluxTool: Tool = {
  name: "Flux",
  sourceApiVersion: FLUX_SOURCE_API_VERSION,
  kustomizeApiVersion: FLUX_KUSTOMIZE_API_VERSION,
  sourcePath: "/apis/source.toolkit.fluxcd.io/v1/ocirepositories",
  kustomizationPath: "/apis/kustomize.toolkit.fluxcd.io/v1/kustomizations",
  sourceResource: "ocirepositories.source.toolkit.fluxcd.io",
  kustomizationResource: "kustomizations.kustomize.toolkit.fluxcd.io",
  kustomizeMissing: () => (kustomizeControllerStarter ? undefined : PEER_MISSING),
  async installCrds(cluster) {
    await installFluxCrds(cluster);
    await cluster.kubectl(["create", "namespace", "flux-system"]);
  },
  async start(cluster, dir, { kustomize }) {
    await mkdir(dir, { recursive: true });
    const source = await startSourceController({ kubeconfig: cluster.kubeconfig, dir, extraArgs: ["--log-level=info", `--concurrent=${CONCURRENCY}`] });
    if (!kustomize) return { roots: [source.process], stop: () => source.stop() };
    if (!kustomizeControllerStarter) {
      await source.stop();
      throw new Error("Flux's kustomize-controller harness is missing");
    }
    const kustomizeController = await kustomizeControllerStarter({
      kubeconfig: cluster.kubeconfig,
      dir,
      extraArgs: ["--log-level=info", `--concurrent=${CONCURRENCY}`],
    });
    return {
      roots: [source.process, kustomizeController.process],
      async stop() {
        await kustomizeController.stop();
        await source.stop();
      },
    };
  },
};

export const TOOLS: readonly Tool[] = [ferryTool, fluxTool];

export interface Condition {
  readonly type: string;
  readonly status: string;
  readonly reason?: string;
  readonly message?: string;
}

export interface Listed {
  readonly items: Array<{
    metadata: { namespace: string; name: string; generation?: number };
    status?: {
      conditions?: Condition[];
      observedGeneration?: number;
      lastHandledReconcileAt?: string;
      lastAppliedRevision?: string;
      artifact?: { revision?: string };
    };
  }>;
}

export type Item = Listed["items"][number];

export const isReady = (item: Item) => item.status?.conditions?.some((condition) => condition.type === "Ready" && condition.status === "True") === true;

/** GET of an apiserver path as the admin, parsed; cheaper than a kubectl process per poll. */
export async function getJson<T>(cluster: ControlPlane, path: string): Promise<T> {
  const ca = await readFile(cluster.caFile);
  const response = await probe(`${cluster.server}${path}`, { ca, bearerToken: cluster.adminToken, timeoutMs: 60_000 });
  if (response.status !== 200) throw new Error(`GET ${path}: ${response.status} ${response.body.toString().slice(0, 300)}`);
  return JSON.parse(response.body.toString()) as T;
}

/** apiserver_request_total summed over everything, from the apiserver's /metrics. */
export async function apiserverRequests(cluster: ControlPlane): Promise<number> {
  const ca = await readFile(cluster.caFile);
  const metrics = (await probe(`${cluster.server}/metrics`, { ca, bearerToken: cluster.adminToken, timeoutMs: 60_000 })).body.toString();
  let total = 0;
  for (const line of metrics.split("\n")) if (line.startsWith("apiserver_request_total{")) total += Number(line.split(" ").at(-1));
  return total;
}

function readFileSyncSafe(path: string): string {
  try {
    return readFileSync(path, "utf8");
  } catch {
    return "";
  }
}

/** The process and its descendants, from every thread's children list (Go programs fork from any thread). */
function processTree(pid: number): number[] {
  let tasks: string[];
  try {
    tasks = readdirSync(`/proc/${pid}/task`);
  } catch {
    return [];
  }
  const children = tasks.flatMap((task) => readFileSyncSafe(`/proc/${pid}/task/${task}/children`).trim().split(/\s+/).filter(Boolean).map(Number));
  return [pid, ...children.flatMap(processTree)];
}

/** Every pid of the controllers: the roots and their descendants. */
export function controllerPids(controllers: Controllers): number[] {
  return controllers.roots.flatMap((root) => (root.pid === undefined ? [] : processTree(root.pid)));
}

/** Peak RSS (VmHWM) summed over the controllers' processes, in MiB. */
export function peakRssMiB(controllers: Controllers): number {
  let kib = 0;
  for (const pid of controllerPids(controllers)) kib += Number(/VmHWM:\s+(\d+) kB/.exec(readFileSyncSafe(`/proc/${pid}/status`))?.[1] ?? 0);
  return kib / 1024;
}

const CLOCK_TICKS = 100;

/** utime + stime of the controllers' processes so far, in seconds (/proc/<pid>/stat; USER_HZ is 100 on Linux). */
export function cpuSeconds(controllers: Controllers): number {
  let ticks = 0;
  for (const pid of controllerPids(controllers)) {
    const stat = readFileSyncSafe(`/proc/${pid}/stat`);
    // The command name may hold spaces; fields after its closing parenthesis are fixed.
    const fields = stat.slice(stat.lastIndexOf(")") + 2).split(" ");
    ticks += Number(fields[11] ?? 0) + Number(fields[12] ?? 0);
  }
  return ticks / CLOCK_TICKS;
}

/** Objects as a List for one `kubectl apply --server-side`. */
export async function applyObjects(cluster: ControlPlane, items: readonly object[]): Promise<void> {
  for (let index = 0; index < items.length; index += 500) {
    await cluster.kubectl(["apply", "--server-side", "-f", "-"], { input: JSON.stringify({ apiVersion: "v1", kind: "List", items: items.slice(index, index + 500) }) });
  }
}

/** Annotates every object of the resource (all namespaces) with a new reconcile request; returns its value. */
export async function requestReconcile(
  cluster: ControlPlane,
  resource: string,
  names?: { namespace: string; name: string },
): Promise<string> {
  const requestedAt = new Date().toISOString();
  const target = names ? [resource, names.name, "-n", names.namespace] : ["--all", "-A", resource];
  await cluster.kubectl(["annotate", "--overwrite", ...target, `${REQUESTED_AT}=${requestedAt}`]);
  return requestedAt;
}

/** Polls a list until `done` holds for every item (and there are `count`); resolves with the ms it took from `since`. */
export async function waitForAll(
  cluster: ControlPlane,
  path: string,
  count: number,
  description: string,
  done: (item: Item) => boolean,
  options: { since: number; timeoutMs?: number; intervalMs?: number; controllers?: Controllers },
): Promise<number> {
  const deadline = Date.now() + (options.timeoutMs ?? 30 * 60_000);
  let last: Listed | undefined;
  let abandoned = false;
  const poll = async (): Promise<number> => {
    while (!abandoned) {
      last = await getJson<Listed>(cluster, path).catch(() => last);
      if (last && last.items.length === count && last.items.every(done)) return Date.now() - options.since;
      if (Date.now() > deadline) {
        const stuck = last?.items.find((item) => !done(item));
        throw new Error(`timed out waiting for ${description}: ${last?.items.filter(done).length ?? 0}/${count}; first not done: `
          + `${stuck?.metadata.namespace}/${stuck?.metadata.name} ${JSON.stringify(stuck?.status?.conditions)}`);
      }
      await new Promise((resolve) => setTimeout(resolve, options.intervalMs ?? 500));
    }
    return Number.NaN;
  };
  try {
    // A controller that dies fails the wait at once, with its log.
    return await Promise.race([poll(), ...(options.controllers?.roots ?? []).map((root) => root.exited)]);
  } finally {
    abandoned = true;
  }
}

/** Pushes the same tree to many repositories (tag v1), 16 at a time, straight to the registry. */
export async function pushTrees(registryHost: string, repositories: readonly string[], path: string): Promise<void> {
  const client = new RegistryClient({ insecure: true });
  try {
    for (let index = 0; index < repositories.length; index += 16) {
      await Promise.all(repositories.slice(index, index + 16).map((repository) =>
        pushArtifact(client, { registry: registryHost, repository, tag: "v1" }, { path, source: "bench", revision: repository, reproducible: true })));
    }
  } finally {
    await client.close();
  }
}

export const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));
