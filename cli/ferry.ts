#!/usr/bin/env node
// The ferry command: `ferry <verb> <noun> [flags]`, as flux spells its commands. Command modules are loaded
// lazily so that a short command does not pay for the registry client's start-up.
import { enableCompileCache } from "node:module";
import { FerryError } from "../src/errors.ts";
import { FERRY_VERSION } from "../src/version.ts";
import { EXIT_FAILURE, EXIT_OK, EXIT_USAGE, UsageError } from "./errors.ts";
import { CHECK_USAGE, MIGRATE_USAGE, UNINSTALL_USAGE, VERSION_USAGE } from "./help.ts";

// V8 code caching for the lazily loaded command modules: it roughly halves the start-up of repeated runs in CI.
enableCompileCache();

// A command resolves to false when it ran but found a difference or failure worth exit code 1 (e.g. diff).
type Command = (args: readonly string[]) => Promise<unknown>;

const artifactCommands = () => import("./commands/artifact.ts");
const signingCommands = () => import("./commands/signing.ts");
const sourceCommands = () => import("./commands/sources.ts");
const kustomizationCommands = () => import("./commands/kustomizations.ts");

interface CommandEntry {
  readonly summary: string;
  /** The longer help `--help` prints under the summary: flags and examples, as flux's and kubectl's help teach. */
  readonly usage?: string;
  readonly load: () => Promise<Command>;
}

const COMMANDS: Record<string, CommandEntry> = {
  "push artifact": {
    summary: "Package a directory or file as a Flux-format OCI artifact and push it",
    load: async () => (await artifactCommands()).pushArtifactCommand,
  },
  "pull artifact": {
    summary: "Download an artifact by digest, verify it, and extract it to --output",
    load: async () => (await artifactCommands()).pullArtifactCommand,
  },
  "tag artifact": {
    summary: "Add tags to an existing artifact",
    load: async () => (await artifactCommands()).tagArtifactCommand,
  },
  "list artifacts": {
    summary: "List a repository's artifacts with their digest, source and revision",
    load: async () => (await artifactCommands()).listArtifactsCommand,
  },
  "diff artifact": {
    summary: "Compare a local directory with an artifact, file by file",
    load: async () => (await artifactCommands()).diffArtifactCommand,
  },
  "build artifact": {
    summary: "Write the artifact's content layer (.tgz) without pushing it",
    load: async () => (await artifactCommands()).buildArtifactCommand,
  },
  "verify artifact": {
    summary: "Verify an artifact's cosign signature (bundle or legacy) against public keys",
    load: async () => (await signingCommands()).verifyArtifactCommand,
  },
  sign: {
    summary: "Sign an artifact's manifest digest with a cosign key (Sigstore bundle and/or legacy .sig)",
    load: async () => (await signingCommands()).signCommand,
  },
  "get sources": {
    summary: "List OCIRepositories: ferry get sources oci [NAME…] [-n NS | -A]",
    load: async () => (await sourceCommands()).getSourcesCommand,
  },
  "reconcile source": {
    summary: "Reconcile an OCIRepository now and wait for it: ferry reconcile source oci NAME",
    load: async () => (await sourceCommands()).reconcileSourceCommand,
  },
  "suspend source": {
    summary: "Suspend reconciliation of an OCIRepository",
    load: async () => (await sourceCommands()).suspendSourceCommand,
  },
  "resume source": {
    summary: "Resume reconciliation of an OCIRepository and reconcile it now",
    load: async () => (await sourceCommands()).resumeSourceCommand,
  },
  "create source": {
    summary: "Create an OCIRepository (or print it with --export): ferry create source oci NAME --url …",
    load: async () => (await sourceCommands()).createSourceCommand,
  },
  "get kustomizations": {
    summary: "List Kustomizations: ferry get kustomizations [NAME…] [-n NS | -A]",
    load: async () => (await kustomizationCommands()).getKustomizationsCommand,
  },
  "reconcile kustomization": {
    summary: "Reconcile a Kustomization now and wait (--with-source reconciles its OCIRepository first)",
    load: async () => (await kustomizationCommands()).reconcileKustomizationCommand,
  },
  "suspend kustomization": {
    summary: "Suspend reconciliation of a Kustomization",
    load: async () => (await kustomizationCommands()).suspendKustomizationCommand,
  },
  "resume kustomization": {
    summary: "Resume reconciliation of a Kustomization and reconcile it now",
    load: async () => (await kustomizationCommands()).resumeKustomizationCommand,
  },
  "create kustomization": {
    summary: "Create or update a Kustomization and wait until Ready (--export prints it): --source=NAME --path=./",
    load: async () => (await kustomizationCommands()).createKustomizationCommand,
  },
  "diff kustomization": {
    summary: "Diff a local --path, built as the Kustomization would build it, against the cluster; exit 1 on changes",
    load: async () => (await kustomizationCommands()).diffKustomizationCommand,
  },
  "get all": {
    summary: "List OCIRepositories and Kustomizations: ferry get all [-n NS | -A]",
    load: async () => (await kustomizationCommands()).getAllCommand,
  },
  "tree kustomization": {
    summary: "Show what a Kustomization applied, from its inventory",
    load: async () => (await kustomizationCommands()).treeKustomizationCommand,
  },
  install: {
    summary: "Install the controller and wait until it is Available (--export prints the manifests) [--multi-tenant] [--image …]",
    usage: `
Flags:
  --export                      print the manifests as YAML instead of applying them
  -n, --namespace NAME          the controller's namespace (default ferry-system)
  --image REF                   the controller image (default ghcr.io/ferry-cd/ferry:v<version>)
  --registry HOST/PATH          pull the image from this mirror (air-gapped installs)
  --image-pull-secret NAME      a Secret in the namespace the kubelet pulls the image with
  --multi-tenant                no cluster-admin: the controller applies only as tenants' ServiceAccounts
  --watch-all-namespaces=false  reconcile (and read Secrets in) the controller's own namespace only
  --shards N                    add ferry-controller-shard1..N for objects labelled sharding.fluxcd.io/key=shardK
                                (the main controller keeps the unlabelled ones); fewer than before deletes the rest
  --network-policy=false        leave out the NetworkPolicy
  --memory-limit-mib N          the controller's memory limit (default 1024); its heap gets three quarters
  --cache-volume-size 4Gi       bound of the artifact cache volume (0: none); past it the pod is evicted
  --tmp-volume-size 2Gi         bound of /tmp, where artifacts are unpacked and built (0: none)
  --log-level debug|info|error  the controller's log level (default info)
  --version vX.Y.Z              must be this CLI's version: a CLI installs its own manifests
  --kubeconfig PATH, --timeout 5m

Examples:
  ferry install
  ferry install --multi-tenant --registry=registry.internal/ferry --image-pull-secret=regcred
  ferry install --shards=2
  ferry install --export > ferry.yaml`,
    load: async () => (await import("./commands/install.ts")).installCommand,
  },
  bootstrap: {
    summary: "Push Ferry's install to oci://REGISTRY/REPO[:TAG], install Ferry, and make it reconcile itself from there",
    usage: `
Usage: ferry bootstrap oci://REGISTRY/REPOSITORY[:TAG] [flags]   (TAG defaults to latest)

Pushes Ferry's own manifests (with --path, your cluster config too) as an artifact, installs Ferry, and creates the
OCIRepository and Kustomization "ferry-system" that apply that artifact. From then on the controller manages itself:
re-running bootstrap with a newer ferry (or other install flags) pushes new manifests and waits until the
controller has applied them to itself. A re-run with the same flags changes nothing.

Flags:
  --path DIR                    also deliver DIR (under cluster/, applied by Kustomization cluster-config)
  --sign --key cosign.key       sign the artifact (password from COSIGN_PASSWORD); the controller verifies it
  --sign --keyless --certificate-identity ID --certificate-oidc-issuer URL
                                sign keylessly (public-good Sigstore); the controller accepts that identity only
                                (--certificate-identity-regexp, --certificate-oidc-issuer-regexp: regular expressions)
  --creds user:password         registry credentials for the push, and for the controller (Secret ferry-registry)
  --pull-creds user:password    read-only credentials for the controller instead (the cluster then holds no push right)
  --pull-url oci://HOST/REPO    where the cluster reaches the same repository, when not at the push's address
                                (kind/k3d local registries: push to localhost:5001, pull from kind-registry:5000)
  --ca-file FILE                the registry's CA, for the push and the controller (Secret ferry-registry-tls)
  --cert-file FILE --key-file FILE
                                a client certificate for the registry, for the push and the controller
  --insecure-registry           plain HTTP to the registry
  --interval 1m                 how often the controller looks for a new artifact
  --timeout 5m                  how long to wait for each step (the install, the source's fetch, the self-upgrade)
  --force                       take over a cluster that follows another registry, runs a newer Ferry, or verifies
                                signatures a run without --sign would stop verifying
  --prune-cluster-config        without --path over an earlier --path: let the controller prune what it applied
  and every install flag (-n, --image, --registry, --multi-tenant, --log-level, …; see ferry install --help)

Examples:
  ferry bootstrap oci://ghcr.io/acme/fleet/prod --path=clusters/prod
  COSIGN_PASSWORD=… ferry bootstrap oci://registry.internal/ferry:stable --sign --key=cosign.key
  ferry bootstrap oci://localhost:5001/ferry --insecure-registry --pull-url=oci://kind-registry:5000/ferry`,
    load: async () => (await import("./commands/bootstrap.ts")).bootstrapCommand,
  },
  check: {
    summary: "Check an install (CRDs, controller, versions, leader), or with --pre the cluster and permissions before one",
    usage: CHECK_USAGE,
    load: async () => (await import("./commands/check.ts")).checkCommand,
  },
  uninstall: {
    summary: "Remove Ferry (controller, CRDs, RBAC, namespace) and keep everything it applied",
    usage: UNINSTALL_USAGE,
    load: async () => (await import("./commands/uninstall.ts")).uninstallCommand,
  },
  migrate: {
    summary: "Move Flux's OCIRepositories and Kustomizations to Ferry in place (--dry-run, --export, --rollback)",
    usage: MIGRATE_USAGE,
    load: async () => (await import("./commands/migrate.ts")).migrateCommand,
  },
  version: {
    summary: "Print the CLI's version and the controller's and CRDs' found in the cluster (--client: the CLI's only)",
    usage: VERSION_USAGE,
    load: async () => (await import("./commands/version.ts")).versionCommand,
  },
  controller: {
    summary: "Run the controller (OCIRepository reconciler) against the current kubeconfig",
    load: async () => (await import("./commands/controller.ts")).controllerCommand,
  },
  keygen: {
    summary: "Write a cosign-compatible key pair (cosign.key, cosign.pub); password from COSIGN_PASSWORD",
    load: async () => (await signingCommands()).keygenCommand,
  },
};

function usage(): string {
  const width = Math.max(...Object.keys(COMMANDS).map((name) => name.length));
  const lines = Object.entries(COMMANDS).map(([name, command]) => `  ${name.padEnd(width)}  ${command.summary}`);
  return [
    "Usage: ferry <command> [flags]",
    "",
    "Commands:",
    ...lines,
    "",
    "Registry flags: --creds user:password, --insecure-registry, --ca-file, --cert-file, --key-file, --timeout 5m",
    "Kubernetes flags: --kubeconfig, -n/--namespace, -A/--all-namespaces (get), -o json|yaml (get, diff)",
    "Exit codes: 0 success, 1 failure (or differences found by diff), 2 usage error.",
  ].join("\n");
}

function commandHelp(name: string, command: CommandEntry): string {
  return `ferry ${name}: ${command.summary}\n${command.usage ? `\n${command.usage.trim()}\n` : ""}`;
}

async function main(argv: readonly string[]): Promise<number> {
  const [verb, noun, ...remaining] = argv;
  if (verb === "--version") {
    process.stdout.write(`ferry ${FERRY_VERSION}\n`);
    return EXIT_OK;
  }
  if (verb === undefined || verb === "help" || verb === "--help" || verb === "-h") {
    process.stdout.write(`${usage()}\n`);
    return EXIT_OK;
  }
  // Two-word commands (push artifact) first, then one-word ones (sign, keygen) whose arguments start at `noun`.
  const twoWords = COMMANDS[`${verb} ${noun ?? ""}`];
  const command = twoWords ?? COMMANDS[verb];
  const rest = twoWords ? remaining : [noun, ...remaining].filter((arg): arg is string => arg !== undefined);
  if (!command) {
    process.stderr.write(`ferry: unknown command "${[verb, noun].filter(Boolean).join(" ")}"\n\n${usage()}\n`);
    return EXIT_USAGE;
  }
  if (rest.includes("--help") || rest.includes("-h")) {
    process.stdout.write(commandHelp(twoWords ? `${verb} ${noun}` : verb, command));
    return EXIT_OK;
  }
  try {
    if (command === COMMANDS.controller) {
      const { heapBudgetMiB, needsHeapBudget, runWithHeapBudget } = await import("./heap.ts");
      if (needsHeapBudget()) await runWithHeapBudget(heapBudgetMiB(rest));
    }
    const succeeded = await (await command.load())(rest);
    return succeeded === false ? EXIT_FAILURE : EXIT_OK;
  } catch (error) {
    if (error instanceof UsageError) {
      process.stderr.write(`✗ ${error.message}\n`);
      return EXIT_USAGE;
    }
    const message = error instanceof FerryError || error instanceof Error ? error.message : String(error);
    process.stderr.write(`✗ ${message}\n`);
    if (process.env.FERRY_DEBUG && error instanceof Error) process.stderr.write(`${error.stack}\n`);
    return EXIT_FAILURE;
  }
}

process.exitCode = await main(process.argv.slice(2));
