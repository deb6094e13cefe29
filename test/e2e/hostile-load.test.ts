// The controller under attack by one tenant: while hostile Kustomizations and sources reconcile (alias bombs,
// backtracking globs and regexps, tens of MiB of kustomize output), /healthz keeps answering within a second, the
// leader keeps renewing its Lease, and each hostile object fails with an error naming what is wrong.
import assert from "node:assert/strict";
import { mkdir, mkdtemp, writeFile } from "node:fs/promises";
import { join } from "node:path";
import { after, before, describe, test } from "node:test";
import { binary, skipUnlessBuilt } from "../harness/binaries.ts";
import { ControllerBed, type Replica } from "../harness/controller-bed.ts";
import { ferryOk } from "../harness/ferry.ts";
import { probe } from "../harness/http.ts";
import { waitUntil } from "../harness/processes.ts";

interface Observed {
  status?: { conditions?: Array<{ type: string; status: string; message: string }> };
}

/** Nine levels of ten aliases: a few hundred bytes that expand to 10^9 nodes. */
function aliasBomb(indent: string): string {
  const lines = ["a0: &a0 [lol]"];
  for (let level = 1; level <= 9; level++) lines.push(`a${level}: &a${level} [${Array.from({ length: 10 }, () => `*a${level - 1}`).join(", ")}]`);
  return lines.map((line) => `${indent}${line}`).join("\n");
}

/** About `megabytes` MiB of ConfigMaps, each under the 1 MiB object limit. */
function bulkyManifests(megabytes: number): string {
  const value = "x".repeat(900 * 1024);
  return Array.from({ length: Math.ceil((megabytes * 1024) / 900) }, (_, index) =>
    `apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: bulk-${index}\ndata:\n  v: ${value}\n`).join("---\n");
}

describe("a controller under attack", { skip: skipUnlessBuilt("etcd", "kube-apiserver", "kubectl", "zot", "kustomize") }, () => {
  let bed: ControllerBed;
  let controller: Replica;

  const push = async (name: string, files: Record<string, string>, tag = "v1") => {
    const dir = await mkdtemp(join(bed.dir, `${name}-`));
    for (const [file, content] of Object.entries(files)) {
      await mkdir(join(dir, file, ".."), { recursive: true });
      await writeFile(join(dir, file), content);
    }
    await ferryOk(["push", "artifact", `oci://${bed.registry.host}/attack/${name}:${tag}`, `--path=${dir}`, "--source=e2e", "--revision=r", "--insecure-registry"]);
  };
  const deliver = async (name: string, kustomization: Record<string, unknown> = {}, ref: Record<string, unknown> = { tag: "v1" }) => {
    await bed.cluster.kubectl(["apply", "--server-side", "-f", "-"], {
      input: JSON.stringify({
        apiVersion: "v1",
        kind: "List",
        items: [
          { apiVersion: "source.ferry.dev/v1", kind: "OCIRepository", metadata: { namespace: "default", name }, spec: { url: `oci://${bed.registry.host}/attack/${name}`, ref, interval: "1h", insecure: true } },
          { apiVersion: "kustomize.ferry.dev/v1", kind: "Kustomization", metadata: { namespace: "default", name }, spec: { sourceRef: { kind: "OCIRepository", name }, path: "./", interval: "1h", prune: false, ...kustomization } },
        ],
      }),
    });
  };
  const readyMessage = async (kind: string, name: string) => {
    const object = JSON.parse(await bed.cluster.kubectl(["get", kind, name, "-n", "default", "-o", "json"])) as Observed;
    const ready = object.status?.conditions?.find((condition) => condition.type === "Ready");
    return ready?.status === "False" ? ready.message : undefined;
  };

  before(async () => {
    bed = await ControllerBed.start();
    controller = await bed.startController("a", ["--leader-elect=true", "--leader-election-namespace=ferry-system", "--concurrency=4"], {
      env: { FERRY_KUSTOMIZE: binary("kustomize") },
    });
  });
  after(async () => {
    await bed?.stop();
  });

  test("hostile objects fail by name while /healthz answers within 1 s and the Lease is renewed", async (t) => {
    await push("yaml-bomb", { "kustomization.yaml": `resources: []\nbomb:\n${aliasBomb("  ")}\n` });
    await push("manifest-bomb", { "cm.yaml": `apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: bomb\ndata:\n${aliasBomb("  ")}\n` });
    await push("glob", { "cm.yaml": "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: glob\ndata:\n  v: \"${v##*a*a*a*a*a*a*b}\"\n" });
    await push("bulky", { "cm.yaml": bulkyManifests(40) });
    // The filter fails on the second tag only after trying every way to split its a's: exponential with backtracking.
    for (const tag of ["1.0.0", `1.0.1-${"a".repeat(40)}-b`]) await push("regexp", { "cm.yaml": "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: r\n" }, tag);

    const renewals = new Set<string>();
    const latencies: number[] = [];
    let unhealthy = 0;
    let watching = true;
    const watch = (async () => {
      while (watching) {
        const started = performance.now();
        const answer = await probe(`${controller.healthUrl}/healthz`);
        latencies.push(performance.now() - started);
        if (answer.status !== 200) unhealthy++;
        const lease = JSON.parse(await bed.cluster.kubectl(["get", "lease", "ferry-controller-leader", "-n", "ferry-system", "-o", "json"])) as { spec: { renewTime?: string } };
        if (lease.spec.renewTime) renewals.add(lease.spec.renewTime);
        await new Promise((resolve) => setTimeout(resolve, 200));
      }
    })();

    try {
      await deliver("yaml-bomb");
      await deliver("manifest-bomb");
      await deliver("glob", { postBuild: { substitute: { v: "a".repeat(20_000) } } });
      await deliver("bulky");
      await deliver("regexp", {}, { semver: ">=1.0.0-0", semverFilter: "^1\\.0\\.\\d+(-(a+)+)?$" });

      const expectations: Array<[string, string, RegExp]> = [
        ["kustomization", "yaml-bomb", /expands YAML aliases/],
        ["kustomization", "manifest-bomb", /expands YAML aliases/],
        ["kustomization", "bulky", /./],
      ];
      for (const [kind, name, pattern] of expectations) {
        await waitUntil(`${kind} ${name} fails by name`, async () => pattern.test((await readyMessage(kind, name)) ?? ""), { timeoutMs: 120_000, intervalMs: 500, process: controller.process });
      }
      // The glob finishes (it is linear now) with nothing to strip; the regexp source settles on the one tag that matches.
      await waitUntil("the glob Kustomization gets past its substitution", async () => {
        const message = await readyMessage("kustomization", "glob");
        return message !== undefined && !/substitut/i.test(message);
      }, { timeoutMs: 60_000, intervalMs: 500 });
      await waitUntil("the semverFilter source resolves", async () => {
        const source = JSON.parse(await bed.cluster.kubectl(["get", "ocirepository", "regexp", "-n", "default", "-o", "json"])) as { status?: { artifact?: { revision?: string } } };
        return source.status?.artifact?.revision?.startsWith("1.0.0@") === true;
      }, { timeoutMs: 60_000, intervalMs: 500 });
    } finally {
      watching = false;
      await watch;
    }

    const worst = Math.max(...latencies);
    t.diagnostic(`/healthz: ${latencies.length} probes, worst ${worst.toFixed(0)} ms; Lease renewTime values seen: ${renewals.size}`);
    assert.equal(unhealthy, 0, "/healthz failed while hostile objects reconciled");
    assert.ok(worst < 1000, `/healthz took ${worst.toFixed(0)} ms`);
    assert.ok(renewals.size >= 3, `the Lease was renewed ${renewals.size} times`);
  });
});
