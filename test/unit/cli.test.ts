// The CLI's contract with scripts: exit 0 on success, 2 on a usage error, with the reason on stderr.
import assert from "node:assert/strict";
import { spawnSync } from "node:child_process";
import { join } from "node:path";
import { test } from "node:test";

const FERRY = join(import.meta.dirname, "..", "..", "cli", "ferry.ts");

function ferry(...args: string[]) {
  return spawnSync(process.execPath, [FERRY, ...args], { encoding: "utf8" });
}

test("ferry version prints the package version and exits 0", () => {
  const result = ferry("version");
  assert.equal(result.status, 0);
  assert.match(result.stdout, /^ferry \d+\.\d+\.\d+/);
});

test("an unknown command exits 2 and names the command on stderr", () => {
  const result = ferry("launch");
  assert.equal(result.status, 2);
  assert.match(result.stderr, /unknown command "launch"/);
});
