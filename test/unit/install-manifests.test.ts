// The install's objects: what the options change, and the restricted pod settings that must never be lost.
import assert from "node:assert/strict";
import { test } from "node:test";
import { componentOptions } from "../../cli/commands/install.ts";
import { installManifests, otherInstallNamespaces } from "../../src/install/manifests.ts";

type Manifest = { kind: string; metadata: { name: string }; spec?: Record<string, unknown>; roleRef?: { name: string } };
const kinds = (objects: object[]) => (objects as Manifest[]).map((object) => object.kind);
interface Container {
  image: string;
  args: string[];
  securityContext: Record<string, unknown>;
}
interface PodSpec {
  securityContext: Record<string, unknown>;
  imagePullSecrets?: unknown[];
  containers: Container[];
}
const deploymentOf = (objects: object[]) =>
  (objects as Manifest[]).find((object) => object.kind === "Deployment") as unknown as { spec: { template: { spec: PodSpec } } };

test("the default install: namespace first, CRDs, RBAC with the applier binding, a restricted Deployment, Service and NetworkPolicy", () => {
  const objects = installManifests({ image: "example/ferry:1" });
  assert.deepEqual(kinds(objects).slice(0, 3), ["Namespace", "CustomResourceDefinition", "CustomResourceDefinition"]);
  assert.ok(kinds(objects).includes("NetworkPolicy"));
  assert.ok((objects as Manifest[]).some((object) => object.roleRef?.name === "cluster-admin"));
  const pod = deploymentOf(objects).spec.template.spec;
  assert.deepEqual(pod.securityContext.seccompProfile, { type: "RuntimeDefault" });
  assert.equal(pod.securityContext.runAsNonRoot, true);
  assert.deepEqual(pod.containers[0]?.securityContext, { allowPrivilegeEscalation: false, readOnlyRootFilesystem: true, capabilities: { drop: ["ALL"] } });
  const nodeOptions = (spec: typeof pod) => (spec.containers[0] as unknown as { env: Array<{ name: string; value?: string }> }).env
    .find((variable) => variable.name === "NODE_OPTIONS")?.value;
  assert.equal(nodeOptions(pod), "--max-old-space-size=768", "the heap budget follows the 1024 MiB limit, given to Node (no re-run of itself)");
});

test("options: multi-tenant drops cluster-admin and adds --tenant-lockdown; registry, pull secret, no network policy", () => {
  const objects = installManifests({ multiTenant: true, registry: "mirror.internal/ferry", imagePullSecret: "mirror", networkPolicy: false, memoryLimitMiB: 2048 });
  assert.ok(!(objects as Manifest[]).some((object) => object.roleRef?.name === "cluster-admin"));
  assert.ok(!kinds(objects).includes("NetworkPolicy"));
  const pod = deploymentOf(objects).spec.template.spec;
  assert.match(pod.containers[0]?.image ?? "", /^mirror\.internal\/ferry\/ferry:v/);
  assert.deepEqual(pod.imagePullSecrets, [{ name: "mirror" }]);
  assert.ok(pod.containers[0]?.args.includes("--tenant-lockdown"));
  const env = (pod.containers[0] as unknown as { env: Array<{ name: string; value?: string }> }).env;
  assert.equal(env.find((variable) => variable.name === "NODE_OPTIONS")?.value, "--max-old-space-size=1536");
});

test("the Deployment rolls: the new pod is Ready (a standby without the lease) before the old one stops", () => {
  const deployment = (installManifests() as Manifest[]).find((object) => object.kind === "Deployment");
  assert.deepEqual(deployment?.spec?.strategy, { type: "RollingUpdate", rollingUpdate: { maxSurge: 1, maxUnavailable: 0 } });
  assert.equal(deployment?.spec?.replicas, 1);
});

type Rbac = Manifest & { metadata: { name: string; namespace?: string }; rules?: Array<{ resources: string[] }> };

test("leases are granted by a Role in the controller's namespace only, never cluster-wide", () => {
  const objects = installManifests({ namespace: "ferry-x" }) as Rbac[];
  const grantsLeases = (object: Rbac) => object.rules?.some((rule) => rule.resources.includes("leases")) ?? false;
  assert.deepEqual(objects.filter(grantsLeases).map((object) => [object.kind, object.metadata.namespace]), [["Role", "ferry-x"]]);
  assert.ok(objects.some((object) => object.kind === "RoleBinding" && object.roleRef?.name === "ferry-controller-leader-election"));
});

test("--watch-all-namespaces=false binds the controller's rules in its namespace only and passes the flag", () => {
  const objects = installManifests({ namespace: "ferry-x", watchAllNamespaces: false, logLevel: "debug" }) as Rbac[];
  const bindings = objects.filter((object) => object.roleRef?.name === "ferry-controller-ferry-x");
  assert.deepEqual(bindings.map((object) => [object.kind, object.metadata.namespace]), [["RoleBinding", "ferry-x"]]);
  const args = deploymentOf(objects).spec.template.spec.containers[0]?.args ?? [];
  assert.ok(args.includes("--watch-all-namespaces=false"));
  assert.ok(args.includes("--log-level=debug"));
});

test("every object carries the part-of and version labels uninstall and check look for", () => {
  for (const object of installManifests() as Array<{ metadata: { labels?: Record<string, string> } }>) {
    assert.equal(object.metadata.labels?.["app.kubernetes.io/part-of"], "ferry");
    assert.match(object.metadata.labels?.["app.kubernetes.io/version"] ?? "", /^v\d+\.\d+\.\d+/);
  }
});

test("two installs in two namespaces share no cluster-scoped object but the CRDs: neither rebinds the other's account", () => {
  type Scoped = { kind: string; metadata: { name: string; namespace?: string } };
  const variants = [{}, { multiTenant: true }, { watchAllNamespaces: false }];
  const rendered = (namespace: string) => variants.flatMap((variant) => installManifests({ namespace, ...variant }) as Scoped[]);
  const clusterScoped = (namespace: string) => new Set(rendered(namespace)
    .filter((object) => object.metadata.namespace === undefined && !["Namespace", "CustomResourceDefinition"].includes(object.kind))
    .map((object) => `${object.kind}/${object.metadata.name}`));
  const a = clusterScoped("team-a");
  assert.ok(a.has("ClusterRoleBinding/ferry-controller-applier-team-a"), [...a].join(", "));
  assert.deepEqual([...clusterScoped("team-b")].filter((name) => a.has(name)), []);
});

test("another install is a part-of=ferry Deployment in another namespace", () => {
  const deployment = (namespace: string, partOf = "ferry") => ({ metadata: { namespace, labels: { "app.kubernetes.io/part-of": partOf } } });
  const live = [deployment("ferry-system"), deployment("team-a"), deployment("team-a"), deployment("apps", "podinfo")];
  assert.deepEqual(otherInstallNamespaces(live, "ferry-system"), ["team-a"]);
  assert.deepEqual(otherInstallNamespaces([deployment("ferry-system")], "ferry-system"), []);
});

test("the controller's disk is bounded: emptyDir size limits for the cache and /tmp", () => {
  type Pod = { volumes: Array<{ name: string; emptyDir: { sizeLimit?: string } }> };
  const limits = (options: Parameters<typeof installManifests>[0]) => {
    const pod = deploymentOf(installManifests(options)).spec.template.spec as unknown as Pod;
    return Object.fromEntries(pod.volumes.map((volume) => [volume.name, volume.emptyDir.sizeLimit]));
  };
  assert.deepEqual(limits({}), { cache: "4Gi", tmp: "2Gi" });
  // A cluster whose sources need more sets more, or none: past a limit the pod is evicted and fetches everything again.
  assert.deepEqual(limits({ cacheVolumeSize: "20Gi", tmpVolumeSize: "0" }), { cache: "20Gi", tmp: undefined });
});

test("--cache-volume-size and --tmp-volume-size take sizes or 0, and name a bad one", () => {
  assert.deepEqual(componentOptions({ "cache-volume-size": "20Gi", "tmp-volume-size": "0" }).cacheVolumeSize, "20Gi");
  assert.throws(() => componentOptions({ "tmp-volume-size": "2GB" }), /--tmp-volume-size must be a size such as 8Gi.*not "2GB"/);
  assert.throws(() => componentOptions({ "cache-volume-size": "-1Gi" }), /--cache-volume-size must be/);
});
