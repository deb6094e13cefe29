// The hostile-kustomization corpus (test/corpus/hostile-kustomizations) against the real kustomize: every case leaks
// a sentinel file from outside its root when kustomize runs as Flux's CVEs found it (unconfined, no load
// restrictor), and none leaks through the sandbox alone or through Ferry's whole build (pre-walk and sandbox).
import assert from "node:assert/strict";
import { execFile } from "node:child_process";
import { once } from "node:events";
import { randomBytes } from "node:crypto";
import { cp, mkdir, mkdtemp, readdir, readFile, rm, symlink, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, before, describe, test } from "node:test";
import { Worker } from "node:worker_threads";
import { buildManifests, runKustomize } from "../../src/kustomize/build.ts";
import { RemoteBaseError } from "../../src/kustomize/generate.ts";
import { probeSandbox, type Sandbox, SandboxUnavailableError } from "../../src/sandbox/sandbox.ts";
import { ferry } from "../harness/ferry.ts";
import { binary } from "../harness/binaries.ts";

const CORPUS = join(import.meta.dirname, "..", "corpus", "hostile-kustomizations");
const KUBE_PROMETHEUS = join(import.meta.dirname, "..", "..", "..", "shared", "corpora", "kube-prometheus", "manifests");
const SANDBOX_BINARY = join(import.meta.dirname, "..", "..", "dist", "ferry-sandbox");

interface Sentinel {
  readonly dir: string;
  readonly secret: string;
  /** Every form in which a sentinel file's bytes could show up in a build's output or error. */
  readonly forms: readonly string[];
}

async function writeSentinel(parent: string): Promise<Sentinel> {
  const dir = join(parent, "sentinel");
  const secret = `ferry-sentinel-${randomBytes(12).toString("hex")}`;
  const object = `apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: stolen-object\ndata:\n  secret: ${secret}\n`;
  const files: Record<string, string> = {
    token: secret,
    env: `SENTINEL=${secret}\n`,
    "object.yaml": object,
    "patch.yaml": `apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: victim\ndata:\n  stolen: ${secret}\n`,
    "base/kustomization.yaml": "resources:\n- object.yaml\n",
    "base/object.yaml": object,
    "component/kustomization.yaml": `apiVersion: kustomize.config.k8s.io/v1alpha1\nkind: Component\nconfigMapGenerator:\n- name: stolen\n  literals:\n  - secret=${secret}\n`,
  };
  for (const [name, content] of Object.entries(files)) {
    await mkdir(join(dir, name, ".."), { recursive: true });
    await writeFile(join(dir, name), content);
  }
  const forms = [secret, ...Object.values(files).map((content) => Buffer.from(content).toString("base64"))];
  return { dir, secret, forms };
}

async function materialize(name: string, parent: string, sentinel: Sentinel): Promise<string> {
  const root = join(parent, name);
  await cp(join(CORPUS, name), root, { recursive: true });
  const escape = `${"../".repeat(24)}${sentinel.dir.replace(/^\//, "")}`;
  const fill = (text: string) => text.replaceAll("@SENTINEL_DIR@", sentinel.dir).replaceAll("@ESCAPE@", escape);
  for (const entry of await readdir(root)) {
    if (entry === "symlinks.json") continue;
    const path = join(root, entry);
    await writeFile(path, fill(await readFile(path, "utf8")));
  }
  const links = await readFile(join(root, "symlinks.json"), "utf8").then((text) => JSON.parse(text) as Record<string, string>, () => ({}));
  await rm(join(root, "symlinks.json"), { force: true });
  for (const [link, target] of Object.entries(links)) await symlink(fill(target), join(root, link));
  return root;
}

function leaked(text: string, sentinel: Sentinel): boolean {
  return sentinel.forms.some((form) => text.includes(form));
}

function kustomizeUnconfined(directory: string): Promise<string> {
  return new Promise((resolve) => {
    execFile(binary("kustomize"), ["build", "--load-restrictor", "LoadRestrictionsNone", directory], (error, stdout, stderr) => {
      resolve(`${stdout}${error ? `${error.message}${stderr}` : ""}`);
    });
  });
}

async function outcome(run: () => Promise<unknown>): Promise<string> {
  try {
    return JSON.stringify(await run());
  } catch (error) {
    return `${(error as Error).message}\n${String((error as { stderr?: unknown }).stderr ?? "")}`;
  }
}

describe("hostile kustomizations against the real kustomize", async () => {
  const cases = (await readdir(CORPUS, { withFileTypes: true })).filter((entry) => entry.isDirectory()).map((entry) => entry.name);
  let work: string;
  let sentinel: Sentinel;
  let sandbox: Sandbox;

  before(async () => {
    process.env.FERRY_KUSTOMIZE = binary("kustomize");
    work = await mkdtemp(join(tmpdir(), "ferry-hostile-"));
    sentinel = await writeSentinel(work);
    sandbox = await probeSandbox(SANDBOX_BINARY, { maxMemoryBytes: 2 * 1024 ** 3, maxCpuSeconds: 60 });
  });
  after(() => rm(work, { recursive: true, force: true }));

  test("the corpus has the cases the issue names", () => {
    assert.ok(cases.length >= 15, `only ${cases.length} cases`);
  });

  for (const name of cases) {
    test(`${name}: leaks unconfined, not through the sandbox or Ferry's build, and the reference check refuses it`, async () => {
      const root = await materialize(name, join(work, "unconfined"), sentinel);
      assert.ok(leaked(await kustomizeUnconfined(root), sentinel), `${name} does not leak even unconfined: it tests nothing`);

      const confinedRoot = await materialize(name, join(work, "confined"), sentinel);
      const confined = await outcome(() => runKustomize(confinedRoot, confinedRoot, sandbox));
      assert.ok(!leaked(confined, sentinel), `${name} leaked through the sandbox: ${confined}`);

      const builtRoot = await materialize(name, join(work, "built"), sentinel);
      const built = await outcome(() => buildManifests(builtRoot, "", { sandbox }));
      assert.ok(!leaked(built, sentinel), `${name} leaked through buildManifests: ${built}`);

      // The second fence on its own: the check before kustomize runs refuses the case by name.
      const checkedRoot = await materialize(name, join(work, "checked"), sentinel);
      await assert.rejects(buildManifests(checkedRoot, ""), RemoteBaseError, `${name} got past the reference check`);
    });
  }

  test("a build over the memory limit fails with a message naming the limit", async () => {
    const root = join(work, "kube-prometheus");
    await cp(KUBE_PROMETHEUS, join(root, "manifests"), { recursive: true });
    const small = { ...sandbox, maxMemoryBytes: 48 * 1024 * 1024 };
    await assert.rejects(buildManifests(root, "", { sandbox: small }), /kustomize build needed more than its 48 MiB of memory/);
    assert.equal((await buildManifests(root, "", { sandbox })).length, 131, "the default limit builds all of kube-prometheus");
  });

  test("a missing sandbox is refused, never bypassed", async () => {
    await assert.rejects(probeSandbox(join(work, "no-such-sandbox"), sandbox), SandboxUnavailableError);
    const result = await ferry(["controller", "--kubeconfig=/nonexistent", "--health-addr=127.0.0.1:0"], { env: { FERRY_SANDBOX: join(work, "no-such-sandbox") } });
    assert.equal(result.status, 2, result.stderr);
    assert.match(result.stderr, /the build sandbox .* is missing or not executable.*--insecure-unconfined-builds/s);
  });

  test("the bundled CLI carries the worker that reads kustomize output", async () => {
    const worker = new Worker(join(import.meta.dirname, "..", "..", "dist", "kustomize-output-worker.mjs"), {
      workerData: { text: "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: ${name}\n", origin: "bundled", variables: { name: "cm" }, strict: true },
    });
    const [result] = await once(worker, "message") as [{ json?: string }];
    await worker.terminate();
    assert.deepEqual(JSON.parse(result.json ?? "[]"), [{ apiVersion: "v1", kind: "ConfigMap", metadata: { name: "cm" } }]);
  });

  test("the sandbox and the reference check still let a legitimate build read its whole root", async () => {
    const root = join(work, "legitimate");
    await mkdir(join(root, "base"), { recursive: true });
    await writeFile(join(root, "kustomization.yaml"), "resources:\n- base\nsecretGenerator:\n- name: own\n  files:\n  - token.txt\ngenerators:\n- generator.yaml\n");
    await writeFile(join(root, "generator.yaml"), "apiVersion: builtin\nkind: ConfigMapGenerator\nmetadata:\n  name: generated\nfiles:\n- key=token.txt\n");
    await writeFile(join(root, "token.txt"), "own-secret");
    await writeFile(join(root, "base", "kustomization.yaml"), "resources:\n- cm.yaml\n");
    await writeFile(join(root, "base", "cm.yaml"), "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: mine\n");
    const objects = await buildManifests(root, "", { sandbox });
    assert.deepEqual(objects.map((object) => `${object.kind}/${object.metadata.name.replace(/-[a-z0-9]{10}$/, "")}`).sort(), ["ConfigMap/generated", "ConfigMap/mine", "Secret/own"]);
  });
});
