// `ferry install --export`: the YAML of everything the controller needs in a cluster (src/install/manifests.ts), for
// users who apply it with their own tools or keep it in a repository. Applying it directly comes next.
import yaml from "js-yaml";
import { DEFAULT_NAMESPACE, installManifests } from "../../src/install/manifests.ts";
import { UsageError } from "../errors.ts";
import { parse } from "../flags.ts";

const INSTALL_OPTIONS = {
  export: { type: "boolean" },
  namespace: { type: "string", short: "n" },
  image: { type: "string" },
  registry: { type: "string" },
  "image-pull-secret": { type: "string" },
  "multi-tenant": { type: "boolean" },
  "network-policy": { type: "boolean" },
  "memory-limit-mib": { type: "string" },
} as const;

export async function installCommand(args: readonly string[]): Promise<void> {
  const { values } = parse(args, INSTALL_OPTIONS);
  if (!values.export) {
    throw new UsageError("ferry install applies nothing yet: run `ferry install --export | kubectl apply --server-side -f -`");
  }
  const memoryLimitMiB = values["memory-limit-mib"] === undefined ? undefined : Number(values["memory-limit-mib"]);
  if (memoryLimitMiB !== undefined && !(Number.isInteger(memoryLimitMiB) && memoryLimitMiB >= 256)) {
    throw new UsageError("--memory-limit-mib must be a whole number of MiB, at least 256");
  }
  const objects = installManifests({
    namespace: values.namespace ?? DEFAULT_NAMESPACE,
    ...(values.image ? { image: values.image } : {}),
    ...(values.registry ? { registry: values.registry.replace(/\/+$/, "") } : {}),
    ...(values["image-pull-secret"] ? { imagePullSecret: values["image-pull-secret"] } : {}),
    multiTenant: values["multi-tenant"] ?? false,
    networkPolicy: values["network-policy"] ?? true,
    ...(memoryLimitMiB ? { memoryLimitMiB } : {}),
  });
  process.stdout.write(objects.map((object) => yaml.dump(object, { lineWidth: -1, noRefs: true })).join("---\n"));
}
