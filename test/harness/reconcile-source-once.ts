// Runs the controller's OCIRepository reconciler once, in a process of its own, without a cluster: a stand-in for
// the Kubernetes API keeps the status the reconciler writes, and the last one is printed as JSON. Tests use it to
// drive the controller's fetch path against a fault proxy and measure that process's memory.
//   node reconcile-source-once.ts <oci://url> <tag> <cache dir> [max artifact bytes]
import { ArtifactCache } from "../../src/artifact/cache.ts";
import type { KubeClient } from "../../src/kube/client.ts";
import { FINALIZER, type OCIRepository, OCIRepositoryReconciler } from "../../src/reconcilers/ocirepository.ts";

const [url = "", tag = "", cacheDir = "", maxArtifactBytes] = process.argv.slice(2);
let lastStatus: unknown;
const kube = {
  setFinalizers: async () => undefined,
  patchStatus: async (_type: unknown, _namespace: string, _name: string, status: unknown) => {
    lastStatus = status;
  },
  secretData: async () => undefined,
  imagePullSecrets: async () => [],
  event: async () => undefined,
} as unknown as KubeClient;

const reconciler = new OCIRepositoryReconciler({
  kube,
  cache: new ArtifactCache(cacheDir),
  log: () => undefined,
  ...(maxArtifactBytes ? { maxArtifactBytes: Number(maxArtifactBytes) } : {}),
});
const object: OCIRepository = {
  apiVersion: "source.ferry.dev/v1",
  kind: "OCIRepository",
  metadata: { namespace: "default", name: "bounds", generation: 1, finalizers: [FINALIZER] },
  spec: { url, ref: { tag }, interval: "1h", timeout: "60s", insecure: true },
} as OCIRepository;
try {
  await reconciler.reconcile(object);
} catch {
  // A failed fetch is rethrown for the work queue's backoff; the status written before says why.
}
process.stdout.write(`${JSON.stringify(lastStatus)}\n`);
