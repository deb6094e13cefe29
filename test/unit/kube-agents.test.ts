// Caches that must not thrash with many tenants: the keep-alive agents to an API server are shared by every client
// of it (impersonating ones and other kubeconfigs with the same TLS identity), and a Kustomization's target (its
// Applier and discovery) is kept least recently used first out rather than all dropped past a bound.
import assert from "node:assert/strict";
import { createServer } from "node:http";
import type { AddressInfo } from "node:net";
import { test } from "node:test";
import { KubeConfig } from "@kubernetes/client-node";
import type { KustomizationSpecType } from "../../src/api/kustomize.ts";
import { KubeClient } from "../../src/kube/client.ts";
import { OCI_REPOSITORY } from "../../src/reconcilers/ocirepository.ts";
import { Targets } from "../../src/reconcilers/kustomization-inputs.ts";

function kubeconfig(port: number, token: string): KubeConfig {
  const config = new KubeConfig();
  config.loadFromOptions({
    clusters: [{ name: "c", server: `http://127.0.0.1:${port}`, skipTLSVerify: true }],
    users: [{ name: "u", token }],
    contexts: [{ name: "x", cluster: "c", user: "u" }],
    currentContext: "x",
  });
  return config;
}

test("clients of one API server share its keep-alive connections; each still sends its own identity", async () => {
  let connections = 0;
  const seen: string[] = [];
  const server = createServer((request, response) => {
    seen.push(`${request.headers.authorization} as ${request.headers["impersonate-user"] ?? "-"}`);
    response.writeHead(404, { "content-type": "application/json" });
    response.end(JSON.stringify({ kind: "Status", code: 404 }));
  });
  server.on("connection", () => connections++);
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  const { port } = server.address() as AddressInfo;
  try {
    const controller = new KubeClient(kubeconfig(port, "controller-token"));
    const tenants = ["a", "b", "c"].map((name) => controller.impersonating(`system:serviceaccount:${name}:deployer`));
    const other = new KubeClient(kubeconfig(port, "other-token"));
    for (const kube of [controller, ...tenants, other, controller]) {
      assert.equal(await kube.get(OCI_REPOSITORY, "default", "missing"), undefined);
    }
    assert.equal(connections, 1, "a client opened a connection pool of its own");
    assert.deepEqual(seen, [
      "Bearer controller-token as -",
      "Bearer controller-token as system:serviceaccount:a:deployer",
      "Bearer controller-token as system:serviceaccount:b:deployer",
      "Bearer controller-token as system:serviceaccount:c:deployer",
      "Bearer other-token as -",
      "Bearer controller-token as -",
    ]);
  } finally {
    server.closeAllConnections();
    server.close();
  }
});

test("Kustomization targets: past the bound the least recently used goes, not every tenant's at once", async () => {
  const targets = new Targets(new KubeClient(kubeconfig(1, "t")));
  const spec = (serviceAccountName: string) => ({ serviceAccountName }) as unknown as KustomizationSpecType;
  const busy = await targets.for("team-0", spec("deployer"));
  // 300 tenants, more than the old bound of 256; the busy one reconciles in between.
  for (let index = 1; index <= 300; index++) {
    await targets.for(`team-${index}`, spec("deployer"));
    if (index % 50 === 0) assert.equal(await targets.for("team-0", spec("deployer")), busy, `rebuilt after ${index} tenants`);
  }
  assert.equal(targets.size, 301);
});
