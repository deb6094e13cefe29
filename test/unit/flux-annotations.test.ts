// Flux's names for Ferry's per-object policies and for reconcile requests.
import assert from "node:assert/strict";
import { test } from "node:test";
import { pendingRequest, policyEntry, requestChanged } from "../../src/api/flux-annotations.ts";
import { applyExcluded, forceEnabled, pruneDisabled, ssaPolicy } from "../../src/apply/policy.ts";

test("policies under Flux's names, on annotations or labels, count as Ferry's; of two that disagree the more protective wins", () => {
  assert.equal(pruneDisabled({ annotations: { "kustomize.toolkit.fluxcd.io/prune": "disabled" } }), true);
  assert.equal(pruneDisabled({ labels: { "kustomize.toolkit.fluxcd.io/prune": "Disabled" } }), true);
  assert.equal(ssaPolicy({ annotations: { "kustomize.toolkit.fluxcd.io/ssa": "IfNotPresent" } }), "IfNotPresent");
  assert.equal(forceEnabled({ labels: { "kustomize.toolkit.fluxcd.io/force": "enabled" } }), true);
  // Flux's selectors match a label or an annotation (utils.AnyInMetadata): Ignore on either is Ignore.
  const both = { annotations: { "kustomize.ferry.dev/ssa": "Merge", "kustomize.toolkit.fluxcd.io/ssa": "Ignore" } };
  assert.equal(ssaPolicy(both), "Ignore");
  assert.equal(ssaPolicy({ annotations: { "kustomize.toolkit.fluxcd.io/ssa": "Merge" }, labels: { "kustomize.toolkit.fluxcd.io/ssa": "ignore" } }), "Ignore");
  assert.equal(ssaPolicy({ annotations: { "kustomize.toolkit.fluxcd.io/ssa": "merge" }, labels: { "kustomize.toolkit.fluxcd.io/ssa": "IfNotPresent" } }), "IfNotPresent");
  assert.equal(ssaPolicy({ annotations: { "kustomize.toolkit.fluxcd.io/ssa": "Override" } }), "Override");
  assert.equal(policyEntry({ annotations: { "kustomize.toolkit.fluxcd.io/other": "x" } }, "reconcile.ferry.dev/other"), undefined);
});

test("a reconcile request under either name is handled; with both, the later one is echoed", () => {
  const ferry = "reconcile.ferry.dev/requestedAt";
  const flux = "reconcile.fluxcd.io/requestedAt";
  assert.equal(pendingRequest({ [flux]: "t1" }), "t1");
  assert.equal(pendingRequest({ [ferry]: "2026-12-04T10:00:00Z", [flux]: "2026-12-04T11:00:00+00:00" }), "2026-12-04T11:00:00+00:00");
  assert.equal(pendingRequest({ [ferry]: "2026-12-04T12:00:00Z", [flux]: "2026-12-04T11:00:00+00:00" }), "2026-12-04T12:00:00Z");
  assert.equal(pendingRequest({ [ferry]: "now", [flux]: "2026-12-04T11:00:00Z" }), "2026-12-04T11:00:00Z");
  assert.equal(pendingRequest({ [ferry]: "a", [flux]: "b" }), "a", "unordered: Ferry's");
  assert.equal(pendingRequest({}), undefined);
  assert.equal(requestChanged({ [flux]: "2" }, { [flux]: "1" }), true);
  assert.equal(requestChanged({ [flux]: "1", [ferry]: "1" }, { [flux]: "1", [ferry]: "1" }), false);
});

test("reconcile: disabled excludes an object from apply and prune, under either name, on a label or an annotation", () => {
  assert.equal(applyExcluded({ annotations: { "kustomize.toolkit.fluxcd.io/reconcile": "disabled" } }), true);
  assert.equal(applyExcluded({ labels: { "kustomize.ferry.dev/reconcile": "Disabled" } }), true);
  assert.equal(applyExcluded({ annotations: { "kustomize.toolkit.fluxcd.io/ssa": "Ignore" } }), true);
  assert.equal(applyExcluded({ annotations: { "kustomize.toolkit.fluxcd.io/reconcile": "enabled" } }), false);
  assert.equal(applyExcluded(undefined), false);
  assert.equal(pruneDisabled({ labels: { "kustomize.toolkit.fluxcd.io/reconcile": "disabled" } }), true);
  assert.equal(pruneDisabled({ annotations: { "kustomize.toolkit.fluxcd.io/prune": "enabled" } }), false);
});
