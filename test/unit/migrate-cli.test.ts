// `ferry migrate` without a cluster: files in, Ferry's objects or the plan out, refusals and usage errors as exit codes.
import assert from "node:assert/strict";
import { spawnSync } from "node:child_process";
import { mkdtemp, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, before, describe, it } from "node:test";
import yaml from "js-yaml";

const FERRY = join(import.meta.dirname, "..", "..", "cli", "ferry.ts");

function ferry(...args: string[]) {
  return spawnSync(process.execPath, [FERRY, ...args], { encoding: "utf8" });
}

// As `flux create source oci … --export` and `flux create kustomization … --export` write them.
const FLUX_EXPORT = `---
apiVersion: source.toolkit.fluxcd.io/v1
kind: OCIRepository
metadata:
  name: podinfo
  namespace: flux-system
spec:
  interval: 10m0s
  ref:
    tag: 6.1.6
  url: oci://ghcr.io/stefanprodan/manifests/podinfo
---
apiVersion: kustomize.toolkit.fluxcd.io/v1
kind: Kustomization
metadata:
  name: podinfo
  namespace: flux-system
spec:
  interval: 1m0s
  path: ./
  prune: true
  sourceRef:
    kind: OCIRepository
    name: podinfo
  targetNamespace: default
`;

const GIT = `apiVersion: kustomize.toolkit.fluxcd.io/v1
kind: Kustomization
metadata: { name: flux-system, namespace: flux-system }
spec: { interval: 10m0s, path: ./clusters/my-cluster, prune: true, sourceRef: { kind: GitRepository, name: flux-system } }
`;

describe("ferry migrate -f", () => {
  let dir: string;
  before(async () => {
    dir = await mkdtemp(join(tmpdir(), "ferry-migrate-cli-"));
    await writeFile(join(dir, "podinfo.yaml"), FLUX_EXPORT);
    await writeFile(join(dir, "git.yaml"), GIT);
  });
  after(async () => rm(dir, { recursive: true, force: true }));

  it("--export -o json prints Ferry's objects, field for field, with no cluster", () => {
    const result = ferry("migrate", "-f", join(dir, "podinfo.yaml"), "--export", "-o", "json");
    assert.equal(result.status, 0, result.stderr);
    const list = JSON.parse(result.stdout) as { items: Array<{ apiVersion: string; kind: string; spec: Record<string, unknown> }> };
    assert.deepEqual(list.items.map((item) => `${item.apiVersion} ${item.kind}`), ["source.ferry.dev/v1 OCIRepository", "kustomize.ferry.dev/v1 Kustomization"]);
    assert.deepEqual(list.items[0]?.spec, { interval: "10m0s", ref: { tag: "6.1.6" }, url: "oci://ghcr.io/stefanprodan/manifests/podinfo" });
  });

  it("--export prints YAML documents by default, reading stdin with -f -", () => {
    const result = spawnSync(process.execPath, [FERRY, "migrate", "-f", "-", "--export"], { encoding: "utf8", input: FLUX_EXPORT });
    assert.equal(result.status, 0, result.stderr);
    const documents = yaml.loadAll(result.stdout) as Array<{ apiVersion: string; metadata: { annotations: Record<string, string> } }>;
    assert.deepEqual(documents.map((document) => document.apiVersion), ["source.ferry.dev/v1", "kustomize.ferry.dev/v1"]);
    assert.equal(documents[1]?.metadata.annotations["migrate.ferry.dev/from"], "kustomize.toolkit.fluxcd.io/v1");
  });

  it("--dry-run prints the plan", () => {
    const result = ferry("migrate", "-f", join(dir, "podinfo.yaml"), "--dry-run");
    assert.equal(result.status, 0, result.stderr);
    assert.match(result.stdout, /^suspend Kustomization flux-system\/podinfo \(kustomize\.toolkit\.fluxcd\.io\/v1\)$/m);
    assert.match(result.stdout, /^create OCIRepository flux-system\/podinfo \(source\.ferry\.dev\/v1\)$/m);
  });

  it("refuses what it cannot translate with exit 1, naming it, and reads directories", () => {
    const result = ferry("migrate", "-f", dir, "--export");
    assert.equal(result.status, 1);
    assert.match(result.stderr, /Kustomization flux-system\/flux-system: spec\.sourceRef\.kind GitRepository/);
    assert.equal(result.stdout, "");
  });

  it("usage errors exit 2", () => {
    assert.equal(ferry("migrate", "-f", join(dir, "podinfo.yaml"), "-o", "json").status, 2);
    assert.equal(ferry("migrate", "-f", join(dir, "podinfo.yaml"), "--export", "-o", "table").status, 2);
    assert.equal(ferry("migrate", "--rollback", "--export").status, 2);
    assert.equal(ferry("migrate", "-A", "-n", "apps", "--dry-run").status, 2);
    assert.match(ferry("migrate", "--help").stdout, /--rollback[\s\S]*Examples:/);
  });
});
