// The status table `ferry get sources|kustomizations|all` print, in flux's columns.
import type { KubeClient, ResourceType } from "../../src/kube/client.ts";
import type { ListingScope } from "../kube.ts";
import { printStructured, printTable } from "../output.ts";

interface Listed {
  metadata: { name: string; namespace: string };
  spec: { suspend?: boolean };
  status?: { conditions?: Array<{ type: string; status: string; message: string }> };
}

export async function listObjects<T>(kube: KubeClient, type: ResourceType, namespace: string | undefined): Promise<T[]> {
  return namespace === undefined ? (await kube.list<T>(type)).items : kube.listNamespaced<T>(type, namespace);
}

export function statusHeaders(allNamespaces: boolean): string[] {
  return [...(allNamespaces ? ["NAMESPACE"] : []), "NAME", "REVISION", "SUSPENDED", "READY", "MESSAGE"];
}

/** One row per object; `prefix` is `ocirepository/` etc. when several kinds share a listing, as `flux get all` does. */
export function statusRows<T extends Listed>(
  objects: readonly T[],
  options: { allNamespaces: boolean; revision: (object: T) => string | undefined; prefix?: string },
): string[][] {
  return objects.map((object) => {
    const ready = object.status?.conditions?.find((condition) => condition.type === "Ready");
    return [
      ...(options.allNamespaces ? [object.metadata.namespace] : []),
      `${options.prefix ?? ""}${object.metadata.name}`,
      options.revision(object) ?? "",
      String(object.spec.suspend ?? false),
      ready?.status ?? "Unknown",
      ready?.message ?? "",
    ];
  });
}

/** `ferry get <kind>`: the objects as JSON/YAML, or flux's status table. */
export async function printStatusList<T extends Listed>(
  objects: readonly T[],
  scope: Pick<ListingScope, "format" | "allNamespaces">,
  revision: (object: T) => string | undefined,
): Promise<void> {
  if (scope.format !== "text") {
    await printStructured(scope.format, objects);
    return;
  }
  printTable(statusHeaders(scope.allNamespaces), statusRows(objects, { allNamespaces: scope.allNamespaces, revision }));
}
