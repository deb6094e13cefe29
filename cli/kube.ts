// The Kubernetes side of the CLI's flags: --kubeconfig, -n, --timeout, and for `get`, -A and -o. Kept apart from
// cli/flags.ts so that registry commands never load the Kubernetes client.
import { KubeClient } from "../src/kube/client.ts";
import { type OutputFormat, parseOutputFormat } from "./output.ts";

export const KUBE_OPTIONS = {
  kubeconfig: { type: "string" },
  namespace: { type: "string", short: "n" },
  timeout: { type: "string" },
} as const;

export const LIST_OPTIONS = {
  ...KUBE_OPTIONS,
  "all-namespaces": { type: "boolean", short: "A" },
  output: { type: "string", short: "o" },
} as const;

/** --kubeconfig, else KUBECONFIG (one file or a list), else ~/.kube/config, as kubectl reads them. */
export function kubeClient(values: { kubeconfig?: string }): KubeClient {
  return KubeClient.fromFile(values.kubeconfig);
}

export interface ListingScope {
  readonly kube: KubeClient;
  readonly format: OutputFormat;
  readonly allNamespaces: boolean;
  /** undefined with -A: every namespace. */
  readonly namespace: string | undefined;
}

/** What every `ferry get …` starts from. */
export function listingScope(values: { kubeconfig?: string; namespace?: string; "all-namespaces"?: boolean; output?: string }): ListingScope {
  const format = parseOutputFormat(values.output);
  const kube = kubeClient(values);
  const allNamespaces = values["all-namespaces"] ?? false;
  return { kube, format, allNamespaces, namespace: allNamespaces ? undefined : (values.namespace ?? kube.defaultNamespace()) };
}
