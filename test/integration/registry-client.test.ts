// The registry client's protocol paths against both real registries: chunked and monolithic uploads,
// cross-repository mounts, tag pagination, referrers (API or tag-schema fallback) and size limits.
import assert from "node:assert/strict";
import { randomBytes } from "node:crypto";
import { subscribe, unsubscribe } from "node:diagnostics_channel";
import { mkdtemp, readdir, readFile, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, before, describe, test } from "node:test";
import { blobFromBuffer, RegistryClient } from "../../src/registry/client.ts";
import { LimitExceededError, NotFoundError } from "../../src/registry/errors.ts";
import { OCI_EMPTY, OCI_MANIFEST, sha256Digest } from "../../src/registry/oci.ts";
import { skipUnlessBuilt } from "../harness/binaries.ts";
import { type Registry, type RegistryKind, startRegistry } from "../harness/registry.ts";
import { runTool } from "../harness/tools.ts";

const EMPTY = Buffer.from("{}");

function manifestFor(layer: Buffer, extra: Record<string, unknown> = {}): Buffer {
  return Buffer.from(
    JSON.stringify({
      schemaVersion: 2,
      mediaType: OCI_MANIFEST,
      config: { mediaType: OCI_EMPTY, digest: sha256Digest(EMPTY), size: EMPTY.length },
      layers: [{ mediaType: "application/octet-stream", digest: sha256Digest(layer), size: layer.length }],
      ...extra,
    }),
  );
}

for (const kind of ["zot", "distribution"] as const satisfies readonly RegistryKind[]) {
  describe(`registry client on ${kind}`, { skip: skipUnlessBuilt(kind === "zot" ? "zot" : "registry", "oras") }, () => {
    let registry: Registry;
    let client: RegistryClient;
    let dir: string;
    before(async () => {
      registry = await startRegistry({ kind });
      client = new RegistryClient({ insecure: true, chunkBytes: 64 * 1024 });
      dir = await mkdtemp(join(tmpdir(), `ferry-client-${kind}-`));
    });
    after(async () => {
      await client?.close();
      await registry?.stop();
      await rm(dir, { recursive: true, force: true });
    });

    async function pushImage(repository: string, tag: string, layer: Buffer, extra: Record<string, unknown> = {}) {
      await client.pushBlob(registry.host, repository, sha256Digest(EMPTY), blobFromBuffer(EMPTY));
      await client.pushBlob(registry.host, repository, sha256Digest(layer), blobFromBuffer(layer));
      const manifest = manifestFor(layer, extra);
      const digest = await client.pushManifest({ registry: registry.host, repository, tag }, manifest, OCI_MANIFEST);
      return { manifest, digest };
    }

    test("a blob larger than the chunk size is uploaded in chunks and reads back identical; a second push is skipped", async () => {
      const layer = randomBytes(200 * 1024 + 17);
      const progress: number[] = [];
      const first = await client.pushBlob(registry.host, "client/chunked", sha256Digest(layer), blobFromBuffer(layer), {
        onProgress: (bytes) => progress.push(bytes),
      });
      assert.equal(first, "uploaded");
      assert.deepEqual(progress.slice(0, 3), [64 * 1024, 128 * 1024, 192 * 1024]);
      assert.equal(progress.at(-1), layer.length);
      const target = join(dir, "chunked.bin");
      await client.fetchBlobToFile(registry.host, "client/chunked", { mediaType: "x", digest: sha256Digest(layer), size: layer.length }, target);
      assert.ok((await readFile(target)).equals(layer));
      assert.equal(await client.pushBlob(registry.host, "client/chunked", sha256Digest(layer), blobFromBuffer(layer)), "exists");
    });

    test("a blob is mounted from another repository instead of uploaded", async () => {
      const layer = randomBytes(4096);
      await client.pushBlob(registry.host, "client/source", sha256Digest(layer), blobFromBuffer(layer));
      const outcome = await client.pushBlob(registry.host, "client/target", sha256Digest(layer), blobFromBuffer(layer), {
        mountFrom: "client/source",
      });
      // zot 1.4.3 answers a mount request by opening an upload session (202), so the client uploads instead.
      assert.equal(outcome, kind === "distribution" ? "mounted" : "uploaded");
      assert.equal(await client.blobSize(registry.host, "client/target", sha256Digest(layer)), layer.length);
    });

    test("manifests round-trip by tag and digest; resolve answers the digest without a body", async () => {
      const { manifest, digest } = await pushImage("client/manifests", "v1", randomBytes(100));
      const resolved = await client.resolve({ registry: registry.host, repository: "client/manifests", tag: "v1" });
      assert.deepEqual(resolved, { mediaType: OCI_MANIFEST, digest, size: manifest.length });
      const fetched = await client.fetchManifest({ registry: registry.host, repository: "client/manifests", digest });
      assert.ok(fetched.bytes.equals(manifest));
      await assert.rejects(
        client.fetchManifest({ registry: registry.host, repository: "client/manifests", tag: "missing" }),
        (error: unknown) => error instanceof NotFoundError && /manifests:missing not found/.test(error.message),
      );
    });

    test("a sequence of requests (manifest, then its layer, then tags) reuses one connection", async () => {
      const layer = randomBytes(4096);
      await pushImage("client/reuse", "v1", layer);
      const sequential = new RegistryClient({ insecure: true });
      const connections: string[] = [];
      const count = (message: unknown) => connections.push(String((message as { connectParams: { host: string } }).connectParams.host));
      subscribe("undici:client:connected", count);
      try {
        const reference = { registry: registry.host, repository: "client/reuse", tag: "v1" };
        const { bytes } = await sequential.fetchManifest(reference);
        const { layers } = JSON.parse(bytes.toString()) as { layers: [{ digest: string; size: number; mediaType: string }] };
        const fetched = await sequential.fetchBlobBytes(registry.host, "client/reuse", layers[0], { maxBytes: 1 << 20 });
        assert.ok(fetched.equals(layer));
        assert.deepEqual(await sequential.listTags(registry.host, "client/reuse"), ["v1"]);
        assert.deepEqual(connections, [registry.host]);
      } finally {
        unsubscribe("undici:client:connected", count);
        await sequential.close();
      }
    });

    test("tags are listed across pages", async () => {
      const layer = randomBytes(64);
      const tags = ["a1", "a2", "a3", "a4", "a5"];
      for (const tag of tags) await pushImage("client/paged", tag, layer);
      const listed = await client.listTags(registry.host, "client/paged", { pageSize: 2 });
      assert.deepEqual([...listed].sort(), tags);
    });

    test("referrers come from the referrers API, or the tag schema where the registry has none", async () => {
      const { digest } = await pushImage("client/referred", "v1", randomBytes(64));
      await writeFile(join(dir, "sig.json"), "{}");
      const attached = await runTool(
        "oras",
        ["attach", "--plain-http", "--artifact-type=application/vnd.ferry.test.sig", "--format=json", `${registry.host}/client/referred@${digest}`, "sig.json:application/json"],
        { cwd: dir },
      );
      const referrer = JSON.parse(attached.stdout.toString()).digest;
      const referrers = await client.referrers(registry.host, "client/referred", digest);
      assert.deepEqual(referrers.map((descriptor) => descriptor.digest), [referrer]);
      assert.deepEqual(await client.referrers(registry.host, "client/referred", sha256Digest("nothing refers to this")), []);
    });

    test("an oversized manifest or blob is refused before it is read", async () => {
      const small = new RegistryClient({ insecure: true, maxManifestBytes: 64 });
      try {
        await pushImage("client/limits", "v1", randomBytes(64));
        await assert.rejects(
          small.fetchManifest({ registry: registry.host, repository: "client/limits", tag: "v1" }),
          (error: unknown) => error instanceof LimitExceededError && /over the 64-byte limit/.test(error.message),
        );
        const layer = randomBytes(10_000);
        await client.pushBlob(registry.host, "client/limits", sha256Digest(layer), blobFromBuffer(layer));
        const target = join(dir, "limited.bin");
        await assert.rejects(
          client.fetchBlobToFile(registry.host, "client/limits", { mediaType: "x", digest: sha256Digest(layer), size: layer.length }, target, {
            maxBytes: 1000,
          }),
          LimitExceededError,
        );
        assert.equal((await readdir(dir)).some((name) => name.startsWith("limited.bin")), false);
      } finally {
        await small.close();
      }
    });

    test("a blob whose manifest size is smaller than its content is refused as too long", async () => {
      const layer = randomBytes(1000);
      await client.pushBlob(registry.host, "client/size", sha256Digest(layer), blobFromBuffer(layer));
      const target = join(dir, "short.bin");
      await assert.rejects(
        client.fetchBlobToFile(registry.host, "client/size", { mediaType: "x", digest: sha256Digest(layer), size: 999 }, target),
        /longer than the 999 bytes/,
      );
      assert.equal((await readdir(dir)).some((name) => name.startsWith("short.bin")), false);
    });
  });
}
