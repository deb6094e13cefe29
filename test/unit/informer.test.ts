// The informer against a scripted apiserver on 127.0.0.1: watches that hang before their headers, break while a
// restart is under way, or answer 410 Gone are all followed by working watches; and the retry delays stay short.
import assert from "node:assert/strict";
import { createServer, type IncomingMessage, type Server, type ServerResponse } from "node:http";
import { after, describe, test } from "node:test";
import { KubeConfig } from "@kubernetes/client-node";
import { Informer, WATCH_RETRY_MAX_MS, watchRetryDelayMs } from "../../src/controller/informer.ts";
import { KubeClient } from "../../src/kube/client.ts";
import { OCI_REPOSITORY } from "../../src/reconcilers/ocirepository.ts";
import { waitUntil } from "../harness/processes.ts";

interface Repo {
  metadata: { namespace: string; name: string; resourceVersion?: string };
}

const repo = (name: string, resourceVersion: string): Repo => ({ metadata: { namespace: "default", name, resourceVersion } });

type WatchAnswer = (response: ServerResponse, request: IncomingMessage) => void;

/** An apiserver that lists `items` and answers the n-th watch with `watches[n]` (the last one for any after). */
class ScriptedApiserver {
  readonly server: Server;
  readonly requests: string[] = [];
  items: Repo[] = [];
  watches: WatchAnswer[] = [];
  /** Lists at a resourceVersion other than "0" and "" answer 410 Expired. */
  expireVersionedLists = false;
  #watchCount = 0;

  constructor() {
    this.server = createServer((request, response) => {
      const url = new URL(request.url ?? "/", "http://localhost");
      const watching = url.searchParams.get("watch") === "true";
      const version = url.searchParams.get("resourceVersion") ?? "";
      const match = url.searchParams.get("resourceVersionMatch");
      this.requests.push(watching ? `watch@${version}` : `list@${version}${match ? `/${match}` : ""}`);
      response.setHeader("content-type", "application/json");
      if (!watching && this.expireVersionedLists && version !== "" && version !== "0") {
        response.statusCode = 410;
        response.end(JSON.stringify({ kind: "Status", apiVersion: "v1", status: "Failure", reason: "Expired", code: 410, message: "too old resource version" }));
        return;
      }
      if (!watching) {
        response.end(JSON.stringify({ apiVersion: "v1", kind: "List", items: this.items, metadata: { resourceVersion: "10" } }));
        return;
      }
      const answer = this.watches[Math.min(this.#watchCount++, this.watches.length - 1)];
      answer?.(response, request);
    });
  }

  async listen(): Promise<KubeClient> {
    await new Promise<void>((resolve) => this.server.listen(0, "127.0.0.1", resolve));
    const { port } = this.server.address() as { port: number };
    const config = new KubeConfig();
    config.loadFromOptions({
      clusters: [{ name: "c", server: `http://127.0.0.1:${port}`, skipTLSVerify: true }],
      users: [{ name: "u", token: "t" }],
      contexts: [{ name: "x", cluster: "c", user: "u" }],
      currentContext: "x",
    });
    return new KubeClient(config);
  }

  close(): void {
    this.server.closeAllConnections();
    this.server.close();
  }
}

const hang: WatchAnswer = () => {};
const endAtOnce: WatchAnswer = (response) => response.end();
const resetConnection: WatchAnswer = (_response, request) => request.socket.destroy();
const gone: WatchAnswer = (response) => {
  response.write(`${JSON.stringify({ type: "ERROR", object: { kind: "Status", code: 410, reason: "Expired", message: "too old resource version" } })}\n`);
  response.end();
};
const adds = (name: string, resourceVersion: string): WatchAnswer => (response) => {
  response.write(`${JSON.stringify({ type: "ADDED", object: repo(name, resourceVersion) })}\n`);
};

describe("informer against a scripted apiserver", () => {
  const servers: ScriptedApiserver[] = [];
  const informers: Array<Informer<Repo>> = [];
  after(() => {
    for (const informer of informers) informer.stop();
    for (const server of servers) server.close();
  });

  async function start(script: (apiserver: ScriptedApiserver) => void, silenceMs: number) {
    const apiserver = new ScriptedApiserver();
    servers.push(apiserver);
    script(apiserver);
    const seen = new Set<string>();
    const logs: string[] = [];
    const informer = new Informer<Repo>(await apiserver.listen(), {
      type: OCI_REPOSITORY,
      resyncMs: 3_600_000,
      silenceMs,
      log: (message) => logs.push(message),
      onUpsert: (object) => seen.add(object.metadata.name),
      onDelete: (object) => seen.delete(object.metadata.name),
    });
    informers.push(informer);
    await informer.start();
    return { apiserver, informer, seen, logs };
  }

  test("a watch that hangs before its headers is abandoned after the idle timeout and started again", async () => {
    const { seen, logs } = await start((apiserver) => {
      apiserver.watches = [hang, adds("after-hang", "11")];
    }, 300);
    await waitUntil("the object from the second watch", async () => seen.has("after-hang"), { timeoutMs: 3000 });
    assert.ok(logs.includes("watch went silent; restarting it"));
  });

  test("a watch that breaks while the previous one is being restarted is retried, not dropped", async () => {
    const { apiserver, seen } = await start((apiserver) => {
      apiserver.watches = [endAtOnce, resetConnection, resetConnection, adds("after-restart", "11")];
    }, 60_000);
    await waitUntil("the object after two broken watches", async () => seen.has("after-restart"), { timeoutMs: 5000 });
    assert.deepEqual(apiserver.requests.slice(0, 5), ["list@0", "watch@10", "watch@10", "watch@10", "watch@10"]);
  });

  test("410 Gone is followed by a relist, and repeated 410s are backed off", async () => {
    const started = Date.now();
    const { apiserver, seen, informer } = await start((apiserver) => {
      apiserver.items = [repo("listed", "5")];
      apiserver.watches = [gone, gone, gone, adds("after-gone", "12")];
    }, 60_000);
    assert.ok(seen.has("listed"));
    await waitUntil("the object after three 410s", async () => seen.has("after-gone"), { timeoutMs: 5000 });
    const relist = "list@10/NotOlderThan";
    assert.deepEqual(apiserver.requests.slice(0, 8), ["list@0", "watch@10", relist, "watch@10", relist, "watch@10", relist, "watch@10"]);
    // The first 410 is relisted at once; the next two wait at least 0.75 × (250 + 500) ms.
    assert.ok(Date.now() - started >= 560, `three 410s in ${Date.now() - started} ms`);
    assert.ok(informer.idleMs() < 1000);
  });

  test("after a 410 the relist asks for a state not older than the last event; an expired version falls back to a consistent read", async () => {
    const { apiserver, seen } = await start((apiserver) => {
      apiserver.watches = [(response) => {
        response.write(`${JSON.stringify({ type: "ADDED", object: repo("seen", "12") })}\n`);
        gone(response, undefined as never);
      }, adds("after", "13")];
    }, 60_000);
    await waitUntil("the object after the relist", async () => seen.has("after"), { timeoutMs: 5000 });
    assert.deepEqual(apiserver.requests.slice(0, 4), ["list@0", "watch@10", "list@12/NotOlderThan", "watch@10"]);

    const expired = await start((apiserver) => {
      apiserver.expireVersionedLists = true;
      apiserver.watches = [gone, adds("after-expired", "14")];
    }, 60_000);
    await waitUntil("the object after the consistent relist", async () => expired.seen.has("after-expired"), { timeoutMs: 5000 });
    assert.deepEqual(expired.apiserver.requests.slice(0, 5), ["list@0", "watch@10", "list@10/NotOlderThan", "list@", "watch@10"]);
  });
});

describe("watch retry delays", () => {
  test("start small, double, stay under the cap, and follow the server's Retry-After", () => {
    assert.equal(watchRetryDelayMs(0), 0);
    assert.equal(watchRetryDelayMs(1, undefined, 1), 250);
    assert.equal(watchRetryDelayMs(2, undefined, 1), 500);
    assert.equal(watchRetryDelayMs(3, undefined, 0), 750);
    for (const failures of [5, 10, 100, 10_000]) assert.ok(watchRetryDelayMs(failures) <= WATCH_RETRY_MAX_MS);
    assert.equal(watchRetryDelayMs(7, 1000), 1000);
    assert.equal(watchRetryDelayMs(1, 3_600_000), WATCH_RETRY_MAX_MS);
  });
});
