// `ferry bootstrap` against the test bed: a real registry (zot), a real control plane with kwok, and a real controller
// process running as the install's ServiceAccount, so every object after the first install is applied by the
// controller itself. Bootstrap, a re-run that changes nothing, a self-upgrade through the registry, and the refusals
// that must leave the cluster and the registry as they were.
import assert from "node:assert/strict";
import { cp, mkdtemp, readFile, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { setTimeout as sleep } from "node:timers/promises";
import { after, before, describe, test } from "node:test";
import { binary, skipUnlessBuilt } from "../harness/binaries.ts";
import { type ControlPlane, startControlPlane } from "../harness/control-plane.ts";
import { spawn } from "node:child_process";
import { FERRY_CLI, ferry, ferryOk, type FerryResult } from "../harness/ferry.ts";
import { type ManagedProcess, startProcess, waitUntil } from "../harness/processes.ts";
import { type Registry, startRegistry } from "../harness/registry.ts";
import { startTcpProxy } from "../harness/tcp-proxy.ts";

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
    // Labelled as the install labels it: a namespace Ferry did not create is refused (it enforces restricted there).
    await cluster.kubectl(["create", "namespace", "ferry-system"]);
    await cluster.kubectl(["label", "namespace", "ferry-system", "app.kubernetes.io/part-of=ferry"]);
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
    assert.notEqual(digest, "", result.stderr);
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
    assert.doesNotMatch(result.stderr, /pushing|artifact signed| created\n| configured\n/);
    assert.match(result.stderr, /artifact already signed/);
    assert.equal(await tagDigest("fleet/ferry"), before.tags);
    assert.equal((await get("deployment", "ferry-controller")).metadata.generation, before.deployment.metadata.generation);
    // Status writes by the controller aside, the source is as it was: same spec, no new reconcile request.
    const after = await get("ocirepository", "ferry-system");
    assert.equal(after.metadata.generation, before.source.metadata.generation);
    assert.deepEqual(after.metadata.annotations, before.source.metadata.annotations);
  });

  test("ferry install over a bootstrapped install is refused: the controller would revert it to the artifact", async () => {
    const before = await get("deployment", "ferry-controller");
    const refused = await ferry(["install", "--image=registry.example/ferry:other", "--log-level=debug", `--kubeconfig=${cluster.kubeconfig}`, "--timeout=1m"]);
    assert.equal(refused.status, 1, refused.stderr);
    assert.match(refused.stderr, /Ferry in namespace ferry-system was bootstrapped and upgrades itself from oci:\/\/.*\/fleet\/ferry .*re-run ferry bootstrap .*or pass --force/);
    assert.equal((await get("deployment", "ferry-controller")).metadata.generation, before.metadata.generation, "the install changed nothing");
    const namespace = JSON.parse(await cluster.kubectl(["get", "namespace", "ferry-system", "-o", "json"])) as Observed;
    assert.equal(namespace.metadata.annotations?.["kustomize.ferry.dev/prune"], "disabled");
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
    assert.notEqual(digest, "", result.stderr);
    assert.ok((await get("kustomization", "ferry-system")).status?.lastAppliedRevision?.endsWith(digest));
  });

  test("re-running without --path is refused: the controller would prune cluster-config and the workloads it applied", async () => {
    const withoutPath = bootstrap.filter((flag) => !flag.startsWith("--path="));
    const before = await tagDigest("fleet/ferry");
    const refused = await ferry([...withoutPath, "--log-level=debug"], { cwd: dir, env: PASSWORD });
    assert.equal(refused.status, 1);
    assert.match(refused.stderr, /cluster-config delivers the --path of an earlier bootstrap.*would be pruned; pass the same --path, or --prune-cluster-config/);
    // --force takes a cluster over; it does not delete workloads.
    const forced = await ferry([...withoutPath, "--force"], { cwd: dir, env: PASSWORD });
    assert.equal(forced.status, 1);
    assert.match(forced.stderr, /--prune-cluster-config/);
    assert.equal(await tagDigest("fleet/ferry"), before, "nothing was pushed");
    await cluster.kubectl(["get", "deployment", "podinfo", "-n", "podinfo"]);
  });

  test("a changed --interval reaches the source: the CLI re-applies sync objects that differ", async () => {
    // Before the fix the CLI applied the sync objects only when the url or tag changed: a source whose spec had to
    // change before it could fetch the new artifact (another key, credentials) never got it.
    const result = await ferryOk([...bootstrap, "--interval=2m", "--log-level=debug"], { cwd: dir, env: PASSWORD });
    assert.match(result.stderr, /updating the sync objects: OCIRepository\/ferry-system spec\.interval differs/);
    const source = await get("ocirepository", "ferry-system");
    assert.equal(source.spec.interval, "2m");
    const digest = /applied (sha256:[0-9a-f]{64})/.exec(result.stderr)?.[1] ?? "";
    assert.ok(source.status?.conditions?.some((condition) => condition.type === "Ready" && condition.status === "True" && condition.message?.includes(digest)),
      JSON.stringify(source.status));
  });

  test("dropping --sign where the controller verifies is refused without --force: verification is never turned off by omission", async () => {
    const unsigned = bootstrap.filter((flag) => flag !== "--sign" && !flag.startsWith("--key="));
    const before = await tagDigest("fleet/ferry");
    const refused = await ferry([...unsigned, "--log-level=debug"], { cwd: dir });
    assert.equal(refused.status, 1);
    assert.match(refused.stderr, /the controller verifies the artifact's signature .* without --sign would stop verifying; pass --force/);
    assert.equal(await tagDigest("fleet/ferry"), before, "nothing was pushed");
    assert.notEqual((await get("ocirepository", "ferry-system")).spec.verify, undefined);
  });

  test("signing again with another key: the same artifact is signed with it before the controller is told to verify with it", async () => {
    await ferryOk(["keygen", "--output-key-prefix=rotated"], { cwd: dir, env: PASSWORD });
    const signed = await ferryOk([...bootstrap, "--log-level=debug"], { cwd: dir, env: PASSWORD });
    assert.match(signed.stderr, /pushed sha256|already signed/);
    const rotated = await ferryOk([...bootstrap.map((flag) => (flag === "--key=bootstrap.key" ? "--key=rotated.key" : flag)), "--log-level=debug"], { cwd: dir, env: PASSWORD });
    assert.match(rotated.stderr, /already holds these manifests[\s\S]*artifact signed/, "the artifact did not change, but had no signature by the new key");
    const digest = /already holds these manifests \((sha256:[0-9a-f]{64})\)/.exec(rotated.stderr)?.[1] ?? "";
    assert.notEqual(digest, "", rotated.stderr);
    const verified = await ferryOk(["verify", "artifact", `${url}@${digest}`, "--key=rotated.pub", "--insecure-registry"], { cwd: dir });
    const fingerprint = /signed by key (\S+)/.exec(verified.stderr)?.[1] ?? "";
    assert.notEqual(fingerprint, "", verified.stderr);
    // The Secret changed, so bootstrap asked the source to verify again now rather than at its next interval.
    await waitUntil("the source verified with the rotated key", async () => {
      const condition = (await get("ocirepository", "ferry-system")).status?.conditions?.find((c) => c.type === "SourceVerified");
      return condition?.status === "True" && (condition.message ?? "").includes(fingerprint);
    }, { timeoutMs: 30_000, intervalMs: 500, process: controller });
    const again = await ferryOk([...bootstrap.map((flag) => (flag === "--key=bootstrap.key" ? "--key=rotated.key" : flag)), "--log-level=debug"], { cwd: dir, env: PASSWORD });
    assert.match(again.stderr, /artifact already signed/);
  });

  test("a suspended ferry-system Kustomization is named at once, not waited on until --timeout", async () => {
    const suspend = (suspended: boolean) =>
      cluster.kubectl(["patch", "kustomization", "ferry-system", "-n", "ferry-system", "--type=merge", "-p", JSON.stringify({ spec: { suspend: suspended } })]);
    await suspend(true);
    try {
      const started = Date.now();
      const result = await ferry([...bootstrap.filter((flag) => !flag.startsWith("--timeout=")), "--timeout=40s", "--log-level=error"], { cwd: dir, env: PASSWORD });
      assert.equal(result.status, 1);
      assert.match(result.stderr, /Kustomization ferry-system\/ferry-system is suspended, so the controller will not apply sha256:[0-9a-f]{64}: resume it/);
      assert.ok(Date.now() - started < 30_000, "it did not wait for --timeout");
    } finally {
      await suspend(false);
    }
  });

  test("a cluster that follows another registry is refused without --force, before anything is pushed or applied", async () => {
    const elsewhere = ["bootstrap", `oci://${registry.host}/other/ferry`, "--insecure-registry", `--kubeconfig=${cluster.kubeconfig}`];
    const refused = await ferry([...elsewhere, `--path=${join(dir, "cluster")}`], { cwd: dir });
    assert.equal(refused.status, 1);
    assert.match(refused.stderr, new RegExp(`follows ${url.replace(/[.*+?^${}()|[\]\\/]/g, "\\$&")}, not oci://.*/other/ferry; the controller verifies the artifact.s signature .*; pass --force`));
    // Every reason is named, so that --force is not given for one while another is hidden.
    const withoutPath = await ferry(elsewhere, { cwd: dir });
    assert.match(withoutPath.stderr, /would be pruned; pass the same --path, or --prune-cluster-config to delete them \(and: Ferry in this cluster follows/);
    assert.equal((await get("ocirepository", "ferry-system")).spec.url, url);
    assert.doesNotMatch(await tagDigest("other/ferry"), /sha256/, "nothing was pushed");
  });

  test("--force moves Ferry to a registry that needs credentials and TLS; the controller pulls with the Secrets bootstrap stored", async () => {
    const secured = await startRegistry({ kind: "zot", auth: "htpasswd", tls: true, readOnlyUser: true });
    // The address the cluster reaches the registry at, as kind's in-cluster name for a local registry would be.
    const inCluster = await startTcpProxy({ host: "127.0.0.1", port: Number(secured.host.split(":")[1]) });
    try {
      const { username, password } = secured.credentials ?? { username: "", password: "" };
      const moved = `oci://${secured.host}/fleet/ferry`;
      const flags = [`--creds=${username}:${password}`, `--ca-file=${secured.caFile}`, "--sign", "--key=bootstrap.key", `--path=${join(dir, "cluster")}`];
      const common = [...flags, "--force", "--image=registry.example/ferry:test", `--kubeconfig=${cluster.kubeconfig}`, "--timeout=3m"];
      const result = await ferryOk(["bootstrap", moved, ...common], { cwd: dir, env: PASSWORD });
      assert.match(result.stderr, /bootstrap finished/);
      assert.match(result.stderr, /the controller pulls with the push credentials \(--creds\).*pass --pull-creds/);
      const source = await get("ocirepository", "ferry-system");
      assert.equal(source.spec.url, moved);
      assert.deepEqual([source.spec.secretRef, source.spec.certSecretRef], [{ name: "ferry-registry" }, { name: "ferry-registry-tls" }]);
      const stored = JSON.parse(await cluster.kubectl(["get", "secret", "ferry-registry", "-n", "ferry-system", "-o", "json"])) as { type: string };
      assert.equal(stored.type, "kubernetes.io/dockerconfigjson");
      assert.equal(source.status?.conditions?.find((condition) => condition.type === "Ready")?.status, "True");

      // Read-only credentials for the controller, at the cluster's address of the same repository: the cluster
      // then holds no right to push.
      const reader = secured.readerCredentials ?? { username: "", password: "" };
      const pullUrl = `oci://127.0.0.1:${inCluster.port}/fleet/ferry`;
      const split = await ferryOk(["bootstrap", moved, ...common, `--pull-url=${pullUrl}`, `--pull-creds=${reader.username}:${reader.password}`],
        { cwd: dir, env: PASSWORD });
      assert.match(split.stderr, /bootstrap finished/);
      assert.doesNotMatch(split.stderr, /pulls with the push credentials/);
      const pulling = await get("ocirepository", "ferry-system");
      assert.equal(pulling.spec.url, pullUrl);
      assert.equal(pulling.status?.conditions?.find((condition) => condition.type === "Ready")?.status, "True");
      const secret = JSON.parse(await cluster.kubectl(["get", "secret", "ferry-registry", "-n", "ferry-system", "-o", "json"])) as { data: Record<string, string> };
      const config = JSON.parse(Buffer.from(secret.data[".dockerconfigjson"] ?? "", "base64").toString()) as { auths: Record<string, { auth: string }> };
      assert.deepEqual(Object.keys(config.auths), [`127.0.0.1:${inCluster.port}`], "keyed by the host the controller pulls from");
      assert.equal(Buffer.from(config.auths[`127.0.0.1:${inCluster.port}`]?.auth ?? "", "base64").toString(), `${reader.username}:${reader.password}`);
      // What the cluster holds cannot push (zot's access control gives the reader pull only).
      const pushAsReader = await ferry(["push", "artifact", `${moved}:reader`, `--path=${PODINFO}`, "--source=t", "--revision=t",
        `--creds=${reader.username}:${reader.password}`, `--ca-file=${secured.caFile}`]);
      assert.notEqual(pushAsReader.status, 0, "the reader must not be able to push");
      assert.match(pushAsReader.stderr, /denied|unauthori[sz]ed|forbidden|403/i);

      // Credentials the registry refuses: where bootstrap can pull as the controller will, it asks first and changes
      // nothing in the cluster; through --pull-url it cannot, and the source's failed fetch is named instead of
      // "bootstrap finished" over a controller that can no longer pull (a re-run with the same digest, no --force).
      const refusedCreds = await ferry(["bootstrap", moved, ...common, "--pull-creds=reader:wrong"], { cwd: dir, env: PASSWORD });
      assert.equal(refusedCreds.status, 1, refusedCreds.stderr);
      assert.match(refusedCreds.stderr, /the controller would pull .* with --pull-creds, and the registry refuses: .*nothing was pushed or changed/);
      const anonymous = await ferry(["bootstrap", moved, ...common.filter((flag) => !flag.startsWith("--creds="))],
        { cwd: dir, env: { ...PASSWORD, FERRY_CREDS: `${username}:${password}` } });
      assert.equal(anonymous.status, 1, anonymous.stderr);
      assert.match(anonymous.stderr, /the controller would pull .* anonymously \(no --creds or --pull-creds to store for it\), and the registry refuses/);
      assert.equal((await get("ocirepository", "ferry-system")).spec.url, pullUrl, "the refused runs changed nothing");
      assert.doesNotMatch(refusedCreds.stderr + anonymous.stderr, /pushing Ferry|✔ pushed/, "nor pushed anything");
      const noForce = common.filter((flag) => flag !== "--force");
      const wrongThroughPullUrl = await ferry(["bootstrap", moved, ...noForce, `--pull-url=${pullUrl}`, "--pull-creds=reader:wrong", "--timeout=1m"],
        { cwd: dir, env: PASSWORD });
      assert.equal(wrongThroughPullUrl.status, 1, wrongThroughPullUrl.stderr);
      assert.match(wrongThroughPullUrl.stderr, /OCIRepository ferry-system\/ferry-system cannot fetch sha256:[0-9a-f]{64} with what this bootstrap stored: .*credentials were rejected/);
      assert.doesNotMatch(wrongThroughPullUrl.stderr, /bootstrap finished/);

      const badPullUrl = await ferry(["bootstrap", moved, ...common, `--pull-url=${pullUrl}:v2`], { cwd: dir, env: PASSWORD });
      assert.equal(badPullUrl.status, 2);
      assert.match(badPullUrl.stderr, /--pull-url .*repository only/);
    } finally {
      await inCluster.stop();
      await secured.stop();
    }
  });

  test("deleting the ferry-system Kustomization leaves Ferry running; bootstrap --force brings it back", async () => {
    // With MirrorPrune the controller, finalizing it, deleted its own RBAC and Deployment and was left stuck.
    await cluster.kubectl(["delete", "kustomization", "ferry-system", "-n", "ferry-system", "--timeout=60s"]);
    await cluster.kubectl(["get", "deployment", "ferry-controller", "-n", "ferry-system"]);
    const rbac = await cluster.kubectl(["get", "clusterrole,clusterrolebinding", "-l", "app.kubernetes.io/part-of=ferry", "-o", "name"]);
    assert.match(rbac, /clusterrole\.rbac[\s\S]*clusterrolebinding\.rbac/, "the controller's cluster-wide RBAC is still there");
    await cluster.kubectl(["get", "deployment", "podinfo", "-n", "podinfo"]);
    const restored = await ferryOk([...bootstrap, "--force"], { cwd: dir, env: PASSWORD });
    assert.match(restored.stderr, /bootstrap finished/);
    // Without --creds and --ca-file this time, their Secrets are no longer used, and go; the verification key stays.
    const secrets = await cluster.kubectl(["get", "secrets", "-n", "ferry-system", "-o", "name"]);
    assert.doesNotMatch(secrets, /secret\/ferry-registry/);
    assert.match(secrets, /secret\/ferry-verify-key/);
    assert.equal((await get("kustomization", "ferry-system")).spec.deletionPolicy, "Orphan");
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
    assert.match(noRights.stderr, /needs rights you do not have in this cluster: create namespaces; create customresourcedefinitions;.*bind ClusterRole cluster-admin/);

    const lockedDown = await ferry([...fresh("bad/second", "--multi-tenant"), `--kubeconfig=${cluster.kubeconfig}`], { cwd: dir });
    assert.equal(lockedDown.status, 2, "a usage error");
    assert.match(lockedDown.stderr, /bootstrap does not support --multi-tenant yet/);

    const second = await ferry([...fresh("bad/second"), `--kubeconfig=${cluster.kubeconfig}`], { cwd: dir });
    assert.equal(second.status, 1);
    assert.match(second.stderr, /Ferry is already installed in namespace ferry-system: .*pass --force/);

    const closed = await ferry(["bootstrap", "oci://127.0.0.1:1/bad/registry", "--insecure-registry", "-n", "ferry-fresh", "--force",
      `--kubeconfig=${cluster.kubeconfig}`, "--timeout=20s"], { cwd: dir });
    assert.equal(closed.status, 1);
    assert.match(closed.stderr, /127\.0\.0\.1:1.*(ECONNREFUSED|connect|refused)/i);

    for (const repository of ["bad/key", "bad/cluster", "bad/rights", "bad/second"]) assert.doesNotMatch(await tagDigest(repository), /sha256/);
    assert.equal(await namespaceCreated(), false, "no failed bootstrap created anything in the cluster");
  });
  test("a move that re-creates the ferry-system Kustomization: it waits until the source holds the new artifact", async () => {
    // Before the fix the CLI applied the source and the Kustomizations at once: the new Kustomization was reconciled
    // at once, with the artifact the source still held, whose ferry-sync.yaml moved the source back to the old
    // repository, and the new artifact was never fetched. The proxy holds the source's fetch back for a while.
    await cluster.kubectl(["delete", "kustomization", "ferry-system", "-n", "ferry-system", "--timeout=60s"]);
    const proxy = await startTcpProxy({ host: "127.0.0.1", port: Number(registry.host.split(":")[1]) });
    try {
      const moved = `oci://127.0.0.1:${proxy.port}/moved/ferry`;
      const args = [...bootstrap.map((flag) => (flag === url ? moved : flag === "--timeout=3m" ? "--timeout=45s" : flag)), "--force"];
      const result = await ferryHoldingBack(args, /pushed sha256/, () => {
        proxy.partition(true);
        setTimeout(() => proxy.partition(false), 8_000);
      });
      assert.equal(result.status, 0, result.stderr);
      // And it stays there: the old artifact is never applied again, which would move the source back (on the old
      // code the two artifacts took turns, each moving the source to the other's repository).
      const digest = /applied (sha256:[0-9a-f]{64})/.exec(result.stderr)?.[1] ?? "";
      for (let sample = 0; sample < 20; sample++) {
        assert.equal((await get("ocirepository", "ferry-system")).spec.url, moved, `sample ${sample}`);
        const self = await get("kustomization", "ferry-system");
        assert.ok(self.status?.lastAppliedRevision?.endsWith(digest), `sample ${sample}: ${JSON.stringify(self.status)}`);
        await sleep(250);
      }
      assert.match(result.stderr, /waiting for OCIRepository ferry-system\/ferry-system to fetch[\s\S]*bootstrap finished/);
    } finally {
      await proxy.stop();
    }
  });

  /** Runs ferry and calls `then` once its stderr matches `when` (here: once the push is done, before any apply). */
  const ferryHoldingBack = (args: readonly string[], when: RegExp, then: () => void) => new Promise<FerryResult>((resolve, reject) => {
    const child = spawn(process.execPath, [FERRY_CLI, ...args], { cwd: dir, env: { ...process.env, ...PASSWORD }, stdio: ["ignore", "pipe", "pipe"] });
    let stdout = "";
    let stderr = "";
    let called = false;
    child.stdout.on("data", (chunk: Buffer) => {
      stdout += chunk;
    });
    child.stderr.on("data", (chunk: Buffer) => {
      stderr += chunk;
      if (!called && when.test(stderr)) {
        called = true;
        then();
      }
    });
    child.on("error", reject);
    child.on("close", (status) => resolve({ status, stdout, stderr }));
  });
});
