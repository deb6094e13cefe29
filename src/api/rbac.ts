// The least-privilege RBAC the controller runs with; tests run the controller under exactly these rules.
import { KUSTOMIZE_GROUP } from "./kustomize.ts";
import { SOURCE_GROUP } from "./source.ts";

const CONTROLLER_CLUSTER_ROLE = "ferry-controller";

/**
 * Cluster-scoped RBAC carries the install's namespace in its name, as Flux names its `cluster-reconciler-<namespace>`:
 * two installs in two namespaces then never rebind each other's ServiceAccounts, and uninstalling one deletes only
 * its own roles and bindings. (Namespaced Roles and RoleBindings need no suffix; the CRDs are shared by design.)
 */
export const clusterScopedName = (base: string, namespace: string): string => `${base}-${namespace}`;

/** The ClusterRole with the controller's rules (bound cluster-wide, or in its namespace only). */
export const controllerClusterRole = (namespace: string): string => clusterScopedName(CONTROLLER_CLUSTER_ROLE, namespace);

export const controllerRules = [
  { apiGroups: [SOURCE_GROUP], resources: ["ocirepositories"], verbs: ["get", "list", "watch", "patch", "update"] },
  { apiGroups: [SOURCE_GROUP], resources: ["ocirepositories/status"], verbs: ["get", "patch", "update"] },
  { apiGroups: [SOURCE_GROUP], resources: ["ocirepositories/finalizers"], verbs: ["update"] },
  { apiGroups: [KUSTOMIZE_GROUP], resources: ["kustomizations"], verbs: ["get", "list", "watch", "patch", "update"] },
  { apiGroups: [KUSTOMIZE_GROUP], resources: ["kustomizations/status"], verbs: ["get", "patch", "update"] },
  { apiGroups: [KUSTOMIZE_GROUP], resources: ["kustomizations/finalizers"], verbs: ["update"] },
  // Registry credentials, cosign keys, trusted roots, substitution variables and kubeconfigs referenced by the objects.
  { apiGroups: [""], resources: ["secrets", "configmaps"], verbs: ["get"] },
  { apiGroups: [""], resources: ["serviceaccounts"], verbs: ["get"] },
  { apiGroups: ["", "events.k8s.io"], resources: ["events"], verbs: ["create", "patch"] },
];

/** Leader election needs leases only in the controller's own namespace: a Role there, not a ClusterRole. */
export const LEADER_ELECTION_ROLE = "ferry-controller-leader-election";
const leaderElectionRules = [{ apiGroups: ["coordination.k8s.io"], resources: ["leases"], verbs: ["get", "create", "update"] }];

/** Applying a Kustomization's arbitrary objects needs broad rights, as Flux's kustomize-controller has (cluster-admin). */
export const applierBinding = (namespace: string): string => clusterScopedName("ferry-controller-applier", namespace);

/** A --tenant-lockdown controller never applies as itself, only as tenants' ServiceAccounts: impersonating is enough. */
export const impersonatorRole = (namespace: string): string => clusterScopedName("ferry-controller-impersonator", namespace);
const impersonatorRules = [{ apiGroups: [""], resources: ["serviceaccounts"], verbs: ["impersonate"] }];

/**
 * Aggregated into the built-in view, edit and admin roles, so a tenant's ServiceAccount bound to one of them in its
 * namespace can read Ferry's objects there: under --tenant-lockdown a Kustomization's source and dependencies are
 * read as that account.
 */
export const tenantViewRole = (namespace: string): string => clusterScopedName("ferry-view", namespace);
const tenantViewRules = [
  { apiGroups: [SOURCE_GROUP], resources: ["ocirepositories"], verbs: ["get", "list", "watch"] },
  { apiGroups: [KUSTOMIZE_GROUP], resources: ["kustomizations"], verbs: ["get", "list", "watch"] },
];
const AGGREGATE_TO_NAMESPACE_ROLES = {
  "rbac.authorization.k8s.io/aggregate-to-view": "true",
  "rbac.authorization.k8s.io/aggregate-to-edit": "true",
  "rbac.authorization.k8s.io/aggregate-to-admin": "true",
};

const clusterRole = (name: string, rules: readonly object[], labels?: Record<string, string>) =>
  ({ apiVersion: "rbac.authorization.k8s.io/v1", kind: "ClusterRole", metadata: { name, ...(labels ? { labels } : {}) }, rules });

const role = (name: string, namespace: string, rules: readonly object[]) =>
  ({ apiVersion: "rbac.authorization.k8s.io/v1", kind: "Role", metadata: { name, namespace }, rules });

const roleBinding = (name: string, roleRef: { kind: "Role" | "ClusterRole"; name: string }, namespace: string, serviceAccount: string) => ({
  apiVersion: "rbac.authorization.k8s.io/v1",
  kind: "RoleBinding",
  metadata: { name, namespace },
  roleRef: { apiGroup: "rbac.authorization.k8s.io", ...roleRef },
  subjects: [{ kind: "ServiceAccount", namespace, name: serviceAccount }],
});

const clusterRoleBinding = (name: string, role: string, namespace: string, serviceAccount: string) => ({
  apiVersion: "rbac.authorization.k8s.io/v1",
  kind: "ClusterRoleBinding",
  metadata: { name },
  roleRef: { apiGroup: "rbac.authorization.k8s.io", kind: "ClusterRole", name: role },
  subjects: [{ kind: "ServiceAccount", namespace, name: serviceAccount }],
});

type ApplierRights = boolean | "impersonation";

function applierRbac(applier: ApplierRights, namespace: string, serviceAccount: string) {
  if (applier === "impersonation") {
    const name = impersonatorRole(namespace);
    return [clusterRole(name, impersonatorRules), clusterRoleBinding(name, name, namespace, serviceAccount)];
  }
  return applier ? [clusterRoleBinding(applierBinding(namespace), "cluster-admin", namespace, serviceAccount)] : [];
}

export interface RbacOptions {
  readonly applier: ApplierRights;
  /**
   * A controller watching only its own namespace (--watch-all-namespaces=false) reads Ferry's objects, Secrets and
   * ConfigMaps only there: its rules are bound by a RoleBinding in that namespace, not cluster-wide.
   */
  readonly watchAllNamespaces?: boolean;
}

/**
 * The controller's RBAC, and the role that lets tenants read Ferry's objects. `applier` is what Kustomizations
 * need: `true` the cluster-admin binding to apply arbitrary objects; `"impersonation"` only impersonating
 * ServiceAccounts, for a controller run with --tenant-lockdown; `false` nothing (a sources-only deployment).
 */
export function controllerRbac(namespace: string, serviceAccount: string, options: RbacOptions = { applier: true }) {
  const rules = controllerClusterRole(namespace);
  const controllerBinding = options.watchAllNamespaces === false
    ? roleBinding(CONTROLLER_CLUSTER_ROLE, { kind: "ClusterRole", name: rules }, namespace, serviceAccount)
    : clusterRoleBinding(rules, rules, namespace, serviceAccount);
  return [
    ...applierRbac(options.applier, namespace, serviceAccount),
    clusterRole(rules, controllerRules),
    controllerBinding,
    role(LEADER_ELECTION_ROLE, namespace, leaderElectionRules),
    roleBinding(LEADER_ELECTION_ROLE, { kind: "Role", name: LEADER_ELECTION_ROLE }, namespace, serviceAccount),
    clusterRole(tenantViewRole(namespace), tenantViewRules, AGGREGATE_TO_NAMESPACE_ROLES),
  ];
}
