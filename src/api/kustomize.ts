// kustomize.ferry.dev/v1 Kustomization: Flux's Kustomization fields and semantics under Ferry's API group.
import { z } from "zod";
import { celString, withCelRule } from "./cel.ts";
import { Condition, Digest, Duration, MAX_LIST_ITEMS, NamespaceName, ObjectName } from "./meta.ts";

export const KUSTOMIZE_GROUP = "kustomize.ferry.dev";
export const KUSTOMIZE_VERSION = "v1";

/** Paths inside an artifact, as long as Linux allows (PATH_MAX). */
const MAX_PATH_LENGTH = 4096;

/** A patch is a manifest fragment; a quarter of a MiB is far more than any hand-written one. */
const MAX_PATCH_LENGTH = 262_144;

/** Variable names as post-build substitution takes them: a wrong one is refused on apply, not when the build fails. */
const VARIABLE_NAME = /^[_a-zA-Z][_a-zA-Z0-9]*$/;

/** Substitution looks every variable up for every manifest; no real setup comes near this many. */
const MAX_VARIABLES = 1024;

/** buildMetadata has two options; Flux allows repeats, which mean nothing, and so a few of them. */
const MAX_BUILD_METADATA = 8;

/** apiVersion as Kubernetes writes it: <group>/<version> or, for the core group, <version>. */
const ApiVersion = z.string().max(317);

export const CrossNamespaceSourceReference = z.object({
  apiVersion: ApiVersion.optional(),
  kind: z.enum(["OCIRepository"]),
  name: ObjectName,
  namespace: NamespaceName.optional().describe("Defaults to the Kustomization's namespace."),
});

/**
 * A CEL expression, as Flux's runtime/cel parses it. The longest in Flux's library of health checks is a few hundred
 * characters; the bound keeps what the controller parses for every reconcile small.
 */
export const MAX_CEL_EXPRESSION_LENGTH = 4096;
const CelExpression = z.string().max(MAX_CEL_EXPRESSION_LENGTH);

export const DependencyReference = z.object({
  name: ObjectName,
  namespace: NamespaceName.optional().describe("Defaults to the Kustomization's namespace."),
  readyExpr: CelExpression.optional()
    .describe("CEL over self (this Kustomization) and dep (the dependency) that decides when the dependency is ready; it replaces the built-in Ready check."),
});

/** Flux's kustomize.CustomHealthCheck: how objects of one group (and kind) are judged healthy, instead of kstatus. */
export const CustomHealthCheck = z.object({
  apiVersion: ApiVersion.min(1).describe("Only its group is matched; the version is ignored."),
  kind: z.string().max(63).optional().describe("Without it the entry covers every kind of the group; an entry naming the kind wins."),
  current: CelExpression.min(1).describe("True when the object has reached its desired state."),
  inProgress: CelExpression.optional().describe("True while the object is still being reconciled; evaluated first."),
  failed: CelExpression.optional().describe("True when the object failed; evaluated after inProgress and before current."),
});

export const HealthCheckReference = z.object({
  apiVersion: ApiVersion.optional()
    .describe("Only its group counts: the object is read at the version the cluster prefers for its kind. Defaults to apps/v1, as in Flux."),
  kind: z.string().min(1).max(63),
  // Not ObjectName: some kinds' names are not DNS subdomains (RBAC's may contain ':').
  name: z.string().min(1).max(253),
  namespace: NamespaceName.optional().describe("Defaults to the Kustomization's namespace for namespaced kinds."),
});

export const PatchSelector = z.object({
  group: z.string().optional(),
  version: z.string().optional(),
  kind: z.string().optional(),
  name: z.string().optional(),
  namespace: z.string().optional(),
  labelSelector: z.string().optional(),
  annotationSelector: z.string().optional(),
});

export const Patch = z.object({
  patch: z.string().min(1).max(MAX_PATCH_LENGTH).describe("A strategic merge patch or a JSON 6902 patch, in YAML or JSON."),
  target: PatchSelector.optional().describe("The objects the patch applies to."),
});

/** A JSON pointer (RFC 6901), or "" for the whole object; as long as a path into any real object could be. */
const JsonPointer = z.string().max(1024).regex(/^(\/.*)?$/);

/** Flux's IgnoreRule: fields of the selected objects that drift detection leaves alone. */
export const IgnoreRule = z.object({
  paths: z.array(JsonPointer).min(1).max(MAX_LIST_ITEMS).describe("JSON pointers (RFC 6901) of the fields to ignore; ~1 stands for / in a key."),
  target: PatchSelector.optional().describe("The objects the rule applies to (regexes for group, version, kind, name, namespace); all when unset."),
});

export const Image = z.object({
  name: z.string().min(1).describe("The image name as written in the manifests."),
  newName: z.string().optional(),
  newTag: z.string().optional(),
  digest: Digest.optional().describe("Takes precedence over newTag."),
});

export const SubstituteReference = z.object({
  kind: z.enum(["ConfigMap", "Secret"]),
  name: ObjectName.min(1),
  optional: z.boolean().optional().describe("A missing object is not an error."),
});

/** The key of a Secret's data (apimachinery's IsConfigMapKey). */
const SecretKey = z.string().max(253).regex(/^[-._a-zA-Z0-9]+$/);

const Variables = withCelRule(z.record(z.string(), z.string()), {
  rule: `self.size() <= ${MAX_VARIABLES} && self.all(name, name.matches(${celString(VARIABLE_NAME.source)}))`,
  message: `at most ${MAX_VARIABLES} variables, each named as ${VARIABLE_NAME.source}`,
  holds: (variables) => Object.keys(variables).length <= MAX_VARIABLES && Object.keys(variables).every((name) => VARIABLE_NAME.test(name)),
});

export const PostBuild = z.object({
  substituteStrategy: z.enum(["WithVariables", "Always"]).optional()
    .describe("WithVariables (default): substitute only when some variable is defined; Always: even with none, so that ${var:=default} applies."),
  substitute: Variables.optional().describe("Variables for ${var} substitution; override substituteFrom."),
  substituteFrom: z.array(SubstituteReference).max(MAX_LIST_ITEMS).optional().describe("ConfigMaps and Secrets with variables; later ones win."),
});

export const KubeConfigReference = z.object({
  secretRef: z.object({
    name: ObjectName,
    key: SecretKey.optional().describe("Defaults to value, then value.yaml."),
  }),
});

export const Decryption = z.object({
  provider: z.enum(["sops"]).describe("The only provider, as in Flux."),
  secretRef: z.object({ name: ObjectName }).optional()
    .describe("A Secret of the Kustomization's namespace whose *.agekey entries hold age identities; required by Ferry."),
  serviceAccountName: ObjectName.optional().describe("Flux's cloud-KMS identity; Ferry decrypts with age keys only and refuses it."),
});

export const KustomizationSpec = z.object({
  sourceRef: CrossNamespaceSourceReference.describe("The source whose artifact is built and applied."),
  path: z.string().max(MAX_PATH_LENGTH).optional().describe("Directory inside the artifact; the artifact root when empty."),
  interval: Duration.describe("How often the artifact is applied again, correcting drift."),
  retryInterval: Duration.optional().describe("How soon to retry after a failure; defaults to interval."),
  timeout: Duration.optional().describe("Timeout for build, apply and health checks; interval - 30s by default, at least 30s."),
  prune: z.boolean().describe("Delete objects that left the artifact."),
  deletionPolicy: z.enum(["MirrorPrune", "Delete", "WaitForTermination", "Orphan"]).optional()
    .describe("What deleting the Kustomization does to its objects; MirrorPrune (default) deletes them when prune is true."),
  wait: z.boolean().optional().describe("Wait until every applied object is ready; healthChecks are then ignored."),
  healthChecks: z.array(HealthCheckReference).max(MAX_LIST_ITEMS).optional().describe("Objects that must be ready for the Kustomization to be healthy."),
  healthCheckExprs: z.array(CustomHealthCheck).max(MAX_LIST_ITEMS).optional()
    .describe("CEL health checks by group and kind, used for the objects wait or healthChecks check."),
  dependsOn: z.array(DependencyReference).max(MAX_LIST_ITEMS).optional().describe("Kustomizations that must be Ready at their latest revision first."),
  targetNamespace: NamespaceName.min(1).optional(),
  namePrefix: z.string().min(1).max(200).optional(),
  nameSuffix: z.string().min(1).max(200).optional(),
  commonMetadata: z.object({
    labels: z.record(z.string(), z.string()).optional(),
    annotations: z.record(z.string(), z.string()).optional(),
  }).optional().describe("Labels and annotations set on every object after the build."),
  patches: z.array(Patch).max(MAX_LIST_ITEMS).optional(),
  images: z.array(Image).max(MAX_LIST_ITEMS).optional(),
  components: z.array(z.string().max(MAX_PATH_LENGTH)).max(MAX_LIST_ITEMS).optional().describe("Kustomize components, as paths relative to path."),
  ignoreMissingComponents: z.boolean().optional().describe("Leave out spec.components that do not exist in the artifact instead of failing the build."),
  buildMetadata: z.array(z.enum(["originAnnotations", "transformerAnnotations"])).max(MAX_BUILD_METADATA).optional()
    .describe("kustomize buildMetadata: originAnnotations (config.kubernetes.io/origin) and transformerAnnotations."),
  postBuild: PostBuild.optional(),
  decryption: Decryption.optional().describe("Decrypt SOPS-encrypted (age) files and Secret values before applying."),
  force: z.boolean().optional().describe("Recreate objects whose immutable fields changed."),
  ignore: z.array(IgnoreRule).max(MAX_LIST_ITEMS).optional()
    .describe("Fields that drift detection ignores and applies never revert (owned by HPAs, VPAs, other controllers)."),
  serviceAccountName: ObjectName.optional().describe("Apply as this ServiceAccount of the Kustomization's namespace."),
  kubeConfig: KubeConfigReference.optional().describe("Apply to the cluster of the kubeconfig in this Secret."),
  suspend: z.boolean().optional(),
});

export const InventoryEntry = z.object({
  id: z.string().describe("<namespace>_<name>_<group>_<kind>"),
  v: z.string().describe("API version of the object."),
});

/** Flux's meta.Snapshot: one digest of the built objects and outcome in status.history. */
export const HistorySnapshot = z.object({
  digest: z.string().describe("sha256:<hex> of the objects the build produced."),
  firstReconciled: z.string().describe("When this digest first ended with this status."),
  lastReconciled: z.string(),
  lastReconciledDuration: z.string().describe("How long the last such reconcile took, build to health check."),
  lastReconciledStatus: z.string().describe("ReconciliationSucceeded, ReconciliationFailed, PruneFailed or HealthCheckFailed."),
  totalReconciliations: z.int(),
  metadata: z.record(z.string(), z.string()).optional().describe("revision, and originRevision when the artifact has one."),
});

export const KustomizationStatus = z.object({
  observedGeneration: z.int().optional(),
  conditions: z.array(Condition).optional(),
  lastAppliedRevision: z.string().optional(),
  lastAppliedOriginRevision: z.string().optional(),
  lastAttemptedRevision: z.string().optional(),
  lastHandledReconcileAt: z.string().optional(),
  inventory: z.object({ entries: z.array(InventoryEntry) }).optional(),
  history: z.array(HistorySnapshot).max(5).optional().describe("The last reconciliations by digest and outcome, most recent first (at most 5)."),
});

export type KustomizationSpecType = z.infer<typeof KustomizationSpec>;
export type KustomizationStatusType = z.infer<typeof KustomizationStatus>;
export type InventoryEntryType = z.infer<typeof InventoryEntry>;
export type HistorySnapshotType = z.infer<typeof HistorySnapshot>;
