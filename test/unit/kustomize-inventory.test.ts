// Inventory ids and manifest building as pure logic: ids survive names with "_", builds refuse bad input by name.
import assert from "node:assert/strict";
import { mkdir, mkdtemp, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { before, describe, test } from "node:test";
import { FerryError } from "../../src/errors.ts";
import { inventoryId, parseEntry, staleEntries, toEntry } from "../../src/inventory/inventory.ts";
import { buildManifests } from "../../src/kustomize/build.ts";
import { binary, skipUnlessBuilt } from "../harness/binaries.ts";

describe("inventory", () => {
  test("ids follow Flux's <namespace>_<name>_<group>_<kind> and parse back, even for names with underscores", () => {
    const refs = [
      { apiVersion: "apps/v1", kind: "Deployment", name: "podinfo", namespace: "apps" },
      { apiVersion: "v1", kind: "Service", name: "my_service", namespace: "default" },
      { apiVersion: "v1", kind: "Namespace", name: "apps" },
      { apiVersion: "rbac.authorization.k8s.io/v1", kind: "ClusterRole", name: "system:ferry" },
    ];
    assert.deepEqual(refs.map(inventoryId), [
      "apps_podinfo_apps_Deployment",
      "default_my_service__Service",
      "_apps__Namespace",
      "_system__ferry_rbac.authorization.k8s.io_ClusterRole",
    ]);
    for (const ref of refs) assert.deepEqual(parseEntry(toEntry(ref)), ref);
  });

  test("stale entries are those of the old inventory missing from the new one", () => {
    const a = toEntry({ apiVersion: "v1", kind: "ConfigMap", name: "a", namespace: "x" });
    const b = toEntry({ apiVersion: "v1", kind: "ConfigMap", name: "b", namespace: "x" });
    assert.deepEqual(staleEntries([a, b], [b]), [a]);
  });
});

describe("manifest build", { skip: skipUnlessBuilt("kustomize") }, () => {
  before(() => {
    process.env.FERRY_KUSTOMIZE = binary("kustomize");
  });

  test("a directory without a kustomization contributes every YAML document; bad input is named", async () => {
    const root = await mkdtemp(join(tmpdir(), "ferry-build-"));
    try {
      await mkdir(join(root, "apps", "sub"), { recursive: true });
      await writeFile(join(root, "apps", "a.yaml"), "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: a\n---\napiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: b\n");
      await writeFile(join(root, "apps", "sub", "c.yml"), "apiVersion: v1\nkind: Secret\nmetadata:\n  name: c\n");
      await writeFile(join(root, "apps", "notes.txt"), "ignored");
      const objects = await buildManifests(root, "./apps");
      assert.deepEqual(objects.map((object) => `${object.kind}/${object.metadata.name}`), ["ConfigMap/a", "ConfigMap/b", "Secret/c"]);

      await writeFile(join(root, "apps", "broken.yaml"), "kind: [unclosed\n");
      await assert.rejects(buildManifests(root, "apps"), (error: unknown) => error instanceof FerryError && /apps\/broken\.yaml is not valid YAML/.test(error.message));
      await assert.rejects(buildManifests(root, "../outside"), /leaves the artifact/);
      await assert.rejects(buildManifests(root, "missing"), /kustomization path not found: missing/);
    } finally {
      await rm(root, { recursive: true, force: true });
    }
  });
});
