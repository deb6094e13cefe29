// OCIRepository fields read as source-controller reads them, end to end against zot and the real apiserver:
// ref.semver with Masterminds' constraints (not node-semver's); what an extracted artifact leaves out (spec.ignore,
// .sourceignore files at every level, Flux's defaults), on artifacts pushed by Flux's own CLI; spec.provider's cloud
// values, accepted by the CRD and refused by the controller until workload identity exists.
import assert from "node:assert/strict";
import { mkdir, readdir, writeFile } from "node:fs/promises";
import { dirname, join } from "node:path";
import { after, before, describe, test } from "node:test";
import { skipUnlessBuilt } from "../harness/binaries.ts";
import { type Condition, DeliveryBed } from "../harness/delivery.ts";
import { ferryOk } from "../harness/ferry.ts";
import { waitUntil } from "../harness/processes.ts";
import { runTool } from "../harness/tools.ts";

interface ObservedSource {
  spec?: { provider?: string };
  status?: { conditions?: Condition[]; artifact?: { revision: string; path: string }; observedGeneration?: number };
}

describe("OCIRepository Flux parity", { skip: skipUnlessBuilt("etcd", "kube-apiserver", "kube-controller-manager", "kube-scheduler", "kubectl", "kwok", "zot", "flux", "crane", "oras") }, () => {
  let bed: DeliveryBed;
  let content: string;

  before(async () => {
    bed = await DeliveryBed.start();
    // Only OCIRepositories here: kustomize never runs, so no sandbox is needed.
    bed.startController(["--insecure-unconfined-builds"]);
    content = join(bed.dir, "content");
    await mkdir(content, { recursive: true });
    await writeFile(join(content, "configmap.yaml"), "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: demo\n");
  });
  after(async () => {
    await bed?.stop();
  });

  async function source(name: string, spec: Record<string, unknown>): Promise<void> {
    await bed.applyObjects([{
      apiVersion: "source.ferry.dev/v1",
      kind: "OCIRepository",
      metadata: { namespace: "default", name },
      spec: { interval: "1h", insecure: true, ...spec },
    }]);
  }

  async function waitForSource(name: string, description: string, check: (object: ObservedSource) => boolean): Promise<ObservedSource> {
    let last: ObservedSource | undefined;
    await waitUntil(`${name}: ${description}`, async () => check((last = await bed.getJson(["ocirepository", name, "-n", "default"]) as ObservedSource)), {
      timeoutMs: 60_000,
      intervalMs: 300,
      ...(bed.controller ? { process: bed.controller } : {}),
    }).catch((error: Error) => {
      throw new Error(`${error.message}\nlast status: ${JSON.stringify(last?.status, null, 2)}`);
    });
    return last as ObservedSource;
  }

  /** Every file under `root`, relative, sorted. */
  async function files(root: string): Promise<string[]> {
    const entries = await readdir(root, { recursive: true, withFileTypes: true });
    return entries.filter((entry) => entry.isFile()).map((entry) => join(entry.parentPath, entry.name).slice(root.length + 1)).sort();
  }

  /** Pushes `tree` with Flux's CLI, leaving nothing out (flux push has its own defaults, which would hide ours). */
  async function fluxPush(repository: string, tree: Record<string, string>): Promise<string> {
    const path = join(bed.dir, repository.replaceAll("/", "-"));
    for (const [file, text] of Object.entries(tree)) {
      await mkdir(dirname(join(path, file)), { recursive: true });
      await writeFile(join(path, file), text);
    }
    await runTool("flux", [
      "push", "artifact", `oci://${bed.registry.host}/${repository}:v1`, `--path=${path}`, "--source=e2e", "--revision=r",
      "--ignore-paths=nothing-is-ignored-at-push", "--insecure-registry",
    ]);
    const manifest = await runTool("crane", ["digest", "--insecure", `${bed.registry.host}/${repository}:v1`]);
    return manifest.stdout.toString().trim();
  }

  const conditionOf = (object: ObservedSource, type: string) => object.status?.conditions?.find((condition) => condition.type === type);
  const ready = (object: ObservedSource) => object.status?.conditions?.find((condition) => condition.type === "Ready");

  // node-semver refuses ">=1.0, <2.0" (the old code stalled with "invalid semver range") and picks 1.2.3-beta.2 for
  // "~1.2.3-beta.2"; Masterminds reads the comma as AND and lets a tilde's prerelease range over the minor.
  test("ref.semver selects among real tags as Masterminds does: comma is AND, prereleases stay out, short tags are skipped", async () => {
    const tags = ["1.5.0", "v1.7.0", "1.8", "1.9.0-rc.1", "2.0.0", "1.2.3-beta.2", "1.2.4-beta.2"];
    const digests = new Map<string, string>();
    for (const tag of tags) digests.set(tag, await bed.push(content, "parity/semver", tag));
    const url = `oci://${bed.registry.host}/parity/semver`;
    await source("semver-and", { url, ref: { semver: ">=1.0, <2.0" } });
    await source("semver-tilde-pre", { url, ref: { semver: "~1.2.3-beta.2" } });
    await source("semver-filtered", { url, ref: { semver: ">=1.0.0-0", semverFilter: "^1\\.[0-8]\\." } });
    await source("semver-none", { url, ref: { semver: ">=1.0, <2.0, !=1.5.0, !=1.7.0" } });

    // "1.8" is not a version to source-controller (fluxcd/pkg/version wants three parts); 1.9.0-rc.1 is a prerelease.
    await waitForSource("semver-and", "the highest 1.x release", (o) => o.status?.artifact?.revision === `v1.7.0@${digests.get("v1.7.0")}`);
    await waitForSource("semver-tilde-pre", "1.2.4-beta.2", (o) => o.status?.artifact?.revision === `1.2.4-beta.2@${digests.get("1.2.4-beta.2")}`);
    // The filter (unanchored Go regexp) runs before the constraint: v1.7.0, 1.9.0-rc.1 and 2.0.0 are out.
    await waitForSource("semver-filtered", "the highest tag the filter keeps", (o) => o.status?.artifact?.revision === `1.5.0@${digests.get("1.5.0")}`);
    const none = await waitForSource("semver-none", "no match", (o) => ready(o)?.status === "False");
    assert.equal(ready(none)?.reason, "ReadOperationFailed");
    assert.equal(ready(none)?.message, `failed to determine the artifact tag for '${url}': no match found for semver: >=1.0, <2.0, !=1.5.0, !=1.7.0`);

    // A constraint Masterminds refuses stalls until the spec changes, with Masterminds' reason.
    await source("semver-invalid", { url, ref: { semver: ">= bar" } });
    const invalid = await waitForSource("semver-invalid", "stalled", (o) => conditionOf(o, "Stalled")?.status === "True");
    assert.equal(ready(invalid)?.reason, "ReadOperationFailed");
    assert.equal(ready(invalid)?.message, `failed to determine the artifact tag for '${url}': semver '>= bar' parse error: improper constraint: ">= bar"`);
  });

  // The old code applied only spec.ignore and the root .sourceignore, and nothing at all without spec.ignore.
  test("without spec.ignore or .sourceignore, Flux's default exclusions leave VCS, CI, image and .sops.yaml files out", async () => {
    const digest = await fluxPush("parity/defaults", {
      "app.yaml": "kind: ConfigMap\n",
      "nested/app.yaml": "kind: ConfigMap\n",
      ".github/workflows/ci.yml": "on: push\n",
      ".gitlab-ci.yml": "stages: []\n",
      "docs/logo.png": "png",
      "nested/.sops.yaml": "creation_rules: []\n",
      "bundle.tar.gz": "tgz",
    });
    await source("ignore-defaults", { url: `oci://${bed.registry.host}/parity/defaults`, ref: { tag: "v1" } });
    const object = await waitForSource("ignore-defaults", "Ready", (o) => o.status?.artifact?.revision === `v1@${digest}`);
    assert.deepEqual(await files(join(bed.dir, "cache", object.status?.artifact?.path ?? "")), ["app.yaml", "nested/app.yaml"]);
  });

  test(".sourceignore files at every level apply below their directory; spec.ignore comes last; any pattern turns the defaults off", async () => {
    const digest = await fluxPush("parity/sourceignore", {
      ".sourceignore": "*.md\n",
      "README.md": "# readme\n",
      "logo.png": "kept: a pattern exists, so Flux's defaults are off",
      "team/.sourceignore": "local.yaml\n!NOTES.md\n",
      "team/local.yaml": "kind: ConfigMap\n",
      "team/deploy.yaml": "kind: ConfigMap\n",
      "team/NOTES.md": "re-included below team/\n",
      "other/local.yaml": "kind: ConfigMap\n",
      "docs/guide.md": "# guide\n",
      "docs/keep.yaml": "kind: ConfigMap\n",
    });
    await source("ignore-nested", { url: `oci://${bed.registry.host}/parity/sourceignore`, ref: { tag: "v1" }, ignore: "docs/\n!docs/keep.yaml\n" });
    const object = await waitForSource("ignore-nested", "Ready", (o) => o.status?.artifact?.revision === `v1@${digest}`);
    assert.deepEqual(await files(join(bed.dir, "cache", object.status?.artifact?.path ?? "")), [
      ".sourceignore", "docs/keep.yaml", "logo.png", "other/local.yaml", "team/.sourceignore", "team/NOTES.md", "team/deploy.yaml",
    ]);
  });

  // Flux asks the cloud for credentials only when no static ones are configured; Ferry cannot yet, and says so.
  test("provider aws, azure or gcp without credentials stalls with ProviderNotSupported; with a secretRef the secret is used", async () => {
    const digest = await bed.push(content, "parity/provider", "v1");
    const url = `oci://${bed.registry.host}/parity/provider`;
    for (const provider of ["aws", "azure", "gcp"]) await source(`provider-${provider}`, { url, ref: { tag: "v1" }, provider });
    for (const provider of ["aws", "azure", "gcp"]) {
      const object = await waitForSource(`provider-${provider}`, "refused", (o) => ready(o)?.status === "False");
      assert.equal(object.spec?.provider, provider, "the CRD kept the provider");
      assert.equal(ready(object)?.reason, "ProviderNotSupported");
      assert.equal(
        ready(object)?.message,
        `failed to get credential from ${provider}: workload identity for provider '${provider}' is not supported by Ferry yet; `
        + "use provider 'generic' with spec.secretRef or the imagePullSecrets of spec.serviceAccountName",
      );
      const conditions = object.status?.conditions ?? [];
      assert.equal(conditions.find((c) => c.type === "Stalled")?.status, "True");
      assert.equal(conditions.find((c) => c.type === "FetchFailed")?.reason, "ProviderNotSupported");
      assert.equal(object.status?.artifact, undefined, "nothing was pulled anonymously");
    }
    // zot here needs no credentials; any dockerconfigjson shows that the secret, not the provider, is what counts.
    const auth = Buffer.from("user:password").toString("base64");
    await bed.applyObjects([{
      apiVersion: "v1",
      kind: "Secret",
      metadata: { namespace: "default", name: "static-creds" },
      type: "kubernetes.io/dockerconfigjson",
      stringData: { ".dockerconfigjson": JSON.stringify({ auths: { [bed.registry.host]: { auth } } }) },
    }]);
    await source("provider-gcp-static", { url, ref: { tag: "v1" }, provider: "gcp", secretRef: { name: "static-creds" } });
    await waitForSource("provider-gcp-static", "Ready with the secret's credentials", (o) => o.status?.artifact?.revision === `v1@${digest}`);
  });

  // The old code preferred matchOIDCIdentity when both were set, and so refused an artifact signed with the key.
  test("verify: secretRef takes precedence over matchOIDCIdentity; notation is accepted by the CRD and refused by the controller", async () => {
    const password = { COSIGN_PASSWORD: "parity" };
    await ferryOk(["keygen", "--output-key-prefix=parity"], { cwd: bed.dir, env: password });
    const url = `oci://${bed.registry.host}/parity/signed`;
    const signed = (await ferryOk(
      ["push", "artifact", `${url}:v1`, `--path=${content}`, "--source=e2e", "--revision=r", "--insecure-registry", "--sign", `--key=${join(bed.dir, "parity.key")}`],
      { env: password },
    )).stdout.trim();
    await bed.cluster.kubectl(["create", "secret", "generic", "parity-keys", "-n", "default", `--from-file=cosign.pub=${join(bed.dir, "parity.pub")}`]);
    const identity = { issuer: "^https://token\\.actions\\.githubusercontent\\.com$", subject: "^https://github\\.com/acme/.*$" };
    await source("verify-both", { url, ref: { tag: "v1" }, verify: { provider: "cosign", secretRef: { name: "parity-keys" }, matchOIDCIdentity: [identity] } });
    const verified = await waitForSource("verify-both", "verified with the key", (o) => o.status?.artifact?.revision === `v1@${signed}`);
    assert.equal(conditionOf(verified, "SourceVerified")?.status, "True");

    // Keyless against the public-good root: no such signature, and the failure names the provider as Flux does.
    await source("verify-keyless", { url, ref: { tag: "v1" }, verify: { provider: "cosign", matchOIDCIdentity: [identity] } });
    const keyless = await waitForSource("verify-keyless", "refused", (o) => conditionOf(o, "SourceVerified")?.status === "False");
    assert.match(conditionOf(keyless, "SourceVerified")?.message ?? "", /^failed to verify the signature using provider 'cosign keyless': /);

    await source("verify-notation", { url, ref: { tag: "v1" }, verify: { provider: "notation", secretRef: { name: "parity-keys" } } });
    const notation = await waitForSource("verify-notation", "refused", (o) => ready(o)?.status === "False");
    assert.equal(conditionOf(notation, "SourceVerified")?.status, "False");
    assert.equal(ready(notation)?.reason, "ProviderNotSupported");
    assert.match(ready(notation)?.message ?? "", /^failed to verify the signature using provider 'notation': notation verification is not supported by Ferry yet/);
    assert.equal(conditionOf(notation, "Stalled")?.status, "True");
    assert.equal(notation.status?.artifact, undefined, "an unverified artifact was offered");
  });

  // The old code took Flux's content layer wherever it was; source-controller takes the first layer.
  test("layerSelector: without a media type the first layer is extracted; a media type no layer has fails as in Flux", async () => {
    const layers = join(bed.dir, "layers");
    for (const [name, file] of [["first", "first.yaml"], ["content", "content.yaml"]] as const) {
      await mkdir(join(layers, name), { recursive: true });
      await writeFile(join(layers, name, file), "kind: ConfigMap\n");
    }
    for (const name of ["first", "content"]) await ferryOk(["build", "artifact", `--path=${join(layers, name)}`, `--output=${join(layers, `${name}.tgz`)}`]);
    const pushed = await runTool("oras", [
      "push", "--plain-http", "--format=json", `${bed.registry.host}/parity/layers:v1`,
      "first.tgz:application/vnd.acme.bundle.v1.tar+gzip", "content.tgz:application/vnd.cncf.flux.content.v1.tar+gzip",
    ], { cwd: layers });
    const digest = JSON.parse(pushed.stdout.toString()).digest as string;
    const url = `oci://${bed.registry.host}/parity/layers`;
    await source("layers-first", { url, ref: { tag: "v1" } });
    await source("layers-content", { url, ref: { tag: "v1" }, layerSelector: { mediaType: "application/vnd.cncf.flux.content.v1.tar+gzip" } });
    await source("layers-missing", { url, ref: { tag: "v1" }, layerSelector: { mediaType: "application/vnd.acme.other.v1.tar+gzip" } });
    const first = await waitForSource("layers-first", "Ready", (o) => o.status?.artifact?.revision === `v1@${digest}`);
    assert.deepEqual(await files(join(bed.dir, "cache", first.status?.artifact?.path ?? "")), ["first.yaml"]);
    const selected = await waitForSource("layers-content", "Ready", (o) => o.status?.artifact?.revision === `v1@${digest}`);
    assert.deepEqual(await files(join(bed.dir, "cache", selected.status?.artifact?.path ?? "")), ["content.yaml"]);
    const missing = await waitForSource("layers-missing", "refused", (o) => ready(o)?.status === "False");
    assert.equal(ready(missing)?.reason, "OCIArtifactLayerOperationFailed");
    assert.equal(ready(missing)?.message, "failed to find layer with media type 'application/vnd.acme.other.v1.tar+gzip' in artifact");
  });

  // Helm writes a chart's semver `+` as `_` in its tag; source-controller reads it back when the chart layer is selected.
  test("ref.semver over Helm chart tags maps _ to + (with the chart layer selected), and returns the tag as pushed", async () => {
    const charts = join(bed.dir, "charts");
    await mkdir(join(charts, "chart"), { recursive: true });
    await writeFile(join(charts, "chart", "Chart.yaml"), "apiVersion: v2\nname: demo\nversion: 1.0.0\n");
    await ferryOk(["build", "artifact", `--path=${join(charts, "chart")}`, `--output=${join(charts, "demo.tgz")}`]);
    const chartLayer = "application/vnd.cncf.helm.chart.content.v1.tar+gzip";
    const digests = new Map<string, string>();
    for (const tag of ["0.9.0", "1.0.0_build.1"]) {
      const pushed = await runTool("oras", ["push", "--plain-http", "--format=json", `${bed.registry.host}/parity/chart:${tag}`, `demo.tgz:${chartLayer}`], { cwd: charts });
      digests.set(tag, JSON.parse(pushed.stdout.toString()).digest as string);
    }
    const url = `oci://${bed.registry.host}/parity/chart`;
    await source("chart-semver", { url, ref: { semver: ">=0.1.0" }, layerSelector: { mediaType: chartLayer, operation: "copy" } });
    await waitForSource("chart-semver", "the +build tag", (o) => o.status?.artifact?.revision === `1.0.0_build.1@${digests.get("1.0.0_build.1")}`);
    // Without the chart layer selected, `_` is not semver: the tag is skipped.
    await source("chart-semver-plain", { url, ref: { semver: ">=0.1.0" } });
    await waitForSource("chart-semver-plain", "0.9.0", (o) => o.status?.artifact?.revision === `0.9.0@${digests.get("0.9.0")}`);
  });
});
