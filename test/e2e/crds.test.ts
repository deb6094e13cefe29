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

describe("CRDs on the apiserver", { skip: skipUnlessBuilt("etcd", "kube-apiserver", "kube-controller-manager", "kube-scheduler", "kubectl", "kwok") }, () => {
  let cluster: ControlPlane;
  before(async () => {
    cluster = await startControlPlane();
    await cluster.kubectl(["apply", "--server-side", "-f", CRDS]);
    await cluster.kubectl(["wait", "--for=condition=Established", "crd/ocirepositories.source.ferry.dev", "--timeout=30s"]);
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
  ];
  for (const [name, spec, message] of invalid) {
    test(`the apiserver rejects ${name} with the field at fault`, async () => {
      await assert.rejects(cluster.kubectl(["apply", "-f", "-"], { input: ociRepository(name, spec) }), message);
    });
  }
});
