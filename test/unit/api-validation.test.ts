// What the API refuses: the zod schemas (which the controller checks and the CRDs are generated from) turn away specs
// that can never work, spec durations become timers the controller can keep, and an OCIRepository whose spec the
// controller refuses stalls instead of retrying for ever.
import assert from "node:assert/strict";
import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { describe, test } from "node:test";
import { CRDS } from "../../src/api/crd.ts";
import { MAX_TIMER_MS, MIN_INTERVAL_MS, specTimerMs, timerMs } from "../../src/api/duration.ts";
import { KustomizationSpec } from "../../src/api/kustomize.ts";
import { OCIRepositorySpec } from "../../src/api/source.ts";
import { ArtifactCache } from "../../src/artifact/cache.ts";
import type { KubeClient } from "../../src/kube/client.ts";
import { FINALIZER, type OCIRepository, OCIRepositoryReconciler } from "../../src/reconcilers/ocirepository.ts";

const REPOSITORY = { url: "oci://ghcr.io/org/app", interval: "1m" };
const SOURCE = { sourceRef: { kind: "OCIRepository", name: "app" }, interval: "10m", prune: true };
const SHA256 = `sha256:${"a".repeat(64)}`;
const many = <T>(count: number, item: (index: number) => T) => Array.from({ length: count }, (_, index) => item(index));

describe("spec durations as timers", () => {
  test("an interval is kept between the controller's minimum and the longest timer Node holds", () => {
    assert.equal(specTimerMs("0s"), MIN_INTERVAL_MS);
    assert.equal(specTimerMs("250ms"), MIN_INTERVAL_MS);
    assert.equal(specTimerMs("5m"), 300_000);
    assert.equal(specTimerMs("1000h"), MAX_TIMER_MS);
    assert.equal(specTimerMs("99999999999999999999h"), MAX_TIMER_MS);
    assert.equal(MAX_TIMER_MS, 2 ** 31 - 1);
  });

  test("a delay that is not a number waits the floor", () => {
    assert.equal(timerMs(Number.NaN, 50), 50);
    assert.equal(timerMs(-1), 1);
    assert.equal(timerMs(Number.POSITIVE_INFINITY), MAX_TIMER_MS);
  });
});

describe("OCIRepository spec refusals", () => {
  const refused: Array<[string, Record<string, unknown>]> = [
    ["an md5 digest", { ...REPOSITORY, ref: { digest: `md5:${"0".repeat(32)}` } }],
    ["a sha256 digest of the wrong length", { ...REPOSITORY, ref: { digest: "sha256:abc" } }],
    ["a sha384 digest, which OCI does not register", { ...REPOSITORY, ref: { digest: `sha384:${"0".repeat(96)}` } }],
    ["a tag with a slash", { ...REPOSITORY, ref: { tag: "release/1" } }],
    ["a 129-character tag", { ...REPOSITORY, ref: { tag: "t".repeat(129) } }],
    ["a 1000-character secret name", { ...REPOSITORY, secretRef: { name: "a".repeat(1000) } }],
    ["an upper-case secret name", { ...REPOSITORY, certSecretRef: { name: "Certs" } }],
    ["a service account name with a space", { ...REPOSITORY, serviceAccountName: "pull er" }],
    ["a URL without oci://", { ...REPOSITORY, url: "https://ghcr.io/org/app" }],
    ["a 2000-character URL", { ...REPOSITORY, url: `oci://ghcr.io/${"a".repeat(2000)}` }],
    ["an interval in days", { ...REPOSITORY, interval: "1d" }],
    ["a timeout in hours (Flux's pattern)", { ...REPOSITORY, timeout: "1h" }],
    ["a media type without a subtype", { ...REPOSITORY, layerSelector: { mediaType: "application" } }],
    ["a 1025-character semverFilter", { ...REPOSITORY, ref: { semver: "*", semverFilter: "x".repeat(1025) } }],
    ["257 OIDC identities", { ...REPOSITORY, verify: { matchOIDCIdentity: many(257, () => ({ issuer: "i", subject: "s" })) } }],
  ];
  for (const [what, spec] of refused) {
    test(`refuses ${what}`, () => assert.equal(OCIRepositorySpec.safeParse(spec).success, false));
  }

  test("accepts sha256 and sha512 digests, Flux's durations and names Kubernetes allows", () => {
    for (const digest of [SHA256, `sha512:${"0".repeat(128)}`]) assert.ok(OCIRepositorySpec.safeParse({ ...REPOSITORY, ref: { digest } }).success);
    const spec = { ...REPOSITORY, interval: "0s", timeout: "90m", secretRef: { name: "ghcr.creds-1" }, serviceAccountName: "puller", ref: { tag: "v1.2.3_rc-1" } };
    assert.ok(OCIRepositorySpec.safeParse(spec).success);
  });
});

describe("Kustomization spec refusals", () => {
  const refused: Array<[string, Record<string, unknown>]> = [
    ["a GitRepository source", { ...SOURCE, sourceRef: { kind: "GitRepository", name: "app" } }],
    ["a 1000-character source name", { ...SOURCE, sourceRef: { kind: "OCIRepository", name: "s".repeat(1000) } }],
    ["a source namespace over 63 characters", { ...SOURCE, sourceRef: { kind: "OCIRepository", name: "app", namespace: "n".repeat(64) } }],
    ["a dependency named with a capital", { ...SOURCE, dependsOn: [{ name: "Infra" }] }],
    ["257 dependencies", { ...SOURCE, dependsOn: many(257, (index) => ({ name: `dep-${index}` })) }],
    ["257 patches", { ...SOURCE, patches: many(257, () => ({ patch: "x" })) }],
    ["a patch over 256 KiB", { ...SOURCE, patches: [{ patch: "x".repeat(262_145) }] }],
    ["257 health checks", { ...SOURCE, healthChecks: many(257, (index) => ({ kind: "Deployment", name: `d${index}` })) }],
    ["257 images", { ...SOURCE, images: many(257, (index) => ({ name: `i${index}` })) }],
    ["257 components", { ...SOURCE, components: many(257, (index) => `c${index}`) }],
    ["257 substituteFrom references", { ...SOURCE, postBuild: { substituteFrom: many(257, (index) => ({ kind: "ConfigMap", name: `v${index}` })) } }],
    ["an image digest in sha1", { ...SOURCE, images: [{ name: "nginx", digest: `sha1:${"0".repeat(40)}` }] }],
    ["a variable named with a dash", { ...SOURCE, postBuild: { substitute: { "cluster-name": "prod" } } }],
    ["a target namespace with an underscore", { ...SOURCE, targetNamespace: "team_a" }],
    ["a service account name over 253 characters", { ...SOURCE, serviceAccountName: "s".repeat(254) }],
    ["a kubeconfig key with a slash", { ...SOURCE, kubeConfig: { secretRef: { name: "remote", key: "a/b" } } }],
    ["a retry interval with a sign", { ...SOURCE, retryInterval: "-1s" }],
  ];
  for (const [what, spec] of refused) {
    test(`refuses ${what}`, () => assert.equal(KustomizationSpec.safeParse(spec).success, false));
  }

  test("accepts every list at its limit and well-formed variables", () => {
    const spec = {
      ...SOURCE,
      dependsOn: many(256, (index) => ({ name: `dep-${index}`, namespace: "infra" })),
      postBuild: { substitute: { cluster_name: "prod", _X1: "y" } },
      images: [{ name: "nginx", digest: SHA256 }],
    };
    assert.ok(KustomizationSpec.safeParse(spec).success);
  });
});

describe("generated CRDs state the rules", () => {
  type Schema = { [key: string]: unknown; properties?: Record<string, Schema>; items?: Schema };
  const specOf = (file: keyof typeof CRDS) => {
    const crd = CRDS[file] as unknown as { spec: { versions: Array<{ schema: { openAPIV3Schema: Schema } }> } };
    return crd.spec.versions[0]?.schema.openAPIV3Schema.properties?.spec as Schema;
  };
  const at = (schema: Schema, path: string): Schema =>
    path.split(".").reduce<Schema>((node, part) => (part === "[]" ? node.items : node.properties?.[part]) as Schema, schema);

  test("patterns, lengths and item counts reach the OCIRepository CRD", () => {
    const spec = specOf("source.ferry.dev_ocirepositories.yaml");
    assert.equal(at(spec, "ref.digest").pattern, "^(sha256:[a-f0-9]{64}|sha512:[a-f0-9]{128})$");
    assert.equal(at(spec, "secretRef.name").maxLength, 253);
    assert.equal(at(spec, "timeout").pattern, "^([0-9]+(\\.[0-9]+)?(ms|s|m))+$");
    assert.equal(at(spec, "interval").pattern, "^([0-9]+(\\.[0-9]+)?(ms|s|m|h))+$");
    assert.equal(at(spec, "verify.matchOIDCIdentity").maxItems, 256);
    assert.equal(at(spec, "ref.semverFilter").maxLength, 1024);
  });

  test("the Kustomization CRD carries the variable-name rule as CEL next to its item limits", () => {
    const spec = specOf("kustomize.ferry.dev_kustomizations.yaml");
    const [validation] = at(spec, "postBuild.substitute")["x-kubernetes-validations"] as Array<{ rule: string; message: string }>;
    assert.match(validation?.rule ?? "", /self\.all\(name, name\.matches\('\^\[_a-zA-Z\]\[_a-zA-Z0-9\]\*\$'\)\)/);
    for (const list of ["patches", "healthChecks", "dependsOn", "images", "components", "postBuild.substituteFrom"]) {
      assert.equal(at(spec, list).maxItems, 256, list);
    }
    assert.equal(at(spec, "patches.[].patch").maxLength, 262_144);
    assert.match(at(spec, "sourceRef.name").pattern as string, /^\^\[a-z0-9\]/);
  });
});

describe("OCIRepository reconciler and a spec it refuses", () => {
  /** A stand-in for the Kubernetes API that records what the reconciler writes. */
  function fakeKube() {
    const written = { statuses: [] as unknown[], finalizers: [] as string[][] };
    const kube = {
      setFinalizers: async (_type: unknown, _metadata: unknown, finalizers: string[]) => void written.finalizers.push(finalizers),
      patchStatus: async (_type: unknown, _namespace: string, _name: string, status: unknown) => void written.statuses.push(status),
      secretData: async () => undefined,
      imagePullSecrets: async () => [],
      event: async () => undefined,
    } as unknown as KubeClient;
    return { kube, written };
  }

  function invalidRepository(metadata: Partial<OCIRepository["metadata"]> = {}): OCIRepository {
    return {
      apiVersion: "source.ferry.dev/v1",
      kind: "OCIRepository",
      metadata: { namespace: "default", name: "broken", generation: 3, ...metadata },
      spec: { ...REPOSITORY, ref: { digest: "md5:0123" } },
    } as OCIRepository;
  }

  test("stalls with InvalidSpec at its generation and asks for no requeue", async () => {
    const dir = await mkdtemp(join(tmpdir(), "ferry-invalid-spec-"));
    try {
      const { kube, written } = fakeKube();
      const reconciler = new OCIRepositoryReconciler({ kube, cache: new ArtifactCache(dir), log: () => undefined });
      const result = await reconciler.reconcile(invalidRepository());
      assert.deepEqual(result, {});
      type Condition = { type: string; status: string; reason: string; message: string };
      const status = written.statuses.at(-1) as { observedGeneration: number; conditions: Condition[] };
      assert.equal(status.observedGeneration, 3);
      const ready = status.conditions.find((condition) => condition.type === "Ready");
      const stalled = status.conditions.find((condition) => condition.type === "Stalled");
      assert.deepEqual([ready?.status, ready?.reason, stalled?.status, stalled?.reason], ["False", "InvalidSpec", "True", "InvalidSpec"]);
      assert.match(ready?.message ?? "", /^spec\.ref\.digest: Invalid string: must match pattern/);
      assert.deepEqual(written.finalizers, [], "a finalizer was added to an object the controller cannot reconcile");
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  });

  test("never blocks deletion: the finalizer goes even though the spec is refused", async () => {
    const dir = await mkdtemp(join(tmpdir(), "ferry-invalid-spec-"));
    try {
      const { kube, written } = fakeKube();
      const reconciler = new OCIRepositoryReconciler({ kube, cache: new ArtifactCache(dir), log: () => undefined });
      const deleting = invalidRepository({ deletionTimestamp: new Date().toISOString(), finalizers: [FINALIZER, "other.example/keep"] });
      assert.deepEqual(await reconciler.reconcile(deleting), {});
      assert.deepEqual(written.finalizers, [["other.example/keep"]]);
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  });
});
