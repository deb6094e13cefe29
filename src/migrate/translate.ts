// Translating Flux's OCIRepositories and Kustomizations into Ferry's, for `ferry migrate`. Pure: objects in, a plan
// out, every refusal named. Ferry's schemas are the judge of what carries over: a field they do not declare, or a
// value they refuse (Ferry is stricter than Flux in places), is a refusal rather than something silently dropped,
// because a dropped field (a patch, a health check, a decryption block) would change what gets applied.
import type { z } from "zod";
import { KUSTOMIZE_GROUP, KUSTOMIZE_VERSION, KustomizationSpec, type InventoryEntryType } from "../api/kustomize.ts";
import { OCIRepositorySpec, SOURCE_GROUP, SOURCE_VERSION } from "../api/source.ts";
import { unsupportedDecryption, unsupportedProvider, unsupportedVerifyProvider } from "../api/not-yet-supported.ts";
import { FerryError } from "../errors.ts";
import { parseEntry } from "../inventory/inventory.ts";

export const FLUX_SOURCE_GROUP = "source.toolkit.fluxcd.io";
export const FLUX_KUSTOMIZE_GROUP = "kustomize.toolkit.fluxcd.io";
export const FLUX_SOURCE_API_VERSION = `${FLUX_SOURCE_GROUP}/v1`;
export const FLUX_KUSTOMIZE_API_VERSION = `${FLUX_KUSTOMIZE_GROUP}/v1`;
export const FERRY_SOURCE_API_VERSION = `${SOURCE_GROUP}/${SOURCE_VERSION}`;
export const FERRY_KUSTOMIZE_API_VERSION = `${KUSTOMIZE_GROUP}/${KUSTOMIZE_VERSION}`;

/** Marks Ferry objects `ferry migrate` wrote, so `--rollback` touches only those. Its value is the Flux apiVersion. */
export const MIGRATED_FROM_ANNOTATION = "migrate.ferry.dev/from";
/** Set when the Flux object was already suspended (migrated with --force): rollback leaves it suspended. */
export const FLUX_WAS_SUSPENDED_ANNOTATION = "migrate.ferry.dev/flux-suspended";

/**
 * Set on the Flux objects `ferry migrate` suspends: a re-run after an interruption knows that suspension is its own
 * (not someone holding a change back), and --rollback knows whose suspension to lift.
 */
export const SUSPENDED_BY_MIGRATE_ANNOTATION = "migrate.ferry.dev/suspended";

/** Annotations that describe the Flux object itself and would be wrong on Ferry's. */
const DROPPED_ANNOTATIONS = new Set(["kubectl.kubernetes.io/last-applied-configuration", SUSPENDED_BY_MIGRATE_ANNOTATION]);

/** Flux's sources Ferry cannot follow: it delivers OCI artifacts only. */
const UNSUPPORTED_SOURCE_KINDS: Readonly<Record<string, string>> = {
  GitRepository: "Ferry has no Git at runtime; push the repository's manifests with `ferry push artifact` and use an OCIRepository",
  Bucket: "Ferry reads OCI registries only; push the bucket's manifests with `ferry push artifact` and use an OCIRepository",
  HelmRepository: "Ferry has no Helm sources",
  ExternalArtifact: "Ferry has no ExternalArtifact source",
  HelmChart: "Ferry has no Helm sources",
};

export class MigrationRefused extends FerryError {
  readonly code = "MIGRATION_REFUSED";
  readonly disposition = "stall" as const;
  readonly refusals: readonly string[];

  constructor(refusals: readonly string[]) {
    super(`nothing was changed; ${refusals.length} object(s) cannot be migrated:\n  ${refusals.join("\n  ")}`);
    this.refusals = refusals;
  }
}

/** The cluster is not in a state to migrate (CRDs missing, a reconcile that does not end, a name taken): exit 1. */
export class MigrationBlocked extends FerryError {
  readonly code = "MIGRATION_BLOCKED";
  readonly disposition = "wait" as const;
}

export interface FluxMetadata {
  name: string;
  namespace?: string;
  labels?: Record<string, string>;
  annotations?: Record<string, string>;
  uid?: string;
  resourceVersion?: string;
  managedFields?: ReadonlyArray<{ manager?: string; operation?: string; fieldsV1?: Record<string, unknown> }>;
}

/** A Flux (or Ferry) OCIRepository or Kustomization as read from the cluster or a file. */
export interface DeliveryObject {
  apiVersion: string;
  kind: string;
  metadata: FluxMetadata;
  spec?: Record<string, unknown>;
  status?: { inventory?: { entries?: InventoryEntryType[] } } & Record<string, unknown>;
}

export interface MigrationItem {
  readonly kind: "OCIRepository" | "Kustomization";
  readonly namespace: string;
  readonly name: string;
  readonly flux: DeliveryObject;
  /** Ferry's object as it should end up (spec.suspend as Flux's was); without status. */
  readonly ferry: DeliveryObject;
  /** Flux's status.inventory, carried into Ferry's status (Kustomizations only). */
  readonly inventory: readonly InventoryEntryType[];
  /** Someone suspended the Flux object before the migration (allowed with --force). */
  readonly fluxWasSuspended: boolean;
}

export interface MigrationPlan {
  readonly sources: readonly MigrationItem[];
  readonly kustomizations: readonly MigrationItem[];
  readonly refusals: readonly string[];
  /** What goes ahead but needs the user's attention afterwards. */
  readonly warnings: readonly string[];
}

/** The labels kustomize-controller puts on what it applies; on a Flux object they name the Kustomization that applied it. */
const FLUX_OWNER_LABELS = [`${FLUX_KUSTOMIZE_GROUP}/name`, `${FLUX_KUSTOMIZE_GROUP}/namespace`];
/** kustomize-controller's field manager for what it applies. */
const FLUX_FIELD_MANAGER = "kustomize-controller";

export interface PlanOptions {
  /** Migrate Flux objects someone already suspended. */
  readonly force?: boolean;
  /** "<namespace>/<name>" of Ferry OCIRepositories that already exist, which a Kustomization may point at. */
  readonly existingFerrySources?: ReadonlySet<string>;
  /** "<namespace>/<name>" of Ferry Kustomizations that already exist, which dependsOn may name. */
  readonly existingFerryKustomizations?: ReadonlySet<string>;
  /** Flux Kustomizations and HelmReleases left behind: an OCIRepository they follow must not be suspended under them. */
  readonly remainingFluxKustomizations?: readonly DeliveryObject[];
  /** "<kind>/<namespace>/<name>" of Ferry objects that exist and were not written by `ferry migrate`. */
  readonly foreignFerryObjects?: ReadonlySet<string>;
  /** The objects are to be handed over in this cluster (not just printed): a Kustomization applying elsewhere cannot be. */
  readonly inCluster?: boolean;
}

const key = (namespace: string, name: string) => `${namespace}/${name}`;

export function describe(object: DeliveryObject): string {
  return `${object.kind} ${object.metadata.namespace ?? "default"}/${object.metadata.name}`;
}

/** Whether an object is one of Flux's OCIRepositories or Kustomizations (any version `ferry migrate` reads). */
export function isFluxObject(object: DeliveryObject): boolean {
  return (object.apiVersion === FLUX_SOURCE_API_VERSION && object.kind === "OCIRepository")
    || (object.apiVersion === FLUX_KUSTOMIZE_API_VERSION && object.kind === "Kustomization");
}

/** The plan for these Flux objects: Ferry's objects to create, or why each one that cannot be migrated cannot. */
export function planMigration(objects: readonly DeliveryObject[], options: PlanOptions = {}): MigrationPlan {
  const refusals: string[] = [];
  const fluxObjects = objects.filter((object) => {
    if (isFluxObject(object)) return true;
    refusals.push(`${object.kind} ${object.metadata?.name ?? "?"} (${object.apiVersion}): ${refusalForOther(object)}`);
    return false;
  });
  const items = fluxObjects.map((object) => translate(object, options, refusals))
    .filter((item): item is MigrationItem => item !== undefined);
  const sources = items.filter((item) => item.kind === "OCIRepository");
  const kustomizations = items.filter((item) => item.kind === "Kustomization");
  refusals.push(...crossReferenceRefusals(sources, kustomizations, options));
  return { sources, kustomizations, refusals, warnings: items.flatMap(appliedByFluxWarning) };
}

function refusalForOther(object: DeliveryObject): string {
  const reason = UNSUPPORTED_SOURCE_KINDS[object.kind];
  if (reason && object.apiVersion.startsWith(`${FLUX_SOURCE_GROUP}/`)) return reason;
  if (object.apiVersion.startsWith(`${FLUX_SOURCE_GROUP}/`) || object.apiVersion.startsWith(`${FLUX_KUSTOMIZE_GROUP}/`)) {
    return `only ${FLUX_SOURCE_API_VERSION} OCIRepository and ${FLUX_KUSTOMIZE_API_VERSION} Kustomization are migrated (upgrade Flux's objects to v1 first)`;
  }
  return "not a Flux object";
}

function translate(object: DeliveryObject, options: PlanOptions, refusals: string[]): MigrationItem | undefined {
  const kind = object.kind as MigrationItem["kind"];
  const namespace = object.metadata.namespace ?? "default";
  const { name } = object.metadata;
  const before = refusals.length;
  const fluxWasSuspended = object.spec?.suspend === true && object.metadata.annotations?.[SUSPENDED_BY_MIGRATE_ANNOTATION] === undefined;
  if (fluxWasSuspended && !options.force) {
    refusals.push(`${describe(object)}: already suspended by someone else; migrating it would let Ferry apply what was held back (--force to migrate it anyway, suspended)`);
  }
  if (options.foreignFerryObjects?.has(`${kind}/${namespace}/${name}`)) {
    refusals.push(`${describe(object)}: Ferry's ${kind} of that name already exists and was not written by ferry migrate`);
  }
  const spec = kind === "Kustomization" ? translateKustomizationSpec(object, refusals) : { ...object.spec };
  if (kind === "Kustomization" && options.inCluster && spec.kubeConfig !== undefined) {
    refusals.push(`${describe(object)}: spec.kubeConfig: its objects are in another cluster, where ferry migrate cannot hand them over `
      + "(--export the objects, and relabel and hand over the field manager there)");
  }
  if (kind === "OCIRepository") refusals.push(...verificationRefusals(object), ...sourceCapabilityRefusals(object));
  else refusals.push(...decryptionRefusals(object));
  refusals.push(...suspensionRefusals(object));
  refusals.push(...schemaRefusals(object, spec, kind === "Kustomization" ? KustomizationSpec : OCIRepositorySpec));
  const inventory = kind === "Kustomization" ? carriedInventory(object, refusals) : [];
  if (refusals.length > before) return undefined;
  const ferry: DeliveryObject = {
    apiVersion: kind === "Kustomization" ? FERRY_KUSTOMIZE_API_VERSION : FERRY_SOURCE_API_VERSION,
    kind,
    metadata: { name, namespace, ...carriedMetadata(object, fluxWasSuspended) },
    spec,
  };
  return { kind, namespace, name, flux: object, ferry, inventory, fluxWasSuspended };
}

/**
 * A Flux object that another Flux Kustomization applied (flux bootstrap's flux-system applies the others) stays in
 * that one's source: the suspension holds (server-side apply leaves a field it does not own alone), but the manifest
 * in the source should say suspend: true, or be removed, before anyone edits it.
 */
function appliedByFluxWarning(item: MigrationItem): string[] {
  const labels = item.flux.metadata.labels ?? {};
  const [name, namespace] = FLUX_OWNER_LABELS.map((label) => labels[label]);
  if (name === undefined) return [];
  return [`${describe(item.flux)} is applied by Flux Kustomization ${namespace ?? "?"}/${name}: remove it from that source `
    + "(or set suspend: true there), and add Ferry's to where you keep your manifests"];
}

function carriedMetadata(object: DeliveryObject, fluxWasSuspended: boolean): Pick<FluxMetadata, "labels" | "annotations"> {
  const carried = Object.entries(object.metadata.annotations ?? {}).filter(([name]) => !DROPPED_ANNOTATIONS.has(name));
  const annotations: Record<string, string> = Object.fromEntries(carried);
  annotations[MIGRATED_FROM_ANNOTATION] = object.apiVersion;
  if (fluxWasSuspended) annotations[FLUX_WAS_SUSPENDED_ANNOTATION] = "true";
  // Flux's owner labels say which Kustomization applied the Flux object; Ferry's was not applied by it.
  const labels = Object.fromEntries(Object.entries(object.metadata.labels ?? {}).filter(([label]) => !FLUX_OWNER_LABELS.includes(label)));
  return { ...(Object.keys(labels).length > 0 ? { labels } : {}), annotations };
}

/** Flux's sourceRef points at Flux's API group (or none); Ferry's at its own. */
function translateKustomizationSpec(object: DeliveryObject, refusals: string[]): Record<string, unknown> {
  const spec = { ...object.spec };
  const sourceRef = spec.sourceRef as Record<string, unknown> | undefined;
  if (!sourceRef) return spec;
  const kind = String(sourceRef.kind);
  const reason = UNSUPPORTED_SOURCE_KINDS[kind];
  if (reason) refusals.push(`${describe(object)}: spec.sourceRef.kind ${kind}: ${reason}`);
  if (sourceRef.apiVersion === undefined) return spec;
  if (typeof sourceRef.apiVersion !== "string" || !sourceRef.apiVersion.startsWith(`${FLUX_SOURCE_GROUP}/`)) {
    refusals.push(`${describe(object)}: spec.sourceRef.apiVersion ${String(sourceRef.apiVersion)} is not Flux's source API`);
    return spec;
  }
  return { ...spec, sourceRef: { ...sourceRef, apiVersion: FERRY_SOURCE_API_VERSION } };
}

/**
 * Flux's cosign verification with neither keys nor identities accepts a keyless signature by anyone the public
 * Sigstore issued a certificate to; Ferry refuses to verify against no identity, so such a source would never become
 * Ready under Ferry. Said before anything changes.
 */
function verificationRefusals(object: DeliveryObject): string[] {
  const verify = object.spec?.verify as { provider?: string; secretRef?: unknown; matchOIDCIdentity?: unknown[] } | undefined;
  if (!verify || (verify.provider ?? "cosign") !== "cosign" || verify.secretRef || verify.matchOIDCIdentity?.length) return [];
  return [`${describe(object)}: spec.verify has neither secretRef nor matchOIDCIdentity; Flux accepts any Sigstore identity, Ferry requires `
    + "the keys or the identities to trust (add matchOIDCIdentity for the signer)"];
}

/** What Ferry's OCIRepository would stall on (workload identity, notation), in the reconciler's words. */
function sourceCapabilityRefusals(object: DeliveryObject): string[] {
  type SourceSpec = { provider?: string; secretRef?: unknown; serviceAccountName?: string; verify?: { provider?: string } };
  const spec = object.spec as SourceSpec | undefined;
  // With a ServiceAccount, its imagePullSecrets are static credentials; whether it has any is the cluster's to say.
  const provider = unsupportedProvider(spec?.provider, spec?.secretRef !== undefined || spec?.serviceAccountName !== undefined);
  const verify = unsupportedVerifyProvider(spec?.verify);
  return [provider, verify].filter((message) => message !== undefined).map((message) => `${describe(object)}: ${message}`);
}

function decryptionRefusals(object: DeliveryObject): string[] {
  const message = unsupportedDecryption(object.spec?.decryption as Parameters<typeof unsupportedDecryption>[0]);
  return message ? [`${describe(object)}: ${message}`] : [];
}

/**
 * A Flux object whose spec.suspend is in another Flux Kustomization's manifest (kustomize-controller's server-side
 * apply owns the field): that Kustomization's next apply would set it back and Flux would resume beside Ferry.
 */
function suspensionRefusals(object: DeliveryObject): string[] {
  const owners = (object.metadata.managedFields ?? []).filter((entry) =>
    entry.manager === FLUX_FIELD_MANAGER && entry.operation === "Apply" && ownsSuspend(entry.fieldsV1));
  if (owners.length === 0) return [];
  const [name, namespace] = FLUX_OWNER_LABELS.map((label) => object.metadata.labels?.[label]);
  const parent = name ? `Flux Kustomization ${namespace ?? "?"}/${name}` : "a Flux Kustomization";
  return [`${describe(object)}: spec.suspend is set by ${parent}'s manifest, whose next apply would resume it beside Ferry; `
    + "remove suspend from that manifest (or set it to true, or remove the object from that source) and let it reconcile first"];
}

function ownsSuspend(fields: Record<string, unknown> | undefined): boolean {
  const spec = fields?.["f:spec"];
  return typeof spec === "object" && spec !== null && "f:suspend" in spec;
}

/** Each value Ferry's schema refuses and each field it does not declare, by path. */
function schemaRefusals(object: DeliveryObject, spec: Record<string, unknown>, schema: z.ZodType): string[] {
  const result = schema.safeParse(spec);
  if (!result.success) {
    return result.error.issues.map((issue) => `${describe(object)}: spec.${issue.path.map(String).join(".")}: ${issue.message}`);
  }
  return undeclaredFields(spec, result.data, "spec").map((path) => `${describe(object)}: ${path} is a field Ferry does not have`);
}

/** Paths present in `input` that the schema's output left out (zod strips what it does not declare). */
export function undeclaredFields(input: unknown, parsed: unknown, path: string): string[] {
  if (Array.isArray(input)) {
    return input.flatMap((item, index) => undeclaredFields(item, Array.isArray(parsed) ? parsed[index] : undefined, `${path}[${index}]`));
  }
  if (input === null || typeof input !== "object") return [];
  const output = (parsed ?? {}) as Record<string, unknown>;
  return Object.entries(input as Record<string, unknown>).flatMap(([field, value]) =>
    field in output ? undeclaredFields(value, output[field], `${path}.${field}`) : [`${path}.${field}`],
  );
}

/** Flux's status.inventory, checked entry by entry: Ferry prunes by it, so a malformed id must not slip through. */
export function carriedInventory(object: DeliveryObject, refusals: string[]): InventoryEntryType[] {
  const entries = object.status?.inventory?.entries ?? [];
  const valid = entries.filter((entry) => {
    try {
      parseEntry(entry);
      return typeof entry.v === "string";
    } catch {
      refusals.push(`${describe(object)}: status.inventory entry ${JSON.stringify(entry)} is not an inventory id`);
      return false;
    }
  });
  return valid.map((entry) => ({ id: entry.id, v: entry.v }));
}

/** A Kustomization whose source or dependency stays with Flux would wait forever under Ferry, and vice versa. */
function crossReferenceRefusals(
  sources: readonly MigrationItem[],
  kustomizations: readonly MigrationItem[],
  options: PlanOptions,
): string[] {
  const migratedSources = new Set(sources.map((item) => key(item.namespace, item.name)));
  const migratedKustomizations = new Set(kustomizations.map((item) => key(item.namespace, item.name)));
  const refusals: string[] = [];
  for (const item of kustomizations) {
    const source = sourceKey(item.flux);
    if (source && !migratedSources.has(source) && !options.existingFerrySources?.has(source)) {
      refusals.push(`${describe(item.flux)}: its source OCIRepository ${source} is not migrated with it (add it to the selection)`);
    }
    for (const dependency of dependencies(item.flux)) {
      if (!migratedKustomizations.has(dependency) && !options.existingFerryKustomizations?.has(dependency)) {
        refusals.push(`${describe(item.flux)}: dependsOn Kustomization ${dependency} is not migrated with it`);
      }
    }
  }
  for (const remaining of options.remainingFluxKustomizations ?? []) {
    const source = sourceKey(remaining);
    const remainingKey = key(remaining.metadata.namespace ?? "default", remaining.metadata.name);
    const migrated = remaining.kind === "Kustomization" && migratedKustomizations.has(remainingKey);
    if (source && migratedSources.has(source) && !migrated) {
      const advice = remaining.kind === "Kustomization" ? "migrate both" : "Ferry has no HelmRelease; leave this source to Flux";
      refusals.push(`OCIRepository ${source}: ${describe(remaining)} still follows it under Flux; suspending it would freeze that one (${advice})`);
    }
  }
  return refusals;
}

/** The OCIRepository a Kustomization (sourceRef) or a HelmRelease (chartRef) follows, as namespace/name. */
export function sourceKey(kustomization: DeliveryObject): string | undefined {
  type Reference = { kind?: string; name?: string; namespace?: string };
  const sourceRef = (kustomization.spec?.sourceRef ?? kustomization.spec?.chartRef) as Reference | undefined;
  if (sourceRef?.kind !== "OCIRepository" || !sourceRef.name) return undefined;
  return key(sourceRef.namespace ?? kustomization.metadata.namespace ?? "default", sourceRef.name);
}

function dependencies(kustomization: DeliveryObject): string[] {
  const dependsOn = (kustomization.spec?.dependsOn ?? []) as Array<{ name: string; namespace?: string }>;
  return dependsOn.map((dependency) => key(dependency.namespace ?? kustomization.metadata.namespace ?? "default", dependency.name));
}
