// A light bed for tests of the controller process itself (watches, leader election, probes): etcd and
// kube-apiserver only, zot, Ferry's CRDs and RBAC, and controller replicas running as the controller's
// ServiceAccount, each optionally through its own TCP proxy so a test can cut it off from the apiserver.
import { mkdtemp, readFile, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { controllerRbac } from "../../src/api/rbac.ts";
import { type ControlPlane, startControlPlane } from "./control-plane.ts";
import { FERRY_CLI, ferryOk } from "./ferry.ts";
import { probe } from "./http.ts";
import { freePort, type ManagedProcess, startProcess, waitUntil } from "./processes.ts";
import { type Registry, startRegistry } from "./registry.ts";
import { startTcpProxy, type TcpProxy } from "./tcp-proxy.ts";

const CRDS = join(import.meta.dirname, "..", "..", "crds");

/** One line of the controller's JSON log. */
export interface LogLine {
  readonly msg: string;
  /** Milliseconds since the epoch (from `ts`). */
  readonly at: number;
  readonly fields: Record<string, unknown>;
}

export interface Replica {
  readonly process: ManagedProcess;
  readonly healthUrl: string;
  /** The proxy between this replica and the apiserver, when it was started behind one. */
  readonly proxy?: TcpProxy;
  logs(): Promise<LogLine[]>;
}

export interface ObservedRepository {
  metadata: { generation?: number };
  status?: { artifact?: { revision?: string }; conditions?: Array<{ type: string; status: string }> };
}

export class ControllerBed {
  readonly cluster: ControlPlane;
  readonly registry: Registry;
  readonly dir: string;
  readonly #kubeconfig: string;
  readonly #replicas: Replica[] = [];

  private constructor(cluster: ControlPlane, registry: Registry, dir: string, kubeconfig: string) {
    this.cluster = cluster;
    this.registry = registry;
    this.dir = dir;
    this.#kubeconfig = kubeconfig;
  }

  static async start(options: { apiserverArgs?: readonly string[] } = {}): Promise<ControllerBed> {
    const dir = await mkdtemp(join(tmpdir(), "ferry-e2e-controller-"));
    const [cluster, registry] = await Promise.all([
      startControlPlane({ apiserverOnly: true, ...(options.apiserverArgs ? { apiserverArgs: options.apiserverArgs } : {}) }),
      startRegistry({ kind: "zot" }),
    ]);
    await cluster.kubectl(["apply", "--server-side", "-f", CRDS]);
    await cluster.kubectl(["wait", "--for=condition=Established", "crd/ocirepositories.source.ferry.dev", "crd/kustomizations.kustomize.ferry.dev", "--timeout=30s"]);
    await cluster.kubectl(["create", "namespace", "ferry-system"]);
    const rbac = controllerRbac("ferry-system", "ferry-controller", { applier: false });
    await cluster.kubectl(["apply", "-f", "-"], { input: JSON.stringify({ apiVersion: "v1", kind: "List", items: rbac }) });
    const kubeconfig = await cluster.serviceAccountKubeconfig("ferry-system", "ferry-controller");
    return new ControllerBed(cluster, registry, dir, kubeconfig);
  }

  /**
   * Starts `ferry controller` as the controller's ServiceAccount (without leader election unless `args` ask for
   * it), behind its own TCP proxy when `behindProxy`; resolves once /readyz answers.
   */
  async startController(
    name: string,
    args: readonly string[],
    options: { behindProxy?: boolean; env?: Readonly<Record<string, string>> } = {},
  ): Promise<Replica> {
    const proxy = options.behindProxy ? await startTcpProxy({ host: "127.0.0.1", port: Number(new URL(this.cluster.server).port) }) : undefined;
    const kubeconfig = proxy ? await this.#kubeconfigThrough(proxy, name) : this.#kubeconfig;
    const port = await freePort();
    const logFile = join(this.dir, `controller-${name}.log`);
    const process_ = startProcess(`ferry controller ${name}`, process.execPath, [
      FERRY_CLI, "controller", `--kubeconfig=${kubeconfig}`, `--cache-dir=${join(this.dir, `cache-${name}`)}`,
      `--health-addr=127.0.0.1:${port}`, "--leader-elect=false", ...args,
    ], { logFile, ...(options.env ? { env: options.env } : {}) });
    const healthUrl = `http://127.0.0.1:${port}`;
    const replica: Replica = { process: process_, healthUrl, ...(proxy ? { proxy } : {}), logs: () => readLogLines(logFile) };
    this.#replicas.push(replica);
    await waitUntil(`controller ${name} /readyz`, async () => (await probe(`${healthUrl}/readyz`)).status === 200, { timeoutMs: 30_000, process: process_ });
    return replica;
  }

  async #kubeconfigThrough(proxy: TcpProxy, name: string): Promise<string> {
    // The apiserver's certificate names 127.0.0.1, not a port, so it verifies through the proxy unchanged.
    const proxied = (await readFile(this.#kubeconfig, "utf8")).replace(this.cluster.server, `https://127.0.0.1:${proxy.port}`);
    const path = join(this.dir, `${name}-through-proxy.kubeconfig`);
    await writeFile(path, proxied, { mode: 0o600 });
    return path;
  }

  /** Pushes a one-ConfigMap artifact to oci://<zot>/<repository>:<tag>; returns its digest. */
  async push(repository: string, tag: string): Promise<string> {
    const source = await mkdtemp(join(this.dir, "source-"));
    await writeFile(join(source, "configmap.yaml"), `apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: ${repository.replace(/\W/g, "-")}\ndata:\n  tag: "${tag}"\n`);
    const url = `oci://${this.registry.host}/${repository}:${tag}`;
    return (await ferryOk(["push", "artifact", url, `--path=${source}`, "--source=e2e", "--revision=r", "--insecure-registry"])).stdout.trim();
  }

  /** Creates or changes OCIRepository default/<name> following <zot>/<repository>:<tag>. */
  async applyRepository(name: string, repository: string, tag: string, interval = "1h"): Promise<void> {
    await this.cluster.kubectl(["apply", "--server-side", "--force-conflicts", "-f", "-"], {
      input: JSON.stringify({
        apiVersion: "source.ferry.dev/v1",
        kind: "OCIRepository",
        metadata: { namespace: "default", name },
        spec: { url: `oci://${this.registry.host}/${repository}`, ref: { tag }, interval, insecure: true },
      }),
    });
  }

  async repository(name: string): Promise<ObservedRepository> {
    return JSON.parse(await this.cluster.kubectl(["get", "ocirepository", name, "-n", "default", "-o", "json"])) as ObservedRepository;
  }

  /** Waits until default/<name> has stored `tag@digest`; resolves with when that was first seen (Date.now()). */
  async waitForRevision(name: string, revision: string, timeoutMs: number, replica?: Replica): Promise<number> {
    await waitUntil(`${name} at ${revision}`, async () => (await this.repository(name)).status?.artifact?.revision === revision, {
      timeoutMs,
      intervalMs: 100,
      ...(replica ? { process: replica.process } : {}),
    });
    return Date.now();
  }

  async stop(): Promise<void> {
    for (const replica of this.#replicas) {
      await replica.process.stop();
      await replica.proxy?.stop();
    }
    await Promise.all([this.registry.stop(), this.cluster.stop()]);
    await rm(this.dir, { recursive: true, force: true });
  }
}

async function readLogLines(logFile: string): Promise<LogLine[]> {
  const text = await readFile(logFile, "utf8").catch(() => "");
  return text.split("\n").filter((line) => line.startsWith("{")).flatMap((line) => {
    try {
      const { msg, ts, ...fields } = JSON.parse(line) as { msg: string; ts: string } & Record<string, unknown>;
      return [{ msg, at: Date.parse(ts), fields }];
    } catch {
      return [];
    }
  });
}
