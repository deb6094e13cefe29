// pullArtifact merges into an existing output directory without a registry: links in the output are never written
// through, and a conflict is refused before anything moves. The integration test covers the CLI against zot.
import assert from "node:assert/strict";
import { lstatSync, readlinkSync } from "node:fs";
import { mkdir, mkdtemp, readdir, readFile, rm, symlink, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, before, describe, test } from "node:test";
import { gzipSync } from "node:zlib";
import { FLUX_CONTENT_MEDIA_TYPE } from "../../src/artifact/format.ts";
import { OutputConflictError, pullArtifact } from "../../src/artifact/pull.ts";
import { contentPadding, END_OF_ARCHIVE, entryHeader } from "../../src/artifact/tar-header.ts";
import type { RegistryClient } from "../../src/registry/client.ts";
import { OCI_MANIFEST, sha256Digest } from "../../src/registry/oci.ts";

function layerOf(files: Readonly<Record<string, string>>): Buffer {
  const entries = Object.entries(files).map(([path, text]) => {
    const content = Buffer.from(text);
    return Buffer.concat([entryHeader(path, "file", 0o644, content.length), content, contentPadding(content.length)]);
  });
  return gzipSync(Buffer.concat([...entries, END_OF_ARCHIVE]));
}

/** Just what pullArtifact reads from a registry: one manifest naming one layer. */
function registryServing(layer: Buffer): RegistryClient {
  const descriptor = { mediaType: FLUX_CONTENT_MEDIA_TYPE, digest: sha256Digest(layer), size: layer.length };
  const manifest = Buffer.from(JSON.stringify({ schemaVersion: 2, mediaType: OCI_MANIFEST, layers: [descriptor] }));
  const manifestDescriptor = { mediaType: OCI_MANIFEST, digest: sha256Digest(manifest), size: manifest.length };
  const client = {
    fetchManifest: async () => ({ bytes: manifest, descriptor: manifestDescriptor }),
    fetchBlobBytes: async () => layer,
  };
  return client as unknown as RegistryClient;
}

const REFERENCE = { registry: "registry.example", repository: "app" };

describe("pullArtifact into an existing directory", () => {
  let dir: string;
  let cases = 0;
  before(async () => {
    dir = await mkdtemp(join(tmpdir(), "ferry-pull-unit-"));
  });
  after(async () => {
    await rm(dir, { recursive: true, force: true });
  });

  async function outputWith(setup: (output: string, outside: string) => Promise<void>) {
    const root = join(dir, `case-${cases++}`);
    const output = join(root, "output");
    const outside = join(root, "outside");
    await mkdir(output, { recursive: true });
    await mkdir(outside);
    await setup(output, outside);
    return { output, outside };
  }

  test("a link where the artifact has a file is replaced itself; what it pointed to is untouched", async () => {
    const { output, outside } = await outputWith(async (output, outside) => {
      await writeFile(join(outside, "target.yaml"), "kind: Outside\n");
      await symlink(join(outside, "target.yaml"), join(output, "app.yaml"));
    });
    await pullArtifact(registryServing(layerOf({ "app.yaml": "kind: App\n" })), REFERENCE, output);
    assert.ok(lstatSync(join(output, "app.yaml")).isFile());
    assert.equal(await readFile(join(output, "app.yaml"), "utf8"), "kind: App\n");
    assert.equal(await readFile(join(outside, "target.yaml"), "utf8"), "kind: Outside\n");
  });

  test("a link to a directory where the artifact has a directory is refused, and nothing is written anywhere", async () => {
    const { output, outside } = await outputWith(async (output, outside) => {
      await writeFile(join(output, "existing.yaml"), "kind: Old\n");
      await symlink(outside, join(output, "apps"));
    });
    const layer = layerOf({ "existing.yaml": "kind: New\n", "apps/a.yaml": "kind: A\n" });
    await assert.rejects(pullArtifact(registryServing(layer), REFERENCE, output), (error: unknown) => {
      assert.ok(error instanceof OutputConflictError, String(error));
      assert.match(error.message, /directory "apps" is a link/);
      return true;
    });
    assert.deepEqual((await readdir(output)).sort(), ["apps", "existing.yaml"]);
    assert.equal(readlinkSync(join(output, "apps")), outside);
    assert.deepEqual(await readdir(outside), []);
    assert.equal(await readFile(join(output, "existing.yaml"), "utf8"), "kind: Old\n");
  });

  test("directories merge at any depth; a directory where the artifact has a file is refused", async () => {
    const { output } = await outputWith(async (output) => {
      await mkdir(join(output, "a", "b"), { recursive: true });
      await writeFile(join(output, "a", "b", "mine.yaml"), "kind: Mine\n");
    });
    await pullArtifact(registryServing(layerOf({ "a/b/c/new.yaml": "kind: New\n", "a/top.yaml": "kind: Top\n" })), REFERENCE, output);
    assert.deepEqual((await readdir(output, { recursive: true })).sort(), ["a", "a/b", "a/b/c", "a/b/c/new.yaml", "a/b/mine.yaml", "a/top.yaml"]);

    await assert.rejects(pullArtifact(registryServing(layerOf({ "a/b": "kind: File\n" })), REFERENCE, output), OutputConflictError);
    assert.equal(await readFile(join(output, "a", "b", "mine.yaml"), "utf8"), "kind: Mine\n");
  });
});
