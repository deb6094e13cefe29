// An OCIRepository stored before the CRD learnt a rule (an upgrade) passes the apiserver but not the controller's
// schema: it stalls with InvalidSpec, once, instead of failing and retrying for ever; fixing the spec resumes it, and
// deleting it is never blocked.
import assert from "node:assert/strict";
import { mkdtemp, readFile, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, before, describe, test } from "node:test";
import { CRDS as GENERATED_CRDS } from "../../src/api/crd.ts";
import { skipUnlessBuilt } from "../harness/binaries.ts";
import { type ControlPlane, startControlPlane } from "../harness/control-plane.ts";
import { FERRY_CLI } from "../harness/ferry.ts";
import { type ManagedProcess, startProcess, waitUntil } from "../harness/processes.ts";

const CRDS = join(import.meta.dirname, "..", "..", "crds");
const WEAK_DIGEST = `md5:${"0".repeat(32)}`;
/** Nothing listens there: a valid spec fails to fetch, which is not a stall. */
const UNREACHABLE = "oci://127.0.0.1:1/apps/demo";

interface Condition {
  type: string;
  status: string;
  reason: string;
  message: string;
}

interface Observed {
  metadata: { generation: number; finalizers?: string[] };
  status?: { conditions?: Condition[]; observedGeneration?: number };
}

/** The OCIRepository CRD as an earlier Ferry might have shipped it: a spec it does not check at all. */
function uncheckedOciRepositoryCrd() {
  const crd = structuredClone(GENERATED_CRDS["source.ferry.dev_ocirepositories.yaml"]);
  for (const version of crd.spec.versions) {
    const properties = version.schema.openAPIV3Schema.properties as Record<string, unknown>;
    properties.spec = { type: "object", "x-kubernetes-preserve-unknown-fields": true };
  }
  return crd;
}

describe("an OCIRepository whose spec the controller refuses", { skip: skipUnlessBuilt("etcd", "kube-apiserver", "kubectl") }, () => {
  let cluster: ControlPlane;
  let controller: ManagedProcess;
  let dir: string;

  const repository = (name: string, spec: Record<string, unknown>, finalizers: string[] = []) =>
    cluster.kubectl(["create", "-f", "-"], {
      input: JSON.stringify({ apiVersion: "source.ferry.dev/v1", kind: "OCIRepository", metadata: { namespace: "default", name, finalizers }, spec }),
    });

  const get = async (name: string): Promise<Observed> => JSON.parse(await cluster.kubectl(["get", "ocirepository", name, "-o", "json"]));
  const condition = (object: Observed, type: string) => object.status?.conditions?.find((candidate) => candidate.type === type);

  async function waitFor(name: string, description: string, check: (object: Observed) => boolean): Promise<Observed> {
    let last: Observed | undefined;
    await waitUntil(`${name}: ${description}`, async () => check((last = await get(name))), { timeoutMs: 20_000, intervalMs: 200, process: controller })
      .catch((error: Error) => {
        throw new Error(`${error.message}\nlast status: ${JSON.stringify(last?.status, null, 2)}`);
      });
    return last as Observed;
  }

  /** The controller's log lines about one object. */
  async function logOf(name: string): Promise<Array<{ msg: string }>> {
    const lines = (await readFile(controller.logFile, "utf8")).split("\n").filter((line) => line.startsWith("{"));
    return lines.map((line) => JSON.parse(line) as { msg: string; object?: string }).filter((entry) => entry.object === `default/${name}`);
  }

  before(async () => {
    dir = await mkdtemp(join(tmpdir(), "ferry-e2e-invalid-spec-"));
    cluster = await startControlPlane({ apiserverOnly: true });
    await cluster.kubectl(["apply", "--server-side", "-f", "-"], { input: JSON.stringify(uncheckedOciRepositoryCrd()) });
    await cluster.kubectl(["wait", "--for=condition=Established", "crd/ocirepositories.source.ferry.dev", "--timeout=30s"]);
    await repository("weak-digest", { url: UNREACHABLE, interval: "1m", ref: { digest: WEAK_DIGEST } });
    await repository("deleted-while-invalid", { url: UNREACHABLE, interval: "1m", ref: { digest: WEAK_DIGEST } }, ["finalizers.ferry.dev"]);
    // The upgrade: today's CRDs, which would refuse these objects, over the ones that stored them.
    await cluster.kubectl(["apply", "--server-side", "--force-conflicts", "-f", CRDS]);
    await cluster.kubectl(["wait", "--for=condition=Established", "crd/ocirepositories.source.ferry.dev", "crd/kustomizations.kustomize.ferry.dev", "--timeout=30s"]);
    controller = startProcess("ferry controller", process.execPath, [
      FERRY_CLI, "controller", `--kubeconfig=${cluster.kubeconfig}`, `--cache-dir=${join(dir, "cache")}`,
      "--health-addr=127.0.0.1:0", "--leader-elect=false",
    ], { logFile: join(dir, "controller.log") });
  });
  after(async () => {
    await controller?.stop();
    await cluster?.stop();
    await rm(dir, { recursive: true, force: true });
  });

  test("the apiserver now refuses such a spec, so only stored objects can carry one", async () => {
    await assert.rejects(repository("new-weak-digest", { url: UNREACHABLE, interval: "1m", ref: { digest: WEAK_DIGEST } }), /spec\.ref\.digest.*should match/);
  });

  test("it stalls with InvalidSpec at its generation, is reconciled once and gets no finalizer", async () => {
    const stalled = await waitFor("weak-digest", "Stalled with InvalidSpec", (object) => condition(object, "Stalled")?.reason === "InvalidSpec");
    assert.equal(condition(stalled, "Stalled")?.status, "True");
    assert.deepEqual([condition(stalled, "Ready")?.status, condition(stalled, "Ready")?.reason], ["False", "InvalidSpec"]);
    assert.match(condition(stalled, "Ready")?.message ?? "", /^spec\.ref\.digest: Invalid string: must match pattern/);
    assert.equal(stalled.status?.observedGeneration, stalled.metadata.generation);
    assert.deepEqual(stalled.metadata.finalizers ?? [], []);
    // A failed reconcile would be retried after 0.75 s, 1.5 s, 3 s...: three seconds show whether it is.
    await new Promise((resolve) => setTimeout(resolve, 3000));
    const entries = await logOf("weak-digest");
    assert.deepEqual(entries.map((entry) => entry.msg), ["reconciled"], "the stalled object was reconciled again");
  });

  test("fixing the spec resumes it: the stall clears and the next failure is an ordinary one", async () => {
    await cluster.kubectl(["patch", "ocirepository", "weak-digest", "--type=merge", "-p", JSON.stringify({ spec: { ref: { digest: `sha256:${"0".repeat(64)}` } } })]);
    const resumed = await waitFor("weak-digest", "a fetch failure at the new generation", (object) =>
      object.status?.observedGeneration === object.metadata.generation && condition(object, "Ready")?.reason !== "InvalidSpec");
    assert.equal(condition(resumed, "Ready")?.status, "False");
    assert.equal(condition(resumed, "Stalled"), undefined, "the InvalidSpec stall outlived the fix");
  });

  test("deleting it is never blocked by the spec the controller refuses", async () => {
    await cluster.kubectl(["delete", "ocirepository", "deleted-while-invalid", "--wait=true", "--timeout=20s"]);
    await assert.rejects(get("deleted-while-invalid"), /NotFound/);
  });
});
