// The Kustomization spec end to end on the test bed: overlays from the spec, substitution, dependencies, health,
// tenancy, forced recreation, per-object policies, broken artifacts, podinfo's overlays and kube-prometheus.
import assert from "node:assert/strict";
import { mkdir, mkdtemp, readFile, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, before, describe, test } from "node:test";
import yaml from "js-yaml";
import { skipUnlessBuilt } from "../harness/binaries.ts";
import { namespaceAdmin } from "../harness/tenants.ts";
import { condition, DeliveryBed, readyWith } from "../harness/delivery.ts";

const CORPORA = join(import.meta.dirname, "..", "..", "..", "shared", "corpora");
const PODINFO = join(CORPORA, "podinfo", "kustomize");
const EXIT_BEFORE_PRUNE = join(import.meta.dirname, "..", "harness", "faults", "exit-before-prune.ts");

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

describe("Kustomization features", { skip: skipUnlessBuilt("etcd", "kube-apiserver", "kube-controller-manager", "kube-scheduler", "kubectl", "kwok", "zot", "kustomize") }, () => {
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

  before(async () => {
    bed = await DeliveryBed.start();
    bed.startController();
  });
  after(async () => {
    await bed?.stop();
    await Promise.all(fixtures.map((dir) => rm(dir, { recursive: true, force: true })));
  });

  test("namePrefix, nameSuffix, commonMetadata, patches (strategic merge and JSON 6902) and images from the spec", async () => {
    const ns = await namespace("overlay");
    const digest = await bed.push(PODINFO, "overlay/podinfo");
    await bed.deliver(ns, "podinfo", "overlay/podinfo", {
      namePrefix: "pre-",
      nameSuffix: "-suf",
      commonMetadata: { labels: { team: "payments" }, annotations: { "example.com/owner": "alice" } },
      patches: [
        { patch: "apiVersion: apps/v1\nkind: Deployment\nmetadata:\n  name: podinfo\nspec:\n  replicas: 3\n", target: { kind: "Deployment" } },
        { patch: "- op: add\n  path: /metadata/labels\n  value:\n    patched: json6902\n", target: { kind: "Service", name: "podinfo" } },
      ],
      images: [{ name: "ghcr.io/stefanprodan/podinfo", newTag: "6.0.0" }],
      healthChecks: [{ kind: "Deployment", name: "pre-podinfo-suf" }],
      timeout: "60s",
    });
    const ks = await bed.waitForKustomization(ns, "podinfo", "Ready", readyWith(digest));
    assert.equal(condition(ks, "Healthy")?.status, "True", "healthChecks named the prefixed Deployment, which became Available");
    assert.deepEqual(ks.status?.inventory?.entries.map((entry) => entry.id).sort(), [
      "overlay_pre-podinfo-suf__Service",
      "overlay_pre-podinfo-suf_apps_Deployment",
      "overlay_pre-podinfo-suf_autoscaling_HorizontalPodAutoscaler",
    ]);
    const deployment = await bed.getJson(["deployment", "pre-podinfo-suf", "-n", ns]) as {
      metadata: { labels: Record<string, string>; annotations: Record<string, string> };
      spec: { replicas: number; template: { spec: { containers: Array<{ image: string }> } } };
    };
    assert.equal(deployment.metadata.labels.team, "payments");
    assert.equal(deployment.metadata.annotations["example.com/owner"], "alice");
    assert.equal(deployment.spec.replicas, 3);
    assert.equal(deployment.spec.template.spec.containers[0]?.image, "ghcr.io/stefanprodan/podinfo:6.0.0");
    const service = await bed.getJson(["service", "pre-podinfo-suf", "-n", ns]) as { metadata: { labels: Record<string, string> } };
    assert.equal(service.metadata.labels.patched, "json6902");
  });

  test("postBuild substitution from a ConfigMap, a Secret and inline values; strict mode names the missing variable", async () => {
    const ns = await namespace("subst");
    await bed.applyObjects([
      configMap("vars", { greeting: "hello", replicas: "2" }, { namespace: ns }),
      { apiVersion: "v1", kind: "Secret", metadata: { namespace: ns, name: "secret-vars" }, stringData: { token: "s3cr3t", greeting: "from-secret" } },
    ]);
    const source = await makeFixture({
      "app.yaml": [
        configMap("settings", { greeting: "${greeting}", token: "${token}", region: "${region:=eu-west-1}", cluster: "${cluster}" }),
        configMap("script", { "run.sh": "echo ${not_a_var}" }, { annotations: { "kustomize.ferry.dev/substitute": "disabled" } }),
        configMap("script-flux", { "run.sh": "echo ${not_a_var}" }, { labels: { "kustomize.toolkit.fluxcd.io/substitute": "disabled" } }),
      ],
    });
    const digest = await bed.push(source, "subst/app");
    await bed.deliver(ns, "app", "subst/app", {
      postBuild: {
        substitute: { cluster: "prod-1" },
        substituteFrom: [{ kind: "ConfigMap", name: "vars" }, { kind: "Secret", name: "secret-vars" }, { kind: "ConfigMap", name: "absent", optional: true }],
      },
    });
    await bed.waitForKustomization(ns, "app", "Ready", readyWith(digest));
    const settings = await bed.getJson(["configmap", "settings", "-n", ns]) as { data: Record<string, string> };
    assert.deepEqual(settings.data, { greeting: "from-secret", token: "s3cr3t", region: "eu-west-1", cluster: "prod-1" });
    const script = await bed.getJson(["configmap", "script", "-n", ns]) as { data: Record<string, string> };
    assert.equal(script.data["run.sh"], "echo ${not_a_var}");
    const scriptFlux = await bed.getJson(["configmap", "script-flux", "-n", ns]) as { data: Record<string, string> };
    assert.equal(scriptFlux.data["run.sh"], "echo ${not_a_var}");

    const strict = await makeFixture({ "app.yaml": [configMap("settings", { value: "${undefined_variable}" })] });
    await bed.push(strict, "subst/app");
    await bed.reconcileSource(ns, "app");
    const failed = await bed.waitForKustomization(ns, "app", "BuildFailed", (o) => condition(o, "Ready")?.reason === "BuildFailed");
    assert.match(condition(failed, "Ready")?.message ?? "", /ConfigMap\/settings.*variable not set \(strict mode\): "undefined_variable"/);
    assert.equal(failed.status?.lastAppliedRevision?.endsWith(digest), true, "the last good revision stays applied");
  });

  test("without retryInterval a failure is retried after interval, as in Flux: Ready=False stays readable", async () => {
    const ns = await namespace("no-retry");
    await bed.push(await makeFixture({ "cm.yaml": [configMap("settings", { region: "${region}" })] }), "no-retry/app");
    await bed.deliver(ns, "app", "no-retry/app", { interval: "1h", postBuild: { substitute: { team: "a" } } });
    const failed = await bed.waitForKustomization(ns, "app", "BuildFailed", (o) => condition(o, "Ready")?.reason === "BuildFailed");
    // A quick backoff (0.75 s, 1.5 s, 3 s…) would have rewritten the status several times by now.
    await new Promise((resolve) => setTimeout(resolve, 5_000));
    const later = await bed.kustomization(ns, "app");
    assert.equal(later.metadata.resourceVersion, failed.metadata.resourceVersion);
    assert.equal(condition(later, "Ready")?.reason, "BuildFailed");
  });

  // Server-side apply refuses a field the structural CRD does not declare (whatever fieldValidation says), and
  // kubectl validates strictly by default: only a client that opts out (--validate=false) has it pruned, with a warning.
  test("a field Ferry does not know is refused by name, never dropped: applied by Ferry from an artifact, or by kubectl", async () => {
    const ns = await namespace("unknown-field");
    const child = {
      apiVersion: "kustomize.ferry.dev/v1", kind: "Kustomization", metadata: { name: "child", namespace: ns },
      spec: { interval: "1h", path: "./", prune: true, sourceRef: { kind: "OCIRepository", name: "app" }, fluxOnlyField: { enabled: true } },
    };
    await bed.push(await makeFixture({ "child.yaml": [child], "cm.yaml": [configMap("beside", { a: "1" })] }), "unknown-field/app");
    await bed.deliver(ns, "app", "unknown-field/app", {});
    const refused = await bed.waitForKustomization(ns, "app", "the apply refused", (o) => condition(o, "Ready")?.reason === "ReconciliationFailed");
    assert.match(condition(refused, "Ready")?.message ?? "", /Kustomization\/unknown-field\/child .*\.spec\.fluxOnlyField: field not declared in schema/);
    // The apply is planned (dry-run) as a whole before anything is written: nothing of this revision was applied.
    await assert.rejects(bed.cluster.kubectl(["get", "kustomization", "child", "-n", ns]), /NotFound/);
    await assert.rejects(bed.cluster.kubectl(["get", "configmap", "beside", "-n", ns]), /NotFound/);
    await assert.rejects(bed.cluster.kubectl(["apply", "-f", "-"], { input: JSON.stringify(child) }), /unknown field "spec\.fluxOnlyField"/);
  });

  test("retryInterval: a failing Kustomization is retried at that pace, not with a growing backoff", async () => {
    const ns = await namespace("retry");
    const digest = await bed.push(await makeFixture({ "cm.yaml": [configMap("settings", { region: "${region}" })] }), "retry/app");
    await bed.deliver(ns, "app", "retry/app", {
      retryInterval: "1s",
      postBuild: { substitute: { team: "a" }, substituteFrom: [{ kind: "ConfigMap", name: "vars", optional: true }] },
    });
    await bed.waitForKustomization(ns, "app", "BuildFailed", (o) => condition(o, "Ready")?.reason === "BuildFailed");
    // Long enough for an exponential backoff (0.75 s doubling) to be waiting 10 s or more by now.
    await new Promise((resolve) => setTimeout(resolve, 12_000));
    await bed.applyObjects([configMap("vars", { region: "eu-west-1" }, { namespace: ns })]);
    const started = Date.now();
    await bed.waitForKustomization(ns, "app", "Ready on the next retry", readyWith(digest), 5_000);
    assert.ok(Date.now() - started < 5_000);
    const settings = await bed.getJson(["configmap", "settings", "-n", ns]) as { data: Record<string, string> };
    assert.equal(settings.data.region, "eu-west-1");
  });

  test("dependsOn: a Kustomization waits until its dependency is Ready, then applies", async () => {
    const ns = await namespace("deps");
    const appDir = await makeFixture({ "cm.yaml": [configMap("app", { needs: "infra" })] });
    const infraDir = await makeFixture({ "cm.yaml": [configMap("infra", { ready: "yes" })] });
    const appDigest = await bed.push(appDir, "deps/app");
    await bed.deliver(ns, "app", "deps/app", { dependsOn: [{ name: "infra" }] });
    const waiting = await bed.waitForKustomization(ns, "app", "DependencyNotReady", (o) => condition(o, "Ready")?.reason === "DependencyNotReady");
    assert.match(condition(waiting, "Ready")?.message ?? "", /dependency 'deps\/infra' not found/);
    await assert.rejects(bed.cluster.kubectl(["get", "configmap", "app", "-n", ns]), /NotFound/);
    const infraDigest = await bed.push(infraDir, "deps/infra");
    await bed.deliver(ns, "infra", "deps/infra", {});
    await bed.waitForKustomization(ns, "infra", "Ready", readyWith(infraDigest));
    await bed.waitForKustomization(ns, "app", "Ready after its dependency", readyWith(appDigest), 30_000);
    const [infraCm, appCm] = await Promise.all([bed.getJson(["configmap", "infra", "-n", ns]), bed.getJson(["configmap", "app", "-n", ns])]);
    const created = (object: Record<string, unknown>) => Date.parse((object.metadata as { creationTimestamp: string }).creationTimestamp);
    assert.ok(created(infraCm) <= created(appCm), "the dependency was applied first");
  });

  test("a workload that cannot become ready fails the health check, naming it; Healthy=False", async () => {
    const ns = await namespace("health");
    const source = await makeFixture({
      "deploy.yaml": [{
        apiVersion: "apps/v1",
        kind: "Deployment",
        metadata: { name: "stuck" },
        spec: {
          progressDeadlineSeconds: 2,
          selector: { matchLabels: { app: "stuck" } },
          template: {
            metadata: { labels: { app: "stuck" } },
            spec: { nodeSelector: { "no-such-node": "true" }, containers: [{ name: "app", image: "example.com/app:1" }] },
          },
        },
      }],
    });
    await bed.push(source, "health/stuck");
    await bed.deliver(ns, "stuck", "health/stuck", { wait: true, timeout: "30s" });
    const failed = await bed.waitForKustomization(ns, "stuck", "HealthCheckFailed", (o) => condition(o, "Ready")?.reason === "HealthCheckFailed", 60_000);
    assert.equal(condition(failed, "Healthy")?.status, "False");
    assert.match(condition(failed, "Ready")?.message ?? "", /health check failed after .*Deployment\/health\/stuck/);
  });

  test("a tenant ServiceAccount that may not create ClusterRoles gets a clear error, and nothing of the set is applied", async () => {
    const ns = await namespace("tenant");
    await bed.applyObjects(namespaceAdmin(ns, "deployer"));
    const source = await makeFixture({
      "objects.yaml": [
        configMap("tenant-config", { a: "b" }),
        { apiVersion: "rbac.authorization.k8s.io/v1", kind: "ClusterRole", metadata: { name: "tenant-escalation" }, rules: [] },
      ],
    });
    await bed.push(source, "tenant/app");
    await bed.deliver(ns, "app", "tenant/app", { serviceAccountName: "deployer" });
    const failed = await bed.waitForKustomization(ns, "app", "ReconciliationFailed", (o) => condition(o, "Ready")?.reason === "ReconciliationFailed");
    const message = condition(failed, "Ready")?.message ?? "";
    assert.match(message, /ClusterRole\/tenant-escalation/);
    assert.match(message, /system:serviceaccount:tenant:deployer.*cannot/);
    await assert.rejects(bed.cluster.kubectl(["get", "configmap", "tenant-config", "-n", ns]), /NotFound/);

    // Within its namespace the tenant may apply.
    const allowed = await makeFixture({ "objects.yaml": [configMap("tenant-config", { a: "b" })] });
    const digest = await bed.push(allowed, "tenant/app");
    await bed.reconcileSource(ns, "app");
    await bed.waitForKustomization(ns, "app", "Ready as the tenant", readyWith(digest));
    const applied = await bed.getJson(["configmap", "tenant-config", "-n", ns, "--show-managed-fields"]) as {
      metadata: { managedFields: Array<{ manager: string }> };
    };
    assert.ok(applied.metadata.managedFields.some((field) => field.manager === "ferry"));
  });

  test("broken artifacts (invalid YAML, unknown kind, remote base) are refused by name and the previous revision stays applied", async () => {
    const ns = await namespace("broken");
    const good = await makeFixture({ "cm.yaml": [configMap("keep", { version: "1" })] });
    const goodDigest = await bed.push(good, "broken/app");
    await bed.deliver(ns, "app", "broken/app", {});
    await bed.waitForKustomization(ns, "app", "Ready", readyWith(goodDigest));

    const cases: Array<[string, Record<string, unknown>, RegExp, string]> = [
      ["invalid YAML", { "cm.yaml": "apiVersion: v1\nkind: ConfigMap\nmetadata: [unclosed\n" }, /cm\.yaml is not valid YAML/, "BuildFailed"],
      ["unknown kind", { "x.yaml": [{ apiVersion: "example.com/v1", kind: "Widget", metadata: { name: "w" } }] }, /Widget.*is its CRD installed/, "ReconciliationFailed"],
      ["remote base", {
        "kustomization.yaml": "apiVersion: kustomize.config.k8s.io/v1beta1\nkind: Kustomization\nresources:\n  - https://github.com/stefanprodan/podinfo//kustomize?ref=6.0.0\n",
      }, /remote bases are refused/, "BuildFailed"],
    ];
    for (const [what, files, pattern, reason] of cases) {
      const digest = await bed.push(await makeFixture(files), "broken/app");
      await bed.reconcileSource(ns, "app");
      const failed = await bed.waitForKustomization(ns, "app", what, (o) => o.status?.lastAttemptedRevision?.endsWith(digest) === true && condition(o, "Ready")?.status === "False");
      assert.equal(condition(failed, "Ready")?.reason, reason, what);
      assert.match(condition(failed, "Ready")?.message ?? "", pattern, what);
      assert.equal(failed.status?.lastAppliedRevision?.endsWith(goodDigest), true, `${what}: the last good revision stays the applied one`);
      const kept = await bed.getJson(["configmap", "keep", "-n", ns]) as { data: Record<string, string> };
      assert.equal(kept.data.version, "1", `${what}: the previous objects are still applied`);
    }
  });

  test("an immutable field change fails without force and recreates the object with spec.force", async () => {
    const ns = await namespace("immutable");
    const deployment = (app: string) => ({
      apiVersion: "apps/v1",
      kind: "Deployment",
      metadata: { name: "web" },
      spec: {
        selector: { matchLabels: { app } },
        template: { metadata: { labels: { app } }, spec: { containers: [{ name: "web", image: "example.com/web:1" }] } },
      },
    });
    const digest = await bed.push(await makeFixture({ "d.yaml": [deployment("web")] }), "immutable/web");
    await bed.deliver(ns, "web", "immutable/web", {});
    await bed.waitForKustomization(ns, "web", "Ready", readyWith(digest));
    const before = await bed.getJson(["deployment", "web", "-n", ns]) as { metadata: { uid: string } };

    const changed = await bed.push(await makeFixture({ "d.yaml": [deployment("web-v2")] }), "immutable/web");
    await bed.reconcileSource(ns, "web");
    const failed = await bed.waitForKustomization(ns, "web", "immutable error", (o) => o.status?.lastAttemptedRevision?.endsWith(changed) === true && condition(o, "Ready")?.status === "False");
    assert.match(condition(failed, "Ready")?.message ?? "", /Deployment\/immutable\/web has an immutable field change.*spec\.force/);

    await bed.cluster.kubectl(["patch", "kustomization", "web", "-n", ns, "--type=merge", "-p", JSON.stringify({ spec: { force: true } })]);
    await bed.waitForKustomization(ns, "web", "Ready with force", readyWith(changed));
    const recreated = await bed.getJson(["deployment", "web", "-n", ns]) as { metadata: { uid: string }; spec: { selector: { matchLabels: { app: string } } } };
    assert.notEqual(recreated.metadata.uid, before.metadata.uid);
    assert.equal(recreated.spec.selector.matchLabels.app, "web-v2");
  });

  test("a binding whose roleRef changes is recreated under kustomize.ferry.dev/force: enabled (as bootstrap marks Ferry's own)", async () => {
    const ns = await namespace("rolebinding");
    const role = (name: string) => ({ apiVersion: "rbac.authorization.k8s.io/v1", kind: "Role", metadata: { name }, rules: [] });
    const binding = (roleName: string) => ({
      apiVersion: "rbac.authorization.k8s.io/v1",
      kind: "RoleBinding",
      metadata: { name: "controller", annotations: { "kustomize.ferry.dev/force": "enabled" } },
      roleRef: { apiGroup: "rbac.authorization.k8s.io", kind: "Role", name: roleName },
      subjects: [{ kind: "ServiceAccount", name: "default", namespace: ns }],
    });
    const digest = await bed.push(await makeFixture({ "rbac.yaml": [role("old"), role("new"), binding("old")] }), "rolebinding/rbac");
    await bed.deliver(ns, "rbac", "rolebinding/rbac", {});
    await bed.waitForKustomization(ns, "rbac", "Ready", readyWith(digest));
    const before = await bed.getJson(["rolebinding", "controller", "-n", ns]) as { metadata: { uid: string } };
    // The apiserver refuses the change with "cannot change roleRef", which the applier did not read as immutable.
    const changed = await bed.push(await makeFixture({ "rbac.yaml": [role("old"), role("new"), binding("new")] }), "rolebinding/rbac");
    await bed.reconcileSource(ns, "rbac");
    await bed.waitForKustomization(ns, "rbac", "Ready with the new roleRef", readyWith(changed));
    const recreated = await bed.getJson(["rolebinding", "controller", "-n", ns]) as { metadata: { uid: string }; roleRef: { name: string } };
    assert.notEqual(recreated.metadata.uid, before.metadata.uid);
    assert.equal(recreated.roleRef.name, "new");
  });

  test("per-object policies: ssa IfNotPresent keeps live edits, ssa Ignore is never applied, prune disabled survives removal", async () => {
    const ns = await namespace("policies");
    const v1 = await makeFixture({
      "objects.yaml": [
        configMap("seeded", { value: "initial" }, { annotations: { "kustomize.ferry.dev/ssa": "IfNotPresent" } }),
        configMap("ignored", { value: "never" }, { annotations: { "kustomize.ferry.dev/ssa": "Ignore" } }),
        configMap("kept", { value: "kept" }, { annotations: { "kustomize.ferry.dev/prune": "disabled" } }),
        configMap("managed", { value: "v1" }),
        // The same policies under Flux's names, as manifests written for Flux carry them (a label works too).
        configMap("seeded-flux", { value: "initial" }, { annotations: { "kustomize.toolkit.fluxcd.io/ssa": "IfNotPresent" } }),
        configMap("ignored-flux", { value: "never" }, { annotations: { "kustomize.toolkit.fluxcd.io/ssa": "Ignore" } }),
        configMap("kept-flux", { value: "kept" }, { labels: { "kustomize.toolkit.fluxcd.io/prune": "disabled" } }),
      ],
    });
    const digest = await bed.push(v1, "policies/app");
    await bed.deliver(ns, "app", "policies/app", {});
    await bed.waitForKustomization(ns, "app", "Ready", readyWith(digest));
    await assert.rejects(bed.cluster.kubectl(["get", "configmap", "ignored", "-n", ns]), /NotFound/);
    await assert.rejects(bed.cluster.kubectl(["get", "configmap", "ignored-flux", "-n", ns]), /NotFound/);
    for (const name of ["seeded", "seeded-flux"]) {
      await bed.cluster.kubectl(["patch", "configmap", name, "-n", ns, "--type=merge", "-p", JSON.stringify({ data: { value: "edited" } })]);
    }

    const v2 = await makeFixture({
      "objects.yaml": [
        configMap("seeded", { value: "initial-v2" }, { annotations: { "kustomize.ferry.dev/ssa": "IfNotPresent" } }),
        configMap("seeded-flux", { value: "initial-v2" }, { annotations: { "kustomize.toolkit.fluxcd.io/ssa": "IfNotPresent" } }),
        configMap("managed", { value: "v2" }),
      ],
    });
    const digest2 = await bed.push(v2, "policies/app");
    await bed.reconcileSource(ns, "app");
    await bed.waitForKustomization(ns, "app", "Ready v2", readyWith(digest2));
    const value = async (name: string) => ((await bed.getJson(["configmap", name, "-n", ns])) as { data: { value: string } }).data.value;
    assert.equal(await value("seeded"), "edited");
    assert.equal(await value("managed"), "v2");
    assert.equal(await value("kept"), "kept");
    assert.equal(await value("seeded-flux"), "edited");
    assert.equal(await value("kept-flux"), "kept", "an object Flux users protect with Flux's prune: disabled label survives");
  });

  test("ssa Override (the default) takes over fields kubectl applied, so a field dropped from the manifest is removed; Merge keeps them", async () => {
    const ns = await namespace("takeover");
    const byKubectl = (name: string) => configMap(name, { a: "1", b: "from-kubectl" }, { namespace: ns });
    await bed.cluster.kubectl(["apply", "-f", "-"], { input: JSON.stringify({ apiVersion: "v1", kind: "List", items: [byKubectl("owned"), byKubectl("merged")] }) });
    const digest = await bed.push(await makeFixture({
      "cm.yaml": [configMap("owned", { a: "1" }), configMap("merged", { a: "1" }, { annotations: { "kustomize.ferry.dev/ssa": "Merge" } })],
    }), "takeover/app");
    await bed.deliver(ns, "app", "takeover/app", {});
    await bed.waitForKustomization(ns, "app", "Ready", readyWith(digest));
    const owned = await bed.getJson(["configmap", "owned", "-n", ns, "--show-managed-fields"]) as {
      data: Record<string, string>;
      metadata: { annotations?: Record<string, string>; managedFields: Array<{ manager: string }> };
    };
    assert.deepEqual(owned.data, { a: "1" });
    assert.equal(owned.metadata.annotations?.["kubectl.kubernetes.io/last-applied-configuration"], undefined);
    assert.deepEqual(owned.metadata.managedFields.map((field) => field.manager), ["ferry"]);
    const merged = await bed.getJson(["configmap", "merged", "-n", ns]) as { data: Record<string, string> };
    assert.deepEqual(merged.data, { a: "1", b: "from-kubectl" });
  });

  test("kubeConfig: objects are applied to the cluster and as the user of a kubeconfig Secret", async () => {
    const ns = await namespace("hub");
    const remote = await namespace("remote");
    await bed.applyObjects(namespaceAdmin(remote, "deployer"));
    const token = (await bed.cluster.kubectl(["create", "token", "deployer", "-n", remote, "--duration=1h"])).trim();
    const kubeconfig = yaml.dump({
      apiVersion: "v1",
      kind: "Config",
      clusters: [{ name: "remote", cluster: { server: bed.cluster.server, "certificate-authority-data": (await readFile(bed.cluster.caFile)).toString("base64") } }],
      users: [{ name: "deployer", user: { token } }],
      contexts: [{ name: "remote", context: { cluster: "remote", user: "deployer", namespace: remote } }],
      "current-context": "remote",
    });
    await bed.applyObjects([{ apiVersion: "v1", kind: "Secret", metadata: { namespace: ns, name: "remote-kubeconfig" }, stringData: { value: kubeconfig } }]);
    const digest = await bed.push(await makeFixture({ "cm.yaml": [configMap("delivered", { to: "remote" })] }), "hub/app");
    await bed.deliver(ns, "app", "hub/app", { kubeConfig: { secretRef: { name: "remote-kubeconfig" } }, targetNamespace: remote });
    await bed.waitForKustomization(ns, "app", "Ready on the remote cluster", readyWith(digest));
    await bed.cluster.kubectl(["get", "configmap", "delivered", "-n", remote]);

    // The same Kustomization aimed at a namespace that user may not write to fails with that user's name.
    await bed.cluster.kubectl(["patch", "kustomization", "app", "-n", ns, "--type=merge", "-p", JSON.stringify({ spec: { targetNamespace: ns } })]);
    const denied = await bed.waitForKustomization(ns, "app", "denied as the kubeconfig's user", (o) => condition(o, "Ready")?.reason === "ReconciliationFailed");
    assert.match(condition(denied, "Ready")?.message ?? "", /system:serviceaccount:remote:deployer/);

    // Deleting it with deletionPolicy Orphan leaves what it applied.
    await bed.cluster.kubectl(["patch", "kustomization", "app", "-n", ns, "--type=json", "-p", JSON.stringify([
      { op: "replace", path: "/spec/targetNamespace", value: remote },
      { op: "add", path: "/spec/deletionPolicy", value: "Orphan" },
    ])]);
    await bed.waitForKustomization(ns, "app", "Ready again", (o) => condition(o, "Ready")?.status === "True" && o.status?.observedGeneration === o.metadata.generation);
    await bed.cluster.kubectl(["delete", "kustomization", "app", "-n", ns, "--timeout=60s"]);
    await bed.cluster.kubectl(["get", "configmap", "delivered", "-n", remote]);
  });

  test("events record each change set: created, configured and deleted objects", async () => {
    const ns = await namespace("events");
    const digest = await bed.push(await makeFixture({ "cm.yaml": [configMap("first", { v: "1" }), configMap("second", { v: "1" })] }), "events/app");
    await bed.deliver(ns, "app", "events/app", {});
    await bed.waitForKustomization(ns, "app", "Ready", readyWith(digest));
    const digest2 = await bed.push(await makeFixture({ "cm.yaml": [configMap("first", { v: "2" })] }), "events/app");
    await bed.reconcileSource(ns, "app");
    await bed.waitForKustomization(ns, "app", "Ready v2", readyWith(digest2));
    const events = (await bed.getJson(["events", "-n", ns, "--field-selector", "involvedObject.kind=Kustomization"])) as {
      items: Array<{ reason: string; message: string; type: string }>;
    };
    const messages = events.items.map((event) => event.message).join("\n");
    assert.match(messages, /ConfigMap\/events\/first created/);
    assert.match(messages, /ConfigMap\/events\/second created/);
    assert.match(messages, /ConfigMap\/events\/first configured/);
    assert.match(messages, /ConfigMap\/events\/second deleted/);
  });

  test("every podinfo overlay (dev, staging, production) builds and applies from one artifact", async () => {
    const ns = await namespace("overlays");
    const digest = await bed.push(join(CORPORA, "podinfo", "deploy"), "overlays/podinfo");
    for (const overlay of ["dev", "staging", "production"]) {
      await bed.deliver(ns, overlay, "overlays/podinfo", { path: `./overlays/${overlay}` });
    }
    for (const overlay of ["dev", "staging", "production"]) {
      const ks = await bed.waitForKustomization(ns, overlay, "Ready", readyWith(digest));
      const ids = ks.status?.inventory?.entries.map((entry) => entry.id) ?? [];
      assert.ok(ids.includes(`_${overlay}__Namespace`), `${overlay}: ${ids.join(", ")}`);
      assert.ok(ids.includes(`${overlay}_frontend_apps_Deployment`), `${overlay}: ${ids.join(", ")}`);
      await bed.cluster.kubectl(["get", "deployment", "frontend", "backend", "-n", overlay]);
    }
  });

  test("kube-prometheus: CRDs too big for client-side apply are applied first, then the custom resources", async () => {
    const ns = await namespace("monitoring-ks");
    const digest = await bed.push(join(CORPORA, "kube-prometheus", "manifests"), "kp/manifests");
    await bed.deliver(ns, "kube-prometheus", "kp/manifests", { timeout: "3m" });
    const ks = await bed.waitForKustomization(ns, "kube-prometheus", "Ready", readyWith(digest), 180_000);
    const ids = ks.status?.inventory?.entries.map((entry) => entry.id) ?? [];
    assert.ok(ids.includes("_prometheuses.monitoring.coreos.com_apiextensions.k8s.io_CustomResourceDefinition"));
    assert.ok(ids.includes("monitoring_k8s_monitoring.coreos.com_Prometheus"), ids.join(", "));
    await bed.cluster.kubectl(["get", "prometheus", "k8s", "-n", "monitoring"]);
    await bed.cluster.kubectl(["get", "servicemonitors", "-n", "monitoring", "prometheus-k8s"]);
  });

  test("a crash between apply and prune neither orphans nor wrongly deletes anything", async () => {
    const ns = await namespace("crash");
    const v1 = await makeFixture({ "objects.yaml": [configMap("stays", { v: "1" }), configMap("leaves", { v: "1" })] });
    const digest1 = await bed.push(v1, "crash/app");
    await bed.applyObjects([configMap("bystander", { owner: "someone else" }, { namespace: ns })]);
    await bed.deliver(ns, "app", "crash/app", {});
    await bed.waitForKustomization(ns, "app", "Ready", readyWith(digest1));

    await bed.controller?.stop();
    const crashing = bed.startController([], { FERRY_TEST_EXIT_BEFORE_PRUNE: ns }, EXIT_BEFORE_PRUNE);
    const v2 = await makeFixture({ "objects.yaml": [configMap("stays", { v: "2" }), configMap("arrives", { v: "2" })] });
    const digest2 = await bed.push(v2, "crash/app");
    // Ask for the new revision without waiting on it: the controller may already be fetching it on its own start,
    // and it exits right after applying.
    await bed.cluster.kubectl(["annotate", "ocirepository", "app", "-n", ns, "--overwrite", `reconcile.ferry.dev/requestedAt=${Date.now()}`]);
    const exited = await Promise.race([
      crashing.exited.then(() => false, () => true),
      new Promise<boolean>((resolve) => setTimeout(resolve, 60_000, false)),
    ]);
    assert.ok(exited, "the controller did not exit after applying");
    const halfway = await bed.kustomization(ns, "app");
    assert.equal(halfway.status?.lastAppliedRevision?.endsWith(digest1), true, "the status was not written before the crash");
    await bed.cluster.kubectl(["get", "configmap", "arrives", "leaves", "-n", ns]);

    bed.startController();
    const ks = await bed.waitForKustomization(ns, "app", "Ready after restart", readyWith(digest2));
    assert.deepEqual(ks.status?.inventory?.entries.map((entry) => entry.id).sort(), ["crash_arrives__ConfigMap", "crash_stays__ConfigMap"]);
    await assert.rejects(bed.cluster.kubectl(["get", "configmap", "leaves", "-n", ns]), /NotFound/);
    await bed.cluster.kubectl(["get", "configmap", "bystander", "stays", "arrives", "-n", ns]);
  });

  test("--no-cross-namespace-targets stalls a Kustomization that targets another namespace (AccessDenied)", async () => {
    const ns = await namespace("locked");
    await bed.controller?.stop();
    bed.startController(["--no-cross-namespace-refs", "--no-cross-namespace-targets"]);
    const digest = await bed.push(await makeFixture({ "cm.yaml": [configMap("x", { a: "b" })] }), "locked/app");
    await bed.deliver(ns, "app", "locked/app", { targetNamespace: "default" });
    const stalled = await bed.waitForKustomization(ns, "app", "Stalled", (o) => condition(o, "Stalled")?.status === "True");
    assert.equal(condition(stalled, "Ready")?.reason, "AccessDenied");
    assert.match(condition(stalled, "Stalled")?.message ?? "", /targetNamespace 'default' is not allowed/);
    await bed.cluster.kubectl(["patch", "kustomization", "app", "-n", ns, "--type=json", "-p", JSON.stringify([{ op: "remove", path: "/spec/targetNamespace" }])]);
    await bed.waitForKustomization(ns, "app", "Ready in its own namespace", readyWith(digest));

    // A sourceRef into another namespace is refused too, while one in its own namespace works.
    await bed.applyObjects([{
      apiVersion: "kustomize.ferry.dev/v1",
      kind: "Kustomization",
      metadata: { namespace: ns, name: "borrowed" },
      spec: { sourceRef: { kind: "OCIRepository", name: "app", namespace: "crash" }, path: "./", interval: "1h", prune: true },
    }]);
    const borrowed = await bed.waitForKustomization(ns, "borrowed", "Stalled", (o) => condition(o, "Stalled")?.status === "True");
    assert.equal(condition(borrowed, "Ready")?.reason, "AccessDenied");
    assert.match(condition(borrowed, "Stalled")?.message ?? "", /cross-namespace sourceRef to 'crash\/app' is not allowed/);
  });
});
