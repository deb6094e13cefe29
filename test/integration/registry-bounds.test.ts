// Memory and disk bounds against a hostile or broken registry, injected by the fault proxy in front of a real
// distribution registry: an error body of 1 GiB, an endless token answer, tag lists that never end, a layer declared
// at 10 GiB and a blob stream that never ends. Each fails with a named error, and the process doing the reading
// (the bundled CLI, or the controller's reconciler in a process of its own) stays under 256 MiB of RSS throughout.
import assert from "node:assert/strict";
import { mkdir, mkdtemp, readdir, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, afterEach, before, describe, test } from "node:test";
import { type FaultProxy, startFaultProxy } from "../../registry-fixtures/fault-proxy.ts";
import { FLUX_CONFIG_MEDIA_TYPE, FLUX_CONTENT_MEDIA_TYPE } from "../../src/artifact/format.ts";
import { OCI_MANIFEST, sha256Digest } from "../../src/registry/oci.ts";
import { skipUnlessBuilt } from "../harness/binaries.ts";
import { FERRY_BUNDLE, ferryOk } from "../harness/ferry.ts";
import { type MeasuredRun, mib, runMeasured } from "../harness/peak-rss.ts";
import { type Registry, startRegistry } from "../harness/registry.ts";

const PODINFO = join(import.meta.dirname, "..", "..", "..", "shared", "corpora", "podinfo", "kustomize");
const RECONCILE_ONCE = join(import.meta.dirname, "..", "harness", "reconcile-source-once.ts");
const MIB = 1024 * 1024;
const GIB = 1024 * MIB;
const RSS_CEILING = 256 * MIB;
/** Far below what each fault offers: a client reading this much has not stopped where its limit says. */
const READ_CEILING = 64 * MIB;
/** Terminal escapes and line breaks a registry might put in an error, to be kept out of messages and logs. */
const HOSTILE_FILLER = "\u001b[2J\u001b[31mno such manifest\r\n\u0007";

/** A made-up artifact manifest whose one layer is `size` bytes under a digest no registry holds. */
function manifestDeclaring(size: number): { bytes: Buffer; digest: string; layerDigest: string } {
  const layerDigest = sha256Digest(`a layer of ${size} bytes that does not exist`);
  const bytes = Buffer.from(JSON.stringify({
    schemaVersion: 2,
    mediaType: OCI_MANIFEST,
    config: { mediaType: FLUX_CONFIG_MEDIA_TYPE, digest: sha256Digest("{}"), size: 2 },
    layers: [{ mediaType: FLUX_CONTENT_MEDIA_TYPE, digest: layerDigest, size }],
  }));
  return { bytes, digest: sha256Digest(bytes), layerDigest };
}

/** Logged as soon as a run ends, so a run that also fails another assertion still reports its memory. */
function logged(run: MeasuredRun, what: string): MeasuredRun {
  console.log(`${what}: peak RSS ${mib(run.peakRssBytes)}, exit ${run.status}`);
  return run;
}

function assertBounded(run: MeasuredRun, what: string): void {
  assert.ok(run.peakRssBytes > 0, `${what}: no RSS measured`);
  assert.ok(run.peakRssBytes < RSS_CEILING, `${what}: peak RSS ${mib(run.peakRssBytes)} is over ${mib(RSS_CEILING)}`);
}

describe("registry bounds", { skip: skipUnlessBuilt("registry") }, () => {
  let registry: Registry;
  let proxy: FaultProxy;
  let dir: string;
  let cases = 0;
  const url = (path: string) => `oci://${proxy.host}/${path}`;
  /** The bundled CLI, with FERRY_DEBUG so its stderr names the error class. */
  const cli = async (what: string, args: readonly string[]) =>
    logged(await runMeasured([FERRY_BUNDLE, ...args, "--insecure-registry"], { env: { FERRY_DEBUG: "1" } }), what);
  const reconcileOnce = async (what: string, path: string, tag: string, maxArtifactBytes?: number) => {
    const cache = join(dir, `cache-${cases++}`);
    const limit = maxArtifactBytes ? [String(maxArtifactBytes)] : [];
    const run = logged(await runMeasured([RECONCILE_ONCE, url(path), tag, cache, ...limit]), what);
    const status = JSON.parse(run.stdout.trim().split("\n").at(-1) ?? "null") as { conditions?: Array<{ type: string; status: string; message: string }> };
    return { run, cache, ready: status.conditions?.find((condition) => condition.type === "Ready") };
  };
  const blobRequests = () => proxy.requests.filter((request) => request.method === "GET" && request.path.includes("/blobs/")).length;
  const sentTo = (path: RegExp) =>
    proxy.requests.filter((request) => path.test(request.path)).reduce((sum, request) => sum + (request.sentBytes ?? 0), 0);

  before(async () => {
    registry = await startRegistry({ kind: "distribution" });
    proxy = await startFaultProxy(registry.host);
    dir = await mkdtemp(join(tmpdir(), "ferry-bounds-"));
    await ferryOk(["push", "artifact", url("bounds/app:v1"), `--path=${PODINFO}`, "--source=s", "--revision=r", "--insecure-registry"]);
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

  test("a 1 GiB error body: only its start is read, and the message quotes a short printable excerpt", async () => {
    proxy.faults.push({
      method: "GET",
      path: /\/manifests\//,
      action: { kind: "stream", status: 400, headers: { "content-type": "application/json" }, prefix: "{\"errors\":[{\"code\":\"MANIFEST_UNKNOWN\",\"message\":\"", filler: HOSTILE_FILLER, bytes: GIB },
    });
    const output = join(dir, "error-body");
    await mkdir(output);
    const run = await cli("1 GiB error body", ["pull", "artifact", url("bounds/app:v1"), `--output=${output}`]);
    assert.equal(run.status, 1, run.stderr);
    assert.match(run.stderr, /RegistryResponseError: fetching manifest .*bounds\/app:v1: HTTP 400 \(.*no such manifest.*\)/);
    const message = run.stderr.split("\n")[0] ?? "";
    assert.ok(message.length < 400, `message of ${message.length} characters: ${message.slice(0, 500)}`);
    const controls = [...run.stderr].filter((character) => character !== "\n" && /\p{Cc}/u.test(character));
    assert.deepEqual(controls, [], "control characters from the registry reached the output");
    assert.ok(sentTo(/\/manifests\//) < READ_CEILING, `the client read ${mib(sentTo(/\/manifests\//))} of the error body`);
    assert.deepEqual(await readdir(output), []);
    assertBounded(run, "1 GiB error body");
  });

  test("an endless token answer is refused past 1 MiB", async () => {
    const realm = `http://${proxy.host}/token`;
    proxy.faults.push({ method: "GET", path: /\/manifests\//, times: 1, action: { kind: "status", status: 401, headers: { "www-authenticate": `Bearer realm="${realm}",service="bounds"` } } });
    proxy.faults.push({ method: "GET", path: /^\/token/, action: { kind: "stream", status: 200, headers: { "content-type": "application/json" }, prefix: "{\"token\":\"", filler: "abcdefgh", hangUpAfter: 2 * GIB } });
    const output = join(dir, "token");
    await mkdir(output);
    const run = await cli("endless token answer", ["pull", "artifact", url("bounds/app:v1"), `--output=${output}`]);
    assert.equal(run.status, 1, run.stderr);
    assert.match(run.stderr, /ResponseTooLargeError: token answer from http:\/\/127\.0\.0\.1:\d+ is over the 1 MiB limit/);
    assert.ok(sentTo(/^\/token/) < READ_CEILING, `the client read ${mib(sentTo(/^\/token/))} of the token answer`);
    assertBounded(run, "endless token answer");
  });

  test("a tag list page that never ends is refused past 4 MiB", async () => {
    proxy.faults.push({
      method: "GET",
      path: /\/tags\/list/,
      action: { kind: "stream", status: 200, headers: { "content-type": "application/json" }, prefix: "{\"name\":\"bounds/app\",\"tags\":[", filler: "\"v1.0.0\",", hangUpAfter: 2 * GIB },
    });
    const run = await cli("endless tag list page", ["list", "artifacts", url("bounds/app"), "--filter=^none$"]);
    assert.equal(run.status, 1, run.stderr);
    assert.match(run.stderr, /ResponseTooLargeError: tag list page of bounds\/app is over the 4 MiB limit/);
    assert.ok(sentTo(/\/tags\/list/) < READ_CEILING, `the client read ${mib(sentTo(/\/tags\/list/))} of the tag list`);
    assertBounded(run, "endless tag list page");
  });

  test("Link pagination that never ends stops at 100,000 tags, or at 1,000 pages when they are empty", async () => {
    proxy.faults.push({ method: "GET", path: /\/tags\/list/, action: { kind: "endless-tag-pages", pageSize: 1000 } });
    const tags = await cli("endless tag pages", ["list", "artifacts", url("bounds/app"), "--filter=^none$"]);
    assert.equal(tags.status, 1, tags.stderr);
    assert.match(tags.stderr, /ResponseTooLargeError: tag list of bounds\/app has more than 100000 tags/);
    assert.ok(proxy.requests.length <= 101, `${proxy.requests.length} pages requested`);
    assertBounded(tags, "endless tag pages");

    proxy.faults.length = 0;
    proxy.requests.length = 0;
    proxy.faults.push({ method: "GET", path: /\/tags\/list/, action: { kind: "endless-tag-pages", pageSize: 0 } });
    const pages = await cli("endless empty tag pages", ["list", "artifacts", url("bounds/app"), "--filter=^none$"]);
    assert.equal(pages.status, 1, pages.stderr);
    assert.match(pages.stderr, /ResponseTooLargeError: tag list of bounds\/app runs over 1000 pages/);
    assert.ok(proxy.requests.length <= 1001, `${proxy.requests.length} pages requested`);
    assertBounded(pages, "endless empty tag pages");
  });

  test("a layer declared at 10 GiB is refused before download, by the controller and the CLI", async () => {
    const huge = manifestDeclaring(10 * GIB);
    const manifestAnswer = { kind: "answer", status: 200, headers: { "content-type": OCI_MANIFEST, "docker-content-digest": huge.digest }, body: huge.bytes } as const;
    proxy.faults.push({ path: new RegExp(`/manifests/(huge|${huge.digest})$`), action: manifestAnswer });
    // A blob that never ends, in case anything asks for it; the proxy hangs up after 1 GiB to spare the disk.
    proxy.faults.push({ method: "GET", path: new RegExp(`/blobs/${huge.layerDigest}`), action: { kind: "stream", status: 200, filler: "x", hangUpAfter: GIB } });

    const controller = await reconcileOnce("controller, 10 GiB layer", "bounds/app", "huge");
    assert.equal(controller.run.status, 0, controller.run.stderr);
    assert.equal(controller.ready?.status, "False");
    assert.match(controller.ready?.message ?? "", /blob sha256:[0-9a-f]{64} is 10 GiB \(10737418240 bytes\), over the 512 MiB limit/);
    assert.equal(blobRequests(), 0, "the layer was requested");
    assert.deepEqual(await readdir(join(controller.cache, "ocirepository", "default", "bounds")).catch(() => []), []);
    assertBounded(controller.run, "controller, 10 GiB layer");

    const output = join(dir, "huge");
    await mkdir(output);
    const pulled = await cli("CLI, 10 GiB layer", ["pull", "artifact", url("bounds/app:huge"), `--output=${output}`]);
    assert.equal(pulled.status, 1, pulled.stderr);
    assert.match(pulled.stderr, /LimitExceededError: blob sha256:[0-9a-f]{64} is 10 GiB \(10737418240 bytes\), over the 512 MiB limit/);
    assert.equal(blobRequests(), 0, "the layer was requested");
    assert.deepEqual(await readdir(output), []);
    assertBounded(pulled, "CLI, 10 GiB layer");
  });

  test("the controller's limit is its option: a real artifact over it is refused", async () => {
    const limited = await reconcileOnce("controller, 1000-byte limit", "bounds/app", "v1", 1000);
    assert.equal(limited.ready?.status, "False");
    assert.match(limited.ready?.message ?? "", /blob sha256:[0-9a-f]{64} is .* bytes\), over the 1000-byte limit/);
    assert.equal(blobRequests(), 0, "the layer was requested");
    const unlimited = await reconcileOnce("controller, default limit", "bounds/app", "v1");
    assert.equal(unlimited.ready?.status, "True", JSON.stringify(unlimited.ready));
  });

  test("a blob stream longer than its declared size stops at that size", async () => {
    const small = manifestDeclaring(MIB);
    proxy.faults.push({
      path: new RegExp(`/manifests/(small|${small.digest})$`),
      action: { kind: "answer", status: 200, headers: { "content-type": OCI_MANIFEST, "docker-content-digest": small.digest }, body: small.bytes },
    });
    proxy.faults.push({ method: "GET", path: new RegExp(`/blobs/${small.layerDigest}`), action: { kind: "stream", status: 200, filler: "x", hangUpAfter: GIB } });
    const controller = await reconcileOnce("controller, endless blob", "bounds/app", "small");
    assert.equal(controller.ready?.status, "False");
    assert.match(controller.ready?.message ?? "", /is longer than the 1048576 bytes the manifest says/);
    assert.ok(sentTo(/\/blobs\//) < READ_CEILING, `the client read ${mib(sentTo(/\/blobs\//))} of the blob`);
    assertBounded(controller.run, "controller, endless blob");
  });
});
