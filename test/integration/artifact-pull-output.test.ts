// `ferry pull artifact --output=DIR` into a directory that already holds things: like `flux pull artifact`, it adds
// and replaces what the artifact contains and deletes nothing else; a refused pull leaves the directory as it was.
import assert from "node:assert/strict";
import { mkdir, mkdtemp, readdir, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, before, describe, test } from "node:test";
import { gzipSync } from "node:zlib";
import { BLOCK, END_OF_ARCHIVE, entryHeader } from "../../src/artifact/tar-header.ts";
import { skipUnlessBuilt } from "../harness/binaries.ts";
import { ferry, ferryOk } from "../harness/ferry.ts";
import { type Registry, startRegistry } from "../harness/registry.ts";
import { runTool } from "../harness/tools.ts";
import { readTree, treeDifferences } from "../harness/trees.ts";

const REVISION = "main@sha1:0123456789abcdef0123456789abcdef01234567";
const FLUX_CONTENT = "application/vnd.cncf.flux.content.v1.tar+gzip";

type Files = Readonly<Record<string, string>>;

/** What a user keeps in the output directory: unrelated files and directories, and a file inside `apps/`. */
const USER_FILES: Files = {
  "notes.txt": "my notes\n",
  "mine/keep.yaml": "kind: Mine\n",
  "apps/local.yaml": "kind: Local\n",
  "b.yaml": "kind: Old\n",
};

const ARTIFACT_FILES: Files = {
  "apps/a.yaml": "kind: A\n",
  "b.yaml": "kind: New\n",
};

async function writeFiles(root: string, files: Files): Promise<void> {
  for (const [path, content] of Object.entries(files)) {
    await mkdir(join(root, path, ".."), { recursive: true });
    await writeFile(join(root, path), content);
  }
}

function asTree(files: Files): Map<string, Buffer> {
  return new Map(Object.entries(files).map(([path, content]) => [path, Buffer.from(content)]));
}

/** Every path under `root`, directories and hidden entries included, so a leftover staging directory shows. */
async function listing(root: string): Promise<string[]> {
  return (await readdir(root, { recursive: true })).sort();
}

/** A layer no honest client writes: a replacement for b.yaml, then an entry that climbs out of the root. */
function escapingLayer(): Buffer {
  const entry = (path: string, content: string) => {
    const bytes = Buffer.from(content);
    return Buffer.concat([entryHeader(path, "file", 0o644, bytes.length), bytes, Buffer.alloc(BLOCK - bytes.length)]);
  };
  return gzipSync(Buffer.concat([entry("b.yaml", "kind: Hostile\n"), entry("../escaped.yaml", "kind: Escaped\n"), END_OF_ARCHIVE]));
}

describe("ferry pull artifact into an existing directory", { skip: skipUnlessBuilt("zot", "flux", "oras") }, () => {
  let registry: Registry;
  let dir: string;
  let cases = 0;
  const url = (path: string) => `oci://${registry.host}/${path}`;
  const pull = (path: string, output: string) => ferry(["pull", "artifact", url(path), `--output=${output}`, "--insecure-registry"]);

  async function pushFiles(path: string, files: Files): Promise<void> {
    const source = join(dir, `source-${cases++}`);
    await writeFiles(source, files);
    await ferryOk(["push", "artifact", url(path), `--path=${source}`, "--source=https://example.com/app", `--revision=${REVISION}`, "--insecure-registry"]);
  }

  async function pushEscapingLayer(path: string): Promise<void> {
    const layerDir = join(dir, `layer-${cases++}`);
    await mkdir(layerDir);
    await writeFile(join(layerDir, "layer.tgz"), escapingLayer());
    await runTool("oras", ["push", "--plain-http", `${registry.host}/${path}`, `layer.tgz:${FLUX_CONTENT}`], { cwd: layerDir });
  }

  async function userDirectory(): Promise<string> {
    const output = join(dir, `output-${cases++}`);
    await writeFiles(output, USER_FILES);
    return output;
  }

  before(async () => {
    registry = await startRegistry({ kind: "zot" });
    dir = await mkdtemp(join(tmpdir(), "ferry-pull-output-"));
  });
  after(async () => {
    await registry?.stop();
    await rm(dir, { recursive: true, force: true });
  });

  test("content the artifact does not hold survives; what it holds is added or replaced, as flux pull does", async () => {
    await pushFiles("merge/app:v1", ARTIFACT_FILES);
    const byFerry = await userDirectory();
    const pulled = await pull("merge/app:v1", byFerry);
    assert.equal(pulled.status, 0, pulled.stderr);
    const expected = asTree({ ...USER_FILES, ...ARTIFACT_FILES });
    assert.deepEqual(treeDifferences(expected, await readTree(byFerry)), []);
    assert.ok(!(await listing(byFerry)).some((path) => path.startsWith(".ferry-")), "a staging directory was left behind");

    const byFlux = await userDirectory();
    await runTool("flux", ["pull", "artifact", url("merge/app:v1"), `--output=${byFlux}`, "--insecure-registry"]);
    assert.deepEqual(treeDifferences(await readTree(byFlux), await readTree(byFerry)), []);
  });

  test("an artifact whose file is a directory in the output is refused and changes nothing", async () => {
    await pushFiles("merge/conflict:v1", { ...ARTIFACT_FILES, mine: "kind: NotADirectory\n" });
    const output = await userDirectory();
    const before = await listing(output);
    const pulled = await pull("merge/conflict:v1", output);
    assert.equal(pulled.status, 1, pulled.stderr);
    assert.match(pulled.stderr, /"mine"/);
    assert.deepEqual(treeDifferences(asTree(USER_FILES), await readTree(output)), []);
    assert.deepEqual(await listing(output), before);
  });

  test("a refused archive changes nothing, not even the files it would have replaced", async () => {
    await pushEscapingLayer("merge/hostile:v1");
    const output = await userDirectory();
    const before = await listing(output);
    const pulled = await pull("merge/hostile:v1", output);
    assert.equal(pulled.status, 1, pulled.stderr);
    assert.match(pulled.stderr, /escapes the extraction root/);
    assert.deepEqual(treeDifferences(asTree(USER_FILES), await readTree(output)), []);
    assert.deepEqual(await listing(output), before);
    assert.deepEqual(await readdir(join(output, "..")).then((names) => names.filter((name) => name.includes("escaped"))), []);
  });

  test("a missing output directory is created, and removed again when the pull is refused", async () => {
    await pushEscapingLayer("merge/hostile:v2");
    await pushFiles("merge/app:v2", ARTIFACT_FILES);
    const output = join(dir, `fresh-${cases++}`, "nested");
    const pulled = await pull("merge/hostile:v2", output);
    assert.equal(pulled.status, 1, pulled.stderr);
    assert.deepEqual(await readdir(dir).then((names) => names.filter((name) => name.startsWith("fresh-"))), []);
    assert.equal((await pull("merge/app:v2", output)).status, 0);
    assert.deepEqual(treeDifferences(asTree(ARTIFACT_FILES), await readTree(output)), []);
  });
});
