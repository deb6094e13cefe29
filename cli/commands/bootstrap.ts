// `ferry bootstrap oci://REGISTRY/REPO`: pushes Ferry's own install (and the user's cluster config) as an artifact,
// installs Ferry, and makes the controller reconcile that artifact, so that from then on pushing a new artifact
// upgrades Ferry through the registry. Everything that can be refused is checked before anything changes: flags,
// the signing key, the cluster, permissions and who is in charge, then the registry push, and only then the cluster.
import { createPublicKey, type KeyObject } from "node:crypto";
import { cp, mkdir, mkdtemp, readFile, rm, stat, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { dirname, join, resolve } from "node:path";
import { setTimeout as sleep } from "node:timers/promises";
import { CoreV1Api } from "@kubernetes/client-node";
import { artifactManifest } from "../../src/artifact/format.ts";
import { artifactMetadata, pushArtifact } from "../../src/artifact/push.ts";
import { buildTarball } from "../../src/artifact/tarball.ts";
import { Applier } from "../../src/apply/apply.ts";
import { type Disposition, FerryError } from "../../src/errors.ts";
import { GoRegexp } from "../../src/go-regexp.ts";
import { computeHealth } from "../../src/health/kstatus.ts";
import {
  BOOTSTRAP_NAME,
  type BootstrapOptions,
  CLUSTER_CONFIG_NAME,
  CLUSTER_DIR,
  droppedClusterConfig,
  type ClusterState,
  componentFiles,
  REGISTRY_SECRET,
  REGISTRY_TLS_SECRET,
  selfManagedComponents,
  syncDrift,
  syncObjects,
  takeoverConflicts,
  VERIFY_KEY_SECRET,
} from "../../src/install/bootstrap.ts";
import { CONTROLLER_NAME, DEFAULT_NAMESPACE, PART_OF_LABEL, VERSION_LABEL } from "../../src/install/manifests.ts";
import type { KubeClient } from "../../src/kube/client.ts";
import type { ManifestObject } from "../../src/kustomize/build.ts";
import { KUSTOMIZATION } from "../../src/reconcilers/kustomization.ts";
import { OCI_REPOSITORY, REQUESTED_AT_ANNOTATION } from "../../src/reconcilers/ocirepository.ts";
import { RegistryClient } from "../../src/registry/client.ts";
import { credentialChain, parseCreds } from "../../src/registry/credentials.ts";
import { AccessDeniedError, AuthenticationError, NotFoundError } from "../../src/registry/errors.ts";
import { type Descriptor, sha256Digest } from "../../src/registry/oci.ts";
import { formatReference, parseReference, type Reference } from "../../src/registry/reference.ts";
import { FERRY_VERSION } from "../../src/version.ts";
import { UsageError } from "../errors.ts";
import { clientOptions, parse, parseDuration, REGISTRY_OPTIONS, SIGNING_OPTIONS } from "../flags.ts";
import { kubeClient } from "../kube.ts";
import { status } from "../output.ts";
import { preflightFor } from "./check.ts";
import { applyInstall, COMPONENT_OPTIONS, componentOptions, refuseForeignNamespace, refuseSecondInstall } from "./install.ts";
import { type signingFromFlags, trustFromFlags } from "./signing.ts";

const BOOTSTRAP_OPTIONS = {
  ...REGISTRY_OPTIONS,
  ...SIGNING_OPTIONS,
  ...COMPONENT_OPTIONS,
  sign: { type: "boolean" },
  "certificate-identity": { type: "string" },
  "certificate-identity-regexp": { type: "string" },
  "certificate-oidc-issuer": { type: "string" },
  "certificate-oidc-issuer-regexp": { type: "string" },
  path: { type: "string" },
  interval: { type: "string" },
  force: { type: "boolean" },
  "prune-cluster-config": { type: "boolean" },
  "pull-url": { type: "string" },
  "pull-creds": { type: "string" },
  kubeconfig: { type: "string" },
} as const;

/** The cluster cannot be reached, or refuses the caller: nothing was changed. */
class ClusterAccessError extends FerryError {
  readonly code = "CLUSTER_ACCESS";
  readonly disposition: Disposition = "stall";
}

/** Another registry or a newer Ferry is in charge of the cluster; --force takes it over. */
class TakeoverRefusedError extends FerryError {
  readonly code = "TAKEOVER_REFUSED";
  readonly disposition: Disposition = "stall";
}

/** The registry refuses the pull the controller will make: with the credentials stored for it, or anonymously. */
class ControllerPullRefusedError extends FerryError {
  readonly code = "CONTROLLER_PULL_REFUSED";
  readonly disposition: Disposition = "stall";
}

/** The controller did not apply the pushed artifact in time. */
class SelfUpgradeTimeoutError extends FerryError {
  readonly code = "SELF_UPGRADE_TIMEOUT";
  readonly disposition: Disposition = "retry";
}

/** The signature just made does not verify with what the controller is told to verify with. */
class UnverifiableSignatureError extends FerryError {
  readonly code = "UNVERIFIABLE_SIGNATURE";
  readonly disposition: Disposition = "stall";
}

const controllerRef = (namespace: string) => ({ apiVersion: "apps/v1", kind: "Deployment", namespace, name: CONTROLLER_NAME });

type Values = ReturnType<typeof parse<typeof BOOTSTRAP_OPTIONS>>["values"];

export async function bootstrapCommand(args: readonly string[]): Promise<void> {
  const { values, positionals } = parse(args, BOOTSTRAP_OPTIONS);
  const reference = artifactReference(positionals);
  const install = componentOptions(values);
  if (install.multiTenant) {
    // Locked down, the controller requires serviceAccountName on every Kustomization, and its own would stall: it
    // could then apply no artifact at all, not even one that removes the lock.
    throw new UsageError("bootstrap does not support --multi-tenant yet: use ferry install --multi-tenant and deliver the cluster config with your own Kustomizations");
  }
  const namespace = install.namespace ?? DEFAULT_NAMESPACE;
  const timeoutMs = parseDuration(values.timeout ?? "5m", "--timeout");
  const pullCreds = controllerCredentials(values);
  const clusterConfig = values.path ? await checkedDirectory(values.path) : undefined;
  // A wrong key or password fails here, before the cluster or the registry is touched.
  const signing = await loadSigning(values);
  const options: BootstrapOptions = {
    url: pullUrl(values["pull-url"]) ?? `oci://${reference.registry}/${reference.repository}`,
    tag: reference.tag ?? "latest",
    install,
    insecure: values["insecure-registry"] ?? false,
    interval: checkedInterval(values.interval ?? "1m"),
    registryCredentials: pullCreds !== undefined,
    registryTls: Object.keys(tlsFiles(values)).length > 0,
    ...(signing ? { verification: signing.verification } : {}),
    clusterConfig: clusterConfig !== undefined,
  };

  const kube = kubeClient(values);
  const components = selfManagedComponents(install);
  const desiredSync = syncObjects(options);
  const stored = await secrets(values, options, namespace, pullCreds, signing?.publicKey);
  await checkCluster(kube, [...components, ...desiredSync, ...stored]);
  const state = await readClusterState(kube, namespace);
  const conflicts = takeoverConflicts(state, options);
  const dropped = droppedClusterConfig(state, options);
  if (dropped && !values["prune-cluster-config"]) {
    const others = conflicts.length > 0 ? ` (and: ${conflicts.join("; ")})` : "";
    throw new TakeoverRefusedError(`${dropped}; pass the same --path, or --prune-cluster-config to delete them${others}`);
  }
  if (conflicts.length > 0 && !values.force) throw new TakeoverRefusedError(`${conflicts.join("; ")}; pass --force to bootstrap anyway`);
  if (!values.force) await refuseSecondInstall(kube, namespace);
  if (!values.force && state.controllerVersion === undefined) await refuseForeignNamespace(kube, namespace);

  if (values["pull-url"] === undefined) await checkControllerPull(values, { ...reference, tag: options.tag }, pullCreds);
  const { digest, pushed } = await pushBootstrapArtifact(values, reference, options, clusterConfig, signing);
  const applier = new Applier(kube);
  const firstInstall = state.controllerVersion === undefined || (values.force ?? false);
  if (firstInstall) await applyInstall(applier, components, namespace, timeoutMs);
  else status("►", `Ferry ${state.controllerVersion} is installed: the controller upgrades itself from the artifact`);
  // The sync objects are in the artifact, and the controller applies them with its own labels: the CLI applies them
  // only when the cluster's differ from what this bootstrap wants (a first install, a moved registry, new
  // credentials or keys the controller needs before it can even pull the new artifact), or a re-run would undo the
  // controller's apply.
  const drift = firstInstall ? ["first install"] : syncDrift(desiredSync, await readSyncObjects(kube, namespace));
  if (drift.length > 0 && !firstInstall) status("►", `updating the sync objects: ${drift.join(", ")}`);
  const [repository, ...kustomizations] = drift.length > 0 ? desiredSync : [];
  const { changes } = await applier.apply([...stored, ...(repository ? [repository] : [])] as ManifestObject[], { timeoutMs });
  // A new artifact, or new credentials or keys for the same one: have the source pull and verify again now.
  const changed = changes.some((change) => change.action === "created" || change.action === "configured");
  // Until the source has pulled and verified with what was just stored, nothing says the controller can: new
  // credentials, TLS files or keys are only proved by its next fetch.
  if (pushed || changed || kustomizations.length > 0) {
    await waitForSourceArtifact(kube, namespace, digest, await requestReconcile(kube, namespace), timeoutMs);
  }
  // Kustomizations not before the source holds the new artifact: a Kustomization whose spec changes is reconciled
  // at once, with the artifact the source has then, and the old artifact's ferry-sync.yaml would undo the source's
  // new spec.
  if (kustomizations.length > 0) await applier.apply(kustomizations as ManifestObject[], { timeoutMs });
  await deleteStaleSecrets(kube, namespace, stored);
  await waitForSelfReconcile(kube, applier, namespace, digest, timeoutMs);
  status("✔", `bootstrap finished: Ferry v${FERRY_VERSION} reconciles itself from ${options.url}:${options.tag}`);
}

function artifactReference(positionals: readonly string[]): Reference {
  if (positionals.length !== 1) throw new UsageError("bootstrap needs one argument: the artifact URL, oci://registry/repository[:tag]");
  const reference = parseReference(positionals[0] ?? "", { requireScheme: true });
  if (reference.digest) throw new UsageError("bootstrap pushes to a tag, not a digest: oci://registry/repository[:tag]");
  return reference;
}

/**
 * Where the controller pulls the artifact from, when the cluster reaches the registry at another address than the
 * push did (kind's or k3d's local registry: localhost:5001 outside, kind-registry:5000 inside). Same repository.
 */
function pullUrl(url: string | undefined): string | undefined {
  if (url === undefined) return undefined;
  const reference = (() => {
    try {
      return parseReference(url, { requireScheme: true });
    } catch (error) {
      throw new UsageError(`--pull-url ${url}: ${(error as Error).message}`);
    }
  })();
  if (reference.tag || reference.digest) {
    throw new UsageError(`--pull-url ${url}: give the repository only (oci://host/repository); the controller follows the tag the push names`);
  }
  return `oci://${reference.registry}/${reference.repository}`;
}

/**
 * The credentials the controller pulls with: --pull-creds (read-only ones, so that the cluster holds no right to
 * push), else the push's --creds, with a warning that the cluster then holds push rights.
 */
function controllerCredentials(values: Values): string | undefined {
  // Only the value stored for the controller must be user:password; a --creds token for the push is fine beside
  // --pull-creds.
  const flag = values["pull-creds"] !== undefined ? "pull-creds" : "creds";
  const value = values[flag];
  if (value === undefined) return undefined;
  const parsed = (() => {
    try {
      return parseCreds(value, `--${flag}`);
    } catch (error) {
      throw new UsageError((error as Error).message);
    }
  })();
  if (parsed.kind !== "basic") {
    throw new UsageError(`--${flag} must be user:password here: bootstrap stores the controller's as a docker config Secret`);
  }
  if (flag === "pull-creds") return value;
  if (values.creds !== undefined) {
    status("⚠", "the controller pulls with the push credentials (--creds), so the cluster holds them: pass --pull-creds with read-only ones to keep push rights out of it");
  }
  return values.creds;
}

/** Kept as the user wrote it, for the OCIRepository, once it is known to be a duration the controller accepts. */
function checkedInterval(interval: string): string {
  parseDuration(interval, "--interval");
  return interval;
}

async function checkedDirectory(path: string): Promise<string> {
  const info = await stat(path).catch(() => undefined);
  if (!info?.isDirectory()) throw new UsageError(`--path ${path} is not a directory`);
  return resolve(path);
}

interface Signing {
  readonly signing: Awaited<ReturnType<typeof signingFromFlags>>;
  readonly publicKey?: KeyObject;
  readonly verification: NonNullable<BootstrapOptions["verification"]>;
}

async function loadSigning(values: Values): Promise<Signing | undefined> {
  if (!values.sign) {
    if (values.key || values.keyless) throw new UsageError("--key and --keyless need --sign");
    return undefined;
  }
  // The controller reads bundles only, and bootstrap signs for the controller.
  if (values["signature-format"] !== undefined && values["signature-format"] !== "bundle") {
    throw new UsageError(`bootstrap signs in the bundle format, which the controller verifies; --signature-format=${values["signature-format"]} is not supported`);
  }
  if (values.keyless) refuseUnverifiableKeyless(values);
  const signing = await (await import("./signing.ts")).signingFromFlags({ ...values, sign: true });
  if (signing && "privateKey" in signing && signing.privateKey) {
    const publicKey = createPublicKey(signing.privateKey);
    return { signing, publicKey, verification: { publicKeyPem: publicKey.export({ type: "spki", format: "pem" }).toString() } };
  }
  const subject = identityPattern(values, "certificate-identity");
  const issuer = identityPattern(values, "certificate-oidc-issuer");
  return { signing, verification: { identity: { subject, issuer } } };
}

/**
 * The regular expression the controller matches a certificate's identity or issuer with, spelled as cosign and
 * `ferry verify` spell it: --X exactly (escaped and anchored here), or --X-regexp as a regular expression.
 */
export function identityPattern(values: Values, flag: "certificate-identity" | "certificate-oidc-issuer"): string {
  const exact = values[flag];
  const pattern = values[`${flag}-regexp`];
  if ((exact === undefined) === (pattern === undefined)) {
    throw new UsageError(`--sign --keyless needs one of --${flag} or --${flag}-regexp, for the controller to verify with`);
  }
  if (exact !== undefined) return `^${exact.replace(/[.*+?^${}()|[\]\\]/g, "\\$&")}$`;
  // The controller compiles it as Go does: one it would refuse must not reach the cluster's spec.verify.
  try {
    GoRegexp.compile(pattern ?? "");
  } catch (error) {
    throw new UsageError(`--${flag}-regexp: ${(error as Error).message}`);
  }
  return pattern ?? "";
}

/**
 * Keyless signatures the controller could never verify: the bootstrap OCIRepository verifies against the public-good
 * Sigstore's trusted root and requires a transparency log entry (it has no trustedRootSecretRef and no way to ignore
 * the log), so a private Fulcio or Rekor, or no log upload, would leave Ferry unable to apply its own artifact.
 */
function refuseUnverifiableKeyless(values: Values): void {
  const privateSigstore = ["fulcio-url", "rekor-url"].filter((flag) => values[flag as "fulcio-url" | "rekor-url"] !== undefined);
  if (privateSigstore.length > 0) {
    throw new UsageError(`bootstrap --keyless signs with the public-good Sigstore only: the controller verifies against its trusted root, `
      + `so a signature from the Sigstore at ${privateSigstore.map((flag) => `--${flag}`).join(" and ")} would never verify; sign with --key instead`);
  }
  if (values["tlog-upload"] === false) {
    throw new UsageError("bootstrap --keyless needs the transparency log: the controller requires a Rekor entry for a keyless signature, "
      + "so --tlog-upload=false would never verify; sign with --key instead");
  }
}

/**
 * The cluster answers, is new enough, and the caller may apply everything bootstrap applies (the same questions as
 * `ferry check --pre`, asked about these objects).
 */
async function checkCluster(kube: KubeClient, objects: readonly object[]): Promise<void> {
  status("►", "connecting to the cluster");
  const report = await preflightFor(kube, objects).catch((error: Error) => {
    throw new ClusterAccessError(error.message.replace(/^cannot reach the Kubernetes API server/, "cannot reach the cluster"), { cause: error });
  });
  status("✔", `connected to Kubernetes ${report.kubernetesVersion}`);
  const failed = report.checks.filter((check) => !check.ok);
  const version = failed.find((check) => check.name !== "permission");
  if (version) throw new ClusterAccessError(version.message);
  const rights = failed.map((check) => check.message.replace(/^cannot /, ""));
  if (rights.length > 0) throw new ClusterAccessError(`bootstrapping needs rights you do not have in this cluster: ${rights.join("; ")}`);
}

async function readClusterState(kube: KubeClient, namespace: string): Promise<ClusterState> {
  type LiveSource = { spec: { url: string; ref?: { tag?: string }; verify?: object } };
  const repository = await kube.get<LiveSource>(OCI_REPOSITORY, namespace, BOOTSTRAP_NAME);
  const clusterConfig = await kube.get(KUSTOMIZATION, namespace, CLUSTER_CONFIG_NAME);
  const deployment = await new Applier(kube).read(controllerRef(namespace)) as
    { metadata: { labels?: Record<string, string> } } | undefined;
  const version = deployment?.metadata.labels?.[VERSION_LABEL] ?? (deployment ? "unknown" : undefined);
  return {
    ...(repository ? { repositoryUrl: repository.spec.url, repositoryTag: repository.spec.ref?.tag ?? "latest" } : {}),
    ...(version ? { controllerVersion: version } : {}),
    clusterConfig: clusterConfig !== undefined,
    verified: repository?.spec.verify !== undefined,
  };
}

type LiveSyncObject = Parameters<typeof syncDrift>[1] extends ReadonlyMap<string, infer V> ? V : never;

/** The sync objects as they are in the cluster, keyed as syncDrift() expects. */
async function readSyncObjects(kube: KubeClient, namespace: string): Promise<Map<string, LiveSyncObject>> {
  const read = async (type: typeof OCI_REPOSITORY | typeof KUSTOMIZATION, kind: string, name: string) =>
    [`${kind}/${name}`, await kube.get<NonNullable<LiveSyncObject>>(type, namespace, name)] as const;
  return new Map(await Promise.all([
    read(OCI_REPOSITORY, "OCIRepository", BOOTSTRAP_NAME),
    read(KUSTOMIZATION, "Kustomization", BOOTSTRAP_NAME),
    read(KUSTOMIZATION, "Kustomization", CLUSTER_CONFIG_NAME),
  ]));
}

/** Writes the artifact's files into a new directory: Ferry's own under ferry-system/, the user's under cluster/. */
async function artifactDirectory(options: BootstrapOptions, clusterConfig: string | undefined): Promise<string> {
  const dir = await mkdtemp(join(tmpdir(), "ferry-bootstrap-"));
  for (const [path, content] of componentFiles(options)) {
    await mkdir(dirname(join(dir, path)), { recursive: true });
    await writeFile(join(dir, path), content);
  }
  if (clusterConfig) await cp(clusterConfig, join(dir, CLUSTER_DIR), { recursive: true, verbatimSymlinks: true });
  return dir;
}

/**
 * A revision naming the content as packed (so files the packer leaves out, such as .git, do not count): the same
 * files give the same artifact digest and a re-run pushes nothing.
 */
async function contentRevision(dir: string): Promise<string> {
  const tarball = await buildTarball(dir);
  await tarball.dispose();
  return `v${FERRY_VERSION}@${tarball.digest}`;
}

async function pushBootstrapArtifact(
  values: Values,
  reference: Reference,
  options: BootstrapOptions,
  clusterConfig: string | undefined,
  signing: Signing | undefined,
): Promise<{ digest: string; pushed: boolean }> {
  const dir = await artifactDirectory(options, clusterConfig);
  const client = new RegistryClient(clientOptions(values));
  const target = { ...reference, tag: options.tag };
  try {
    const request = { path: dir, source: "ferry bootstrap", revision: await contentRevision(dir), reproducible: true };
    const digest = await localDigest(dir, request);
    if ((await currentDigest(client, target)) === digest) {
      status("✔", `${formatReference(target)} already holds these manifests (${digest})`);
      if (signing?.signing) await ensureSigned(client, { ...target, digest }, signing);
      return { digest, pushed: false };
    }
    status("►", `pushing Ferry v${FERRY_VERSION} manifests to ${formatReference(target)}`);
    // Signed before it is tagged: the controller follows the tag and verifies, and must never find it unsigned.
    const sign = signing?.signing ? { beforeTag: (manifest: Descriptor) => signVerified(client, target, signing, manifest) } : {};
    const pushed = await pushArtifact(client, target, { ...request, ...sign });
    status("✔", `pushed ${pushed.digest}`);
    return { digest: pushed.digest, pushed: true };
  } finally {
    await client.close();
    await rm(dir, { recursive: true, force: true });
  }
}

async function signWith(client: RegistryClient, target: Reference, signing: Signing, manifest: Descriptor): Promise<void> {
  const { signArtifact } = await import("../../src/signing/sign.ts");
  await signArtifact(client, target, { ...signing.signing, subject: manifest, format: "bundle" });
  status("✔", "artifact signed");
}

/** Why the controller would refuse the signatures `subject` has now, or undefined when it would accept them. */
async function verificationFailure(
  client: RegistryClient,
  reference: Reference,
  signing: Signing,
  subject: Descriptor,
): Promise<Error | undefined> {
  const { verifyArtifact } = await import("../../src/signing/verify.ts");
  const { VerificationError } = await import("../../src/signing/errors.ts");
  const trust = signing.publicKey
    ? { publicKeys: [signing.publicKey] }
    : await trustFromFlags({
        "certificate-identity-regexp": signing.verification.identity?.subject,
        "certificate-oidc-issuer-regexp": signing.verification.identity?.issuer,
      });
  try {
    await verifyArtifact(client, { ...reference, digest: subject.digest }, { ...trust, subject });
    return undefined;
  } catch (error) {
    if (!(error instanceof VerificationError)) throw error;
    return error;
  }
}

/**
 * Signs a new push before its tag moves, and checks the signature as the controller will (a mistyped
 * --certificate-identity would otherwise move the tag to an artifact no cluster following it can apply).
 */
async function signVerified(client: RegistryClient, target: Reference, signing: Signing, manifest: Descriptor): Promise<void> {
  await signWith(client, target, signing, manifest);
  const failure = await verificationFailure(client, target, signing, manifest);
  if (failure) {
    throw new UnverifiableSignatureError(`the artifact was signed, but the signature does not verify as the controller will verify it, `
      + `so the tag was not moved: ${failure.message}`);
  }
}

/**
 * A re-run with --sign over an artifact that is already there: an earlier run may have pushed it unsigned, or been
 * cut off between push and signature. Sign it unless a signature this bootstrap's key or identity accepts is there.
 */
async function ensureSigned(client: RegistryClient, reference: Reference, signing: Signing): Promise<void> {
  const subject = await client.resolve(reference);
  const verify = () => verificationFailure(client, reference, signing, subject);
  if (!(await verify())) {
    status("✔", "artifact already signed");
    return;
  }
  await signWith(client, reference, signing, subject);
  // A signature that does not pass here will not pass in the controller either, and signing again on every re-run
  // would only pile up signatures: say why now (an identity the --certificate-* flags do not match, say).
  const failure = await verify();
  if (failure) throw new UnverifiableSignatureError(`the artifact was signed, but the signature does not verify as the controller will verify it: ${failure.message}`);
}

async function localDigest(dir: string, request: { source: string; revision: string; reproducible: boolean }): Promise<string> {
  const tarball = await buildTarball(dir);
  try {
    return sha256Digest(artifactManifest(tarball, artifactMetadata(request)).manifest);
  } finally {
    await tarball.dispose();
  }
}

async function currentDigest(client: RegistryClient, reference: Reference): Promise<string | undefined> {
  try {
    return (await client.resolve(reference)).digest;
  } catch (error) {
    if (error instanceof NotFoundError) return undefined;
    throw error;
  }
}

/**
 * Reads the tag as the controller will: with the credentials stored for it, or anonymously when none are (the
 * push's may have come from FERRY_CREDS or docker login, which the cluster does not get). A registry that refuses is
 * named before anything is pushed or changed; a tag not there yet means the registry let the read through. Not
 * possible with --pull-url: that address is the cluster's, and may not be reachable from here.
 */
async function checkControllerPull(values: Values, reference: Reference, pullCreds: string | undefined): Promise<void> {
  const anonymous = async () => undefined;
  const credentials = pullCreds !== undefined ? credentialChain({ creds: pullCreds }) : anonymous;
  const client = new RegistryClient({ ...clientOptions(values), credentials });
  try {
    await client.resolve(reference);
  } catch (error) {
    if (error instanceof NotFoundError) return;
    if (!(error instanceof AuthenticationError || error instanceof AccessDeniedError)) throw error;
    const how = pullCreds === undefined
      ? "anonymously (no --creds or --pull-creds to store for it)"
      : `with ${values["pull-creds"] !== undefined ? "--pull-creds" : "--creds"}`;
    throw new ControllerPullRefusedError(`the controller would pull ${formatReference(reference)} ${how}, and the registry refuses: ${error.message}; `
      + "nothing was pushed or changed", { cause: error });
  } finally {
    await client.close();
  }
}

/** The TLS files the push used, by the key the controller reads them from (Flux's certSecretRef keys). */
function tlsFiles(values: Values): Record<string, string> {
  const files = { "ca.crt": values["ca-file"], "tls.crt": values["cert-file"], "tls.key": values["key-file"] };
  return Object.fromEntries(Object.entries(files).filter((entry): entry is [string, string] => entry[1] !== undefined));
}

const secret = (name: string, namespace: string, data: Record<string, string | Buffer>, type?: string) => ({
  apiVersion: "v1",
  kind: "Secret",
  ...(type ? { type } : {}),
  // Labelled like the install, so `ferry uninstall` removes them with it.
  metadata: { name, namespace, labels: { [PART_OF_LABEL]: "ferry" } },
  data: Object.fromEntries(Object.entries(data).map(([key, value]) => [key, Buffer.from(value).toString("base64")])),
});

/**
 * What the controller needs to pull and verify as the push did, as Secrets it reads: registry credentials, TLS
 * files and the verification key. Never in the artifact, which anyone who can pull it can read.
 */
async function secrets(
  values: Values,
  options: BootstrapOptions,
  namespace: string,
  pullCreds: string | undefined,
  publicKey: KeyObject | undefined,
): Promise<object[]> {
  const objects: object[] = [];
  if (pullCreds !== undefined) {
    // Keyed by the host the controller pulls from (--pull-url's, when given), which is the one it looks up.
    const registry = options.url.slice("oci://".length).split("/")[0] ?? "";
    const auth = Buffer.from(pullCreds).toString("base64");
    const config = JSON.stringify({ auths: { [registry]: { auth } } });
    objects.push(secret(REGISTRY_SECRET, namespace, { ".dockerconfigjson": config }, "kubernetes.io/dockerconfigjson"));
  }
  const tls = tlsFiles(values);
  if (Object.keys(tls).length > 0) {
    const read = Object.entries(tls).map(async ([key, file]) => [key, await readFile(file)] as const);
    const data = Object.fromEntries(await Promise.all(read));
    objects.push(secret(REGISTRY_TLS_SECRET, namespace, data));
  }
  if (publicKey) objects.push(secret(VERIFY_KEY_SECRET, namespace, { "cosign.pub": publicKey.export({ type: "spki", format: "pem" }).toString() }));
  return objects;
}

/**
 * Bootstrap's Secrets this run no longer stores (--creds, TLS files or --key dropped): the sync objects no longer
 * name them, and registry credentials or keys must not stay behind. Only those labelled as bootstrap labels them.
 */
async function deleteStaleSecrets(kube: KubeClient, namespace: string, stored: readonly object[]): Promise<void> {
  const kept = new Set(stored.map((object) => (object as { metadata: { name: string } }).metadata.name));
  const core = kube.api(CoreV1Api);
  for (const name of [REGISTRY_SECRET, REGISTRY_TLS_SECRET, VERIFY_KEY_SECRET].filter((secretName) => !kept.has(secretName))) {
    const live = await core.readNamespacedSecret({ name, namespace }).catch((error: { code?: number }) => {
      if (error.code === 404) return undefined;
      throw error;
    });
    if (live?.metadata?.labels?.[PART_OF_LABEL] !== "ferry") continue;
    await core.deleteNamespacedSecret({ name, namespace, body: { preconditions: { uid: live.metadata.uid } } });
    status("✔", `Secret/${namespace}/${name} deleted: this bootstrap no longer uses it`);
  }
}

/** Fetch the new artifact now rather than at the next interval; returns the request's token. */
async function requestReconcile(kube: KubeClient, namespace: string): Promise<string> {
  const requestedAt = new Date().toISOString();
  const annotations = { [REQUESTED_AT_ANNOTATION]: requestedAt };
  await kube.mergePatch(OCI_REPOSITORY, namespace, BOOTSTRAP_NAME, { metadata: { annotations } });
  return requestedAt;
}

interface ObservedKustomization {
  spec?: { suspend?: boolean };
  status?: { lastAppliedRevision?: string; conditions?: Array<{ type: string; status: string; message?: string }> };
}

interface ObservedSource {
  metadata?: { generation?: number };
  status?: {
    observedGeneration?: number;
    lastHandledReconcileAt?: string;
    artifact?: { revision?: string };
    conditions?: Array<{ type: string; status: string; message?: string }>;
  };
}

/**
 * Waits until the bootstrap OCIRepository has handled the reconcile request `requestedAt` (so the credentials, TLS
 * files and keys just stored were used) and holds, verified, the artifact `digest`. A handled request that left the
 * source not Ready fails at once: the controller cannot pull or verify with what this bootstrap gave it.
 */
async function waitForSourceArtifact(
  kube: KubeClient,
  namespace: string,
  digest: string,
  requestedAt: string,
  timeoutMs: number,
): Promise<void> {
  status("◎", `waiting for OCIRepository ${namespace}/${BOOTSTRAP_NAME} to fetch ${digest}`);
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const source = await kube.get<ObservedSource>(OCI_REPOSITORY, namespace, BOOTSTRAP_NAME);
    const observed = source?.status?.observedGeneration === source?.metadata?.generation;
    const handled = observed && source?.status?.lastHandledReconcileAt === requestedAt;
    const ready = source?.status?.conditions?.find((condition) => condition.type === "Ready");
    if (handled && ready?.status === "True" && source?.status?.artifact?.revision?.endsWith(digest)) return;
    if (handled && ready?.status === "False") {
      throw new SelfUpgradeTimeoutError(`OCIRepository ${namespace}/${BOOTSTRAP_NAME} cannot fetch ${digest} with what this bootstrap stored: `
        + `${ready.message ?? "not Ready"}; the Kustomizations were left as they were`);
    }
    if (Date.now() > deadline) {
      const ready = source?.status?.conditions?.find((condition) => condition.type === "Ready");
      const has = source?.status?.artifact?.revision ?? "no artifact";
      throw new SelfUpgradeTimeoutError(`OCIRepository ${namespace}/${BOOTSTRAP_NAME} has not fetched ${digest} in time (it has ${has}): `
        + `${ready?.message ?? "no Ready condition"}; the Kustomizations were left as they were`);
    }
    await sleep(500);
  }
}

/** Waits until the controller has applied `digest` to itself and its Deployment is Available again. */
async function waitForSelfReconcile(kube: KubeClient, applier: Applier, namespace: string, digest: string, timeoutMs: number) {
  status("◎", `waiting for the controller to apply ${digest} to itself`);
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const kustomization = await kube.get<ObservedKustomization>(KUSTOMIZATION, namespace, BOOTSTRAP_NAME);
    const ready = kustomization?.status?.conditions?.find((condition) => condition.type === "Ready");
    const applied = kustomization?.status?.lastAppliedRevision?.endsWith(digest) ?? false;
    const deployment = computeHealth(await applier.read(controllerRef(namespace)));
    if (applied && ready?.status === "True" && deployment.status === "Current") break;
    if (kustomization?.spec?.suspend) {
      // Nothing will be applied while it is, and the wait would only run out: bootstrap does not resume it unasked.
      throw new SelfUpgradeTimeoutError(`Kustomization ${namespace}/${BOOTSTRAP_NAME} is suspended, so the controller will not apply ${digest}: `
        + `resume it (kubectl patch kustomization ${BOOTSTRAP_NAME} -n ${namespace} --type=merge -p '{"spec":{"suspend":false}}') and re-run bootstrap`);
    }
    if (Date.now() > deadline) {
      const lastApplied = kustomization?.status?.lastAppliedRevision ?? "nothing";
      const source = await kube.get<ObservedKustomization>(OCI_REPOSITORY, namespace, BOOTSTRAP_NAME);
      const sourceReady = source?.status?.conditions?.find((condition) => condition.type === "Ready");
      const problem = !applied
        ? `Kustomization ${namespace}/${BOOTSTRAP_NAME} has applied ${lastApplied} (${ready?.message ?? "no Ready condition"}); `
        + `OCIRepository ${namespace}/${BOOTSTRAP_NAME}: ${sourceReady?.message ?? "no Ready condition"}`
        : `the controller Deployment is ${deployment.status}: ${deployment.message}`;
      throw new SelfUpgradeTimeoutError(`the controller has not applied ${digest} in time: ${problem}`);
    }
    await sleep(1_000);
  }
  status("✔", `Kustomization ${namespace}/${BOOTSTRAP_NAME} applied ${digest}; controller Available`);
}
