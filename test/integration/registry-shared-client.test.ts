// The OCIRepository reconciler shares one registry client per registry and credentials across reconciles, against
// the real distribution registry with its Docker token service: sources with the same credentials reuse one
// connection and one token, an unchanged source costs exactly one registry request, and different credentials (a
// second tenant, a wrong password) never get another tenant's token. The Kubernetes API is a stand-in.
import assert from "node:assert/strict";
import { mkdtemp, rm } from "node:fs/promises";
import { createServer, type Server, type Socket } from "node:net";
import type { AddressInfo } from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, before, describe, test } from "node:test";
import { type FaultProxy, startFaultProxy } from "../../registry-fixtures/fault-proxy.ts";
import { ArtifactCache } from "../../src/artifact/cache.ts";
import type { KubeClient } from "../../src/kube/client.ts";
import { FINALIZER, type OCIRepository, OCIRepositoryReconciler } from "../../src/reconcilers/ocirepository.ts";
import { skipUnlessBuilt } from "../harness/binaries.ts";
import { ferryOk } from "../harness/ferry.ts";
import { type Registry, startRegistry } from "../harness/registry.ts";

const PODINFO = join(import.meta.dirname, "..", "..", "..", "shared", "corpora", "podinfo", "kustomize");

/** A TCP relay in front of the fault proxy that counts the connections clients open. */
async function connectionCounter(upstream: string): Promise<{ host: string; connections: () => number; stop: () => Promise<void> }> {
  const [upstreamHost, upstreamPort] = upstream.split(":");
  let connections = 0;
  const sockets = new Set<Socket>();
  const server: Server = createServer((client) => {
    connections += 1;
    const { connect } = process.getBuiltinModule("node:net");
    const forward = connect(Number(upstreamPort), upstreamHost);
    for (const socket of [client, forward]) {
      sockets.add(socket);
      socket.on("close", () => sockets.delete(socket));
      socket.on("error", () => undefined);
    }
    client.pipe(forward).pipe(client);
  });
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  return {
    host: `127.0.0.1:${(server.address() as AddressInfo).port}`,
    connections: () => connections,
    stop: async () => {
      for (const socket of sockets) socket.destroy();
      await new Promise((resolve) => server.close(resolve));
    },
  };
}

/** RFC 7386, as the apiserver applies the reconciler's status patches (null removes a field). */
function mergePatch(target: unknown, patch: unknown): unknown {
  if (typeof patch !== "object" || patch === null || Array.isArray(patch)) return patch;
  const merged = new Map<string, unknown>(typeof target === "object" && target !== null && !Array.isArray(target) ? Object.entries(target) : []);
  for (const [key, value] of Object.entries(patch)) {
    if (value === null) merged.delete(key);
    else merged.set(key, mergePatch(merged.get(key), value));
  }
  return Object.fromEntries(merged);
}

function dockerConfig(host: string, username: string, password: string): Buffer {
  return Buffer.from(JSON.stringify({ auths: { [host]: { auth: Buffer.from(`${username}:${password}`).toString("base64") } } }));
}

describe("registry clients shared across reconciles", { skip: skipUnlessBuilt("registry") }, () => {
  let registry: Registry;
  let proxy: FaultProxy;
  let counter: Awaited<ReturnType<typeof connectionCounter>>;
  let dir: string;
  let reconciler: OCIRepositoryReconciler;
  const secrets = new Map<string, Record<string, Buffer>>();
  const objects = new Map<string, OCIRepository>();

  const kube = {
    setFinalizers: async () => undefined,
    patchStatus: async (_type: unknown, namespace: string, name: string, status: OCIRepository["status"]) => {
      const key = `${namespace}/${name}`;
      const object = objects.get(key);
      if (object) objects.set(key, { ...object, status: mergePatch(object.status ?? {}, status) as OCIRepository["status"] });
    },
    secretData: async (namespace: string, name: string) => secrets.get(`${namespace}/${name}`),
    imagePullSecrets: async () => [],
    event: async () => undefined,
  } as unknown as KubeClient;

  function source(namespace: string, name: string, repository: string, secret: string): string {
    const key = `${namespace}/${name}`;
    objects.set(key, {
      apiVersion: "source.ferry.dev/v1",
      kind: "OCIRepository",
      metadata: { namespace, name, generation: 1, finalizers: [FINALIZER] },
      spec: { url: `oci://${counter.host}/${repository}`, ref: { tag: "v1" }, interval: "1h", timeout: "60s", insecure: true, secretRef: { name: secret } },
    } as OCIRepository);
    return key;
  }

  async function reconcile(key: string): Promise<OCIRepository> {
    const object = objects.get(key);
    assert.ok(object);
    await reconciler.reconcile(structuredClone(object)).catch(() => undefined);
    return objects.get(key) as OCIRepository;
  }

  const ready = (object: OCIRepository) => object.status?.conditions?.find((condition) => condition.type === "Ready");

  before(async () => {
    registry = await startRegistry({ kind: "distribution", auth: "token" });
    proxy = await startFaultProxy(registry.host);
    counter = await connectionCounter(proxy.host);
    dir = await mkdtemp(join(tmpdir(), "ferry-shared-client-"));
    const creds = registry.credentials;
    assert.ok(creds && registry.tokenService);
    // A second tenant with credentials of its own.
    (registry.tokenService.options.users as Record<string, string>)["tenant-b"] = "tenant-b-password";
    for (const repository of ["shared/app", "shared/other"]) {
      await ferryOk(["push", "artifact", `oci://${registry.host}/${repository}:v1`, `--path=${PODINFO}`, "--source=s", "--revision=r",
        "--insecure-registry", `--creds=${creds.username}:${creds.password}`]);
    }
    secrets.set("team-a/pull", { ".dockerconfigjson": dockerConfig(counter.host, creds.username, creds.password) });
    secrets.set("team-b/pull", { ".dockerconfigjson": dockerConfig(counter.host, "tenant-b", "tenant-b-password") });
    secrets.set("team-c/pull", { ".dockerconfigjson": dockerConfig(counter.host, creds.username, "not-the-password") });
    reconciler = new OCIRepositoryReconciler({ kube, cache: new ArtifactCache(join(dir, "cache")), log: () => undefined });
  });
  after(async () => {
    await reconciler?.close();
    await counter?.stop();
    await proxy?.stop();
    await registry?.stop();
    await rm(dir, { recursive: true, force: true });
  });

  test("two sources with the same credentials share one token and connection; an unchanged reconcile is one request", async () => {
    const tokens = registry.tokenService;
    assert.ok(tokens);
    tokens.issued.length = 0;
    const first = source("team-a", "one", "shared/app", "pull");
    const second = source("team-a", "two", "shared/app", "pull");
    assert.equal(ready(await reconcile(first))?.status, "True", JSON.stringify(objects.get(first)?.status));
    const connectionsAfterFirst = counter.connections();
    assert.equal(ready(await reconcile(second))?.status, "True");
    // The second source's reconcile used the first's token: one token request for both, and no 401 round trip.
    assert.deepEqual(tokens.issued.map((request) => [request.user, request.scopes]), [["ferry", ["repository:shared/app:pull"]]]);
    assert.equal(counter.connections(), connectionsAfterFirst, "the second reconcile opened a connection of its own");

    // Nothing changed: each source's reconcile is a single manifest HEAD, with the token it already has.
    proxy.requests.length = 0;
    for (const key of [first, second]) await reconcile(key);
    assert.deepEqual(proxy.requests.map((request) => `${request.method} ${request.path} ${request.status}`), [
      "HEAD /v2/shared/app/manifests/v1 200",
      "HEAD /v2/shared/app/manifests/v1 200",
    ]);
    assert.equal(tokens.issued.length, 1);
  });

  test("another tenant's credentials get their own token; wrong credentials never borrow a cached one", async () => {
    const tokens = registry.tokenService;
    assert.ok(tokens);
    const teamA = source("team-a", "three", "shared/other", "pull");
    assert.equal(ready(await reconcile(teamA))?.status, "True");
    tokens.issued.length = 0;
    const teamB = source("team-b", "app", "shared/other", "pull");
    assert.equal(ready(await reconcile(teamB))?.status, "True");
    assert.deepEqual(tokens.issued.map((request) => request.user), ["tenant-b"], "tenant B was served with tenant A's token");

    tokens.issued.length = 0;
    const teamC = source("team-c", "app", "shared/other", "pull");
    const failed = ready(await reconcile(teamC));
    assert.equal(failed?.status, "False");
    assert.equal(failed?.reason, "AuthenticationFailed");
    assert.ok(tokens.issued.length >= 1 && tokens.issued.every((request) => !request.granted), "wrong credentials got a token");

    // Tenant C fixes its Secret: its next reconcile uses the new credentials, not the client made for the old ones.
    const creds = registry.credentials;
    assert.ok(creds);
    secrets.set("team-c/pull", { ".dockerconfigjson": dockerConfig(counter.host, creds.username, creds.password) });
    assert.equal(ready(await reconcile(teamC))?.status, "True");
  });
});
