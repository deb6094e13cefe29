// The OCIRepository reconciler: resolve the ref to a digest with one request; when the digest is the one in
// storage, stop there. Otherwise verify (when asked), pull by digest, extract into the cache, publish the artifact.
// A failed verification or fetch never replaces the last good artifact.
import { pendingRequest } from "../api/flux-annotations.ts";
import { unsupportedProvider, unsupportedVerifyProvider } from "../api/not-yet-supported.ts";
import { mkdtemp, rename, rm } from "node:fs/promises";
import { join } from "node:path";
import { formatDuration, specTimerMs } from "../api/duration.ts";
import { type ConditionType, describeSpecIssues } from "../api/meta.ts";
import { OCIRepositorySpec, type OCIRepositorySpecType, type OCIRepositoryStatusType, SOURCE_GROUP, SOURCE_VERSION } from "../api/source.ts";
import { type ArtifactCache, extractionVariant } from "../artifact/cache.ts";
import { ArtifactFormatError, UnsafeArchiveError } from "../artifact/errors.ts";
import { DEFAULT_EXTRACT_LIMITS, extractArchiveFile } from "../artifact/extract.ts";
import { applySourceIgnore, SourceIgnoreError } from "../artifact/ignore.ts";
import { inspectArtifact } from "../artifact/pull.ts";
import { deadlineExceeded, deadlineSignal, outsideDeadline, withDeadline } from "../deadline.ts";
import { FerryError } from "../errors.ts";
import { GoRegexp } from "../go-regexp.ts";
import type { CustomObject, KubeClient, ResourceType } from "../kube/client.ts";
import type { RegistryClient } from "../registry/client.ts";
import { clientKey, type KeyPart, RegistryClientCache } from "../registry/client-cache.ts";
import { highestMatchingTag, SemverConstraints } from "../registry/masterminds-semver.ts";
import type { ClientOptions } from "../registry/client.ts";
import { type CredentialSource, credentialsFromDockerConfig, type DockerConfig, parseDockerConfig } from "../registry/credentials.ts";
import { AuthenticationError, type InvalidReferenceError } from "../registry/errors.ts";
import type { Descriptor, ImageManifest } from "../registry/oci.ts";
import { parseReference, type Reference } from "../registry/reference.ts";
import { refusedDigest } from "../signing/bundle.ts";
import { VerificationError } from "../signing/errors.ts";
import { parsePublicKey } from "../signing/keys.ts";
import { publicGoodTrustedRoot } from "../signing/trusted-root.ts";
import { describeSigner, fingerprintInputs, verifyArtifact, type VerificationInputs } from "../signing/verify.ts";
import { findCondition, removeCondition, setCondition } from "./conditions.ts";

export const OCI_REPOSITORY: ResourceType = { group: SOURCE_GROUP, version: SOURCE_VERSION, plural: "ocirepositories" };
export const FINALIZER = "finalizers.ferry.dev";
export { FERRY_REQUESTED_AT as REQUESTED_AT_ANNOTATION } from "../api/flux-annotations.ts";
export const IGNORE_TLOG_ANNOTATION = "verify.ferry.dev/insecure-ignore-tlog";
const KIND = "OCIRepository";
/** Helm's chart layer; with it selected, semver tags are read as Helm writes them (source-controller#1834). */
const HELM_CHART_LAYER_MEDIA_TYPE = "application/vnd.cncf.helm.chart.content.v1.tar+gzip";

export type OCIRepository = CustomObject<OCIRepositorySpecType, OCIRepositoryStatusType>;

/** A copied layer's file name: its title annotation when that is a safe single name, else its digest. */
export function copiedFileName(title: string | undefined, digest: string): string {
  if (title && /^[A-Za-z0-9._-]+$/.test(title) && title !== "." && title !== "..") return title;
  return `${digest.replace(":", "-")}.blob`;
}

export interface ReconcilerDeps {
  readonly kube: KubeClient;
  readonly cache: ArtifactCache;
  readonly log: (message: string, fields?: Record<string, unknown>) => void;
  /** Kubernetes Events are best effort: a failure to record one never fails a reconcile. */
  readonly recordEvents?: boolean;
  /** The largest layer downloaded, and the most its tree may expand to (--max-artifact-size); default 512 MiB. */
  readonly maxArtifactBytes?: number;
  /** Registry clients shared across reconciles; the reconciler keeps its own when not given. */
  readonly registryClients?: RegistryClientCache;
}

/**
 * The condition reasons a failed reconcile reports: source-controller's own, so tools written for Flux read them,
 * plus ProviderNotSupported for cloud workload identity, which Ferry does not do yet.
 */
export const OCI_REPOSITORY_FAILURE_REASONS = [
  "AuthenticationFailed",
  "OCIArtifactLayerOperationFailed",
  "OCIArtifactPullFailed",
  "ProviderNotSupported",
  "ReadOperationFailed",
  "SourceIgnoreError",
  "URLInvalid",
  "VerificationError",
] as const;
export type OCIRepositoryFailureReason = (typeof OCI_REPOSITORY_FAILURE_REASONS)[number];

/** A failure with the condition reason it reports; `stall` means the spec must change first. */
class ReconcileFailure extends Error {
  readonly reason: OCIRepositoryFailureReason;
  readonly stall: boolean;
  /** The condition that reports it: SourceVerified=False for verification failures, else FetchFailed=True. */
  readonly condition: "SourceVerified" | "FetchFailed";
  constructor(
    reason: OCIRepositoryFailureReason,
    message: string,
    options: { stall?: boolean; cause?: unknown; verification?: boolean } = {},
  ) {
    super(message, { cause: options.cause });
    this.reason = reason;
    this.stall = options.stall ?? false;
    this.condition = options.verification || reason === "VerificationError" ? "SourceVerified" : "FetchFailed";
  }
}

/** What spec.verify trusts, read from its Secrets, and the fingerprint a verification with it is recorded under. */
interface VerificationTrust {
  readonly inputs: VerificationInputs;
  readonly fingerprint: string;
}

/** How an artifact was verified, as status records it: who signed, and under which verification inputs. */
export function verificationRecord(signer: string, fingerprint: string): string {
  return `${signer} under verification inputs ${fingerprint}`;
}

/** ArtifactInStorage's message. For a verified artifact it carries the record, so it outlives a later failure. */
export function storedArtifactMessage(revision: string, verifiedWith?: string): string {
  return `stored artifact for revision '${revision}'${verifiedWith ? `, verified with ${verifiedWith}` : ""}`;
}

/**
 * The verification status records for the stored `revision` under the inputs with `fingerprint`, if any. Nothing
 * when the artifact was stored unverified, or verified with other keys or policies: it must be verified again.
 */
export function recordedVerification(
  conditions: readonly ConditionType[] | undefined,
  revision: string,
  fingerprint: string,
): string | undefined {
  const stored = findCondition(conditions, "ArtifactInStorage");
  const prefix = `${storedArtifactMessage(revision)}, verified with `;
  const suffix = ` under verification inputs ${fingerprint}`;
  if (stored?.status !== "True" || !stored.message.startsWith(prefix) || !stored.message.endsWith(suffix)) return undefined;
  return stored.message.slice(prefix.length);
}

/** Status without its artifact; a JSON merge patch removes a field only when it is sent as null. */
function withoutArtifact(status: OCIRepositoryStatusType): OCIRepositoryStatusType {
  if (!status.artifact && status.url === undefined) return status;
  return { ...status, artifact: null, url: null } as unknown as OCIRepositoryStatusType;
}

/** As source-controller words it: the provider is 'cosign keyless' when no key Secret is given. */
function verificationFailure(error: unknown, spec: OCIRepositorySpecType): ReconcileFailure {
  const message = error instanceof FerryError ? error.message : String(error);
  const provider = spec.verify?.secretRef ? "cosign" : "cosign keyless";
  return new ReconcileFailure("VerificationError", `failed to verify the signature using provider '${provider}': ${message}`, { cause: error });
}

function fetchReason(error: unknown): OCIRepositoryFailureReason {
  if (error instanceof AuthenticationError) return "AuthenticationFailed";
  if (error instanceof ArtifactFormatError || error instanceof UnsafeArchiveError) return "OCIArtifactLayerOperationFailed";
  if (error instanceof SourceIgnoreError) return "SourceIgnoreError";
  return "OCIArtifactPullFailed";
}

/**
 * source-controller's selectLayer: the first layer of `mediaType`, else none; without one, the first layer, whatever
 * its type (`ferry pull` prefers Flux's content layer; an OCIRepository takes the first, as Flux does).
 */
function selectedLayer(manifest: ImageManifest, mediaType: string | undefined): Descriptor {
  const layer = mediaType ? manifest.layers.find((candidate) => candidate.mediaType === mediaType) : manifest.layers[0];
  if (layer) return layer;
  throw new ArtifactFormatError(mediaType ? `failed to find layer with media type '${mediaType}' in artifact` : "no layers found in artifact");
}

/** What #transport read: the client options, and the material they were made from, for the shared client's key. */
interface Transport {
  readonly options: Partial<ClientOptions>;
  readonly keyParts: readonly KeyPart[];
}

export class OCIRepositoryReconciler {
  readonly #deps: ReconcilerDeps;
  readonly #clients: RegistryClientCache;

  constructor(deps: ReconcilerDeps) {
    this.#deps = deps;
    this.#clients = deps.registryClients ?? new RegistryClientCache();
  }

  /** Closes the registry connections this reconciler keeps. */
  async close(): Promise<void> {
    await this.#clients.close();
  }

  /**
   * One reconcile, bounded by three times the spec's timeout (a fetch is several requests, each bounded by the
   * timeout): tag listing, verification, download and every Kubernetes request stop there.
   */
  reconcile(object: OCIRepository): Promise<{ requeueAfterMs?: number }> {
    const parsed = OCIRepositorySpec.safeParse(object.spec);
    // An invalid spec only writes status (InvalidSpec): the schema's default timeout is enough for that.
    const timeoutMs = specTimerMs(parsed.success ? parsed.data.timeout : "60s");
    return withDeadline(timeoutMs * 3, () => this.#reconcile(object));
  }

  async #reconcile(object: OCIRepository): Promise<{ requeueAfterMs?: number }> {
    const { metadata } = object;
    const { kube, cache } = this.#deps;
    if (metadata.deletionTimestamp) {
      this.#clients.forget(`${metadata.namespace}/${metadata.name}`);
      await cache.remove(KIND, metadata.namespace, metadata.name);
      if (metadata.finalizers?.includes(FINALIZER)) {
        await kube.setFinalizers(OCI_REPOSITORY, metadata, metadata.finalizers.filter((finalizer) => finalizer !== FINALIZER));
      }
      this.#deps.log("artifact cache removed", { object: `${metadata.namespace}/${metadata.name}` });
      return {};
    }
    const parsed = OCIRepositorySpec.safeParse(object.spec);
    if (!parsed.success) return this.#invalidSpec(object, describeSpecIssues(parsed.error));
    if (!metadata.finalizers?.includes(FINALIZER)) {
      await kube.setFinalizers(OCI_REPOSITORY, metadata, [...(metadata.finalizers ?? []), FINALIZER]);
    }
    const spec = parsed.data;
    if (spec.suspend) return {};

    const generation = metadata.generation ?? 0;
    const status: OCIRepositoryStatusType = { ...object.status };
    let conditions: ConditionType[] = [...(status.conditions ?? [])];
    const requestedAt = pendingRequest(metadata.annotations);
    const interval = specTimerMs(spec.interval);
    const jittered = Math.round(interval * (0.95 + Math.random() * 0.1));
    const handled = requestedAt ? { lastHandledReconcileAt: requestedAt } : {};
    let trust: VerificationTrust | undefined;

    try {
      // kstatus: while a new revision is being fetched, say so (Reconciling=True, Ready=Unknown).
      const progressing = async (message: string) => {
        conditions = setCondition(conditions, "Reconciling", "True", "Progressing", message, generation);
        conditions = setCondition(conditions, "Ready", "Unknown", "Progressing", "reconciliation in progress", generation);
        await this.#writeStatus(object, { ...status, conditions });
      };
      if (spec.verify) trust = await this.#verificationTrust(metadata.namespace, spec, metadata.annotations);
      const outcome = await this.#fetch(object, spec, status, progressing, trust);
      conditions = removeCondition(removeCondition(removeCondition(conditions, "FetchFailed"), "Stalled"), "Reconciling");
      if (outcome.verifiedWith) {
        conditions = setCondition(conditions, "SourceVerified", "True", "Succeeded", `verified signature of revision ${outcome.revision} with ${outcome.verifiedWith}`, generation);
      } else conditions = removeCondition(conditions, "SourceVerified");
      const message = storedArtifactMessage(outcome.revision);
      conditions = setCondition(conditions, "ArtifactInStorage", "True", "Succeeded", storedArtifactMessage(outcome.revision, outcome.verifiedWith), generation);
      conditions = setCondition(conditions, "Ready", "True", "Succeeded", message, generation);
      await this.#writeStatus(object, { ...status, ...outcome.status, conditions, observedGeneration: generation, ...handled });
      if (outcome.status.artifact) {
        const origin = outcome.status.artifact.metadata?.["org.opencontainers.image.revision"];
        await this.#event(object, "Normal", "NewArtifact", `stored artifact with revision '${outcome.revision}' from '${spec.url}'${origin ? `, origin revision '${origin}'` : ""}`, {
          [`${SOURCE_GROUP}/revision`]: outcome.revision,
          [`${SOURCE_GROUP}/digest`]: outcome.status.artifact.digest ?? "",
        });
      }
      return { requeueAfterMs: jittered };
    } catch (error) {
      const failure = deadlineExceeded()
        ? new ReconcileFailure(fetchReason(error), `reconciliation did not finish within three times its timeout of ${formatDuration(specTimerMs(spec.timeout))}: ${(error as Error).message}`, { cause: error })
        : error instanceof ReconcileFailure
          ? error
          : new ReconcileFailure(fetchReason(error), (error as Error).message, { cause: error });
      if (failure.condition === "SourceVerified") {
        conditions = setCondition(conditions, "SourceVerified", "False", failure.reason, failure.message, generation);
      } else {
        conditions = setCondition(conditions, "FetchFailed", "True", failure.reason, failure.message, generation);
      }
      // A stall belongs to the spec it was found in: one that has since changed and now fails to fetch is not stalled.
      conditions = failure.stall
        ? setCondition(conditions, "Stalled", "True", failure.reason, failure.message, generation)
        : removeCondition(conditions, "Stalled");
      // Under spec.verify an artifact is offered only while it is verified with the current keys and policies: one
      // stored unverified, or verified with a key since removed, is withdrawn (as a missing artifact, Kustomizations
      // wait for it) rather than kept as the last good one.
      const withdraw = spec.verify !== undefined && status.artifact !== undefined
        && !(trust && recordedVerification(status.conditions, status.artifact.revision, trust.fingerprint));
      const readyMessage = withdraw ? `${failure.message}; the stored artifact is withdrawn: it is not verified with the current verification inputs` : failure.message;
      conditions = setCondition(conditions, "Ready", "False", failure.reason, readyMessage, generation);
      if (withdraw) {
        conditions = removeCondition(conditions, "ArtifactInStorage");
        // A SourceVerified=True left from the old keys described the withdrawn artifact.
        if (findCondition(conditions, "SourceVerified")?.status === "True") conditions = removeCondition(conditions, "SourceVerified");
      }
      const failed: OCIRepositoryStatusType = { ...status, conditions, observedGeneration: generation, ...handled };
      await this.#writeStatus(object, withdraw ? withoutArtifact(failed) : failed);
      await this.#event(object, "Warning", failure.reason, readyMessage);
      if (failure.stall) return {};
      throw failure;
    }
  }

  /** A spec the schema refuses (the CRD and this controller disagree): stall until the spec changes. */
  async #invalidSpec(object: OCIRepository, message: string): Promise<{ requeueAfterMs?: number }> {
    const generation = object.metadata.generation ?? 0;
    let conditions = setCondition(object.status?.conditions ?? [], "Ready", "False", "InvalidSpec", message, generation);
    conditions = removeCondition(conditions, "Reconciling");
    conditions = setCondition(conditions, "Stalled", "True", "InvalidSpec", `Reconciliation failed terminally due to configuration error: ${message}`, generation);
    await this.#writeStatus(object, { ...object.status, conditions, observedGeneration: generation });
    await this.#event(object, "Warning", "InvalidSpec", message);
    return {};
  }

  async #event(object: OCIRepository, type: "Normal" | "Warning", reason: string, message: string, annotations?: Record<string, string>) {
    if (!this.#deps.recordEvents) return;
    // Events and status report the reconcile, so they are sent even after its deadline passed.
    await outsideDeadline(() => this.#deps.kube.event(object, type, reason, message, annotations)).catch((error: unknown) => {
      this.#deps.log("recording an event failed", { reason, error: (error as Error).message });
    });
  }

  async #writeStatus(object: OCIRepository, status: OCIRepositoryStatusType): Promise<void> {
    if (JSON.stringify(status) === JSON.stringify(object.status ?? {})) return;
    await outsideDeadline(() => this.#deps.kube.patchStatus(OCI_REPOSITORY, object.metadata.namespace, object.metadata.name, status));
  }

  async #secret(namespace: string, name: string, purpose: string): Promise<Record<string, Buffer>> {
    const data = await this.#deps.kube.secretData(namespace, name);
    if (!data) throw new ReconcileFailure("AuthenticationFailed", `${purpose} secret '${namespace}/${name}' not found`);
    return data;
  }

  /** Registry credentials (secretRef, then the ServiceAccount's imagePullSecrets), TLS material and proxy. */
  async #transport(namespace: string, spec: OCIRepositorySpecType): Promise<Transport> {
    const secretNames = [
      ...(spec.secretRef ? [spec.secretRef.name] : []),
      ...(spec.serviceAccountName ? await this.#deps.kube.imagePullSecrets(namespace, spec.serviceAccountName) : []),
    ];
    // As source-controller: a cloud provider is asked for credentials only when no static ones are configured.
    // Pulling anonymously instead of with the cloud's credentials would hide the problem: the source stalls.
    const unsupported = unsupportedProvider(spec.provider, secretNames.length > 0);
    if (unsupported) throw new ReconcileFailure("ProviderNotSupported", unsupported, { stall: true });
    const configs: DockerConfig[] = [];
    // The shared client's key: every byte that decides what the client sends and trusts (hashed, never logged).
    const keyParts: KeyPart[] = [];
    for (const name of secretNames) {
      const text = (await this.#secret(namespace, name, "auth"))[".dockerconfigjson"]?.toString("utf8");
      if (!text) throw new ReconcileFailure("AuthenticationFailed", `auth secret '${namespace}/${name}' has no .dockerconfigjson`);
      configs.push(parseDockerConfig(text, `secret ${name}`));
      keyParts.push("auth", text);
    }
    const credentials: CredentialSource | undefined = configs.length === 0
      ? undefined
      : async (registry) => {
        for (const config of configs) {
          const found = await credentialsFromDockerConfig(config, registry, "auth secret", { allowHelpers: false });
          if (found) return found;
        }
        return undefined;
      };
    const options: { -readonly [K in keyof ClientOptions]?: ClientOptions[K] } = credentials ? { credentials } : {};
    if (spec.certSecretRef) {
      const data = await this.#secret(namespace, spec.certSecretRef.name, "TLS");
      const ca = data["ca.crt"];
      const cert = data["tls.crt"];
      const key = data["tls.key"];
      if (!ca && !cert) throw new ReconcileFailure("AuthenticationFailed", `TLS secret '${spec.certSecretRef.name}' has neither ca.crt nor tls.crt`);
      if ((cert === undefined) !== (key === undefined)) {
        throw new ReconcileFailure("AuthenticationFailed", `TLS secret '${spec.certSecretRef.name}' needs both tls.crt and tls.key`);
      }
      Object.assign(options, { ...(ca ? { ca } : {}), ...(cert ? { cert } : {}), ...(key ? { key } : {}) });
      keyParts.push("tls", ca, cert, key);
    }
    if (spec.proxySecretRef) {
      const data = await this.#secret(namespace, spec.proxySecretRef.name, "proxy");
      const address = data.address?.toString("utf8");
      if (!address) throw new ReconcileFailure("AuthenticationFailed", `proxy secret '${spec.proxySecretRef.name}' has no address`);
      const username = data.username?.toString("utf8");
      const password = data.password?.toString("utf8");
      options.proxy = { url: address, ...(username !== undefined ? { username } : {}), ...(password !== undefined ? { password } : {}) };
      keyParts.push("proxy", address, username, password);
    }
    return { options, keyParts };
  }

  /**
   * ref.semver as source-controller resolves it: list the tags, keep those semverFilter matches, and take the highest
   * that Masterminds' constraint admits (src/registry/masterminds-semver.ts). Helm chart tags spell semver's `+` as
   * `_`, since `+` is not allowed in a tag; with the chart layer selected they are read, and written back, that way.
   */
  async #resolveTag(client: RegistryClient, base: Reference, spec: OCIRepositorySpecType): Promise<string> {
    const ref = spec.ref ?? {};
    if (!ref.semver) return ref.tag ?? "latest";
    // source-controller's wording, so a message reads the same in either controller.
    const failure = (message: string, options: { stall?: boolean; cause?: unknown } = {}) =>
      new ReconcileFailure("ReadOperationFailed", `failed to determine the artifact tag for '${spec.url}': ${message}`, options);
    let constraints: SemverConstraints;
    try {
      constraints = SemverConstraints.parse(ref.semver);
    } catch (error) {
      throw failure(`semver '${ref.semver}' parse error: ${(error as Error).message}`, { stall: true, cause: error });
    }
    let filter: GoRegexp | undefined;
    try {
      filter = ref.semverFilter ? GoRegexp.compile(ref.semverFilter) : undefined;
    } catch (error) {
      throw failure(`invalid semverFilter: ${(error as Error).message}`, { stall: true, cause: error });
    }
    const tags = await client.listTags(base.registry, base.repository).catch((error: unknown) => {
      throw failure(`listing tags failed: ${(error as Error).message}`, { cause: error });
    });
    const chart = spec.layerSelector?.mediaType === HELM_CHART_LAYER_MEDIA_TYPE;
    const candidates = tags.filter((tag) => !filter || filter.test(tag)).map((tag) => (chart ? tag.replaceAll("_", "+") : tag));
    const best = highestMatchingTag(candidates, constraints);
    if (best === undefined) throw failure(`no match found for semver: ${ref.semver}`);
    return chart ? best.replaceAll("+", "_") : best;
  }

  async #fetch(
    object: OCIRepository,
    spec: OCIRepositorySpecType,
    status: OCIRepositoryStatusType,
    progressing: (message: string) => Promise<void>,
    trust: VerificationTrust | undefined,
  ) {
    const { metadata } = object;

    let base: Reference;
    try {
      base = parseReference(spec.url, { requireScheme: true });
    } catch (error) {
      throw new ReconcileFailure("URLInvalid", (error as InvalidReferenceError).message, { stall: true });
    }
    if (base.tag || base.digest) {
      throw new ReconcileFailure("URLInvalid", `URL must not contain a tag or digest; remove ':${base.tag ?? base.digest}' and use spec.ref`, { stall: true });
    }
    const transport = await this.#transport(metadata.namespace, spec);
    const deadline = deadlineSignal();
    const insecure = spec.insecure ?? false;
    const timeoutMs = specTimerMs(spec.timeout);
    // One client per registry, credentials and transport settings, shared by every reconcile that uses the same:
    // its connections and tokens outlive a reconcile, so an unchanged source costs one manifest request. The
    // reconcile's deadline bounds its own requests through the lease.
    const key = clientKey(base.registry, ["insecure", insecure, "timeout", timeoutMs, ...transport.keyParts]);
    const lease = this.#clients.acquire(`${metadata.namespace}/${metadata.name}`, key, () => ({
      insecure,
      timeoutMs,
      userAgent: "ferry-controller",
      ...transport.options,
    }), deadline);
    const client = lease.client;
    try {
      const signal = deadline;
      let reference: Reference;
      let revision: string;
      if (spec.ref?.digest) {
        reference = { ...base, digest: spec.ref.digest };
        revision = spec.ref.digest;
        await client.resolve(reference, signal);
      } else {
        const tag = await this.#resolveTag(client, base, spec);
        reference = { ...base, tag };
        const resolved = await client.resolve(reference, signal);
        reference = { ...base, tag, digest: resolved.digest };
        revision = `${tag}@${resolved.digest}`;
      }
      const digest = reference.digest as string;
      // What is stored for a digest depends on how it was extracted: each way gets its own immutable entry.
      // `ignoreRules` names the rules an extracted tree was filtered with: entries stored under older rules (spec.ignore
      // only, no defaults, root .sourceignore only) are extracted again rather than served as if they followed Flux's.
      const copy = spec.layerSelector?.operation === "copy";
      const variant = extractionVariant({ ignore: spec.ignore, layerSelector: spec.layerSelector, ...(copy ? {} : { ignoreRules: "flux-sourceignore" }) });
      const path = this.#deps.cache.relativePath(KIND, metadata.namespace, metadata.name, digest, variant);
      // Verified before with exactly the current keys and policies; a changed key Secret is seen on the next reconcile.
      const recorded = trust ? recordedVerification(status.conditions, revision, trust.fingerprint) : undefined;
      const unchanged = status.artifact?.revision === revision
        && status.artifact.path === path
        && JSON.stringify(status.observedLayerSelector ?? {}) === JSON.stringify(spec.layerSelector ?? {})
        && status.observedIgnore === spec.ignore
        && (object.status?.observedGeneration ?? -1) === (metadata.generation ?? 0)
        && (!trust || recorded !== undefined)
        && (await this.#deps.cache.has(path));
      if (unchanged) return { revision, status: {} as Partial<OCIRepositoryStatusType>, verifiedWith: recorded };

      await progressing(`building artifact: new revision '${revision}' for '${spec.url}'`);
      const verifiedWith = trust ? await this.#verify(client, reference, trust, spec) : undefined;
      const info = await inspectArtifact(client, { registry: base.registry, repository: base.repository, digest }, signal);
      const layer = selectedLayer(info.manifest, spec.layerSelector?.mediaType);
      // The layer is bound to the signed manifest only as strongly as its digest: md5 or sha1 would let it be swapped.
      const weakLayer = refusedDigest(layer.digest, "layer");
      if (weakLayer) throw new ArtifactFormatError(weakLayer.message, { cause: weakLayer });
      const limits = { ...DEFAULT_EXTRACT_LIMITS, ...(this.#deps.maxArtifactBytes ? { maxBytes: this.#deps.maxArtifactBytes } : {}) };
      const staging = await this.#deps.cache.stage(KIND, metadata.namespace, metadata.name);
      const scratch = await mkdtemp(`${staging}-download-`);
      try {
        const blob = join(scratch, "layer");
        await client.fetchBlobToFile(base.registry, base.repository, layer, blob, { signal, maxBytes: limits.maxBytes });
        if (copy) {
          // The blob is kept as it is (a Helm chart, say), under its title when that is a plain file name.
          await rename(blob, join(staging, copiedFileName(layer.annotations?.["org.opencontainers.image.title"], layer.digest)));
        } else {
          await extractArchiveFile(blob, staging, limits);
          // As source-controller archives an extracted layer: the tree's .sourceignore files and spec.ignore, or with
          // neither Flux's default exclusions (VCS files, images, archives, CI configuration).
          await applySourceIgnore(staging, spec.ignore, signal ? { signal } : {});
        }
        await this.#deps.cache.publish(staging, path);
      } finally {
        await rm(scratch, { recursive: true, force: true });
        await rm(staging, { recursive: true, force: true });
      }
      await this.#deps.cache.prune(KIND, metadata.namespace, metadata.name, path);
      this.#deps.log("stored new artifact", { object: `${metadata.namespace}/${metadata.name}`, revision });
      return {
        revision,
        verifiedWith,
        status: {
          artifact: {
            path,
            url: `file://${join(this.#deps.cache.root, path)}`,
            revision,
            digest: layer.digest,
            lastUpdateTime: `${new Date().toISOString().slice(0, 19)}Z`,
            size: await this.#deps.cache.size(path),
            metadata: { ...info.annotations },
          },
          url: `file://${join(this.#deps.cache.root, path)}`,
          // Status is written as a merge patch: a field that no longer applies must be sent as null to go away, or
          // the stale value would make every later reconcile see a changed spec and download again.
          observedLayerSelector: spec.layerSelector ?? null,
          observedIgnore: spec.ignore ?? null,
        } as unknown as Partial<OCIRepositoryStatusType>,
      };
    } finally {
      lease.release();
    }
  }

  /**
   * Reads what spec.verify trusts, in source-controller's order: the public keys of secretRef (every `.pub`) when it
   * is set, else the keyless policies with their trusted root. A Secret that is missing or holds no usable key fails
   * verification, as a wrong key does.
   */
  async #verificationTrust(
    namespace: string,
    spec: OCIRepositorySpecType,
    annotations: Record<string, string> | undefined,
  ): Promise<VerificationTrust> {
    const verify = spec.verify;
    const unsupported = unsupportedVerifyProvider(verify);
    if (unsupported) throw new ReconcileFailure("ProviderNotSupported", unsupported, { stall: true, verification: true });
    try {
      let inputs: VerificationInputs;
      if (verify?.secretRef) inputs = { publicKeys: await this.#publicKeys(namespace, verify.secretRef.name) };
      else if (verify?.matchOIDCIdentity?.length) inputs = { keyless: await this.#keylessPolicies(namespace, verify, annotations) };
      // Flux would accept a keyless signature by anyone here; Ferry asks for the identity to expect.
      else throw new VerificationError("untrusted", "spec.verify needs secretRef (cosign public keys) or matchOIDCIdentity");
      return { inputs, fingerprint: fingerprintInputs(inputs) };
    } catch (error) {
      throw verificationFailure(error, spec);
    }
  }

  async #publicKeys(namespace: string, secretName: string): Promise<NonNullable<VerificationInputs["publicKeys"]>> {
    const data = await this.#deps.kube.secretData(namespace, secretName);
    if (!data) throw new VerificationError("untrusted", `secret '${namespace}/${secretName}' not found`);
    const publicKeys = Object.entries(data)
      .filter(([key]) => key.endsWith(".pub"))
      .map(([key, value]) => parsePublicKey(value.toString("utf8"), `${secretName}/${key}`));
    if (publicKeys.length === 0) throw new VerificationError("untrusted", `secret '${secretName}' has no keys ending in .pub`);
    return publicKeys;
  }

  async #keylessPolicies(
    namespace: string,
    verify: NonNullable<OCIRepositorySpecType["verify"]>,
    annotations: Record<string, string> | undefined,
  ): Promise<NonNullable<VerificationInputs["keyless"]>> {
    let trustedRoot: unknown = publicGoodTrustedRoot();
    if (verify.trustedRootSecretRef) {
      const data = await this.#deps.kube.secretData(namespace, verify.trustedRootSecretRef.name);
      const text = data?.["trusted_root.json"]?.toString("utf8");
      if (!text) throw new VerificationError("untrusted", `secret '${verify.trustedRootSecretRef.name}' has no trusted_root.json`);
      trustedRoot = JSON.parse(text);
    }
    // Private Sigstore deployments without a transparency log opt in explicitly, as cosign's --insecure-ignore-tlog.
    const ignoreTlog = annotations?.[IGNORE_TLOG_ANNOTATION] === "true";
    const policies = (verify.matchOIDCIdentity ?? []).map((match) => ({ identityRegexp: match.subject, issuerRegexp: match.issuer }));
    return policies.map((policy) => ({ trustedRoot, ignoreTlog, policy }));
  }

  /** Verifies the resolved digest; returns the record status keeps of how. Any one keyless policy may match. */
  async #verify(client: RegistryClient, reference: Reference, trust: VerificationTrust, spec: OCIRepositorySpecType): Promise<string> {
    try {
      const { publicKeys, keyless = [] } = trust.inputs;
      if (publicKeys) return verificationRecord(describeSigner(await verifyArtifact(client, reference, { publicKeys })), trust.fingerprint);
      let lastError: unknown;
      for (const policy of keyless) {
        try {
          return verificationRecord(describeSigner(await verifyArtifact(client, reference, { keyless: policy })), trust.fingerprint);
        } catch (error) {
          lastError = error;
        }
      }
      throw lastError;
    } catch (error) {
      throw verificationFailure(error, spec);
    }
  }
}
