// What `ferry bootstrap` puts into the registry and the cluster, as data: the artifact's files (Ferry's own install
// plus the sync objects that make the controller reconcile that artifact, and the user's cluster config), and the
// decision whether the cluster may be taken over. Pure; cli/commands/bootstrap.ts does the I/O.
import yaml from "js-yaml";
import semver from "semver";
import { KUSTOMIZE_GROUP } from "../api/kustomize.ts";
import { SOURCE_GROUP } from "../api/source.ts";
import { FORCE_KEY, PRUNE_KEY } from "../apply/policy.ts";
import { FERRY_VERSION } from "../version.ts";
import { DEFAULT_NAMESPACE, type InstallOptions, installManifests, PART_OF_LABEL } from "./manifests.ts";

/** The OCIRepository and Kustomization that deliver Ferry itself share the namespace's name, as flux-system does. */
export const BOOTSTRAP_NAME = DEFAULT_NAMESPACE;
/** The Kustomization delivering the user's --path, applied after Ferry's own. */
export const CLUSTER_CONFIG_NAME = "cluster-config";
/** Where in the artifact Ferry's manifests and the user's --path go. */
export const COMPONENTS_DIR = "ferry-system";
export const CLUSTER_DIR = "cluster";
export const REGISTRY_SECRET = "ferry-registry";
export const REGISTRY_TLS_SECRET = "ferry-registry-tls";
export const VERIFY_KEY_SECRET = "ferry-verify-key";

export interface Verification {
  /** A cosign public key (PEM) the artifact is signed with. */
  readonly publicKeyPem?: string;
  /** Keyless: the certificate identity and issuer (regular expressions) the signature must match. */
  readonly identity?: { readonly subject: string; readonly issuer: string };
}

export interface BootstrapOptions {
  /** oci://host/repository, without a tag. */
  readonly url: string;
  readonly tag: string;
  readonly install: InstallOptions;
  readonly insecure: boolean;
  readonly interval: string;
  /** A dockerconfigjson Secret REGISTRY_SECRET holds the registry credentials the controller pulls with. */
  readonly registryCredentials: boolean;
  /** A Secret REGISTRY_TLS_SECRET holds the registry's CA (ca.crt) and/or a client certificate (tls.crt, tls.key). */
  readonly registryTls: boolean;
  readonly verification?: Verification;
  /** The user's cluster config (--path) is in the artifact under CLUSTER_DIR. */
  readonly clusterConfig: boolean;
}

const dump = (objects: readonly object[]) => objects.map((object) => yaml.dump(object, { lineWidth: -1, noRefs: true })).join("---\n");

/**
 * What the controller's own apply of each kind needs: prune disabled on the namespace and the CRDs (deleting the
 * ferry-system Kustomization, or a version that renames one, must never delete every OCIRepository and
 * Kustomization in the cluster with them); force on the bindings, whose roleRef is immutable, so that a version
 * binding another role recreates them instead of stalling its own upgrade.
 */
const SELF_MANAGED_POLICY: Readonly<Record<string, Record<string, string>>> = {
  Namespace: { [PRUNE_KEY]: "disabled" },
  CustomResourceDefinition: { [PRUNE_KEY]: "disabled" },
  RoleBinding: { [FORCE_KEY]: "enabled" },
  ClusterRoleBinding: { [FORCE_KEY]: "enabled" },
};

export function selfManagedComponents(install: InstallOptions): object[] {
  return installManifests(install).map((object) => {
    const manifest = object as { kind: string; metadata: { annotations?: Record<string, string> } };
    const policy = SELF_MANAGED_POLICY[manifest.kind];
    if (!policy) return object;
    return { ...manifest, metadata: { ...manifest.metadata, annotations: { ...manifest.metadata.annotations, ...policy } } };
  });
}

function verifySpec(verification: Verification | undefined) {
  if (!verification) return {};
  const keys = verification.publicKeyPem ? { secretRef: { name: VERIFY_KEY_SECRET } } : {};
  const identity = verification.identity ? { matchOIDCIdentity: [verification.identity] } : {};
  return { verify: { provider: "cosign", ...keys, ...identity } };
}

/** The objects that make the controller follow the artifact and apply it, itself included. */
export function syncObjects(options: BootstrapOptions): object[] {
  const namespace = options.install.namespace ?? DEFAULT_NAMESPACE;
  const labels = { [PART_OF_LABEL]: "ferry" };
  const repository = {
    apiVersion: `${SOURCE_GROUP}/v1`,
    kind: "OCIRepository",
    metadata: { name: BOOTSTRAP_NAME, namespace, labels },
    spec: {
      url: options.url,
      ref: { tag: options.tag },
      interval: options.interval,
      ...(options.insecure ? { insecure: true } : {}),
      ...(options.registryCredentials ? { secretRef: { name: REGISTRY_SECRET } } : {}),
      ...(options.registryTls ? { certSecretRef: { name: REGISTRY_TLS_SECRET } } : {}),
      ...verifySpec(options.verification),
    },
  };
  const kustomization = (name: string, path: string, extra: Record<string, unknown> = {}) => ({
    apiVersion: `${KUSTOMIZE_GROUP}/v1`,
    kind: "Kustomization",
    metadata: { name, namespace, labels },
    spec: { interval: "10m", path, prune: true, sourceRef: { kind: "OCIRepository", name: BOOTSTRAP_NAME }, ...extra },
  });
  return [
    repository,
    // Orphan: deleting this Kustomization must not delete the controller's own RBAC and Deployment while the
    // controller is still finalizing it, which would leave it stuck, and the cluster without Ferry.
    kustomization(BOOTSTRAP_NAME, `./${COMPONENTS_DIR}`, { deletionPolicy: "Orphan" }),
    ...(options.clusterConfig ? [kustomization(CLUSTER_CONFIG_NAME, `./${CLUSTER_DIR}`, { dependsOn: [{ name: BOOTSTRAP_NAME }] })] : []),
  ];
}

/** The files of Ferry's own part of the artifact, by path inside it. */
export function componentFiles(options: BootstrapOptions): Map<string, string> {
  const kustomization = { apiVersion: "kustomize.config.k8s.io/v1beta1", kind: "Kustomization", resources: ["ferry-components.yaml", "ferry-sync.yaml"] };
  const header = `# Generated by ferry bootstrap v${FERRY_VERSION}; re-run it to change these files.\n`;
  return new Map([
    [`${COMPONENTS_DIR}/ferry-components.yaml`, header + dump(selfManagedComponents(options.install))],
    [`${COMPONENTS_DIR}/ferry-sync.yaml`, header + dump(syncObjects(options))],
    [`${COMPONENTS_DIR}/kustomization.yaml`, header + dump([kustomization])],
  ]);
}

/** What is in charge of the cluster now, as read from it before bootstrapping. */
export interface ClusterState {
  /** The url of the ferry-system OCIRepository, when a bootstrap has been done. */
  readonly repositoryUrl?: string;
  readonly repositoryTag?: string;
  /** The version label of the controller Deployment, when Ferry is installed. */
  readonly controllerVersion?: string;
  /** A cluster-config Kustomization exists: an earlier bootstrap delivered a --path. */
  readonly clusterConfig?: boolean;
  /** The ferry-system OCIRepository has spec.verify: the controller applies only signed artifacts. */
  readonly verified?: boolean;
}

/**
 * Why bootstrapping would take the cluster away from what is in charge of it (another registry or tag, a newer
 * Ferry), every reason at once so that --force is never given for one reason while hiding another; empty when it
 * may go ahead: a first install, a re-run, or an upgrade.
 */
export function takeoverConflicts(state: ClusterState, options: Pick<BootstrapOptions, "url" | "tag" | "verification">): string[] {
  const conflicts: string[] = [];
  if (state.repositoryUrl !== undefined && state.repositoryUrl !== options.url) {
    conflicts.push(`Ferry in this cluster follows ${state.repositoryUrl}, not ${options.url}`);
  } else if (state.repositoryTag !== undefined && state.repositoryTag !== options.tag) {
    conflicts.push(`Ferry in this cluster follows the tag ${state.repositoryTag}, not ${options.tag}`);
  }
  // Turning signature verification off is a security decision, never the side effect of a forgotten flag.
  if (state.verified && !options.verification) {
    conflicts.push("the controller verifies the artifact's signature (OCIRepository spec.verify) and without --sign would stop verifying");
  }
  const installed = semver.valid(state.controllerVersion?.replace(/^v/, "") ?? "");
  if (installed && semver.gt(installed, FERRY_VERSION)) {
    conflicts.push(`the cluster runs Ferry v${installed}, newer than this CLI's v${FERRY_VERSION}`);
  }
  return conflicts;
}

/**
 * Bootstrapping without --path over a cluster whose earlier bootstrap had one: the new artifact would not hold the
 * Kustomization, so the controller would prune it and, with it, every object it applied (the user's workloads).
 * Deleting workloads is never implied by --force; it needs its own flag.
 */
export function droppedClusterConfig(state: ClusterState, options: Pick<BootstrapOptions, "clusterConfig">): string | undefined {
  if (!state.clusterConfig || options.clusterConfig) return undefined;
  return `the Kustomization ${CLUSTER_CONFIG_NAME} delivers the --path of an earlier bootstrap; without --path it and everything it applied would be pruned`;
}

interface SpecObject {
  readonly kind: string;
  readonly metadata: { readonly name: string };
  readonly spec?: Readonly<Record<string, unknown>>;
}

/** Fields bootstrap sets only sometimes: when the live object has one the desired lacks, it must be removed. */
const OPTIONAL_SYNC_FIELDS = ["insecure", "secretRef", "certSecretRef", "verify", "dependsOn", "deletionPolicy"];

const canonical = (value: unknown): string =>
  value === undefined || value === false
    ? ""
    : Array.isArray(value)
      ? `[${value.map(canonical).join(",")}]`
      : typeof value === "object" && value !== null
        ? `{${Object.keys(value).sort().map((key) => `${key}:${canonical((value as Record<string, unknown>)[key])}`).join(",")}}`
        : JSON.stringify(value);

/**
 * How the live sync objects differ from what bootstrap wants (missing, or a field it sets with another value), one
 * line each; empty when they match. Only bootstrap's own fields count, so the controller's status and the
 * apiserver's defaults are not differences. `live` is keyed by `kind/name`.
 */
export function syncDrift(desired: readonly object[], live: ReadonlyMap<string, SpecObject | undefined>): string[] {
  const drift: string[] = [];
  for (const object of desired as readonly SpecObject[]) {
    const key = `${object.kind}/${object.metadata.name}`;
    const current = live.get(key);
    if (!current) {
      drift.push(`${key} is missing`);
      continue;
    }
    const wanted = object.spec ?? {};
    const fields = new Set([...Object.keys(wanted), ...OPTIONAL_SYNC_FIELDS]);
    for (const field of fields) {
      if (canonical(wanted[field]) !== canonical(current.spec?.[field])) drift.push(`${key} spec.${field} differs`);
    }
  }
  return drift;
}
