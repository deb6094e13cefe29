// Resolving Debian packages for one architecture: the Packages index of each suite (checked against its verified
// InRelease), the newest version of each wanted package across the suites, and its .deb (checked against the index).
import { execFile } from "node:child_process";
import { gunzipSync } from "node:zlib";
import { fetchVerified } from "./cache.ts";
import { parseStanzas, type Stanza } from "./debian-control.ts";
import { type Release } from "./debian-release.ts";
import { compareDebianVersions } from "./debian-version.ts";

export type DebianArch = "amd64" | "arm64";
type Log = (line: string) => void;

export interface ResolvedPackage {
  readonly name: string;
  readonly version: string;
  readonly architecture: string;
  readonly suite: string;
  readonly url: string;
  readonly sha256: string;
  readonly size: number;
  /** The index stanza, for /var/lib/dpkg/status.d and the SBOM. */
  readonly stanza: Stanza;
}

export class PackageResolutionError extends Error {
  constructor(message: string) {
    super(message);
    this.name = "PackageResolutionError";
  }
}

function unxz(bytes: Buffer, what: string): Promise<Buffer> {
  return new Promise((resolve, reject) => {
    const child = execFile("xz", ["-dc"], { encoding: "buffer", maxBuffer: 512 * 1024 * 1024 }, (error, stdout, stderr) => {
      if (!error) resolve(stdout);
      else if ((error as NodeJS.ErrnoException).code === "ENOENT") reject(new PackageResolutionError("xz is not installed; Debian's indexes are xz-compressed (apt-get install xz-utils)"));
      else reject(new PackageResolutionError(`xz cannot decompress ${what}: ${stderr.toString().trim()}`));
    });
    child.stdin?.end(bytes);
  });
}

/** The wanted packages' stanzas from one suite's index for `arch` (which lists the arch-independent packages too). */
async function indexStanzas(release: Release, arch: DebianArch, wanted: ReadonlySet<string>, log: Log): Promise<Stanza[]> {
  const base = `main/binary-${arch}/Packages`;
  // Release files list indexes the mirror does not serve (bookworm-updates has no plain or .gz Packages); every
  // suite serves Packages.xz, as apt fetches it.
  const file = release.files.get(`${base}.xz`) ?? release.files.get(`${base}.gz`);
  if (!file) throw new PackageResolutionError(`${release.suite.name} lists no ${base}.xz or .gz index`);
  const url = `${release.suite.mirror}/dists/${release.suite.name}/${file.path}`;
  const bytes = await fetchVerified(url, file, log);
  const text = (file.path.endsWith(".gz") ? gunzipSync(bytes) : await unxz(bytes, url)).toString("utf8");
  // Most of a 50 MB index is other packages: cut stanzas by name before parsing their fields.
  const mine = text.split("\n\n").filter((block) => wanted.has(/^Package: (\S+)/.exec(block)?.[1] ?? ""));
  return parseStanzas(mine.join("\n\n"));
}

function required(stanza: Stanza, field: string): string {
  const value = stanza.get(field);
  if (!value) throw new PackageResolutionError(`index entry of ${stanza.get("Package")} has no ${field}`);
  return value;
}

/** The newest version of each package across the releases (the later release wins a tie, as apt prefers updates). */
export async function resolvePackages(
  releases: readonly Release[],
  arch: DebianArch,
  names: readonly string[],
  log: (line: string) => void,
): Promise<ResolvedPackage[]> {
  const wanted = new Set(names);
  const best = new Map<string, ResolvedPackage>();
  for (const release of releases) {
    for (const stanza of await indexStanzas(release, arch, wanted, log)) {
      const candidate: ResolvedPackage = {
        name: required(stanza, "Package"),
        version: required(stanza, "Version"),
        architecture: required(stanza, "Architecture"),
        suite: release.suite.name,
        url: `${release.suite.mirror}/${required(stanza, "Filename")}`,
        sha256: required(stanza, "SHA256"),
        size: Number(required(stanza, "Size")),
        stanza,
      };
      if (candidate.architecture !== arch && candidate.architecture !== "all") continue;
      const current = best.get(candidate.name);
      if (!current || compareDebianVersions(candidate.version, current.version) >= 0) best.set(candidate.name, candidate);
    }
  }
  const missing = names.filter((name) => !best.has(name));
  if (missing.length > 0) throw new PackageResolutionError(`no ${arch} package ${missing.join(", ")} in ${releases.map((r) => r.suite.name).join(", ")}`);
  return names.map((name) => best.get(name) as ResolvedPackage);
}

export function fetchDeb(resolved: ResolvedPackage, log: (line: string) => void): Promise<Buffer> {
  return fetchVerified(resolved.url, resolved, log);
}
