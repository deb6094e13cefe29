// The test bed's peers: which pinned Go module builds which binaries, and how.
// Versions live in test/testbed/modules/<module>/go.mod (and go.sum); this file says what to build from them.

export const KUBERNETES_VERSION = "v1.36.3";

export interface ModulePeer {
  /** Directory under test/testbed/modules holding the wrapper go.mod/go.sum. */
  readonly module: string;
  /** Binary name -> Go package built from the wrapper module. */
  readonly binaries: Readonly<Record<string, string>>;
  readonly tags?: readonly string[];
  readonly ldflags?: readonly string[];
  /** Extra environment for `go build` (e.g. GONOSUMDB for forks missing from the checksum database). */
  readonly env?: Readonly<Record<string, string>>;
  /** Files copied out of a module in the wrapper's build list: module path -> (dest -> path inside module). */
  readonly share?: Readonly<Record<string, Readonly<Record<string, string>>>>;
  /** Files made by running a binary of this peer after it is built (e.g. controller-gen writing CRDs). */
  readonly generate?: readonly Generated[];
}

/**
 * A directory of the share dir written by one of a peer's binaries, run in the wrapper module's directory with
 * `args`, in which `{module:<path>}` is the directory of that module in the wrapper's build list (`go list -m
 * -json`) and `{out}` the directory to write (a temporary one, renamed to `dest` when the command succeeds).
 */
export interface Generated {
  readonly binary: string;
  readonly args: readonly string[];
  /** Directory under the share dir. */
  readonly dest: string;
}

/**
 * A peer that cannot be built through a wrapper module (its go:embed needs files that are not in the module zip),
 * so it is built inside a writable copy of the module, verified against the pinned checksum first.
 */
export interface CopiedModulePeer {
  readonly module: string;
  readonly copyOf: { readonly path: string; readonly version: string; readonly sum: string };
  readonly binaries: Readonly<Record<string, string>>;
  /** Files created in the copy before building (relative path -> content). */
  readonly placeholders: Readonly<Record<string, string>>;
  readonly ldflags?: readonly string[];
}

export type Peer = ModulePeer | CopiedModulePeer;

function stampVersion(pkg: string, version: string): string[] {
  const [major, minor] = version.replace(/^v/, "").split(".");
  return [
    `-X ${pkg}.gitVersion=${version}`,
    `-X ${pkg}.gitMajor=${major}`,
    `-X ${pkg}.gitMinor=${minor}`,
    `-X ${pkg}.gitTreeState=clean`,
    `-X ${pkg}.buildDate=1970-01-01T00:00:00Z`,
  ];
}

export const PEERS: readonly Peer[] = [
  {
    module: "k8s",
    binaries: {
      "kube-apiserver": "k8s.io/kubernetes/cmd/kube-apiserver",
      "kube-controller-manager": "k8s.io/kubernetes/cmd/kube-controller-manager",
      "kube-scheduler": "k8s.io/kubernetes/cmd/kube-scheduler",
      kubectl: "k8s.io/kubernetes/cmd/kubectl",
    },
    tags: ["providerless"],
    // Without the stamp the binaries report v0.0.0-master, which breaks client version checks.
    ldflags: [
      ...stampVersion("k8s.io/component-base/version", KUBERNETES_VERSION),
      ...stampVersion("k8s.io/client-go/pkg/version", KUBERNETES_VERSION),
    ],
  },
  { module: "etcd", binaries: { etcd: "go.etcd.io/etcd/server/v3" } },
  {
    module: "kwok",
    binaries: { kwok: "sigs.k8s.io/kwok/cmd/kwok" },
    share: {
      "sigs.k8s.io/kwok": {
        "kwok-stages/node-initialize.yaml": "kustomize/stage/node/fast/node-initialize.yaml",
        "kwok-stages/node-heartbeat-with-lease.yaml":
          "kustomize/stage/node/heartbeat-with-lease/node-heartbeat-with-lease.yaml",
        "kwok-stages/pod-ready.yaml": "kustomize/stage/pod/fast/pod-ready.yaml",
        "kwok-stages/pod-complete.yaml": "kustomize/stage/pod/fast/pod-complete.yaml",
        "kwok-stages/pod-delete.yaml": "kustomize/stage/pod/fast/pod-delete.yaml",
      },
    },
  },
  {
    // zot's current module paths (zotregistry.dev/zot/v2, zotregistry.io/zot) are refused by the module proxy
    // reachable here; v1.4.3 under its GitHub path is the one zot release it serves. Its forks of trivy and
    // containers/image are not in the checksum database, so go.sum in the wrapper is their only pin.
    module: "zot",
    binaries: { zot: "zotregistry.io/zot/cmd/zot" },
    tags: ["containers_image_openpgp", "exclude_graphdriver_btrfs", "exclude_graphdriver_devicemapper"],
    env: { GONOSUMDB: "github.com/project-zot,github.com/anuvu" },
  },
  { module: "distribution", binaries: { registry: "github.com/distribution/distribution/v3/cmd/registry" } },
  { module: "crane", binaries: { crane: "github.com/google/go-containerregistry/cmd/crane" } },
  { module: "oras", binaries: { oras: "oras.land/oras/cmd/oras" } },
  { module: "cosign", binaries: { cosign: "github.com/sigstore/cosign/v3/cmd/cosign" } },
  { module: "kustomize", binaries: { kustomize: "sigs.k8s.io/kustomize/kustomize/v5" } },
  // SOPS and age encrypt the Kustomization decryption tests' Secrets, as Flux users do.
  { module: "sops", binaries: { sops: "github.com/getsops/sops/v3/cmd/sops" } },
  { module: "age", binaries: { age: "filippo.io/age/cmd/age", "age-keygen": "filippo.io/age/cmd/age-keygen" } },
  {
    module: "flux",
    copyOf: {
      path: "github.com/fluxcd/flux2/v2",
      version: "v2.9.5",
      sum: "h1:jwCccxvkD+2QnsjN+pl5QqM8KnFUwA8pIoQ1Lf0avkA=",
    },
    binaries: { flux: "./cmd/flux" },
    // flux embeds generated install manifests that are not in the module zip; the artifact commands never read them.
    placeholders: {
      "cmd/flux/manifests/placeholder.yaml": "# install manifests are not part of the test bed\n",
    },
    ldflags: ["-X main.VERSION=2.9.5"],
  },
  {
    // Flux's engine, not Flux's controller: our own small main.go (in the module directory) driving the fluxcd/pkg
    // libraries kustomize-controller is built on (kustomize, ssa, runtime, cli-utils kstatus) the way it drives them.
    // kustomize-controller itself cannot be built here: the module proxy refuses four fluxcd/pkg modules it needs.
    module: "flux-engine",
    binaries: { "flux-engine": "." },
  },
  {
    // Flux's source-controller itself (v1.9.5, as flux v2.9.5 installs it), run out of cluster as upstream's `make run`
    // does. The wrapper copies its go-digest replace and replaces github.com/fluxcd/pkg/artifact v0.18.3, which the
    // module proxy here refuses, with v0.18.0 (see the module's go.mod). Its CRDs come from the flux-crds peer.
    module: "source-controller",
    binaries: { "source-controller": "github.com/fluxcd/source-controller" },
  },
  {
    // Flux's kustomize-controller itself (v1.9.5, as flux v2.9.5 installs it), run out of cluster next to
    // source-controller. The wrapper copies its go-digest, kustomize and yaml.v3 replaces; every module version it
    // pins is served by the module proxy here. Its CRDs come from the flux-crds peer.
    module: "kustomize-controller",
    binaries: { "kustomize-controller": "github.com/fluxcd/kustomize-controller" },
  },
  {
    // Flux's CustomResourceDefinitions, generated by controller-gen from the API modules the flux CLI pins, as the
    // controllers. `make manifests` does: share/flux-crds/source/source.toolkit.fluxcd.io_ocirepositories.yaml etc.
    module: "flux-crds",
    binaries: { "controller-gen": "sigs.k8s.io/controller-tools/cmd/controller-gen" },
    generate: [
      {
        binary: "controller-gen",
        args: ["crd", "paths={module:github.com/fluxcd/source-controller/api}/...", "output:crd:dir={out}"],
        dest: "flux-crds/source",
      },
      {
        binary: "controller-gen",
        args: ["crd", "paths={module:github.com/fluxcd/kustomize-controller/api}/...", "output:crd:dir={out}"],
        dest: "flux-crds/kustomize",
      },
    ],
  },
];

export function isCopiedModulePeer(peer: Peer): peer is CopiedModulePeer {
  return "copyOf" in peer;
}
