import assert from "node:assert/strict";
import { execFileSync } from "node:child_process";
import { subscribe, unsubscribe } from "node:diagnostics_channel";
import { createServer } from "node:http";
import type { AddressInfo } from "node:net";
import { test } from "node:test";
import { baselineBudgetActive, DEFAULT_TIERING_BUDGET, keepHttpParserOnBaselineTier } from "../../src/registry/parser-tiering.ts";
import { Agent } from "../../src/registry/undici.ts";

test("the raised tier-up budget holds only while undici connects, also when a connection fails", async () => {
  keepHttpParserOnBaselineTier();
  keepHttpParserOnBaselineTier(); // idempotent: a second call must not count connections twice
  const server = createServer((_request, response) => response.end("ok"));
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  const seenWhileConnecting: boolean[] = [];
  const watch = () => seenWhileConnecting.push(baselineBudgetActive());
  subscribe("undici:client:beforeConnect", watch);
  const agent = new Agent({ allowH2: false, connectTimeout: 2_000 });
  try {
    const { port } = server.address() as AddressInfo;
    const closed = createServer();
    await new Promise<void>((resolve) => closed.listen(0, "127.0.0.1", resolve));
    const refusedPort = (closed.address() as AddressInfo).port;
    await new Promise<void>((resolve) => closed.close(() => resolve()));

    const [ok, refused] = await Promise.allSettled([
      agent.request({ origin: `http://127.0.0.1:${port}`, path: "/", method: "GET" }).then((response) => response.body.text()),
      agent.request({ origin: `http://127.0.0.1:${refusedPort}`, path: "/", method: "GET" }),
    ]);
    assert.deepEqual(ok, { status: "fulfilled", value: "ok" });
    assert.equal(refused?.status, "rejected");
    assert.deepEqual(seenWhileConnecting, [true, true]);
    assert.equal(baselineBudgetActive(), false, "the default budget is restored once no connection is pending");
  } finally {
    unsubscribe("undici:client:beforeConnect", watch);
    await agent.close();
    await new Promise<void>((resolve) => server.close(() => resolve()));
  }
});

test("the budget restored is this Node's V8 default, so no flag is left changed (which would cost every code cache)", () => {
  const options = execFileSync(process.execPath, ["--v8-options"], { encoding: "utf8" });
  const defaultBudget = /default: --wasm-tiering-budget=(\d+)/.exec(options)?.[1];
  assert.equal(Number(defaultBudget), DEFAULT_TIERING_BUDGET);
});
