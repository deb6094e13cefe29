// Every timer the controller sets stays within what Node's timers can hold: a delay over 2^31-1 ms fires after 1 ms
// (a hot loop for a long interval), and a zero delay would run a key again at once, for ever.
import assert from "node:assert/strict";
import { describe, mock, test } from "node:test";
import { WorkQueue } from "../../src/controller/queue.ts";

const LONGEST_TIMER_MS = 2 ** 31 - 1;
const HOUR_MS = 3_600_000;
const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

/** A queue whose one key asks to run again after `requeueAfterMs`; records when each reconcile started. */
function requeuingQueue(requeueAfterMs: number, minDelayMs?: number) {
  const starts: number[] = [];
  const queue = new WorkQueue(
    async () => {
      starts.push(performance.now());
      return { requeueAfterMs };
    },
    { concurrency: 1, minRetryMs: 10, maxRetryMs: 100, ...(minDelayMs === undefined ? {} : { minDelayMs }) },
  );
  return { queue, starts };
}

describe("work queue timers", () => {
  test("a 1000 h interval is held as the longest timer Node keeps, and does not fire at once", async () => {
    const warnings: string[] = [];
    const onWarning = (warning: Error) => warnings.push(warning.name);
    process.on("warning", onWarning);
    const setTimeoutSpy = mock.method(globalThis, "setTimeout");
    try {
      const { queue, starts } = requeuingQueue(1000 * HOUR_MS);
      queue.add("slow");
      await sleep(50);
      const delays = setTimeoutSpy.mock.calls.map((call) => call.arguments[1] as number);
      await queue.shutdown();
      assert.equal(starts.length, 1, "the requeue fired within 50 ms");
      assert.ok(delays.includes(LONGEST_TIMER_MS), `no timer of 2^31-1 ms was set: ${delays.join(", ")}`);
      assert.ok(delays.every((delay) => delay <= LONGEST_TIMER_MS), `a timer over 2^31-1 ms was set: ${delays.join(", ")}`);
      assert.deepEqual(warnings.filter((name) => name === "TimeoutOverflowWarning"), []);
    } finally {
      setTimeoutSpy.mock.restore();
      process.off("warning", onWarning);
    }
  });

  test("a zero interval runs again no sooner than the queue's floor", async () => {
    const { queue, starts } = requeuingQueue(0, 40);
    queue.add("eager");
    await sleep(150);
    await queue.shutdown();
    assert.ok(starts.length >= 2 && starts.length <= 4, `${starts.length} reconciles in 150 ms with a 40 ms floor`);
    const gaps = starts.slice(1).map((start, index) => start - (starts[index] ?? 0));
    // Node may fire a timer up to a millisecond early by performance.now().
    assert.ok(gaps.every((gap) => gap >= 39), `a requeue came sooner than the floor: ${gaps.map((gap) => gap.toFixed(1)).join(", ")} ms`);
  });

  test("without a floor of its own the queue still refuses to spin: zero and NaN wait the default floor", async () => {
    for (const delay of [0, -5, Number.NaN]) {
      const { queue, starts } = requeuingQueue(delay);
      queue.add("eager");
      await sleep(120);
      await queue.shutdown();
      assert.ok(starts.length <= 3, `${starts.length} reconciles in 120 ms for a requeue after ${delay} ms`);
    }
  });
});
