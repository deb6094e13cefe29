// A delivery test bed for e2e tests: control plane with kwok, zot, Ferry's CRDs and RBAC, and the controller
// running as its ServiceAccount; helpers to push directories as artifacts and to wait on Kustomizations.
import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { controllerRbac } from "../../src/api/rbac.ts";
import { binary } from "./binaries.ts";
import { type ControlPlane, startControlPlane } from "./control-plane.ts";
import { FERRY_CLI, ferryOk } from "./ferry.ts";
import { type ManagedProcess, startProcess, waitUntil } from "./processes.ts";
import { type Registry, startRegistry } from "./registry.ts";

const CRDS = join(import.meta.dirname, "..", "..", "crds");

export interface Condition {
  type: string;
  status: string;
  reason: string;
  message: string;
}

export interface ObservedKustomization {
  metadata: { generation?: number; resourceVersion?: string };
  status?: {
    conditions?: Condition[];
    lastAppliedRevision?: string;
    lastAttemptedRevision?: string;
    observedGeneration?: number;
    inventory?: { entries: Array<{ id: string; v: string }> };
  };
}

export function condition(object: ObservedKustomization | undefined, type: string): Condition | undefined {
  return object?.status?.conditions?.find((candidate) => candidate.type === type);
}

export class DeliveryBed {
  readonly cluster: ControlPlane;
  readonly registry: Registry;
  readonly dir: string;
  #controller: ManagedProcess | undefined;
  #controllerKubeconfig = "";
  #starts = 0;

  private constructor(cluster: ControlPlane, registry: Registry, dir: string) {
    this.cluster = cluster;
    this.registry = registry;
    this.dir = dir;
  }

  static async start(): Promise<DeliveryBed> {
    const dir = await mkdtemp(join(tmpdir(), "ferry-e2e-delivery-"));
    const [cluster, registry] = await Promise.all([startControlPlane(), startRegistry({ kind: "zot" })]);
    const bed = new DeliveryBed(cluster, registry, dir);
    await cluster.kubectl(["apply", "--server-side", "-f", CRDS]);
    await cluster.kubectl(["wait", "--for=condition=Established", "crd/kustomizations.kustomize.ferry.dev", "crd/ocirepositories.source.ferry.dev"]);
    await cluster.kubectl(["create", "namespace", "ferry-system"]);
    // As the install labels it; `ferry install` refuses a namespace Ferry did not create.
    await cluster.kubectl(["label", "namespace", "ferry-system", "app.kubernetes.io/part-of=ferry"]);
    await bed.applyObjects(controllerRbac("ferry-system", "ferry-controller"));
    bed.#controllerKubeconfig = await cluster.serviceAccountKubeconfig("ferry-system", "ferry-controller");
    return bed;
  }

  get controller(): ManagedProcess | undefined {
    return this.#controller;
  }

  /** `preload` is a module run inside the controller first (`node --import`), such as a fault from harness/faults. */
  startController(extraArgs: readonly string[] = [], env: Record<string, string> = {}, preload?: string): ManagedProcess {
    this.#starts += 1;
    this.#controller = startProcess(
      "ferry controller",
      process.execPath,
      [
        ...(preload ? ["--import", preload] : []),
        FERRY_CLI, "controller", `--kubeconfig=${this.#controllerKubeconfig}`, `--cache-dir=${join(this.dir, "cache")}`,
        "--health-addr=127.0.0.1:0", "--leader-elect=false", "--requeue-dependency=2s", ...extraArgs,
      ],
      { logFile: join(this.dir, `controller-${this.#starts}.log`), env: { FERRY_KUSTOMIZE: binary("kustomize"), ...env } },
    );
    return this.#controller;
  }

  async stop(): Promise<void> {
    await this.#controller?.stop();
    await Promise.all([this.registry.stop(), this.cluster.stop()]);
    await rm(this.dir, { recursive: true, force: true });
  }

  /** Pushes `path` to oci://<registry>/<repository>:<tag>; returns the digest. */
  async push(path: string, repository: string, tag = "v1"): Promise<string> {
    const url = `oci://${this.registry.host}/${repository}:${tag}`;
    return (await ferryOk(["push", "artifact", url, `--path=${path}`, "--source=e2e", "--revision=r", "--insecure-registry"])).stdout.trim();
  }

  async applyObjects(objects: readonly unknown[]): Promise<void> {
    await this.cluster.kubectl(["apply", "--server-side", "--force-conflicts", "-f", "-"], { input: JSON.stringify({ apiVersion: "v1", kind: "List", items: objects }) });
  }

  /** An OCIRepository following `repository:tag` and a Kustomization applying it, both named `name`. */
  async deliver(namespace: string, name: string, repository: string, spec: Record<string, unknown>, tag = "v1"): Promise<void> {
    await this.applyObjects([
      {
        apiVersion: "source.ferry.dev/v1",
        kind: "OCIRepository",
        metadata: { namespace, name },
        spec: { url: `oci://${this.registry.host}/${repository}`, ref: { tag }, interval: "1h", insecure: true },
      },
      {
        apiVersion: "kustomize.ferry.dev/v1",
        kind: "Kustomization",
        metadata: { namespace, name },
        spec: { sourceRef: { kind: "OCIRepository", name }, path: "./", interval: "1h", prune: true, ...spec },
      },
    ]);
  }

  async kustomization(namespace: string, name: string): Promise<ObservedKustomization> {
    return JSON.parse(await this.cluster.kubectl(["get", "kustomization", name, "-n", namespace, "-o", "json"]));
  }

  async waitForKustomization(
    namespace: string,
    name: string,
    description: string,
    check: (object: ObservedKustomization) => boolean,
    timeoutMs = 90_000,
  ): Promise<ObservedKustomization> {
    let last: ObservedKustomization | undefined;
    const poll = async () => check((last = await this.kustomization(namespace, name)));
    await waitUntil(`${namespace}/${name}: ${description}`, poll, { timeoutMs, intervalMs: 300, ...(this.#controller ? { process: this.#controller } : {}) })
      .catch((error: Error) => {
        throw new Error(`${error.message}\nlast status: ${JSON.stringify(last?.status, null, 2)}`);
      });
    return last as ObservedKustomization;
  }

  /** Re-fetches the source now (the OCIRepositories of these tests use a long interval). */
  async reconcileSource(namespace: string, name: string): Promise<void> {
    await ferryOk(["reconcile", "source", "oci", name, "-n", namespace, `--kubeconfig=${this.cluster.kubeconfig}`]);
  }

  async getJson(args: readonly string[]): Promise<Record<string, unknown>> {
    return JSON.parse(await this.cluster.kubectl(["get", ...args, "-o", "json"]));
  }
}

export function readyWith(revisionDigest: string): (object: ObservedKustomization) => boolean {
  return (object) => object.status?.lastAppliedRevision?.endsWith(revisionDigest) === true && condition(object, "Ready")?.status === "True";
}
