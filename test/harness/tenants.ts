// Tenants as e2e tests model them: a ServiceAccount with rights in its own namespace only.

/** A ServiceAccount bound to the built-in admin ClusterRole in its own namespace only. */
export const namespaceAdmin = (namespace: string, name: string) => [
  { apiVersion: "v1", kind: "ServiceAccount", metadata: { namespace, name } },
  {
    apiVersion: "rbac.authorization.k8s.io/v1",
    kind: "RoleBinding",
    metadata: { namespace, name: `${name}-admin` },
    roleRef: { apiGroup: "rbac.authorization.k8s.io", kind: "ClusterRole", name: "admin" },
    subjects: [{ kind: "ServiceAccount", namespace, name }],
  },
];
