// source.ferry.dev/v1 OCIRepository: Flux's OCIRepository fields and semantics under Ferry's API group.
import { z } from "zod";
import { Artifact, Condition, Duration, LocalObjectReference } from "./meta.ts";

export const SOURCE_GROUP = "source.ferry.dev";
export const SOURCE_VERSION = "v1";

export const OCIRepositoryRef = z
  .object({
    digest: z.string().regex(/^sha(256|512):[a-f0-9]+$/).optional().describe("Pin to this manifest digest; takes precedence over semver and tag."),
    semver: z.string().optional().describe("A semver range; the highest matching tag is used. Takes precedence over tag."),
    semverFilter: z.string().optional().describe("A regular expression tags must match before the semver range is applied."),
    tag: z.string().optional().describe("The tag to follow; latest when no reference is given."),
  })
  .describe("Which artifact to follow: digest > semver > tag > latest.");

export const OCILayerSelector = z.object({
  mediaType: z.string().optional().describe("The first layer with this media type is used; otherwise the first layer."),
  operation: z.enum(["extract", "copy"]).optional().describe("extract the tar+gzip layer (default) or copy the blob as is."),
});

export const OIDCIdentityMatch = z.object({
  issuer: z.string().min(1).describe("Regular expression the certificate's OIDC issuer must match."),
  subject: z.string().min(1).describe("Regular expression the certificate's identity must match."),
});

export const OCIRepositoryVerification = z.object({
  provider: z.enum(["cosign"]).default("cosign"),
  secretRef: LocalObjectReference.optional().describe("A Secret whose keys ending in .pub are cosign public keys."),
  matchOIDCIdentity: z.array(OIDCIdentityMatch).optional().describe("Keyless: any matching identity is accepted."),
  trustedRootSecretRef: LocalObjectReference.optional().describe("A Secret with trusted_root.json for a private Sigstore."),
});

export const OCIRepositorySpec = z.object({
  url: z.string().regex(/^oci:\/\/.*$/).describe("oci://<host>[:port]/<repository>, without a tag."),
  ref: OCIRepositoryRef.optional(),
  layerSelector: OCILayerSelector.optional(),
  provider: z.enum(["generic"]).default("generic").describe("Credential provider; generic uses secretRef and serviceAccountName."),
  secretRef: LocalObjectReference.optional().describe("A kubernetes.io/dockerconfigjson Secret with registry credentials."),
  serviceAccountName: z.string().optional().describe("A ServiceAccount whose imagePullSecrets are used as credentials."),
  certSecretRef: LocalObjectReference.optional().describe("A Secret with ca.crt, and tls.crt/tls.key for mutual TLS."),
  proxySecretRef: LocalObjectReference.optional().describe("A Secret with address, username and password of an HTTP(S) proxy."),
  verify: OCIRepositoryVerification.optional().describe("Verify the artifact's signature before it is used."),
  interval: Duration.describe("How often the reference is resolved again."),
  timeout: Duration.default("60s").describe("Timeout for registry operations."),
  ignore: z.string().optional().describe("Paths to leave out, in .gitignore format."),
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
