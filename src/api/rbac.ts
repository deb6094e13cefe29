// The least-privilege RBAC the controller runs with; tests run the controller under exactly these rules.
import { KUSTOMIZE_GROUP } from "./kustomize.ts";
import { SOURCE_GROUP } from "./source.ts";

export const CONTROLLER_CLUSTER_ROLE = "ferry-controller";

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
  { apiGroups: ["coordination.k8s.io"], resources: ["leases"], verbs: ["get", "create", "update"] },
];

/** Applying a Kustomization's arbitrary objects needs broad rights, as Flux's kustomize-controller has (cluster-admin). */
export const APPLIER_BINDING = "ferry-controller-applier";

/**
 * The controller's RBAC. `applier: false` gives sources only (least privilege, for a sources-only deployment);
 * `applier: true` adds the cluster-admin binding Kustomizations need to apply arbitrary objects.
 */
export function controllerRbac(namespace: string, serviceAccount: string, options: { applier: boolean } = { applier: true }) {
  const applier = {
    apiVersion: "rbac.authorization.k8s.io/v1",
    kind: "ClusterRoleBinding",
    metadata: { name: APPLIER_BINDING },
    roleRef: { apiGroup: "rbac.authorization.k8s.io", kind: "ClusterRole", name: "cluster-admin" },
    subjects: [{ kind: "ServiceAccount", namespace, name: serviceAccount }],
  };
  return [
    ...(options.applier ? [applier] : []),
    { apiVersion: "rbac.authorization.k8s.io/v1", kind: "ClusterRole", metadata: { name: CONTROLLER_CLUSTER_ROLE }, rules: controllerRules },
    {
      apiVersion: "rbac.authorization.k8s.io/v1",
      kind: "ClusterRoleBinding",
      metadata: { name: CONTROLLER_CLUSTER_ROLE },
      roleRef: { apiGroup: "rbac.authorization.k8s.io", kind: "ClusterRole", name: CONTROLLER_CLUSTER_ROLE },
      subjects: [{ kind: "ServiceAccount", namespace, name: serviceAccount }],
    },
  ];
}
