// source.ferry.dev/v1 OCIRepository: Flux's OCIRepository fields and semantics under Ferry's API group.
import { z } from "zod";
import { Artifact, Condition, Digest, Duration, DurationWithoutHours, LocalObjectReference, MAX_LIST_ITEMS, ObjectName } from "./meta.ts";

export const SOURCE_GROUP = "source.ferry.dev";
export const SOURCE_VERSION = "v1";

/** The OCI distribution spec's tag grammar. */
const Tag = z.string().regex(/^[A-Za-z0-9_][A-Za-z0-9_.-]{0,127}$/);

/** RFC 6838 media types, as the OCI image spec's descriptors take them. */
const MediaType = z.string().max(255).regex(/^[A-Za-z0-9][A-Za-z0-9!#$&^_.+-]{0,126}\/[A-Za-z0-9][A-Za-z0-9!#$&^_.+-]{0,126}$/);

// Regular expressions the controller compiles for every tag or certificate it checks; a length bound caps what one
// costs to compile and match.
const MAX_REGEX_LENGTH = 1024;

/** Masterminds/semver's own bound on a constraint (MaxConstraintLen); the controller refuses longer ones anyway. */
const MAX_SEMVER_LENGTH = 512;

/** oci:// with a registry host (253) and port, and a repository path (255), with room to spare. */
const MAX_URL_LENGTH = 1024;

/** A .gitignore-format list is matched against every file of the artifact. */
const MAX_IGNORE_LENGTH = 65_536;

export const OCIRepositoryRef = z
  .object({
    digest: Digest.optional().describe("Pin to this manifest digest; takes precedence over semver and tag."),
    semver: z.string().max(MAX_SEMVER_LENGTH).optional().describe("A Masterminds semver constraint (comma is AND, || is OR, -0 admits prereleases); the highest matching tag is used. Takes precedence over tag."),
    semverFilter: z.string().max(MAX_REGEX_LENGTH).optional().describe("A regular expression tags must match before the semver range is applied."),
    tag: Tag.optional().describe("The tag to follow; latest when no reference is given."),
  })
  .describe("Which artifact to follow: digest > semver > tag > latest.");

export const OCILayerSelector = z.object({
  mediaType: MediaType.optional().describe("The first layer with this media type is used; otherwise the first layer."),
  operation: z.enum(["extract", "copy"]).optional().describe("extract the tar+gzip layer (default) or copy the blob as is."),
});

export const OIDCIdentityMatch = z.object({
  issuer: z.string().min(1).max(MAX_REGEX_LENGTH).describe("Regular expression the certificate's OIDC issuer must match."),
  subject: z.string().min(1).max(MAX_REGEX_LENGTH).describe("Regular expression the certificate's identity must match."),
});

export const OCIRepositoryVerification = z.object({
  provider: z.enum(["cosign", "notation"]).default("cosign").describe("cosign; notation (Flux's other verifier) is not supported yet."),
  secretRef: LocalObjectReference.optional().describe("A Secret whose keys ending in .pub are cosign public keys."),
  matchOIDCIdentity: z.array(OIDCIdentityMatch).max(MAX_LIST_ITEMS).optional().describe("Keyless: any matching identity is accepted."),
  trustedRootSecretRef: LocalObjectReference.optional().describe("A Secret with trusted_root.json for a private Sigstore."),
});

export const OCIRepositorySpec = z.object({
  url: z.string().max(MAX_URL_LENGTH).regex(/^oci:\/\/.*$/).describe("oci://<host>[:port]/<repository>, without a tag."),
  ref: OCIRepositoryRef.optional(),
  layerSelector: OCILayerSelector.optional(),
  provider: z
    .enum(["generic", "aws", "azure", "gcp"])
    .default("generic")
    .describe("Credential provider: generic uses secretRef and serviceAccountName; aws, azure and gcp (workload identity) are not supported yet."),
  secretRef: LocalObjectReference.optional().describe("A kubernetes.io/dockerconfigjson Secret with registry credentials."),
  serviceAccountName: ObjectName.optional().describe("A ServiceAccount whose imagePullSecrets are used as credentials."),
  certSecretRef: LocalObjectReference.optional().describe("A Secret with ca.crt, and tls.crt/tls.key for mutual TLS."),
  proxySecretRef: LocalObjectReference.optional().describe("A Secret with address, username and password of an HTTP(S) proxy."),
  verify: OCIRepositoryVerification.optional().describe("Verify the artifact's signature before it is used."),
  interval: Duration.describe("How often the reference is resolved again."),
  timeout: DurationWithoutHours.default("60s").describe("Timeout for registry operations."),
  ignore: z.string().max(MAX_IGNORE_LENGTH).optional().describe(
    "Paths to leave out, in .gitignore format, after the artifact's .sourceignore files; with no pattern from either, Flux's default exclusions apply.",
  ),
  insecure: z.boolean().optional().describe("Use plain HTTP."),
  suspend: z.boolean().optional().describe("Stop reconciling."),
});

export const OCIRepositoryStatus = z.object({
  observedGeneration: z.int().optional(),
  conditions: z.array(Condition).optional(),
  url: z.string().optional(),
  artifact: Artifact.optional(),
  observedIgnore: z.string().optional(),
  observedLayerSelector: OCILayerSelector.optional(),
  lastHandledReconcileAt: z.string().optional(),
});

export type OCIRepositorySpecType = z.infer<typeof OCIRepositorySpec>;
export type OCIRepositoryStatusType = z.infer<typeof OCIRepositoryStatus>;
