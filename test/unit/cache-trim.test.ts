// The informer cache keeps what reconcilers read: managedFields and kubectl's last-applied-configuration annotation
// are dropped from listed and watched objects, and nothing that reads the cache looks for them.
import assert from "node:assert/strict";
import { readdir, readFile } from "node:fs/promises";
import { createServer } from "node:http";
import type { AddressInfo } from "node:net";
import { join } from "node:path";
import { test } from "node:test";
import { KubeConfig } from "@kubernetes/client-node";
import { LAST_APPLIED_ANNOTATION, trimForCache } from "../../src/controller/cache-trim.ts";
import { Informer } from "../../src/controller/informer.ts";
import { KubeClient } from "../../src/kube/client.ts";
import { OCI_REPOSITORY } from "../../src/reconcilers/ocirepository.ts";
import { waitUntil } from "../harness/processes.ts";

const MANAGED_FIELDS = [
  { manager: "kubectl", operation: "Apply", apiVersion: "source.ferry.dev/v1", fieldsType: "FieldsV1", fieldsV1: { "f:spec": { "f:url": {} } } },
  { manager: "ferry-controller", operation: "Update", subresource: "status", fieldsV1: { "f:status": { "f:conditions": {} } } },
];

function object(name: string, resourceVersion: string, annotations: Record<string, string>) {
  return {
    apiVersion: "source.ferry.dev/v1",
    kind: "OCIRepository",
    metadata: { namespace: "default", name, resourceVersion, generation: 1, managedFields: MANAGED_FIELDS, annotations },
    spec: { url: "oci://registry.example/app", interval: "1m" },
  };
}

test("trimForCache drops managedFields and the last-applied annotation, keeps the rest", () => {
  const trimmed = trimForCache(object("a", "1", { [LAST_APPLIED_ANNOTATION]: "{}", "reconcile.fluxcd.io/requestedAt": "now" }));
  assert.deepEqual(trimmed.metadata, {
    namespace: "default", name: "a", resourceVersion: "1", generation: 1, annotations: { "reconcile.fluxcd.io/requestedAt": "now" },
  });
  assert.equal("annotations" in trimForCache(object("b", "1", { [LAST_APPLIED_ANNOTATION]: "{}" })).metadata, false);
  // Watch ERROR events carry a Status, not an object.
  assert.deepEqual(trimForCache({ kind: "Status", code: 410 }), { kind: "Status", code: 410 });
  assert.equal(trimForCache(undefined), undefined);
});

test("the informer's cache holds listed and watched objects without managedFields or last-applied-configuration", async () => {
  const applied = { [LAST_APPLIED_ANNOTATION]: JSON.stringify({ spec: { url: "oci://registry.example/app" } }), team: "a" };
  const server = createServer((request, response) => {
    const url = new URL(request.url ?? "/", "http://localhost");
    response.setHeader("content-type", "application/json");
    if (url.searchParams.get("watch") !== "true") {
      response.end(JSON.stringify({ apiVersion: "v1", kind: "List", items: [object("listed", "5", applied)], metadata: { resourceVersion: "10" } }));
      return;
    }
    response.write(`${JSON.stringify({ type: "ADDED", object: object("watched", "11", applied) })}\n`);
  });
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  const config = new KubeConfig();
  config.loadFromOptions({
    clusters: [{ name: "c", server: `http://127.0.0.1:${(server.address() as AddressInfo).port}`, skipTLSVerify: true }],
    users: [{ name: "u", token: "t" }],
    contexts: [{ name: "x", cluster: "c", user: "u" }],
    currentContext: "x",
  });
  const upserted: unknown[] = [];
  const informer = new Informer<ReturnType<typeof object>>(new KubeClient(config), {
    type: OCI_REPOSITORY,
    onUpsert: (item) => upserted.push(item),
    onDelete: () => undefined,
    resyncMs: 3_600_000,
    silenceMs: 30_000,
    log: () => undefined,
  });
  try {
    await informer.start();
    await waitUntil("the watched object", async () => informer.get("default/watched") !== undefined, { timeoutMs: 10_000, intervalMs: 20 });
    for (const key of ["default/listed", "default/watched"]) {
      const cached = informer.get(key);
      assert.ok(cached);
      assert.equal(cached.metadata.managedFields, undefined, `${key} kept managedFields`);
      assert.deepEqual(cached.metadata.annotations, { team: "a" });
    }
    // Reconcilers are handed the cached object itself, not an untrimmed copy.
    assert.ok(upserted.every((item) => (item as ReturnType<typeof object>).metadata.managedFields === undefined));
  } finally {
    informer.stop();
    server.closeAllConnections();
    server.close();
  }
});

test("nothing that reads the informer cache looks for managedFields or last-applied-configuration", async () => {
  const root = join(import.meta.dirname, "..", "..", "src");
  for (const dir of ["controller", "reconcilers"]) {
    for (const name of await readdir(join(root, dir))) {
      if (!name.endsWith(".ts") || name === "cache-trim.ts") continue;
      const text = await readFile(join(root, dir, name), "utf8");
      assert.doesNotMatch(text, /managedFields|last-applied-configuration|LAST_APPLIED/, `src/${dir}/${name} reads what the cache drops`);
    }
  }
});
