// What `ferry check` concludes from what it read: the server version, the caller's permissions (--pre), and the
// state of an install (CRDs, controller, versions, leader). Pure: cli/commands/check.ts does the reading.
import { CRDS } from "../api/crd.ts";
import { computeHealth } from "../health/kstatus.ts";
import { groupOf } from "../inventory/inventory.ts";
import { CONTROLLER_LEASE_NAME, shardLeaseName } from "../controller/selector.ts";
import { CONTROLLER_NAME, VERSION_LABEL } from "./manifests.ts";

export interface CheckResult {
  readonly name: string;
  readonly ok: boolean;
  readonly message: string;
}

/**
 * The oldest Kubernetes Ferry installs on: 1.29, where CRD validation rules (x-kubernetes-validations, CEL) are GA.
 * Ferry's CRDs refuse bad specs with them; before 1.29 they sit behind a feature gate a cluster may have turned off,
 * and an apiserver without it drops the rules silently, so bad specs would reach the controller unchecked.
 * (Server-side apply, Pod Security admission and Leases are older.)
 */
export const MIN_KUBERNETES = { major: 1, minor: 29 } as const;

/** major.minor of a server's gitVersion (v1.36.0, v1.30.4-eks-a737599, v1.29.1+k3s1). */
export function parseServerVersion(gitVersion: string): { major: number; minor: number } | undefined {
  const match = /^v?(\d+)\.(\d+)/.exec(gitVersion);
  return match ? { major: Number(match[1]), minor: Number(match[2]) } : undefined;
}

export function checkKubernetesVersion(gitVersion: string): CheckResult {
  const version = parseServerVersion(gitVersion);
  const minimum = `${MIN_KUBERNETES.major}.${MIN_KUBERNETES.minor}`;
  const { major, minor } = MIN_KUBERNETES;
  const ok = version !== undefined && (version.major > major || (version.major === major && version.minor >= minor));
  const message = ok
    ? `Kubernetes ${gitVersion} >=${minimum}`
    : `Kubernetes ${gitVersion} is older than ${minimum} (Ferry's CRDs need CEL validation rules, GA in 1.29)`;
  return { name: "kubernetes-version", ok, message };
}

/** One SelfSubjectAccessReview's resourceAttributes. */
export interface AccessAttributes {
  readonly verb: string;
  readonly group: string;
  readonly resource: string;
  readonly subresource?: string;
  readonly namespace?: string;
  readonly name?: string;
}

/** Met when every attribute of any one alternative is allowed. */
export interface PermissionRequirement {
  readonly description: string;
  readonly anyOf: readonly (readonly AccessAttributes[])[];
}

interface Rule {
  readonly apiGroups?: readonly string[];
  readonly resources?: readonly string[];
  readonly verbs: readonly string[];
}

interface RenderedObject {
  readonly apiVersion: string;
  readonly kind: string;
  readonly metadata: { readonly name: string; readonly namespace?: string };
  readonly rules?: readonly Rule[];
  readonly roleRef?: { readonly kind: string; readonly name: string };
}

/** The plural resource of the kinds an install holds (NetworkPolicy -> networkpolicies). */
function resourceOf(kind: string): string {
  const lower = kind.toLowerCase();
  return lower.endsWith("y") ? `${lower.slice(0, -1)}ies` : `${lower}s`;
}

export function accessKey(attributes: AccessAttributes): string {
  const { verb, group, resource, subresource, namespace, name } = attributes;
  return [verb, group, resource, subresource ?? "", namespace ?? "", name ?? ""].join("|");
}

/** Each (group, resource, verb) a role's rules grant, as the attributes that ask whether the caller holds it. */
function ruleAttributes(object: RenderedObject): AccessAttributes[] {
  return (object.rules ?? []).flatMap((rule) => (rule.apiGroups ?? [""]).flatMap((group) => (rule.resources ?? []).flatMap((resource) => {
    const [base = resource, subresource] = resource.split("/");
    return rule.verbs.map((verb) => ({
      verb, group, resource: base,
      ...(subresource ? { subresource } : {}),
      ...(object.metadata.namespace ? { namespace: object.metadata.namespace } : {}),
    }));
  })));
}

const RBAC_GROUP = "rbac.authorization.k8s.io";
const EVERYTHING: AccessAttributes = { verb: "*", group: "*", resource: "*" };

/** Server-side apply creates with PATCH: the apiserver asks for both verbs when the object does not exist yet. */
function applyRequirement(object: RenderedObject): PermissionRequirement {
  const { namespace } = object.metadata;
  const base = { group: groupOf(object.apiVersion), resource: resourceOf(object.kind), ...(namespace ? { namespace } : {}) };
  const where = namespace ? ` in ${namespace}` : "";
  return { description: `create ${base.resource}${where}`, anyOf: [[{ verb: "create", ...base }, { verb: "patch", ...base }]] };
}

/**
 * RBAC's escalation check: a role may be created only by someone who holds all its rules or may `escalate`, and a
 * binding only by someone who holds the role's rules or may `bind` it. cluster-admin's rules are everything.
 */
function escalationRequirement(object: RenderedObject, roles: ReadonlyMap<string, RenderedObject>): PermissionRequirement | undefined {
  const { namespace, name } = object.metadata;
  const scope = namespace ? { namespace } : {};
  if (object.kind === "ClusterRole" || object.kind === "Role") {
    const escalate = { verb: "escalate", group: RBAC_GROUP, resource: resourceOf(object.kind), name, ...scope };
    return { description: `grant the rules of ${object.kind} ${name} (escalate, or hold them)`, anyOf: [[escalate], ruleAttributes(object)] };
  }
  const ref = object.roleRef;
  if (!ref || (object.kind !== "ClusterRoleBinding" && object.kind !== "RoleBinding")) return undefined;
  const bind = { verb: "bind", group: RBAC_GROUP, resource: resourceOf(ref.kind), name: ref.name, ...(ref.kind === "Role" ? scope : {}) };
  const role = roles.get(`${ref.kind}/${ref.name}`);
  const held = ref.name === "cluster-admin" ? [EVERYTHING] : role ? ruleAttributes(role) : undefined;
  return { description: `bind ${ref.kind} ${ref.name} (bind, or hold its rules)`, anyOf: held ? [[bind], held] : [[bind]] };
}

/** What the caller must be allowed to install `objects` (an installManifests() rendering). */
export function installRequirements(objects: readonly object[]): PermissionRequirement[] {
  const rendered = objects as readonly RenderedObject[];
  const roles = new Map(rendered.filter((object) => object.rules).map((object) => [`${object.kind}/${object.metadata.name}`, object]));
  const creates = new Map<string, PermissionRequirement>();
  for (const object of rendered) {
    const requirement = applyRequirement(object);
    creates.set(requirement.description, requirement);
  }
  const escalations = rendered.map((object) => escalationRequirement(object, roles)).filter((requirement) => requirement !== undefined);
  return [...creates.values(), ...escalations];
}

/** Every distinct attribute the requirements ask about: one SelfSubjectAccessReview each. */
export function accessQuestions(requirements: readonly PermissionRequirement[]): AccessAttributes[] {
  const all = requirements.flatMap((requirement) => requirement.anyOf.flat());
  return [...new Map(all.map((attributes) => [accessKey(attributes), attributes])).values()];
}

/** `allowed` maps accessKey() to the review's answer. */
export function evaluatePermissions(requirements: readonly PermissionRequirement[], allowed: ReadonlyMap<string, boolean>): CheckResult[] {
  return requirements.map((requirement) => {
    const ok = requirement.anyOf.some((alternative) => alternative.every((attributes) => allowed.get(accessKey(attributes)) === true));
    return { name: "permission", ok, message: ok ? `can ${requirement.description}` : `cannot ${requirement.description}` };
  });
}

type Json = Record<string, unknown>;
type Labelled = { metadata?: { labels?: Record<string, string> } } | undefined;
const labelsOf = (object: unknown): Record<string, string> => (object as Labelled)?.metadata?.labels ?? {};

/** The names of the CRDs this CLI installs. */
export const CRD_NAMES: readonly string[] = Object.values(CRDS).map((crd) => crd.metadata.name);

export interface InstalledVersions {
  readonly cli: string;
  /** The controller Deployment's version label and image; absent when there is no Deployment. */
  readonly controller?: { readonly version?: string; readonly image?: string };
  /** Each of Ferry's CRDs' version label; null when the CRD is missing. */
  readonly crds: Readonly<Record<string, string | null>>;
}

type DeploymentShape = { spec?: { template?: { spec?: { containers?: Array<{ name?: string; image?: string }> } } } };

function controllerImage(deployment: unknown): string | undefined {
  const containers = (deployment as DeploymentShape).spec?.template?.spec?.containers;
  return (containers?.find((container) => container.name === "controller") ?? containers?.[0])?.image;
}

export function installedVersions(cliVersion: string, deployment: unknown, crds: ReadonlyMap<string, unknown>): InstalledVersions {
  const controller = deployment === undefined ? undefined : {
    ...(labelsOf(deployment)[VERSION_LABEL] ? { version: labelsOf(deployment)[VERSION_LABEL] } : {}),
    ...(controllerImage(deployment) ? { image: controllerImage(deployment) } : {}),
  };
  const crdVersion = (crd: unknown) => (crd === undefined ? null : (labelsOf(crd)[VERSION_LABEL] ?? ""));
  const crdVersions = Object.fromEntries(CRD_NAMES.map((name) => [name, crdVersion(crds.get(name))]));
  return { cli: `v${cliVersion.replace(/^v/, "")}`, ...(controller ? { controller } : {}), crds: crdVersions };
}

export interface LeaderReport {
  readonly holder: string;
  readonly renewTime?: string;
  readonly leaseDurationSeconds?: number;
  /** renewTime + leaseDuration is not yet past, by this machine's clock. */
  readonly fresh: boolean;
}

export function leaderOf(lease: unknown, now: Date): LeaderReport | undefined {
  const spec = (lease as { spec?: Json } | undefined)?.spec;
  if (!spec) return undefined;
  const holder = typeof spec.holderIdentity === "string" ? spec.holderIdentity : "";
  const renewTime = typeof spec.renewTime === "string" ? spec.renewTime : undefined;
  const duration = typeof spec.leaseDurationSeconds === "number" ? spec.leaseDurationSeconds : undefined;
  const fresh = holder !== "" && renewTime !== undefined && duration !== undefined && Date.parse(renewTime) + duration * 1000 >= now.getTime();
  return { holder, ...(renewTime ? { renewTime } : {}), ...(duration !== undefined ? { leaseDurationSeconds: duration } : {}), fresh };
}

function crdCheck(name: string, crd: unknown, cliVersion: string): CheckResult {
  if (crd === undefined) return { name: "crd", ok: false, message: `CRD ${name} is not installed` };
  const conditions = (crd as { status?: { conditions?: Array<{ type: string; status: string }> } }).status?.conditions ?? [];
  if (!conditions.some((condition) => condition.type === "Established" && condition.status === "True")) {
    return { name: "crd", ok: false, message: `CRD ${name} is not Established` };
  }
  const version = labelsOf(crd)[VERSION_LABEL];
  if (version !== `v${cliVersion}`) return { name: "crd", ok: false, message: `CRD ${name} is at ${version ?? "no version"}, this CLI's is v${cliVersion}` };
  return { name: "crd", ok: true, message: `CRD ${name} Established (v${cliVersion})` };
}

/**
 * The Lease a controller Deployment's replicas elect their leader on: named after its --watch-label-selector when
 * it has one (a sharded install), as the controller names it; undefined when that selector is not valid.
 */
export function controllerLeaseName(deployment: unknown): string | undefined {
  type Shape = { spec?: { template?: { spec?: { containers?: Array<{ name?: string; args?: string[] }> } } } } | undefined;
  const containers = (deployment as Shape)?.spec?.template?.spec?.containers;
  const args = (containers?.find((container) => container.name === "controller") ?? containers?.[0])?.args ?? [];
  let selector: string | undefined;
  args.forEach((arg, index) => {
    if (arg.startsWith("--watch-label-selector=")) selector = arg.slice("--watch-label-selector=".length);
    else if (arg === "--watch-label-selector") selector = args[index + 1];
  });
  try {
    return shardLeaseName(CONTROLLER_LEASE_NAME, selector);
  } catch {
    return undefined;
  }
}

function controllerCheck(deployment: unknown, namespace: string, now: Date, name = CONTROLLER_NAME): CheckResult {
  const subject = `Deployment ${namespace}/${name}`;
  if (deployment === undefined) return { name: "controller", ok: false, message: `${subject} not found: is Ferry installed in ${namespace}?` };
  const health = computeHealth(deployment, now);
  const ok = health.status === "Current";
  return { name: "controller", ok, message: ok ? `${subject} Ready` : `${subject} is ${health.status}: ${health.message}` };
}

function versionCheck(versions: InstalledVersions): CheckResult {
  const controller = versions.controller?.version;
  const ok = controller === versions.cli;
  const image = versions.controller?.image ? ` (image ${versions.controller.image})` : "";
  const message = ok
    ? `controller ${controller}${image}, CLI ${versions.cli}`
    : `controller ${controller ?? "version unknown"}${image} differs from the CLI's ${versions.cli}: use the CLI of the controller's version, or upgrade`;
  return { name: "version", ok, message };
}

function leaderCheck(leader: LeaderReport | undefined, namespace: string, leaseName = CONTROLLER_LEASE_NAME): CheckResult {
  const lease = `Lease ${namespace}/${leaseName}`;
  if (!leader || leader.holder === "") return { name: "leader", ok: false, message: `${lease} has no holder: no controller is leading` };
  const ok = leader.fresh;
  const renewed = `renewed ${leader.renewTime ?? "never"}, lease ${leader.leaseDurationSeconds ?? "?"}s`;
  return { name: "leader", ok, message: ok ? `leader ${leader.holder} (${renewed})` : `leader ${leader.holder} has not renewed its lease in time (${renewed})` };
}

export interface InstallObservation {
  readonly cliVersion: string;
  readonly namespace: string;
  /** Each CRD_NAMES entry's live object, or undefined. */
  readonly crds: ReadonlyMap<string, unknown>;
  readonly deployment: unknown;
  readonly lease: unknown;
  /** The shard controllers (install --shards): each one's Deployment and the Lease its args name. */
  readonly shards?: readonly ShardObservation[];
  readonly now: Date;
}

export interface ShardObservation {
  readonly name: string;
  readonly deployment: unknown;
  readonly leaseName: string | undefined;
  readonly lease: unknown;
}

export interface InstallReport {
  readonly ok: boolean;
  readonly namespace: string;
  readonly checks: readonly CheckResult[];
  readonly versions: InstalledVersions;
  readonly leader?: LeaderReport;
}

export function evaluateInstall(observation: InstallObservation): InstallReport {
  const { cliVersion, namespace, crds, deployment, lease, now } = observation;
  const leaseName = deployment === undefined ? CONTROLLER_LEASE_NAME : (controllerLeaseName(deployment) ?? "(invalid --watch-label-selector)");
  const versions = installedVersions(cliVersion, deployment, crds);
  const leader = leaderOf(lease, now);
  const checks = [
    ...CRD_NAMES.map((name) => crdCheck(name, crds.get(name), cliVersion)),
    controllerCheck(deployment, namespace, now),
    ...(deployment === undefined ? [] : [versionCheck(versions), leaderCheck(leader, namespace, leaseName)]),
    // Each shard has its own Deployment and its own Lease: a shard with no leader reconciles none of its objects.
    ...(observation.shards ?? []).flatMap((shard) => [
      controllerCheck(shard.deployment, namespace, now, shard.name),
      leaderCheck(leaderOf(shard.lease, now), namespace, shard.leaseName ?? "(invalid --watch-label-selector)"),
    ]),
  ];
  return { ok: checks.every((check) => check.ok), namespace, checks, versions, ...(leader ? { leader } : {}) };
}
