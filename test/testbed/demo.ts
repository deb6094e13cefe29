// `npm run demo`: Ferry's delivery loop on the local test bed. Starts a registry and a control plane, runs the
// controller, pushes ../shared/corpora/podinfo (signed), creates an OCIRepository and a Kustomization, waits until
// podinfo is Ready, and prints the sources, the Kustomization and its inventory. `-- --keep` stays up afterwards.
import { execFile } from "node:child_process";
import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { promisify } from "node:util";
import { parseArgs } from "node:util";
import { controllerRbac } from "../../src/api/rbac.ts";
import { binary } from "../harness/binaries.ts";
import { startControlPlane } from "../harness/control-plane.ts";
import { FERRY_CLI } from "../harness/ferry.ts";
import { startProcess, waitUntil } from "../harness/processes.ts";
import { startRegistry } from "../harness/registry.ts";
import { buildTestbed } from "./build.ts";

const exec = promisify(execFile);
const CRDS = join(import.meta.dirname, "..", "..", "crds");
const PODINFO = join(import.meta.dirname, "..", "..", "..", "shared", "corpora", "podinfo", "kustomize");
const { values } = parseArgs({ options: { keep: { type: "boolean", default: false } } });

function step(message: string): void {
  process.stdout.write(`\n▶ ${message}\n`);
}

async function ferry(args: string[], env: NodeJS.ProcessEnv = {}): Promise<string> {
  const { stdout, stderr } = await exec(process.execPath, [FERRY_CLI, ...args], { env: { ...process.env, ...env } });
  if (stderr.trim()) process.stdout.write(`${stderr.trim()}\n`);
  return stdout;
}

await buildTestbed({ quiet: true });
const started = Date.now();
const dir = await mkdtemp(join(tmpdir(), "ferry-demo-"));
step("starting a Kubernetes control plane (etcd, apiserver, controller-manager, scheduler, kwok) and a zot registry");
const [cluster, registry] = await Promise.all([startControlPlane(), startRegistry({ kind: "zot" })]);
const stops: Array<() => Promise<void>> = [() => registry.stop(), () => cluster.stop()];
const stopAll = async () => {
  for (const stop of stops.reverse()) await stop().catch(() => undefined);
  await rm(dir, { recursive: true, force: true });
};
process.once("SIGINT", () => void stopAll().then(() => process.exit(0)));
try {
  const kube = [`--kubeconfig=${cluster.kubeconfig}`];
  step("installing Ferry's CRDs and RBAC, and starting the controller as its ServiceAccount");
  await cluster.kubectl(["apply", "--server-side", "-f", CRDS]);
  await cluster.kubectl(["wait", "--for=condition=Established", "crd/ocirepositories.source.ferry.dev", "crd/kustomizations.kustomize.ferry.dev"]);
  await cluster.kubectl(["create", "namespace", "ferry-system"]);
  await cluster.kubectl(["create", "namespace", "podinfo"]);
  await cluster.kubectl(["apply", "-f", "-"], { input: JSON.stringify({ apiVersion: "v1", kind: "List", items: controllerRbac("ferry-system", "ferry-controller") }) });
  const controllerKubeconfig = await cluster.serviceAccountKubeconfig("ferry-system", "ferry-controller");
  const controller = startProcess(
    "ferry controller",
    process.execPath,
    [FERRY_CLI, "controller", `--kubeconfig=${controllerKubeconfig}`, `--cache-dir=${join(dir, "cache")}`, "--health-addr=127.0.0.1:0", "--leader-elect=false"],
    { logFile: join(dir, "controller.log"), env: { FERRY_KUSTOMIZE: binary("kustomize") } },
  );
  stops.push(() => controller.stop());

  step(`pushing podinfo to oci://${registry.host}/demo/podinfo:6.9.0, signed with a fresh cosign key`);
  const password = { COSIGN_PASSWORD: "demo" };
  await exec(process.execPath, [FERRY_CLI, "keygen", "--output-key-prefix=demo"], { cwd: dir, env: { ...process.env, ...password } });
  const digest = (await ferry(
    ["push", "artifact", `oci://${registry.host}/demo/podinfo:6.9.0`, `--path=${PODINFO}`, "--source=https://github.com/stefanprodan/podinfo", "--revision=6.9.0@sha1:eec06d1ea459af4cb4e10e806f8be7c7bd58b361", "--insecure-registry", "--sign", `--key=${join(dir, "demo.key")}`],
    password,
  )).trim();
  await cluster.kubectl(["create", "secret", "generic", "cosign-pub", "-n", "podinfo", `--from-file=cosign.pub=${join(dir, "demo.pub")}`]);

  step("creating the OCIRepository (verified with the key) and the Kustomization");
  await cluster.kubectl(["apply", "-f", "-"], {
    input: JSON.stringify({
      apiVersion: "v1",
      kind: "List",
      items: [
        { apiVersion: "source.ferry.dev/v1", kind: "OCIRepository", metadata: { namespace: "podinfo", name: "podinfo" }, spec: { url: `oci://${registry.host}/demo/podinfo`, ref: { semver: ">=6.0.0" }, interval: "1m", insecure: true, verify: { provider: "cosign", secretRef: { name: "cosign-pub" } } } },
        { apiVersion: "kustomize.ferry.dev/v1", kind: "Kustomization", metadata: { namespace: "podinfo", name: "podinfo" }, spec: { sourceRef: { kind: "OCIRepository", name: "podinfo" }, path: "./", interval: "10m", prune: true, wait: true, timeout: "2m" } },
      ],
    }),
  });

  step("waiting until podinfo is applied and healthy");
  await waitUntil(
    "Kustomization podinfo Ready",
    async () => {
      const object = JSON.parse(await cluster.kubectl(["get", "kustomization", "podinfo", "-n", "podinfo", "-o", "json"]));
      return object.status?.lastAppliedRevision === `6.9.0@${digest}` && object.status.conditions?.some((c: { type: string; status: string }) => c.type === "Ready" && c.status === "True");
    },
    { timeoutMs: 180_000, intervalMs: 500, process: controller },
  );

  step("ferry get all -n podinfo");
  process.stdout.write(await ferry(["get", "all", "-n", "podinfo", ...kube]));
  step("ferry tree kustomization podinfo -n podinfo");
  process.stdout.write(await ferry(["tree", "kustomization", "podinfo", "-n", "podinfo", ...kube]));
  step("kubectl get deployment,service,hpa -n podinfo");
  process.stdout.write(await cluster.kubectl(["get", "deployment,service,hpa", "-n", "podinfo"]));
  process.stdout.write(`\n✔ podinfo delivered from OCI in ${((Date.now() - started) / 1000).toFixed(1)}s\n`);
  if (values.keep) {
    process.stdout.write(`\nexport KUBECONFIG=${cluster.kubeconfig}   # registry ${registry.url}; Ctrl-C stops everything\n`);
    await new Promise(() => {});
  }
} finally {
  if (!values.keep) await stopAll();
}
