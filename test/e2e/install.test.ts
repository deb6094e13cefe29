// `ferry install` and `--export` against the test bed: the real apiserver takes every object, its Pod Security admission
// (the namespace enforces "restricted") lets the controller's pod be created, and the Deployment becomes Available
// on a kwok node; the multi-tenant install grants impersonation and nothing broader. A second install in another
// namespace is refused without --force, and with it each install keeps its own cluster-scoped bindings.
import assert from "node:assert/strict";
import { after, before, describe, test } from "node:test";
import { skipUnlessBuilt } from "../harness/binaries.ts";
import { type ControlPlane, startControlPlane } from "../harness/control-plane.ts";
import { ferry, ferryOk } from "../harness/ferry.ts";
import { waitUntil } from "../harness/processes.ts";

describe("ferry install", { skip: skipUnlessBuilt("etcd", "kube-apiserver", "kube-controller-manager", "kube-scheduler", "kubectl", "kwok") }, () => {
  let cluster: ControlPlane;

  before(async () => {
    cluster = await startControlPlane();
  });
  after(async () => {
    await cluster?.stop();
  });

  /** `kubectl auth can-i` as the controller's ServiceAccount of the install in `namespace`. */
  const canI = (namespace: string) => async (...args: string[]) =>
    (await cluster.kubectl(["auth", "can-i", ...args, `--as=system:serviceaccount:${namespace}:ferry-controller`]).catch(() => "no")).trim();

  const availableReplicas = async (namespace: string) => {
    const deployment = JSON.parse(await cluster.kubectl(["get", "deployment", "ferry-controller", "-n", namespace, "-o", "json"])) as {
      status?: { availableReplicas?: number };
    };
    return deployment.status?.availableReplicas ?? 0;
  };

  test("an install into a namespace Ferry did not create is refused: it would restrict the pods there, and uninstall would delete them", async () => {
    await cluster.kubectl(["create", "namespace", "team-x"]);
    const refused = await ferry(["install", "--image=registry.example/ferry:test", "--namespace=team-x", `--kubeconfig=${cluster.kubeconfig}`, "--timeout=2m"]);
    assert.equal(refused.status, 1, refused.stderr);
    assert.match(refused.stderr, /namespace team-x exists and was not created by Ferry: .*pass --force/);
    const labels = JSON.parse(await cluster.kubectl(["get", "namespace", "team-x", "-o", "json"])).metadata.labels as Record<string, string>;
    assert.equal(labels["pod-security.kubernetes.io/enforce"], undefined);
    assert.equal(labels["app.kubernetes.io/part-of"], undefined);
    await cluster.kubectl(["delete", "namespace", "team-x", "--wait=false"]);
  });

  test("the exported install is accepted, passes the restricted Pod Security Standard, and becomes Available", async () => {
    const exported = (await ferryOk(["install", "--export", "--image=registry.example/ferry:test"])).stdout;
    await cluster.kubectl(["apply", "--server-side", "-f", "-"], { input: exported });
    const labels = JSON.parse(await cluster.kubectl(["get", "namespace", "ferry-system", "-o", "json"])).metadata.labels as Record<string, string>;
    assert.equal(labels["pod-security.kubernetes.io/enforce"], "restricted");
    // The admission really enforces it here: a pod without the restricted securityContext is refused.
    await assert.rejects(cluster.kubectl(["run", "unrestricted", "-n", "ferry-system", "--image=registry.example/x:1"]), /violates PodSecurity "restricted/);
    // A pod the restricted profile refused would leave the ReplicaSet with FailedCreate and no replica.
    await waitUntil("the controller Deployment is Available", async () => (await availableReplicas("ferry-system")) === 1, { timeoutMs: 60_000, intervalMs: 500 });
    const pod = JSON.parse(await cluster.kubectl(["get", "pods", "-n", "ferry-system", "-l", "app.kubernetes.io/name=ferry", "-o", "json"])) as {
      items: Array<{ spec: { containers: Array<{ image: string; args: string[]; securityContext: Record<string, unknown> }> } }>;
    };
    const container = pod.items[0]?.spec.containers[0];
    assert.equal(container?.image, "registry.example/ferry:test");
    assert.equal(container?.securityContext.readOnlyRootFilesystem, true);
    await cluster.kubectl(["wait", "--for=condition=Established", "crd/ocirepositories.source.ferry.dev", "crd/kustomizations.kustomize.ferry.dev", "--timeout=30s"]);
  });

  test("a second install in another namespace is refused by name, and applies nothing", async () => {
    const refused = await ferry(["install", "--image=registry.example/ferry:test", "--namespace=ferry-direct", `--kubeconfig=${cluster.kubeconfig}`, "--timeout=2m"]);
    assert.equal(refused.status, 1, refused.stderr);
    assert.match(refused.stderr, /Ferry is already installed in namespace ferry-system: .*pass --force to install anyway/);
    assert.equal((await cluster.kubectl(["get", "namespace", "ferry-direct", "--ignore-not-found"])).trim(), "");
  });

  test("with --force, ferry install applies the same objects, waits until the controller is Available, and a second run changes nothing", async () => {
    const install = ["install", "--force", "--image=registry.example/ferry:test", "--namespace=ferry-direct", `--kubeconfig=${cluster.kubeconfig}`, "--timeout=2m"];
    const first = await ferryOk(install);
    assert.match(first.stderr, /Deployment\/ferry-direct\/ferry-controller created[\s\S]*✔ install finished/);
    assert.equal(await availableReplicas("ferry-direct"), 1);
    const second = await ferryOk(install);
    assert.doesNotMatch(second.stderr, / (created|configured)\n/, second.stderr);
    // Each install's cluster-scoped bindings are its own: the second did not take the first one's rights away.
    for (const namespace of ["ferry-system", "ferry-direct"]) {
      assert.equal(await canI(namespace)("delete", "namespaces"), "yes", `${namespace}'s controller lost its applier binding`);
      assert.equal(await canI(namespace)("watch", "kustomizations.kustomize.ferry.dev", "-A"), "yes", `${namespace}'s controller lost its rules`);
    }
    const subjects = JSON.parse(await cluster.kubectl(["get", "clusterrolebinding", "ferry-controller-applier-ferry-system", "-o", "jsonpath={.subjects}"]));
    assert.deepEqual(subjects, [{ kind: "ServiceAccount", namespace: "ferry-system", name: "ferry-controller" }]);
  });

  test("--watch-all-namespaces=false: the controller reads Ferry's objects and Secrets in its own namespace only", async () => {
    await ferryOk(["install", "--force", "--image=registry.example/ferry:test", "--namespace=ferry-scoped", "--watch-all-namespaces=false",
      "--log-level=debug", "--multi-tenant", `--kubeconfig=${cluster.kubeconfig}`, "--timeout=2m"]);
    const can = canI("ferry-scoped");
    assert.equal(await can("get", "secrets", "-n", "ferry-scoped"), "yes");
    assert.equal(await can("get", "secrets", "-n", "default"), "no");
    assert.equal(await can("watch", "kustomizations.kustomize.ferry.dev", "-n", "ferry-scoped"), "yes");
    assert.equal(await can("watch", "kustomizations.kustomize.ferry.dev", "-n", "default"), "no");
    // Without the applier's cluster-admin binding (--multi-tenant), leases are granted in the controller's namespace only.
    assert.equal(await can("update", "leases", "-n", "ferry-scoped"), "yes");
    assert.equal(await can("update", "leases", "-n", "kube-system"), "no");
    const args = JSON.parse(await cluster.kubectl(["get", "deployment", "ferry-controller", "-n", "ferry-scoped", "-o", "jsonpath={.spec.template.spec.containers[0].args}"])) as string[];
    assert.ok(args.includes("--watch-all-namespaces=false") && args.includes("--log-level=debug"), args.join(" "));
  });

  test("a version other than the CLI's own is refused before anything is applied", async () => {
    const refused = await ferry(["install", "--version=v99.0.0", "--namespace=ferry-other", `--kubeconfig=${cluster.kubeconfig}`]);
    assert.equal(refused.status, 2);
    assert.match(refused.stderr, /installs v\d+\.\d+\.\d+, not v99\.0\.0/);
    assert.equal((await cluster.kubectl(["get", "namespace", "ferry-other", "--ignore-not-found"])).trim(), "");
  });

  test("a multi-tenant install binds impersonation and not cluster-admin, and passes --tenant-lockdown", async () => {
    const exported = (await ferryOk(["install", "--export", "--multi-tenant", "--namespace=ferry-tenants", "--image=registry.example/ferry:test"])).stdout;
    assert.doesNotMatch(exported, /name: cluster-admin/);
    assert.match(exported, /--tenant-lockdown/);
    await cluster.kubectl(["apply", "--server-side", "--force-conflicts", "-f", "-"], { input: exported });
    const can = canI("ferry-tenants");
    assert.equal(await can("impersonate", "serviceaccounts"), "yes");
    assert.equal(await can("create", "configmaps", "-n", "default"), "no");
    assert.equal(await can("delete", "namespaces"), "no");
    assert.equal(await can("list", "secrets", "-n", "default"), "no");
  });
});
