// The bundled CLI (dist/ferry.mjs), as users run it, on paths that need no registry or cluster.
import assert from "node:assert/strict";
import { mkdtemp, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, before, describe, test } from "node:test";
import { ferry } from "../harness/ferry.ts";

describe("bundled CLI", () => {
  let dir: string;
  before(async () => {
    dir = await mkdtemp(join(tmpdir(), "ferry-bundle-"));
  });
  after(async () => {
    await rm(dir, { recursive: true, force: true });
  });

  test("a Kubernetes command names a missing kubeconfig and prints no Node deprecation warning", async () => {
    const missing = join(dir, "missing-kubeconfig");
    const result = await ferry(["get", "sources", "oci", `--kubeconfig=${missing}`], { bundle: true });
    assert.equal(result.status, 1);
    assert.equal(result.stdout, "");
    assert.match(result.stderr, new RegExp(`^✗ cannot load kubeconfig ${missing}: ENOENT`));
    assert.doesNotMatch(result.stderr, /DeprecationWarning|punycode/);
  });

  test("KUBECONFIG is read as kubectl reads it, and an invalid one is named", async () => {
    const broken = join(dir, "broken-kubeconfig");
    await writeFile(broken, "clusters: [\n");
    const result = await ferry(["get", "kustomizations"], { bundle: true, env: { KUBECONFIG: broken } });
    assert.equal(result.status, 1);
    assert.match(result.stderr, new RegExp(`^✗ cannot load kubeconfig ${broken}: `));
    assert.doesNotMatch(result.stderr, /DeprecationWarning/);
  });
});
