// The single executable (dist/ferry, `npm run sea`) against a real registry, next to the npm CLI (dist/ferry.mjs):
// push from a directory and from stdin, pull, list, diff, keygen, sign and verify, usage errors, --help and
// --version, and a command whose modules are not in the snapshot. Both must answer alike: exit codes, stdout,
// and the files pulled. The executable is built fresh (about 20 s) so it never tests a stale build.
import assert from "node:assert/strict";
import { spawn } from "node:child_process";
import { mkdtemp, readFile, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, before, describe, test } from "node:test";
import { buildSea } from "../../cli/sea/build.ts";
import { skipUnlessBuilt } from "../harness/binaries.ts";
import { FERRY_BUNDLE } from "../harness/ferry.ts";
import { type Registry, startRegistry } from "../harness/registry.ts";
import { readTree, treeDifferences } from "../harness/trees.ts";

const PODINFO = join(import.meta.dirname, "..", "..", "..", "shared", "corpora", "podinfo", "kustomize");
const REVISION = "main@sha1:0123456789abcdef0123456789abcdef01234567";
const PASSWORD = { COSIGN_PASSWORD: "ferry-test" };
/** Output with the repository each CLI pushed to, digests and times made alike. */
const normal = (output: string) => output.replaceAll("/sea/", "/npm/").replace(/sha256:\w+/g, "sha256:…").replace(/\d{4}-\d\d-\d\dT[\d:.]+Z/g, "…");

interface Run {
  readonly status: number | null;
  readonly signal: NodeJS.Signals | null;
  readonly stdout: string;
  readonly stderr: string;
}

interface RunOptions {
  readonly env?: NodeJS.ProcessEnv;
  readonly input?: Buffer;
  readonly cwd?: string;
}

function run(command: string, args: readonly string[], options: RunOptions = {}): Promise<Run> {
  return new Promise((resolve, reject) => {
    const child = spawn(command, args, { env: { ...process.env, ...options.env }, cwd: options.cwd, stdio: ["pipe", "pipe", "pipe"] });
    let stdout = "";
    let stderr = "";
    child.stdout.on("data", (chunk: Buffer) => {
      stdout += chunk;
    });
    child.stderr.on("data", (chunk: Buffer) => {
      stderr += chunk;
    });
    child.on("error", reject);
    child.on("close", (status, signal) => resolve({ status, signal, stdout, stderr }));
    child.stdin.end(options.input);
  });
}

describe("single executable", { skip: skipUnlessBuilt("zot") }, () => {
  let registry: Registry;
  let dir: string;
  let sea: string;
  const CLIS = {
    npm: (args: readonly string[], options?: Parameters<typeof run>[2]) => run(process.execPath, [FERRY_BUNDLE, ...args], options),
    sea: (args: readonly string[], options?: Parameters<typeof run>[2]) => run(sea, args, options),
  };
  const both = async (args: (cli: string) => readonly string[], options?: Parameters<typeof run>[2]) => ({
    npm: await CLIS.npm(args("npm"), options),
    sea: await CLIS.sea(args("sea"), options),
  });
  const url = (cli: string, path: string) => `oci://${registry.host}/${cli}/${path}`;

  before(async () => {
    dir = await mkdtemp(join(tmpdir(), "ferry-sea-test-"));
    [registry, { path: sea }] = await Promise.all([startRegistry({ kind: "zot" }), buildSea(join(dir, "ferry"), { quiet: true })]);
  });
  after(async () => {
    await registry?.stop();
    await rm(dir, { recursive: true, force: true });
  });

  test("--version, --help, a command's --help and a usage error answer as the npm CLI does", async () => {
    for (const args of [["--version"], ["--help"], ["push", "artifact", "--help"], ["controller", "--help"], ["frobnicate"], ["push", "artifact"]]) {
      const { npm, sea: executable } = await both(() => args);
      assert.deepEqual(executable, npm, `ferry ${args.join(" ")}`);
    }
    const usage = await CLIS.sea(["frobnicate"]);
    assert.equal(usage.status, 2);
  });

  test("push, pull, list and diff give the same answers and the same files", async () => {
    const pushArgs = (cli: string) => ["push", "artifact", url(cli, "podinfo:v1"), `--path=${PODINFO}`, "--source=https://example.com/podinfo", `--revision=${REVISION}`, "--insecure-registry"];
    const pushed = await both(pushArgs);
    assert.equal(pushed.sea.status, 0, pushed.sea.stderr);
    assert.equal(pushed.npm.status, 0, pushed.npm.stderr);
    assert.match(pushed.sea.stdout.trim(), /^sha256:[a-f0-9]{64}$/);
    // Same content, same source and revision: the same layer (the manifest differs only by its created time).
    for (const cli of ["npm", "sea"]) {
      const pulled = await CLIS[cli as "npm" | "sea"](["pull", "artifact", url(cli === "npm" ? "sea" : "npm", "podinfo:v1"), `--output=${join(dir, `pulled-by-${cli}`)}`, "--insecure-registry"]);
      assert.equal(pulled.status, 0, pulled.stderr);
    }
    const expected = await readTree(PODINFO);
    assert.deepEqual(treeDifferences(expected, await readTree(join(dir, "pulled-by-sea"))), []);
    assert.deepEqual(treeDifferences(expected, await readTree(join(dir, "pulled-by-npm"))), []);

    const listed = await both((cli) => ["list", "artifacts", url(cli, "podinfo"), "--insecure-registry"]);
    assert.equal(listed.sea.status, 0, listed.sea.stderr);
    assert.equal(normal(listed.sea.stdout), normal(listed.npm.stdout));

    const same = await both((cli) => ["diff", "artifact", url(cli, "podinfo:v1"), `--path=${PODINFO}`, "--insecure-registry"]);
    assert.equal(same.sea.status, 0, same.sea.stderr);
    assert.equal(same.npm.status, 0, same.npm.stderr);
    assert.equal(normal(same.sea.stdout), normal(same.npm.stdout));
    const differs = await both((cli) => ["diff", "artifact", url(cli, "podinfo:v1"), `--path=${join(PODINFO, "..")}`, "--insecure-registry"]);
    assert.equal(differs.sea.status, 1);
    assert.equal(differs.sea.status, differs.npm.status);
    assert.equal(normal(differs.sea.stdout), normal(differs.npm.stdout));
  });

  test("a push from stdin, as the npm CLI reads it", async () => {
    const input = await readFile(join(PODINFO, "deployment.yaml"));
    const pushed = await both((cli) => ["push", "artifact", url(cli, "stdin:v1"), "--path=-", "--source=s", `--revision=${REVISION}`, "--insecure-registry"], { input });
    assert.equal(pushed.sea.status, 0, pushed.sea.stderr);
    assert.equal(pushed.npm.status, 0, pushed.npm.stderr);
    // Each pulls what the other pushed: the same single file.
    const pulled = await both((cli) => ["pull", "artifact", url(cli === "npm" ? "sea" : "npm", "stdin:v1"), `--output=${join(dir, `stdin-${cli}`)}`, "--insecure-registry"]);
    assert.equal(pulled.sea.status, 0, pulled.sea.stderr);
    assert.equal(pulled.npm.status, 0, pulled.npm.stderr);
    const bySea = await readTree(join(dir, "stdin-sea"));
    assert.equal(bySea.size, 1);
    assert.deepEqual(treeDifferences(await readTree(join(dir, "stdin-npm")), bySea), []);
  });

  test("keygen, sign and verify: each CLI verifies the other's signature, and refuses a wrong key alike", async () => {
    for (const cli of ["npm", "sea"] as const) {
      const made = await CLIS[cli](["keygen", `--output-key-prefix=${cli}`], { cwd: dir, env: PASSWORD });
      assert.equal(made.status, 0, made.stderr);
      const pushed = await CLIS[cli](["push", "artifact", url(cli, "signed:v1"), `--path=${PODINFO}`, "--source=s", `--revision=${REVISION}`, "--insecure-registry"]);
      assert.equal(pushed.status, 0, pushed.stderr);
      const signed = await CLIS[cli](["sign", url(cli, "signed:v1"), `--key=${join(dir, `${cli}.key`)}`, "--insecure-registry"], { env: PASSWORD });
      assert.equal(signed.status, 0, signed.stderr);
    }
    const verified = await both((cli) => ["verify", "artifact", url(cli === "npm" ? "sea" : "npm", "signed:v1"), `--key=${join(dir, `${cli === "npm" ? "sea" : "npm"}.pub`)}`, "--insecure-registry"]);
    assert.equal(verified.sea.status, 0, verified.sea.stderr);
    assert.equal(verified.npm.status, 0, verified.npm.stderr);
    const refused = await both((cli) => ["verify", "artifact", url(cli, "signed:v1"), `--key=${join(dir, `${cli === "npm" ? "sea" : "npm"}.pub`)}`, "--insecure-registry"]);
    assert.equal(refused.sea.status, 1);
    assert.equal(refused.npm.status, 1);
    assert.equal(normal(refused.sea.stderr), normal(refused.npm.stderr));
  });

  test("a command outside the snapshot (Kubernetes) loads its modules at run time", async () => {
    const missing = join(dir, "missing-kubeconfig");
    const { npm, sea: executable } = await both(() => ["get", "sources", "oci", `--kubeconfig=${missing}`]);
    assert.equal(executable.status, 1);
    assert.deepEqual(executable, npm);
  });

  test("SIGTERM ends a waiting command as it ends the npm CLI", async () => {
    // A push from stdin waits for its input; the signal comes first.
    const results: Record<string, { code: number | null; signal: NodeJS.Signals | null }> = {};
    for (const cli of ["npm", "sea"] as const) {
      const command = cli === "npm" ? process.execPath : sea;
      const args = [...(cli === "npm" ? [FERRY_BUNDLE] : []), "push", "artifact", "oci://127.0.0.1:9/x:v1", "--path=-", "--source=s", `--revision=${REVISION}`, "--insecure-registry"];
      const child = spawn(command, args, { stdio: ["pipe", "ignore", "ignore"] });
      await new Promise((resolve) => setTimeout(resolve, 1000));
      child.kill("SIGTERM");
      results[cli] = await new Promise((resolve) => child.on("exit", (code, signal) => resolve({ code, signal })));
    }
    assert.deepEqual(results.sea, results.npm);
  });
});
