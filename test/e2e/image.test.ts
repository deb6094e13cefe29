// The controller image really runs: built by `npm run image` for this machine's platform, loaded into podman, run
// as the install's Deployment runs it (uid 65532, read-only root, no capabilities, no new privileges, tmpfs cache
// and /tmp, the Deployment's own args) with the ferry-controller ServiceAccount's token mounted where a pod has it,
// it reconciles podinfo from the test bed's registry; kustomize runs inside ferry-sandbox (Landlock) in the container.
import assert from "node:assert/strict";
import { chmod, chown, mkdir, mkdtemp, readFile, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, before, describe, test } from "node:test";
import { installManifests } from "../../src/install/manifests.ts";
import { skipUnlessBuilt } from "../harness/binaries.ts";
import { type ControlPlane, startControlPlane } from "../harness/control-plane.ts";
import { ferryOk } from "../harness/ferry.ts";
import { buildImage } from "../harness/image.ts";
import { Podman, skipUnlessPodman } from "../harness/podman.ts";
import { freePort, waitUntil } from "../harness/processes.ts";
import { type Registry, startRegistry } from "../harness/registry.ts";

const PODINFO = join(import.meta.dirname, "..", "..", "..", "shared", "corpora", "podinfo", "kustomize");
const NAMESPACE = "ferry-system";
const IMAGE = "localhost/ferry:e2e";
const CONTAINER = "ferry-controller-e2e";
const PLATFORM = process.arch === "arm64" ? "linux/arm64" : "linux/amd64";

interface DeploymentObject {
  kind: string;
  spec: { template: { spec: { containers: { args: string[] }[] } } };
}

/** The args the install's Deployment gives the container, with the probe port moved off the shared host network. */
async function deploymentArgs(): Promise<string[]> {
  const deployment = installManifests({ image: IMAGE }).find((object) => (object as DeploymentObject).kind === "Deployment") as DeploymentObject;
  const args = deployment.spec.template.spec.containers[0]?.args ?? [];
  const healthPort = await freePort();
  return args.map((arg) => (arg.startsWith("--health-addr=") ? `--health-addr=127.0.0.1:${healthPort}` : arg));
}

describe("the controller image", { skip: (await skipUnlessPodman()) || skipUnlessBuilt("etcd", "kube-apiserver", "kube-controller-manager", "kube-scheduler", "kubectl", "kwok", "zot") }, () => {
  let cluster: ControlPlane;
  let registry: Registry;
  let podman: Podman;
  let dir: string;

  /** The ServiceAccount's token, CA and namespace, laid out as the kubelet mounts them into a pod. */
  async function serviceAccountVolume(): Promise<string> {
    const volume = join(dir, "serviceaccount");
    await mkdir(volume);
    const token = (await cluster.kubectl(["create", "token", "ferry-controller", "-n", NAMESPACE, "--duration=1h"])).trim();
    await writeFile(join(volume, "token"), token);
    await writeFile(join(volume, "ca.crt"), await readFile(cluster.caFile));
    await writeFile(join(volume, "namespace"), NAMESPACE);
    // Readable by uid 65532, as the kubelet's projected volume is (fsGroup).
    for (const name of ["token", "ca.crt", "namespace"]) await chmod(join(volume, name), 0o644);
    await chmod(volume, 0o755);
    return volume;
  }

  /** A host directory owned by 65532, as the kubelet gives a pod with fsGroup 65532 an emptyDir. */
  async function emptyDir(name: string): Promise<string> {
    const path = join(dir, name);
    await mkdir(path, { mode: 0o700 });
    await chown(path, 65532, 65532);
    return path;
  }

  before(async () => {
    dir = await mkdtemp(join(tmpdir(), "ferry-e2e-image-"));
    await chmod(dir, 0o755);
    [cluster, registry, podman] = await Promise.all([startControlPlane(), startRegistry({ kind: "zot" }), Podman.start()]);
    const built = await buildImage(["--output", join(dir, "layout"), "--platform", PLATFORM, "--tag", "e2e"]);
    console.log(`# image build (${PLATFORM}): ${built.seconds.toFixed(1)} s`);
    await podman.load(join(dir, "layout"), "e2e", IMAGE);
    // Everything of the install but the Deployment, whose pod this container stands in for (kwok would only fake it).
    const objects = installManifests({ image: IMAGE }).filter((object) => (object as DeploymentObject).kind !== "Deployment");
    await cluster.kubectl(["apply", "--server-side", "-f", "-"], { input: JSON.stringify({ apiVersion: "v1", kind: "List", items: objects }) });
    await cluster.kubectl(["wait", "--for=condition=Established", "crd/kustomizations.kustomize.ferry.dev", "crd/ocirepositories.source.ferry.dev"]);
  });
  after(async () => {
    if (podman) {
      console.log(await podman.logs(CONTAINER, 40).catch((error: Error) => error.message));
      await podman.stop();
    }
    await Promise.all([cluster?.stop(), registry?.stop()]);
    await rm(dir, { recursive: true, force: true });
  });

  test("running as 65532 on a read-only root with the ServiceAccount's token, it delivers podinfo with confined kustomize", async () => {
    const port = new URL(cluster.server).port;
    await podman.podman([
      "run", "--detach", "--name", CONTAINER, "--network", "host",
      "--user", "65532:65532", "--read-only", "--cap-drop", "all", "--security-opt", "no-new-privileges",
      // Raising rlimits is not permitted here; these are below the machine's hard limits.
      "--ulimit", "nofile=4096:4096", "--ulimit", "nproc=4096:4096",
      "--tmpfs", "/tmp:rw,mode=1777", "--volume", `${await emptyDir("cache")}:/var/cache/ferry:rw`,
      "--volume", `${await serviceAccountVolume()}:/var/run/secrets/kubernetes.io/serviceaccount:ro`,
      "--env", "KUBERNETES_SERVICE_HOST=127.0.0.1", "--env", `KUBERNETES_SERVICE_PORT=${port}`, "--env", `POD_NAMESPACE=${NAMESPACE}`,
      IMAGE, ...(await deploymentArgs()),
    ]);

    const digest = (await ferryOk(["push", "artifact", `oci://${registry.host}/apps/podinfo:v1`, `--path=${PODINFO}`, "--source=e2e", "--revision=r", "--insecure-registry"])).stdout.trim();
    await cluster.kubectl(["create", "namespace", "apps"]);
    await cluster.kubectl(["apply", "-f", "-"], {
      input: JSON.stringify({
        apiVersion: "v1",
        kind: "List",
        items: [
          { apiVersion: "source.ferry.dev/v1", kind: "OCIRepository", metadata: { namespace: NAMESPACE, name: "podinfo" }, spec: { url: `oci://${registry.host}/apps/podinfo`, ref: { tag: "v1" }, interval: "1h", insecure: true } },
          { apiVersion: "kustomize.ferry.dev/v1", kind: "Kustomization", metadata: { namespace: NAMESPACE, name: "podinfo" }, spec: { sourceRef: { kind: "OCIRepository", name: "podinfo" }, path: "./", interval: "1h", prune: true, wait: true, timeout: "90s", targetNamespace: "apps" } },
        ],
      }),
    });
    let status: unknown;
    await waitUntil("the Kustomization is Ready with the pushed revision", async () => {
      const object = JSON.parse(await cluster.kubectl(["get", "kustomization", "podinfo", "-n", NAMESPACE, "-o", "json"]));
      status = object.status;
      return object.status?.lastAppliedRevision === `v1@${digest}` && object.status.conditions?.some((c: { type: string; status: string }) => c.type === "Ready" && c.status === "True");
    }, { timeoutMs: 120_000, intervalMs: 500 }).catch((error: Error) => {
      throw new Error(`${error.message}\nlast status: ${JSON.stringify(status)}`);
    });
    const deployment = JSON.parse(await cluster.kubectl(["get", "deployment", "podinfo", "-n", "apps", "-o", "json"]));
    assert.equal(deployment.metadata.labels["kustomize.ferry.dev/name"], "podinfo");

    // Every process of the container runs as uid 65532 seen from the host, which is the image's nonroot user.
    const processes = (await podman.podman(["top", CONTAINER, "huser", "user", "hgroup", "args"])).trim().split("\n").slice(1);
    assert.ok(processes.some((line) => line.includes("ferry.mjs controller")), processes.join("\n"));
    for (const line of processes) assert.match(line, /^\s*65532\s+nonroot\s+65532\s+\S/, line);
    const logs = await podman.logs(CONTAINER);
    assert.match(logs, /"kustomize runs confined"[^\n]*"landlockAbi":\d+/, "the controller confines kustomize with ferry-sandbox");
    assert.doesNotMatch(logs, /insecure-unconfined/);
  });
});
