// A real Kubernetes control plane on 127.0.0.1: etcd, kube-apiserver (RBAC, token auth), controller-manager,
// scheduler and kwok with one fake node, so Deployments really get pods that become Ready.
import { execFile } from "node:child_process";
import { generateKeyPairSync, randomBytes } from "node:crypto";
import { mkdir, mkdtemp, readFile, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { promisify } from "node:util";
import { binary, sharedFile } from "./binaries.ts";
import { probe } from "./http.ts";
import { freePort, type ManagedProcess, startProcess, waitUntil } from "./processes.ts";

const exec = promisify(execFile);

export const FAKE_NODE_NAME = "kwok-node-0";

export interface ControlPlane {
  /** Base URL of the kube-apiserver, https://127.0.0.1:<port>. */
  readonly server: string;
  /** CA bundle that verifies the apiserver's serving certificate. */
  readonly caFile: string;
  /** kubeconfig of a cluster-admin user (member of system:masters). */
  readonly kubeconfig: string;
  readonly adminToken: string;
  readonly dir: string;
  /** Client URL of etcd, http://127.0.0.1:<port>. */
  readonly etcdUrl: string;
  /**
   * Stops kube-apiserver (SIGTERM, as a rollout or crash-restart would) and starts it again on the same port with
   * the same flags plus `extraArgs`; resolves once /readyz answers 200 again.
   */
  restartApiserver(options?: { extraArgs?: readonly string[]; downMs?: number }): Promise<void>;
  /** Runs the test bed's kubectl against this cluster (admin unless `kubeconfig` is given). */
  kubectl(args: readonly string[], options?: { kubeconfig?: string; input?: string }): Promise<string>;
  /**
   * Creates (if needed) a ServiceAccount and writes a kubeconfig that authenticates as it with a bound token,
   * so tests exercise real RBAC rather than cluster-admin.
   */
  serviceAccountKubeconfig(namespace: string, name: string): Promise<string>;
  stop(): Promise<void>;
}

export interface ControlPlaneOptions {
  /** Total time allowed for everything to become ready. */
  readonly timeoutMs?: number;
  /** Only etcd and kube-apiserver: enough for custom resources, much lighter for benchmarks. */
  readonly apiserverOnly?: boolean;
  /** Keep the working directory (logs, etcd data) after stop, for debugging. */
  readonly keepDir?: boolean;
  /** Extra kube-apiserver flags, e.g. --watch-cache=false. */
  readonly apiserverArgs?: readonly string[];
}

function kubeconfigYaml(server: string, caFile: string, user: string, token: string): string {
  return [
    "apiVersion: v1",
    "kind: Config",
    "clusters:",
    "- name: ferry-testbed",
    "  cluster:",
    `    server: ${server}`,
    `    certificate-authority: ${caFile}`,
    "users:",
    `- name: ${user}`,
    "  user:",
    `    token: ${token}`,
    "contexts:",
    "- name: ferry-testbed",
    "  context:",
    "    cluster: ferry-testbed",
    `    user: ${user}`,
    "current-context: ferry-testbed",
    "",
  ].join("\n");
}

async function startEtcd(dir: string): Promise<{ process: ManagedProcess; url: string }> {
  const [clientPort, peerPort] = [await freePort(), await freePort()];
  const url = `http://127.0.0.1:${clientPort}`;
  const peerUrl = `http://127.0.0.1:${peerPort}`;
  const etcd = startProcess(
    "etcd",
    binary("etcd"),
    [
      "--name=node0",
      `--data-dir=${join(dir, "etcd")}`,
      `--listen-client-urls=${url}`,
      `--advertise-client-urls=${url}`,
      `--listen-peer-urls=${peerUrl}`,
      `--initial-advertise-peer-urls=${peerUrl}`,
      `--initial-cluster=node0=${peerUrl}`,
      // Test data is disposable; fsync dominates etcd latency on shared disks.
      "--unsafe-no-fsync",
      "--log-level=warn",
    ],
    { logFile: join(dir, "etcd.log") },
  );
  return { process: etcd, url };
}

export async function startControlPlane(options: ControlPlaneOptions = {}): Promise<ControlPlane> {
  const timeoutMs = options.timeoutMs ?? 90_000;
  const deadline = Date.now() + timeoutMs;
  const remaining = () => Math.max(1_000, deadline - Date.now());
  const dir = await mkdtemp(join(tmpdir(), "ferry-cp-"));
  const processes: ManagedProcess[] = [];
  let stopped = false;

  const stop = async () => {
    if (stopped) return;
    stopped = true;
    for (const child of [...processes].reverse()) await child.stop();
    if (!options.keepDir) await rm(dir, { recursive: true, force: true });
  };

  try {
    const pki = join(dir, "pki");
    await mkdir(pki);
    const saKey = join(pki, "sa.key");
    const { privateKey } = generateKeyPairSync("ec", { namedCurve: "prime256v1" });
    await writeFile(saKey, privateKey.export({ type: "sec1", format: "pem" }), { mode: 0o600 });
    const adminToken = randomBytes(24).toString("hex");
    await writeFile(join(dir, "tokens.csv"), `${adminToken},ferry-admin,ferry-admin,"system:masters"\n`, {
      mode: 0o600,
    });

    const etcd = await startEtcd(dir);
    processes.push(etcd.process);
    await waitUntil("etcd /health", async () => (await probe(`${etcd.url}/health`)).status === 200, {
      timeoutMs: remaining(),
      process: etcd.process,
    });

    const apiPort = await freePort();
    const server = `https://127.0.0.1:${apiPort}`;
    const apiserverArgs = [
      `--etcd-servers=${etcd.url}`,
      "--bind-address=127.0.0.1",
      `--secure-port=${apiPort}`,
      `--cert-dir=${pki}`,
      // A loopback advertise address is refused by the endpoint reconcilers, which have nothing to do here.
      "--advertise-address=127.0.0.1",
      "--endpoint-reconciler-type=none",
      `--token-auth-file=${join(dir, "tokens.csv")}`,
      "--authorization-mode=Node,RBAC",
      "--service-account-issuer=https://kubernetes.default.svc.cluster.local",
      `--service-account-key-file=${saKey}`,
      `--service-account-signing-key-file=${saKey}`,
      "--service-cluster-ip-range=10.0.0.0/24",
      "--allow-privileged=true",
      "--enable-priority-and-fairness=false",
      "--max-requests-inflight=0",
      "--max-mutating-requests-inflight=0",
      "--v=0",
      ...(options.apiserverArgs ?? []),
    ];
    const startApiserver = (extraArgs: readonly string[] = []) =>
      startProcess("kube-apiserver", binary("kube-apiserver"), [...apiserverArgs, ...extraArgs], { logFile: join(dir, "kube-apiserver.log") });
    let apiserver = startApiserver();
    processes.push(apiserver);
    const caFile = join(pki, "apiserver.crt");
    const apiserverReady = (timeoutMs: number) => waitUntil(
      "kube-apiserver /readyz",
      async () => {
        const ca = await readFile(caFile);
        return (await probe(`${server}/readyz`, { ca, bearerToken: adminToken })).status === 200;
      },
      { timeoutMs, process: apiserver, intervalMs: 200 },
    );
    await apiserverReady(remaining());

    const restartApiserver = async ({ extraArgs = [], downMs = 0 }: { extraArgs?: readonly string[]; downMs?: number } = {}) => {
      await apiserver.stop();
      await new Promise((resolve) => setTimeout(resolve, downMs));
      const restarted = startApiserver(extraArgs);
      processes[processes.indexOf(apiserver)] = restarted;
      apiserver = restarted;
      await apiserverReady(60_000);
    };

    const kubeconfig = join(dir, "admin.kubeconfig");
    await writeFile(kubeconfig, kubeconfigYaml(server, caFile, "ferry-admin", adminToken), { mode: 0o600 });

    const kubectl = async (args: readonly string[], opts: { kubeconfig?: string; input?: string } = {}) => {
      const child = exec(binary("kubectl"), [`--kubeconfig=${opts.kubeconfig ?? kubeconfig}`, ...args], {
        maxBuffer: 64 * 1024 * 1024,
      });
      if (opts.input !== undefined) child.child.stdin?.end(opts.input);
      try {
        return (await child).stdout;
      } catch (error) {
        const stderr = (error as { stderr?: string }).stderr?.trim() ?? "";
        throw new Error(`kubectl ${args.join(" ")} failed: ${stderr || (error as Error).message}`, {
          cause: error,
        });
      }
    };

    const serviceAccountKubeconfig = async (namespace: string, name: string) => {
      await kubectl(["apply", "-f", "-"], {
        input: JSON.stringify({ apiVersion: "v1", kind: "ServiceAccount", metadata: { namespace, name } }),
      });
      const token = (await kubectl(["create", "token", name, "-n", namespace, "--duration=2h"])).trim();
      const path = join(dir, `sa-${namespace}-${name}.kubeconfig`);
      await writeFile(path, kubeconfigYaml(server, caFile, `system:serviceaccount:${namespace}:${name}`, token), {
        mode: 0o600,
      });
      return path;
    };
    const controls = { etcdUrl: etcd.url, restartApiserver };
    if (options.apiserverOnly) return { server, caFile, kubeconfig, adminToken, dir, kubectl, serviceAccountKubeconfig, stop, ...controls };

    const componentArgs = async (name: string) => [
      `--kubeconfig=${kubeconfig}`,
      `--authentication-kubeconfig=${kubeconfig}`,
      `--authorization-kubeconfig=${kubeconfig}`,
      "--leader-elect=false",
      "--bind-address=127.0.0.1",
      `--secure-port=${await freePort()}`,
      `--cert-dir=${join(dir, name)}`,
      "--authorization-always-allow-paths=/healthz,/readyz,/livez,/metrics",
    ];
    processes.push(
      startProcess(
        "kube-controller-manager",
        binary("kube-controller-manager"),
        [
          ...(await componentArgs("kube-controller-manager")),
          `--root-ca-file=${caFile}`,
          `--service-account-private-key-file=${saKey}`,
          "--use-service-account-credentials=false",
        ],
        { logFile: join(dir, "kube-controller-manager.log") },
      ),
      startProcess("kube-scheduler", binary("kube-scheduler"), await componentArgs("kube-scheduler"), {
        logFile: join(dir, "kube-scheduler.log"),
      }),
    );
    const stages = [
      "node-initialize",
      "node-heartbeat-with-lease",
      "pod-ready",
      "pod-complete",
      "pod-delete",
    ].map((stage) => `--config=${sharedFile(`kwok-stages/${stage}.yaml`)}`);
    const kwok = startProcess(
      "kwok",
      binary("kwok"),
      [
        `--kubeconfig=${kubeconfig}`,
        "--manage-all-nodes=false",
        "--manage-nodes-with-annotation-selector=kwok.x-k8s.io/node=fake",
        "--manage-nodes-with-label-selector=",
        "--manage-single-node=",
        "--cidr=10.0.0.0/24",
        "--node-ip=10.0.0.1",
        "--node-lease-duration-seconds=40",
        ...stages,
      ],
      { logFile: join(dir, "kwok.log") },
    );
    processes.push(kwok);

    await kubectl(["apply", "-f", "-"], {
      input: JSON.stringify({
        apiVersion: "v1",
        kind: "Node",
        metadata: {
          name: FAKE_NODE_NAME,
          annotations: { "kwok.x-k8s.io/node": "fake", "node.alpha.kubernetes.io/ttl": "0" },
          labels: { type: "kwok", "kubernetes.io/hostname": FAKE_NODE_NAME, "kubernetes.io/os": "linux" },
        },
        spec: {},
      }),
    });

    const allComponents = Promise.race(processes.map((child) => child.exited));
    await Promise.race([
      allComponents,
      Promise.all([
        waitUntil(
          `node ${FAKE_NODE_NAME} Ready`,
          async () =>
            (
              await kubectl([
                "get",
                "node",
                FAKE_NODE_NAME,
                "-o",
                "jsonpath={.status.conditions[?(@.type==\"Ready\")].status}",
              ])
            ).trim() === "True",
          { timeoutMs: remaining(), intervalMs: 250 },
        ),
        // Pods are refused by ServiceAccount admission until the controller-manager creates `default`.
        waitUntil(
          "ServiceAccount default/default",
          async () => (await kubectl(["get", "serviceaccount", "default", "-o", "name"])).trim() !== "",
          { timeoutMs: remaining(), intervalMs: 250 },
        ),
      ]),
    ]);

    return { server, caFile, kubeconfig, adminToken, dir, kubectl, serviceAccountKubeconfig, stop, ...controls };
  } catch (error) {
    await stop();
    throw error;
  }
}
