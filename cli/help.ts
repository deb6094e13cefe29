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

export const MIGRATE_USAGE = `
Usage: ferry migrate [-n NS | -A | --name NAME…] [-f FILE|DIR…] [--dry-run] [--export -o yaml|json] [--force]
       ferry migrate --rollback [-n NS | -A] [--name NAME…] [--dry-run]

Replaces Flux's OCIRepositories (source.toolkit.fluxcd.io/v1) and Kustomizations (kustomize.toolkit.fluxcd.io/v1)
with Ferry's of the same names, every field carried over, and hands Ferry what Flux applied without deleting or
re-creating anything. In order: Flux's objects are suspended (spec.suspend: true); Ferry's OCIRepositories are
created; each Ferry Kustomization is created suspended with Flux's status.inventory, the objects in it are relabelled
(kustomize.toolkit.fluxcd.io/name|namespace become kustomize.ferry.dev/…) and kustomize-controller's field manager
is handed to Ferry's, and then the Kustomization is resumed. Flux's objects are left in place, suspended: delete
them once you are satisfied (their deletion deletes nothing, they are suspended). An interrupted run can be run
again: the Flux objects it suspended carry migrate.ferry.dev/suspended, and what is done is not done twice.

Nothing is changed when anything selected cannot be migrated; each refusal is named: sources other than
OCIRepository (GitRepository, Bucket, HelmRepository, ExternalArtifact), fields or values Ferry's API does not
accept, a Kustomization whose source or dependsOn stays behind, an OCIRepository another Flux Kustomization or
HelmRelease still follows, a Kustomization applying to another cluster (kubeConfig), and Flux objects someone
already suspended (--force migrates them, suspended).

--rollback suspends the Ferry objects ferry migrate wrote, hands their objects (and Ferry's inventory) back to
kustomize-controller, deletes them with deletionPolicy Orphan (nothing they applied is deleted) and resumes Flux's.

Flags:
  -n, --namespace NS     the namespace to migrate (default: the kubeconfig's)
  -A, --all-namespaces   every namespace
  --name NAME            only these Kustomizations and the OCIRepositories they follow (repeatable)
  -f, --file FILE|DIR    read Flux's objects from YAML/JSON files (multi-document; - for stdin); the live objects'
                         status is used when they exist in the cluster (with --export or --dry-run no cluster is
                         read: the files alone are planned)
  --dry-run              print the plan (objects to suspend, to create, inventory sizes) and change nothing
  --export               print Ferry's objects instead of migrating (-o yaml, the default, or -o json)
  --force                migrate Flux objects that were already suspended (Ferry's stay suspended too), and do
                         not wait for a reconcile Flux reports in flight (kustomize-controller is gone)
  --rollback             back to Flux (see above)
  --timeout 5m           how long to wait for a reconcile in flight when a Kustomization is suspended
  --kubeconfig FILE

Exit codes: 0 migrated (or planned), 1 refused or failed, 2 usage error.

Examples:
  ferry migrate -n flux-system --dry-run
  ferry migrate -n apps --name podinfo
  ferry migrate -f clusters/prod/ --export > ferry-objects.yaml
  ferry migrate --rollback -n apps --name podinfo
`;
