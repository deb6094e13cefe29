// `npm run testbed`: the control plane and both registries in the foreground, for manual use and demos.
// Usage: npm run testbed [-- --json] [-- --auth] [-- --tls]
import { parseArgs } from "node:util";
import { type ControlPlane, startControlPlane } from "../harness/control-plane.ts";
import { type Registry, startRegistry } from "../harness/registry.ts";
import { buildTestbed } from "./build.ts";

const { values } = parseArgs({
  options: {
    json: { type: "boolean", default: false },
    auth: { type: "boolean", default: false },
    tls: { type: "boolean", default: false },
  },
});

function describeRegistry(registry: Registry) {
  return {
    host: registry.host,
    url: registry.url,
    referrersApi: registry.referrersApi,
    ...(registry.caFile ? { caFile: registry.caFile } : {}),
    ...(registry.credentials ? registry.credentials : {}),
  };
}

async function main(): Promise<void> {
  await buildTestbed({ quiet: true });
  const started = Date.now();
  const stoppables: Array<ControlPlane | Registry> = [];
  const stopAll = async () => {
    await Promise.allSettled(stoppables.map((item) => item.stop()));
  };
  process.once("SIGINT", () => void stopAll().then(() => process.exit(0)));
  process.once("SIGTERM", () => void stopAll().then(() => process.exit(0)));

  try {
    const registryOptions = {
      ...(values.auth ? { auth: "htpasswd" as const } : {}),
      tls: values.tls ?? false,
    };
    const [cluster, zot, distribution] = await Promise.all([
      startControlPlane(),
      startRegistry({ kind: "zot", ...registryOptions }),
      startRegistry({ kind: "distribution", ...registryOptions }),
    ]);
    stoppables.push(cluster, zot, distribution);
    const summary = {
      kubeconfig: cluster.kubeconfig,
      server: cluster.server,
      registries: { zot: describeRegistry(zot), distribution: describeRegistry(distribution) },
      logs: cluster.dir,
      readyMs: Date.now() - started,
    };
    if (values.json) {
      process.stdout.write(`${JSON.stringify(summary)}\n`);
    } else {
      const lines = [
        `Ferry test bed ready in ${(summary.readyMs / 1000).toFixed(1)}s. Ctrl-C stops everything.`,
        "",
        `  export KUBECONFIG=${cluster.kubeconfig}`,
        `  kube-apiserver   ${cluster.server} (logs in ${cluster.dir})`,
      ];
      for (const registry of [zot, distribution]) {
        const extras = [
          registry.referrersApi ? "referrers API" : "no referrers API",
          registry.credentials
            ? `user ${registry.credentials.username} password ${registry.credentials.password}`
            : "",
          registry.caFile ? `CA ${registry.caFile}` : "",
        ].filter(Boolean);
        lines.push(`  ${registry.kind.padEnd(16)} ${registry.url} (${extras.join(", ")})`);
      }
      process.stdout.write(`${lines.join("\n")}\n`);
    }
    // Stay in the foreground until a signal arrives.
    setInterval(() => {}, 1 << 30);
  } catch (error) {
    await stopAll();
    throw error;
  }
}

main().catch((error: Error) => {
  process.stderr.write(`testbed failed: ${error.message}\n`);
  process.exit(1);
});
