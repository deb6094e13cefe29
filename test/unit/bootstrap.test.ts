// What bootstrap renders and when it refuses to take a cluster over.
import assert from "node:assert/strict";
import { spawnSync } from "node:child_process";
import { join } from "node:path";
import { test } from "node:test";
import { type BootstrapOptions, componentFiles, selfManagedComponents, droppedClusterConfig, syncDrift, syncObjects, takeoverConflicts } from "../../src/install/bootstrap.ts";
import { identityPattern } from "../../cli/commands/bootstrap.ts";
import { isImmutableFieldError } from "../../src/apply/policy.ts";
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

test("Ferry's own RoleBindings and ClusterRoleBindings are recreated when their roleRef changes: an upgrade binding another role is not stalled", () => {
  type Object = { kind: string; metadata: { name: string; annotations?: Record<string, string> } };
  for (const install of [{}, { watchAllNamespaces: false }, { multiTenant: true }]) {
    const bindings = (selfManagedComponents(install) as Object[]).filter((object) => object.kind.endsWith("RoleBinding"));
    assert.ok(bindings.length >= 2);
    for (const binding of bindings) assert.equal(binding.metadata.annotations?.["kustomize.ferry.dev/force"], "enabled", binding.metadata.name);
  }
  const forced = (selfManagedComponents({}) as Object[]).filter((object) => object.metadata.annotations?.["kustomize.ferry.dev/force"] === "enabled");
  assert.deepEqual([...new Set(forced.map((object) => object.kind))].sort(), ["ClusterRoleBinding", "RoleBinding"]);
  // The apiserver's refusal of a roleRef change is what the applier must read as an immutable field to recreate.
  assert.equal(isImmutableFieldError(`RoleBinding.rbac.authorization.k8s.io "ferry" is invalid: roleRef: Invalid value: rbac.RoleRef{APIGroup:"rbac.authorization.k8s.io", `
    + `Kind:"Role", Name:"other"}: cannot change roleRef`), true);
});

test("the artifact's files are the same for the same options: a re-run pushes nothing", () => {
  assert.deepEqual(componentFiles(options), componentFiles(options));
  assert.deepEqual([...componentFiles(options).keys()], ["ferry-system/ferry-components.yaml", "ferry-system/ferry-sync.yaml", "ferry-system/kustomization.yaml"]);
});

test("takeover: a first install, a re-run and an upgrade go ahead; another registry or tag, or a newer Ferry are refused, all reasons at once", () => {
  assert.deepEqual(takeoverConflicts({}, options), []);
  assert.deepEqual(takeoverConflicts({ repositoryUrl: options.url, repositoryTag: "latest", controllerVersion: `v${FERRY_VERSION}`, clusterConfig: true }, options), []);
  assert.deepEqual(takeoverConflicts({ controllerVersion: "v0.0.0-alpha" }, options), []);
  assert.match(takeoverConflicts({ repositoryUrl: "oci://other/repo" }, options).join(), /follows oci:\/\/other\/repo, not oci:\/\/registry\.example/);
  assert.match(takeoverConflicts({ repositoryUrl: options.url, repositoryTag: "prod" }, options).join(), /follows the tag prod, not latest/);
  assert.match(takeoverConflicts({ controllerVersion: "v99.1.0" }, options).join(), /runs Ferry v99\.1\.0, newer than this CLI's/);
  assert.equal(takeoverConflicts({ repositoryUrl: "oci://other/repo", controllerVersion: "v99.1.0" }, options).length, 2);
});

test("takeover: dropping --sign where the cluster verifies is refused; signing where it did not is not", () => {
  const { verification, ...unsigned } = options;
  assert.match(takeoverConflicts({ repositoryUrl: options.url, verified: true }, unsigned).join(), /verifies the artifact's signature .* without --sign would stop verifying/);
  assert.deepEqual(takeoverConflicts({ repositoryUrl: options.url, verified: false }, unsigned), []);
  assert.ok(verification);
  assert.deepEqual(takeoverConflicts({ repositoryUrl: options.url, verified: true }, options), []);
  assert.deepEqual(takeoverConflicts({ repositoryUrl: options.url }, options), []);
});

test("dropping --path is its own refusal, whatever else differs: --force must never imply pruning the user's workloads", () => {
  assert.match(droppedClusterConfig({ clusterConfig: true }, { clusterConfig: false }) ?? "", /cluster-config.*would be pruned/);
  assert.equal(droppedClusterConfig({ clusterConfig: true }, { clusterConfig: true }), undefined);
  assert.equal(droppedClusterConfig({ clusterConfig: false }, { clusterConfig: true }), undefined, "adding a --path later is fine");
  assert.equal(droppedClusterConfig({}, { clusterConfig: false }), undefined);
});

test("deleting the ferry-system Kustomization orphans what it applied: the controller must not delete its own RBAC while finalizing it", () => {
  const self = syncObjects(options)[1] as { metadata: { name: string }; spec: Record<string, unknown> };
  assert.equal(self.metadata.name, "ferry-system");
  assert.equal(self.spec.deletionPolicy, "Orphan");
  const config = syncObjects(options)[2] as { spec: Record<string, unknown> };
  assert.equal(config.spec.deletionPolicy, undefined, "the user's cluster config is pruned as usual when deleted");
});

test("sync drift: only bootstrap's own fields count; a removed secretRef or a changed verification is a difference", () => {
  type Live = { kind: string; metadata: { name: string }; spec?: Record<string, unknown> };
  const desired = syncObjects(options) as Live[];
  const live = (objects: Live[]) => new Map(objects.map((object) => [`${object.kind}/${object.metadata.name}`, object]));
  // The apiserver's and the controller's additions (defaults, status, suspend) are not differences.
  const asApplied = desired.map((object) => ({ ...object, spec: { ...object.spec, timeout: "60s", suspend: false }, status: { ready: true } }));
  assert.deepEqual(syncDrift(desired, live(asApplied)), []);
  assert.deepEqual(syncDrift(desired, live(asApplied.slice(0, 2))), ["Kustomization/cluster-config is missing"]);
  const withoutCredentials = syncObjects({ ...options, registryCredentials: false });
  assert.deepEqual(syncDrift(withoutCredentials, live(asApplied)).filter((line) => line.startsWith("OCIRepository")), ["OCIRepository/ferry-system spec.secretRef differs"]);
  const keyless = syncObjects({ ...options, verification: { identity: { subject: "^ci$", issuer: "^https://issuer$" } } });
  assert.deepEqual(syncDrift(keyless, live(asApplied)), ["OCIRepository/ferry-system spec.verify differs"]);
  const insecureFalse = asApplied.map((object) => (object.kind === "OCIRepository" ? { ...object, spec: { ...object.spec, insecure: false } } : object));
  assert.deepEqual(syncDrift(desired, live(insecureFalse)), [], "insecure: false is the same as no insecure");
});

test("bootstrap refuses keyless signing the controller could never verify: a private Sigstore, or no transparency log", () => {
  const bootstrap = (...flags: string[]) => spawnSync(process.execPath,
    [join(import.meta.dirname, "..", "..", "cli", "ferry.ts"), "bootstrap", "oci://registry.example/fleet/ferry", "--sign", "--keyless",
      "--certificate-identity=me@example.com", "--certificate-oidc-issuer=https://issuer.example", "--kubeconfig=/nonexistent", ...flags],
    { encoding: "utf8", env: { ...process.env, SIGSTORE_ID_TOKEN: "" } });
  const fulcio = bootstrap("--fulcio-url=https://fulcio.internal");
  assert.equal(fulcio.status, 2, fulcio.stderr);
  assert.match(fulcio.stderr, /public-good Sigstore only: .* the Sigstore at --fulcio-url would never verify; sign with --key/);
  const both = bootstrap("--fulcio-url=https://fulcio.internal", "--rekor-url=https://rekor.internal");
  assert.match(both.stderr, /--fulcio-url and --rekor-url/);
  const noLog = bootstrap("--tlog-upload=false");
  assert.equal(noLog.status, 2, noLog.stderr);
  assert.match(noLog.stderr, /needs the transparency log: .* --tlog-upload=false would never verify/);
});

test("bootstrap's keyless identity flags are spelled as cosign's: exact (escaped and anchored for the controller) or -regexp", () => {
  type Values = Parameters<typeof identityPattern>[0];
  const exact = identityPattern({ "certificate-identity": "ci+deploy@acme.example" } as Values, "certificate-identity");
  assert.equal(exact, "^ci\\+deploy@acme\\.example$");
  assert.ok(new RegExp(exact).test("ci+deploy@acme.example"));
  assert.ok(!new RegExp(exact).test("ci+deploy@acme.example.evil.test"));
  assert.equal(identityPattern({ "certificate-oidc-issuer-regexp": "^https://token\\.actions\\." } as Values, "certificate-oidc-issuer"), "^https://token\\.actions\\.");
  const run = (...flags: string[]) => spawnSync(process.execPath,
    [join(import.meta.dirname, "..", "..", "cli", "ferry.ts"), "bootstrap", "oci://registry.example/fleet/ferry", "--kubeconfig=/nonexistent", ...flags],
    { encoding: "utf8", env: { ...process.env, SIGSTORE_ID_TOKEN: "" } });
  const both = run("--sign", "--keyless", "--certificate-identity=a", "--certificate-identity-regexp=a", "--certificate-oidc-issuer=b");
  assert.equal(both.status, 2, both.stderr);
  assert.match(both.stderr, /needs one of --certificate-identity or --certificate-identity-regexp/);
  const legacy = run("--sign", "--key=cosign.key", "--signature-format=legacy");
  assert.equal(legacy.status, 2, legacy.stderr);
  assert.match(legacy.stderr, /bundle format.*--signature-format=legacy is not supported/);
  // A pattern the controller (Go's regexp) would refuse never reaches spec.verify.
  assert.throws(() => identityPattern({ "certificate-identity-regexp": "[" } as Values, "certificate-identity"), /--certificate-identity-regexp: .*\[/);
  const emptyPull = run("--pull-creds=");
  assert.equal(emptyPull.status, 2, emptyPull.stderr);
  assert.match(emptyPull.stderr, /--pull-creds is empty/);
  // Only the credentials stored for the controller must be user:password: a --creds token pushes beside --pull-creds.
  const tokenPush = run("--creds=push-token", "--pull-creds=reader:secret");
  assert.doesNotMatch(tokenPush.stderr, /must be user:password/);
  const help = run("--help");
  for (const flag of ["--ca-file", "--cert-file", "--key-file", "--timeout", "--certificate-identity-regexp", "--prune-cluster-config", "--pull-url", "--pull-creds"]) assert.match(help.stdout + help.stderr, new RegExp(flag));
});
