// Bounded fan-out: one reconcile never has more than its limit of requests in flight, and results keep their order.
import assert from "node:assert/strict";
import { setTimeout as sleep } from "node:timers/promises";
import { test } from "node:test";
import { mapBounded } from "../../src/concurrency.ts";

test("mapBounded keeps at most `limit` calls in flight and returns results in the items' order", async () => {
  let inFlight = 0;
  let peak = 0;
  const items = Array.from({ length: 50 }, (_, index) => index);
  const results = await mapBounded(items, async (item) => {
    peak = Math.max(peak, ++inFlight);
    await sleep(item % 3);
    inFlight--;
    return item * 2;
  }, 4);
  assert.equal(peak, 4);
  assert.deepEqual(results, items.map((item) => item * 2));
  assert.deepEqual(await mapBounded([], async () => 1), []);
});

test("mapBounded rejects with the first failure", async () => {
  await assert.rejects(mapBounded([1, 2, 3], async (item) => {
    if (item === 2) throw new Error("two failed");
    return item;
  }, 2), /two failed/);
});
