// Flux Kustomization fields end to end on the test bed (issue 14): healthCheckExprs and dependsOn[].readyExpr (CEL),
// ignoreMissingComponents, buildMetadata, postBuild.substituteStrategy, healthChecks by group and kind, status.history
// and spec.ignore, each with the semantics of Flux's kustomize-controller, fluxcd/pkg/kustomize, ssa and runtime/cel.
import assert from "node:assert/strict";
import { mkdir, mkdtemp, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { setTimeout as sleep } from "node:timers/promises";
import { after, before, describe, test } from "node:test";
import yaml from "js-yaml";
import { skipUnlessBuilt } from "../harness/binaries.ts";
import { condition, DeliveryBed, readyWith } from "../harness/delivery.ts";

/** Writes `files` (name → YAML objects or text) into a fresh directory. */
async function fixture(files: Record<string, unknown>): Promise<string> {
  const dir = await mkdtemp(join(tmpdir(), "ferry-fixture-"));
  for (const [name, content] of Object.entries(files)) {
    await mkdir(join(dir, name, ".."), { recursive: true });
    const text = typeof content === "string" ? content : (content as unknown[]).map((object) => yaml.dump(object)).join("---\n");
    await writeFile(join(dir, name), text);
  }
  return dir;
}

const configMap = (name: string, data: Record<string, string>, metadata: Record<string, unknown> = {}) =>
  ({ apiVersion: "v1", kind: "ConfigMap", metadata: { name, ...metadata }, data });

/** ConfigMaps are always Current for kstatus; these expressions make one healthy only when its data says so. */
const PHASE_EXPRS = [{
  apiVersion: "v1",
  kind: "ConfigMap",
  inProgress: "has(data.phase) && data.phase == 'Pending'",
  failed: "has(data.phase) && data.phase == 'Failed'",
  current: "!has(data.phase) || data.phase == 'Ready'",
}];

describe("Kustomization: Flux's fields", { skip: skipUnlessBuilt("etcd", "kube-apiserver", "kube-controller-manager", "kube-scheduler", "kubectl", "kwok", "zot", "kustomize") }, () => {
  let bed: DeliveryBed;
  const fixtures: string[] = [];
  const makeFixture = async (files: Record<string, unknown>) => {
    const dir = await fixture(files);
    fixtures.push(dir);
    return dir;
  };
  const namespace = async (name: string) => {
    await bed.cluster.kubectl(["create", "namespace", name]);
    return name;
  };
  const patchSpec = (ns: string, name: string, spec: Record<string, unknown>) =>
    bed.cluster.kubectl(["patch", "kustomization", name, "-n", ns, "--type=merge", "-p", JSON.stringify({ spec })]);

  before(async () => {
    bed = await DeliveryBed.start();
    bed.startController();
  });
  after(async () => {
    await bed?.stop();
    await Promise.all(fixtures.map((dir) => rm(dir, { recursive: true, force: true })));
  });

  test("healthCheckExprs judge the kinds they name instead of kstatus: inProgress waits, current passes, failed fails fast", async () => {
    const ns = await namespace("cel-health");
    const digest = await bed.push(await makeFixture({ "cm.yaml": [configMap("gate", { phase: "Pending" }), configMap("plain", { a: "b" })] }), "cel-health/app");
    await bed.deliver(ns, "app", "cel-health/app", { wait: true, timeout: "2m", healthCheckExprs: PHASE_EXPRS });
    // kstatus would call both ConfigMaps Current at once; the expressions hold the Kustomization back.
    await bed.waitForKustomization(ns, "app", "health check running", (o) => condition(o, "Healthy")?.reason === "Progressing");
    await sleep(4_000);
    const waiting = await bed.kustomization(ns, "app");
    assert.notEqual(condition(waiting, "Ready")?.status, "True", JSON.stringify(waiting.status?.conditions));

    await bed.cluster.kubectl(["patch", "configmap", "gate", "-n", ns, "--type=merge", "-p", JSON.stringify({ data: { phase: "Ready" } })]);
    const ready = await bed.waitForKustomization(ns, "app", "Ready once current holds", readyWith(digest));
    assert.equal(condition(ready, "Healthy")?.status, "True");

    const failing = await bed.push(await makeFixture({ "cm.yaml": [configMap("gate", { phase: "Failed" })] }), "cel-health/app");
    await bed.reconcileSource(ns, "app");
    const failed = await bed.waitForKustomization(ns, "app", "HealthCheckFailed", (o) =>
      o.status?.lastAttemptedRevision?.endsWith(failing) === true && condition(o, "Ready")?.reason === "HealthCheckFailed");
    assert.match(condition(failed, "Ready")?.message ?? "", /ConfigMap\/cel-health\/gate status: 'Failed'/);
    assert.equal(condition(failed, "Healthy")?.status, "False");
  });

  test("healthCheckExprs that do not parse, or name one kind twice, stall with InvalidCELExpression naming the expression", async () => {
    const ns = await namespace("cel-invalid");
    await bed.push(await makeFixture({ "cm.yaml": [configMap("x", { a: "b" })] }), "cel-invalid/app");
    await bed.deliver(ns, "app", "cel-invalid/app", {
      wait: true,
      healthCheckExprs: [{ apiVersion: "v1", kind: "ConfigMap", current: "data.a == 'b' &&" }],
    });
    const stalled = await bed.waitForKustomization(ns, "app", "Stalled", (o) => condition(o, "Stalled")?.status === "True");
    assert.equal(condition(stalled, "Ready")?.reason, "InvalidCELExpression");
    assert.match(condition(stalled, "Stalled")?.message ?? "", /healthCheckExprs\[0\]: failed to parse the expression Current: failed to parse the CEL expression 'data\.a == 'b' &&'/);

    await patchSpec(ns, "app", { healthCheckExprs: [...PHASE_EXPRS, { ...PHASE_EXPRS[0], apiVersion: "v1" }] });
    const duplicate = await bed.waitForKustomization(ns, "app", "Stalled on a duplicate", (o) => /duplicate/.test(condition(o, "Stalled")?.message ?? ""));
    assert.match(condition(duplicate, "Stalled")?.message ?? "", /duplicate custom health check for GroupKind ConfigMap at healthCheckExprs\[1\]/);
  });

  test("dependsOn readyExpr: over self and dep, it replaces the built-in Ready check", async () => {
    const ns = await namespace("cel-deps");
    const infraDigest = await bed.push(await makeFixture({ "cm.yaml": [configMap("infra", { v: "1" })] }), "cel-deps/infra");
    await bed.deliver(ns, "infra", "cel-deps/infra", {});
    await bed.waitForKustomization(ns, "infra", "Ready", readyWith(infraDigest));
    await bed.cluster.kubectl(["label", "kustomization", "infra", "-n", ns, "app/version=v1"]);

    const appDigest = await bed.push(await makeFixture({ "cm.yaml": [configMap("app", { v: "2" })] }), "cel-deps/app");
    await bed.deliver(ns, "app", "cel-deps/app", {
      dependsOn: [{ name: "infra", readyExpr: "dep.metadata.labels['app/version'] == self.metadata.labels['app/version']" }],
    });
    await bed.cluster.kubectl(["label", "kustomization", "app", "-n", ns, "app/version=v2"]);
    // Until the label is there, the expression fails on the missing key: not ready either, saying why.
    const waiting = await bed.waitForKustomization(ns, "app", "DependencyNotReady by the expression", (o) =>
      condition(o, "Ready")?.reason === "DependencyNotReady" && /according to readyExpr eval/.test(condition(o, "Ready")?.message ?? ""));
    assert.match(condition(waiting, "Ready")?.message ?? "", /dependency 'cel-deps\/infra' is not ready according to readyExpr eval/);
    await assert.rejects(bed.cluster.kubectl(["get", "configmap", "app", "-n", ns]), /NotFound/);

    await bed.cluster.kubectl(["label", "kustomization", "infra", "-n", ns, "--overwrite", "app/version=v2"]);
    await bed.waitForKustomization(ns, "app", "Ready once the versions match", readyWith(appDigest), 30_000);

    // The expression replaces the Ready check: a dependency that is not Ready (its source does not exist) does not
    // hold back a Kustomization whose readyExpr is satisfied.
    await bed.applyObjects([{
      apiVersion: "kustomize.ferry.dev/v1",
      kind: "Kustomization",
      metadata: { namespace: ns, name: "broken" },
      spec: { sourceRef: { kind: "OCIRepository", name: "missing" }, path: "./", interval: "1h", prune: true },
    }]);
    await bed.waitForKustomization(ns, "broken", "not Ready", (o) => condition(o, "Ready")?.status === "False");
    await patchSpec(ns, "app", { dependsOn: [{ name: "broken", readyExpr: "dep.metadata.name == 'broken' && self.metadata.name == 'app'" }] });
    await bed.waitForKustomization(ns, "app", "Ready despite the dependency", (o) =>
      condition(o, "Ready")?.status === "True" && o.status?.observedGeneration === o.metadata.generation);

    // An expression that does not compile (here: not boolean) stalls, naming it.
    await patchSpec(ns, "app", { dependsOn: [{ name: "infra", readyExpr: "dep.metadata.name" }] });
    const stalled = await bed.waitForKustomization(ns, "app", "Stalled", (o) => condition(o, "Stalled")?.status === "True");
    assert.equal(condition(stalled, "Ready")?.reason, "InvalidCELExpression");
    assert.match(condition(stalled, "Stalled")?.message ?? "", /dependency cel-deps\/infra: CEL expression output type mismatch: expected bool, got dyn/);
  });

  const COMPONENT = {
    "components/extra/kustomization.yaml": "apiVersion: kustomize.config.k8s.io/v1alpha1\nkind: Component\nresources: [extra.yaml]\n",
    "components/extra/extra.yaml": [configMap("extra", { from: "component" })],
    "apps/a.yaml": [configMap("a", { v: "1" })],
  };

  test("ignoreMissingComponents: a spec component missing from the artifact is left out instead of failing the build", async () => {
    const ns = await namespace("components");
    const digest = await bed.push(await makeFixture(COMPONENT), "components/app");
    await bed.deliver(ns, "app", "components/app", { path: "./apps", components: ["../components/extra", "../components/absent"] });
    const failed = await bed.waitForKustomization(ns, "app", "BuildFailed", (o) => condition(o, "Ready")?.reason === "BuildFailed");
    assert.match(condition(failed, "Ready")?.message ?? "", /absent/);
    await patchSpec(ns, "app", { ignoreMissingComponents: true });
    const ready = await bed.waitForKustomization(ns, "app", "Ready", readyWith(digest));
    assert.deepEqual(ready.status?.inventory?.entries.map((entry) => entry.id).sort(), ["components_a__ConfigMap", "components_extra__ConfigMap"]);
  });

  test("buildMetadata originAnnotations: each applied object names the file it came from", async () => {
    const ns = await namespace("build-metadata");
    const digest = await bed.push(await makeFixture(COMPONENT), "build-metadata/app");
    await bed.deliver(ns, "app", "build-metadata/app", { path: "./apps", buildMetadata: ["originAnnotations"] });
    await bed.waitForKustomization(ns, "app", "Ready", readyWith(digest));
    const applied = await bed.getJson(["configmap", "a", "-n", ns]) as { metadata: { annotations?: Record<string, string> } };
    assert.equal(applied.metadata.annotations?.["config.kubernetes.io/origin"], "path: a.yaml\n");
  });

  test("postBuild.substituteStrategy Always substitutes with no variables defined, so defaults apply; WithVariables does not", async () => {
    const ns = await namespace("substitute-always");
    const digest = await bed.push(await makeFixture({ "cm.yaml": [configMap("settings", { region: "${region:=eu-west-1}" })] }), "substitute-always/app");
    await bed.deliver(ns, "app", "substitute-always/app", { postBuild: { substituteStrategy: "WithVariables" } });
    await bed.waitForKustomization(ns, "app", "Ready", readyWith(digest));
    const region = async () => ((await bed.getJson(["configmap", "settings", "-n", ns])) as { data: { region: string } }).data.region;
    assert.equal(await region(), "${region:=eu-west-1}");
    await patchSpec(ns, "app", { postBuild: { substituteStrategy: "Always" } });
    await bed.waitForKustomization(ns, "app", "Ready with Always", (o) =>
      condition(o, "Ready")?.status === "True" && o.status?.observedGeneration === o.metadata.generation);
    assert.equal(await region(), "eu-west-1");
  });

  test("healthChecks name a group and kind: the version is the cluster's preferred one, and apps when apiVersion is left out", async () => {
    const ns = await namespace("health-versions");
    const deployment = (name: string) => ({
      apiVersion: "apps/v1",
      kind: "Deployment",
      metadata: { name },
      spec: {
        selector: { matchLabels: { app: name } },
        template: { metadata: { labels: { app: name } }, spec: { containers: [{ name: "app", image: "example.com/app:1" }] } },
      },
    });
    const digest = await bed.push(await makeFixture({ "d.yaml": [deployment("old-version"), deployment("no-version")] }), "health-versions/app");
    await bed.deliver(ns, "app", "health-versions/app", {
      timeout: "40s",
      healthChecks: [
        // apps/v1beta1 has not been served since Kubernetes 1.16; Flux reads the Deployment at apps/v1.
        { apiVersion: "apps/v1beta1", kind: "Deployment", name: "old-version" },
        { kind: "Deployment", name: "no-version" },
        // A Kustomization never waits on itself (Flux leaves it out).
        { apiVersion: "kustomize.ferry.dev/v1", kind: "Kustomization", name: "app" },
      ],
    });
    const ready = await bed.waitForKustomization(ns, "app", "Ready and Healthy", readyWith(digest));
    assert.equal(condition(ready, "Healthy")?.status, "True");
  });

  test("status.history records each outcome by digest, counts repeats, and keeps the last five", async () => {
    const ns = await namespace("history");
    interface Snapshot {
      digest: string;
      firstReconciled: string;
      lastReconciled: string;
      lastReconciledDuration: string;
      lastReconciledStatus: string;
      totalReconciliations: number;
      metadata?: Record<string, string>;
    }
    const history = async () => ((await bed.kustomization(ns, "app")).status as { history?: Snapshot[] } | undefined)?.history ?? [];
    const v1 = await bed.push(await makeFixture({ "cm.yaml": [configMap("settings", { v: "1" })] }), "history/app");
    await bed.deliver(ns, "app", "history/app", {});
    const ready = await bed.waitForKustomization(ns, "app", "Ready", readyWith(v1));
    const [first] = await history();
    assert.ok(first, "a snapshot after the first reconcile");
    assert.match(first.digest, /^sha256:[0-9a-f]{64}$/);
    assert.equal(first.lastReconciledStatus, "ReconciliationSucceeded");
    assert.equal(first.totalReconciliations, 1);
    // bed.push gives the artifact the origin revision "r" (org.opencontainers.image.revision).
    assert.deepEqual(first.metadata, { revision: ready.status?.lastAppliedRevision, originRevision: "r" });
    assert.match(first.lastReconciledDuration, /^[0-9.]+(ms|s)$/);
    assert.match(first.firstReconciled, /^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ$/);

    // The same objects again: the snapshot is counted, not repeated.
    await bed.cluster.kubectl(["annotate", "kustomization", "app", "-n", ns, "--overwrite", `reconcile.fluxcd.io/requestedAt=${Date.now()}`]);
    await bed.waitForKustomization(ns, "app", "reconciled again", (o) => (o.status as { history?: Snapshot[] }).history?.[0]?.totalReconciliations === 2);
    assert.equal((await history()).length, 1);

    // An apply the API server refuses is a ReconciliationFailed snapshot of its own, first.
    const broken = await bed.push(await makeFixture({ "cm.yaml": "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: settings\ndata:\n  v: [1]\n" }), "history/app");
    await bed.reconcileSource(ns, "app");
    await bed.waitForKustomization(ns, "app", "apply failed", (o) =>
      o.status?.lastAttemptedRevision?.endsWith(broken) === true && condition(o, "Ready")?.reason === "ReconciliationFailed");
    const afterFailure = await history();
    assert.deepEqual(afterFailure.map((snapshot) => snapshot.lastReconciledStatus), ["ReconciliationFailed", "ReconciliationSucceeded"]);
    assert.equal(afterFailure[0]?.metadata?.revision?.endsWith(broken), true);

    // Five more revisions: only the last five snapshots are kept, the newest first.
    const digests: string[] = [];
    for (let version = 2; version <= 6; version++) {
      const digest = await bed.push(await makeFixture({ "cm.yaml": [configMap("settings", { v: String(version) })] }), "history/app");
      await bed.reconcileSource(ns, "app");
      await bed.waitForKustomization(ns, "app", `Ready v${version}`, readyWith(digest));
      digests.push(digest);
    }
    const kept = await history();
    assert.equal(kept.length, 5);
    assert.deepEqual(kept.map((snapshot) => snapshot.metadata?.revision?.split("@")[1]), [...digests].reverse());
  });

  test("spec.ignore: drift in ignored fields is left alone (another applier's or an edit), drift elsewhere is corrected", async () => {
    const ns = await namespace("drift-ignore");
    const digest = await bed.push(await makeFixture({
      "cm.yaml": [configMap("tuned", { managed: "1", scaled: "1", edited: "1" }), configMap("other", { edited: "1" })],
    }), "drift-ignore/app");
    await bed.deliver(ns, "app", "drift-ignore/app", {
      ignore: [{ paths: ["/data/scaled", "/data/edited"], target: { kind: "Config.*", name: "tuned" } }],
    });
    await bed.waitForKustomization(ns, "app", "Ready", readyWith(digest));
    // Another Apply manager (an autoscaler, say) takes one field; an edit changes another; and drift where no rule is.
    await bed.cluster.kubectl(["apply", "--server-side", "--force-conflicts", "--field-manager=autoscaler", "-f", "-"], {
      input: JSON.stringify({ apiVersion: "v1", kind: "ConfigMap", metadata: { name: "tuned", namespace: ns }, data: { scaled: "5" } }),
    });
    for (const [name, data] of [["tuned", { edited: "by hand", managed: "drifted" }], ["other", { edited: "by hand" }]] as const) {
      await bed.cluster.kubectl(["patch", "configmap", name, "-n", ns, "--type=merge", "-p", JSON.stringify({ data })]);
    }
    const requestedAt = String(Date.now());
    await bed.cluster.kubectl(["annotate", "kustomization", "app", "-n", ns, "--overwrite", `reconcile.fluxcd.io/requestedAt=${requestedAt}`]);
    await bed.waitForKustomization(ns, "app", "reconciled again", (o) =>
      condition(o, "Ready")?.status === "True" && (o.status as { lastHandledReconcileAt?: string }).lastHandledReconcileAt === requestedAt);
    const data = async (name: string) => ((await bed.getJson(["configmap", name, "-n", ns])) as { data: Record<string, string> }).data;
    assert.deepEqual(await data("tuned"), { managed: "1", scaled: "5", edited: "by hand" });
    assert.deepEqual(await data("other"), { edited: "1" }, "objects no rule selects are corrected as before");
    const managers = ((await bed.getJson(["configmap", "tuned", "-n", ns, "--show-managed-fields"])) as {
      metadata: { managedFields: Array<{ manager: string; fieldsV1?: { "f:data"?: Record<string, unknown> } }> };
    }).metadata.managedFields;
    assert.equal(managers.find((entry) => entry.manager === "ferry")?.fieldsV1?.["f:data"]?.["f:scaled"], undefined,
      "Ferry left the field the other applier owns out of its apply");
  });
});
