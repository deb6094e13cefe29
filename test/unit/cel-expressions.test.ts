// Flux's runtime/cel semantics for healthCheckExprs and dependsOn[].readyExpr (status_evaluator.go, expression.go,
// kustomize-controller's evalReadyExpr), and the worker's bounds.
import assert from "node:assert/strict";
import { describe, test } from "node:test";
import { CelExpressionError, compileReadyExpression, evaluateReadyExpression, HealthExpressions, toCelValue } from "../../src/cel/expressions.ts";
import { CelBudgetError, evaluateHealthInWorker, evaluateReadyInWorker } from "../../src/cel/evaluate-in-worker.ts";

const SYNCED = {
  apiVersion: "bitnami.com/v1alpha1",
  kind: "SealedSecret",
  failed: "status.conditions.filter(e, e.type == 'Synced').all(e, e.status == 'False')",
  current: "status.conditions.filter(e, e.type == 'Synced').all(e, e.status == 'True')",
};

const sealed = (status: unknown, generation = 1) =>
  ({ apiVersion: "bitnami.com/v1alpha1", kind: "SealedSecret", metadata: { name: "s", generation }, status });

describe("healthCheckExprs", () => {
  const expressions = HealthExpressions.compile([SYNCED]);

  test("current, failed, and neither (InProgress), as Flux's SealedSecret example", () => {
    assert.equal(expressions.evaluate(sealed({ observedGeneration: 1, conditions: [{ type: "Synced", status: "True" }] })).status, "Current");
    assert.equal(expressions.evaluate(sealed({ observedGeneration: 1, conditions: [{ type: "Synced", status: "False" }] })).status, "Failed");
    assert.equal(expressions.evaluate(sealed({ observedGeneration: 1, conditions: [{ type: "Synced", status: "Unknown" }] })).status, "InProgress");
  });

  test("an integer observedGeneration behind metadata.generation is InProgress before any expression runs", () => {
    assert.equal(expressions.evaluate(sealed({ observedGeneration: 1, conditions: [{ type: "Synced", status: "True" }] }, 2)).status, "InProgress");
    // A string observedGeneration skips the check, as in Flux.
    assert.equal(expressions.evaluate(sealed({ observedGeneration: "1", conditions: [{ type: "Synced", status: "True" }] }, 2)).status, "Current");
  });

  test("order: inProgress, then failed, then current; the first true one decides", () => {
    const all = HealthExpressions.compile([{ apiVersion: "example.com/v1", kind: "W", inProgress: "true", failed: "true", current: "true" }]);
    assert.equal(all.evaluate({ apiVersion: "example.com/v1", kind: "W", metadata: {} }).status, "InProgress");
    const failedAndCurrent = HealthExpressions.compile([{ apiVersion: "example.com/v1", kind: "W", failed: "true", current: "true" }]);
    assert.equal(failedAndCurrent.evaluate({ apiVersion: "example.com/v1", kind: "W", metadata: {} }).status, "Failed");
  });

  test("a missing field or a non-boolean result is Unknown, naming the error (the wait goes on to the timeout)", () => {
    const result = expressions.evaluate({ apiVersion: "bitnami.com/v1alpha1", kind: "SealedSecret", metadata: { name: "s" } });
    assert.equal(result.status, "Unknown");
    assert.match(result.message, /failed: .*status/);
    const notBool = HealthExpressions.compile([{ apiVersion: "example.com/v1", kind: "W", current: "metadata.name" }]);
    assert.match(notBool.evaluate({ apiVersion: "example.com/v1", kind: "W", metadata: { name: "w" } }).message, /as boolean/);
  });

  test("integers are CEL ints: comparisons with int literals and between fields work", () => {
    const replicas = HealthExpressions.compile([{ apiVersion: "apps/v1", kind: "Deployment", current: "status.readyReplicas == spec.replicas && spec.replicas > 1" }]);
    assert.equal(replicas.evaluate({ apiVersion: "apps/v1", kind: "Deployment", metadata: {}, spec: { replicas: 2 }, status: { readyReplicas: 2 } }).status, "Current");
    assert.equal(toCelValue({ a: [1, 1.5] }) instanceof Object, true);
    assert.deepEqual(toCelValue({ a: [1, 1.5] }), { a: [1n, 1.5] });
  });

  test("matching is by group and kind; the version is ignored; a kind entry wins over a group-only entry", () => {
    const byGroup = HealthExpressions.compile([
      { apiVersion: "example.com/v1", current: "false" },
      { apiVersion: "example.com/v2", kind: "W", current: "true" },
    ]);
    assert.equal(byGroup.covers("example.com/v9", "Other"), true);
    assert.equal(byGroup.covers("other.com/v1", "W"), false);
    assert.equal(byGroup.evaluate({ apiVersion: "example.com/v1", kind: "W", metadata: {} }).status, "Current");
    assert.equal(byGroup.evaluate({ apiVersion: "example.com/v1", kind: "Other", metadata: {} }).status, "InProgress");
    assert.equal(byGroup.evaluate(undefined).status, "NotFound");
  });

  test("duplicates and expressions that do not parse are refused, naming the entry and the expression", () => {
    assert.throws(() => HealthExpressions.compile([SYNCED, { ...SYNCED, apiVersion: "bitnami.com/v1" }]),
      (error: Error) => error instanceof CelExpressionError && /duplicate custom health check for GroupKind SealedSecret.bitnami.com at healthCheckExprs\[1\]/.test(error.message));
    assert.throws(() => HealthExpressions.compile([{ ...SYNCED, failed: "status.conditions.all(e," }]),
      (error: Error) => error instanceof CelExpressionError
        && /healthCheckExprs\[0\]: failed to parse the expression Failed: failed to parse the CEL expression 'status\.conditions\.all\(e,'/.test(error.message));
  });

  test("parse-time bounds: an expression of thousands of nodes is refused before it runs", () => {
    const huge = Array.from({ length: 3000 }, (_, index) => `x == ${index}`).join(" || ");
    assert.throws(() => HealthExpressions.compile([{ apiVersion: "v1", kind: "ConfigMap", current: huge }]), CelExpressionError);
  });
});

describe("dependsOn readyExpr", () => {
  const self = { metadata: { name: "frontend", labels: { "app/version": "v1.2.3" } } };
  const dep = (version: string) => ({
    metadata: { name: "backend", generation: 2, labels: { "app/version": version } },
    status: { observedGeneration: 2, conditions: [{ type: "Ready", status: "True" }] },
  });
  const LOCKSTEP = "dep.metadata.labels['app/version'] == self.metadata.labels['app/version'] && "
    + "dep.status.conditions.filter(e, e.type == 'Ready').all(e, e.status == 'True') && "
    + "dep.metadata.generation == dep.status.observedGeneration";

  test("Flux's lockstep example: self is the dependent Kustomization, dep the dependency", () => {
    assert.equal(evaluateReadyExpression(LOCKSTEP, self, dep("v1.2.3")), true);
    assert.equal(evaluateReadyExpression(LOCKSTEP, self, dep("v1.2.2")), false);
  });

  test("compiled: unknown variables, syntax errors and non-boolean results are refused before evaluation", () => {
    assert.throws(() => compileReadyExpression("other.metadata.name == 'a'"), /failed to parse the CEL expression 'other\.metadata\.name == 'a''/);
    assert.throws(() => compileReadyExpression("dep.metadata.name =="), CelExpressionError);
    assert.throws(() => compileReadyExpression("dep.metadata.name"), /output type mismatch: expected bool, got dyn/);
  });
});

describe("the CEL worker", () => {
  test("evaluates health and readiness off the main thread", async () => {
    const results = await evaluateHealthInWorker([SYNCED], [sealed({ conditions: [{ type: "Synced", status: "True" }] }), undefined]);
    assert.deepEqual(results.map((result) => result.status), ["Current", "NotFound"]);
    assert.equal(await evaluateReadyInWorker("dep.metadata.name == 'b'", {}, { metadata: { name: "b" } }), true);
  });

  test("an expression that runs too long is stopped with CelBudgetError, and the event loop stays free", { timeout: 30_000 }, async () => {
    const list = Array.from({ length: 400 }, (_, index) => index);
    const object = { apiVersion: "example.com/v1", kind: "W", metadata: {}, spec: { items: list } };
    const cubic = "spec.items.all(a, spec.items.all(b, spec.items.all(c, spec.items.all(d, a + b + c + d >= 0))))";
    let ticks = 0;
    const ticker = setInterval(() => ticks++, 50);
    const started = Date.now();
    await assert.rejects(evaluateHealthInWorker([{ apiVersion: "example.com/v1", kind: "W", current: cubic }], [object]), CelBudgetError);
    clearInterval(ticker);
    assert.ok(Date.now() - started < 8_000);
    assert.ok(ticks > 50, `the main thread kept running (${ticks} ticks)`);
  });
});
