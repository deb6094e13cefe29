// The artifact cache's promises to the Kustomization reconciler: entries never change once published, an entry being
// read is not pruned, and a source's status cannot point a build anywhere but that source's own entries.
import assert from "node:assert/strict";
import { mkdir, mkdtemp, readdir, readFile, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, before, describe, test } from "node:test";
import { ArtifactCache, extractionVariant } from "../../src/artifact/cache.ts";

const DIGEST_A = `sha256:${"a".repeat(64)}`;
const DIGEST_B = `sha256:${"b".repeat(64)}`;
const DIGEST_C = `sha256:${"c".repeat(64)}`;

describe("artifact cache", () => {
  let root: string;
  let cache: ArtifactCache;

  before(async () => {
    root = await mkdtemp(join(tmpdir(), "ferry-cache-"));
    cache = new ArtifactCache(root);
  });
  after(() => rm(root, { recursive: true, force: true }));

  async function store(name: string, digest: string, content: string, variant?: string): Promise<string> {
    const staging = await cache.stage("OCIRepository", "team", name);
    await writeFile(join(staging, "file.txt"), content);
    const path = cache.relativePath("OCIRepository", "team", name, digest, variant);
    await cache.publish(staging, path);
    return path;
  }

  test("a published entry is never replaced: publishing the same digest again keeps the tree a build may be reading", async () => {
    const path = await store("immutable", DIGEST_A, "first");
    await store("immutable", DIGEST_A, "second");
    assert.equal(await readFile(join(root, path, "file.txt"), "utf8"), "first");
    const leftovers = (await readdir(cache.objectDir("OCIRepository", "team", "immutable"))).filter((entry) => entry.startsWith(".staging-"));
    assert.deepEqual(leftovers, []);
  });

  test("other extraction options give another entry for the same digest", async () => {
    const plain = await store("variants", DIGEST_A, "all files", extractionVariant({ ignore: undefined }));
    const ignored = await store("variants", DIGEST_A, "fewer files", extractionVariant({ ignore: "*.md" }));
    assert.notEqual(plain, ignored);
    assert.equal(await readFile(join(root, ignored, "file.txt"), "utf8"), "fewer files");
  });

  test("pruning leaves an entry that is being read", async () => {
    const oldest = await store("pruning", DIGEST_A, "a");
    await new Promise((resolve) => setTimeout(resolve, 20));
    await store("pruning", DIGEST_B, "b");
    await new Promise((resolve) => setTimeout(resolve, 20));
    const newest = await store("pruning", DIGEST_C, "c");
    await cache.reading(oldest, async (directory) => {
      await cache.prune("OCIRepository", "team", "pruning", newest);
      assert.equal(await readFile(join(directory, "file.txt"), "utf8"), "a");
    });
    await cache.prune("OCIRepository", "team", "pruning", newest);
    assert.equal(await cache.has(oldest), false, "pruned once no longer read");
    assert.equal(await cache.has(newest), true);
  });

  test("status.artifact.path is accepted only as one of the source's own entries", () => {
    const own = cache.relativePath("OCIRepository", "team", "app", DIGEST_A, "0123456789abcdef");
    assert.equal(cache.entryOf("OCIRepository", "team", "app", own), own);
    for (const hostile of [
      "ocirepository/team/app/../../other-team/app/" + `sha256-${"a".repeat(64)}`,
      `ocirepository/other-team/app/sha256-${"a".repeat(64)}`,
      "ocirepository/team/app/..",
      "/etc",
      `ocirepository/team/app/sha256-${"a".repeat(63)}`,
      `ocirepository/team/app/md5-${"a".repeat(32)}`,
      "",
    ]) {
      assert.equal(cache.entryOf("OCIRepository", "team", "app", hostile), undefined, hostile);
    }
  });

  test("build copies live in the cache; an earlier process's are collected at start, this one's are not", async () => {
    const ours = await cache.scratchDir();
    assert.ok(ours.startsWith(join(root, ".builds")), ours);
    const earlier = join(root, ".builds", "0badc0ffee00");
    await mkdir(join(earlier, "ferry-build-x", "artifact"), { recursive: true });
    await mkdir(join(ours, "ferry-build-y"), { recursive: true });
    await cache.collectGarbage("OCIRepository", () => true);
    await assert.rejects(readdir(earlier), /ENOENT/);
    assert.deepEqual(await readdir(ours), ["ferry-build-y"]);
    await rm(join(ours, "ferry-build-y"), { recursive: true });
  });

  test("garbage collection removes an earlier process's staging and the directories of deleted objects", async () => {
    const kept = await store("kept", DIGEST_A, "a");
    await mkdir(join(cache.objectDir("OCIRepository", "team", "kept"), ".staging-0badc0ffee00-1"), { recursive: true });
    const ours = await cache.stage("OCIRepository", "team", "kept");
    await store("deleted", DIGEST_A, "a");
    const removed = await cache.collectGarbage("OCIRepository", (namespace, name) => name !== "deleted");
    assert.equal(removed, 2);
    assert.equal(await cache.has(kept), true);
    assert.deepEqual((await readdir(cache.objectDir("OCIRepository", "team", "kept"))).sort(), [ours.split("/").pop(), kept.split("/").pop()].sort());
    await assert.rejects(readdir(cache.objectDir("OCIRepository", "team", "deleted")), /ENOENT/);
  });
});
