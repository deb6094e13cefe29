// The install's objects: what the options change, and the restricted pod settings that must never be lost.
import assert from "node:assert/strict";
import { test } from "node:test";
import { installManifests } from "../../src/install/manifests.ts";

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
  assert.ok(pod.containers[0]?.args.includes("--max-heap-mib=768"), "the heap budget follows the 1024 MiB limit");
});

test("options: multi-tenant drops cluster-admin and adds --tenant-lockdown; registry, pull secret, no network policy", () => {
  const objects = installManifests({ multiTenant: true, registry: "mirror.internal/ferry", imagePullSecret: "mirror", networkPolicy: false, memoryLimitMiB: 2048 });
  assert.ok(!(objects as Manifest[]).some((object) => object.roleRef?.name === "cluster-admin"));
  assert.ok(!kinds(objects).includes("NetworkPolicy"));
  const pod = deploymentOf(objects).spec.template.spec;
  assert.match(pod.containers[0]?.image ?? "", /^mirror\.internal\/ferry\/ferry:v/);
  assert.deepEqual(pod.imagePullSecrets, [{ name: "mirror" }]);
  assert.ok(pod.containers[0]?.args.includes("--tenant-lockdown"));
  assert.ok(pod.containers[0]?.args.includes("--max-heap-mib=1536"));
});
