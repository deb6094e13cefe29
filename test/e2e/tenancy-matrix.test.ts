// What a tenant can and cannot reach through a controller run with --tenant-lockdown, as a matrix: each row is one
// Kustomization of tenant A trying something, and the table of what happened is printed at the end. The controller
// holds no cluster-admin of its own here (only the right to impersonate ServiceAccounts, as a lockdown install
// would), but it may still read every Secret and ConfigMap: a refusal below therefore shows the read was made as
// the tenant's ServiceAccount, not as the controller.
import assert from "node:assert/strict";
import { mkdir, mkdtemp, readFile, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, before, describe, test } from "node:test";
import yaml from "js-yaml";
import { applierBinding, controllerRbac } from "../../src/api/rbac.ts";
import { skipUnlessBuilt } from "../harness/binaries.ts";
import { namespaceAdmin } from "../harness/tenants.ts";
import { condition, DeliveryBed, type ObservedKustomization } from "../harness/delivery.ts";

const A = "tenant-a";
const B = "tenant-b";
const CONTROLLER = "system:serviceaccount:ferry-system:ferry-controller";

type Outcome = "applied" | "refused";

interface Row {
  readonly id: string;
  readonly attempt: string;
  readonly expected: Outcome;
  readonly namespace: string;
  readonly name: string;
  readonly spec: Record<string, unknown>;
  /** The Ready reason a refusal reports, and what its message must name. */
  readonly refusal?: { readonly reason: string; readonly stalled?: boolean; readonly message: RegExp };
  /** What must (or must not) exist afterwards, as `kubectl get` arguments. */
  readonly present?: readonly string[];
  readonly absent?: ReadonlyArray<readonly string[]>;
}

interface Observation {
  readonly row: Row;
  readonly outcome: Outcome | "pending";
  readonly ready: string;
  readonly message: string;
}

/** A ServiceAccount that may manage ConfigMaps and read Ferry's objects in its namespace, and may not read Secrets. */
const secretlessTenant = (namespace: string, name: string) => [
  { apiVersion: "v1", kind: "ServiceAccount", metadata: { namespace, name } },
  {
    apiVersion: "rbac.authorization.k8s.io/v1",
    kind: "Role",
    metadata: { namespace, name },
    rules: [
      { apiGroups: [""], resources: ["configmaps"], verbs: ["get", "list", "watch", "create", "update", "patch", "delete"] },
      { apiGroups: ["source.ferry.dev"], resources: ["ocirepositories"], verbs: ["get"] },
      { apiGroups: ["kustomize.ferry.dev"], resources: ["kustomizations"], verbs: ["get"] },
    ],
  },
  {
    apiVersion: "rbac.authorization.k8s.io/v1",
    kind: "RoleBinding",
    metadata: { namespace, name },
    roleRef: { apiGroup: "rbac.authorization.k8s.io", kind: "Role", name },
    subjects: [{ kind: "ServiceAccount", namespace, name }],
  },
];

const configMap = (name: string, data: Record<string, string>, namespace?: string) =>
  ({ apiVersion: "v1", kind: "ConfigMap", metadata: { name, ...(namespace ? { namespace } : {}) }, data });

const FIXTURES: Record<string, unknown[]> = {
  own: [configMap("own", { from: A })],
  "into-b": [configMap("intruder", { from: A }, B)],
  substituted: [configMap("substituted", { greeting: "${greeting}" })],
  "cluster-scoped": [
    { apiVersion: "rbac.authorization.k8s.io/v1", kind: "ClusterRole", metadata: { name: "tenant-a-escalation" }, rules: [] },
    { apiVersion: "v1", kind: "Namespace", metadata: { name: "tenant-a-escape" } },
  ],
};

const source = (namespace: string, name: string, url: string) => ({
  apiVersion: "source.ferry.dev/v1",
  kind: "OCIRepository",
  metadata: { namespace, name },
  spec: { url, ref: { tag: "v1" }, interval: "1h", insecure: true },
});

const kustomization = (row: Row) => ({
  apiVersion: "kustomize.ferry.dev/v1",
  kind: "Kustomization",
  metadata: { namespace: row.namespace, name: row.name },
  spec: { path: "./", interval: "1h", prune: true, retryInterval: "5s", ...row.spec },
});

const from = (fixture: string) => ({ sourceRef: { kind: "OCIRepository", name: fixture } });
const deployer = { serviceAccountName: "deployer" };
const refused = (reason: string, message: RegExp, stalled = false) => ({ reason, message, stalled });

const ROWS: readonly Row[] = [
  {
    id: "1", attempt: "apply into its own namespace", expected: "applied", namespace: A, name: "own-namespace",
    spec: { ...from("own"), ...deployer }, present: ["configmap", "own", "-n", A],
  },
  {
    id: "2", attempt: "apply into B with targetNamespace", expected: "refused", namespace: A, name: "target-b",
    spec: { ...from("own"), ...deployer, targetNamespace: B, namePrefix: "target-" },
    refusal: refused("AccessDenied", /targetNamespace 'tenant-b' is not allowed: this controller runs with --tenant-lockdown/, true),
    absent: [["configmap", "target-own", "-n", B]],
  },
  {
    id: "2b", attempt: "apply an object with namespace: tenant-b", expected: "refused", namespace: A, name: "object-in-b",
    spec: { ...from("into-b"), ...deployer },
    refusal: refused("ReconciliationFailed", /ConfigMap\/tenant-b\/intruder.*system:serviceaccount:tenant-a:deployer/),
    absent: [["configmap", "intruder", "-n", B]],
  },
  {
    id: "3", attempt: "substituteFrom a Secret of its own namespace", expected: "applied", namespace: A, name: "substitute-own",
    spec: { ...from("substituted"), ...deployer, postBuild: { substituteFrom: [{ kind: "Secret", name: "vars" }] } },
    present: ["configmap", "substituted", "-n", A],
  },
  {
    id: "4", attempt: "substituteFrom a Secret its ServiceAccount may not read", expected: "refused", namespace: A, name: "substitute-unreadable",
    spec: { ...from("substituted"), serviceAccountName: "secretless", namePrefix: "locked-", postBuild: { substituteFrom: [{ kind: "Secret", name: "locked" }] } },
    refusal: refused("AccessDenied", /substituteFrom Secret 'tenant-a\/locked' was refused: .*system:serviceaccount:tenant-a:secretless/),
    absent: [["configmap", "locked-substituted", "-n", A]],
  },
  {
    id: "5", attempt: "sourceRef to B's OCIRepository", expected: "refused", namespace: A, name: "source-in-b",
    spec: { sourceRef: { kind: "OCIRepository", name: "app", namespace: B }, ...deployer, namePrefix: "borrowed-" },
    refusal: refused("AccessDenied", /cross-namespace sourceRef to 'tenant-b\/app' is not allowed/, true),
  },
  {
    id: "6", attempt: "dependsOn a Kustomization in B", expected: "refused", namespace: A, name: "depends-on-b",
    spec: { ...from("own"), ...deployer, namePrefix: "dependent-", dependsOn: [{ name: "app", namespace: B }] },
    refusal: refused("AccessDenied", /cross-namespace dependsOn 'tenant-b\/app' is not allowed/, true),
  },
  {
    id: "7", attempt: "no serviceAccountName", expected: "refused", namespace: A, name: "no-service-account",
    spec: { ...from("own"), namePrefix: "anonymous-" },
    refusal: refused("AccessDenied", /spec\.serviceAccountName is required/, true),
    absent: [["configmap", "anonymous-own", "-n", A]],
  },
  {
    id: "7b", attempt: "a serviceAccountName that does not exist", expected: "refused", namespace: A, name: "ghost-service-account",
    spec: { ...from("own"), serviceAccountName: "ghost", namePrefix: "ghost-" },
    refusal: refused("AccessDenied", /ServiceAccount 'tenant-a\/ghost' not found/),
  },
  {
    id: "8", attempt: "healthChecks naming a ConfigMap in B", expected: "refused", namespace: A, name: "health-in-b",
    spec: { ...from("own"), ...deployer, namePrefix: "health-", timeout: "30s", healthChecks: [{ apiVersion: "v1", kind: "ConfigMap", name: "b-config", namespace: B }] },
    refusal: refused("AccessDenied", /health check of ConfigMap\/tenant-b\/b-config was refused: .*system:serviceaccount:tenant-a:deployer/),
  },
  {
    id: "9", attempt: "create a ClusterRole and a Namespace", expected: "refused", namespace: A, name: "cluster-scoped",
    spec: { ...from("cluster-scoped"), ...deployer },
    refusal: refused("ReconciliationFailed", /(ClusterRole\/tenant-a-escalation|Namespace\/tenant-a-escape).*system:serviceaccount:tenant-a:deployer/),
    absent: [["clusterrole", "tenant-a-escalation"], ["namespace", "tenant-a-escape"]],
  },
  {
    id: "10", attempt: "kubeConfig from a Secret it may read", expected: "applied", namespace: A, name: "kubeconfig-readable",
    spec: { ...from("own"), ...deployer, namePrefix: "remote-", kubeConfig: { secretRef: { name: "remote-kubeconfig" } } },
    present: ["configmap", "remote-own", "-n", A],
  },
  {
    id: "10b", attempt: "kubeConfig from a Secret its ServiceAccount may not read", expected: "refused", namespace: A, name: "kubeconfig-unreadable",
    spec: { ...from("own"), serviceAccountName: "secretless", namePrefix: "stolen-", kubeConfig: { secretRef: { name: "remote-kubeconfig" } } },
    refusal: refused("AccessDenied", /kubeConfig Secret 'tenant-a\/remote-kubeconfig' was refused: .*system:serviceaccount:tenant-a:secretless/),
    absent: [["configmap", "stolen-own", "-n", A]],
  },
  {
    id: "B", attempt: "(tenant B) apply into its own namespace", expected: "applied", namespace: B, name: "app",
    spec: { ...from("app"), ...deployer }, present: ["configmap", "own", "-n", B],
  },
];

/** Reasons a Kustomization passes through on its way to an answer: its source has no artifact yet, or it is working. */
const TRANSIENT_REASONS = new Set(["ArtifactFailed", "Progressing"]);

function observe(row: Row, object: ObservedKustomization): Observation {
  const ready = condition(object, "Ready");
  const settled = ready && ready.status !== "Unknown" && !TRANSIENT_REASONS.has(ready.reason);
  const outcome = !settled ? "pending" : ready.status === "True" ? "applied" : "refused";
  const stalled = condition(object, "Stalled")?.status === "True" ? ", Stalled" : "";
  return { row, outcome, ready: ready ? `${ready.status}/${ready.reason}${stalled}` : "none", message: ready?.message ?? "" };
}

function table(observations: readonly Observation[]): string[] {
  const header = ["#", "tenant A's Kustomization tries to", "expected", "observed", "Ready", "message"];
  const cells = ({ row, outcome, ready, message }: Observation) => [row.id, row.attempt, row.expected, outcome, ready, message];
  const lines = [header, ...observations.map(cells)];
  const widths = lines[0]?.map((_, column) => Math.max(...lines.map((line) => line[column]?.length ?? 0))) ?? [];
  return lines.map((line) => line.map((cell, column) => cell.padEnd(widths[column] ?? 0)).join(" | ").trimEnd());
}

describe("tenancy matrix under --tenant-lockdown", { skip: skipUnlessBuilt("etcd", "kube-apiserver", "kube-controller-manager", "kube-scheduler", "kubectl", "kwok", "zot", "kustomize") }, () => {
  let bed: DeliveryBed;
  let fixtures: string;
  const observations = new Map<string, Observation>();

  /** The controller keeps only the right to impersonate: it can apply nothing as itself. */
  const leastPrivilege = async () => {
    await bed.cluster.kubectl(["delete", "clusterrolebinding", applierBinding("ferry-system")]);
    await bed.applyObjects(controllerRbac("ferry-system", "ferry-controller", { applier: "impersonation" }));
  };

  const pushFixtures = async () => {
    fixtures = await mkdtemp(join(tmpdir(), "ferry-tenancy-"));
    return Object.fromEntries(await Promise.all(Object.entries(FIXTURES).map(async ([name, objects]) => {
      const dir = join(fixtures, name);
      await mkdir(dir);
      await writeFile(join(dir, "objects.yaml"), objects.map((object) => yaml.dump(object)).join("---\n"));
      await bed.push(dir, `tenants/${name}`);
      return [name, `oci://${bed.registry.host}/tenants/${name}`];
    }))) as Record<string, string>;
  };

  /** A kubeconfig for this cluster as tenant A's deployer: its "remote" cluster is this one. */
  const remoteKubeconfig = async () => {
    const token = (await bed.cluster.kubectl(["create", "token", "deployer", "-n", A, "--duration=1h"])).trim();
    const authority = (await readFile(bed.cluster.caFile)).toString("base64");
    return yaml.dump({
      apiVersion: "v1",
      kind: "Config",
      clusters: [{ name: "remote", cluster: { server: bed.cluster.server, "certificate-authority-data": authority } }],
      users: [{ name: "deployer", user: { token } }],
      contexts: [{ name: "remote", context: { cluster: "remote", user: "deployer", namespace: A } }],
      "current-context": "remote",
    });
  };

  before(async () => {
    bed = await DeliveryBed.start();
    await leastPrivilege();
    await bed.cluster.kubectl(["create", "namespace", A]);
    await bed.cluster.kubectl(["create", "namespace", B]);
    const urls = await pushFixtures();
    await bed.applyObjects([
      ...namespaceAdmin(A, "deployer"),
      ...namespaceAdmin(B, "deployer"),
      ...secretlessTenant(A, "secretless"),
      { apiVersion: "v1", kind: "Secret", metadata: { namespace: A, name: "vars" }, stringData: { greeting: "hello from A" } },
      { apiVersion: "v1", kind: "Secret", metadata: { namespace: A, name: "locked" }, stringData: { greeting: "not for the secretless tenant" } },
      configMap("b-config", { owner: B }, B),
      ...Object.entries(urls).map(([name, url]) => source(A, name, url)),
      source(B, "app", urls.own ?? ""),
    ]);
    await bed.applyObjects([{ apiVersion: "v1", kind: "Secret", metadata: { namespace: A, name: "remote-kubeconfig" }, stringData: { value: await remoteKubeconfig() } }]);
    bed.startController(["--tenant-lockdown"]);
    await bed.applyObjects(ROWS.map(kustomization));
  });
  after(async () => {
    await bed?.stop();
    if (fixtures) await rm(fixtures, { recursive: true, force: true });
  });

  test("premise: the controller may read tenants' Secrets and ConfigMaps, and may apply nothing as itself", async () => {
    // `kubectl auth can-i` answers "no" on stdout and exits 1.
    const canI = (args: readonly string[]) => bed.cluster.kubectl(["auth", "can-i", ...args, `--as=${CONTROLLER}`]).then(
      (answer) => answer.trim(),
      (error: Error) => ((error.cause as { stdout?: string } | undefined)?.stdout ?? "").trim() || Promise.reject(error),
    );
    assert.equal(await canI(["get", "secrets", "-n", A]), "yes");
    assert.equal(await canI(["get", "configmaps", "-n", B]), "yes");
    assert.equal(await canI(["create", "configmaps", "-n", A]), "no");
    assert.equal(await canI(["impersonate", "serviceaccounts/deployer", "-n", A]), "yes");
  });

  for (const row of ROWS) {
    test(`${row.id}: ${row.attempt} → ${row.expected}`, async () => {
      let observation: Observation | undefined;
      await bed.waitForKustomization(row.namespace, row.name, "settled", (object) => (observation = observe(row, object)).outcome !== "pending", 60_000)
        .finally(() => observation && observations.set(row.id, observation));
      const settled = observation as Observation;
      assert.equal(settled.outcome, row.expected, `${row.id}: ${settled.ready}: ${settled.message}`);
      if (row.refusal) {
        assert.equal(settled.ready, `False/${row.refusal.reason}${row.refusal.stalled ? ", Stalled" : ""}`, settled.message);
        assert.match(settled.message, row.refusal.message);
      }
      if (row.present) await bed.cluster.kubectl(["get", ...row.present]);
      for (const absent of row.absent ?? []) await assert.rejects(bed.cluster.kubectl(["get", ...absent]), /NotFound/);
    });
  }

  test("the value read as the tenant reached its ConfigMap; the Secret refused to it reached nothing it can read", async () => {
    const substituted = await bed.getJson(["configmap", "substituted", "-n", A]) as { data?: Record<string, string> };
    assert.deepEqual(substituted.data, { greeting: "hello from A" });
    const readable = await bed.cluster.kubectl(["get", "configmaps,kustomizations,events", "-n", A, "-o", "json"]);
    assert.doesNotMatch(readable, /not for the secretless tenant/);
    const health = await bed.kustomization(A, "health-in-b");
    assert.equal(condition(health, "Healthy")?.status, "False", "a refused health check makes Healthy False");
  });

  test("the matrix", (context) => {
    const rows = ROWS.map((row) => observations.get(row.id) ?? { row, outcome: "pending" as const, ready: "none", message: "" });
    for (const line of table(rows)) context.diagnostic(line);
    assert.deepEqual(rows.map((observation) => `${observation.row.id}:${observation.outcome}`), ROWS.map((row) => `${row.id}:${row.expected}`));
  });
});
