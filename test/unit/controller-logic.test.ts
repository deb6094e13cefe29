// Work-queue guarantees and condition bookkeeping, as pure logic.
import assert from "node:assert/strict";
import { describe, test } from "node:test";
import { WorkQueue } from "../../src/controller/queue.ts";
import { setCondition } from "../../src/reconcilers/conditions.ts";
import { copiedFileName } from "../../src/reconcilers/ocirepository.ts";

const tick = (ms = 5) => new Promise((resolve) => setTimeout(resolve, ms));

describe("work queue", () => {
  test("one reconcile per key at a time, a bounded number at once, and a key added while running runs again", async () => {
    const running = new Set<string>();
    let peak = 0;
    const runs: string[] = [];
    const queue = new WorkQueue(
      async (key) => {
        assert.ok(!running.has(key), `${key} reconciled twice at once`);
        running.add(key);
        peak = Math.max(peak, running.size);
        runs.push(key);
        await tick(20);
        running.delete(key);
        return {};
      },
      { concurrency: 2, minRetryMs: 10, maxRetryMs: 100 },
    );
    for (const key of ["a", "b", "c", "d"]) queue.add(key);
    queue.add("a"); // already queued: deduplicated
    await tick(5);
    queue.add("a"); // running: marked dirty, runs once more afterwards
    await tick(150);
    await queue.shutdown();
    assert.equal(peak, 2);
    assert.deepEqual(runs.filter((key) => key === "a").length, 2);
  });

  test("a failing key is retried with growing backoff, and a success requeues after the interval it asked for", async () => {
    const attempts: number[] = [];
    let calls = 0;
    const queue = new WorkQueue(
      async () => {
        attempts.push(Date.now());
        calls++;
        if (calls < 3) throw new Error("registry down");
        return calls === 3 ? { requeueAfterMs: 30 } : {};
      },
      { concurrency: 1, minRetryMs: 20, maxRetryMs: 1000 },
    );
    queue.add("x");
    await tick(250);
    await queue.shutdown();
    assert.equal(calls, 4, "two failures, one success, one requeue after the interval");
    const [first = 0, second = 0, third = 0] = attempts;
    assert.ok(second - first >= 10, "no backoff after the first failure");
    assert.ok(third - second >= 20, "backoff did not grow");
  });
});

describe("conditions", () => {
  test("lastTransitionTime changes only when the status does", () => {
    const t0 = new Date("2026-01-01T00:00:00Z");
    const t1 = new Date("2026-01-01T00:05:00Z");
    let conditions = setCondition([], "Ready", "False", "Progressing", "working", 1, t0);
    conditions = setCondition(conditions, "Ready", "False", "OCIArtifactPullFailed", "503", 1, t1);
    assert.equal(conditions[0]?.lastTransitionTime, "2026-01-01T00:00:00Z");
    assert.equal(conditions[0]?.reason, "OCIArtifactPullFailed");
    conditions = setCondition(conditions, "Ready", "True", "Succeeded", "stored", 2, t1);
    assert.equal(conditions[0]?.lastTransitionTime, "2026-01-01T00:05:00Z");
    assert.equal(conditions[0]?.observedGeneration, 2);
  });

  test("Ready sorts first, then the abnormal-true conditions", () => {
    let conditions = setCondition([], "ArtifactInStorage", "True", "Succeeded", "", 1);
    conditions = setCondition(conditions, "Stalled", "True", "URLInvalid", "", 1);
    conditions = setCondition(conditions, "Ready", "False", "URLInvalid", "", 1);
    assert.deepEqual(conditions.map((condition) => condition.type), ["Ready", "Stalled", "ArtifactInStorage"]);
  });
});

describe("copied layers", () => {
  test("keep their title when it is a plain file name, else are named by digest", () => {
    const digest = `sha256:${"a".repeat(64)}`;
    assert.equal(copiedFileName("podinfo-6.9.0.tgz", digest), "podinfo-6.9.0.tgz");
    assert.equal(copiedFileName("../../etc/passwd", digest), `sha256-${"a".repeat(64)}.blob`);
    assert.equal(copiedFileName("..", digest), `sha256-${"a".repeat(64)}.blob`);
    assert.equal(copiedFileName(undefined, digest), `sha256-${"a".repeat(64)}.blob`);
  });
});
