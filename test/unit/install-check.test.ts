// The pure parts of `ferry check` and `ferry uninstall`: the version floor, the permissions an install needs (RBAC's
// escalation rules included), the judgement of an install's state, and the uninstall's order and release patch.
import assert from "node:assert/strict";
import { test } from "node:test";
import {
  accessKey, accessQuestions, checkKubernetesVersion, CRD_NAMES, evaluateInstall, evaluatePermissions, installRequirements, leaderOf,
} from "../../src/install/check.ts";
import { installManifests } from "../../src/install/manifests.ts";
import { describeInventory, FINALIZER, installObjects, nothingToUninstall, releasePatch, released } from "../../src/install/uninstall.ts";
import { FERRY_VERSION } from "../../src/version.ts";

test("the Kubernetes version floor is 1.29, read from gitVersions as distributions spell them", () => {
  for (const version of ["v1.29.0", "v1.36.3", "v1.30.4-eks-a737599", "v1.31.1+k3s1", "v2.0.0"]) assert.equal(checkKubernetesVersion(version).ok, true, version);
  for (const version of ["v1.28.15", "v1.9.0", "garbage"]) assert.equal(checkKubernetesVersion(version).ok, false, version);
  assert.match(checkKubernetesVersion("v1.28.2").message, /older than 1\.29 .*CEL/);
});

test("installing needs create and patch of every kind, and bind or all rules for each binding (cluster-admin: everything)", () => {
  const requirements = installRequirements(installManifests());
  const descriptions = requirements.map((requirement) => requirement.description);
  for (const expected of ["create customresourcedefinitions", "create namespaces", "create deployments in ferry-system", "create networkpolicies in ferry-system",
    "bind ClusterRole cluster-admin (bind, or hold its rules)", "grant the rules of ClusterRole ferry-controller-ferry-system (escalate, or hold them)"]) {
    assert.ok(descriptions.includes(expected), `${expected} not in ${descriptions.join(", ")}`);
  }
  const clusterAdmin = requirements.find((requirement) => requirement.description.startsWith("bind ClusterRole cluster-admin"));
  assert.deepEqual(clusterAdmin?.anyOf[1], [{ verb: "*", group: "*", resource: "*" }]);
  // A multi-tenant install binds no cluster-admin, so the caller need not be able to grant it.
  assert.ok(!installRequirements(installManifests({ multiTenant: true })).some((requirement) => requirement.description.includes("cluster-admin")));
});

test("a cluster admin (everything allowed) passes; someone who may create but not bind cluster-admin is told so", () => {
  const requirements = installRequirements(installManifests());
  const questions = accessQuestions(requirements);
  assert.equal(new Set(questions.map(accessKey)).size, questions.length, "each question is asked once");
  const everything = new Map(questions.map((question) => [accessKey(question), true]));
  assert.ok(evaluatePermissions(requirements, everything).every((result) => result.ok));
  const noBind = new Map(questions.map((question) => [accessKey(question), question.verb !== "*" && question.verb !== "bind"]));
  const failed = evaluatePermissions(requirements, noBind).filter((result) => !result.ok).map((result) => result.message);
  assert.deepEqual(failed, ["cannot bind ClusterRole cluster-admin (bind, or hold its rules)"]);
  // Holding every rule of its own roles lets the caller bind those without `bind`; subresources are asked as such.
  assert.ok(questions.some((question) => question.resource === "kustomizations" && question.subresource === "status" && question.verb === "patch"));
});

const established = (name: string, version = `v${FERRY_VERSION}`) => ({
  metadata: { name, labels: { "app.kubernetes.io/version": version } },
  status: { conditions: [{ type: "Established", status: "True" }] },
});
const deployment = (available: boolean) => ({
  apiVersion: "apps/v1", kind: "Deployment",
  metadata: { name: "ferry-controller", generation: 1, labels: { "app.kubernetes.io/version": `v${FERRY_VERSION}` } },
  spec: { replicas: 1, template: { spec: { containers: [{ name: "controller", image: "example/ferry:1" }] } } },
  status: {
    observedGeneration: 1, replicas: 1, updatedReplicas: 1, readyReplicas: available ? 1 : 0, availableReplicas: available ? 1 : 0,
    conditions: [{ type: "Available", status: available ? "True" : "False" }],
  },
});
const now = new Date("2026-01-01T00:00:30Z");
const lease = (renewTime: string) => ({ spec: { holderIdentity: "pod-a", leaseDurationSeconds: 15, renewTime } });
const observe = (overrides: Partial<Parameters<typeof evaluateInstall>[0]>) => evaluateInstall({
  cliVersion: FERRY_VERSION, namespace: "ferry-system", now,
  crds: new Map(CRD_NAMES.map((name) => [name, established(name)])),
  deployment: deployment(true), lease: lease("2026-01-01T00:00:25.000000Z"), ...overrides,
});
const failures = (report: ReturnType<typeof evaluateInstall>) => report.checks.filter((check) => !check.ok).map((check) => check.message);

test("a healthy install passes, with its versions and a fresh leader", () => {
  const report = observe({});
  assert.deepEqual(failures(report), []);
  assert.equal(report.ok, true);
  assert.deepEqual(report.versions.controller, { version: `v${FERRY_VERSION}`, image: "example/ferry:1" });
  assert.equal(report.leader?.holder, "pod-a");
});

test("each fault of an install fails by name: missing or old CRD, controller not Ready or absent, stale or empty lease", () => {
  const [first = "", second = ""] = CRD_NAMES;
  assert.deepEqual(failures(observe({ crds: new Map([[second, established(second, "v0.0.1-old")]]) })), [
    `CRD ${first} is not installed`, `CRD ${second} is at v0.0.1-old, this CLI's is v${FERRY_VERSION}`,
  ]);
  assert.match(failures(observe({ deployment: deployment(false) })).join(), /Deployment ferry-system\/ferry-controller is InProgress/);
  assert.deepEqual(failures(observe({ deployment: undefined })), ["Deployment ferry-system/ferry-controller not found: is Ferry installed in ferry-system?"]);
  assert.match(failures(observe({ lease: lease("2026-01-01T00:00:10Z") })).join(), /leader pod-a has not renewed its lease in time/);
  assert.match(failures(observe({ lease: undefined })).join(), /has no holder/);
  assert.equal(leaderOf({ spec: { holderIdentity: "", leaseDurationSeconds: 1, renewTime: "2026-01-01T00:00:30Z" } }, now)?.fresh, false);
});

test("uninstall deletes namespaced objects, then cluster RBAC, then CRDs, the namespace last, and never the Deployment here", () => {
  const refs = installObjects("ferry-system");
  const kinds = refs.map((ref) => ref.kind);
  assert.ok(!kinds.includes("Deployment"));
  assert.equal(kinds.at(-1), "Namespace");
  assert.ok(kinds.lastIndexOf("ServiceAccount") < kinds.indexOf("ClusterRoleBinding"));
  assert.ok(kinds.lastIndexOf("ClusterRole") < kinds.indexOf("CustomResourceDefinition"));
  const names = refs.map((ref) => `${ref.kind}/${ref.name}`);
  // Every variant of the install: the applier binding, the multi-tenant impersonator, the namespaced RoleBinding.
  for (const name of ["ClusterRoleBinding/ferry-controller-applier-ferry-system", "ClusterRole/ferry-controller-impersonator-ferry-system", "RoleBinding/ferry-controller"]) {
    assert.ok(names.includes(name), name);
  }
  assert.ok(!installObjects("ferry-system", { keepNamespace: true }).some((ref) => ref.kind === "Namespace"));
});

test("uninstalling one namespace's install names no cluster-scoped object of another's but the CRDs, and keepCrds keeps those", () => {
  const clusterScoped = (namespace: string, options = {}) =>
    installObjects(namespace, options).filter((ref) => ref.namespace === undefined && ref.kind !== "Namespace").map((ref) => `${ref.kind}/${ref.name}`);
  const mine = clusterScoped("team-a");
  const shared = clusterScoped("team-b").filter((name) => mine.includes(name));
  assert.deepEqual(shared, CRD_NAMES.map((name) => `CustomResourceDefinition/${name}`));
  assert.ok(!clusterScoped("team-a", { keepCrds: true }).some((name) => name.startsWith("CustomResourceDefinition/")));
});

test("the release patch suspends, drops only Ferry's finalizer, and carries the resourceVersion as a precondition", () => {
  const metadata = { name: "a", namespace: "b", resourceVersion: "42", finalizers: ["other.example/keep", FINALIZER] };
  assert.deepEqual(releasePatch(metadata), { metadata: { resourceVersion: "42", finalizers: ["other.example/keep"] }, spec: { suspend: true } });
  assert.equal(released({ metadata, spec: { suspend: true } }), false);
  assert.equal(released({ metadata: { ...metadata, finalizers: [] }, spec: { suspend: true } }), true);
  assert.equal(released({ metadata: { ...metadata, finalizers: [] }, spec: {} }), false, "unsuspended, a controller could re-add it and prune");
});

test("an empty cluster has nothing to uninstall; a found install is listed for the confirmation", () => {
  assert.equal(nothingToUninstall({ controller: false, otherInstalls: [], customObjects: 0, installObjects: [] }), true);
  const namespace = [{ apiVersion: "v1", kind: "Namespace", name: "ferry-system" }];
  const lines = describeInventory({ controller: true, otherInstalls: [], customObjects: 2, installObjects: namespace }, "ferry-system");
  assert.deepEqual(lines, [
    "Deployment ferry-system/ferry-controller (the controller, deleted first)",
    "2 Kustomizations and OCIRepositories (suspended and released: what they applied stays)",
    "Namespace ferry-system",
  ]);
  const beside = describeInventory({ controller: true, otherInstalls: ["ferry-b"], customObjects: 0, installObjects: namespace }, "ferry-system");
  assert.equal(beside.at(-1), "(kept: the CRDs and the Kustomizations and OCIRepositories outside ferry-system, which Ferry in ferry-b uses)");
});
