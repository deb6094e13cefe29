// Inventory ids and manifest building as pure logic: ids survive names with "_", builds refuse bad input by name.
import assert from "node:assert/strict";
import { mkdir, mkdtemp, rm, symlink, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { before, describe, test } from "node:test";
import { FerryError } from "../../src/errors.ts";
import { inventoryId, parseEntry, staleEntries, toEntry } from "../../src/inventory/inventory.ts";
import { buildManifests, type ManifestObject } from "../../src/kustomize/build.ts";
import {
  appliedAndUntouched,
  CHECKSUM_ANNOTATION,
  isImmutableFieldError,
  pruneDisabled,
  sortForApply,
  ssaPolicy,
  stageOf,
  takeOverManagedFields,
  withChecksum,
} from "../../src/apply/policy.ts";
import { binary, skipUnlessBuilt } from "../harness/binaries.ts";

describe("inventory", () => {
  test("ids follow Flux's <namespace>_<name>_<group>_<kind> and parse back, even for names with underscores", () => {
    const refs = [
      { apiVersion: "apps/v1", kind: "Deployment", name: "podinfo", namespace: "apps" },
      { apiVersion: "v1", kind: "Service", name: "my_service", namespace: "default" },
      { apiVersion: "v1", kind: "Namespace", name: "apps" },
      { apiVersion: "rbac.authorization.k8s.io/v1", kind: "ClusterRole", name: "system:ferry" },
    ];
    assert.deepEqual(refs.map(inventoryId), [
      "apps_podinfo_apps_Deployment",
      "default_my_service__Service",
      "_apps__Namespace",
      "_system__ferry_rbac.authorization.k8s.io_ClusterRole",
    ]);
    for (const ref of refs) assert.deepEqual(parseEntry(toEntry(ref)), ref);
  });

  test("stale entries are those of the old inventory missing from the new one", () => {
    const a = toEntry({ apiVersion: "v1", kind: "ConfigMap", name: "a", namespace: "x" });
    const b = toEntry({ apiVersion: "v1", kind: "ConfigMap", name: "b", namespace: "x" });
    assert.deepEqual(staleEntries([a, b], [b]), [a]);
  });
});

describe("manifest build", { skip: skipUnlessBuilt("kustomize", "kubectl") }, () => {
  test("without FERRY_KUSTOMIZE or kustomize on the PATH, `kubectl kustomize` builds", async () => {
    const root = await mkdtemp(join(tmpdir(), "ferry-build-kubectl-"));
    const saved = { path: process.env.PATH, kustomize: process.env.FERRY_KUSTOMIZE };
    try {
      await mkdir(join(root, "bin"));
      await symlink(binary("kubectl"), join(root, "bin", "kubectl"));
      await mkdir(join(root, "app"));
      await writeFile(join(root, "app", "cm.yaml"), "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: a\n");
      process.env.PATH = join(root, "bin");
      delete process.env.FERRY_KUSTOMIZE;
      const objects = await buildManifests(join(root, "app"), "", { overlay: { namePrefix: "x-" } });
      assert.deepEqual(objects.map((object) => object.metadata.name), ["x-a"]);
    } finally {
      process.env.PATH = saved.path;
      if (saved.kustomize !== undefined) process.env.FERRY_KUSTOMIZE = saved.kustomize;
      await rm(root, { recursive: true, force: true });
    }
  });

  before(() => {
    process.env.FERRY_KUSTOMIZE = binary("kustomize");
  });

  test("a directory without a kustomization contributes every YAML document; bad input is named", async () => {
    const root = await mkdtemp(join(tmpdir(), "ferry-build-"));
    try {
      await mkdir(join(root, "apps", "sub"), { recursive: true });
      await writeFile(join(root, "apps", "a.yaml"), "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: a\n---\napiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: b\n");
      await writeFile(join(root, "apps", "sub", "c.yml"), "apiVersion: v1\nkind: Secret\nmetadata:\n  name: c\n");
      await writeFile(join(root, "apps", "notes.txt"), "ignored");
      const objects = await buildManifests(root, "./apps");
      assert.deepEqual(objects.map((object) => `${object.kind}/${object.metadata.name}`), ["ConfigMap/a", "ConfigMap/b", "Secret/c"]);

      await writeFile(join(root, "apps", "broken.yaml"), "kind: [unclosed\n");
      await assert.rejects(buildManifests(root, "apps"), (error: unknown) => error instanceof FerryError && /apps\/broken\.yaml is not valid YAML/.test(error.message));
      await assert.rejects(buildManifests(root, "../outside"), /leaves the artifact/);
      await assert.rejects(buildManifests(root, "missing"), /kustomization path not found: missing/);
    } finally {
      await rm(root, { recursive: true, force: true });
    }
  });
});

describe("apply policy", () => {
  type Workload = ManifestObject & { spec: { replicas?: number; template: { spec: { containers: unknown[] } } } };
  const desired: Workload = withChecksum<Workload>({
    apiVersion: "apps/v1",
    kind: "Deployment",
    metadata: { name: "web", namespace: "apps", labels: { app: "web" } },
    spec: { replicas: 2, template: { spec: { containers: [{ name: "web", image: "web:1" }] } } },
  });
  const live: Workload = structuredClone({
    ...desired,
    metadata: { ...desired.metadata, uid: "u", resourceVersion: "7", managedFields: [] },
    spec: {
      ...desired.spec,
      strategy: { type: "RollingUpdate" },
      template: { spec: { containers: [{ name: "web", image: "web:1", imagePullPolicy: "IfNotPresent" }] } },
    },
    status: { replicas: 2 },
  });

  test("a Secret's checksum does not depend on its values, so it cannot confirm a guessed value; a changed value is still applied", () => {
    const secret = (value: string) => withChecksum<ManifestObject>({
      apiVersion: "v1", kind: "Secret", metadata: { name: "db", namespace: "apps" }, data: { password: Buffer.from(value).toString("base64") },
    });
    const checksum = (object: ManifestObject) => object.metadata.annotations?.[CHECKSUM_ANNOTATION];
    assert.equal(checksum(secret("hunter2")), checksum(secret("correct horse battery staple")));
    const liveSecret = structuredClone(secret("hunter2"));
    assert.equal(appliedAndUntouched(secret("hunter2"), liveSecret), true);
    assert.equal(appliedAndUntouched(secret("a new password"), liveSecret), false);
    const renamedKey = withChecksum<ManifestObject>({ ...secret("hunter2"), data: { passwd: "aHVudGVyMg==" } });
    assert.notEqual(checksum(renamedKey), checksum(secret("hunter2")), "the key names still count");
  });

  test("an object whose live copy has its checksum and every field (plus server defaults) needs no apply", () => {
    assert.equal(appliedAndUntouched(desired, live), true);
  });

  test("an edited field, a changed manifest, a missing checksum or a normalised value all mean: compare by dry-run", () => {
    const edited = structuredClone(live);
    edited.spec.replicas = 3;
    assert.equal(appliedAndUntouched(desired, edited), false);
    const changed = withChecksum({ ...desired, spec: { ...desired.spec, replicas: 5 } });
    assert.notEqual(changed.metadata.annotations?.[CHECKSUM_ANNOTATION], desired.metadata.annotations?.[CHECKSUM_ANNOTATION]);
    assert.equal(appliedAndUntouched(changed, live), false);
    const unstamped = structuredClone(live);
    delete unstamped.metadata.annotations?.[CHECKSUM_ANNOTATION];
    assert.equal(appliedAndUntouched(desired, unstamped), false);
    const extraContainer = structuredClone(live);
    extraContainer.spec.template.spec.containers.push({ name: "sidecar" });
    assert.equal(appliedAndUntouched(desired, extraContainer), false);
  });

  test("the checksum ignores key order and its own previous value", () => {
    const reordered = withChecksum<ManifestObject>({ kind: "Deployment", apiVersion: "apps/v1", spec: desired.spec, metadata: { labels: { app: "web" }, namespace: "apps", name: "web" } });
    assert.equal(reordered.metadata.annotations?.[CHECKSUM_ANNOTATION], desired.metadata.annotations?.[CHECKSUM_ANNOTATION]);
    assert.equal(withChecksum(desired).metadata.annotations?.[CHECKSUM_ANNOTATION], desired.metadata.annotations?.[CHECKSUM_ANNOTATION]);
  });

  test("stages and order follow Flux: CRDs and Namespaces first, classes next, webhooks last", () => {
    const object = (kind: string, name = "x") => ({ apiVersion: "v1", kind, metadata: { name } });
    const sorted = sortForApply([object("ValidatingWebhookConfiguration"), object("Deployment"), object("Namespace"), object("CustomResourceDefinition"), object("ConfigMap")]);
    assert.deepEqual(sorted.map((entry) => entry.kind), ["CustomResourceDefinition", "Namespace", "ConfigMap", "Deployment", "ValidatingWebhookConfiguration"]);
    assert.deepEqual([object("CustomResourceDefinition"), object("StorageClass"), object("Service")].map(stageOf), [0, 1, 2]);
  });

  test("policies are read from annotations or labels, case-insensitively; immutable-field errors are recognised", () => {
    assert.equal(ssaPolicy({ annotations: { "kustomize.ferry.dev/ssa": "ifnotpresent" } }), "IfNotPresent");
    assert.equal(ssaPolicy({ labels: { "kustomize.ferry.dev/ssa": "Ignore" } }), "Ignore");
    assert.equal(ssaPolicy(undefined), "Override");
    assert.equal(pruneDisabled({ annotations: { "kustomize.ferry.dev/prune": "Disabled" } }), true);
    assert.equal(isImmutableFieldError("Deployment.apps \"web\" is invalid: spec.selector: Invalid value: ...: field is immutable"), true);
    assert.equal(isImmutableFieldError("spec.replicas: Invalid value: -1"), false);
  });
});

describe("field manager takeover", () => {
  test("kubectl's apply and update entries join Ferry's Apply entry; other managers and subresources stay", () => {
    const entries = [
      { manager: "kubectl-client-side-apply", operation: "Update", apiVersion: "v1", fieldsType: "FieldsV1", fieldsV1: { "f:data": { "f:b": {} } } },
      { manager: "ferry", operation: "Apply", apiVersion: "v1", fieldsType: "FieldsV1", fieldsV1: { "f:data": { "f:a": {} } } },
      { manager: "kube-controller-manager", operation: "Update", apiVersion: "v1", fieldsV1: { "f:status": {} }, subresource: "status" },
      { manager: "kubectl-edit", operation: "Update", apiVersion: "v1", fieldsV1: { "f:data": { "f:c": {} } } },
    ];
    const result = takeOverManagedFields(entries, "ferry", "v1");
    assert.deepEqual(result?.map((entry) => entry.manager), ["kube-controller-manager", "kubectl-edit", "ferry"]);
    assert.deepEqual(result?.at(-1)?.fieldsV1, { "f:data": { "f:a": {}, "f:b": {} } });
    assert.equal(result?.at(-1)?.operation, "Apply");
    assert.equal(takeOverManagedFields(entries.slice(1), "ferry", "v1"), undefined);
  });
});
