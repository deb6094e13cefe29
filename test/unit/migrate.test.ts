// ferry migrate's pure core: Flux objects, in the shapes Flux's docs and `flux export` write them, translated into
// Ferry's, with every refusal named; and the managedFields/label handover between kustomize-controller and Ferry.
import assert from "node:assert/strict";
import { describe, it } from "node:test";
import yaml from "js-yaml";
import { absorbMigrateEntry, FERRY_OWNER, FLUX_OWNER, handOver, handOverManagedFields, type LiveObject } from "../../src/migrate/handover.ts";
import {
  type DeliveryObject,
  FLUX_WAS_SUSPENDED_ANNOTATION,
  MIGRATED_FROM_ANNOTATION,
  planMigration,
  SUSPENDED_BY_MIGRATE_ANNOTATION,
} from "../../src/migrate/translate.ts";

// As in Flux's OCIRepository and Kustomization docs (podinfo's manifests, keyless verification) and as
// `flux get`/`kubectl get -o yaml` shows them: status.inventory entries in Flux's id format.
const FLUX_YAML = `
apiVersion: source.toolkit.fluxcd.io/v1
kind: OCIRepository
metadata:
  name: podinfo
  namespace: apps
  annotations:
    kubectl.kubernetes.io/last-applied-configuration: '{}'
spec:
  interval: 5m0s
  url: oci://ghcr.io/stefanprodan/manifests/podinfo
  ref:
    semver: ">=6.0.0"
  layerSelector:
    mediaType: "application/vnd.cncf.flux.content.v1.tar+gzip"
    operation: extract
  verify:
    provider: cosign
    matchOIDCIdentity:
      - issuer: "^https://token.actions.githubusercontent.com$"
        subject: "^https://github.com/stefanprodan/podinfo.*$"
---
apiVersion: kustomize.toolkit.fluxcd.io/v1
kind: Kustomization
metadata:
  name: podinfo
  namespace: apps
  labels: { team: web }
  annotations: { reconcile.fluxcd.io/requestedAt: "2025-01-01T00:00:00Z" }
spec:
  interval: 10m
  targetNamespace: default
  sourceRef:
    kind: OCIRepository
    name: podinfo
  path: "./"
  prune: true
  wait: true
  timeout: 1m
  patches:
    - patch: |
        - op: replace
          path: /spec/minReplicas
          value: 3
      target:
        kind: HorizontalPodAutoscaler
  postBuild:
    substitute:
      cluster_env: "prod"
status:
  inventory:
    entries:
      - id: default_podinfo__Service
        v: v1
      - id: default_podinfo_apps_Deployment
        v: v1
      - id: default_podinfo_autoscaling_HorizontalPodAutoscaler
        v: v2
`;

const fluxObjects = () => yaml.loadAll(FLUX_YAML) as DeliveryObject[];

describe("planMigration", () => {
  it("translates Flux's OCIRepository and Kustomization field for field, switching API groups", () => {
    const plan = planMigration(fluxObjects());
    assert.deepEqual(plan.refusals, []);
    const [source] = plan.sources;
    const [kustomization] = plan.kustomizations;
    assert.equal(source?.ferry.apiVersion, "source.ferry.dev/v1");
    assert.deepEqual(source?.ferry.spec, fluxObjects()[0]?.spec);
    assert.equal(source?.ferry.metadata.annotations?.["kubectl.kubernetes.io/last-applied-configuration"], undefined);
    assert.equal(source?.ferry.metadata.annotations?.[MIGRATED_FROM_ANNOTATION], "source.toolkit.fluxcd.io/v1");
    assert.equal(kustomization?.ferry.apiVersion, "kustomize.ferry.dev/v1");
    assert.deepEqual(kustomization?.ferry.spec, fluxObjects()[1]?.spec);
    assert.deepEqual(kustomization?.ferry.metadata, {
      name: "podinfo",
      namespace: "apps",
      labels: { team: "web" },
      annotations: { "reconcile.fluxcd.io/requestedAt": "2025-01-01T00:00:00Z", [MIGRATED_FROM_ANNOTATION]: "kustomize.toolkit.fluxcd.io/v1" },
    });
    assert.deepEqual(kustomization?.inventory.map((entry) => entry.id), [
      "default_podinfo__Service", "default_podinfo_apps_Deployment", "default_podinfo_autoscaling_HorizontalPodAutoscaler",
    ]);
    assert.equal(kustomization?.ferry.status, undefined);
  });

  it("switches a sourceRef's apiVersion to Ferry's group", () => {
    const [source, kustomization] = fluxObjects();
    (kustomization as DeliveryObject).spec = { ...kustomization?.spec, sourceRef: { apiVersion: "source.toolkit.fluxcd.io/v1", kind: "OCIRepository", name: "podinfo" } };
    const plan = planMigration([source as DeliveryObject, kustomization as DeliveryObject]);
    assert.deepEqual(plan.kustomizations[0]?.ferry.spec?.sourceRef, { apiVersion: "source.ferry.dev/v1", kind: "OCIRepository", name: "podinfo" });
  });

  it("refuses Git, Bucket and Helm sources and Kustomizations that follow them, by name", () => {
    const plan = planMigration(yaml.loadAll(`
apiVersion: source.toolkit.fluxcd.io/v1
kind: GitRepository
metadata: { name: flux-system, namespace: flux-system }
spec: { interval: 1m, url: "https://github.com/org/fleet", ref: { branch: main } }
---
apiVersion: kustomize.toolkit.fluxcd.io/v1
kind: Kustomization
metadata: { name: apps, namespace: flux-system }
spec: { interval: 10m, sourceRef: { kind: GitRepository, name: flux-system }, path: ./apps, prune: true }
---
apiVersion: kustomize.toolkit.fluxcd.io/v1
kind: Kustomization
metadata: { name: secrets, namespace: flux-system }
spec: { interval: 10m, sourceRef: { kind: Bucket, name: secrets }, prune: true }
`) as DeliveryObject[]);
    assert.equal(plan.kustomizations.length, 0);
    assert.match(plan.refusals.join("\n"), /GitRepository flux-system \(source\.toolkit\.fluxcd\.io\/v1\): Ferry has no Git at runtime/);
    assert.match(plan.refusals.join("\n"), /Kustomization flux-system\/apps: spec\.sourceRef\.kind GitRepository/);
    assert.match(plan.refusals.join("\n"), /Kustomization flux-system\/secrets: spec\.sourceRef\.kind Bucket/);
  });

  it("refuses fields Ferry lacks and values Ferry is stricter about, by path", () => {
    const [source, kustomization] = fluxObjects();
    (source as DeliveryObject).spec = { ...source?.spec, ref: { tag: "-not-a-tag" }, someFutureField: true };
    (kustomization as DeliveryObject).spec = { ...kustomization?.spec, sourceRef: { kind: "OCIRepository", name: "podinfo", extra: 1 } };
    const plan = planMigration([source as DeliveryObject, kustomization as DeliveryObject]);
    const refusals = plan.refusals.join("\n");
    assert.match(refusals, /OCIRepository apps\/podinfo: spec\.ref\.tag: /);
    assert.match(refusals, /Kustomization apps\/podinfo: spec\.sourceRef\.extra is a field Ferry does not have/);
    // Its source refused, a valid Kustomization is refused for it too: no half migration.
    const alone = planMigration([source as DeliveryObject, fluxObjects()[1] as DeliveryObject]);
    assert.match(alone.refusals.join("\n"), /Kustomization apps\/podinfo: its source OCIRepository apps\/podinfo is not migrated with it/);
  });

  it("reports a field Ferry lacks inside a list", () => {
    const [source, kustomization] = fluxObjects();
    (kustomization as DeliveryObject).spec = { ...kustomization?.spec, healthChecks: [{ kind: "Deployment", name: "podinfo", color: "red" }] };
    const plan = planMigration([source as DeliveryObject, kustomization as DeliveryObject]);
    assert.deepEqual(plan.refusals, ["Kustomization apps/podinfo: spec.healthChecks[0].color is a field Ferry does not have"]);
  });

  it("refuses Flux objects someone suspended unless forced, and remembers the suspension", () => {
    const objects = fluxObjects().map((object) => ({ ...object, spec: { ...object.spec, suspend: true } }));
    assert.match(planMigration(objects).refusals.join("\n"), /already suspended by someone else.*--force/);
    const forced = planMigration(objects, { force: true });
    assert.deepEqual(forced.refusals, []);
    assert.equal(forced.kustomizations[0]?.fluxWasSuspended, true);
    assert.equal(forced.kustomizations[0]?.ferry.spec?.suspend, true);
    assert.equal(forced.kustomizations[0]?.ferry.metadata.annotations?.[FLUX_WAS_SUSPENDED_ANNOTATION], "true");
  });

  it("takes a suspension of its own (an interrupted run) for no suspension, and does not carry the mark", () => {
    const objects = fluxObjects().map((object) => ({
      ...object,
      metadata: { ...object.metadata, annotations: { ...object.metadata.annotations, [SUSPENDED_BY_MIGRATE_ANNOTATION]: "true" } },
      spec: { ...object.spec, suspend: true },
    }));
    const plan = planMigration(objects);
    assert.deepEqual(plan.refusals, []);
    assert.equal(plan.kustomizations[0]?.fluxWasSuspended, false);
    assert.equal(plan.kustomizations[0]?.ferry.metadata.annotations?.[SUSPENDED_BY_MIGRATE_ANNOTATION], undefined);
  });

  it("refuses what would leave a reference dangling across Flux and Ferry", () => {
    const [source, kustomization] = fluxObjects();
    const dependent = { ...kustomization, spec: { ...kustomization?.spec, dependsOn: [{ name: "infra" }] } } as DeliveryObject;
    assert.match(planMigration([source as DeliveryObject, dependent]).refusals.join("\n"), /dependsOn Kustomization apps\/infra is not migrated with it/);
    assert.deepEqual(planMigration([source as DeliveryObject, dependent], { existingFerryKustomizations: new Set(["apps/infra"]) }).refusals, []);
    assert.deepEqual(planMigration([kustomization as DeliveryObject], { existingFerrySources: new Set(["apps/podinfo"]) }).refusals, []);
    const other = { ...kustomization, metadata: { name: "other", namespace: "apps" } } as DeliveryObject;
    assert.match(
      planMigration([source as DeliveryObject], { remainingFluxKustomizations: [other] }).refusals.join("\n"),
      /OCIRepository apps\/podinfo: Kustomization apps\/other still follows it under Flux/,
    );
  });

  it("refuses cosign verification that trusts any identity, which Ferry never accepts", () => {
    const [source, kustomization] = fluxObjects();
    (source as DeliveryObject).spec = { ...source?.spec, verify: { provider: "cosign" } };
    assert.match(planMigration([source as DeliveryObject, kustomization as DeliveryObject]).refusals.join("\n"),
      /OCIRepository apps\/podinfo: spec\.verify has neither secretRef nor matchOIDCIdentity/);
  });

  it("refuses what Ferry would stall on, in the reconcilers' words: workload identity, notation, decryption without age keys", () => {
    const [source, kustomization] = fluxObjects() as [DeliveryObject, DeliveryObject];
    const withSpec = (object: DeliveryObject, spec: Record<string, unknown>) =>
      ({ ...object, spec: { ...object.spec, ...spec } }) as DeliveryObject;
    const refusals = (objects: DeliveryObject[]) => planMigration(objects).refusals.join("\n");
    assert.match(refusals([withSpec(source, { provider: "aws" }), kustomization]), /OCIRepository apps\/podinfo: .*workload identity for provider 'aws' is not supported by Ferry yet/);
    assert.doesNotMatch(refusals([withSpec(source, { provider: "aws", secretRef: { name: "ecr" } }), kustomization]), /workload identity/);
    assert.doesNotMatch(refusals([withSpec(source, { provider: "gcp", serviceAccountName: "puller" }), kustomization]), /workload identity/);
    assert.match(refusals([withSpec(source, { verify: { provider: "notation", secretRef: { name: "certs" } } }), kustomization]), /notation verification is not supported by Ferry yet/);
    assert.match(refusals([source, withSpec(kustomization, { decryption: { provider: "sops" } })]), /Kustomization apps\/podinfo: spec\.decryption\.secretRef is required/);
    assert.match(refusals([source, withSpec(kustomization, { decryption: { provider: "sops", serviceAccountName: "kms", secretRef: { name: "k" } } })]),
      /spec\.decryption\.serviceAccountName is for cloud KMS access/);
    assert.deepEqual(planMigration([source, withSpec(kustomization, { decryption: { provider: "sops", secretRef: { name: "k" } } })]).refusals, []);
  });

  it("refuses a Flux object whose spec.suspend another Flux Kustomization's apply owns: it would be resumed beside Ferry", () => {
    const [source, kustomization] = fluxObjects() as [DeliveryObject, DeliveryObject];
    const appliedWith = (fieldsV1: Record<string, unknown>, manager = "kustomize-controller") => ({
      ...kustomization,
      metadata: {
        ...kustomization.metadata,
        labels: { "kustomize.toolkit.fluxcd.io/name": "flux-system", "kustomize.toolkit.fluxcd.io/namespace": "flux-system" },
        managedFields: [{ manager, operation: "Apply", fieldsV1 }],
      },
    }) as DeliveryObject;
    assert.match(planMigration([source, appliedWith({ "f:spec": { "f:suspend": {}, "f:interval": {} } })]).refusals.join("\n"),
      /Kustomization apps\/podinfo: spec\.suspend is set by Flux Kustomization flux-system\/flux-system's manifest/);
    assert.deepEqual(planMigration([source, appliedWith({ "f:spec": { "f:interval": {} } })]).refusals, [], "a manifest without suspend leaves ours alone");
    assert.deepEqual(planMigration([source, appliedWith({ "f:spec": { "f:suspend": {} } }, "kubectl")]).refusals, []);
  });

  it("refuses a source a HelmRelease follows through chartRef, and a Kustomization applying to another cluster", () => {
    const [source, kustomization] = fluxObjects();
    const release = {
      apiVersion: "helm.toolkit.fluxcd.io/v2",
      kind: "HelmRelease",
      metadata: { name: "podinfo", namespace: "apps" },
      spec: { interval: "10m", chartRef: { kind: "OCIRepository", name: "podinfo" } },
    } as DeliveryObject;
    assert.match(
      planMigration([source as DeliveryObject, kustomization as DeliveryObject], { remainingFluxKustomizations: [release] }).refusals.join("\n"),
      /OCIRepository apps\/podinfo: HelmRelease apps\/podinfo still follows it under Flux.*Ferry has no HelmRelease/,
    );
    const remote = { ...kustomization, spec: { ...kustomization?.spec, kubeConfig: { secretRef: { name: "prod-kubeconfig" } } } } as DeliveryObject;
    assert.match(planMigration([source as DeliveryObject, remote], { inCluster: true }).refusals.join("\n"), /spec\.kubeConfig: its objects are in another cluster/);
    assert.deepEqual(planMigration([source as DeliveryObject, remote]).refusals, [], "--export prints it as it is");
  });

  it("refuses to take a name a Ferry object not written by ferry migrate already has", () => {
    const plan = planMigration(fluxObjects(), { foreignFerryObjects: new Set(["Kustomization/apps/podinfo"]) });
    assert.deepEqual(plan.refusals, ["Kustomization apps/podinfo: Ferry's Kustomization of that name already exists and was not written by ferry migrate"]);
  });

  it("warns of a Flux object applied by another Flux Kustomization (flux bootstrap's), whose owner labels are not carried", () => {
    const [source, kustomization] = fluxObjects();
    const applied = {
      ...kustomization,
      metadata: { ...kustomization?.metadata, labels: { team: "web", "kustomize.toolkit.fluxcd.io/name": "flux-system", "kustomize.toolkit.fluxcd.io/namespace": "flux-system" } },
    } as DeliveryObject;
    const plan = planMigration([source as DeliveryObject, applied]);
    assert.deepEqual(plan.refusals, []);
    assert.deepEqual(plan.kustomizations[0]?.ferry.metadata.labels, { team: "web" });
    assert.match(plan.warnings.join("\n"), /Kustomization apps\/podinfo is applied by Flux Kustomization flux-system\/flux-system/);
    assert.deepEqual(planMigration(fluxObjects()).warnings, []);
  });

  it("refuses v1beta2 objects and malformed inventory ids", () => {
    const [source, kustomization] = fluxObjects();
    const old = { ...source, apiVersion: "source.toolkit.fluxcd.io/v1beta2" } as DeliveryObject;
    assert.match(planMigration([old]).refusals.join("\n"), /upgrade Flux's objects to v1 first/);
    const broken = { ...kustomization, status: { inventory: { entries: [{ id: "nonsense", v: "v1" }] } } } as DeliveryObject;
    assert.match(planMigration([source as DeliveryObject, broken]).refusals.join("\n"), /status\.inventory entry .*nonsense/);
  });
});

const FLUX_APPLIED: LiveObject = {
  apiVersion: "apps/v1",
  kind: "Deployment",
  metadata: {
    name: "podinfo",
    namespace: "default",
    resourceVersion: "42",
    labels: { app: "podinfo", "kustomize.toolkit.fluxcd.io/name": "podinfo", "kustomize.toolkit.fluxcd.io/namespace": "apps" },
    managedFields: [
      {
        manager: "kustomize-controller",
        operation: "Apply",
        apiVersion: "apps/v1",
        fieldsType: "FieldsV1",
        fieldsV1: {
          "f:metadata": { "f:labels": { "f:app": {}, "f:kustomize.toolkit.fluxcd.io/name": {}, "f:kustomize.toolkit.fluxcd.io/namespace": {} } },
          "f:spec": { "f:minReadySeconds": {}, "f:replicas": {} },
        },
      },
      { manager: "kube-controller-manager", operation: "Update", apiVersion: "apps/v1", subresource: "status", fieldsV1: { "f:status": {} } },
      { manager: "kubectl-scale", operation: "Update", apiVersion: "apps/v1", fieldsV1: { "f:spec": { "f:replicas": {} } } },
    ],
  },
};

describe("handOver", () => {
  it("renames the owner labels and gives kustomize-controller's fields to Ferry's Apply entry", () => {
    const handover = handOver(FLUX_APPLIED, { namespace: "apps", name: "podinfo" }, FLUX_OWNER, FERRY_OWNER);
    assert.ok("patch" in handover);
    const [test, labels, managed] = handover.patch as Array<{ op: string; path: string; value: unknown }>;
    assert.deepEqual(test, { op: "test", path: "/metadata/resourceVersion", value: "42" });
    assert.deepEqual(labels?.value, { app: "podinfo", "kustomize.ferry.dev/name": "podinfo", "kustomize.ferry.dev/namespace": "apps" });
    const entries = managed?.value as Array<{ manager: string; operation: string; fieldsV1: unknown }>;
    assert.deepEqual(entries.map((entry) => `${entry.manager}/${entry.operation}`), ["kube-controller-manager/Update", "kubectl-scale/Update", "ferry/Apply"]);
    assert.deepEqual(entries[2]?.fieldsV1, {
      "f:metadata": { "f:labels": { "f:app": {}, "f:kustomize.ferry.dev/name": {}, "f:kustomize.ferry.dev/namespace": {} } },
      "f:spec": { "f:minReadySeconds": {}, "f:replicas": {} },
    });
  });

  it("leaves alone objects labelled for another Kustomization or not at all", () => {
    const other = handOver(FLUX_APPLIED, { namespace: "apps", name: "other" }, FLUX_OWNER, FERRY_OWNER);
    assert.ok("skipped" in other && /not labelled kustomize\.toolkit\.fluxcd\.io\/name=other/.test(other.skipped));
  });

  it("hands back the other way for --rollback, merging into an existing entry", () => {
    const handover = handOver(FLUX_APPLIED, { namespace: "apps", name: "podinfo" }, FLUX_OWNER, FERRY_OWNER);
    assert.ok("patch" in handover);
    const ops = handover.patch as Array<{ value: unknown }>;
    const migrated: LiveObject = {
      ...FLUX_APPLIED,
      metadata: { ...FLUX_APPLIED.metadata, labels: ops[1]?.value as Record<string, string>, managedFields: ops[2]?.value as never },
    };
    const back = handOver(migrated, { namespace: "apps", name: "podinfo" }, FERRY_OWNER, FLUX_OWNER);
    assert.ok("patch" in back);
    const backOps = back.patch as Array<{ value: unknown }>;
    assert.deepEqual(backOps[1]?.value, FLUX_APPLIED.metadata.labels);
    const entries = backOps[2]?.value as Array<{ manager: string; fieldsV1: unknown }>;
    assert.deepEqual(entries.at(-1)?.fieldsV1, FLUX_APPLIED.metadata.managedFields?.[0]?.fieldsV1);
  });

  it("folds the handover patch's own Update entry (the relabelling) into the new owner's Apply entry", () => {
    const entries = [
      { manager: "ferry", operation: "Apply", apiVersion: "apps/v1", fieldsV1: { "f:spec": { "f:replicas": {} } } },
      { manager: "ferry-migrate", operation: "Update", apiVersion: "apps/v1", fieldsV1: { "f:metadata": { "f:labels": { "f:kustomize.ferry.dev/name": {} } } } },
      { manager: "kube-controller-manager", operation: "Update", apiVersion: "apps/v1", subresource: "status", fieldsV1: { "f:status": {} } },
    ];
    const folded = absorbMigrateEntry(entries, FERRY_OWNER, "apps/v1");
    assert.deepEqual(folded?.map((entry) => entry.manager), ["kube-controller-manager", "ferry"]);
    assert.deepEqual(folded?.[1]?.fieldsV1, { "f:spec": { "f:replicas": {} }, "f:metadata": { "f:labels": { "f:kustomize.ferry.dev/name": {} } } });
    assert.equal(absorbMigrateEntry([entries[0] as never], FERRY_OWNER, "apps/v1"), undefined);
  });

  it("merges into Ferry's own Apply entry when there is one, and is undefined when Flux owns nothing", () => {
    const entries = [
      { manager: "kustomize-controller", operation: "Apply", apiVersion: "v1", fieldsV1: { "f:data": { "f:a": {} } } },
      { manager: "ferry", operation: "Apply", apiVersion: "v1", fieldsV1: { "f:data": { "f:b": {} } } },
    ];
    const merged = handOverManagedFields(entries, FLUX_OWNER, FERRY_OWNER, "v1");
    assert.deepEqual(merged?.map((entry) => entry.manager), ["ferry"]);
    assert.deepEqual(merged?.[0]?.fieldsV1, { "f:data": { "f:a": {}, "f:b": {} } });
    assert.equal(handOverManagedFields([entries[1] as never], FLUX_OWNER, FERRY_OWNER, "v1"), undefined);
  });
});
