// Verification end to end: an OCIRepository offers its artifact to Kustomizations only while it is verified with the
// keys its Secret holds now. Adding spec.verify to a source fetched unverified, or changing the key Secret to a key
// that did not sign, withdraws the artifact; Kustomizations keep what they applied and apply nothing new.
import assert from "node:assert/strict";
import { mkdir, writeFile } from "node:fs/promises";
import { join } from "node:path";
import { after, before, describe, test } from "node:test";
import { skipUnlessBuilt } from "../harness/binaries.ts";
import { condition, DeliveryBed, readyWith } from "../harness/delivery.ts";
import { ferry, ferryOk } from "../harness/ferry.ts";
import { waitUntil } from "../harness/processes.ts";

const PASSWORD = { COSIGN_PASSWORD: "ferry-e2e-verification" };

interface ObservedSource {
  metadata: { generation: number };
  status?: {
    observedGeneration?: number;
    conditions?: Array<{ type: string; status: string; reason: string; message: string }>;
    artifact?: { revision: string };
  };
}

describe("verification in the delivery loop", { skip: skipUnlessBuilt("etcd", "kube-apiserver", "kube-controller-manager", "kube-scheduler", "kubectl", "kwok", "zot", "kustomize") }, () => {
  let bed: DeliveryBed;
  let contents = 0;

  before(async () => {
    bed = await DeliveryBed.start();
    await ferryOk(["keygen", "--output-key-prefix=trusted"], { cwd: bed.dir, env: PASSWORD });
    await ferryOk(["keygen", "--output-key-prefix=other"], { cwd: bed.dir, env: PASSWORD });
    bed.startController();
  });
  after(async () => {
    await bed?.stop();
  });

  /** Pushes a ConfigMap `name` whose data says `version`, signed with `signer`'s key when given; returns the digest. */
  async function push(repository: string, name: string, version: string, signer?: string): Promise<string> {
    const source = join(bed.dir, `content-${contents++}`);
    await mkdir(source, { recursive: true });
    await writeFile(join(source, "configmap.yaml"), `apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: ${name}\n  namespace: default\ndata:\n  version: "${version}"\n`);
    await writeFile(join(source, "kustomization.yaml"), "resources:\n  - configmap.yaml\n");
    const signing = signer ? ["--sign", `--key=${join(bed.dir, `${signer}.key`)}`] : [];
    const url = `oci://${bed.registry.host}/${repository}:v1`;
    return (await ferryOk(["push", "artifact", url, `--path=${source}`, "--source=e2e", "--revision=r", "--insecure-registry", ...signing], { env: PASSWORD })).stdout.trim();
  }

  /** Creates or replaces the Secret `name` so that it holds exactly `key`'s public key. */
  async function keySecret(name: string, key: string): Promise<void> {
    const manifest = await bed.cluster.kubectl(["create", "secret", "generic", name, "-n", "default", `--from-file=cosign.pub=${join(bed.dir, `${key}.pub`)}`, "--dry-run=client", "-o", "json"]);
    await bed.cluster.kubectl(["apply", "-f", "-"], { input: manifest });
  }

  const source = async (name: string): Promise<ObservedSource> =>
    JSON.parse(await bed.cluster.kubectl(["get", "ocirepository", name, "-n", "default", "-o", "json"]));
  const sourceCondition = (object: ObservedSource, type: string) => object.status?.conditions?.find((candidate) => candidate.type === type);
  const configMapVersion = async (name: string) => JSON.parse(await bed.cluster.kubectl(["get", "configmap", name, "-n", "default", "-o", "json"])).data.version;

  async function waitForSource(name: string, description: string, check: (object: ObservedSource) => boolean): Promise<ObservedSource> {
    let last: ObservedSource | undefined;
    const options = { timeoutMs: 60_000, intervalMs: 300, ...(bed.controller ? { process: bed.controller } : {}) };
    await waitUntil(`${name}: ${description}`, async () => check((last = await source(name))), options)
      .catch((error: Error) => {
        throw new Error(`${error.message}\nlast status: ${JSON.stringify(last?.status, null, 2)}`);
      });
    return last as ObservedSource;
  }

  /** Asks for a Kustomization reconcile now and returns its Ready condition once it has handled the request. */
  async function reconcileKustomization(name: string) {
    await ferry(["reconcile", "kustomization", name, "-n", "default", "--timeout=60s", `--kubeconfig=${bed.cluster.kubeconfig}`]);
    return condition(await bed.kustomization("default", name), "Ready");
  }

  test("verify added to a source fetched unverified, with a key that did not sign it: the artifact is withdrawn and nothing new is applied", async () => {
    const first = await push("apps/unverified", "unverified", "1", "trusted");
    await bed.deliver("default", "unverified", "apps/unverified", {});
    await bed.waitForKustomization("default", "unverified", "the unverified source applied", readyWith(first));
    assert.equal(await configMapVersion("unverified"), "1");

    await keySecret("other-key", "other");
    await bed.cluster.kubectl(["patch", "ocirepository", "unverified", "-n", "default", "--type=merge", "-p", JSON.stringify({ spec: { verify: { provider: "cosign", secretRef: { name: "other-key" } } } })]);
    const refused = await waitForSource("unverified", "SourceVerified=False and the artifact withdrawn", (o) =>
      o.status?.observedGeneration === o.metadata.generation && sourceCondition(o, "SourceVerified")?.status === "False");
    assert.equal(refused.status?.artifact, undefined, "a never-verified artifact is still offered");
    assert.match(sourceCondition(refused, "SourceVerified")?.message ?? "", /does not verify with the given key/);

    // A new revision, signed by the key that is not trusted, is not applied; what was applied stays.
    const second = await push("apps/unverified", "unverified", "2", "trusted");
    await ferry(["reconcile", "source", "oci", "unverified", "-n", "default", `--kubeconfig=${bed.cluster.kubeconfig}`]);
    const ready = await reconcileKustomization("unverified");
    assert.equal(ready?.status, "False");
    assert.match(ready?.message ?? "", /has no artifact/);
    const kustomization = await bed.kustomization("default", "unverified");
    assert.equal(kustomization.status?.lastAppliedRevision, `v1@${first}`);
    assert.notEqual(kustomization.status?.lastAttemptedRevision, `v1@${second}`);
    assert.equal(await configMapVersion("unverified"), "1", "the artifact was applied or pruned without verification");
  });

  test("the key Secret changed to a key that did not sign: the next reconcile fails verification; the right key again delivers", async () => {
    await keySecret("rotating-key", "trusted");
    const first = await push("apps/rotating", "rotating", "1", "trusted");
    await bed.applyObjects([
      {
        apiVersion: "source.ferry.dev/v1",
        kind: "OCIRepository",
        metadata: { namespace: "default", name: "rotating" },
        spec: { url: `oci://${bed.registry.host}/apps/rotating`, ref: { tag: "v1" }, interval: "2s", insecure: true, verify: { provider: "cosign", secretRef: { name: "rotating-key" } } },
      },
      {
        apiVersion: "kustomize.ferry.dev/v1",
        kind: "Kustomization",
        metadata: { namespace: "default", name: "rotating" },
        spec: { sourceRef: { kind: "OCIRepository", name: "rotating" }, path: "./", interval: "1h", prune: true },
      },
    ]);
    await bed.waitForKustomization("default", "rotating", "the verified source applied", readyWith(first));
    const verified = await source("rotating");
    assert.match(sourceCondition(verified, "SourceVerified")?.message ?? "", /with key SHA256:[0-9a-f]{64} under verification inputs sha256:[0-9a-f]{64}$/);

    // Secrets are not watched: the change is seen by the next interval's reconcile, with no spec change.
    await keySecret("rotating-key", "other");
    const refused = await waitForSource("rotating", "verification fails with the new key", (o) => sourceCondition(o, "SourceVerified")?.status === "False");
    assert.equal(refused.status?.artifact, undefined, "the artifact verified with a key no longer trusted is still offered");
    assert.match(sourceCondition(refused, "SourceVerified")?.message ?? "", /does not verify with the given key/);

    const second = await push("apps/rotating", "rotating", "2", "trusted");
    await new Promise((resolve) => setTimeout(resolve, 5_000));
    assert.equal((await source("rotating")).status?.artifact, undefined);
    const ready = await reconcileKustomization("rotating");
    assert.equal(ready?.status, "False");
    assert.equal(await configMapVersion("rotating"), "1");

    await keySecret("rotating-key", "trusted");
    await bed.waitForKustomization("default", "rotating", "the new revision applied once the key matches again", readyWith(second));
    assert.equal(await configMapVersion("rotating"), "2");
  });
});
