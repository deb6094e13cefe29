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

export const KustomizationSpec = z.object({
  sourceRef: CrossNamespaceSourceReference.describe("The source whose artifact is built and applied."),
  path: z.string().optional().describe("Directory inside the artifact; the artifact root when empty."),
  interval: Duration.describe("How often the artifact is applied again, correcting drift."),
  retryInterval: Duration.optional().describe("How soon to retry after a failure; defaults to interval."),
  timeout: Duration.optional().describe("Timeout for build, apply and health checks."),
  prune: z.boolean().describe("Delete objects that left the artifact."),
  wait: z.boolean().optional().describe("Wait until every applied object is ready."),
  targetNamespace: z.string().min(1).max(63).optional(),
  force: z.boolean().optional().describe("Recreate objects whose immutable fields changed."),
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
  lastAttemptedRevision: z.string().optional(),
  lastHandledReconcileAt: z.string().optional(),
  inventory: z.object({ entries: z.array(InventoryEntry) }).optional(),
});

export type KustomizationSpecType = z.infer<typeof KustomizationSpec>;
export type KustomizationStatusType = z.infer<typeof KustomizationStatus>;
export type InventoryEntryType = z.infer<typeof InventoryEntry>;
