// Types shared by Ferry's APIs, mirroring Kubernetes' metav1.Condition and Flux's meta.Artifact.
import { z } from "zod";
import { DURATION_PATTERN, DURATION_WITHOUT_HOURS_PATTERN } from "./duration.ts";

/** Go-style duration as Flux's CRDs accept it: 30s, 5m, 1h30m, 500ms. */
export const Duration = z.string().regex(DURATION_PATTERN).describe("A duration such as 30s, 5m or 1h30m.");

/** Flux's pattern where it takes no hours (OCIRepository's timeout): 30s, 5m, 90m. */
export const DurationWithoutHours = z.string().regex(DURATION_WITHOUT_HOURS_PATTERN).describe("A duration such as 30s or 5m.");

// Kubernetes' own name rules (apimachinery's IsDNS1123Subdomain and IsDNS1123Label): a reference that breaks them
// names an object that cannot exist, so it is refused when applied rather than reported missing for ever.
const DNS1123_SUBDOMAIN = /^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$/;
const DNS1123_LABEL = /^[a-z0-9]([-a-z0-9]*[a-z0-9])?$/;

/** The name of a Secret, ConfigMap, ServiceAccount or Ferry object. */
export const ObjectName = z.string().max(253).regex(DNS1123_SUBDOMAIN);

export const NamespaceName = z.string().max(63).regex(DNS1123_LABEL);

/** OCI digests in the algorithms the OCI image spec registers; anything weaker is refused. */
export const Digest = z.string().regex(/^(sha256:[a-f0-9]{64}|sha512:[a-f0-9]{128})$/);

/** Lists in a spec are cut off far above real use, so one object cannot make a reconcile do unbounded work. */
export const MAX_LIST_ITEMS = 256;

export const LocalObjectReference = z
  .object({ name: ObjectName.describe("Name of the referent.") })
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

/** A refused spec in one line, each issue named by its field as the apiserver would: spec.patches[0].patch: … */
export function describeSpecIssues(error: z.ZodError): string {
  const field = (path: readonly PropertyKey[]) =>
    path.reduce<string>((name, part) => (typeof part === "number" ? `${name}[${part}]` : `${name}.${String(part)}`), "spec");
  return error.issues.map((issue) => `${field(issue.path)}: ${issue.message}`).join("; ");
}

export type ConditionType = z.infer<typeof Condition>;
export type ArtifactType = z.infer<typeof Artifact>;
