// What bootstrap renders and when it refuses to take a cluster over.
import assert from "node:assert/strict";
import { test } from "node:test";
import { type BootstrapOptions, componentFiles, selfManagedComponents, syncObjects, takeoverConflict } from "../../src/install/bootstrap.ts";
import { FERRY_VERSION } from "../../src/version.ts";

const options: BootstrapOptions = {
  url: "oci://registry.example/fleet/ferry",
  tag: "latest",
  install: {},
  insecure: false,
  interval: "1m",
  registryCredentials: true,
  registryTls: false,
  verification: { publicKeyPem: "-----BEGIN PUBLIC KEY-----\n…\n-----END PUBLIC KEY-----\n" },
  clusterConfig: true,
};

test("the namespace and the CRDs are never pruned, whatever happens to the ferry-system Kustomization", () => {
  type Object = { kind: string; metadata: { annotations?: Record<string, string> } };
  const objects = selfManagedComponents({}) as Object[];
  const protectedKinds = objects.filter((object) => object.metadata.annotations?.["kustomize.ferry.dev/prune"] === "disabled").map((object) => object.kind);
  assert.deepEqual(protectedKinds, ["Namespace", "CustomResourceDefinition", "CustomResourceDefinition"]);
});

test("the sync objects follow the tag, verify with the key Secret, pull with the credentials, and apply the cluster config after Ferry", () => {
  type Synced = { kind: string; metadata: { name: string }; spec: Record<string, unknown> };
  const [repository, self, config] = syncObjects(options) as Synced[];
  assert.deepEqual(repository?.spec, {
    url: options.url, ref: { tag: "latest" }, interval: "1m", secretRef: { name: "ferry-registry" },
    verify: { provider: "cosign", secretRef: { name: "ferry-verify-key" } },
  });
  assert.equal(self?.spec.path, "./ferry-system");
  assert.deepEqual(config?.spec.dependsOn, [{ name: "ferry-system" }]);
  const identity = { subject: "^ci@acme$", issuer: "^https://issuer$" };
  const keyless = syncObjects({ ...options, verification: { identity } })[0] as { spec: { verify: unknown } };
  assert.deepEqual(keyless.spec.verify, { provider: "cosign", matchOIDCIdentity: [identity] });
});

test("the artifact's files are the same for the same options: a re-run pushes nothing", () => {
  assert.deepEqual(componentFiles(options), componentFiles(options));
  assert.deepEqual([...componentFiles(options).keys()], ["ferry-system/ferry-components.yaml", "ferry-system/ferry-sync.yaml", "ferry-system/kustomization.yaml"]);
});

test("takeover: a first install, a re-run and an upgrade go ahead; another registry or a newer Ferry are refused", () => {
  assert.equal(takeoverConflict({}, options.url), undefined);
  assert.equal(takeoverConflict({ repositoryUrl: options.url, controllerVersion: `v${FERRY_VERSION}` }, options.url), undefined);
  assert.equal(takeoverConflict({ controllerVersion: "v0.0.0-alpha" }, options.url), undefined);
  assert.match(takeoverConflict({ repositoryUrl: "oci://other/repo" }, options.url) ?? "", /follows oci:\/\/other\/repo, not oci:\/\/registry\.example/);
  assert.match(takeoverConflict({ controllerVersion: "v99.1.0" }, options.url) ?? "", /runs Ferry v99\.1\.0, newer than this CLI's/);
});
