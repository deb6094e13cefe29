// Readiness waits must fail fast and say why when a peer dies, and stop() must not leave processes behind.
import assert from "node:assert/strict";
import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, before, describe, test } from "node:test";
import { freePort, startProcess, waitUntil } from "../harness/processes.ts";

describe("harness processes", () => {
  let dir: string;
  before(async () => {
    dir = await mkdtemp(join(tmpdir(), "ferry-processes-"));
  });
  after(async () => {
    await rm(dir, { recursive: true, force: true });
  });

  test("a readiness wait fails as soon as the process exits, quoting its log", async () => {
    const dying = startProcess("dying", "sh", ["-c", "echo 'listen: address in use' >&2; exit 3"], {
      logFile: join(dir, "dying.log"),
    });
    const started = Date.now();
    await assert.rejects(
      waitUntil("never", async () => false, { timeoutMs: 20_000, process: dying }),
      /dying exited with code 3[\s\S]*address in use/,
    );
    assert.ok(Date.now() - started < 10_000, "waited for the timeout instead of failing on exit");
  });

  test("a readiness wait times out naming what it waited for", async () => {
    await assert.rejects(
      waitUntil("the moon", async () => false, { timeoutMs: 300, intervalMs: 50 }),
      /timed out after 300 ms waiting for the moon/,
    );
  });

  test("stop() terminates a running process and resolves once it is gone", async () => {
    const sleeper = startProcess("sleeper", "sleep", ["60"], { logFile: join(dir, "sleeper.log") });
    const pid = sleeper.pid;
    assert.ok(pid);
    process.kill(pid, 0); // alive before stop
    await sleeper.stop();
    assert.throws(() => process.kill(pid, 0), /ESRCH/);
    await assert.rejects(
      waitUntil("nothing", async () => false, { timeoutMs: 200, process: sleeper }),
      /timed out/,
      "a deliberate stop is not reported as a crash",
    );
  });

  test("freePort returns distinct usable loopback ports", async () => {
    const ports = await Promise.all([freePort(), freePort(), freePort()]);
    for (const port of ports) assert.ok(port > 0 && port < 65536);
  });
});
