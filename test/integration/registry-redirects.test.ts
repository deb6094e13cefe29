// Registries backed by object storage answer blob GET and HEAD with a redirect to the storage, as Docker Hub,
// GHCR and S3-backed registries do. The distribution registry does the same here through its "redirect" storage
// middleware, pointing at a file server over its own storage directory.
import assert from "node:assert/strict";
import { mkdir, mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, before, describe, test } from "node:test";
import { skipUnlessBuilt } from "../harness/binaries.ts";
import { ferry } from "../harness/ferry.ts";
import { type Registry, startRegistry } from "../harness/registry.ts";
import { runTool } from "../harness/tools.ts";
import { readTree, treeDifferences } from "../harness/trees.ts";

const PODINFO = join(import.meta.dirname, "..", "..", "..", "shared", "corpora", "podinfo", "kustomize");
const REVISION = "main@sha1:0123456789abcdef0123456789abcdef01234567";

describe("blob downloads redirected to storage", { skip: skipUnlessBuilt("registry", "flux") }, () => {
  let registry: Registry;
  let dir: string;
  let creds: string;
  const env = () => ({ DOCKER_CONFIG: join(dir, "no-docker-config"), FERRY_CREDS: "" });
  const url = (path: string) => `oci://${registry.host}/${path}`;
  before(async () => {
    registry = await startRegistry({ kind: "distribution", auth: "htpasswd", redirectBlobs: true });
    dir = await mkdtemp(join(tmpdir(), "ferry-redirect-"));
    creds = `--creds=${registry.credentials?.username}:${registry.credentials?.password}`;
    const push = ["push", "artifact", url("redirect/app:v1"), `--path=${PODINFO}`, "--source=s", `--revision=${REVISION}`];
    const pushed = await ferry([...push, "--insecure-registry", creds], { env: env() });
    assert.equal(pushed.status, 0, pushed.stderr);
  });
  after(async () => {
    await registry?.stop();
    await rm(dir, { recursive: true, force: true });
  });

  test("pull follows the redirect to storage, and the registry's credentials never go there", async () => {
    const storage = registry.blobStorage;
    assert.ok(storage);
    storage.requests.length = 0;
    const output = join(dir, "pulled");
    const pulled = await ferry(["pull", "artifact", url("redirect/app:v1"), `--output=${output}`, "--insecure-registry", creds], { env: env() });
    assert.equal(pulled.status, 0, pulled.stderr);
    assert.deepEqual(treeDifferences(await readTree(PODINFO), await readTree(output)), []);
    assert.ok(storage.requests.some((request) => request.method === "GET" && request.path.endsWith("/data")), "the layer came from storage");
    assert.deepEqual(storage.requests.filter((request) => request.authorization !== undefined), []);
  });

  test("a push finds its blobs through the redirected HEAD and skips them", async () => {
    const again = ["push", "artifact", url("redirect/app:v2"), `--path=${PODINFO}`, "--source=s", `--revision=${REVISION}`, "--insecure-registry", creds];
    const pushed = await ferry([...again, "-o", "json"], { env: env() });
    assert.equal(pushed.status, 0, pushed.stderr);
    assert.ok(registry.blobStorage?.requests.some((request) => request.method === "HEAD"), "blob HEADs were redirected to storage");
  });

  test("storage that fails once is asked again through the registry; storage that refuses is named, with no query", async () => {
    const storage = registry.blobStorage;
    assert.ok(storage);
    storage.failNext(503);
    const output = join(dir, "retried");
    const retried = await ferry(["pull", "artifact", url("redirect/app:v1"), `--output=${output}`, "--insecure-registry", creds], { env: env() });
    assert.equal(retried.status, 0, retried.stderr);
    assert.match(retried.stderr, /blob storage answered HTTP 503; retrying/);

    storage.failNext(403, 20);
    const refused = await ferry(["pull", "artifact", url("redirect/app:v1"), `--output=${join(dir, "refused")}`, "--insecure-registry", creds], { env: env() });
    storage.failNext(403, 0);
    assert.equal(refused.status, 1);
    assert.match(refused.stderr, new RegExp(`GET ${storage.url}docker/registry/v2/blobs/sha256/.*/data \\(redirected from ${registry.host}\\): HTTP 403`));
  });

  test("flux pulls the same artifact from the same registry (what Ferry follows, Flux follows)", async () => {
    const output = join(dir, "flux");
    await mkdir(output);
    const { username, password } = registry.credentials ?? { username: "", password: "" };
    await runTool("flux", ["pull", "artifact", url("redirect/app:v1"), `--output=${output}`, "--insecure-registry", `--creds=${username}:${password}`]);
    assert.deepEqual(treeDifferences(await readTree(PODINFO), await readTree(output)), []);
  });
});

describe("a redirect that would leave TLS", { skip: skipUnlessBuilt("registry") }, () => {
  let registry: Registry;
  let dir: string;
  before(async () => {
    registry = await startRegistry({ kind: "distribution", tls: true, redirectBlobs: true });
    dir = await mkdtemp(join(tmpdir(), "ferry-redirect-tls-"));
  });
  after(async () => {
    await registry?.stop();
    await rm(dir, { recursive: true, force: true });
  });

  test("is refused: an HTTPS registry's blob is never fetched over plain HTTP", async () => {
    const ca = `--ca-file=${registry.caFile}`;
    const reference = `oci://${registry.host}/tls/app:v1`;
    // Uploads go to the registry itself; only reading a stored blob is redirected.
    const pushed = await ferry(["push", "artifact", reference, `--path=${PODINFO}`, "--source=s", `--revision=${REVISION}`, ca]);
    assert.equal(pushed.status, 0, pushed.stderr);
    const pulled = await ferry(["pull", "artifact", reference, `--output=${join(dir, "out")}`, ca]);
    assert.equal(pulled.status, 1);
    assert.match(pulled.stderr, /redirected https:\/\/127\.0\.0\.1:\d+\/v2\/tls\/app\/blobs\/sha256:[a-f0-9]+ to http:\/\/127\.0\.0\.1:\d+, which is not HTTPS/);
    assert.deepEqual(registry.blobStorage?.requests, []);
  });
});
