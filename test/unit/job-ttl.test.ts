import assert from "node:assert/strict";
import { test } from "node:test";
import { jobsDeletedWhenFinished } from "../../src/health/job-ttl.ts";
import type { ManifestObject } from "../../src/kustomize/build.ts";

test("Jobs that set ttlSecondsAfterFinished (0 included) are the ones a health check may find deleted", () => {
  const job = (name: string, spec: Record<string, unknown>, apiVersion = "batch/v1") =>
    ({ apiVersion, kind: "Job", metadata: { name, namespace: "apps" }, spec }) as ManifestObject;
  const ids = jobsDeletedWhenFinished([
    job("zero", { ttlSecondsAfterFinished: 0 }),
    job("later", { ttlSecondsAfterFinished: 300 }),
    job("kept", {}),
    job("text", { ttlSecondsAfterFinished: "0" }),
    job("custom", { ttlSecondsAfterFinished: 0 }, "example.com/v1"),
  ]);
  assert.deepEqual([...ids].sort(), ["apps_later_batch_Job", "apps_zero_batch_Job"]);
});
