// `ferry get kustomizations` and `ferry tree kustomization NAME`.
import { KubeClient } from "../../src/kube/client.ts";
import { parseEntry } from "../../src/inventory/inventory.ts";
import { KUSTOMIZATION, type Kustomization } from "../../src/reconcilers/kustomization.ts";
import { UsageError } from "../errors.ts";
import { parse, parseDuration, requireOne } from "../flags.ts";
import { parseOutputFormat, printStructured, printTable } from "../output.ts";
import { OCI_SOURCE, requestReconcile, setSuspended } from "./sources.ts";

const KUBE_OPTIONS = { kubeconfig: { type: "string" }, namespace: { type: "string", short: "n" }, timeout: { type: "string" } } as const;

const KUSTOMIZATION_TARGET = {
  type: KUSTOMIZATION,
  kind: "Kustomization",
  verb: "applied",
  revision: (object: unknown) => (object as Kustomization).status?.lastAppliedRevision,
};

export async function reconcileKustomizationCommand(args: readonly string[]): Promise<boolean> {
  const { values, positionals } = parse(args, { ...KUBE_OPTIONS, "with-source": { type: "boolean" } });
  const name = requireOne(positionals, "Kustomization name");
  const kube = KubeClient.fromFile(values.kubeconfig ?? process.env.KUBECONFIG);
  const namespace = values.namespace ?? kube.defaultNamespace();
  const timeoutMs = parseDuration(values.timeout ?? "5m", "--timeout");
  if (values["with-source"]) {
    const object = await kube.get<Kustomization>(KUSTOMIZATION, namespace, name);
    if (!object) throw new UsageError(`Kustomization ${namespace}/${name} not found`);
    const sourceNamespace = object.spec.sourceRef.namespace ?? namespace;
    if (!(await requestReconcile(kube, OCI_SOURCE, sourceNamespace, object.spec.sourceRef.name, timeoutMs))) return false;
  }
  return requestReconcile(kube, KUSTOMIZATION_TARGET, namespace, name, timeoutMs);
}

async function setKustomizationSuspended(args: readonly string[], suspend: boolean): Promise<void> {
  const { values, positionals } = parse(args, KUBE_OPTIONS);
  const name = requireOne(positionals, "Kustomization name");
  const kube = KubeClient.fromFile(values.kubeconfig ?? process.env.KUBECONFIG);
  await setSuspended(kube, KUSTOMIZATION_TARGET, values.namespace ?? kube.defaultNamespace(), name, suspend);
}

export const suspendKustomizationCommand = (args: readonly string[]) => setKustomizationSuspended(args, true);
export const resumeKustomizationCommand = (args: readonly string[]) => setKustomizationSuspended(args, false);

export async function getKustomizationsCommand(args: readonly string[]): Promise<void> {
  const { values, positionals } = parse(args, { ...KUBE_OPTIONS, "all-namespaces": { type: "boolean", short: "A" }, output: { type: "string", short: "o" } });
  const format = parseOutputFormat(values.output);
  const kube = KubeClient.fromFile(values.kubeconfig ?? process.env.KUBECONFIG);
  const namespace = values.namespace ?? kube.defaultNamespace();
  let objects = values["all-namespaces"]
    ? (await kube.list<Kustomization>(KUSTOMIZATION)).items
    : await kube.listNamespaced<Kustomization>(KUSTOMIZATION, namespace);
  if (positionals.length > 0) objects = objects.filter((object) => positionals.includes(object.metadata.name));
  if (format !== "text") {
    printStructured(format, objects);
    return;
  }
  printTable(
    [...(values["all-namespaces"] ? ["NAMESPACE"] : []), "NAME", "REVISION", "SUSPENDED", "READY", "MESSAGE"],
    objects.map((object) => {
      const ready = object.status?.conditions?.find((condition) => condition.type === "Ready");
      return [
        ...(values["all-namespaces"] ? [object.metadata.namespace] : []),
        object.metadata.name,
        object.status?.lastAppliedRevision ?? "",
        String(object.spec.suspend ?? false),
        ready?.status ?? "Unknown",
        ready?.message ?? "",
      ];
    }),
  );
}

export async function treeKustomizationCommand(args: readonly string[]): Promise<void> {
  const { values, positionals } = parse(args, KUBE_OPTIONS);
  const name = requireOne(positionals, "Kustomization name");
  const kube = KubeClient.fromFile(values.kubeconfig ?? process.env.KUBECONFIG);
  const namespace = values.namespace ?? kube.defaultNamespace();
  const object = await kube.get<Kustomization>(KUSTOMIZATION, namespace, name);
  if (!object) throw new UsageError(`Kustomization ${namespace}/${name} not found`);
  const entries = (object.status?.inventory?.entries ?? []).map(parseEntry);
  const lines = [`Kustomization/${namespace}/${name}`];
  entries.forEach((entry, index) => {
    const branch = index === entries.length - 1 ? "└──" : "├──";
    lines.push(`${branch} ${entry.kind}/${entry.namespace ? `${entry.namespace}/` : ""}${entry.name}`);
  });
  process.stdout.write(`${lines.join("\n")}\n`);
}
