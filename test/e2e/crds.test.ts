// The generated CRDs install on a real kube-apiserver, which then applies their defaults and enforces their rules.
import assert from "node:assert/strict";
import { join } from "node:path";
import { after, before, describe, test } from "node:test";
import { skipUnlessBuilt } from "../harness/binaries.ts";
import { type ControlPlane, startControlPlane } from "../harness/control-plane.ts";

const CRDS = join(import.meta.dirname, "..", "..", "crds");

function ociRepository(name: string, spec: Record<string, unknown>) {
  return JSON.stringify({ apiVersion: "source.ferry.dev/v1", kind: "OCIRepository", metadata: { namespace: "default", name }, spec });
}

function kustomization(name: string, spec: Record<string, unknown>) {
  return JSON.stringify({ apiVersion: "kustomize.ferry.dev/v1", kind: "Kustomization", metadata: { namespace: "default", name }, spec });
}

const REPOSITORY = { url: "oci://ghcr.io/org/app", interval: "1m" };
const SOURCE = { sourceRef: { kind: "OCIRepository", name: "app" }, interval: "10m", prune: true };
const LONG_NAME = "a".repeat(1000);
const SHA256 = `sha256:${"0".repeat(64)}`;

describe("CRDs on the apiserver", { skip: skipUnlessBuilt("etcd", "kube-apiserver", "kube-controller-manager", "kube-scheduler", "kubectl", "kwok") }, () => {
  let cluster: ControlPlane;
  before(async () => {
    cluster = await startControlPlane();
    await cluster.kubectl(["apply", "--server-side", "-f", CRDS]);
    await cluster.kubectl(["wait", "--for=condition=Established", "crd/ocirepositories.source.ferry.dev", "crd/kustomizations.kustomize.ferry.dev", "--timeout=30s"]);
  });
  after(async () => {
    await cluster?.stop();
  });

  test("a valid OCIRepository is stored with the schema's defaults", async () => {
    await cluster.kubectl(["apply", "-f", "-"], {
      input: ociRepository("podinfo", { url: "oci://ghcr.io/stefanprodan/manifests/podinfo", ref: { semver: ">=6.0.0" }, interval: "5m" }),
    });
    const stored = JSON.parse(await cluster.kubectl(["get", "ocirepository", "podinfo", "-o", "json"]));
    assert.equal(stored.spec.timeout, "60s");
    assert.equal(stored.spec.provider, "generic");
    assert.equal(stored.spec.ref.semver, ">=6.0.0");
    const table = await cluster.kubectl(["get", "ocirepo"]);
    assert.match(table, /^NAME\s+READY\s+STATUS\s+REVISION\s+AGE/);
  });

  const invalid: Array<[string, Record<string, unknown>, RegExp]> = [
    ["no-scheme", { url: "ghcr.io/org/app", interval: "5m" }, /spec\.url.*should match '\^oci:/],
    ["no-interval", { url: "oci://ghcr.io/org/app" }, /spec\.interval: Required value/],
    ["bad-interval", { url: "oci://ghcr.io/org/app", interval: "five minutes" }, /spec\.interval.*should match/],
    ["bad-operation", { url: "oci://ghcr.io/org/app", interval: "1m", layerSelector: { operation: "explode" } }, /spec\.layerSelector\.operation: Unsupported value: "explode"/],
    ["bad-digest", { url: "oci://ghcr.io/org/app", interval: "1m", ref: { digest: "latest" } }, /spec\.ref\.digest.*should match/],
    ["weak-digest", { ...REPOSITORY, ref: { digest: `md5:${"0".repeat(32)}` } }, /spec\.ref\.digest.*should match/],
    ["short-digest", { ...REPOSITORY, ref: { digest: "sha256:0123abcd" } }, /spec\.ref\.digest.*should match/],
    ["bad-tag", { ...REPOSITORY, ref: { tag: "v1/latest" } }, /spec\.ref\.tag.*should match/],
    ["long-secret-name", { ...REPOSITORY, secretRef: { name: LONG_NAME } }, /spec\.secretRef\.name: Too long/],
    ["bad-secret-name", { ...REPOSITORY, secretRef: { name: "Registry_Creds" } }, /spec\.secretRef\.name.*should match/],
    ["bad-service-account", { ...REPOSITORY, serviceAccountName: "puller account" }, /spec\.serviceAccountName.*should match/],
    ["bad-day-interval", { ...REPOSITORY, interval: "1d" }, /spec\.interval.*should match/],
    // Flux's pattern for this timeout has no hours.
    ["hour-timeout", { ...REPOSITORY, timeout: "1h" }, /spec\.timeout.*should match/],
    ["long-semver-filter", { ...REPOSITORY, ref: { semver: ">=1.0.0", semverFilter: "a".repeat(1025) } }, /spec\.ref\.semverFilter: Too long/],
    ["many-identities", { ...REPOSITORY, verify: { matchOIDCIdentity: Array.from({ length: 257 }, () => ({ issuer: "x", subject: "y" })) } },
      /spec\.verify\.matchOIDCIdentity: Too many: 257: must have at most 256 items/],
  ];
  for (const [name, spec, message] of invalid) {
    test(`the apiserver rejects ${name} with the field at fault`, async () => {
      await assert.rejects(cluster.kubectl(["apply", "-f", "-"], { input: ociRepository(name, spec) }), message);
    });
  }

  // Server-side apply: kubectl's client-side last-applied annotation could not hold the longest patch.
  test("a Kustomization using every bounded field within its bounds is stored", async () => {
    await cluster.kubectl(["apply", "--server-side", "-f", "-"], {
      input: kustomization("bounded", {
        ...SOURCE,
        sourceRef: { kind: "OCIRepository", name: "app.v2", namespace: "sources" },
        dependsOn: Array.from({ length: 256 }, (_, index) => ({ name: `dep-${index}` })),
        patches: [{ patch: "a".repeat(262_144) }],
        images: [{ name: "nginx", digest: `sha512:${"f".repeat(128)}` }],
        postBuild: { substitute: { cluster_name: "prod", _region2: "eu" } },
        kubeConfig: { secretRef: { name: "remote", key: "value.yaml" } },
      }),
    });
  });

  const invalidKustomizations: Array<[string, Record<string, unknown>, RegExp]> = [
    ["git-source", { ...SOURCE, sourceRef: { kind: "GitRepository", name: "app" } }, /spec\.sourceRef\.kind: Unsupported value: "GitRepository"/],
    ["long-source-name", { ...SOURCE, sourceRef: { kind: "OCIRepository", name: LONG_NAME } }, /spec\.sourceRef\.name: Too long/],
    ["bad-target-namespace", { ...SOURCE, targetNamespace: "Team_A" }, /spec\.targetNamespace.*should match/],
    ["many-dependencies", { ...SOURCE, dependsOn: Array.from({ length: 257 }, (_, index) => ({ name: `dep-${index}` })) },
      /spec\.dependsOn: Too many: 257: must have at most 256 items/],
    ["long-patch", { ...SOURCE, patches: [{ patch: "a".repeat(262_145) }] }, /spec\.patches\[0\]\.patch: Too long/],
    ["weak-image-digest", { ...SOURCE, images: [{ name: "nginx", digest: `sha1:${"0".repeat(40)}` }] }, /spec\.images\[0\]\.digest.*should match/],
    ["bad-variable", { ...SOURCE, postBuild: { substitute: { "cluster-name": "prod" } } }, /spec\.postBuild\.substitute: Invalid value.*each named as/],
    ["bad-retry-interval", { ...SOURCE, retryInterval: "-1s" }, /spec\.retryInterval.*should match/],
  ];
  for (const [name, spec, message] of invalidKustomizations) {
    test(`the apiserver rejects Kustomization ${name} with the field at fault`, async () => {
      await assert.rejects(cluster.kubectl(["apply", "--server-side", "-f", "-"], { input: kustomization(name, spec) }), message);
    });
  }

  test("an image digest and a ref digest take sha256 as well as sha512", async () => {
    await cluster.kubectl(["apply", "-f", "-"], { input: ociRepository("pinned", { ...REPOSITORY, ref: { digest: SHA256 } }) });
  });
});
