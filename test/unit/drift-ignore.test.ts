// spec.ignore as fluxcd/pkg/ssa applies DriftIgnoreRules: selection (anchored RE2 regexes, label and annotation
// selectors), drift detection without the ignored paths, and the payload that leaves them alone.
import assert from "node:assert/strict";
import { describe, test } from "node:test";
import { compileIgnoreRules, ignoredPaths, IgnoreRuleError, lookupPointer, matchesIgnoring, payloadIgnoring } from "../../src/apply/drift-ignore.ts";
import type { ManifestObject } from "../../src/kustomize/build.ts";

const deployment = (name: string, labels: Record<string, string> = {}, replicas = 2): ManifestObject => ({
  apiVersion: "apps/v1", kind: "Deployment", metadata: { name, namespace: "apps", labels }, spec: { replicas, template: { spec: { containers: [{ name: "app", image: "a:1" }] } } },
});

describe("spec.ignore", () => {
  test("targets select by anchored regexes and label selectors; no target selects everything", () => {
    const rules = compileIgnoreRules([
      { paths: ["/spec/replicas"], target: { kind: "Deploy" } },
      { paths: ["/spec/a"], target: { kind: "Deploy.*", name: "web|api", labelSelector: "tier in (front, back),!legacy" } },
      { paths: ["/metadata/annotations/x"] },
    ]);
    assert.deepEqual(ignoredPaths(rules, deployment("web", { tier: "front" })), ["/spec/a", "/metadata/annotations/x"]);
    assert.deepEqual(ignoredPaths(rules, deployment("web", { tier: "front", legacy: "yes" })), ["/metadata/annotations/x"]);
    assert.deepEqual(ignoredPaths(rules, deployment("webby", { tier: "front" })), ["/metadata/annotations/x"]);
    const byGroup = compileIgnoreRules([{ paths: ["/x"], target: { group: "apps", version: "v1", namespace: "app.", annotationSelector: "a!=b" } }]);
    assert.deepEqual(ignoredPaths(byGroup, deployment("web")), ["/x"]);
  });

  test("a target regex or selector that does not compile is refused, naming the rule", () => {
    assert.throws(() => compileIgnoreRules([{ paths: ["/x"] }, { paths: ["/x"], target: { kind: "(" } }]),
      (error: Error) => error instanceof IgnoreRuleError && /spec\.ignore\[1\]: .*invalid kind regex/.test(error.message));
    assert.throws(() => compileIgnoreRules([{ paths: ["/x"], target: { labelSelector: "a b c" } }]), /invalid label selector/);
  });

  test("drift only in ignored paths is no drift; elsewhere it is; the root path ignores the whole object", () => {
    const live = deployment("web", {}, 5);
    assert.equal(matchesIgnoring(live, deployment("web", {}, 2), ["/spec/replicas"]), true);
    assert.equal(matchesIgnoring(live, deployment("web", { a: "b" }, 2), ["/spec/replicas"]), false);
    assert.equal(matchesIgnoring(live, deployment("other"), [""]), true);
  });

  test("a drifted field another Apply manager owns is left out of the payload; one Ferry alone owns keeps the live value", () => {
    const managed = (manager: string) => ({ manager, operation: "Apply", fieldsV1: { "f:spec": { "f:replicas": {} } } });
    const liveOwnedByHpa = { ...deployment("web", {}, 5), metadata: { name: "web", namespace: "apps", managedFields: [managed("ferry"), managed("hpa")] } };
    const stripped = payloadIgnoring(deployment("web"), liveOwnedByHpa, deployment("web", {}, 2), ["/spec/replicas"], "ferry");
    assert.equal(lookupPointer(stripped, "/spec/replicas").found, false);
    const liveOwnedByFerry = { ...liveOwnedByHpa, metadata: { ...liveOwnedByHpa.metadata, managedFields: [managed("ferry")] } };
    const adopted = payloadIgnoring(deployment("web"), liveOwnedByFerry, deployment("web", {}, 2), ["/spec/replicas"], "ferry");
    assert.equal(lookupPointer(adopted, "/spec/replicas").value, 5);
    // Unchanged paths are left as the manifest has them.
    assert.equal(lookupPointer(payloadIgnoring(deployment("web"), deployment("web"), deployment("web"), ["/spec/replicas"], "ferry"), "/spec/replicas").value, 2);
  });

  test("list items are found in managedFields by their merge key, and ~1 stands for / in a key", () => {
    const fieldsV1 = { "f:spec": { "f:template": { "f:spec": { "f:containers": { "k:{\"name\":\"app\"}": { "f:image": {} } } } } } };
    const live = {
      ...deployment("web"),
      metadata: { name: "web", managedFields: [{ manager: "other", operation: "Apply", fieldsV1 }] },
      spec: { replicas: 2, template: { spec: { containers: [{ name: "app", image: "a:2" }] } } },
    };
    const payload = payloadIgnoring(deployment("web"), live, deployment("web"), ["/spec/template/spec/containers/0/image"], "ferry");
    assert.equal(lookupPointer(payload, "/spec/template/spec/containers/0/image").found, false);
    assert.equal(lookupPointer({ metadata: { annotations: { "a/b": "c" } } }, "/metadata/annotations/a~1b").value, "c");
  });
});
