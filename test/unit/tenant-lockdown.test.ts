// --tenant-lockdown without a cluster: who reads what a Kustomization names (the Impersonate-User header a fake
// apiserver sees), how refusals are reported, and the RBAC a lockdown controller and its tenants need.
import assert from "node:assert/strict";
import { createServer, type IncomingHttpHeaders, type Server } from "node:http";
import { after, before, describe, test } from "node:test";
import { KubeConfig } from "@kubernetes/client-node";
import { applierBinding, controllerRbac, impersonatorRole, tenantViewRole } from "../../src/api/rbac.ts";
import type { KustomizationSpecType } from "../../src/api/kustomize.ts";
import { KubeClient } from "../../src/kube/client.ts";
import { KustomizationFailure, refusalOf, substitutionVariables, Targets } from "../../src/reconcilers/kustomization-inputs.ts";

const spec = (fields: Record<string, unknown>) =>
  ({ sourceRef: { kind: "OCIRepository", name: "app" }, path: "./", ...fields }) as unknown as KustomizationSpecType;

/** An apiserver that refuses every read, quoting the user it was asked to act as, as kube-apiserver words it. */
interface SeenRequest {
  readonly path: string;
  readonly headers: IncomingHttpHeaders;
}

async function startRefusingApiserver(): Promise<{ server: Server; kube: KubeClient; requests: SeenRequest[] }> {
  const requests: SeenRequest[] = [];
  const server = createServer((request, response) => {
    requests.push({ path: request.url ?? "", headers: request.headers });
    const user = request.headers["impersonate-user"] ?? "system:serviceaccount:ferry-system:ferry-controller";
    const name = request.url?.split("/").pop();
    response.writeHead(403, { "content-type": "application/json" });
    response.end(JSON.stringify({ kind: "Status", status: "Failure", reason: "Forbidden", code: 403, message: `secrets "${name}" is forbidden: User "${user}" cannot get resource "secrets"` }));
  });
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  const config = new KubeConfig();
  config.loadFromOptions({
    clusters: [{ name: "c", server: `http://127.0.0.1:${(server.address() as { port: number }).port}`, skipTLSVerify: true }],
    users: [{ name: "controller", token: "t" }],
    contexts: [{ name: "x", cluster: "c", user: "controller" }],
    currentContext: "x",
  });
  return { server, kube: new KubeClient(config), requests };
}

describe("--tenant-lockdown reads", () => {
  let apiserver: Awaited<ReturnType<typeof startRefusingApiserver>>;
  before(async () => {
    apiserver = await startRefusingApiserver();
  });
  after(() => apiserver.server.close());

  const accessDenied = (message: RegExp) => (error: unknown) => {
    assert.ok(error instanceof KustomizationFailure);
    assert.equal(error.reason, "AccessDenied");
    assert.equal(error.disposition, "retry", "RBAC is not watched: a RoleBinding added later must be picked up");
    assert.match(error.message, message);
    return true;
  };

  test("the kubeConfig Secret is read as the Kustomization's ServiceAccount, and its refusal names the Secret and the account", async () => {
    apiserver.requests.length = 0;
    const targets = new Targets(apiserver.kube, { lockdown: true });
    await assert.rejects(targets.for("tenant", spec({ serviceAccountName: "deployer", kubeConfig: { secretRef: { name: "remote" } } })),
      accessDenied(/^kubeConfig Secret 'tenant\/remote' was refused: secrets "remote" is forbidden: User "system:serviceaccount:tenant:deployer"/));
    assert.deepEqual(apiserver.requests.map((request) => [request.path, request.headers["impersonate-user"]]),
      [["/api/v1/namespaces/tenant/secrets/remote", "system:serviceaccount:tenant:deployer"]]);
  });

  test("substituteFrom is read as the default ServiceAccount when the Kustomization names none", async () => {
    apiserver.requests.length = 0;
    const targets = new Targets(apiserver.kube, { lockdown: true, defaultServiceAccount: "tenant-default" });
    const named = spec({ postBuild: { substituteFrom: [{ kind: "Secret", name: "vars" }] } });
    await assert.rejects(substitutionVariables(targets.readerFor("tenant", named), "tenant", named),
      accessDenied(/^substituteFrom Secret 'tenant\/vars' was refused: .*User "system:serviceaccount:tenant:tenant-default"/));
    assert.equal(apiserver.requests[0]?.headers["impersonate-user"], "system:serviceaccount:tenant:tenant-default");
  });

  test("without lockdown the controller reads for itself, as in Flux", () => {
    const targets = new Targets(apiserver.kube, { defaultServiceAccount: "tenant-default" });
    assert.equal(targets.readerFor("tenant", spec({ serviceAccountName: "deployer" })), apiserver.kube);
  });

  test("under lockdown a Kustomization with no ServiceAccount, and no default, stalls with AccessDenied", () => {
    assert.throws(() => new Targets(apiserver.kube, { lockdown: true }).readerFor("tenant", spec({})), (error: unknown) => {
      assert.ok(error instanceof KustomizationFailure);
      assert.equal(error.reason, "AccessDenied");
      assert.equal(error.disposition, "stall");
      assert.match(error.message, /spec\.serviceAccountName is required: this controller runs with --tenant-lockdown/);
      return true;
    });
  });

  test("one reader per ServiceAccount is kept, so its connections are reused across reconciles", () => {
    const targets = new Targets(apiserver.kube, { lockdown: true });
    const deployer = spec({ serviceAccountName: "deployer" });
    assert.equal(targets.readerFor("tenant", deployer), targets.readerFor("tenant", deployer));
    assert.notEqual(targets.readerFor("tenant", deployer), targets.readerFor("other", deployer));
  });
});

describe("refusals", () => {
  const forbidden = { code: 403, body: JSON.stringify({ message: "configmaps \"x\" is forbidden: User \"u\" cannot get" }), message: "HTTP-Code: 403 ..." };

  test("a 403 is AccessDenied in the apiserver's words, also when wrapped as a cause (the applier's reads)", () => {
    assert.equal(refusalOf(forbidden, "health check of ConfigMap/b/x")?.message, "health check of ConfigMap/b/x was refused: configmaps \"x\" is forbidden: User \"u\" cannot get");
    const wrapped = new Error("ConfigMap/b/x could not be read: …", { cause: forbidden });
    assert.equal(refusalOf(wrapped, "health check of ConfigMap/b/x")?.reason, "AccessDenied");
  });

  test("other failures are not refusals", () => {
    assert.equal(refusalOf({ code: 500, message: "etcd unavailable" }, "x"), undefined);
    assert.equal(refusalOf(new Error("socket hang up"), "x"), undefined);
  });
});

describe("lockdown RBAC", () => {
  interface Rbac {
    kind: string;
    metadata: { name: string; labels?: Record<string, string> };
    roleRef?: { name: string };
    rules?: Array<{ resources: string[]; verbs: string[] }>;
  }
  const objects = controllerRbac("ferry-system", "ferry-controller", { applier: "impersonation" }) as Rbac[];
  const named = (kind: string, name: string) => objects.find((object) => object.kind === kind && object.metadata.name === name);

  test("a lockdown controller may impersonate ServiceAccounts and holds no cluster-admin", () => {
    assert.equal(named("ClusterRoleBinding", applierBinding("ferry-system")), undefined);
    assert.ok(!objects.some((object) => object.roleRef?.name === "cluster-admin"));
    const impersonator = impersonatorRole("ferry-system");
    assert.deepEqual(named("ClusterRole", impersonator)?.rules, [{ apiGroups: [""], resources: ["serviceaccounts"], verbs: ["impersonate"] }]);
    assert.equal(named("ClusterRoleBinding", impersonator)?.roleRef?.name, impersonator);
  });

  test("tenants' namespace roles may read Ferry's objects, and nothing more", () => {
    const view = named("ClusterRole", tenantViewRole("ferry-system"));
    for (const role of ["view", "edit", "admin"]) assert.equal(view?.metadata.labels?.[`rbac.authorization.k8s.io/aggregate-to-${role}`], "true");
    assert.deepEqual(view?.rules?.flatMap((rule) => rule.resources).sort(), ["kustomizations", "ocirepositories"]);
    assert.ok(view?.rules?.every((rule) => rule.verbs.every((verb) => ["get", "list", "watch"].includes(verb))));
  });

  test("the default keeps the cluster-admin binding and a sources-only deployment gets neither applier role", () => {
    assert.ok((controllerRbac("ns", "sa") as Rbac[]).some((object) => object.metadata.name === applierBinding("ns")));
    const sourcesOnly = controllerRbac("ns", "sa", { applier: false }) as Rbac[];
    assert.ok(!sourcesOnly.some((object) => object.metadata.name === applierBinding("ns") || object.metadata.name === impersonatorRole("ns")));
  });
});
