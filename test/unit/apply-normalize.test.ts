// What Ferry applies for a manifest, normalised as Flux's kustomize-controller normalises it (fluxcd/pkg/ssa normalize).
import assert from "node:assert/strict";
import { test } from "node:test";
import { normalizeForApply } from "../../src/apply/normalize.ts";
import type { ManifestObject } from "../../src/kustomize/build.ts";

const object = (apiVersion: string, kind: string, rest: Record<string, unknown>) =>
  ({ apiVersion, kind, metadata: { name: "x" }, ...rest }) as ManifestObject;

test("a Secret's stringData becomes data, stringData winning a key both have; removed keys can then be pruned from data", () => {
  const secret = object("v1", "Secret", { data: { kept: "a2VwdA==", both: "b2xk" }, stringData: { both: "new", ünï: "ß" } });
  assert.deepEqual(normalizeForApply(secret), object("v1", "Secret", {
    data: { kept: "a2VwdA==", both: Buffer.from("new").toString("base64"), ünï: Buffer.from("ß", "utf8").toString("base64") },
  }));
  assert.deepEqual(normalizeForApply(object("v1", "Secret", { stringData: { a: "1" } })), object("v1", "Secret", { data: { a: "MQ==" } }));
  // A value that is not a string is left for the apiserver to refuse by name, as Flux's typed conversion leaves it.
  const numeric = object("v1", "Secret", { stringData: { port: 5432 } });
  assert.deepEqual(normalizeForApply(numeric), numeric);
  const other = object("example.com/v1", "Secret", { stringData: { a: "1" } });
  assert.deepEqual(normalizeForApply(other), other);
});

test("ports without a protocol get TCP in containers and Services; init containers and unknown kinds are left alone", () => {
  const deployment = normalizeForApply(object("apps/v1", "Deployment", {
    spec: { template: { spec: {
      initContainers: [{ name: "init", ports: [{ containerPort: 1 }] }],
      containers: [{ name: "app", ports: [{ containerPort: 80 }, { containerPort: 53, protocol: "UDP" }] }, { name: "bare" }],
    } } },
  })) as unknown as { spec: { template: { spec: { initContainers: unknown[]; containers: unknown[] } } } };
  assert.deepEqual(deployment.spec.template.spec.containers, [
    { name: "app", ports: [{ containerPort: 80, protocol: "TCP" }, { containerPort: 53, protocol: "UDP" }] }, { name: "bare" }]);
  assert.deepEqual(deployment.spec.template.spec.initContainers, [{ name: "init", ports: [{ containerPort: 1 }] }]);
  const cronJob = normalizeForApply(object("batch/v1", "CronJob", {
    spec: { jobTemplate: { spec: { template: { spec: { containers: [{ name: "c", ports: [{ containerPort: 9 }] }] } } } } },
  })) as unknown as { spec: { jobTemplate: { spec: { template: { spec: { containers: Array<{ ports: unknown[] }> } } } } } };
  assert.deepEqual(cronJob.spec.jobTemplate.spec.template.spec.containers[0]?.ports, [{ containerPort: 9, protocol: "TCP" }]);
  const service = normalizeForApply(object("v1", "Service", { spec: { ports: [{ port: 80 }] } })) as unknown as { spec: { ports: unknown[] } };
  assert.deepEqual(service.spec.ports, [{ port: 80, protocol: "TCP" }]);
  const custom = object("example.com/v1", "Deployment", { spec: { template: { spec: { containers: [{ ports: [{ containerPort: 1 }] }] } } } });
  assert.deepEqual(normalizeForApply(custom), custom);
  const odd = object("v1", "Service", { spec: "not an object" });
  assert.deepEqual(normalizeForApply(odd), odd);
});

test("status is dropped except from CRDs and RBAC Roles", () => {
  assert.equal("status" in normalizeForApply(object("v1", "ConfigMap", { status: { a: 1 } })), false);
  assert.equal("status" in normalizeForApply(object("apiextensions.k8s.io/v1", "CustomResourceDefinition", { status: {} })), true);
  assert.equal("status" in normalizeForApply(object("rbac.authorization.k8s.io/v1", "ClusterRole", { status: {} })), true);
});
