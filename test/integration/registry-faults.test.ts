// Registry faults, injected by a proxy in front of a real distribution registry: transient ones are retried
// (honouring Retry-After), integrity failures are errors, and a failed pull leaves nothing on disk.
import assert from "node:assert/strict";
import { randomBytes } from "node:crypto";
import { mkdir, mkdtemp, readdir, readFile, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, afterEach, before, describe, test } from "node:test";
import { type FaultProxy, startFaultProxy } from "../../registry-fixtures/fault-proxy.ts";
import { blobFromBuffer, RegistryClient } from "../../src/registry/client.ts";
import { OCI_EMPTY, OCI_INDEX, OCI_MANIFEST, referrersTag, sha256Digest } from "../../src/registry/oci.ts";
import { IntegrityError, RegistryResponseError } from "../../src/registry/errors.ts";
import { skipUnlessBuilt } from "../harness/binaries.ts";
import { ferry, ferryOk } from "../harness/ferry.ts";
import { type Registry, startRegistry } from "../harness/registry.ts";

const PODINFO = join(import.meta.dirname, "..", "..", "..", "shared", "corpora", "podinfo", "kustomize");

describe("registry faults", { skip: skipUnlessBuilt("registry") }, () => {
  let registry: Registry;
  let proxy: FaultProxy;
  let dir: string;
  let cases = 0;
  const url = (path: string) => `oci://${proxy.host}/${path}`;
  const push = (path: string) =>
    ferry(["push", "artifact", url(path), `--path=${PODINFO}`, "--source=s", "--revision=r", "--insecure-registry"]);
  const pull = async (path: string) => {
    const output = join(dir, `pull-${cases++}`);
    await mkdir(output);
    const result = await ferry(["pull", "artifact", url(path), `--output=${output}`, "--insecure-registry"]);
    return { result, output };
  };

  before(async () => {
    registry = await startRegistry({ kind: "distribution" });
    proxy = await startFaultProxy(registry.host);
    dir = await mkdtemp(join(tmpdir(), "ferry-faults-"));
    await ferryOk(["push", "artifact", url("faults/app:v1"), `--path=${PODINFO}`, "--source=s", "--revision=r", "--insecure-registry"]);
  });
  afterEach(() => {
    proxy.faults.length = 0;
    proxy.requests.length = 0;
  });
  after(async () => {
    await proxy?.stop();
    await registry?.stop();
    await rm(dir, { recursive: true, force: true });
  });

  test("a registry's digest is used only when it is a full sha256 or sha512 digest: traversal and weak algorithms are refused", async () => {
    const client = new RegistryClient({ insecure: true });
    const [registryHost, repository] = [proxy.host, "faults/app"];
    proxy.requests.length = 0;
    proxy.faults.push({
      method: "HEAD", path: /\/manifests\/v1$/, times: 1,
      action: { kind: "answer", status: 200, headers: { "docker-content-digest": "sha256:../../../../tmp/escaped", "content-type": OCI_MANIFEST }, body: Buffer.from("{}") },
    });
    await assert.rejects(client.resolve({ registry: registryHost, repository, tag: "v1" }), (error: Error) =>
      error instanceof IntegrityError && /malformed or weak digest/.test(error.message));
    const md5 = { mediaType: "application/octet-stream", digest: `md5:${"0".repeat(32)}`, size: 3 };
    await assert.rejects(client.fetchBlobBytes(registryHost, repository, md5, { maxBytes: 1024 }), IntegrityError);
    assert.equal(proxy.requests.filter((request) => request.path.includes("/blobs/")).length, 0, "a weak digest was requested");
    await client.close();
  });

  test("429 with Retry-After is retried after the time the registry asked for", async () => {
    proxy.faults.push({ method: "GET", path: /\/manifests\//, times: 1, action: { kind: "status", status: 429, headers: { "retry-after": "2" } } });
    const started = Date.now();
    const { result, output } = await pull("faults/app:v1");
    assert.equal(result.status, 0, result.stderr);
    assert.ok(Date.now() - started >= 2000, "did not wait for Retry-After");
    assert.match(result.stderr, /HTTP 429; retrying in 2\.0s/);
    assert.ok((await readdir(output)).includes("deployment.yaml"));
    const manifestGets = proxy.requests.filter((request) => request.method === "GET" && request.path.includes("/manifests/"));
    assert.deepEqual(manifestGets.map((request) => request.status), [429, 200]);
  });

  test("503 then success: a push is retried and lands", async () => {
    proxy.faults.push({ method: "PUT", path: /\/manifests\/v2$/, times: 2, action: { kind: "status", status: 503 } });
    const result = await push("faults/app:v2");
    assert.equal(result.status, 0, result.stderr);
    assert.equal(proxy.requests.filter((request) => request.method === "PUT" && request.path.endsWith("/manifests/v2")).length, 3);
  });

  test("a connection reset is retried", async () => {
    proxy.faults.push({ method: "GET", path: /\/blobs\/sha256:/, times: 1, action: { kind: "reset" } });
    const { result } = await pull("faults/app:v1");
    assert.equal(result.status, 0, result.stderr);
  });

  test("HTTP_PROXY from the environment carries the registry traffic", async () => {
    const output = join(dir, "via-proxy");
    const result = await ferry(
      ["pull", "artifact", `oci://${registry.host}/faults/app:v1`, `--output=${output}`, "--insecure-registry"],
      { env: { HTTP_PROXY: `http://${proxy.host}`, http_proxy: "", NO_PROXY: "", no_proxy: "" } },
    );
    assert.equal(result.status, 0, result.stderr);
    // undici tunnels through the proxy with CONNECT, one tunnel per connection it opens.
    const tunnels = proxy.requests.filter((request) => request.method === "CONNECT");
    assert.ok(tunnels.length > 0, "no traffic went through the proxy");
    assert.ok(tunnels.every((request) => request.path === registry.host));
    assert.ok((await readdir(output)).includes("deployment.yaml"));
  });

  test("a registry that keeps failing gives up with the status it saw", async () => {
    proxy.faults.push({ method: "HEAD", path: /\/manifests\//, action: { kind: "status", status: 503 } });
    proxy.faults.push({ method: "GET", path: /\/manifests\//, action: { kind: "status", status: 503 } });
    const { result, output } = await pull("faults/app:v1");
    assert.equal(result.status, 1);
    assert.match(result.stderr, /HTTP 503/);
    assert.deepEqual(await readdir(output), []);
  });

  test("a manifest whose bytes do not match Docker-Content-Digest is refused and nothing is tagged", async () => {
    proxy.faults.push({ method: "GET", path: /\/manifests\/v1$/, action: { kind: "wrong-digest-header" } });
    const result = await ferry(["tag", "artifact", url("faults/app:v1"), "--tag=copied", "--insecure-registry"]);
    assert.equal(result.status, 1);
    assert.match(result.stderr, /has digest sha256:[a-f0-9]{64}, not the registry's Docker-Content-Digest sha256:0{64}/);
    const direct = await fetch(`${registry.url}/v2/faults/app/manifests/copied`, { method: "HEAD" });
    assert.equal(direct.status, 404);
  });

  test("error answers without a body (HEAD, or an empty 4xx/5xx) are typed errors, not a crash", async () => {
    const client = new RegistryClient({ insecure: true, retry: { maxAttempts: 1, baseDelayMs: 10, maxDelayMs: 10, maxRetryAfterMs: 10 } });
    const reference = { registry: proxy.host, repository: "faults/app", tag: "v1" };
    const failsWith = (status: number, what: RegExp) => (error: unknown) =>
      error instanceof RegistryResponseError && error.status === status && what.test(error.message);
    try {
      proxy.faults.push({ method: "HEAD", path: /\/manifests\//, times: 1, action: { kind: "status", status: 503 } });
      await assert.rejects(client.resolve(reference), failsWith(503, /resolving .*faults\/app:v1: HTTP 503/));
      proxy.faults.push({ method: "HEAD", path: /\/blobs\//, times: 1, action: { kind: "status", status: 400 } });
      await assert.rejects(client.blobSize(proxy.host, "faults/app", `sha256:${"a".repeat(64)}`), failsWith(400, /checking blob/));
      proxy.faults.push({ method: "POST", path: /\/blobs\/uploads\//, times: 1, action: { kind: "status", status: 405 } });
      const blob = Buffer.from("x");
      await assert.rejects(client.pushBlob(proxy.host, "faults/new", sha256Digest(blob), blobFromBuffer(blob)), failsWith(405, /starting upload .*HTTP 405 \(INJECTED/));
    } finally {
      await client.close();
    }
  });

  test("an upload the registry stored but whose answer was lost (a proxy timing out) counts as done", async () => {
    // Every finishing PUT reaches the registry, which stores the blob, but the client sees 504: its retries then
    // find the upload session closed. The push must check for the blob instead of failing.
    proxy.faults.push({ method: "PUT", path: /\/blobs\/uploads\/.*digest=/, action: { kind: "forward-then-status", status: 504 } });
    const result = await push("faults/lost-answer:v1");
    assert.equal(result.status, 0, result.stderr);
    assert.ok(proxy.requests.some((request) => request.fault === "forward-then-status"));
    proxy.faults.length = 0;
    const { result: pulled, output } = await pull("faults/lost-answer:v1");
    assert.equal(pulled.status, 0, pulled.stderr);
    assert.ok((await readdir(output)).includes("deployment.yaml"));
  });

  test("referrers: a bare 401 from the referrers API means no API (Harbor < 2.8); a fallback tag naming the subject itself means none", async () => {
    const client = new RegistryClient({ insecure: true });
    try {
      const subject = await client.fetchManifest({ registry: proxy.host, repository: "faults/app", tag: "v1" });
      const empty = Buffer.from("{}");
      await client.pushBlob(proxy.host, "faults/app", sha256Digest(empty), blobFromBuffer(empty));
      const emptyDescriptor = { mediaType: OCI_EMPTY, digest: sha256Digest(empty), size: empty.length };
      const manifest = Buffer.from(JSON.stringify({
        schemaVersion: 2, mediaType: OCI_MANIFEST, artifactType: "application/vnd.test", config: emptyDescriptor, layers: [emptyDescriptor],
      }));
      await client.pushManifest({ registry: proxy.host, repository: "faults/app", tag: "referrer" }, manifest, OCI_MANIFEST);
      const referrer = { mediaType: OCI_MANIFEST, digest: sha256Digest(manifest), size: manifest.length, artifactType: "application/vnd.test" };
      const index = Buffer.from(JSON.stringify({ schemaVersion: 2, mediaType: OCI_INDEX, manifests: [referrer] }));
      const fallback = { registry: proxy.host, repository: "faults/app", tag: referrersTag(subject.descriptor.digest) };
      await client.pushManifest(fallback, index, OCI_INDEX);
      proxy.faults.push({ method: "GET", path: /\/referrers\//, action: { kind: "status", status: 401 } });
      assert.deepEqual(await client.referrers(proxy.host, "faults/app", subject.descriptor.digest), [referrer]);

      // As GitLab answers the tag: with the subject's own manifest.
      await client.pushManifest(fallback, subject.bytes, subject.descriptor.mediaType);
      assert.deepEqual(await client.referrers(proxy.host, "faults/app", subject.descriptor.digest), []);
    } finally {
      await client.close();
    }
  });

  test("chunks a registry refuses as too big (416, as GHCR over 4 MiB) are sent again smaller", async () => {
    const client = new RegistryClient({ insecure: true, chunkBytes: 64 * 1024 });
    try {
      proxy.faults.push({ method: "PATCH", path: /\/blobs\/uploads\//, bodyOver: 20 * 1024, action: { kind: "status", status: 416 } });
      const blob = randomBytes(150 * 1024 + 7);
      assert.equal(await client.pushBlob(proxy.host, "faults/chunks", sha256Digest(blob), blobFromBuffer(blob)), "uploaded");
      const patches = proxy.requests.filter((request) => request.method === "PATCH" && request.path.startsWith("/v2/faults/chunks/")).map((request) => request.status);
      assert.deepEqual(patches.slice(0, 3), [416, 416, 202], "64 KiB and 32 KiB refused, 16 KiB accepted");
      const puts = proxy.requests.filter((request) => request.method === "PUT" && request.path.startsWith("/v2/faults/chunks/"));
      assert.equal(puts.length, 1);
      const target = join(dir, "chunks.bin");
      await client.fetchBlobToFile(proxy.host, "faults/chunks", { mediaType: "x", digest: sha256Digest(blob), size: blob.length }, target);
      assert.ok((await readFile(target)).equals(blob));
    } finally {
      await client.close();
    }
  });

  test("a redirect loop on a blob ends after 5 hops with a clear error, and nothing is extracted", async () => {
    proxy.faults.push({ method: "GET", path: /\/blobs\/sha256:/, action: { kind: "status", status: 307, headers: { location: "/v2/faults/app/blobs/sha256:loop" } } });
    const { result, output } = await pull("faults/app:v1");
    assert.equal(result.status, 1);
    assert.match(result.stderr, /\/v2\/faults\/app\/blobs\/sha256:loop: more than 5 redirects/);
    assert.deepEqual(await readdir(output), []);
    assert.equal(proxy.requests.filter((request) => request.status === 307).length, 6);
  });

  test("a corrupted layer fails its digest check and nothing is extracted", async () => {
    proxy.faults.push({ method: "GET", path: /\/blobs\/sha256:/, action: { kind: "corrupt-body" } });
    const { result, output } = await pull("faults/app:v1");
    assert.equal(result.status, 1);
    assert.match(result.stderr, /has digest sha256:[a-f0-9]{64}/);
    assert.deepEqual(await readdir(output), []);
  });

  test("a truncated layer is an error and nothing is extracted", async () => {
    proxy.faults.push({ method: "GET", path: /\/blobs\/sha256:/, action: { kind: "truncate-body" } });
    const { result, output } = await pull("faults/app:v1");
    assert.equal(result.status, 1);
    assert.match(result.stderr, /truncated|download of blob .* failed/);
    assert.deepEqual(await readdir(output), []);
    assert.equal((await readdir(tmpdir())).some((name) => name.startsWith("ferry-pull-") && name.includes("partial")), false);
  });
});
