// The OCIRepository reconciler end to end: the ferry controller against a real apiserver and real registries.
import assert from "node:assert/strict";
import { existsSync } from "node:fs";
import { mkdir, mkdtemp, readFile, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, before, describe, test } from "node:test";
import { type FaultProxy, startFaultProxy } from "../../registry-fixtures/fault-proxy.ts";
import { startLocalFulcio } from "../../registry-fixtures/fulcio.ts";
import { createCertificateAuthority } from "../harness/pki.ts";
import { controllerRbac } from "../../src/api/rbac.ts";
import { skipUnlessBuilt } from "../harness/binaries.ts";
import { type ControlPlane, startControlPlane } from "../harness/control-plane.ts";
import { FERRY_CLI, ferryOk } from "../harness/ferry.ts";
import { probe } from "../harness/http.ts";
import { freePort, type ManagedProcess, startProcess, waitUntil } from "../harness/processes.ts";
import { readTree, treeDifferences } from "../harness/trees.ts";
import { type Registry, startRegistry } from "../harness/registry.ts";

const CRDS = join(import.meta.dirname, "..", "..", "crds");
const PASSWORD = { COSIGN_PASSWORD: "ferry-e2e" };

interface Condition {
  type: string;
  status: string;
  reason: string;
  message: string;
}

/** The parts of an OCIRepository the assertions read. */
interface Observed {
  metadata: { generation: number; finalizers: string[] };
  status?: {
    conditions?: Condition[];
    observedGeneration?: number;
    lastHandledReconcileAt?: string;
    observedIgnore?: string;
    artifact?: { revision: string; path: string; metadata: Record<string, string> };
  };
}

describe("OCIRepository reconciler", { skip: skipUnlessBuilt("etcd", "kube-apiserver", "kube-controller-manager", "kube-scheduler", "kubectl", "kwok", "zot") }, () => {
  let cluster: ControlPlane;
  let registry: Registry;
  let privateRegistry: Registry;
  let tlsRegistry: Registry;
  let mtlsRegistry: Registry;
  let forwardProxy: FaultProxy;
  let controller: ManagedProcess;
  let controllerKubeconfig: string;
  let healthUrl: string;
  let controllers = 0;
  let dir: string;
  let cacheDir: string;
  let sources: string;
  let contentVersion = 0;

  /** Pushes a small artifact whose content changes with every call; returns its digest. */
  async function push(target: Registry, repository: string, tag: string, extra: string[] = []): Promise<string> {
    const source = join(sources, `content-${contentVersion++}`);
    await mkdir(source, { recursive: true });
    await writeFile(join(source, "configmap.yaml"), `apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: demo\ndata:\n  version: "${contentVersion}"\n`);
    const creds = target.credentials ? [`--creds=${target.credentials.username}:${target.credentials.password}`] : [];
    const client = target.clientCertificate ? [`--cert-file=${target.clientCertificate.certFile}`, `--key-file=${target.clientCertificate.keyFile}`] : [];
    const transport = target.caFile ? [`--ca-file=${target.caFile}`, ...client] : ["--insecure-registry"];
    const result = await ferryOk(
      ["push", "artifact", `oci://${target.host}/${repository}:${tag}`, `--path=${source}`, "--source=e2e", "--revision=r", ...transport, ...creds, ...extra],
      { env: PASSWORD },
    );
    return result.stdout.trim();
  }

  async function apply(name: string, spec: Record<string, unknown>, annotations: Record<string, string> = {}) {
    await cluster.kubectl(["apply", "-f", "-"], {
      input: JSON.stringify({ apiVersion: "source.ferry.dev/v1", kind: "OCIRepository", metadata: { namespace: "default", name, annotations }, spec }),
    });
  }

  async function get(name: string): Promise<Observed> {
    return JSON.parse(await cluster.kubectl(["get", "ocirepository", name, "-o", "json"]));
  }

  function artifactOf(object: Observed) {
    const artifact = object.status?.artifact;
    assert.ok(artifact, "status.artifact is missing");
    return artifact;
  }

  const condition = (object: Observed, type: string) =>
    object.status?.conditions?.find((candidate) => candidate.type === type);

  async function waitFor(name: string, description: string, check: (object: Observed) => boolean, timeoutMs = 30_000) {
    let last: Observed | undefined;
    await waitUntil(
      `${name}: ${description}`,
      async () => {
        last = await get(name);
        return check(last);
      },
      { timeoutMs, intervalMs: 250, process: controller },
    ).catch((error: Error) => {
      throw new Error(`${error.message}\nlast status: ${JSON.stringify(last?.status, null, 2)}`);
    });
    if (!last) throw new Error(`${name} was never read`);
    return last;
  }

  before(async () => {
    dir = await mkdtemp(join(tmpdir(), "ferry-e2e-ocirepo-"));
    cacheDir = join(dir, "cache");
    sources = join(dir, "sources");
    [cluster, registry, privateRegistry, tlsRegistry] = await Promise.all([
      startControlPlane(),
      startRegistry({ kind: "zot" }),
      startRegistry({ kind: "zot", auth: "htpasswd" }),
      startRegistry({ kind: "distribution", tls: true }),
    ]);
    mtlsRegistry = await startRegistry({ kind: "distribution", mutualTls: true });
    forwardProxy = await startFaultProxy(registry.host);
    await cluster.kubectl(["apply", "--server-side", "-f", CRDS]);
    await cluster.kubectl(["wait", "--for=condition=Established", "crd/ocirepositories.source.ferry.dev", "--timeout=30s"]);
    await ferryOk(["keygen", "--output-key-prefix=e2e"], { cwd: dir, env: PASSWORD });
    // The controller runs as a ServiceAccount bound to the RBAC we ship, not as cluster-admin.
    await cluster.kubectl(["create", "namespace", "ferry-system"]);
    controllerKubeconfig = await cluster.serviceAccountKubeconfig("ferry-system", "ferry-controller");
    await cluster.kubectl(["apply", "-f", "-"], { input: JSON.stringify({ apiVersion: "v1", kind: "List", items: controllerRbac("ferry-system", "ferry-controller", { applier: false }) }) });
    ({ process: controller, healthUrl } = await startController());
  });

  /** Starts a controller replica (leader election on, short lease so failover tests stay quick). */
  async function startController() {
    const port = await freePort();
    const index = controllers++;
    const started = startProcess(`ferry controller #${index}`, process.execPath, [
      FERRY_CLI, "controller", `--kubeconfig=${controllerKubeconfig}`, `--cache-dir=${cacheDir}`, `--health-addr=127.0.0.1:${port}`,
      "--leader-election-namespace=ferry-system", "--lease-duration=4s", "--renew-deadline=3s", "--retry-period=500ms",
    ], { logFile: join(dir, `controller-${index}.log`) });
    const url = `http://127.0.0.1:${port}`;
    await waitUntil("controller /readyz", async () => (await probe(`${url}/readyz`)).status === 200, { timeoutMs: 30_000, process: started });
    return { process: started, healthUrl: url, logFile: join(dir, `controller-${index}.log`) };
  }
  after(async () => {
    await controller?.stop();
    await forwardProxy?.stop();
    await Promise.all([registry?.stop(), privateRegistry?.stop(), tlsRegistry?.stop(), mtlsRegistry?.stop(), cluster?.stop()]);
    await rm(dir, { recursive: true, force: true });
  });

  test("an OCIRepository becomes Ready with <tag>@<digest> and its files in the cache; new content moves the revision", async () => {
    const first = await push(registry, "apps/demo", "v1");
    await apply("demo", { url: `oci://${registry.host}/apps/demo`, ref: { tag: "v1" }, interval: "3s", insecure: true });
    const object = await waitFor("demo", "Ready with the pushed revision", (o) => o.status?.artifact?.revision === `v1@${first}` && condition(o, "Ready")?.status === "True");
    assert.equal(condition(object, "ArtifactInStorage")?.status, "True");
    assert.equal(object.status?.observedGeneration, object.metadata.generation);
    assert.equal(artifactOf(object).metadata["org.opencontainers.image.source"], "e2e");
    assert.ok(object.metadata.finalizers.includes("finalizers.ferry.dev"));
    const stored = join(cacheDir, artifactOf(object).path, "configmap.yaml");
    assert.match(await readFile(stored, "utf8"), /kind: ConfigMap/);
    const table = await cluster.kubectl(["get", "ocirepo", "demo"]);
    assert.match(table, new RegExp(`demo\\s+True\\s+stored artifact for revision 'v1@${first}'`));

    // The previous artifact stays while a Kustomization may still be building from it; the one before goes.
    const second = await push(registry, "apps/demo", "v1");
    const secondObject = await waitFor("demo", "the new revision within the interval", (o) => o.status?.artifact?.revision === `v1@${second}`);
    assert.ok(existsSync(stored), "the previous artifact was removed while it may still be in use");
    const third = await push(registry, "apps/demo", "v1");
    await waitFor("demo", "a third revision", (o) => o.status?.artifact?.revision === `v1@${third}`);
    assert.ok(!existsSync(stored), "the artifact two revisions back was not garbage-collected");
    assert.ok(existsSync(join(cacheDir, artifactOf(secondObject).path)), "the previous artifact was removed");
  });

  test("reconcile.ferry.dev/requestedAt (or Flux's reconcile.fluxcd.io/requestedAt) triggers an immediate reconcile and is echoed in status", async () => {
    const first = await push(registry, "apps/requested", "stable");
    await apply("requested", { url: `oci://${registry.host}/apps/requested`, ref: { tag: "stable" }, interval: "1h", insecure: true });
    await waitFor("requested", "Ready", (o) => o.status?.artifact?.revision === `stable@${first}`);
    const second = await push(registry, "apps/requested", "stable");
    const requestedAt = new Date().toISOString();
    await cluster.kubectl(["annotate", "--overwrite", "ocirepository", "requested", `reconcile.ferry.dev/requestedAt=${requestedAt}`]);
    const object = await waitFor("requested", "the new revision after the request", (o) => o.status?.artifact?.revision === `stable@${second}`, 15_000);
    assert.equal(object.status?.lastHandledReconcileAt, requestedAt);
    // Flux's annotation, as receivers and scripts written for Flux set it, works the same.
    const third = await push(registry, "apps/requested", "stable");
    const fluxRequest = new Date(Date.now() + 1000).toISOString();
    await cluster.kubectl(["annotate", "--overwrite", "ocirepository", "requested", `reconcile.fluxcd.io/requestedAt=${fluxRequest}`]);
    const again = await waitFor("requested", "the revision after Flux's request", (o) => o.status?.artifact?.revision === `stable@${third}`, 15_000);
    assert.equal(again.status?.lastHandledReconcileAt, fluxRequest);
  });

  test("semver picks the highest matching tag; a digest ref ignores new tags", async () => {
    await push(registry, "apps/semver", "1.0.0");
    const wanted = await push(registry, "apps/semver", "1.2.0");
    await push(registry, "apps/semver", "2.0.0");
    await apply("semver", { url: `oci://${registry.host}/apps/semver`, ref: { semver: ">=1.0.0 <2.0.0" }, interval: "1h", insecure: true });
    await waitFor("semver", "the highest 1.x", (o) => o.status?.artifact?.revision === `1.2.0@${wanted}`);

    const pinned = await push(registry, "apps/pinned", "v1");
    await apply("pinned", { url: `oci://${registry.host}/apps/pinned`, ref: { digest: pinned }, interval: "2s", insecure: true });
    await waitFor("pinned", "the pinned digest", (o) => o.status?.artifact?.revision === pinned);
    await push(registry, "apps/pinned", "v1");
    await new Promise((resolve) => setTimeout(resolve, 5000));
    assert.equal(artifactOf(await get("pinned")).revision, pinned);
  });

  test("a private registry needs its dockerconfigjson secret", async () => {
    const creds = privateRegistry.credentials;
    assert.ok(creds);
    const digest = await push(privateRegistry, "apps/private", "v1");
    await apply("private", { url: `oci://${privateRegistry.host}/apps/private`, ref: { tag: "v1" }, interval: "1h", insecure: true, secretRef: { name: "registry-creds" } });
    const failing = await waitFor("private", "an auth failure without the secret", (o) => condition(o, "Ready")?.status === "False");
    assert.equal(condition(failing, "Ready")?.reason, "AuthenticationFailed");
    assert.equal(condition(failing, "FetchFailed")?.status, "True");
    await cluster.kubectl([
      "create", "secret", "docker-registry", "registry-creds", `--docker-server=${privateRegistry.host}`,
      `--docker-username=${creds.username}`, `--docker-password=${creds.password}`,
    ]);
    await waitFor("private", "Ready once the secret exists", (o) => o.status?.artifact?.revision === `v1@${digest}`, 60_000);
  });

  test("imagePullSecrets of spec.serviceAccountName authenticate to a private registry", async () => {
    const creds = privateRegistry.credentials;
    assert.ok(creds);
    const digest = await push(privateRegistry, "apps/via-sa", "v1");
    await cluster.kubectl([
      "create", "secret", "docker-registry", "pull-secret", `--docker-server=${privateRegistry.host}`,
      `--docker-username=${creds.username}`, `--docker-password=${creds.password}`,
    ]);
    await cluster.kubectl(["apply", "-f", "-"], {
      input: JSON.stringify({ apiVersion: "v1", kind: "ServiceAccount", metadata: { namespace: "default", name: "puller" }, imagePullSecrets: [{ name: "pull-secret" }] }),
    });
    await apply("via-sa", { url: `oci://${privateRegistry.host}/apps/via-sa`, ref: { tag: "v1" }, interval: "1h", insecure: true, serviceAccountName: "puller" });
    await waitFor("via-sa", "Ready with the ServiceAccount's pull secret", (o) => o.status?.artifact?.revision === `v1@${digest}`);
  });

  test("certSecretRef's ca.crt verifies a private registry CA; without it the TLS error is reported", async () => {
    assert.ok(tlsRegistry.caFile);
    const digest = await push(tlsRegistry, "apps/tls", "v1");
    await apply("tls-untrusted", { url: `oci://${tlsRegistry.host}/apps/tls`, ref: { tag: "v1" }, interval: "1h" });
    const untrusted = await waitFor("tls-untrusted", "a TLS failure", (o) => condition(o, "FetchFailed")?.status === "True");
    assert.match(condition(untrusted, "FetchFailed")?.message ?? "", /certificate/i);
    await cluster.kubectl(["create", "secret", "generic", "registry-ca", `--from-file=ca.crt=${tlsRegistry.caFile}`]);
    await apply("tls", { url: `oci://${tlsRegistry.host}/apps/tls`, ref: { tag: "v1" }, interval: "1h", certSecretRef: { name: "registry-ca" } });
    await waitFor("tls", "Ready over TLS", (o) => o.status?.artifact?.revision === `v1@${digest}`);
  });

  test("certSecretRef's tls.crt and tls.key authenticate to a registry that requires client certificates", async () => {
    const client = mtlsRegistry.clientCertificate;
    assert.ok(mtlsRegistry.caFile && client);
    const digest = await push(mtlsRegistry, "apps/mtls", "v1");
    await cluster.kubectl(["create", "secret", "generic", "mtls-ca-only", `--from-file=ca.crt=${mtlsRegistry.caFile}`]);
    await apply("mtls-no-client-cert", { url: `oci://${mtlsRegistry.host}/apps/mtls`, ref: { tag: "v1" }, interval: "1h", certSecretRef: { name: "mtls-ca-only" } });
    const refused = await waitFor("mtls-no-client-cert", "a failure without a client certificate", (o) => condition(o, "FetchFailed")?.status === "True");
    assert.match(condition(refused, "FetchFailed")?.message ?? "", /certificate|handshake|socket|reset|closed/i);
    await cluster.kubectl([
      "create", "secret", "generic", "mtls-client", `--from-file=ca.crt=${mtlsRegistry.caFile}`,
      `--from-file=tls.crt=${client.certFile}`, `--from-file=tls.key=${client.keyFile}`,
    ]);
    await apply("mtls", { url: `oci://${mtlsRegistry.host}/apps/mtls`, ref: { tag: "v1" }, interval: "1h", certSecretRef: { name: "mtls-client" } });
    await waitFor("mtls", "Ready with a client certificate", (o) => o.status?.artifact?.revision === `v1@${digest}`);
  });

  test("proxySecretRef sends registry traffic through the proxy; spec.ignore leaves paths out of the artifact", async () => {
    const source = join(sources, "with-docs");
    await mkdir(join(source, "docs"), { recursive: true });
    await writeFile(join(source, "app.yaml"), "kind: ConfigMap\n");
    await writeFile(join(source, "docs", "guide.md"), "# guide\n");
    const digest = (await ferryOk(["push", "artifact", `oci://${registry.host}/apps/proxied:v1`, `--path=${source}`, "--source=e2e", "--revision=r", "--insecure-registry"])).stdout.trim();
    await cluster.kubectl(["create", "secret", "generic", "proxy", `--from-literal=address=http://${forwardProxy.host}`]);
    forwardProxy.requests.length = 0;
    await apply("proxied", { url: `oci://${registry.host}/apps/proxied`, ref: { tag: "v1" }, interval: "1h", insecure: true, proxySecretRef: { name: "proxy" }, ignore: "docs/" });
    const object = await waitFor("proxied", "Ready through the proxy", (o) => o.status?.artifact?.revision === `v1@${digest}`);
    assert.ok(forwardProxy.requests.some((request) => request.method === "CONNECT" && request.path === registry.host), "no traffic went through the proxy");
    const stored = join(cacheDir, artifactOf(object).path);
    assert.ok(existsSync(join(stored, "app.yaml")));
    assert.ok(!existsSync(join(stored, "docs")), "spec.ignore was not applied");
    assert.equal(object.status?.observedIgnore, "docs/");
  });

  test("layerSelector picks a layer by media type and operation copy stores the blob as it is", async () => {
    const chart = join(dir, "podinfo-6.9.0.tgz");
    await writeFile(chart, Buffer.from("not really a chart, but bytes to keep as they are"));
    const { runTool } = await import("../harness/tools.ts");
    const pushed = await runTool("oras", ["push", "--plain-http", "--format=json", `${registry.host}/charts/podinfo:6.9.0`, "podinfo-6.9.0.tgz:application/vnd.cncf.helm.chart.content.v1.tar+gzip"], { cwd: dir });
    const digest = JSON.parse(pushed.stdout.toString()).digest;
    await apply("chart", {
      url: `oci://${registry.host}/charts/podinfo`,
      ref: { tag: "6.9.0" },
      interval: "1h",
      insecure: true,
      layerSelector: { mediaType: "application/vnd.cncf.helm.chart.content.v1.tar+gzip", operation: "copy" },
    });
    const object = await waitFor("chart", "Ready with the copied blob", (o) => o.status?.artifact?.revision === `6.9.0@${digest}`);
    assert.ok((await readFile(join(cacheDir, artifactOf(object).path, "podinfo-6.9.0.tgz"))).equals(await readFile(chart)));
  });

  test("a signed artifact verifies; an unsigned one sets SourceVerified=False and keeps the old artifact", async () => {
    const signed = await push(registry, "apps/verified", "v1", ["--sign", `--key=${join(dir, "e2e.key")}`]);
    await cluster.kubectl(["create", "secret", "generic", "cosign-keys", `--from-file=cosign.pub=${join(dir, "e2e.pub")}`]);
    await apply("verified", { url: `oci://${registry.host}/apps/verified`, ref: { tag: "v1" }, interval: "2s", insecure: true, verify: { provider: "cosign", secretRef: { name: "cosign-keys" } } });
    let object = await waitFor("verified", "verified and Ready", (o) => o.status?.artifact?.revision === `v1@${signed}` && condition(o, "SourceVerified")?.status === "True");
    assert.match(condition(object, "SourceVerified")?.message ?? "", /verified signature of revision v1@sha256:/);

    const unsigned = await push(registry, "apps/verified", "v1");
    object = await waitFor("verified", "SourceVerified=False for the unsigned push", (o) => condition(o, "SourceVerified")?.status === "False");
    assert.equal(condition(object, "Ready")?.status, "False");
    assert.match(condition(object, "SourceVerified")?.message ?? "", new RegExp(`no signature found for .*${unsigned}`));
    assert.equal(artifactOf(object).revision, `v1@${signed}`, "the last verified artifact was replaced");
    assert.ok(existsSync(join(cacheDir, artifactOf(object).path, "configmap.yaml")));
  });

  test("keyless: matchOIDCIdentity with a trustedRootSecretRef accepts the right workflow and refuses another", async () => {
    const ca = await createCertificateAuthority(dir, "e2e-fulcio");
    const fulcio = await startLocalFulcio({ dir, caCertFile: ca.certFile, caKeyFile: ca.keyFile });
    try {
      const release = "https://github.com/acme/app/.github/workflows/release.yml@refs/tags/v1.0.0";
      const keylessFlags = ["--sign", "--keyless", `--fulcio-url=${fulcio.url}`, "--tlog-upload=false"];
      const signed = await push(registry, "apps/keyless", "v1", [...keylessFlags, `--identity-token=${fulcio.mintToken({ sub: release })}`]);
      const { X509Certificate } = await import("node:crypto");
      const der = new X509Certificate(await readFile(ca.certFile)).raw.toString("base64");
      const root = {
        mediaType: "application/vnd.dev.sigstore.trustedroot+json;version=0.1",
        tlogs: [],
        certificateAuthorities: [{ subject: { organization: "ferry-test", commonName: "e2e-fulcio" }, uri: fulcio.url, certChain: { certificates: [{ rawBytes: der }] }, validFor: { start: "2020-01-01T00:00:00Z" } }],
        ctlogs: [],
        timestampAuthorities: [],
      };
      await writeFile(join(dir, "trusted_root.json"), JSON.stringify(root));
      await cluster.kubectl(["create", "secret", "generic", "sigstore-root", `--from-file=trusted_root.json=${join(dir, "trusted_root.json")}`]);
      const verify = (subject: string) => ({
        provider: "cosign",
        matchOIDCIdentity: [{ issuer: fulcio.issuerUrl.replaceAll(".", "\\."), subject }],
        trustedRootSecretRef: { name: "sigstore-root" },
      });
      // No transparency log here, so the controller must be told to accept that, as cosign's --insecure-ignore-tlog.
      await apply("keyless", { url: `oci://${registry.host}/apps/keyless`, ref: { tag: "v1" }, interval: "1h", insecure: true, verify: verify("https://github\\.com/acme/app/\\.github/workflows/release\\.yml@refs/tags/v.*") }, { "verify.ferry.dev/insecure-ignore-tlog": "true" });
      const accepted = await waitFor("keyless", "keyless signature verified", (o) => condition(o, "SourceVerified")?.status === "True");
      assert.equal(artifactOf(accepted).revision, `v1@${signed}`);

      await apply("keyless-other", { url: `oci://${registry.host}/apps/keyless`, ref: { tag: "v1" }, interval: "1h", insecure: true, verify: verify("https://github\\.com/acme/app/\\.github/workflows/nightly\\.yml@.*") }, { "verify.ferry.dev/insecure-ignore-tlog": "true" });
      const refused = await waitFor("keyless-other", "refused for another workflow", (o) => condition(o, "SourceVerified")?.status === "False");
      assert.match(condition(refused, "SourceVerified")?.message ?? "", /signed by https:\/\/github\.com\/acme\/app\/\.github\/workflows\/release\.yml@refs\/tags\/v1\.0\.0, which does not match/);
    } finally {
      await fulcio.stop();
    }
  });

  test("ferry create, get, reconcile, suspend and resume source oci drive the controller", async () => {
    const kube = [`--kubeconfig=${cluster.kubeconfig}`];
    const exported = await ferryOk(["create", "source", "oci", "cli-demo", `--url=oci://${registry.host}/apps/cli`, "--tag=v1", "--interval=1h", "--insecure", "--export"]);
    assert.match(exported.stdout, /kind: OCIRepository[\s\S]*tag: v1/);
    const first = await push(registry, "apps/cli", "v1");
    await ferryOk(["create", "source", "oci", "cli-demo", `--url=oci://${registry.host}/apps/cli`, "--tag=v1", "--interval=1h", "--insecure", ...kube]);
    await waitFor("cli-demo", "Ready", (o) => o.status?.artifact?.revision === `v1@${first}`);
    const listed = await ferryOk(["get", "sources", "oci", ...kube]);
    assert.match(listed.stdout, /^NAME\s+REVISION\s+SUSPENDED\s+READY\s+MESSAGE/);
    assert.match(listed.stdout, new RegExp(`cli-demo\\s+v1@${first}\\s+false\\s+True`));

    const second = await push(registry, "apps/cli", "v1");
    const reconciled = await ferryOk(["reconcile", "source", "oci", "cli-demo", ...kube]);
    assert.match(reconciled.stderr, new RegExp(`fetched revision v1@${second}`));

    await ferryOk(["suspend", "source", "oci", "cli-demo", ...kube]);
    assert.equal((await get("cli-demo") as Observed & { spec: { suspend?: boolean } }).spec.suspend, true);
    assert.match((await ferryOk(["get", "sources", "oci", "cli-demo", ...kube])).stdout, /cli-demo\s+\S+\s+true/);
    await ferryOk(["resume", "source", "oci", "cli-demo", ...kube]);
    assert.equal((await get("cli-demo") as Observed & { spec: { suspend?: boolean } }).spec.suspend, undefined);
  });

  test("probes answer, metrics count reconciles, and new artifacts are recorded as Events", async () => {
    assert.equal((await probe(`${healthUrl}/healthz`)).status, 200);
    assert.equal((await probe(`${healthUrl}/readyz`)).status, 200);
    const metrics = (await probe(`${healthUrl}/metrics`)).body.toString();
    const succeeded = Number(/ferry_reconcile_total\{kind="OCIRepository",result="success"\} (\d+)/.exec(metrics)?.[1] ?? 0);
    assert.ok(succeeded > 0, metrics);
    assert.match(metrics, /ferry_reconcile_duration_seconds_count\{kind="OCIRepository"\} \d+/);
    assert.match(metrics, /ferry_workqueue_depth \d+/);
    const events = JSON.parse(await cluster.kubectl(["get", "events", "--field-selector=involvedObject.name=demo", "-o", "json"]));
    const newArtifact = events.items.find((event: { reason: string }) => event.reason === "NewArtifact");
    assert.ok(newArtifact, "no NewArtifact event");
    assert.match(newArtifact.message, new RegExp(`stored artifact with revision 'v1@sha256:[a-f0-9]{64}' from 'oci://${registry.host}/apps/demo'`));
    assert.equal(newArtifact.source.component, "ferry-controller");
  });

  test("a URL with a tag stalls; deleting an OCIRepository removes its cache", async () => {
    await apply("stalled", { url: `oci://${registry.host}/apps/demo:v1`, interval: "1m", insecure: true });
    const stalled = await waitFor("stalled", "Stalled", (o) => condition(o, "Stalled")?.status === "True");
    assert.equal(condition(stalled, "Stalled")?.reason, "URLInvalid");

    const digest = await push(registry, "apps/deleted", "v1");
    await apply("deleted", { url: `oci://${registry.host}/apps/deleted`, ref: { tag: "v1" }, interval: "1h", insecure: true });
    const object = await waitFor("deleted", "Ready", (o) => o.status?.artifact?.revision === `v1@${digest}`);
    const objectCache = join(cacheDir, artifactOf(object).path);
    assert.ok(existsSync(objectCache));
    await cluster.kubectl(["delete", "ocirepository", "deleted", "--timeout=30s"]);
    assert.ok(!existsSync(objectCache), "the cache of a deleted OCIRepository is still there");
    await assert.rejects(get("deleted"), /NotFound/);
  });

  test("a killed controller restarts without losing or half-publishing an artifact", async () => {
    const corpus = join(import.meta.dirname, "..", "..", "..", "shared", "corpora", "kube-prometheus", "manifests");
    const digest = (await ferryOk(["push", "artifact", `oci://${registry.host}/apps/big:v1`, `--path=${corpus}`, "--source=e2e", "--revision=r", "--insecure-registry"])).stdout.trim();
    await apply("big", { url: `oci://${registry.host}/apps/big`, ref: { tag: "v1" }, interval: "1h", insecure: true });
    const objectDir = join(cacheDir, "ocirepository", "default", "big");
    const { readdir } = await import("node:fs/promises");
    // Kill it while the artifact is being downloaded or extracted: a staging directory exists only then.
    await waitUntil("the controller to start staging the artifact", async () => (await readdir(objectDir).catch(() => [])).some((entry) => entry.startsWith(".staging-")), {
      timeoutMs: 20_000,
      intervalMs: 2,
    });
    await controller.kill("SIGKILL");
    const interrupted = await get("big");
    assert.equal(interrupted.status?.artifact, undefined, "the artifact was published before the kill");
    // kstatus: the fetch in progress was visible as Reconciling=True and Ready=Unknown.
    assert.equal(condition(interrupted, "Reconciling")?.status, "True");
    assert.match(condition(interrupted, "Reconciling")?.message ?? "", /building artifact: new revision 'v1@sha256:/);
    assert.equal(condition(interrupted, "Ready")?.status, "Unknown");
    ({ process: controller, healthUrl } = await startController());
    const object = await waitFor("big", "Ready after the restart", (o) => o.status?.artifact?.revision === `v1@${digest}`, 60_000);
    assert.deepEqual(await readdir(objectDir), [artifactOf(object).path.split("/").at(-1)], "staging or partial downloads were left behind");
    assert.deepEqual(treeDifferences(await readTree(corpus), await readTree(join(cacheDir, artifactOf(object).path))), []);
  });

  test("with two replicas only the leader reconciles, and the other takes over when it stops", async () => {
    const standby = await startController();
    await new Promise((resolve) => setTimeout(resolve, 2000));
    assert.doesNotMatch(await readFile(standby.logFile, "utf8"), /became leader/);
    await controller.stop();
    await waitUntil("the standby to become leader", async () => /became leader/.test(await readFile(standby.logFile, "utf8")), { timeoutMs: 15_000, process: standby.process });
    controller = standby.process;
    const digest = await push(registry, "apps/failover", "v1");
    await apply("failover", { url: `oci://${registry.host}/apps/failover`, ref: { tag: "v1" }, interval: "1h", insecure: true });
    await waitFor("failover", "Ready under the new leader", (o) => o.status?.artifact?.revision === `v1@${digest}`);
  });
});
