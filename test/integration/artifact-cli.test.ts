// The artifact commands against real registries, and interoperability with flux, crane and oras.
import assert from "node:assert/strict";
import { execFile } from "node:child_process";
import { createHash } from "node:crypto";
import { mkdir, mkdtemp, readFile, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, before, describe, test } from "node:test";
import { promisify } from "node:util";
import { skipUnlessBuilt } from "../harness/binaries.ts";
import { ferry, ferryOk } from "../harness/ferry.ts";
import { type Registry, type RegistryKind, startRegistry } from "../harness/registry.ts";
import { runTool } from "../harness/tools.ts";
import { readTree, treeDifferences } from "../harness/trees.ts";

const CORPORA = join(import.meta.dirname, "..", "..", "..", "shared", "corpora");
const PODINFO = join(CORPORA, "podinfo");
const KUBE_PROMETHEUS = join(CORPORA, "kube-prometheus", "manifests");
const REVISION = "main@sha1:0123456789abcdef0123456789abcdef01234567";
const exec = promisify(execFile);

for (const kind of ["zot", "distribution"] as const satisfies readonly RegistryKind[]) {
  describe(`artifact commands on ${kind}`, { skip: skipUnlessBuilt(kind === "zot" ? "zot" : "registry", "flux", "crane", "oras") }, () => {
    let registry: Registry;
    let dir: string;
    const url = (path: string) => `oci://${registry.host}/${path}`;
    const push = (path: string, source: string, ...extra: string[]) =>
      ferryOk(["push", "artifact", url(path), `--path=${source}`, "--source=https://github.com/ferry/demo", `--revision=${REVISION}`, "--insecure-registry", ...extra]);

    before(async () => {
      registry = await startRegistry({ kind });
      dir = await mkdtemp(join(tmpdir(), `ferry-artifacts-${kind}-`));
    });
    after(async () => {
      await registry?.stop();
      await rm(dir, { recursive: true, force: true });
    });

    test("push prints the digest; crane and oras see Flux's media types and annotations", async () => {
      const pushed = await push("apps/podinfo:v1", join(PODINFO, "kustomize"), "--annotations=team=platform");
      const digest = pushed.stdout.trim();
      assert.match(digest, /^sha256:[a-f0-9]{64}$/);
      assert.match(pushed.stderr, /artifact successfully pushed/);

      const manifestBytes = (await runTool("crane", ["manifest", `${registry.host}/apps/podinfo:v1`])).stdout;
      assert.equal((await runTool("crane", ["digest", `${registry.host}/apps/podinfo:v1`])).stdout.toString().trim(), digest);
      const manifest = JSON.parse(manifestBytes.toString());
      assert.equal(manifest.mediaType, "application/vnd.oci.image.manifest.v1+json");
      assert.equal(manifest.config.mediaType, "application/vnd.cncf.flux.config.v1+json");
      assert.equal(manifest.layers.length, 1);
      assert.equal(manifest.layers[0].mediaType, "application/vnd.cncf.flux.content.v1.tar+gzip");
      assert.equal(manifest.artifactType, undefined);
      assert.equal(manifest.annotations["org.opencontainers.image.source"], "https://github.com/ferry/demo");
      assert.equal(manifest.annotations["org.opencontainers.image.revision"], REVISION);
      assert.match(manifest.annotations["org.opencontainers.image.created"], /^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ$/);
      assert.equal(manifest.annotations.team, "platform");

      const fetched = await runTool("oras", ["manifest", "fetch", "--plain-http", `${registry.host}/apps/podinfo@${digest}`]);
      assert.ok(fetched.stdout.equals(manifestBytes), "oras and crane read different manifest bytes");
      const config = JSON.parse((await runTool("crane", ["config", `${registry.host}/apps/podinfo:v1`])).stdout.toString());
      assert.equal(config.created, manifest.annotations["org.opencontainers.image.created"]);
      assert.match(config.rootfs.diff_ids[0], /^sha256:[a-f0-9]{64}$/);
    });

    test("the bundled CLI that users run (dist/ferry.mjs) pushes and pulls the same artifact", async () => {
      const source = join(PODINFO, "kustomize");
      const common = ["--source=https://github.com/ferry/demo", `--revision=${REVISION}`, "--insecure-registry", "--reproducible"];
      const bundled = await ferryOk(["push", "artifact", url("apps/bundled:v1"), `--path=${source}`, ...common], { bundle: true });
      const fromSource = await push("apps/bundled:v2", source, "--reproducible");
      assert.equal(bundled.stdout.trim(), fromSource.stdout.trim());
      const output = join(dir, "bundled-pull");
      await ferryOk(["pull", "artifact", url("apps/bundled:v1"), `--output=${output}`, "--insecure-registry"], { bundle: true });
      assert.deepEqual(treeDifferences(await readTree(source), await readTree(output)), []);
    });

    test("-o json prints url, repository, tag and digest", async () => {
      const result = await push("apps/json:v2", join(PODINFO, "kustomize"), "-o", "json");
      const output = JSON.parse(result.stdout);
      assert.deepEqual(Object.keys(output).sort(), ["digest", "repository", "tag", "url"]);
      assert.equal(output.repository, `${registry.host}/apps/json`);
      assert.equal(output.tag, "v2");
      assert.equal(output.url, `oci://${registry.host}/apps/json@${output.digest}`);
    });

    test("ferry pushes, flux pull artifact extracts identical files", async () => {
      const source = join(PODINFO, "deploy");
      await push("interop/ferry-to-flux:v1", source);
      const output = join(dir, "flux-pulled");
      await mkdir(output);
      await runTool("flux", ["pull", "artifact", url("interop/ferry-to-flux:v1"), `--output=${output}`, "--insecure-registry"]);
      assert.deepEqual(treeDifferences(await readTree(source), await readTree(output)), []);
    });

    test("flux pushes, ferry pull artifact extracts identical files", async () => {
      const source = join(PODINFO, "deploy");
      await runTool("flux", [
        "push", "artifact", url("interop/flux-to-ferry:v1"), `--path=${source}`,
        "--source=https://github.com/stefanprodan/podinfo", `--revision=${REVISION}`, "--insecure-registry",
      ]);
      const output = join(dir, "ferry-pulled");
      const pulled = await ferryOk(["pull", "artifact", url("interop/flux-to-ferry:v1"), `--output=${output}`, "--insecure-registry"]);
      assert.match(pulled.stderr, /source https:\/\/github.com\/stefanprodan\/podinfo/);
      assert.match(pulled.stderr, new RegExp(`revision ${REVISION}`));
      assert.deepEqual(treeDifferences(await readTree(source), await readTree(output)), []);
    });

    test("kube-prometheus round-trips intact and a reproducible push gives one digest in any time zone", async () => {
      const first = await push("corpora/kube-prometheus:v1", KUBE_PROMETHEUS, "--reproducible");
      const second = await ferryOk(
        ["push", "artifact", url("corpora/kube-prometheus:v2"), `--path=${KUBE_PROMETHEUS}`,
          "--source=https://github.com/ferry/demo", `--revision=${REVISION}`, "--insecure-registry", "--reproducible"],
        { env: { TZ: "Pacific/Kiritimati" } },
      );
      assert.equal(first.stdout.trim(), second.stdout.trim());
      const manifest = JSON.parse((await runTool("crane", ["manifest", `${registry.host}/corpora/kube-prometheus:v1`])).stdout.toString());
      assert.equal(manifest.annotations["org.opencontainers.image.created"], "1970-01-01T00:00:00Z");

      const output = join(dir, "kube-prometheus");
      await ferryOk(["pull", "artifact", url(`corpora/kube-prometheus@${first.stdout.trim()}`), `--output=${output}`, "--insecure-registry"]);
      assert.deepEqual(treeDifferences(await readTree(KUBE_PROMETHEUS), await readTree(output)), []);

      // Its layer (5.7 MB of tar) is gzipped in blocks compressed in parallel: Go's gzip reader in flux must read it.
      const fluxOutput = join(dir, "kube-prometheus-flux");
      await mkdir(fluxOutput);
      await runTool("flux", ["pull", "artifact", url("corpora/kube-prometheus:v1"), `--output=${fluxOutput}`, "--insecure-registry"]);
      assert.deepEqual(treeDifferences(await readTree(KUBE_PROMETHEUS), await readTree(fluxOutput)), []);
    });

    test("tag adds tags; list shows tag, digest, source and revision and filters by semver", async () => {
      const digest = (await push("apps/tagged:1.0.0", join(PODINFO, "kustomize"))).stdout.trim();
      await ferryOk(["tag", "artifact", url("apps/tagged:1.0.0"), "--tag=1.1.0", "--tag=latest", "--insecure-registry"]);
      await push("apps/tagged:2.0.0", join(PODINFO, "deploy"));

      const listed = JSON.parse((await ferryOk(["list", "artifacts", url("apps/tagged"), "--insecure-registry", "-o", "json"])).stdout);
      assert.deepEqual(listed.map((artifact: { tag: string }) => artifact.tag), ["latest", "2.0.0", "1.1.0", "1.0.0"]);
      const byTag = Object.fromEntries(listed.map((artifact: { tag: string; digest: string }) => [artifact.tag, artifact.digest]));
      assert.equal(byTag["1.1.0"], digest);
      assert.equal(byTag.latest, digest);
      assert.equal(listed[0].source, "https://github.com/ferry/demo");
      assert.equal(listed[0].revision, REVISION);

      const ranged = JSON.parse((await ferryOk(["list", "artifacts", url("apps/tagged"), "--semver=>=1.1.0 <2.0.0", "--insecure-registry", "-o", "json"])).stdout);
      assert.deepEqual(ranged.map((artifact: { tag: string }) => artifact.tag), ["1.1.0"]);
      const asYaml = (await ferryOk(["list", "artifacts", url("apps/tagged"), "--semver=2.x", "--insecure-registry", "-o", "yaml"])).stdout;
      assert.match(asYaml, /^- url: oci:\/\/.*\/apps\/tagged:2\.0\.0\n {2}tag: 2\.0\.0\n {2}digest: sha256:/);
      const table = (await ferryOk(["list", "artifacts", url("apps/tagged"), "--insecure-registry"])).stdout;
      assert.match(table, /^ARTIFACT\s+DIGEST\s+SOURCE\s+REVISION/);
      assert.match(table, new RegExp(`${registry.host}/apps/tagged:1.0.0\\s+${digest}`));
    });

    test("inside a git checkout, --source and --revision default to the origin URL and <branch>@sha1:<commit>", async () => {
      const repo = join(dir, "checkout");
      await mkdir(join(repo, "deploy"), { recursive: true });
      await writeFile(join(repo, "deploy", "cm.yaml"), "kind: ConfigMap\n");
      const git = (...args: string[]) => exec("git", ["-C", repo, "-c", "user.name=ci", "-c", "user.email=ci@example.com", ...args]);
      await git("init", "-q", "-b", "release");
      await git("remote", "add", "origin", "https://git.example.com/acme/app.git");
      await git("add", ".");
      await git("commit", "-q", "-m", "initial");
      const sha = (await git("rev-parse", "HEAD")).stdout.trim();
      const noGitHub = { GITHUB_ACTIONS: "" };
      await ferryOk(["push", "artifact", url("apps/from-git:v1"), "--path=deploy", "--insecure-registry"], { cwd: repo, env: noGitHub });
      let manifest = JSON.parse((await runTool("crane", ["manifest", `${registry.host}/apps/from-git:v1`])).stdout.toString());
      assert.equal(manifest.annotations["org.opencontainers.image.source"], "https://git.example.com/acme/app.git");
      assert.equal(manifest.annotations["org.opencontainers.image.revision"], `release@sha1:${sha}`);

      await git("tag", "v1.2.3");
      await ferryOk(["push", "artifact", url("apps/from-git:v2"), "--path=deploy", "--insecure-registry", "--source=https://override"], {
        cwd: repo,
        env: noGitHub,
      });
      manifest = JSON.parse((await runTool("crane", ["manifest", `${registry.host}/apps/from-git:v2`])).stdout.toString());
      assert.equal(manifest.annotations["org.opencontainers.image.source"], "https://override", "flags win over detection");
      assert.equal(manifest.annotations["org.opencontainers.image.revision"], `v1.2.3@sha1:${sha}`);

      const outside = await ferry(["push", "artifact", url("apps/from-git:v3"), `--path=${repo}`, "--insecure-registry"], { cwd: tmpdir(), env: noGitHub });
      assert.equal(outside.status, 2);
      assert.match(outside.stderr, /--source is required outside a git checkout/);
    });

    test("build artifact writes exactly the layer that push uploads", async () => {
      const source = join(PODINFO, "kustomize");
      const output = join(dir, "built.tgz");
      const built = await ferryOk(["build", "artifact", `--path=${source}`, `--output=${output}`]);
      assert.match(built.stderr, /artifact built to .*built\.tgz/);
      const layerDigest = `sha256:${createHash("sha256").update(await readFile(output)).digest("hex")}`;
      await push("apps/built:v1", source);
      const manifest = JSON.parse((await runTool("crane", ["manifest", `${registry.host}/apps/built:v1`])).stdout.toString());
      assert.equal(manifest.layers[0].digest, layerDigest);
      const listing = await exec("tar", ["-tzf", output]);
      assert.deepEqual(listing.stdout.trim().split("\n").sort(), [".", "deployment.yaml", "hpa.yaml", "kustomization.yaml", "service.yaml"]);
    });

    test("diff compares content and names the files that differ", async () => {
      const local = join(dir, "diff-local");
      await mkdir(join(local, "apps"), { recursive: true });
      await writeFile(join(local, "apps", "a.yaml"), "kind: ConfigMap\n");
      await writeFile(join(local, "b.yaml"), "kind: Secret\n");
      await push("apps/diff:v1", local);

      const same = await ferry(["diff", "artifact", url("apps/diff:v1"), `--path=${local}`, "--insecure-registry"]);
      assert.equal(same.status, 0, same.stderr);
      assert.match(same.stderr, /no changes detected/);

      await writeFile(join(local, "apps", "a.yaml"), "kind: ConfigMap\ndata: {}\n");
      await writeFile(join(local, "c.yaml"), "kind: Service\n");
      await rm(join(local, "b.yaml"));
      const changed = await ferry(["diff", "artifact", url("apps/diff:v1"), `--path=${local}`, "--insecure-registry"]);
      assert.equal(changed.status, 1);
      assert.deepEqual(changed.stdout.trim().split("\n"), ["~ apps/a.yaml", "- b.yaml", "+ c.yaml"]);
    });
  });
}
