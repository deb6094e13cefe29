// kustomize.ferry.dev/v1 Kustomization: Flux's Kustomization fields and semantics under Ferry's API group.
import { z } from "zod";
import { Condition, Duration } from "./meta.ts";

export const KUSTOMIZE_GROUP = "kustomize.ferry.dev";
export const KUSTOMIZE_VERSION = "v1";

export const CrossNamespaceSourceReference = z.object({
  apiVersion: z.string().optional(),
  kind: z.enum(["OCIRepository"]),
  name: z.string().min(1),
  namespace: z.string().optional().describe("Defaults to the Kustomization's namespace."),
});

export const DependencyReference = z.object({
  name: z.string().min(1),
  namespace: z.string().optional().describe("Defaults to the Kustomization's namespace."),
});

export const HealthCheckReference = z.object({
  apiVersion: z.string().optional().describe("Defaults to apps/v1."),
  kind: z.string().min(1),
  name: z.string().min(1),
  namespace: z.string().optional().describe("Defaults to the Kustomization's namespace for namespaced kinds."),
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
  patch: z.string().min(1).describe("A strategic merge patch or a JSON 6902 patch, in YAML or JSON."),
  target: PatchSelector.optional().describe("The objects the patch applies to."),
});

export const Image = z.object({
  name: z.string().min(1).describe("The image name as written in the manifests."),
  newName: z.string().optional(),
  newTag: z.string().optional(),
  digest: z.string().optional().describe("Takes precedence over newTag."),
});

export const SubstituteReference = z.object({
  kind: z.enum(["ConfigMap", "Secret"]),
  name: z.string().min(1).max(253),
  optional: z.boolean().optional().describe("A missing object is not an error."),
});

export const PostBuild = z.object({
  substitute: z.record(z.string(), z.string()).optional().describe("Variables for ${var} substitution; override substituteFrom."),
  substituteFrom: z.array(SubstituteReference).optional().describe("ConfigMaps and Secrets with variables; later ones win."),
});

export const KubeConfigReference = z.object({
  secretRef: z.object({
    name: z.string().min(1),
    key: z.string().optional().describe("Defaults to value, then value.yaml."),
  }),
});

export const KustomizationSpec = z.object({
  sourceRef: CrossNamespaceSourceReference.describe("The source whose artifact is built and applied."),
  path: z.string().optional().describe("Directory inside the artifact; the artifact root when empty."),
  interval: Duration.describe("How often the artifact is applied again, correcting drift."),
  retryInterval: Duration.optional().describe("How soon to retry after a failure; defaults to interval."),
  timeout: Duration.optional().describe("Timeout for build, apply and health checks; interval - 30s by default, at least 30s."),
  prune: z.boolean().describe("Delete objects that left the artifact."),
  deletionPolicy: z.enum(["MirrorPrune", "Delete", "WaitForTermination", "Orphan"]).optional()
    .describe("What deleting the Kustomization does to its objects; MirrorPrune (default) deletes them when prune is true."),
  wait: z.boolean().optional().describe("Wait until every applied object is ready; healthChecks are then ignored."),
  healthChecks: z.array(HealthCheckReference).optional().describe("Objects that must be ready for the Kustomization to be healthy."),
  dependsOn: z.array(DependencyReference).optional().describe("Kustomizations that must be Ready at their latest revision first."),
  targetNamespace: z.string().min(1).max(63).optional(),
  namePrefix: z.string().min(1).max(200).optional(),
  nameSuffix: z.string().min(1).max(200).optional(),
  commonMetadata: z.object({
    labels: z.record(z.string(), z.string()).optional(),
    annotations: z.record(z.string(), z.string()).optional(),
  }).optional().describe("Labels and annotations set on every object after the build."),
  patches: z.array(Patch).optional(),
  images: z.array(Image).optional(),
  components: z.array(z.string()).optional().describe("Kustomize components, as paths relative to path."),
  postBuild: PostBuild.optional(),
  force: z.boolean().optional().describe("Recreate objects whose immutable fields changed."),
  serviceAccountName: z.string().optional().describe("Apply as this ServiceAccount of the Kustomization's namespace."),
  kubeConfig: KubeConfigReference.optional().describe("Apply to the cluster of the kubeconfig in this Secret."),
  suspend: z.boolean().optional(),
});

export const InventoryEntry = z.object({
  id: z.string().describe("<namespace>_<name>_<group>_<kind>"),
  v: z.string().describe("API version of the object."),
});

export const KustomizationStatus = z.object({
  observedGeneration: z.int().optional(),
  conditions: z.array(Condition).optional(),
  lastAppliedRevision: z.string().optional(),
  lastAppliedOriginRevision: z.string().optional(),
  lastAttemptedRevision: z.string().optional(),
  lastHandledReconcileAt: z.string().optional(),
  inventory: z.object({ entries: z.array(InventoryEntry) }).optional(),
});

export type KustomizationSpecType = z.infer<typeof KustomizationSpec>;
export type KustomizationStatusType = z.infer<typeof KustomizationStatus>;
export type InventoryEntryType = z.infer<typeof InventoryEntry>;
