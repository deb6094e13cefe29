// status.history as fluxcd/pkg/apis/meta History.Upsert keeps it (history_test.go's cases).
import assert from "node:assert/strict";
import { describe, test } from "node:test";
import { HISTORY_MAX_SIZE, historyDigest, type HistoryStatus, upsertHistory } from "../../src/reconcilers/kustomization-history.ts";

const at = (second: number) => new Date(Date.UTC(2026, 0, 1, 0, 0, second, 250));
const record = (digest: string, second: number, status: HistoryStatus = "ReconciliationSucceeded") =>
  ({ digest, at: at(second), durationMs: 2_818, status, metadata: { revision: `v1@${digest}` } });

describe("status.history", () => {
  test("a new digest goes first with a count of one, times in whole seconds and the duration as Go prints it", () => {
    const history = upsertHistory(undefined, record("sha256:a", 1));
    assert.deepEqual(history, [{
      digest: "sha256:a",
      firstReconciled: "2026-01-01T00:00:01Z",
      lastReconciled: "2026-01-01T00:00:01Z",
      lastReconciledDuration: "2.818s",
      lastReconciledStatus: "ReconciliationSucceeded",
      totalReconciliations: 1,
      metadata: { revision: "v1@sha256:a" },
    }]);
  });

  test("the same digest and status is counted again and moved to the front; firstReconciled stays", () => {
    let history = upsertHistory(undefined, record("sha256:a", 1));
    history = upsertHistory(history, record("sha256:b", 2));
    history = upsertHistory(history, record("sha256:a", 3));
    assert.deepEqual(history.map((snapshot) => [snapshot.digest, snapshot.totalReconciliations]), [["sha256:a", 2], ["sha256:b", 1]]);
    assert.equal(history[0]?.firstReconciled, "2026-01-01T00:00:01Z");
    assert.equal(history[0]?.lastReconciled, "2026-01-01T00:00:03Z");
  });

  test("the same digest with another status is a snapshot of its own", () => {
    let history = upsertHistory(undefined, record("sha256:a", 1, "HealthCheckFailed"));
    history = upsertHistory(history, record("sha256:a", 2));
    assert.deepEqual(history.map((snapshot) => snapshot.lastReconciledStatus), ["ReconciliationSucceeded", "HealthCheckFailed"]);
  });

  test(`at most ${HISTORY_MAX_SIZE} snapshots: the oldest go`, () => {
    let history = upsertHistory(undefined, record("sha256:0", 0));
    for (let index = 1; index < 8; index++) history = upsertHistory(history, record(`sha256:${index}`, index));
    assert.deepEqual(history.map((snapshot) => snapshot.digest), ["sha256:7", "sha256:6", "sha256:5", "sha256:4", "sha256:3"]);
  });

  test("the digest names the objects: equal objects, equal digest", () => {
    const objects = [{ apiVersion: "v1", kind: "ConfigMap", metadata: { name: "a" } }];
    assert.match(historyDigest(objects), /^sha256:[0-9a-f]{64}$/);
    assert.equal(historyDigest(objects), historyDigest(structuredClone(objects)));
    assert.notEqual(historyDigest(objects), historyDigest([{ ...objects[0], data: { a: "b" } }]));
  });
});
