// Lists as the informer sends them: from the apiserver's watch cache (resourceVersion=0) rather than etcd, and in
// pages followed by their continue tokens, the first page's version not sent again with a token.
import assert from "node:assert/strict";
import { createServer } from "node:http";
import type { AddressInfo } from "node:net";
import { test } from "node:test";
import { KubeConfig } from "@kubernetes/client-node";
import { Informer } from "../../src/controller/informer.ts";
import { KubeClient } from "../../src/kube/client.ts";
import { OCI_REPOSITORY } from "../../src/reconcilers/ocirepository.ts";

const repo = (name: string) => ({ metadata: { namespace: "default", name, resourceVersion: "7" } });

/** An apiserver whose list answers in pages of two; records each list request's query. */
async function pagingApiserver(names: readonly string[]) {
  const lists: Array<Record<string, string>> = [];
  const server = createServer((request, response) => {
    const url = new URL(request.url ?? "/", "http://localhost");
    response.setHeader("content-type", "application/json");
    if (url.searchParams.get("watch") === "true") return; // a watch that stays open, silent
    lists.push(Object.fromEntries(url.searchParams));
    const start = Number(url.searchParams.get("continue") ?? "0");
    const limit = Number(url.searchParams.get("limit") ?? names.length);
    const next = start + limit < names.length ? String(start + limit) : undefined;
    response.end(JSON.stringify({
      apiVersion: "v1",
      kind: "List",
      items: names.slice(start, start + limit).map(repo),
      metadata: { resourceVersion: "42", ...(next ? { continue: next } : {}) },
    }));
  });
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  const config = new KubeConfig();
  config.loadFromOptions({
    clusters: [{ name: "c", server: `http://127.0.0.1:${(server.address() as AddressInfo).port}`, skipTLSVerify: true }],
    users: [{ name: "u", token: "t" }],
    contexts: [{ name: "x", cluster: "c", user: "u" }],
    currentContext: "x",
  });
  const close = () => {
    server.closeAllConnections();
    server.close();
  };
  return { kube: new KubeClient(config), lists, close };
}

test("list follows continue tokens; the version is sent with the first page only", async () => {
  const api = await pagingApiserver(["a", "b", "c", "d", "e"]);
  try {
    const listed = await api.kube.list<ReturnType<typeof repo>>(OCI_REPOSITORY, "default", undefined, { resourceVersion: "31", limit: 2 });
    assert.deepEqual(listed.items.map((item) => item.metadata.name), ["a", "b", "c", "d", "e"]);
    assert.equal(listed.resourceVersion, "42");
    assert.deepEqual(api.lists, [
      { limit: "2", resourceVersion: "31", resourceVersionMatch: "NotOlderThan" },
      { limit: "2", continue: "2" },
      { limit: "2", continue: "4" },
    ]);
    api.lists.length = 0;
    await api.kube.list(OCI_REPOSITORY);
    assert.deepEqual(api.lists, [{ limit: "500" }], "without a version, a consistent read");
  } finally {
    api.close();
  }
});

test("the informer lists from the watch cache (resourceVersion=0), in pages", async () => {
  const api = await pagingApiserver(Array.from({ length: 3 }, (_, index) => `app-${index}`));
  const informer = new Informer<ReturnType<typeof repo>>(api.kube, {
    type: OCI_REPOSITORY,
    onUpsert: () => undefined,
    onDelete: () => undefined,
    resyncMs: 3_600_000,
    silenceMs: 30_000,
    log: () => undefined,
  });
  try {
    await informer.start();
    assert.equal(informer.all().length, 3);
    assert.deepEqual(api.lists[0], { limit: "500", resourceVersion: "0" });
  } finally {
    informer.stop();
    api.close();
  }
});
