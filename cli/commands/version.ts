// `ferry version`: the CLI's version and, unless --client, the controller's and the CRDs' found in the cluster, as
// `kubectl version` prints client and server. An unreachable cluster still prints the client's version (exit 1).
import { DEFAULT_NAMESPACE } from "../../src/install/manifests.ts";
import type { InstalledVersions } from "../../src/install/check.ts";
import { FERRY_VERSION } from "../../src/version.ts";
import { parse } from "../flags.ts";
import { KUBE_OPTIONS, kubeClient } from "../kube.ts";
import { type OutputFormat, parseOutputFormat, printStructured } from "../output.ts";
import { readInstall, serverVersion } from "./check.ts";

const VERSION_OPTIONS = {
  ...KUBE_OPTIONS,
  client: { type: "boolean" },
  output: { type: "string", short: "o" },
} as const;

interface VersionReport {
  readonly client: { readonly version: string };
  readonly server?: { readonly kubernetes: string; readonly namespace: string } & Omit<InstalledVersions, "cli">;
}

function printText(report: VersionReport): void {
  const lines = [`ferry: ${report.client.version}`];
  const server = report.server;
  if (server) {
    lines.push(`kubernetes: ${server.kubernetes}`);
    const controller = server.controller;
    lines.push(`controller: ${controller ? `${controller.version ?? "unknown"} (image ${controller.image ?? "unknown"}) in ${server.namespace}` : `not found in ${server.namespace}`}`);
    for (const [name, version] of Object.entries(server.crds)) lines.push(`${name}: ${version ?? "not installed"}`);
  }
  process.stdout.write(`${lines.join("\n")}\n`);
}

async function print(format: OutputFormat, report: VersionReport): Promise<void> {
  if (format === "text") printText(report);
  else await printStructured(format, report);
}

export async function versionCommand(args: readonly string[]): Promise<boolean> {
  const { values } = parse(args, VERSION_OPTIONS);
  const format = parseOutputFormat(values.output);
  const client = { version: `v${FERRY_VERSION}` };
  if (values.client) {
    await print(format, { client });
    return true;
  }
  const namespace = values.namespace ?? DEFAULT_NAMESPACE;
  let server: VersionReport["server"];
  try {
    const kube = kubeClient(values);
    const kubernetes = await serverVersion(kube);
    const { controller, crds } = (await readInstall(kube, namespace)).versions;
    server = { kubernetes, namespace, crds, ...(controller ? { controller } : {}) };
  } catch (error) {
    // As kubectl does: the client's part is printed, the server's error follows on stderr.
    await print(format, { client });
    throw error;
  }
  await print(format, { client, server });
  if (!server.controller) process.stderr.write(`✗ the Ferry controller is not installed in namespace ${namespace}\n`);
  return server.controller !== undefined;
}
