// The OCIRepository reconciler's verification against zot with real signatures (ferry's and cosign's), the
// Kubernetes API replaced by a stand-in that keeps the object, its Secrets and the status merge patches written.
import assert from "node:assert/strict";
import { mkdir, mkdtemp, readFile, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, before, describe, test } from "node:test";
import { ArtifactCache } from "../../src/artifact/cache.ts";
import type { KubeClient } from "../../src/kube/client.ts";
import { FINALIZER, type OCIRepository, OCIRepositoryReconciler } from "../../src/reconcilers/ocirepository.ts";
import { keyFingerprint, parsePublicKey } from "../../src/signing/keys.ts";
import { skipUnlessBuilt } from "../harness/binaries.ts";
import { ferry, ferryOk } from "../harness/ferry.ts";
import { type Registry, startRegistry } from "../harness/registry.ts";
import { runTool } from "../harness/tools.ts";

const PASSWORD = { COSIGN_PASSWORD: "ferry-verification" };
const COSIGN_OFFLINE = ["--tlog-upload=false", "--use-signing-config=false", "--allow-http-registry", "--allow-insecure-registry", "-y"];

type Status = NonNullable<OCIRepository["status"]>;

/** RFC 7386: what the API server does with the reconciler's status patches (null removes a field). */
function mergePatch(target: unknown, patch: unknown): unknown {
  if (typeof patch !== "object" || patch === null || Array.isArray(patch)) return patch;
  const base = typeof target === "object" && target !== null && !Array.isArray(target) ? Object.entries(target) : [];
  const merged = new Map<string, unknown>(base);
  for (const [key, value] of Object.entries(patch)) {
    if (value === null) merged.delete(key);
    else merged.set(key, mergePatch(merged.get(key), value));
  }
  return Object.fromEntries(merged);
}

/** One OCIRepository and its Secrets, as the reconciler sees them through the Kubernetes API. */
class ApiStandIn {
  object: OCIRepository;
  readonly secrets = new Map<string, Record<string, Buffer>>();
  statusWrites = 0;

  constructor(spec: OCIRepository["spec"]) {
    this.object = {
      apiVersion: "source.ferry.dev/v1",
      kind: "OCIRepository",
      metadata: { namespace: "default", name: "app", generation: 1, finalizers: [FINALIZER] },
      spec,
    } as OCIRepository;
  }

  get kube(): KubeClient {
    return {
      setFinalizers: async () => undefined,
      patchStatus: async (_type: unknown, _namespace: string, _name: string, status: unknown) => {
        this.statusWrites += 1;
        this.object = { ...this.object, status: mergePatch(this.object.status ?? {}, status) as Status };
      },
      secretData: async (_namespace: string, name: string) => this.secrets.get(name),
      imagePullSecrets: async () => [],
      event: async () => undefined,
    } as unknown as KubeClient;
  }

  updateSpec(spec: Partial<OCIRepository["spec"]>): void {
    this.object = {
      ...this.object,
      metadata: { ...this.object.metadata, generation: (this.object.metadata.generation ?? 0) + 1 },
      spec: { ...this.object.spec, ...spec },
    };
  }

  get status(): Status {
    return this.object.status ?? {};
  }

  /** Read afresh each time: a reconcile replaces the status. */
  get artifactRevision(): string | undefined {
    return this.status.artifact?.revision;
  }

  condition(type: string) {
    return this.status.conditions?.find((condition) => condition.type === type);
  }
}

describe("OCIRepository verification", { skip: skipUnlessBuilt("zot", "cosign") }, () => {
  let registry: Registry;
  let dir: string;
  let cache: ArtifactCache;
  let pushes = 0;
  let repositories = 0;
  const keyFile = (name: string) => join(dir, `${name}.key`);
  const publicKeyFile = (name: string) => join(dir, `${name}.pub`);
  const publicKey = async (name: string) => readFile(publicKeyFile(name));

  before(async () => {
    registry = await startRegistry({ kind: "zot" });
    dir = await mkdtemp(join(tmpdir(), "ferry-verification-"));
    cache = new ArtifactCache(join(dir, "cache"));
    await ferryOk(["keygen", "--output-key-prefix=trusted"], { cwd: dir, env: PASSWORD });
    await ferryOk(["keygen", "--output-key-prefix=other"], { cwd: dir, env: PASSWORD });
  });
  after(async () => {
    await registry?.stop();
    await rm(dir, { recursive: true, force: true });
  });

  /** Pushes new content to `repository:v1`, signed with `signer`'s key when given; returns the digest. */
  async function push(repository: string, signer?: string): Promise<string> {
    const source = join(dir, `content-${pushes++}`);
    await mkdir(source, { recursive: true });
    await writeFile(join(source, "configmap.yaml"), `apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: demo\ndata:\n  push: "${pushes}"\n`);
    const signing = signer ? ["--sign", `--key=${keyFile(signer)}`] : [];
    const url = `oci://${registry.host}/${repository}:v1`;
    const pushed = await ferryOk(["push", "artifact", url, `--path=${source}`, "--source=s", "--revision=r", "--insecure-registry", ...signing], { env: PASSWORD });
    return pushed.stdout.trim();
  }

  function source(spec: Partial<OCIRepository["spec"]> = {}) {
    const repository = `verified/app${repositories++}`;
    const url = `oci://${registry.host}/${repository}`;
    const api = new ApiStandIn({ url, ref: { tag: "v1" }, interval: "1h", timeout: "60s", provider: "generic", insecure: true, ...spec });
    const reconciler = new OCIRepositoryReconciler({ kube: api.kube, cache, log: () => undefined });
    /** One reconcile of the object as it is now; a failure is what the work queue would retry. */
    const reconcile = async (): Promise<Error | undefined> => {
      try {
        await reconciler.reconcile(structuredClone(api.object));
        return undefined;
      } catch (error) {
        return error as Error;
      }
    };
    return { api, repository, reconcile };
  }

  const VERIFY = { provider: "cosign" as const, secretRef: { name: "cosign-keys" } };

  test("verify added to an artifact fetched unverified: a key that does not match withdraws it until one does", async () => {
    const { api, repository, reconcile } = source();
    const digest = await push(repository, "trusted");
    assert.equal(await reconcile(), undefined);
    assert.equal(api.artifactRevision, `v1@${digest}`);
    assert.equal(api.condition("SourceVerified"), undefined);

    api.secrets.set("cosign-keys", { "cosign.pub": await publicKey("other") });
    api.updateSpec({ verify: VERIFY });
    assert.match(String(await reconcile()), /does not verify with the given key/);
    assert.equal(api.status.artifact, undefined, "a never-verified artifact is still offered to Kustomizations");
    assert.equal(api.status.url, undefined);
    assert.equal(api.condition("SourceVerified")?.status, "False");
    assert.equal(api.condition("ArtifactInStorage"), undefined);
    assert.match(api.condition("Ready")?.message ?? "", /the stored artifact is withdrawn: it is not verified with the current verification inputs/);

    // The next reconcile does not bring it back.
    assert.match(String(await reconcile()), /does not verify with the given key/);
    assert.equal(api.status.artifact, undefined);

    // The matching key in the Secret (no spec change) verifies it, and it is offered again.
    api.secrets.set("cosign-keys", { "cosign.pub": await publicKey("trusted") });
    assert.equal(await reconcile(), undefined);
    assert.equal(api.artifactRevision, `v1@${digest}`);
    const trusted = keyFingerprint(parsePublicKey((await publicKey("trusted")).toString(), "trusted.pub"));
    assert.match(api.condition("SourceVerified")?.message ?? "", new RegExp(`^verified signature of revision v1@${digest} with key ${trusted} under verification inputs sha256:[0-9a-f]{64}$`));
  });

  test("a changed key Secret is noticed by the next reconcile, with no spec change", async () => {
    const { api, repository, reconcile } = source({ verify: VERIFY });
    const digest = await push(repository, "trusted");
    api.secrets.set("cosign-keys", { "cosign.pub": await publicKey("trusted") });
    assert.equal(await reconcile(), undefined);
    assert.equal(api.condition("SourceVerified")?.status, "True");
    const firstRecord = api.condition("ArtifactInStorage")?.message ?? "";
    assert.match(firstRecord, /^stored artifact for revision 'v1@sha256:[0-9a-f]{64}', verified with key SHA256:[0-9a-f]{64} under verification inputs sha256:[0-9a-f]{64}$/);

    // Nothing changed: the stored artifact stands without another verification or status write.
    const writes = api.statusWrites;
    assert.equal(await reconcile(), undefined);
    assert.equal(api.statusWrites, writes);

    api.secrets.set("cosign-keys", { "cosign.pub": await publicKey("other") });
    assert.match(String(await reconcile()), /does not verify with the given key/);
    assert.equal(api.condition("SourceVerified")?.status, "False");
    assert.equal(api.status.artifact, undefined, "the artifact verified with a key no longer trusted is still offered");

    // Another key beside the signer's: verified again, and recorded under the new inputs.
    api.secrets.set("cosign-keys", { "other.pub": await publicKey("other"), "trusted.pub": await publicKey("trusted") });
    assert.equal(await reconcile(), undefined);
    assert.equal(api.artifactRevision, `v1@${digest}`);
    const secondRecord = api.condition("ArtifactInStorage")?.message ?? "";
    assert.match(secondRecord, /under verification inputs sha256:[0-9a-f]{64}$/);
    assert.notEqual(secondRecord, firstRecord);

    // Status names keys by fingerprint only.
    const shown = JSON.stringify(api.status);
    for (const name of ["trusted", "other"]) {
      const body = (await publicKey(name)).toString().split("\n").slice(1, -2).join("");
      assert.ok(!shown.includes(body.slice(0, 40)), `status shows ${name}.pub`);
    }
  });

  test("a newer revision that fails verification keeps the last verified artifact, reconcile after reconcile", async () => {
    const { api, repository, reconcile } = source({ verify: VERIFY });
    api.secrets.set("cosign-keys", { "cosign.pub": await publicKey("trusted") });
    const verified = await push(repository, "trusted");
    assert.equal(await reconcile(), undefined);
    const unsigned = await push(repository);
    for (let attempt = 0; attempt < 2; attempt++) {
      assert.match(String(await reconcile()), new RegExp(`no signature found for .*${unsigned}`));
      assert.equal(api.condition("SourceVerified")?.status, "False");
      assert.equal(api.artifactRevision, `v1@${verified}`, `attempt ${attempt}: the last verified artifact was dropped`);
    }
  });

  test("an attestation made with the trusted key (cosign attest) does not verify an artifact; cosign's signature does", async () => {
    const { api, repository, reconcile } = source({ verify: VERIFY });
    api.secrets.set("cosign-keys", { "cosign.pub": await publicKey("trusted") });
    const digest = await push(repository);
    const predicate = join(dir, "provenance.json");
    await writeFile(predicate, JSON.stringify({ buildDefinition: { buildType: "https://example.test/build" }, runDetails: { builder: { id: "https://example.test/ci" } } }));
    const image = `${registry.host}/${repository}@${digest}`;
    await runTool("cosign", ["attest", `--key=${keyFile("trusted")}`, "--type=slsaprovenance1", `--predicate=${predicate}`, ...COSIGN_OFFLINE, image], { env: PASSWORD });

    assert.match(String(await reconcile()), /bundle is an attestation with predicate type "https:\/\/slsa\.dev\/provenance\/v1", not a signature/);
    assert.equal(api.status.artifact, undefined);
    const cli = await ferry(["verify", "artifact", `oci://${registry.host}/${repository}:v1`, `--key=${publicKeyFile("trusted")}`, "--insecure-registry"]);
    assert.equal(cli.status, 1);
    assert.match(cli.stderr, /attestation with predicate type/);

    await runTool("cosign", ["sign", `--key=${keyFile("trusted")}`, ...COSIGN_OFFLINE, image], { env: PASSWORD });
    assert.equal(await reconcile(), undefined);
    assert.equal(api.artifactRevision, `v1@${digest}`);
    assert.equal(api.condition("SourceVerified")?.status, "True");
  });
});
