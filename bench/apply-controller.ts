// The controller half of `npm run bench:apply`: N Kustomizations, each applying podinfo into its own namespace with
// wait: true, run by `ferry controller` (the bundle, with its RBAC) against a full control plane whose kwok node makes
// the pods Ready. Reports the time until all are Ready, a requested no-change reconcile of all, and peak RSS.
import { mkdtemp, readFile, rm } from "node:fs/promises";
import { cpus, tmpdir } from "node:os";
import { join } from "node:path";
import { controllerRbac } from "../src/api/rbac.ts";
import { binary } from "../test/harness/binaries.ts";
import { startControlPlane } from "../test/harness/control-plane.ts";
import { FERRY_BUNDLE, ferryOk } from "../test/harness/ferry.ts";
import { startProcess, waitUntil } from "../test/harness/processes.ts";
import { startRegistry } from "../test/harness/registry.ts";

const CRDS = join(import.meta.dirname, "..", "crds");
const PODINFO = join(import.meta.dirname, "..", "..", "shared", "corpora", "podinfo", "kustomize");
const CONTROLLER_CONCURRENCY = process.env.BENCH_CONTROLLER_CONCURRENCY ?? "4";

interface Listed {
  items: Array<{
    metadata: { name: string };
    status?: { conditions?: Array<{ type: string; status: string; reason?: string; message?: string }>; lastHandledReconcileAt?: string };
  }>;
}

const isReady = (item: Listed["items"][number]) => item.status?.conditions?.some((c) => c.type === "Ready" && c.status === "True") === true;

/** VmHWM (peak) and VmRSS (now) summed over the process and its children, in MiB. */
async function memoryMiB(pid: number | undefined): Promise<{ peak: number; now: number }> {
  // `ferry controller` re-runs itself with a heap budget: count the wrapper and the process doing the work.
  const children = (await readFile(`/proc/${pid}/task/${pid}/children`, "utf8").catch(() => "")).trim().split(/\s+/).filter(Boolean);
  let [peak, now] = [0, 0];
  for (const child of [String(pid), ...children]) {
    const status = await readFile(`/proc/${child}/status`, "utf8");
    peak += Number(/VmHWM:\s+(\d+) kB/.exec(status)?.[1] ?? Number.NaN) / 1024;
    now += Number(/VmRSS:\s+(\d+) kB/.exec(status)?.[1] ?? Number.NaN) / 1024;
  }
  return { peak, now };
}

export async function runControllerBench(count: number): Promise<void> {
  const dir = await mkdtemp(join(tmpdir(), "ferry-bench-apply-controller-"));
  const [cluster, registry] = await Promise.all([startControlPlane({ timeoutMs: 180_000 }), startRegistry({ kind: "zot" })]);
  try {
    const url = `oci://${registry.host}/bench/podinfo`;
    await ferryOk(["push", "artifact", `${url}:v1`, `--path=${PODINFO}`, "--source=bench", "--revision=bench", "--insecure-registry"], { bundle: true });
    await cluster.kubectl(["apply", "--server-side", "-f", CRDS]);
    await cluster.kubectl(["wait", "--for=condition=Established", "--timeout=60s", "crd/kustomizations.kustomize.ferry.dev", "crd/ocirepositories.source.ferry.dev"]);
    const names = Array.from({ length: count }, (_, index) => `ns-${String(index).padStart(3, "0")}`);
    const namespaces = ["ferry-system", ...names].map((name) => ({ apiVersion: "v1", kind: "Namespace", metadata: { name } }));
    await cluster.kubectl(["apply", "--server-side", "-f", "-"], { input: JSON.stringify({ apiVersion: "v1", kind: "List", items: namespaces }) });
    const kubeconfig = await cluster.serviceAccountKubeconfig("ferry-system", "ferry-controller");
    await cluster.kubectl(["apply", "--server-side", "-f", "-"], {
      input: JSON.stringify({ apiVersion: "v1", kind: "List", items: controllerRbac("ferry-system", "ferry-controller") }),
    });
    const controller = startProcess("ferry controller", process.execPath, [
      FERRY_BUNDLE, "controller", `--kubeconfig=${kubeconfig}`, `--cache-dir=${join(dir, "cache")}`, "--health-addr=127.0.0.1:0",
      "--leader-elect=false", `--concurrency=${CONTROLLER_CONCURRENCY}`,
    ], { logFile: join(dir, "controller.log"), env: { FERRY_KUSTOMIZE: binary("kustomize") } });
    try {
      const source = { apiVersion: "source.ferry.dev/v1", kind: "OCIRepository", metadata: { namespace: "default", name: "podinfo" } };
      await cluster.kubectl(["apply", "--server-side", "-f", "-"], {
        input: JSON.stringify({ ...source, spec: { url, ref: { tag: "v1" }, interval: "1h", insecure: true } }),
      });
      // The source is ready first, so the clock measures Kustomizations only.
      await waitUntil("OCIRepository Ready", async () => isReady(JSON.parse(await cluster.kubectl(["get", "ocirepository", "podinfo", "-o", "json"]))), {
        timeoutMs: 120_000,
        intervalMs: 500,
        process: controller,
      });

      const list = async (): Promise<Listed> => JSON.parse(await cluster.kubectl(["get", "kustomizations", "-n", "default", "-o", "json"]));
      const kustomizations = names.map((name) => ({
        apiVersion: "kustomize.ferry.dev/v1",
        kind: "Kustomization",
        metadata: { namespace: "default", name },
        spec: {
          sourceRef: { kind: "OCIRepository", name: "podinfo" },
          path: "./",
          interval: "1h",
          prune: true,
          wait: true,
          timeout: "5m",
          targetNamespace: name,
        },
      }));
      let firstReadyMs: number | undefined;
      let last: Listed | undefined;
      const started = Date.now();
      await cluster.kubectl(["apply", "--server-side", "-f", "-"], { input: JSON.stringify({ apiVersion: "v1", kind: "List", items: kustomizations }) });
      const allReady = async () => {
        last = await list();
        const ready = last.items.filter(isReady).length;
        if (ready > 0) firstReadyMs ??= Date.now() - started;
        return ready === count;
      };
      await waitUntil(`${count} Kustomizations Ready`, allReady, { timeoutMs: 20 * 60_000, intervalMs: 1000, process: controller }).catch((error: Error) => {
        const stuck = last?.items.find((item) => !isReady(item));
        throw new Error(`${error.message}\nfirst not Ready: ${JSON.stringify(stuck?.status?.conditions)}`);
      });
      const allReadyMs = Date.now() - started;
      const afterApply = await memoryMiB(controller.pid);

      // Nothing changed: every Kustomization is asked to reconcile again (apply + health check of the same objects).
      const requestedAt = new Date().toISOString();
      const requested = Date.now();
      await cluster.kubectl(["annotate", "--overwrite", "-n", "default", "--all", "kustomizations", `reconcile.ferry.dev/requestedAt=${requestedAt}`]);
      const handled = async () =>
        (await list()).items.every((item) => item.status?.lastHandledReconcileAt === requestedAt && isReady(item));
      await waitUntil("every Kustomization reconciled again", handled, { timeoutMs: 20 * 60_000, intervalMs: 1000, process: controller });
      const reconciledMs = Date.now() - requested;
      const { peak, now } = await memoryMiB(controller.pid);

      const line = (label: string, value: string) => console.log(`  ${label.padEnd(34)}${value}`);
      console.log(`\nferry controller (bundle), --concurrency=${CONTROLLER_CONCURRENCY}; full control plane with kwok, zot; ${cpus().length} cores`);
      console.log(`${count} podinfo Kustomizations (wait: true, own namespace each), one OCIRepository already Ready:`);
      line("first Ready after", `${((firstReadyMs ?? Number.NaN) / 1000).toFixed(1)} s`);
      line(`all ${count} Ready after`, `${(allReadyMs / 1000).toFixed(1)} s`);
      line("requested no-change reconcile", `${(reconciledMs / 1000).toFixed(1)} s until all ${count} handled it`);
      line("controller RSS (wrapper + worker)", `peak ${peak.toFixed(0)} MiB; ${afterApply.now.toFixed(0)} MiB when all Ready; ${now.toFixed(0)} MiB at the end`);
    } finally {
      await controller.stop();
    }
  } finally {
    await Promise.all([registry.stop(), cluster.stop()]);
    await rm(dir, { recursive: true, force: true });
  }
}
