// The shared registry clients: one per registry, credentials and transport settings; bounded, least recently used
// first out; closed once evicted and no longer in use; retired when an object's credentials change or it is deleted.
import assert from "node:assert/strict";
import { createServer } from "node:http";
import type { AddressInfo } from "node:net";
import { test } from "node:test";
import type { ClientOptions, RegistryClient } from "../../src/registry/client.ts";
import { clientKey, RegistryClientCache } from "../../src/registry/client-cache.ts";

interface FakeClient {
  readonly id: number;
  readonly options: ClientOptions;
  closed: number;
  views: Array<AbortSignal | undefined>;
}

function fakeCache(maxClients?: number) {
  const made: FakeClient[] = [];
  const cache = new RegistryClientCache({
    ...(maxClients !== undefined ? { maxClients } : {}),
    create: (options) => {
      const fake: FakeClient = { id: made.length, options, closed: 0, views: [] };
      made.push(fake);
      return {
        withSignal: (signal: AbortSignal | undefined) => {
          fake.views.push(signal);
          return { view: fake } as unknown as RegistryClient;
        },
        close: async () => {
          fake.closed += 1;
        },
      } as unknown as RegistryClient;
    },
  });
  const idOf = (client: RegistryClient) => (client as unknown as { view: FakeClient }).view.id;
  return { cache, made, idOf };
}

const settle = () => new Promise((resolve) => setImmediate(resolve));

test("clientKey: the registry and a digest of the material; never the secret; different credentials differ", () => {
  const alice = clientKey("registry.example:5000", ["auth", "{\"auths\":{\"r\":{\"auth\":\"YWxpY2U6czNjcmV0\"}}}"]);
  const bob = clientKey("registry.example:5000", ["auth", "{\"auths\":{\"r\":{\"auth\":\"Ym9iOmh1bnRlcjI=\"}}}"]);
  assert.match(alice, /^registry\.example:5000#[0-9a-f]{32}$/);
  assert.notEqual(alice, bob);
  assert.ok(!alice.includes("YWxpY2U6czNjcmV0") && !alice.includes("s3cret"));
  assert.equal(alice, clientKey("registry.example:5000", ["auth", "{\"auths\":{\"r\":{\"auth\":\"YWxpY2U6czNjcmV0\"}}}"]));
  // Parts are delimited: moving bytes between them, or from a string to a buffer, is another key.
  assert.notEqual(clientKey("r", ["ab", "c"]), clientKey("r", ["a", "bc"]));
  assert.notEqual(clientKey("r", ["ab"]), clientKey("r", [Buffer.from("ab")]));
  assert.notEqual(clientKey("r", [undefined]), clientKey("r", [""]));
  assert.notEqual(clientKey("a", []), clientKey("b", []));
  // A private key or CA changes the key too.
  assert.notEqual(clientKey("r", ["tls", Buffer.from("ca-1")]), clientKey("r", ["tls", Buffer.from("ca-2")]));
});

test("one client per key, shared by every object using it; another key gets its own", () => {
  const { cache, made, idOf } = fakeCache();
  const shared = clientKey("r", ["auth", "team-a"]);
  const other = clientKey("r", ["auth", "team-b"]);
  const signal = new AbortController().signal;
  const first = cache.acquire("ns-a/one", shared, () => ({ userAgent: "one" }), signal);
  const second = cache.acquire("ns-a/two", shared, () => ({ userAgent: "two" }));
  const third = cache.acquire("ns-b/one", other, () => ({ userAgent: "three" }));
  assert.equal(made.length, 2);
  assert.equal(first.reused, false);
  assert.equal(second.reused, true);
  assert.equal(idOf(first.client), idOf(second.client));
  assert.notEqual(idOf(first.client), idOf(third.client));
  // Each lease is a view bounded by its reconcile's signal, not the shared client itself.
  assert.equal(made[0]?.views[0], signal);
  assert.equal(made[0]?.options.userAgent, "one");
  for (const lease of [first, second, third]) lease.release();
  assert.equal(cache.size, 2);
  assert.ok(made.every((client) => client.closed === 0));
});

test("bounded by count: the least recently used client is evicted and closed", async () => {
  const { cache, made } = fakeCache(2);
  const use = (owner: string, key: string) => cache.acquire(owner, key, () => ({})).release();
  use("x/a", "a");
  use("x/b", "b");
  use("x/a", "a"); // a is now the most recently used
  use("x/c", "c");
  await settle();
  assert.equal(cache.size, 2);
  assert.ok(cache.has("a") && cache.has("c") && !cache.has("b"));
  assert.deepEqual(made.map((client) => client.closed), [0, 1, 0]);
  // b comes back as a new client.
  use("x/b", "b");
  assert.equal(made.length, 4);
});

test("an evicted client in use is closed only when its last reconcile is done", async () => {
  const { cache, made } = fakeCache(1);
  const busy = cache.acquire("x/a", "a", () => ({}));
  cache.acquire("x/b", "b", () => ({})).release();
  await settle();
  assert.ok(!cache.has("a"));
  assert.equal(made[0]?.closed, 0, "closed under a running reconcile");
  busy.release();
  busy.release(); // a second release changes nothing
  await settle();
  assert.equal(made[0]?.closed, 1);
});

test("changed credentials retire the client made for the old ones; a client another object uses stays", async () => {
  const { cache, made } = fakeCache();
  cache.acquire("ns/app", "old", () => ({})).release();
  cache.acquire("ns/other", "shared", () => ({})).release();
  cache.acquire("ns/app2", "shared", () => ({})).release();
  // ns/app's Secret changed: its next reconcile has another key.
  cache.acquire("ns/app", "new", () => ({})).release();
  await settle();
  assert.ok(!cache.has("old"));
  assert.equal(made[0]?.closed, 1);
  // ns/app2 moves away from "shared", which ns/other still uses.
  cache.acquire("ns/app2", "new", () => ({})).release();
  await settle();
  assert.ok(cache.has("shared"));
  assert.equal(made[1]?.closed, 0);
});

test("a deleted object's client goes with it, unless another object uses it", async () => {
  const { cache, made } = fakeCache();
  cache.acquire("ns/alone", "alone", () => ({})).release();
  cache.acquire("ns/one", "pair", () => ({})).release();
  cache.acquire("ns/two", "pair", () => ({})).release();
  cache.forget("ns/alone");
  cache.forget("ns/one");
  cache.forget("ns/unknown");
  await settle();
  assert.ok(!cache.has("alone") && cache.has("pair"));
  assert.deepEqual(made.map((client) => client.closed), [1, 0]);
  await cache.close();
  assert.deepEqual(made.map((client) => client.closed), [1, 1]);
});

test("a shared client's view: the view's signal ends its requests; the shared connection stays open for others", async () => {
  const { RegistryClient } = await import("../../src/registry/client.ts");
  const server = createServer((request, response) => {
    if (request.url?.includes("slow")) return; // never answers
    response.writeHead(200, { "docker-content-digest": `sha256:${"a".repeat(64)}`, "content-type": "application/vnd.oci.image.manifest.v1+json", "content-length": "2" });
    response.end();
  });
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  const registry = `127.0.0.1:${(server.address() as AddressInfo).port}`;
  const shared = new RegistryClient({ insecure: true, retry: { maxAttempts: 1, baseDelayMs: 1, maxDelayMs: 1, maxRetryAfterMs: 1 } });
  try {
    const abort = new AbortController();
    const view = shared.withSignal(abort.signal);
    const slow = view.resolve({ registry, repository: "slow", tag: "v1" });
    setTimeout(() => abort.abort(new Error("deadline")), 50);
    await assert.rejects(slow);
    await view.close(); // a view's close leaves the shared connections alone
    const other = shared.withSignal(new AbortController().signal);
    assert.equal((await other.resolve({ registry, repository: "fast", tag: "v1" })).digest, `sha256:${"a".repeat(64)}`);
    assert.equal(shared.http(registry), shared.http(registry));
  } finally {
    await shared.close();
    server.closeAllConnections();
    await new Promise((resolve) => server.close(resolve));
  }
});

test("a manifest HEAD keeps its connection: resolving a tag again needs no new connection", async () => {
  const { RegistryClient } = await import("../../src/registry/client.ts");
  let connections = 0;
  const server = createServer((_request, response) => {
    response.writeHead(200, { "docker-content-digest": `sha256:${"b".repeat(64)}`, "content-type": "application/vnd.oci.image.manifest.v1+json", "content-length": "2" });
    response.end();
  });
  server.on("connection", () => connections++);
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  const registry = `127.0.0.1:${(server.address() as AddressInfo).port}`;
  const client = new RegistryClient({ insecure: true });
  try {
    for (let round = 0; round < 3; round++) await client.resolve({ registry, repository: "app", tag: "v1" });
    assert.equal(connections, 1, "each HEAD opened a connection of its own");
  } finally {
    await client.close();
    server.closeAllConnections();
    await new Promise((resolve) => server.close(resolve));
  }
});
