// `ferry controller`: runs the in-cluster reconcilers (OCIRepository so far) until SIGTERM.
import { resolve } from "node:path";
import { ArtifactCache } from "../../src/artifact/cache.ts";
import { jsonLog, Manager } from "../../src/controller/manager.ts";
import { KubeClient } from "../../src/kube/client.ts";
import { UsageError } from "../errors.ts";
import { parse } from "../flags.ts";

export async function controllerCommand(args: readonly string[]): Promise<void> {
  const { values } = parse(args, {
    kubeconfig: { type: "string" },
    "cache-dir": { type: "string" },
    concurrency: { type: "string" },
  });
  const concurrency = Number(values.concurrency ?? "4");
  if (!Number.isInteger(concurrency) || concurrency < 1) throw new UsageError("--concurrency must be a positive integer");
  const kube = KubeClient.fromFile(values.kubeconfig ?? process.env.KUBECONFIG);
  const cache = new ArtifactCache(resolve(values["cache-dir"] ?? "/var/cache/ferry"));
  const manager = new Manager({ kube, cache, concurrency });
  await manager.start();
  await new Promise<void>((done) => {
    const shutdown = (signal: string) => {
      jsonLog("shutting down", { signal });
      void manager.stop().then(done);
    };
    process.once("SIGTERM", () => shutdown("SIGTERM"));
    process.once("SIGINT", () => shutdown("SIGINT"));
  });
}
