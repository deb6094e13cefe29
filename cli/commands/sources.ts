// `ferry get|reconcile|suspend|resume|create source(s) oci`, as flux spells them.
import yaml from "js-yaml";
import { SOURCE_GROUP, SOURCE_VERSION } from "../../src/api/source.ts";
import type { KubeClient } from "../../src/kube/client.ts";
import { parseReference } from "../../src/registry/reference.ts";
import { OCI_REPOSITORY, type OCIRepository, REQUESTED_AT_ANNOTATION } from "../../src/reconcilers/ocirepository.ts";
import { UsageError } from "../errors.ts";
import { parse, parseDuration, requireOne } from "../flags.ts";
import { KUBE_OPTIONS, kubeClient, LIST_OPTIONS, listingScope } from "../kube.ts";
import { status } from "../output.ts";
import { listObjects, printStatusList } from "./tables.ts";

function requireOciNoun(positionals: readonly string[]): string[] {
  if (positionals[0] !== "oci") throw new UsageError(`only "oci" sources exist; e.g. ferry get sources oci`);
  return positionals.slice(1);
}

export async function getSourcesCommand(args: readonly string[]): Promise<void> {
  const { values, positionals } = parse(args, LIST_OPTIONS);
  const names = requireOciNoun(positionals);
  const scope = listingScope(values);
  let objects = await listObjects<OCIRepository>(scope.kube, OCI_REPOSITORY, scope.namespace);
  if (names.length > 0) objects = objects.filter((object) => names.includes(object.metadata.name));
  await printStatusList(objects, scope, sourceRevision);
}

export const sourceRevision = (object: OCIRepository) => object.status?.artifact?.revision;

interface Reconcilable {
  readonly type: typeof OCI_REPOSITORY;
  readonly kind: string;
  /** How success is reported: "fetched" for sources, "applied" for Kustomizations, as flux words it. */
  readonly verb: string;
  readonly revision: (object: ReconciledObject) => string | undefined;
}

interface ReconciledObject {
  status?: { lastHandledReconcileAt?: string; conditions?: Array<{ type: string; status: string; reason: string; message: string }> };
}

/** Sets reconcile.ferry.dev/requestedAt and waits until the controller has handled it; reports Ready. */
export async function requestReconcile(kube: KubeClient, target: Reconcilable, namespace: string, name: string, timeoutMs: number) {
  const requestedAt = new Date().toISOString();
  status("►", `annotating ${target.kind} ${name} in ${namespace} namespace`);
  await kube.mergePatch(target.type, namespace, name, { metadata: { annotations: { [REQUESTED_AT_ANNOTATION]: requestedAt } } });
  status("◎", `waiting for ${target.kind} reconciliation`);
  const deadline = Date.now() + timeoutMs;
  while (Date.now() < deadline) {
    const object = await kube.get<ReconciledObject>(target.type, namespace, name);
    if (!object) throw new UsageError(`${target.kind} ${namespace}/${name} not found`);
    if (object.status?.lastHandledReconcileAt === requestedAt) {
      const condition = object.status.conditions?.find((candidate) => candidate.type === "Ready");
      if (condition?.status === "True") {
        status("✔", `${target.verb} revision ${target.revision(object)}`);
        return true;
      }
      status("✗", `${condition?.reason ?? "NotReady"}: ${condition?.message ?? "not ready"}`);
      return false;
    }
    await new Promise((resolve) => setTimeout(resolve, 500));
  }
  status("✗", `timed out waiting for ${target.kind} ${name} to reconcile`);
  return false;
}

export async function setSuspended(kube: KubeClient, target: Reconcilable, namespace: string, name: string, suspend: boolean) {
  const body = suspend
    ? { spec: { suspend: true } }
    : { spec: { suspend: null }, metadata: { annotations: { [REQUESTED_AT_ANNOTATION]: new Date().toISOString() } } };
  await kube.mergePatch(target.type, namespace, name, body);
  status("✔", `${target.kind} ${name} ${suspend ? "suspended" : "resumed"}`);
}

export const OCI_SOURCE: Reconcilable = {
  type: OCI_REPOSITORY,
  kind: "OCIRepository",
  verb: "fetched",
  revision: (object) => sourceRevision(object as OCIRepository),
};

export async function reconcileSourceCommand(args: readonly string[]): Promise<boolean> {
  const { values, positionals } = parse(args, KUBE_OPTIONS);
  const name = requireOne(requireOciNoun(positionals), "OCIRepository name");
  const kube = kubeClient(values);
  const namespace = values.namespace ?? kube.defaultNamespace();
  return requestReconcile(kube, OCI_SOURCE, namespace, name, parseDuration(values.timeout ?? "5m", "--timeout"));
}

async function setSuspend(args: readonly string[], suspend: boolean): Promise<void> {
  const { values, positionals } = parse(args, KUBE_OPTIONS);
  const name = requireOne(requireOciNoun(positionals), "OCIRepository name");
  const kube = kubeClient(values);
  await setSuspended(kube, OCI_SOURCE, values.namespace ?? kube.defaultNamespace(), name, suspend);
}

export const suspendSourceCommand = (args: readonly string[]) => setSuspend(args, true);
export const resumeSourceCommand = (args: readonly string[]) => setSuspend(args, false);

export async function createSourceCommand(args: readonly string[]): Promise<void> {
  const { values, positionals } = parse(args, {
    ...KUBE_OPTIONS,
    url: { type: "string" },
    tag: { type: "string" },
    "tag-semver": { type: "string" },
    digest: { type: "string" },
    interval: { type: "string" },
    "secret-ref": { type: "string" },
    "verify-secret-ref": { type: "string" },
    insecure: { type: "boolean" },
    export: { type: "boolean" },
  });
  const name = requireOne(requireOciNoun(positionals), "OCIRepository name");
  if (!values.url) throw new UsageError("--url is required (oci://host/repository)");
  const url = parseReference(values.url, { requireScheme: true });
  if (url.tag || url.digest) throw new UsageError("--url must not contain a tag or digest; use --tag, --tag-semver or --digest");
  const interval = values.interval ?? "1m";
  parseDuration(interval, "--interval");
  const kube = values.export ? undefined : kubeClient(values);
  const namespace = values.namespace ?? kube?.defaultNamespace() ?? "default";
  const ref = values.digest ? { digest: values.digest } : values["tag-semver"] ? { semver: values["tag-semver"] } : { tag: values.tag ?? "latest" };
  const object = {
    apiVersion: `${SOURCE_GROUP}/${SOURCE_VERSION}`,
    kind: "OCIRepository",
    metadata: { name, namespace },
    spec: {
      interval,
      url: values.url,
      ref,
      ...(values["secret-ref"] ? { secretRef: { name: values["secret-ref"] } } : {}),
      ...(values["verify-secret-ref"] ? { verify: { provider: "cosign", secretRef: { name: values["verify-secret-ref"] } } } : {}),
      ...(values.insecure ? { insecure: true } : {}),
    },
  };
  if (!kube) {
    process.stdout.write(`---\n${yaml.dump(object, { lineWidth: -1, noRefs: true })}`);
    return;
  }
  await kube.create(OCI_REPOSITORY, namespace, object);
  status("✔", `OCIRepository ${name} created in ${namespace} namespace`);
}
