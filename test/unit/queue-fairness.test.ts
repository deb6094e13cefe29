// One namespace's reconciles cannot take every worker: the queue runs at most maxActivePerGroup keys of a namespace
// at once, and keys of other namespaces go ahead of the ones waiting for that.
import assert from "node:assert/strict";
import { test } from "node:test";
import { WorkQueue } from "../../src/controller/queue.ts";

test("a namespace whose reconciles hang holds at most its share of workers", async () => {
  const started: string[] = [];
  const releases = new Map<string, () => void>();
  const queue = new WorkQueue(async (key) => {
    started.push(key);
    if (key.startsWith("attacker/")) await new Promise<void>((resolve) => releases.set(key, resolve));
    return {};
  }, { concurrency: 2, maxActivePerGroup: 1, minRetryMs: 10, maxRetryMs: 10 });
  for (const key of ["attacker/a", "attacker/b", "attacker/c", "victim/app"]) queue.add(key);
  await new Promise((resolve) => setTimeout(resolve, 20));
  assert.deepEqual(started, ["attacker/a", "victim/app"], "the victim waited behind the attacker's keys");
  releases.get("attacker/a")?.();
  await new Promise((resolve) => setTimeout(resolve, 20));
  assert.deepEqual(started, ["attacker/a", "victim/app", "attacker/b"]);
  releases.get("attacker/b")?.();
  await new Promise((resolve) => setTimeout(resolve, 20));
  releases.get("attacker/c")?.();
  await queue.shutdown();
  assert.deepEqual(started.sort(), ["attacker/a", "attacker/b", "attacker/c", "victim/app"]);
});
