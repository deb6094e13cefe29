// Bounded fan-out: one reconcile never has more than its limit of requests in flight, and results keep their order.
import assert from "node:assert/strict";
import { setTimeout as sleep } from "node:timers/promises";
import { test } from "node:test";
import { mapBounded, Slots } from "../../src/concurrency.ts";

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

test("Slots keeps at most `size` holders at once, in arrival order, and a waiter whose signal aborts leaves the line", async () => {
  const slots = new Slots(2);
  let running = 0;
  let peak = 0;
  const order: number[] = [];
  const job = (id: number) => async () => {
    running += 1;
    peak = Math.max(peak, running);
    await new Promise((resolve) => setTimeout(resolve, 10));
    order.push(id);
    running -= 1;
    return id;
  };
  const abort = new AbortController();
  const first = [1, 2].map((id) => slots.run(job(id)));
  const waiting = slots.run(job(99), abort.signal);
  const results = Promise.all([...first, ...[3, 4].map((id) => slots.run(job(id)))]);
  abort.abort(new Error("timeout"));
  await assert.rejects(waiting, /timeout/);
  assert.deepEqual(await results, [1, 2, 3, 4]);
  assert.equal(peak, 2);
  assert.ok(!order.includes(99), "the aborted waiter never ran");
  const failing = slots.run(async () => {
    throw new Error("boom");
  });
  await assert.rejects(failing, /boom/);
  assert.equal(await slots.run(async () => "slot released after a failure"), "slot released after a failure");
});
