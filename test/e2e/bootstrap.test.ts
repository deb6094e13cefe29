// `ferry bootstrap` against the test bed: a real registry (zot), a real control plane with kwok, and a real controller
// process running as the install's ServiceAccount, so every object after the first install is applied by the
// controller itself. Bootstrap, a re-run that changes nothing, a self-upgrade through the registry, and the refusals
// that must leave the cluster and the registry as they were.
import assert from "node:assert/strict";
import { cp, mkdtemp, readFile, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, before, describe, test } from "node:test";
import { binary, skipUnlessBuilt } from "../harness/binaries.ts";
import { type ControlPlane, startControlPlane } from "../harness/control-plane.ts";
import { FERRY_CLI, ferry, ferryOk } from "../harness/ferry.ts";
import { type ManagedProcess, startProcess, waitUntil } from "../harness/processes.ts";
import { type Registry, startRegistry } from "../harness/registry.ts";

const PODINFO = join(import.meta.dirname, "..", "..", "..", "shared", "corpora", "podinfo", "kustomize");
const PASSWORD = { COSIGN_PASSWORD: "ferry-e2e" };
const PEERS = ["etcd", "kube-apiserver", "kube-controller-manager", "kube-scheduler", "kubectl", "kwok", "zot", "kustomize"] as const;

interface Observed {
  metadata: { generation: number; annotations?: Record<string, string> };
  spec: Record<string, unknown>;
  status?: { lastAppliedRevision?: string; conditions?: Array<{ type: string; status: string; message?: string }> };
}

describe("ferry bootstrap", { skip: skipUnlessBuilt(...PEERS) }, () => {
  let cluster: ControlPlane;
  let registry: Registry;
  let dir: string;
  let controller: ManagedProcess;
  let url: string;
  let bootstrap: string[];

  const get = async (kind: string, name: string, namespace = "ferry-system") =>
    JSON.parse(await cluster.kubectl(["get", kind, name, "-n", namespace, "-o", "json"])) as Observed;
  const tagDigest = async (repository: string) =>
    (await ferry(["list", "artifacts", `oci://${registry.host}/${repository}`, "--insecure-registry", "-o", "json"])).stdout;

  before(async () => {
    dir = await mkdtemp(join(tmpdir(), "ferry-e2e-bootstrap-"));
    [cluster, registry] = await Promise.all([startControlPlane(), startRegistry({ kind: "zot" })]);
    await ferryOk(["keygen", "--output-key-prefix=bootstrap"], { cwd: dir, env: PASSWORD });
    // The user's cluster config: podinfo in its own namespace.
    const config = join(dir, "cluster");
    await cp(PODINFO, join(config, "podinfo"), { recursive: true });
    await writeFile(join(config, "namespace.yaml"), "apiVersion: v1\nkind: Namespace\nmetadata:\n  name: podinfo\n");
    await writeFile(join(config, "kustomization.yaml"), "namespace: podinfo\nresources:\n  - namespace.yaml\n  - podinfo\n");
    // The controller as the install's ServiceAccount, started before the install exists: it waits for its CRDs and
    // RBAC, as a pod would, and takes its lease in ferry-system through the namespaced Role.
    await cluster.kubectl(["create", "namespace", "ferry-system"]);
    const kubeconfig = await cluster.serviceAccountKubeconfig("ferry-system", "ferry-controller");
    controller = startProcess("ferry controller", process.execPath, [
      FERRY_CLI, "controller", `--kubeconfig=${kubeconfig}`, `--cache-dir=${join(dir, "cache")}`, "--health-addr=127.0.0.1:0",
      "--leader-elect", "--leader-election-namespace=ferry-system",
    ], { logFile: join(dir, "controller.log"), env: { FERRY_KUSTOMIZE: binary("kustomize") } });
    url = `oci://${registry.host}/fleet/ferry`;
    bootstrap = ["bootstrap", url, `--path=${config}`, "--insecure-registry", "--sign", "--key=bootstrap.key",
      "--image=registry.example/ferry:test", `--kubeconfig=${cluster.kubeconfig}`, "--timeout=3m"];
  });
  after(async () => {
    await controller?.stop();
    await Promise.all([registry?.stop(), cluster?.stop()]);
    if (dir) await rm(dir, { recursive: true, force: true });
  });

  test("bootstrap pushes a signed artifact, installs Ferry, and the controller applies it to itself and to the cluster config", async () => {
    const result = await ferryOk(bootstrap, { cwd: dir, env: PASSWORD });
    assert.match(result.stderr, /artifact signed[\s\S]*Deployment\/ferry-system\/ferry-controller created[\s\S]*bootstrap finished/);
    const digest = /applied (sha256:[0-9a-f]{64})/.exec(result.stderr)?.[1] ?? "";
    const self = await get("kustomization", "ferry-system");
    assert.ok(self.status?.lastAppliedRevision?.endsWith(digest), JSON.stringify(self.status));
    const source = await get("ocirepository", "ferry-system");
    assert.equal(source.spec.url, url);
    const verified = source.status?.conditions?.find((condition) => condition.type === "SourceVerified");
    assert.equal(verified?.status, "True", "the controller verified the bootstrap signature with the key from the Secret");
    await waitUntil("cluster-config applied podinfo", async () =>
      (await get("kustomization", "cluster-config")).status?.conditions?.some((c) => c.type === "Ready" && c.status === "True") ?? false,
    { timeoutMs: 90_000, intervalMs: 500, process: controller });
    await cluster.kubectl(["get", "deployment", "podinfo", "-n", "podinfo"]);
    // The artifact is a Flux-format artifact cosign itself accepts.
    await ferryOk(["verify", "artifact", `${url}@${digest}`, "--key=bootstrap.pub", "--insecure-registry"], { cwd: dir });
  });

  test("re-running bootstrap with the same flags changes nothing: same digest, no push, no apply", async () => {
    const before = { tags: await tagDigest("fleet/ferry"), deployment: await get("deployment", "ferry-controller"), source: await get("ocirepository", "ferry-system") };
    const result = await ferryOk(bootstrap, { cwd: dir, env: PASSWORD });
    assert.match(result.stderr, /already holds these manifests/);
    assert.doesNotMatch(result.stderr, /pushing|signed| created\n| configured\n/);
    assert.equal(await tagDigest("fleet/ferry"), before.tags);
    assert.equal((await get("deployment", "ferry-controller")).metadata.generation, before.deployment.metadata.generation);
    // Status writes by the controller aside, the source is as it was: same spec, no new reconcile request.
    const after = await get("ocirepository", "ferry-system");
    assert.equal(after.metadata.generation, before.source.metadata.generation);
    assert.deepEqual(after.metadata.annotations, before.source.metadata.annotations);
  });

  test("with other install flags, bootstrap pushes a new artifact and the controller upgrades its own Deployment", async () => {
    const previous = await get("deployment", "ferry-controller");
    const result = await ferryOk([...bootstrap, "--log-level=debug"], { cwd: dir, env: PASSWORD });
    assert.match(result.stderr, /the controller upgrades itself from the artifact/);
    // The CLI did not touch the Deployment: the new args came through the registry and the controller.
    assert.doesNotMatch(result.stderr, /Deployment\/ferry-system\/ferry-controller (created|configured)/);
    const deployment = await get("deployment", "ferry-controller") as Observed & { spec: { template: { spec: { containers: Array<{ args: string[] }> } } } };
    assert.ok(deployment.spec.template.spec.containers[0]?.args.includes("--log-level=debug"));
    assert.ok(deployment.metadata.generation > previous.metadata.generation);
    const digest = /applied (sha256:[0-9a-f]{64})/.exec(result.stderr)?.[1] ?? "";
    assert.ok((await get("kustomization", "ferry-system")).status?.lastAppliedRevision?.endsWith(digest));
  });

  test("a cluster that follows another registry is refused without --force, before anything is pushed or applied", async () => {
    const elsewhere = ["bootstrap", `oci://${registry.host}/other/ferry`, "--insecure-registry", `--kubeconfig=${cluster.kubeconfig}`];
    const refused = await ferry(elsewhere, { cwd: dir });
    assert.equal(refused.status, 1);
    assert.match(refused.stderr, new RegExp(`follows ${url.replace(/[.*+?^${}()|[\]\\/]/g, "\\$&")}, not oci://.*/other/ferry; pass --force`));
    assert.equal((await get("ocirepository", "ferry-system")).spec.url, url);
    assert.doesNotMatch(await tagDigest("other/ferry"), /sha256/, "nothing was pushed");
  });

  test("--force moves Ferry to a registry that needs credentials and TLS; the controller pulls with the Secrets bootstrap stored", async () => {
    const secured = await startRegistry({ kind: "zot", auth: "htpasswd", tls: true });
    try {
      const { username, password } = secured.credentials ?? { username: "", password: "" };
      const moved = `oci://${secured.host}/fleet/ferry`;
      const flags = [`--creds=${username}:${password}`, `--ca-file=${secured.caFile}`, "--sign", "--key=bootstrap.key", `--path=${join(dir, "cluster")}`];
      const result = await ferryOk(["bootstrap", moved, ...flags, "--force", "--image=registry.example/ferry:test", `--kubeconfig=${cluster.kubeconfig}`, "--timeout=3m"],
        { cwd: dir, env: PASSWORD });
      assert.match(result.stderr, /bootstrap finished/);
      const source = await get("ocirepository", "ferry-system");
      assert.equal(source.spec.url, moved);
      assert.deepEqual([source.spec.secretRef, source.spec.certSecretRef], [{ name: "ferry-registry" }, { name: "ferry-registry-tls" }]);
      const stored = JSON.parse(await cluster.kubectl(["get", "secret", "ferry-registry", "-n", "ferry-system", "-o", "json"])) as { type: string };
      assert.equal(stored.type, "kubernetes.io/dockerconfigjson");
      assert.equal(source.status?.conditions?.find((condition) => condition.type === "Ready")?.status, "True");
    } finally {
      await secured.stop();
    }
  });

  test("bad input stops bootstrap with a named error and leaves nothing behind", async () => {
    const fresh = (repository: string, ...flags: string[]) =>
      ["bootstrap", `oci://${registry.host}/${repository}`, "--insecure-registry", "-n", "ferry-fresh", ...flags];
    const namespaceCreated = async () => (await cluster.kubectl(["get", "namespace", "ferry-fresh", "--ignore-not-found"])).trim() !== "";

    const wrongPassword = await ferry([...fresh("bad/key", "--sign", "--key=bootstrap.key"), `--kubeconfig=${cluster.kubeconfig}`], { cwd: dir, env: { COSIGN_PASSWORD: "wrong" } });
    assert.equal(wrongPassword.status, 1);
    assert.match(wrongPassword.stderr, /bootstrap\.key.*(password|decrypt)/i);

    const unreachable = join(dir, "unreachable.kubeconfig");
    await writeFile(unreachable, (await readFile(cluster.kubeconfig, "utf8")).replace(cluster.server, "https://127.0.0.1:1"));
    const noCluster = await ferry([...fresh("bad/cluster"), `--kubeconfig=${unreachable}`], { cwd: dir });
    assert.equal(noCluster.status, 1);
    assert.match(noCluster.stderr, /cannot reach the cluster/);

    const viewer = await cluster.serviceAccountKubeconfig("default", "viewer");
    const noRights = await ferry([...fresh("bad/rights"), `--kubeconfig=${viewer}`], { cwd: dir });
    assert.equal(noRights.status, 1);
    assert.match(noRights.stderr, /needs rights you do not have in this cluster: create customresourcedefinitions/);

    const closed = await ferry(["bootstrap", "oci://127.0.0.1:1/bad/registry", "--insecure-registry", "-n", "ferry-fresh", `--kubeconfig=${cluster.kubeconfig}`, "--timeout=20s"], { cwd: dir });
    assert.equal(closed.status, 1);
    assert.match(closed.stderr, /127\.0\.0\.1:1/);

    for (const repository of ["bad/key", "bad/cluster", "bad/rights"]) assert.doesNotMatch(await tagDigest(repository), /sha256/);
    assert.equal(await namespaceCreated(), false, "no failed bootstrap created anything in the cluster");
  });
});
