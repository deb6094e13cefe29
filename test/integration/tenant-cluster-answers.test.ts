// A cluster named by a tenant's kubeConfig chooses how much it answers; the controller reads at most
// TENANT_MAX_RESPONSE_BYTES of it, since it parses every answer on its event loop.
import assert from "node:assert/strict";
import { mkdtemp, readFile, rm } from "node:fs/promises";
import { createServer, type Server } from "node:https";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, before, test } from "node:test";
import { KubeClient, TENANT_MAX_RESPONSE_BYTES } from "../../src/kube/client.ts";
import { KubeResponseTooLargeError } from "../../src/kube/transport.ts";
import { createServingCertificate } from "../harness/pki.ts";

let dir: string;
let server: Server;
let kubeconfig: string;

before(async () => {
  dir = await mkdtemp(join(tmpdir(), "ferry-tenant-answers-"));
  const certificate = await createServingCertificate(dir, "127.0.0.1");
  const chunk = Buffer.alloc(1024 * 1024, "a");
  server = createServer({ cert: await readFile(certificate.certFile), key: await readFile(certificate.keyFile) }, (request, response) => {
    // A ConfigMap whose data never ends: 64 MiB of it, streamed.
    response.writeHead(200, { "content-type": "application/json" });
    response.write("{\"apiVersion\":\"v1\",\"kind\":\"ConfigMap\",\"metadata\":{\"name\":\"big\"},\"data\":{\"a\":\"");
    let sent = 0;
    const pump = () => {
      while (sent < 64 && response.write(chunk)) sent++;
      if (sent < 64) response.once("drain", pump);
      else response.end("\"}}");
    };
    pump();
    response.on("error", () => {});
  });
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  const port = (server.address() as { port: number }).port;
  kubeconfig = JSON.stringify({
    apiVersion: "v1",
    kind: "Config",
    clusters: [{ name: "tenant", cluster: { server: `https://127.0.0.1:${port}`, "certificate-authority-data": (await readFile(certificate.caFile)).toString("base64") } }],
    users: [{ name: "tenant", user: { token: "t" } }],
    contexts: [{ name: "tenant", context: { cluster: "tenant", user: "tenant" } }],
    "current-context": "tenant",
  });
});
after(async () => {
  server?.closeAllConnections();
  await new Promise((resolve) => server?.close(resolve));
  await rm(dir, { recursive: true, force: true });
});

test("an answer over the tenant limit is refused by name, not parsed", async () => {
  const client = KubeClient.fromUntrustedString(kubeconfig);
  await assert.rejects(client.configMapData("default", "big"), (error: Error) => {
    const cause = error instanceof KubeResponseTooLargeError ? error : (error as { cause?: unknown }).cause;
    return cause instanceof KubeResponseTooLargeError || new RegExp(`exceeds ${TENANT_MAX_RESPONSE_BYTES / 1024 / 1024} MiB`).test(error.message);
  });
});
