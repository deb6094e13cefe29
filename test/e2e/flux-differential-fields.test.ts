// Differential tests, one case per field family: the same artifact (one push, one digest) and the same Kustomization
// spec reconciled by Flux's real controllers (source-controller and kustomize-controller v1.9.5, the test bed's peers,
// on Flux's CRDs: source.toolkit.fluxcd.io, kustomize.toolkit.fluxcd.io) and by Ferry's controller (source.ferry.dev,
// kustomize.ferry.dev), in one shared control plane. Each side has its own namespace per case (flux-<case>,
// ferry-<case>) holding its OCIRepository and Kustomization and, through targetNamespace, everything they apply, so
// neither tool ever owns an object of the other. The objects that result are compared normalised (namespace, field
// managers, each tool's own labels and annotations, what the apiserver sets) and so are the Ready/Healthy verdicts
// (status and reason: both use the same reason vocabulary).
import assert from "node:assert/strict";
import { execFile } from "node:child_process";
import { mkdir, mkdtemp, readFile, rm, writeFile } from "node:fs/promises";
import { join } from "node:path";
import { after, before, describe, test } from "node:test";
import { promisify } from "node:util";
import yaml from "js-yaml";
import { binary, skipUnlessBuilt } from "../harness/binaries.ts";
import { type Condition, DeliveryBed } from "../harness/delivery.ts";
import { FLUX_CRDS_PEER_BINARY, FLUX_KUSTOMIZE_API_VERSION, FLUX_SOURCE_API_VERSION, installFluxCrds } from "../harness/flux-crds.ts";
import { type KustomizeController, startKustomizeController } from "../harness/kustomize-controller.ts";
import { waitUntil } from "../harness/processes.ts";
import { type SourceController, startSourceController } from "../harness/source-controller.ts";

const exec = promisify(execFile);
const FLUX_KUSTOMIZATION = "kustomizations.kustomize.toolkit.fluxcd.io";
const FERRY_KUSTOMIZATION = "kustomizations.kustomize.ferry.dev";
const FERRY_SOURCE_API_VERSION = "source.ferry.dev/v1";
const FERRY_KUSTOMIZE_API_VERSION = "kustomize.ferry.dev/v1";

const WIDGET_CRD = {
  apiVersion: "apiextensions.k8s.io/v1",
  kind: "CustomResourceDefinition",
  metadata: { name: "widgets.example.com" },
  spec: {
    group: "example.com",
    scope: "Namespaced",
    names: { plural: "widgets", singular: "widget", kind: "Widget", listKind: "WidgetList" },
    versions: [{
      name: "v1", served: true, storage: true,
      schema: { openAPIV3Schema: { type: "object", "x-kubernetes-preserve-unknown-fields": true } },
    }],
  },
};

type Side = "flux" | "ferry";
const SIDES: readonly Side[] = ["flux", "ferry"];

interface KubeObject {
  apiVersion: string;
  kind: string;
  metadata: Record<string, unknown> & {
    name: string;
    namespace?: string;
    labels?: Record<string, string>;
    annotations?: Record<string, string>;
  };
  [key: string]: unknown;
}

interface HistoryEntry {
  digest: string;
  firstReconciled: string;
  lastReconciled: string;
  lastReconciledDuration?: string;
  lastReconciledStatus: string;
  totalReconciliations: number;
  metadata?: Record<string, string>;
}

interface Kustomization {
  metadata: { generation: number; name: string; namespace: string };
  status?: {
    observedGeneration?: number;
    conditions?: Condition[];
    lastAppliedRevision?: string;
    lastAttemptedRevision?: string;
    inventory?: { entries: Array<{ id: string; v: string }> };
    history?: HistoryEntry[];
  };
}

const conditionOf = (object: Kustomization, type: string) => object.status?.conditions?.find((candidate) => candidate.type === type);

// Normalisation (as test/e2e/flux-differential.test.ts does it): what each tool owns, and what the apiserver sets.
const OWN_KEY = /^(kustomize\.toolkit\.fluxcd\.io|kustomize\.ferry\.dev)\//;
const CLUSTER_SET_METADATA = new Set(["uid", "resourceVersion", "creationTimestamp", "managedFields", "generation", "selfLink", "namespace"]);
const CLUSTER_SET_ANNOTATIONS = new Set(["deployment.kubernetes.io/revision"]);
const BUILTIN_GROUPS = /^(v1|apps\/v1|batch\/v1|autoscaling\/v2|policy\/v1|rbac\.authorization\.k8s\.io\/v1|networking\.k8s\.io\/v1)$/;

function withoutKeys(map: Record<string, string> | undefined, drop: (key: string) => boolean): Record<string, string> | undefined {
  if (!map) return undefined;
  const kept = Object.entries(map).filter(([key]) => !drop(key));
  return kept.length > 0 ? Object.fromEntries(kept) : undefined;
}

function normalise(object: KubeObject): KubeObject {
  // A builtin's status is the cluster's; a custom resource without a status subresource has the status it was applied with.
  const rest = Object.fromEntries(Object.entries(object).filter(([key]) => key !== "status" || !BUILTIN_GROUPS.test(object.apiVersion)));
  const metadata = Object.fromEntries(Object.entries(object.metadata).filter(([key]) => !CLUSTER_SET_METADATA.has(key) && key !== "labels" && key !== "annotations"));
  const labels = withoutKeys(object.metadata.labels, (key) => OWN_KEY.test(key));
  const annotations = withoutKeys(object.metadata.annotations, (key) => OWN_KEY.test(key) || CLUSTER_SET_ANNOTATIONS.has(key));
  return { ...rest, metadata: { ...metadata, ...(labels ? { labels } : {}), ...(annotations ? { annotations } : {}) } } as KubeObject;
}

/** An inventory id (namespace_name_group_Kind) with the side's namespace replaced, so both sides' ids compare. */
const idIn = (id: string, namespace: string) => (id.startsWith(`${namespace}_`) ? `NS_${id.slice(namespace.length + 1)}` : id);

describe("Ferry against Flux's real controllers, one case per field family", {
  skip: skipUnlessBuilt("etcd", "kube-apiserver", "kube-controller-manager", "kube-scheduler", "kubectl", "kwok", "zot", "kustomize",
    "source-controller", "kustomize-controller", FLUX_CRDS_PEER_BINARY),
}, () => {
  let bed: DeliveryBed;
  let sourceController: SourceController;
  let kustomizeController: KustomizeController;
  let work: string;

  before(async () => {
    bed = await DeliveryBed.start();
    work = await mkdtemp(join(bed.dir, "differential-fields-"));
    // The Flux CRDs' group names differ from Ferry's, so both sets live on this one apiserver; resources are always
    // named fully below (kubectl's "kustomization" would be ambiguous).
    await installFluxCrds(bed.cluster);
    await bed.cluster.kubectl(["create", "namespace", "flux-system"]);
    // A tiny custom resource for healthCheckExprs, without a status subresource so that its status is applied as written.
    await bed.applyObjects([WIDGET_CRD]);
    await bed.cluster.kubectl(["wait", "--for=condition=Established", "crd/widgets.example.com", "--timeout=30s"]);
    bed.startController();
    [sourceController, kustomizeController] = await Promise.all([
      startSourceController({ kubeconfig: bed.cluster.kubeconfig, dir: work }),
      // As DeliveryBed starts Ferry's controller: failing dependencies are looked at again after 2s, not 30s.
      startKustomizeController({ kubeconfig: bed.cluster.kubeconfig, dir: work, extraArgs: ["--requeue-dependency=2s"] }),
    ]);
  });
  after(async () => {
    await Promise.all([sourceController?.stop(), kustomizeController?.stop()]);
    await bed?.stop();
  });

  const ns = (side: Side, name: string) => `${side}-${name}`;

  /** Writes `files` (name → content; objects are dumped as YAML) into a fresh directory and pushes it; returns the digest. */
  async function push(repository: string, files: Record<string, unknown>): Promise<string> {
    const dir = await mkdtemp(join(work, "artifact-"));
    for (const [name, content] of Object.entries(files)) {
      const text = typeof content === "string" ? content : Array.isArray(content) ? content.map((item) => yaml.dump(item)).join("---\n") : yaml.dump(content);
      await mkdir(join(dir, name, ".."), { recursive: true });
      await writeFile(join(dir, name), text);
    }
    const digest = await bed.push(dir, `fields/${repository}`);
    await rm(dir, { recursive: true, force: true });
    return digest;
  }

  async function createNamespaces(name: string): Promise<void> {
    await bed.cluster.kubectl(["create", "namespace", ns("flux", name)]);
    await bed.cluster.kubectl(["create", "namespace", ns("ferry", name)]);
  }

  /** Both sides' OCIRepository `repository` (polled every 2s) and Kustomization `kustomization` with `spec`. */
  async function deliver(
    name: string, repository: string, kustomization: string,
    spec: Record<string, unknown> | ((namespace: string) => Record<string, unknown>), labels: Record<string, string> = {},
  ): Promise<void> {
    const objects = SIDES.flatMap((side) => {
      const namespace = ns(side, name);
      const [source, kustomize] = side === "flux" ? [FLUX_SOURCE_API_VERSION, FLUX_KUSTOMIZE_API_VERSION] : [FERRY_SOURCE_API_VERSION, FERRY_KUSTOMIZE_API_VERSION];
      return [
        {
          apiVersion: source, kind: "OCIRepository", metadata: { namespace, name: repository },
          spec: { url: `oci://${bed.registry.host}/fields/${repository}`, ref: { tag: "v1" }, interval: "2s", insecure: true },
        },
        {
          apiVersion: kustomize, kind: "Kustomization", metadata: { namespace, name: kustomization, labels },
          spec: {
            sourceRef: { kind: "OCIRepository", name: repository }, path: "./", interval: "1h", prune: true, targetNamespace: namespace,
            ...(typeof spec === "function" ? spec(namespace) : spec),
          },
        },
      ];
    });
    await bed.applyObjects(objects);
  }

  async function kustomizationOf(side: Side, namespace: string, name: string): Promise<Kustomization> {
    return JSON.parse(await bed.cluster.kubectl(["get", side === "flux" ? FLUX_KUSTOMIZATION : FERRY_KUSTOMIZATION, name, "-n", namespace, "-o", "json"])) as Kustomization;
  }

  /** Waits until each side's Kustomization has a verdict on `digest` for its current generation; returns both. */
  async function settled(
    name: string, kustomization: string, digest: string, check?: (object: Kustomization) => boolean, timeoutMs = 90_000,
  ) {
    const result = {} as Record<Side, Kustomization>;
    await Promise.all(SIDES.map(async (side) => {
      let last: Kustomization | undefined;
      const poll = async () => {
        const object = (last = await kustomizationOf(side, ns(side, name), kustomization));
        const ready = conditionOf(object, "Ready");
        // Flux moves status.observedGeneration only on success; each condition carries the generation it judged.
        const judged = (ready as { observedGeneration?: number } | undefined)?.observedGeneration ?? object.status?.observedGeneration;
        return judged === object.metadata.generation
          && object.status?.lastAttemptedRevision?.endsWith(digest) === true
          && ready !== undefined && ready.status !== "Unknown"
          && (check?.(object) ?? true);
      };
      const process = side === "flux" ? kustomizeController.process : bed.controller;
      const options = { timeoutMs, intervalMs: 300, ...(process ? { process } : {}) };
      await waitUntil(`${side}: ${kustomization} settled on ${digest}`, poll, options)
        .catch((error: Error) => {
          throw new Error(`${error.message}\nlast status: ${JSON.stringify(last?.status, null, 2)}`);
        });
      result[side] = last as Kustomization;
    }));
    return result;
  }

  /** Waits until `check` holds for each side's Kustomization; returns both. */
  async function both(
    name: string, kustomization: string, description: string, check: (object: Kustomization) => boolean, timeoutMs = 60_000,
  ) {
    const result = {} as Record<Side, Kustomization>;
    await Promise.all(SIDES.map(async (side) => {
      let last: Kustomization | undefined;
      const poll = async () => check((last = await kustomizationOf(side, ns(side, name), kustomization)));
      const process = side === "flux" ? kustomizeController.process : bed.controller;
      await waitUntil(`${side}: ${kustomization} ${description}`, poll, { timeoutMs, intervalMs: 300, ...(process ? { process } : {}) })
        .catch((error: Error) => {
          throw new Error(`${error.message}\nlast status: ${JSON.stringify(last?.status, null, 2)}`);
        });
      result[side] = last as Kustomization;
    }));
    return result;
  }

  /** The Ready (and, when either has it, Healthy) condition's status and reason must be the same on both sides. */
  function assertSameVerdicts(both: Record<Side, Kustomization>): void {
    for (const type of ["Ready", "Healthy"]) {
      const [flux, ferry] = [conditionOf(both.flux, type), conditionOf(both.ferry, type)];
      if (!flux && !ferry) continue;
      assert.deepEqual({ status: ferry?.status, reason: ferry?.reason }, { status: flux?.status, reason: flux?.reason },
        `${type}: Flux said ${JSON.stringify(flux)}; Ferry said ${JSON.stringify(ferry)}`);
    }
  }

  function assertSameInventory(both: Record<Side, Kustomization>, name: string): string[] {
    const ids = (side: Side) => (both[side].status?.inventory?.entries ?? []).map((entry) => idIn(entry.id, ns(side, name))).sort();
    assert.deepEqual(ids("ferry"), ids("flux"), `the same inventory; Flux: ${JSON.stringify(both.flux.status)}`);
    return ids("flux");
  }

  /** Every object of `resources` in each side's namespace, normalised, by kind/name. */
  async function objectsIn(side: Side, name: string, resources: string): Promise<Record<string, KubeObject>> {
    const list = JSON.parse(await bed.cluster.kubectl(["get", resources, "-n", ns(side, name), "-o", "json"])) as { items: KubeObject[] };
    return Object.fromEntries(list.items
      .filter((item) => item.metadata.name !== "kube-root-ca.crt")
      .map((item) => [`${item.kind}/${item.metadata.name}`, normalise(item)]));
  }

  async function assertSameObjects(name: string, resources: string): Promise<Record<string, KubeObject>> {
    const [flux, ferry] = await Promise.all([objectsIn("flux", name, resources), objectsIn("ferry", name, resources)]);
    assert.deepEqual(Object.keys(ferry).sort(), Object.keys(flux).sort(), `the same ${resources} exist`);
    for (const key of Object.keys(flux)) assert.deepEqual(ferry[key], flux[key], `${key} differs`);
    return flux;
  }

  type Strings = Record<string, string>;
  const configMap = (name: string, data: Strings, annotations?: Strings, extra: Record<string, unknown> = {}) => ({
    apiVersion: "v1", kind: "ConfigMap", metadata: { name, ...(annotations ? { annotations } : {}) }, data, ...extra,
  });

  test("per-object annotations prune: disabled, ssa: IfNotPresent/Ignore, force: enabled across two revisions", async (t) => {
    const name = "annotations";
    await createNamespaces(name);
    const FLUX = "kustomize.toolkit.fluxcd.io";
    const revision = (value: string, withDropped: boolean) => ({
      "kustomization.yaml": `resources: [objects.yaml]\n`,
      "objects.yaml": [
        ...(withDropped ? [
          configMap("kept", { value }, { [`${FLUX}/prune`]: "disabled" }),
          configMap("pruned", { value }),
        ] : []),
        configMap("once", { value }, { [`${FLUX}/ssa`]: "IfNotPresent" }),
        configMap("ignored", { value }, { [`${FLUX}/ssa`]: "Ignore" }),
        configMap("merged", { value }, { [`${FLUX}/ssa`]: "Merge" }),
        // Immutable: a data change is rejected by the apiserver and must be recreated, which force: enabled allows.
        configMap("frozen", { value }, { [`${FLUX}/force`]: "enabled" }, { immutable: true }),
        configMap("plain", { value }),
      ],
    });
    const first = await push(name, revision("one", true));
    await deliver(name, name, name, {});
    const v1 = await settled(name, name, first);
    assertSameVerdicts(v1);
    assert.equal(conditionOf(v1.flux, "Ready")?.status, "True", JSON.stringify(conditionOf(v1.flux, "Ready")));
    assertSameInventory(v1, name);
    await assertSameObjects(name, "configmaps");

    // Out-of-band changes both tools then meet: a field of another manager on `merged`, data edited on `once`.
    for (const side of SIDES) {
      await bed.cluster.kubectl(["patch", "configmap", "merged", "-n", ns(side, name), "--type=merge", "-p", JSON.stringify({ data: { extra: "kept" } })]);
      await bed.cluster.kubectl(["patch", "configmap", "once", "-n", ns(side, name), "--type=merge", "-p", JSON.stringify({ data: { value: "edited" } })]);
    }
    const second = await push(name, revision("two", false));
    const v2 = await settled(name, name, second);
    assertSameVerdicts(v2);
    assert.equal(conditionOf(v2.flux, "Ready")?.status, "True", JSON.stringify(conditionOf(v2.flux, "Ready")));
    assertSameInventory(v2, name);
    const objects = await assertSameObjects(name, "configmaps");
    // What the comparison covered, as Flux left it: kept survives the prune, pruned is gone, once keeps its edit, the
    // frozen ConfigMap was recreated with the new data.
    assert.ok(objects["ConfigMap/kept"], "prune: disabled survives");
    assert.equal(objects["ConfigMap/pruned"], undefined);
    assert.deepEqual((objects["ConfigMap/once"] as { data?: unknown }).data, { value: "edited" });
    assert.deepEqual((objects["ConfigMap/frozen"] as { data?: unknown }).data, { value: "two" });

    // status.history: the same shape on both sides (one entry per distinct build, newest first).
    const shape = (entry: HistoryEntry) => Object.keys(entry).sort();
    const [fluxHistory, ferryHistory] = [v2.flux.status?.history ?? [], v2.ferry.status?.history ?? []];
    // The digests differ by design (Flux: sha256 of kustomize's YAML of the built ResMap; Ferry: of the objects' JSON).
    t.diagnostic(`history: Flux ${JSON.stringify(fluxHistory)}; Ferry ${JSON.stringify(ferryHistory)}`);
    assert.equal(ferryHistory.length, fluxHistory.length, `history: Flux ${JSON.stringify(fluxHistory)}; Ferry ${JSON.stringify(ferryHistory)}`);
    assert.deepEqual(ferryHistory.map(shape), fluxHistory.map(shape));
    const counted = (entry: HistoryEntry) => [entry.lastReconciledStatus, entry.totalReconciliations, entry.metadata];
    assert.deepEqual(ferryHistory.map(counted), fluxHistory.map(counted));
  });

  test("reconcile: disabled and ssa: Ignore on live objects, stringData keys removed, a Job deleted by its TTL, ciphertext refused", async () => {
    const name = "pause";
    await createNamespaces(name);
    const FLUX = "kustomize.toolkit.fluxcd.io";
    const secret = (data: Strings) => ({ apiVersion: "v1", kind: "Secret", metadata: { name: "creds" }, stringData: data });
    // Deleted by the TTL controller the moment it completes: a health check that reads it then finds nothing.
    const job = {
      apiVersion: "batch/v1", kind: "Job", metadata: { name: "once" },
      spec: { ttlSecondsAfterFinished: 0, template: { spec: { restartPolicy: "Never", containers: [{ name: "run", image: "example.com/run:1" }] } } },
    };
    const revision = (value: string, withOrphan: boolean, creds: Strings) => ({
      "app/kustomization.yaml": "resources: [objects.yaml]\n",
      "app/objects.yaml": [
        configMap("paused", { value }),
        configMap("paused-by-label", { value }),
        ...(withOrphan ? [configMap("orphan", { value })] : []),
        // Never created: the manifest itself opts out.
        configMap("declared-off", { value }, { [`${FLUX}/reconcile`]: "disabled" }),
        // A label and an annotation that disagree: Flux's selectors match either, so Ignore wins over Merge.
        { ...configMap("mixed", { value }, { [`${FLUX}/ssa`]: "Merge" }), metadata: { name: "mixed", annotations: { [`${FLUX}/ssa`]: "Merge" }, labels: { [`${FLUX}/ssa`]: "Ignore" } } },
        secret(creds),
        job,
      ],
      // A SOPS-encrypted Secret (data values are ENC[...] strings) and no spec.decryption: refused, not applied.
      "sealed/kustomization.yaml": "resources: [secret.yaml]\n",
      "sealed/secret.yaml": {
        apiVersion: "v1", kind: "Secret", metadata: { name: "sealed" },
        data: { token: "ENC[AES256_GCM,data:Zm9vYmFy,iv:YWJjZGVmZ2hpamtsbW5vcA==,tag:cXJzdHV2d3h5ejAxMjM0NQ==,type:str]" },
        sops: { mac: "ENC[AES256_GCM,data:eA==,iv:YWJj,tag:ZGVm,type:str]", lastmodified: "2026-12-05T00:00:00Z", version: "3.9.0" },
      },
    });
    const first = await push(name, revision("one", true, { a: "1", b: "2" }));
    await deliver(name, name, "app", { path: "./app", wait: true, timeout: "30s" });
    await deliver(name, name, "sealed", { path: "./sealed" });
    const [v1, sealed] = await Promise.all([settled(name, "app", first), settled(name, "sealed", first)]);
    assertSameVerdicts(v1);
    assert.equal(conditionOf(v1.flux, "Ready")?.status, "True", JSON.stringify(v1.flux.status));
    assertSameInventory(v1, name);
    await assertSameObjects(name, "configmaps");
    assertSameVerdicts(sealed);
    assert.equal(conditionOf(sealed.flux, "Ready")?.reason, "ReconciliationFailed", JSON.stringify(sealed.flux.status));
    assert.match(conditionOf(sealed.ferry, "Ready")?.message ?? "", /Secret\/.*sealed is SOPS encrypted, configuring decryption is required/);

    // A user pauses three live objects; the next revision changes two of them and drops the third.
    for (const side of SIDES) {
      const namespace = ns(side, name);
      await bed.cluster.kubectl(["annotate", "configmap", "paused", "orphan", "-n", namespace, `${FLUX}/reconcile=disabled`]);
      await bed.cluster.kubectl(["label", "configmap", "paused-by-label", "-n", namespace, `${FLUX}/reconcile=disabled`]);
    }
    const second = await push(name, revision("two", false, { a: "1" }));
    const v2 = await settled(name, "app", second);
    assertSameVerdicts(v2);
    assert.equal(conditionOf(v2.flux, "Ready")?.status, "True", JSON.stringify(v2.flux.status));
    assertSameInventory(v2, name);
    const objects = await assertSameObjects(name, "configmaps");
    const secrets = await assertSameObjects(name, "secrets");
    // What the comparison covered, as Flux left it.
    assert.deepEqual((objects["ConfigMap/paused"] as { data?: unknown }).data, { value: "one" });
    assert.deepEqual((objects["ConfigMap/paused-by-label"] as { data?: unknown }).data, { value: "one" });
    assert.ok(objects["ConfigMap/orphan"], "a paused object is not pruned");
    assert.equal(objects["ConfigMap/declared-off"], undefined);
    assert.equal(objects["ConfigMap/mixed"], undefined);
    assert.deepEqual(Object.keys((secrets["Secret/creds"] as { data?: object }).data ?? {}), ["a"], "a key removed from stringData leaves the Secret");
    assert.equal(secrets["Secret/sealed"], undefined);
  });

  test("healthCheckExprs (CEL) on a custom resource: current, failed, and an expression that cannot be evaluated", async () => {
    const name = "cel";
    await createNamespaces(name);
    // The status written in the manifest is not applied (Flux drops every object's status but a CRD's), so the
    // expressions read spec; the comparison of the objects checks that neither side applied the status.
    const widget = (widgetName: string, phase: string) => ({
      apiVersion: "example.com/v1", kind: "Widget", metadata: { name: widgetName }, spec: { phase }, status: { phase },
    });
    const digest = await push(name, {
      "current/kustomization.yaml": "resources: [widget.yaml]\n",
      "current/widget.yaml": widget("current", "Ready"),
      "failed/kustomization.yaml": "resources: [widget.yaml]\n",
      "failed/widget.yaml": widget("failed", "Broken"),
      "unevaluable/kustomization.yaml": "resources: [widget.yaml]\n",
      "unevaluable/widget.yaml": widget("unevaluable", "Ready"),
    });
    const exprs = (current: string) => [{ apiVersion: "example.com/v1", kind: "Widget", current, failed: "spec.phase == 'Broken'" }];
    const cases: Array<[string, Record<string, unknown>]> = [
      ["current", { path: "./current", healthCheckExprs: exprs("spec.phase == 'Ready'") }],
      ["failed", { path: "./failed", healthCheckExprs: exprs("spec.phase == 'Ready'") }],
      ["unevaluable", { path: "./unevaluable", healthCheckExprs: exprs("status.phase == 'Ready'") }],
    ];
    for (const [kustomization, spec] of cases) await deliver(name, name, kustomization, { wait: true, timeout: "10s", ...spec });
    const verdicts = await Promise.all(cases.map(([kustomization]) => settled(name, kustomization, digest)));
    const summary = verdicts.map((item) => SIDES.map((side) => conditionOf(item[side], "Ready")));
    for (const item of verdicts) assertSameVerdicts(item);
    assert.equal(summary[0]?.[0]?.status, "True", JSON.stringify(summary));
    assert.equal(summary[1]?.[0]?.status, "False", JSON.stringify(summary));
    assert.equal(summary[2]?.[0]?.status, "False", JSON.stringify(summary));
    const objects = await assertSameObjects(name, "widgets.example.com");
    assert.equal(objects["Widget/current"]?.status, undefined, "the manifest's status is not applied");
  });

  test("dependsOn with readyExpr: not ready while the expression is false, applied once it holds", async () => {
    const name = "depends";
    await createNamespaces(name);
    const digest = await push(name, {
      "base/kustomization.yaml": "resources: [cm.yaml]\n",
      "base/cm.yaml": configMap("base", { a: "1" }),
      "app/kustomization.yaml": "resources: [cm.yaml]\n",
      "app/cm.yaml": configMap("app", { a: "1" }),
    });
    await deliver(name, name, "base", { path: "./base" }, { gate: "closed" });
    await deliver(name, name, "app", {
      path: "./app", dependsOn: [{ name: "base", readyExpr: "dep.metadata.labels.gate == 'open' && dep.status.lastAppliedRevision != ''" }],
    });
    await settled(name, "base", digest);
    const waiting = await both(name, "app", "waiting on its dependency", (object) => conditionOf(object, "Ready")?.reason === "DependencyNotReady");
    assertSameVerdicts(waiting);
    for (const side of SIDES) await bed.cluster.kubectl(["label", "--overwrite", side === "flux" ? FLUX_KUSTOMIZATION : FERRY_KUSTOMIZATION, "base", "-n", ns(side, name), "gate=open"]);
    const applied = await settled(name, "app", digest, (object) => conditionOf(object, "Ready")?.status === "True", 30_000);
    assertSameVerdicts(applied);
    assertSameInventory(applied, name);
    await assertSameObjects(name, "configmaps");
  });

  test("postBuild: substituteFrom a ConfigMap and an optional missing Secret, substituteStrategy Always and the default", async () => {
    const name = "postbuild";
    await createNamespaces(name);
    const settings = (suffix: string) => configMap(`settings-${suffix}`, { region: "${region}", tier: "${tier:=standard}", literal: "$${region}", home: "$HOME" });
    const digest = await push(name, {
      "from/kustomization.yaml": "resources: [cm.yaml]\n", "from/cm.yaml": settings("from"),
      "always/kustomization.yaml": "resources: [cm.yaml]\n", "always/cm.yaml": settings("always"),
      "default/kustomization.yaml": "resources: [cm.yaml]\n", "default/cm.yaml": settings("default"),
    });
    for (const side of SIDES) {
      await bed.applyObjects([{ apiVersion: "v1", kind: "ConfigMap", metadata: { name: "vars", namespace: ns(side, name) }, data: { region: "eu-west-1", tier: "gold" } }]);
    }
    const cases: Array<[string, Record<string, unknown>]> = [
      ["from", { path: "./from", postBuild: { substituteFrom: [{ kind: "ConfigMap", name: "vars" }, { kind: "Secret", name: "absent", optional: true }] } }],
      ["always", { path: "./always", postBuild: { substituteStrategy: "Always" } }],
      ["default", { path: "./default", postBuild: { substituteFrom: [{ kind: "Secret", name: "absent", optional: true }] } }],
    ];
    for (const [kustomization, spec] of cases) await deliver(name, name, kustomization, spec);
    const verdicts = await Promise.all(cases.map(([kustomization]) => settled(name, kustomization, digest)));
    for (const item of verdicts) assertSameVerdicts(item);
    // Always with no variables at all: Flux substitutes in strict mode and fails on ${region} (no default); so must Ferry.
    assert.equal(conditionOf(verdicts[1]?.flux as Kustomization, "Ready")?.reason, "BuildFailed", JSON.stringify(verdicts[1]?.flux.status));
    assert.match(conditionOf(verdicts[1]?.ferry as Kustomization, "Ready")?.message ?? "", /region/);
    const objects = await assertSameObjects(name, "configmaps");
    assert.deepEqual((objects["ConfigMap/settings-from"] as { data?: unknown }).data, { region: "eu-west-1", tier: "gold", literal: "${region}", home: "$HOME" });
  });

  test("spec.ignore drift rules, buildMetadata, ignoreMissingComponents, healthChecks without apiVersion", async () => {
    // The Deployment's status is the cluster's (kwok's pods), compared out; its spec and the ConfigMaps are compared.
    const name = "build";
    await createNamespaces(name);
    const tree = (value: string) => ({
      "meta/kustomization.yaml": "resources: [cm.yaml, deployment.yaml]\n",
      "meta/cm.yaml": configMap("meta", { a: "1" }),
      "meta/deployment.yaml": {
        apiVersion: "apps/v1", kind: "Deployment", metadata: { name: "meta" },
        spec: {
          replicas: 1, selector: { matchLabels: { app: "meta" } },
          template: { metadata: { labels: { app: "meta" } }, spec: { containers: [{ name: "app", image: "example.com/app:1" }] } },
        },
      },
      "drift/kustomization.yaml": "resources: [cm.yaml]\n",
      "drift/cm.yaml": configMap("drift", { managed: value, ignored: "1" }),
    });
    const first = await push(name, tree("one"));
    await deliver(name, name, "meta", (namespace) => ({
      path: "./meta", components: ["./missing"], ignoreMissingComponents: true, buildMetadata: ["originAnnotations"],
      // Without apiVersion Flux looks the kind up in group "apps" (a ConfigMap is then "no matches for kind").
      healthChecks: [{ kind: "Deployment", name: "meta", namespace }], timeout: "40s",
    }));
    await deliver(name, name, "drift", { path: "./drift", ignore: [{ paths: ["/data/ignored"], target: { kind: "ConfigMap" } }] });
    const [meta, drift] = await Promise.all([settled(name, "meta", first), settled(name, "drift", first)]);
    assertSameVerdicts(meta);
    assertSameVerdicts(drift);
    assert.equal(conditionOf(meta.flux, "Ready")?.status, "True", JSON.stringify(conditionOf(meta.flux, "Ready")));
    // Edits in an ignored field and in a managed one; the next revision changes the managed field's value.
    for (const side of SIDES) {
      await bed.cluster.kubectl(["patch", "configmap", "drift", "-n", ns(side, name), "--type=merge", "-p",
        JSON.stringify({ data: { ignored: "edited", managed: "edited" } })]);
    }
    const second = await push(name, tree("two"));
    const [, drifted] = await Promise.all([settled(name, "meta", second), settled(name, "drift", second)]);
    assertSameVerdicts(drifted);
    await assertSameObjects(name, "deployments");
    const objects = await assertSameObjects(name, "configmaps");
    assert.deepEqual((objects["ConfigMap/drift"] as { data?: unknown }).data, { managed: "two", ignored: "edited" });
    assert.ok(objects["ConfigMap/meta"]?.metadata.annotations?.["config.kubernetes.io/origin"], JSON.stringify(objects["ConfigMap/meta"]));
  });

  test("decryption with SOPS and age: the same Secret data on both sides", { skip: skipUnlessBuilt("sops", "age-keygen") }, async () => {
    const name = "sops";
    await createNamespaces(name);
    const keyFile = join(work, "age.txt");
    await exec(binary("age-keygen"), ["-o", keyFile]);
    const key = await readFile(keyFile, "utf8");
    const recipient = /public key: (age1\w+)/.exec(key)?.[1] ?? "";
    const dir = await mkdtemp(join(work, "sops-"));
    await writeFile(join(dir, "kustomization.yaml"), "resources: [secret.yaml]\nsecretGenerator:\n  - name: env\n    envs: [app.env]\n");
    await writeFile(join(dir, "secret.yaml"), "apiVersion: v1\nkind: Secret\nmetadata:\n  name: db\nstringData:\n  password: hunter2\n  port: \"5432\"\n");
    await writeFile(join(dir, "app.env"), "TOKEN=tok-123\nMODE=prod\n");
    for (const [file, args] of [["secret.yaml", ["--encrypted-regex", "^(data|stringData)$"]], ["app.env", []]] as const) {
      await exec(binary("sops"), ["encrypt", "--age", recipient, ...args, "--in-place", file], { cwd: dir, env: { PATH: process.env.PATH ?? "", HOME: work } });
    }
    const digest = await bed.push(dir, `fields/${name}`);
    for (const side of SIDES) {
      await bed.applyObjects([{ apiVersion: "v1", kind: "Secret", metadata: { namespace: ns(side, name), name: "sops-keys" }, stringData: { "identity.agekey": key } }]);
    }
    await deliver(name, name, name, { decryption: { provider: "sops", secretRef: { name: "sops-keys" } } });
    const verdicts = await settled(name, name, digest, (object) => (object.status?.inventory?.entries.length ?? 0) > 0, 60_000);
    assertSameVerdicts(verdicts);
    assert.equal(conditionOf(verdicts.flux, "Ready")?.status, "True", JSON.stringify(conditionOf(verdicts.flux, "Ready")));
    assertSameInventory(verdicts, name);
    const [flux, ferry] = await Promise.all(SIDES.map((side) => objectsIn(side, name, "secrets")));
    const applied = (objects: Record<string, KubeObject>) => Object.fromEntries(Object.entries(objects).filter(([key]) => key !== "Secret/sops-keys"));
    assert.deepEqual(applied(ferry ?? {}), applied(flux ?? {}));
    assert.equal(Buffer.from(String((flux?.["Secret/db"] as { data?: Record<string, string> }).data?.password), "base64").toString(), "hunter2");
  });
});
