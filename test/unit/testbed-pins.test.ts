// The pin bookkeeping decides whether stale binaries are reused; the skip policy decides whether CI is honest.
import assert from "node:assert/strict";
import { execFile } from "node:child_process";
import { mkdir, mkdtemp, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, before, describe, test } from "node:test";
import { promisify } from "node:util";
import { binDir, isBuilt, peerPinHash, pinHash, stampPath } from "../testbed/paths.ts";
import { PEERS } from "../testbed/peers.ts";

const exec = promisify(execFile);

describe("test-bed pins", () => {
  let dir: string;
  const previous = process.env.FERRY_TESTBED_DIR;
  before(async () => {
    dir = await mkdtemp(join(tmpdir(), "ferry-pins-"));
    process.env.FERRY_TESTBED_DIR = dir;
  });
  after(async () => {
    if (previous === undefined) delete process.env.FERRY_TESTBED_DIR;
    else process.env.FERRY_TESTBED_DIR = previous;
    await rm(dir, { recursive: true, force: true });
  });

  test("every peer has a distinct pin hash and the overall hash is stable", () => {
    const hashes = PEERS.map(peerPinHash);
    assert.equal(new Set(hashes).size, PEERS.length);
    assert.equal(pinHash(), pinHash());
    assert.match(pinHash(), /^[0-9a-f]{16}$/);
  });

  test("every wrapper module pins its versions with a go.sum", async () => {
    const { readdir } = await import("node:fs/promises");
    for (const peer of PEERS.filter((candidate) => !("copyOf" in candidate))) {
      const files = await readdir(join(import.meta.dirname, "..", "testbed", "modules", peer.module));
      assert.ok(
        files.includes("go.mod") && files.includes("go.sum"),
        `${peer.module} lacks go.mod or go.sum`,
      );
    }
  });

  test("a peer counts as built only with a stamp of its current pins and all its binaries", async () => {
    const [peer] = PEERS;
    assert.ok(peer);
    assert.equal(isBuilt(peer), false);
    await mkdir(binDir(), { recursive: true });
    for (const name of Object.keys(peer.binaries)) await writeFile(join(binDir(), name), "");
    await mkdir(join(dir, "stamps"), { recursive: true });
    await writeFile(stampPath(peer), "0".repeat(64));
    assert.equal(isBuilt(peer), false, "a stamp from other pins must not count");
    await writeFile(stampPath(peer), `${peerPinHash(peer)}\n`);
    assert.equal(isBuilt(peer), true);
    await rm(join(binDir(), Object.keys(peer.binaries)[0] ?? ""));
    assert.equal(isBuilt(peer), false, "a missing binary must not count");
  });

  test("in CI a missing peer fails the test file instead of skipping it", async () => {
    const probe = `import { skipUnlessBuilt } from ${JSON.stringify(join(import.meta.dirname, "..", "harness", "binaries.ts"))};
console.log(JSON.stringify(skipUnlessBuilt("kube-apiserver")));`;
    const env = { ...process.env, FERRY_TESTBED_DIR: join(dir, "empty") };
    const local = await exec(process.execPath, ["--input-type=module", "-e", probe], {
      env: { ...env, CI: "" },
    });
    assert.match(local.stdout, /not built: kube-apiserver/);
    await assert.rejects(
      exec(process.execPath, ["--input-type=module", "-e", probe], { env: { ...env, CI: "true" } }),
      /CI may not skip tests for a missing peer/,
    );
  });
});
