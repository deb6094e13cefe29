// The pure part of `npm run bench:controllers`: percentiles, ratios, goals and the table it prints.
import assert from "node:assert/strict";
import { describe, test } from "node:test";
import { formatTable, goalVerdict, median, percentile, ratio } from "../../bench/controllers/stats.ts";

describe("bench:controllers statistics", () => {
  test("median of odd and even counts", () => {
    assert.equal(median([3, 1, 2]), 2);
    assert.equal(median([4, 1, 3, 2]), 2.5);
  });

  test("nearest-rank percentiles: p50 and p95 of 20 pushes", () => {
    const twenty = Array.from({ length: 20 }, (_, index) => 20 - index);
    assert.equal(percentile(twenty, 50), 10);
    assert.equal(percentile(twenty, 95), 19);
    assert.equal(percentile(twenty, 100), 20);
    assert.equal(percentile([7], 95), 7);
    assert.ok(Number.isNaN(percentile([], 50)));
  });

  test("ratio is Ferry/Flux, undefined without both sides", () => {
    assert.equal(ratio(1, 4), 0.25);
    assert.equal(ratio(undefined, 4), undefined);
    assert.equal(ratio(1, undefined), undefined);
    assert.equal(ratio(0, 0), 1);
    assert.equal(ratio(1, 0), undefined);
  });

  test("goals: ratio at most, exactly, below", () => {
    assert.equal(goalVerdict({ kind: "ratio-at-most", value: 0.5 }, 1, 2), "met");
    assert.equal(goalVerdict({ kind: "ratio-at-most", value: 0.5 }, 1.1, 2), "MISSED");
    assert.equal(goalVerdict({ kind: "ratio-at-most", value: 0.5 }, 1, undefined), "");
    assert.equal(goalVerdict({ kind: "ferry-exactly", value: 1 }, 1, 2), "met");
    assert.equal(goalVerdict({ kind: "ferry-exactly", value: 1 }, 1.01, undefined), "MISSED");
    assert.equal(goalVerdict({ kind: "ferry-below", value: 2 }, 1.9, undefined), "met");
    assert.equal(goalVerdict(undefined, 1, 2), "");
  });

  test("one table: medians, ratio, goal; a missing Flux peer says so", () => {
    const table = formatTable([
      { label: "100 OCIRepositories: all Ready (s)", ferry: [2, 1, 3], flux: [8, 4, 6], goal: { kind: "ratio-at-most", value: 0.5 } },
      { label: "push -> applied p50 (s)", ferry: [0.5], fluxMissing: "n/a (peer missing)", digits: 2, goal: { kind: "ferry-below", value: 2 } },
    ]);
    assert.equal(table, [
      "row                                 Ferry                Flux  ratio          goal",
      "100 OCIRepositories: all Ready (s)    2.0                 6.0  0.33x  <= 0.5x Flux  met",
      "push -> applied p50 (s)              0.50  n/a (peer missing)      -           < 2  met",
    ].join("\n"));
  });
});
