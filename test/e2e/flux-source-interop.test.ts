// Ferry and Flux's own source-controller on one cluster and one registry, each reading what the other's side wrote:
// an artifact pushed and cosign-signed by `ferry push --sign` is fetched and verified by Flux's source-controller
// (the test bed's source-controller peer, v1.9.5 as flux v2.9.5 installs it, run out of cluster on Flux's generated
// CRDs), and an artifact pushed by `flux push artifact` is fetched and applied by Ferry's controller.
import assert from "node:assert/strict";
import { createHash } from "node:crypto";
import { execFile } from "node:child_process";
import { mkdir, writeFile } from "node:fs/promises";
import { join } from "node:path";
import { after, before, describe, test } from "node:test";
import { promisify } from "node:util";
import { skipUnlessBuilt } from "../harness/binaries.ts";
import { type Condition, DeliveryBed, readyWith } from "../harness/delivery.ts";
import { ferryOk } from "../harness/ferry.ts";
import { FLUX_CRDS_PEER_BINARY, FLUX_SOURCE_API_VERSION, installFluxCrds } from "../harness/flux-crds.ts";
import { probe } from "../harness/http.ts";
import { waitUntil } from "../harness/processes.ts";
import { type SourceController, startSourceController } from "../harness/source-controller.ts";
import { runTool } from "../harness/tools.ts";

const PASSWORD = { COSIGN_PASSWORD: "ferry-e2e-flux-interop" };
const FLUX_NAMESPACE = "flux-system";
const FLUX_OCI_REPOSITORY = "ocirepositories.source.toolkit.fluxcd.io";

interface FluxSource {
  metadata: { generation: number };
  status?: {
    observedGeneration?: number;
    conditions?: Condition[];
    artifact?: { revision: string; digest: string; url: string; path: string; size?: number };
  };
}

describe("Ferry and Flux's source-controller read each other's artifacts", {
  skip: skipUnlessBuilt("etcd", "kube-apiserver", "kube-controller-manager", "kube-scheduler", "kubectl", "kwok", "zot", "kustomize", "flux", "crane", "source-controller", FLUX_CRDS_PEER_BINARY),
}, () => {
  let bed: DeliveryBed;
  let sourceController: SourceController;
  let trees = 0;

  before(async () => {
    bed = await DeliveryBed.start();
    // Flux's source CRDs only: bed.kustomization() asks for `kustomization`, which must stay Ferry's.
    await installFluxCrds(bed.cluster, { group: "source.toolkit.fluxcd.io" });
    await bed.cluster.kubectl(["create", "namespace", FLUX_NAMESPACE]);
    await ferryOk(["keygen", "--output-key-prefix=trusted"], { cwd: bed.dir, env: PASSWORD });
    await ferryOk(["keygen", "--output-key-prefix=other"], { cwd: bed.dir, env: PASSWORD });
    const secret = await bed.cluster.kubectl(["create", "secret", "generic", "cosign-pub", "-n", FLUX_NAMESPACE, `--from-file=cosign.pub=${join(bed.dir, "trusted.pub")}`, "--dry-run=client", "-o", "json"]);
    await bed.cluster.kubectl(["apply", "-f", "-"], { input: secret });
    sourceController = await startSourceController({ kubeconfig: bed.cluster.kubeconfig, dir: bed.dir });
    bed.startController();
  });
  after(async () => {
    await sourceController?.stop();
    await bed?.stop();
  });

  /** A directory with a ConfigMap `name` whose data says `version`, and a kustomization.yaml listing it. */
  async function tree(name: string, version: string): Promise<string> {
    const path = join(bed.dir, `tree-${trees++}`);
    await mkdir(path, { recursive: true });
    await writeFile(join(path, "configmap.yaml"), `apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: ${name}\n  namespace: default\ndata:\n  version: "${version}"\n`);
    await writeFile(join(path, "kustomization.yaml"), "resources:\n  - configmap.yaml\n");
    return path;
  }

  async function ferryPushSigned(repository: string, path: string, key: string, extra: readonly string[] = []): Promise<string> {
    const url = `oci://${bed.registry.host}/${repository}:v1`;
    const pushed = await ferryOk(["push", "artifact", url, `--path=${path}`, "--source=e2e", "--revision=r", "--insecure-registry", "--sign", `--key=${join(bed.dir, `${key}.key`)}`, ...extra], { env: PASSWORD });
    return pushed.stdout.trim();
  }

  async function fluxSource(name: string, repository: string, verify = true): Promise<void> {
    await bed.applyObjects([{
      apiVersion: FLUX_SOURCE_API_VERSION,
      kind: "OCIRepository",
      metadata: { namespace: FLUX_NAMESPACE, name },
      spec: {
        url: `oci://${bed.registry.host}/${repository}`,
        ref: { tag: "v1" },
        interval: "5s",
        insecure: true,
        ...(verify ? { verify: { provider: "cosign", secretRef: { name: "cosign-pub" } } } : {}),
      },
    }]);
  }

  const conditionOf = (object: FluxSource, type: string) => object.status?.conditions?.find((candidate) => candidate.type === type);

  async function waitForFluxSource(name: string, description: string, check: (object: FluxSource) => boolean): Promise<FluxSource> {
    let last: FluxSource | undefined;
    const poll = async () => check((last = JSON.parse(await bed.cluster.kubectl(["get", FLUX_OCI_REPOSITORY, name, "-n", FLUX_NAMESPACE, "-o", "json"]))));
    await waitUntil(`Flux OCIRepository ${name}: ${description}`, poll, { timeoutMs: 90_000, intervalMs: 300, process: sourceController.process })
      .catch((error: Error) => {
        throw new Error(`${error.message}\nlast status: ${JSON.stringify(last?.status, null, 2)}`);
      });
    return last as FluxSource;
  }

  /** Downloads the artifact source-controller serves, checks its digest, and lists the tarball's files. */
  async function servedFiles(artifact: NonNullable<NonNullable<FluxSource["status"]>["artifact"]>): Promise<string[]> {
    assert.equal(new URL(artifact.url).host, sourceController.storageAddress);
    const response = await probe(artifact.url);
    assert.equal(response.status, 200);
    assert.equal(`sha256:${createHash("sha256").update(response.body).digest("hex")}`, artifact.digest);
    const file = join(bed.dir, `served-${trees++}.tar.gz`);
    await writeFile(file, response.body);
    const { stdout } = await promisify(execFile)("tar", ["-tzf", file]);
    return stdout.split("\n").map((entry) => entry.replace(/^\.(\/|$)/, "")).filter((entry) => entry !== "" && !entry.endsWith("/")).sort();
  }

  for (const format of ["bundle", "legacy"] as const) {
    test(`signed by ferry push --sign (${format} signature): Flux's source-controller verifies it with the cosign key and serves it`, async () => {
      const repository = `interop/ferry-${format}`;
      const digest = await ferryPushSigned(repository, await tree(`from-ferry-${format}`, "1"), "trusted", format === "bundle" ? [] : [`--signature-format=${format}`]);
      assert.match(digest, /^sha256:[0-9a-f]{64}$/);
      // bundle: only the OCI 1.1 referrer (zot has the referrers API), so Flux verifies the Sigstore bundle itself;
      // legacy: cosign's sha256-<hex>.sig tag.
      const tags = (await runTool("crane", ["ls", "--insecure", `${bed.registry.host}/${repository}`])).stdout.toString().trim().split("\n").sort();
      assert.deepEqual(tags, format === "bundle" ? ["v1"] : [`${digest.replace(":", "-")}.sig`, "v1"]);
      await fluxSource(`ferry-${format}`, repository);
      const source = await waitForFluxSource(`ferry-${format}`, "Ready with the pushed digest", (o) =>
        o.status?.observedGeneration === o.metadata.generation && conditionOf(o, "Ready")?.status === "True");
      assert.equal(source.status?.artifact?.revision, `v1@${digest}`);
      const verified = conditionOf(source, "SourceVerified");
      assert.equal(verified?.status, "True", JSON.stringify(verified));
      assert.equal(verified?.reason, "Succeeded");
      assert.match(verified?.message ?? "", /verified signature of revision v1@sha256:[0-9a-f]{64}/);
      const artifact = source.status?.artifact;
      assert.ok(artifact);
      assert.deepEqual(await servedFiles(artifact), ["configmap.yaml", "kustomization.yaml"]);
    });
  }

  test("signed by ferry push --sign with a key the Secret does not hold: Flux's source-controller refuses it", async () => {
    await ferryPushSigned("interop/ferry-other", await tree("from-ferry-other", "1"), "other", ["--signature-format=both"]);
    await fluxSource("ferry-other", "interop/ferry-other");
    // Flux leaves status.observedGeneration at -1 until a reconcile succeeds.
    const refused = await waitForFluxSource("ferry-other", "SourceVerified False", (o) =>
      conditionOf(o, "SourceVerified")?.status === "False" && conditionOf(o, "Ready")?.status === "False");
    assert.equal(conditionOf(refused, "Ready")?.reason, "VerificationError");
    assert.equal(conditionOf(refused, "SourceVerified")?.reason, "VerificationError");
    assert.match(conditionOf(refused, "SourceVerified")?.message ?? "", /^failed to verify the signature using provider 'cosign': no matching signatures were found for '[^']+\/interop\/ferry-other@sha256:[0-9a-f]{64}'$/);
    assert.equal(refused.status?.artifact, undefined);
  });

  test("pushed by flux push artifact: Ferry's controller fetches and applies it", async () => {
    const path = await tree("from-flux", "7");
    await runTool("flux", ["push", "artifact", `oci://${bed.registry.host}/interop/flux:v1`, `--path=${path}`, "--source=e2e", "--revision=r", "--insecure-registry"]);
    const digest = (await runTool("crane", ["digest", "--insecure", `${bed.registry.host}/interop/flux:v1`])).stdout.toString().trim();
    await bed.deliver("default", "from-flux", "interop/flux", {});
    const applied = await bed.waitForKustomization("default", "from-flux", "the flux-pushed artifact applied", readyWith(digest));
    assert.equal(applied.status?.lastAppliedRevision, `v1@${digest}`);
    const ferrySource = await bed.getJson(["ocirepositories.source.ferry.dev", "from-flux", "-n", "default"]) as unknown as FluxSource;
    assert.equal(ferrySource.status?.artifact?.revision, `v1@${digest}`);
    const configMap = JSON.parse(await bed.cluster.kubectl(["get", "configmap", "from-flux", "-n", "default", "-o", "json"]));
    assert.equal(configMap.data.version, "7");

    // The same artifact, unsigned, is what Flux's source-controller also serves: both read flux's format alike.
    await fluxSource("flux-pushed", "interop/flux", false);
    const fluxRead = await waitForFluxSource("flux-pushed", "Ready", (o) => conditionOf(o, "Ready")?.status === "True");
    assert.equal(fluxRead.status?.artifact?.revision, `v1@${digest}`);
  });
});
