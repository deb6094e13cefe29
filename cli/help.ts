// The longer help of commands (`ferry <command> --help`), kept apart from the command modules so that printing
// help loads none of them.

export const CHECK_USAGE = `
Usage: ferry check [--pre] [-n ferry-system] [--kubeconfig FILE] [-o json|yaml]

Without --pre: Ferry's CRDs are installed and Established at this CLI's version, the controller Deployment is Ready
(kstatus), the controller's version matches the CLI's, and a controller holds a fresh leader-election Lease.
With --pre, before installing: the Kubernetes version (>=1.29) and the caller's permissions to install (create and
patch every kind, and RBAC's escalate/bind rules for the controller's roles and the cluster-admin binding).
Exit code 1 when any check fails.

Flags:
  --pre              check the prerequisites of an install instead of an install
  --multi-tenant     (--pre) check for a --multi-tenant install (impersonation instead of cluster-admin)
  -n, --namespace    the install's namespace (default ferry-system)
  -o, --output       json or yaml: print the report as an object
  --kubeconfig       the kubeconfig (default: KUBECONFIG, else ~/.kube/config)

Examples:
  ferry check --pre
  ferry check -n ferry-system -o json
`;

export const UNINSTALL_USAGE = `
Usage: ferry uninstall [-n ferry-system] [--keep-namespace] [--silent] [--dry-run] [--kubeconfig FILE] [--timeout 5m]

Removes Ferry and keeps what it applied: deletes the controller Deployment and waits until its pods are gone,
suspends every Kustomization and OCIRepository (all namespaces), removes Ferry's finalizer from each and deletes
them (so none is finalized and nothing it applied is pruned), then deletes the install's RBAC, Service,
NetworkPolicy, ServiceAccount, the CRDs and the namespace. Running it again finds nothing and exits 0.

Flags:
  --keep-namespace   leave the namespace (and anything else in it)
  -s, --silent       do not ask for confirmation (required when stdin is not a terminal)
  --dry-run          print what would be deleted and change nothing
  -n, --namespace    the install's namespace (default ferry-system)
  --timeout          how long to wait for everything to be gone (default 5m)

Examples:
  ferry uninstall
  ferry uninstall --silent --keep-namespace
`;

export const VERSION_USAGE = `
Usage: ferry version [--client] [-n ferry-system] [--kubeconfig FILE] [-o json|yaml]

Prints the CLI's version and, unless --client, the controller's found in the cluster (its Deployment's version
label and image) and the version label of each of Ferry's CRDs. Exit code 1 when the cluster cannot be read or
Ferry is not installed there; the client's version is printed first all the same.

Examples:
  ferry version --client
  ferry version -n ferry-system -o json
`;
