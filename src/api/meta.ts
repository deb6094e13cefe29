// Types shared by Ferry's APIs, mirroring Kubernetes' metav1.Condition and Flux's meta.Artifact.
import { z } from "zod";
import { DURATION_PATTERN } from "./duration.ts";

/** Go-style duration as Flux's CRDs accept it: 30s, 5m, 1h30m, 500ms. */
export const Duration = z.string().regex(DURATION_PATTERN).describe("A duration such as 30s, 5m or 1h30m.");

export const LocalObjectReference = z
  .object({ name: z.string().min(1).describe("Name of the referent.") })
  .describe("A reference to an object in the same namespace.");

export const Condition = z.object({
  type: z.string().regex(/^([a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*\/)?(([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9])$/).max(316),
  status: z.enum(["True", "False", "Unknown"]),
  observedGeneration: z.int().min(0).optional(),
  lastTransitionTime: z.iso.datetime({ offset: true }),
  reason: z.string().regex(/^[A-Za-z]([A-Za-z0-9_,:]*[A-Za-z0-9_])?$/).min(1).max(1024),
  message: z.string().max(32768),
});

export const Artifact = z
  .object({
    path: z.string().describe("Path of the artifact in the controller's cache, relative to its root."),
    url: z.string().describe("Where the artifact can be read; for Ferry, a file URL inside the controller."),
    revision: z.string().describe("The source revision: <tag>@sha256:<manifest digest>, or sha256:<digest> for digest refs."),
    digest: z.string().regex(/^[a-z0-9]+(?:[.+_-][a-z0-9]+)*:[a-zA-Z0-9=_-]+$/).optional().describe("Digest of the stored artifact."),
    lastUpdateTime: z.iso.datetime({ offset: true }),
    size: z.int().min(0).optional(),
    metadata: z.record(z.string(), z.string()).optional().describe("The OCI manifest's annotations."),
  })
  .describe("The last artifact the controller produced.");

export type ConditionType = z.infer<typeof Condition>;
export type ArtifactType = z.infer<typeof Artifact>;
