// `ferry install`: applies everything the controller needs in a cluster (src/install/manifests.ts) with server-side
// apply and waits until the controller is Available; `--export` prints the YAML instead, for users who apply it
// with their own tools or keep it in a repository.
import { setTimeout as sleep } from "node:timers/promises";
import yaml from "js-yaml";
import { Applier } from "../../src/apply/apply.ts";
import { computeHealth } from "../../src/health/kstatus.ts";
import { CONTROLLER_NAME, DEFAULT_NAMESPACE, installManifests } from "../../src/install/manifests.ts";
import type { ManifestObject } from "../../src/kustomize/build.ts";
import { type Disposition, FerryError } from "../../src/errors.ts";
import { UsageError } from "../errors.ts";
import { parse, parseDuration } from "../flags.ts";
import { kubeClient } from "../kube.ts";
import { status } from "../output.ts";

const INSTALL_OPTIONS = {
  export: { type: "boolean" },
  namespace: { type: "string", short: "n" },
  image: { type: "string" },
  registry: { type: "string" },
  "image-pull-secret": { type: "string" },
  "multi-tenant": { type: "boolean" },
  "network-policy": { type: "boolean" },
  "memory-limit-mib": { type: "string" },
  kubeconfig: { type: "string" },
  timeout: { type: "string" },
} as const;

export async function installCommand(args: readonly string[]): Promise<void> {
  const { values } = parse(args, INSTALL_OPTIONS);
  const memoryLimitMiB = values["memory-limit-mib"] === undefined ? undefined : Number(values["memory-limit-mib"]);
  if (memoryLimitMiB !== undefined && !(Number.isInteger(memoryLimitMiB) && memoryLimitMiB >= 256)) {
    throw new UsageError("--memory-limit-mib must be a whole number of MiB, at least 256");
  }
  const namespace = values.namespace ?? DEFAULT_NAMESPACE;
  const timeoutMs = parseDuration(values.timeout ?? "5m", "--timeout");
  const objects = installManifests({
    namespace,
    ...(values.image ? { image: values.image } : {}),
    ...(values.registry ? { registry: values.registry.replace(/\/+$/, "") } : {}),
    ...(values["image-pull-secret"] ? { imagePullSecret: values["image-pull-secret"] } : {}),
    multiTenant: values["multi-tenant"] ?? false,
    networkPolicy: values["network-policy"] ?? true,
    ...(memoryLimitMiB ? { memoryLimitMiB } : {}),
  });
  if (values.export) {
    process.stdout.write(objects.map((object) => yaml.dump(object, { lineWidth: -1, noRefs: true })).join("---\n"));
    return;
  }
  const applier = new Applier(kubeClient(values));
  status("►", `installing components in ${namespace} namespace`);
  const { changes } = await applier.apply(objects as ManifestObject[], { timeoutMs });
  for (const change of changes) status("✔", `${change.subject} ${change.action}`);
  status("◎", "verifying installation");
  await waitUntilAvailable(applier, namespace, timeoutMs);
  status("✔", "install finished");
}

/** The controller was installed but did not become Available (or failed) in time. */
class ControllerNotAvailableError extends FerryError {
  readonly code = "CONTROLLER_NOT_AVAILABLE";
  readonly disposition: Disposition = "retry";
}

/** Polls the controller's Deployment until kstatus calls it Current; a Failed one or the timeout is an error. */
async function waitUntilAvailable(applier: Applier, namespace: string, timeoutMs: number): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  const ref = { apiVersion: "apps/v1", kind: "Deployment", namespace, name: CONTROLLER_NAME };
  for (;;) {
    const health = computeHealth(await applier.read(ref));
    if (health.status === "Current") return;
    if (health.status === "Failed" || Date.now() > deadline) {
      throw new ControllerNotAvailableError(`the controller Deployment ${namespace}/${CONTROLLER_NAME} is not Available: ${health.message}`);
    }
    await sleep(1_000);
  }
}
