// The CLI's contract with scripts: exit 0 on success, 2 on a usage error, with the reason on stderr; and the pure parts
// of the kustomization commands (flag formats, --export, the drift diff), which need no cluster.
import assert from "node:assert/strict";
import { spawnSync } from "node:child_process";
import { mkdtemp, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { test } from "node:test";
import yaml from "js-yaml";
import {
  CREATE_OPTIONS,
  kustomizationManifest,
  parseDependsOn,
  parseHealthChecks,
  parseSourceRef,
  replacementPatch,
  safeRelativePath,
} from "../../cli/commands/kustomizations.ts";
import { comparableYaml, formatDiff, lineDiff } from "../../cli/diff.ts";
import { UsageError } from "../../cli/errors.ts";
import { parse } from "../../cli/flags.ts";

const FERRY = join(import.meta.dirname, "..", "..", "cli", "ferry.ts");

function ferry(...args: string[]) {
  return spawnSync(process.execPath, [FERRY, ...args], { encoding: "utf8" });
}

test("ferry version --client and ferry --version print the package version with no cluster and exit 0", () => {
  const client = ferry("version", "--client");
  assert.equal(client.status, 0, client.stderr);
  assert.match(client.stdout, /^ferry: v\d+\.\d+\.\d+\n$/);
  assert.match(ferry("--version").stdout, /^ferry \d+\.\d+\.\d+/);
});

test("ferry version without a reachable cluster prints the client version, then the error, and exits 1", () => {
  const result = ferry("version", "--kubeconfig=/nonexistent/kubeconfig", "-o", "json");
  assert.equal(result.status, 1);
  assert.match(JSON.parse(result.stdout).client.version, /^v\d+\.\d+\.\d+$/);
  assert.match(result.stderr, /cannot load kubeconfig \/nonexistent\/kubeconfig/);
});

test("ferry version, check and uninstall name the API server they cannot reach (exit 1)", async () => {
  const dir = await mkdtemp(join(tmpdir(), "ferry-unreachable-"));
  const kubeconfig = join(dir, "kubeconfig");
  // Port 1 on loopback: nothing listens there, so the connection is refused at once.
  await writeFile(kubeconfig, JSON.stringify({
    apiVersion: "v1", kind: "Config", "current-context": "x",
    clusters: [{ name: "c", cluster: { server: "https://127.0.0.1:1" } }],
    users: [{ name: "u", user: { token: "t" } }],
    contexts: [{ name: "x", context: { cluster: "c", user: "u" } }],
  }));
  try {
    const version = ferry("version", `--kubeconfig=${kubeconfig}`);
    assert.equal(version.status, 1);
    assert.match(version.stdout, /^ferry: v\d+\.\d+\.\d+\n$/);
    for (const result of [version, ferry("check", `--kubeconfig=${kubeconfig}`), ferry("uninstall", "--silent", `--kubeconfig=${kubeconfig}`)]) {
      assert.equal(result.status, 1);
      assert.match(result.stderr, /✗ cannot reach the Kubernetes API server at https:\/\/127\.0\.0\.1:1: .*ECONNREFUSED/);
    }
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
});

test("ferry uninstall refuses to run unconfirmed when stdin is not a terminal (exit 2), and --help shows its usage", () => {
  const refused = ferry("uninstall", "--kubeconfig=/nonexistent/kubeconfig");
  assert.equal(refused.status, 2);
  assert.match(refused.stderr, /pass --silent/);
  assert.match(ferry("uninstall", "--help").stdout, /--keep-namespace[\s\S]*Examples:/);
});

test("an unknown command exits 2 and names the command on stderr", () => {
  const result = ferry("launch");
  assert.equal(result.status, 2);
  assert.match(result.stderr, /unknown command "launch"/);
});

test("create kustomization --export prints the Kustomization flux would, with no cluster", () => {
  const result = ferry(
    "create", "kustomization", "podinfo", "-n", "apps", "--export",
    "--source=OCIRepository/podinfo.sources", "--path=kustomize/../deploy/", "--interval=10m", "--prune",
    "--health-check=Deployment/podinfo.apps", "--health-check=StatefulSet/cache", "--depends-on=infra,ops/db",
    "--service-account=deployer", "--name-prefix=p-", "--name-suffix=-s", "--force", "--retry-interval=30s", "--target-namespace=web",
  );
  assert.equal(result.status, 0, result.stderr);
  assert.ok(result.stdout.startsWith("---\n"));
  assert.deepEqual(yaml.load(result.stdout), {
    apiVersion: "kustomize.ferry.dev/v1",
    kind: "Kustomization",
    metadata: { name: "podinfo", namespace: "apps" },
    spec: {
      dependsOn: [{ name: "infra" }, { namespace: "ops", name: "db" }],
      force: true,
      healthChecks: [{ kind: "Deployment", name: "podinfo", namespace: "apps" }, { kind: "StatefulSet", name: "cache" }],
      interval: "10m",
      namePrefix: "p-",
      nameSuffix: "-s",
      path: "./deploy/",
      prune: true,
      retryInterval: "30s",
      serviceAccountName: "deployer",
      sourceRef: { kind: "OCIRepository", name: "podinfo", namespace: "sources" },
      targetNamespace: "web",
      timeout: "2m",
    },
  });
  // flux's order: keys sorted, so exports diff cleanly.
  assert.match(result.stdout, /spec:\n {2}dependsOn:[\s\S]*\n {2}force:[\s\S]*\n {2}interval:[\s\S]*\n {2}sourceRef:/);
});

test("create kustomization --export defaults: --source NAME is an OCIRepository, path ./, interval 1m, prune false", () => {
  const result = ferry("create", "kustomization", "podinfo", "--source", "podinfo", "--wait", "--health-check-timeout=3m", "--export");
  assert.equal(result.status, 0, result.stderr);
  const object = yaml.load(result.stdout) as { metadata: { namespace: string }; spec: Record<string, unknown> };
  assert.equal(object.metadata.namespace, "default");
  assert.deepEqual(object.spec, {
    interval: "1m", path: "./", prune: false, sourceRef: { kind: "OCIRepository", name: "podinfo" }, timeout: "3m", wait: true,
  });
});

test("create kustomization refuses bad flags as usage errors (exit 2)", () => {
  const cases: Array<[string[], RegExp]> = [
    [[], /--source is required/],
    [["--source=GitRepository/podinfo"], /--source kind must be OCIRepository/],
    [["--source=podinfo.a.b"], /--source must be/],
    [["--source=podinfo", "--interval=10"], /--interval must be a duration/],
    [["--source=podinfo", "--health-check=Pod/x.y"], /--health-check kind "Pod"/],
    [["--source=podinfo", "--health-check=Deployment"], /--health-check must be KIND\/NAME/],
    [["--source=podinfo", "--depends-on=a/b/c"], /--depends-on must be NAME or NAMESPACE\/NAME/],
    [["--source=podinfo", "--label=a"], /--label must be KEY=VALUE/],
    [["--source=podinfo", "--target-namespace=Not_A_Namespace!".repeat(5)], /invalid Kustomization: targetNamespace/],
    [["--source=podinfo", "--bogus"], /Unknown option '--bogus'/],
  ];
  for (const [flags, message] of cases) {
    assert.throws(() => kustomizationManifest("podinfo", "default", parse(flags, CREATE_OPTIONS).values), (error: Error) => {
      assert.ok(error instanceof UsageError, `${flags.join(" ")}: ${error.name}`);
      assert.match(error.message, message);
      return true;
    });
  }
  assert.throws(() => kustomizationManifest("Podinfo_1", "default", { source: "podinfo" }), /RFC 1123/);
  // One through the binary, for the exit code and stderr.
  const result = ferry("create", "kustomization", "podinfo", "--source=Bucket/podinfo", "--export");
  assert.equal(result.status, 2);
  assert.match(result.stderr, /^✗ --source kind must be OCIRepository/);
});

test("diff kustomization and get all refuse missing or stray arguments with exit 2", () => {
  const noPath = ferry("diff", "kustomization", "podinfo");
  assert.equal(noPath.status, 2);
  assert.match(noPath.stderr, /--path is required/);
  const stray = ferry("get", "all", "podinfo");
  assert.equal(stray.status, 2);
  assert.match(stray.stderr, /get all takes no names/);
});

test("the create helpers parse flux's formats", () => {
  assert.deepEqual(parseSourceRef("OCIRepository/podinfo"), { kind: "OCIRepository", name: "podinfo" });
  assert.deepEqual(parseSourceRef("ocirepository/podinfo.flux-system"), { kind: "OCIRepository", name: "podinfo", namespace: "flux-system" });
  assert.deepEqual(parseDependsOn(["a", "b/c,d"]), [{ name: "a" }, { namespace: "b", name: "c" }, { name: "d" }]);
  assert.deepEqual(parseHealthChecks(["Kustomization/infra.flux-system"]), [
    { apiVersion: "kustomize.ferry.dev/v1", kind: "Kustomization", name: "infra", namespace: "flux-system" },
  ]);
  assert.equal(safeRelativePath("./"), "./");
  assert.equal(safeRelativePath(""), "./");
  assert.equal(safeRelativePath("apps/podinfo"), "./apps/podinfo");
  assert.equal(safeRelativePath("../../etc"), "./etc");
  const patch = replacementPatch({ a: 1, b: { c: 1, d: 2 }, e: [1] }, { b: { c: 2 }, e: [2] });
  assert.deepEqual(patch, { a: null, b: { c: 2, d: null }, e: [2] });
});

test("the diff shows changed YAML lines under the path of their keys, without server-maintained fields", () => {
  const live = {
    apiVersion: "apps/v1", kind: "Deployment",
    metadata: { name: "podinfo", namespace: "apps", resourceVersion: "41", generation: 3, uid: "u", managedFields: [{ manager: "ferry" }] },
    spec: { minReadySeconds: 3, replicas: 2, template: { spec: { containers: [{ name: "podinfod", image: "podinfo:6.0" }] } } },
    status: { replicas: 2 },
  };
  const merged = structuredClone(live);
  merged.metadata.resourceVersion = "42";
  merged.metadata.generation = 4;
  merged.spec.minReadySeconds = 5;
  merged.status.replicas = 3;
  const { before, after } = comparableYaml(live, merged);
  assert.doesNotMatch(before, /resourceVersion|managedFields|generation|uid|status/);
  const diff = formatDiff(before, after);
  assert.match(diff, /^@@ spec @@\n/);
  assert.match(diff, /\n- {3}minReadySeconds: 3\n\+ {3}minReadySeconds: 5\n/);
  assert.doesNotMatch(diff, /image/);
  assert.equal(formatDiff(before, before), "");
  const image = structuredClone(live);
  (image.spec.template.spec.containers[0] as { image: string }).image = "podinfo:6.1";
  const nested = formatDiff(...Object.values(comparableYaml(live, image)) as [string, string]);
  assert.match(nested, /@@ spec\.template\.spec\.containers @@/);
  assert.match(nested, /\n- {9}- image: podinfo:6\.0\n\+ {9}- image: podinfo:6\.1\n/);
});

test("the diff masks Secret values, saying only whether they changed", () => {
  const secret = (data: Record<string, string>) => ({ apiVersion: "v1", kind: "Secret", metadata: { name: "s" }, data });
  const { before, after } = comparableYaml(secret({ same: "YQ==", changed: "Yg==" }), secret({ same: "YQ==", changed: "Yw==", added: "ZA==" }));
  const diff = formatDiff(before, after);
  assert.doesNotMatch(before + after, /YQ==|Yg==|Yw==|ZA==/);
  assert.match(diff, /\n- {3}changed: '\*{5} \(before\)'\n/);
  assert.match(diff, /\n\+ {3}changed: '\*{5} \(after\)'\n/);
  assert.match(diff, /\+ {3}added: '\*{5} \(after\)'/);
  assert.doesNotMatch(diff, /[-+] {3}same/);
});

test("lineDiff keeps the longest common subsequence", () => {
  const ops = lineDiff(["a", "b", "c", "d"], ["a", "x", "c", "d", "e"]);
  assert.deepEqual(ops.map((op) => `${op.kind}${op.line}`), [" a", "-b", "+x", " c", " d", "+e"]);
});

test("flags named no-… (flux's --no-cross-namespace-refs) are flags of their own, not negations; --flag=false works for them too", () => {
  const options = { "no-cross-namespace-refs": { type: "boolean" }, wait: { type: "boolean" } } as const;
  assert.deepEqual({ ...parse(["--no-cross-namespace-refs", "--no-wait"], options).values }, { "no-cross-namespace-refs": true, wait: false });
  assert.deepEqual({ ...parse(["--no-cross-namespace-refs=false"], options).values }, { "no-cross-namespace-refs": false });
  assert.deepEqual({ ...parse([], options).values }, {});
});
