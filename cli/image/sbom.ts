// The image's SBOM as SPDX 2.3 JSON: every Debian package of each platform, the Node binary, kustomize, Ferry
// itself and the npm packages its bundle is built from (package-lock.json's non-dev entries). Attached to the
// image index as an OCI 1.1 referrer with artifactType application/spdx+json.
import { createHash } from "node:crypto";
import { readFile } from "node:fs/promises";
import { join } from "node:path";
import type { ResolvedPackage } from "./debian-packages.ts";

export const SPDX_MEDIA_TYPE = "application/spdx+json";

export interface SbomPackage {
  readonly id: string;
  readonly name: string;
  readonly version: string;
  readonly purl: string;
  readonly downloadLocation?: string;
  readonly license?: string;
  readonly checksum?: { readonly algorithm: "SHA256" | "SHA512"; readonly value: string };
}

export interface SbomInputs {
  readonly imageName: string;
  readonly ferryVersion: string;
  readonly indexDigest: string;
  readonly created: string;
  readonly packages: readonly SbomPackage[];
}

const spdxId = (value: string) => `SPDXRef-${value.replace(/[^A-Za-z0-9.-]/g, "-")}`;

export function debianPackage(resolved: ResolvedPackage, arch: string): SbomPackage {
  const qualifiers = `arch=${resolved.architecture}&distro=debian-12`;
  return {
    id: `deb-${arch}-${resolved.name}`,
    name: resolved.name,
    version: resolved.version,
    purl: `pkg:deb/debian/${resolved.name}@${encodeURIComponent(resolved.version)}?${qualifiers}`,
    downloadLocation: resolved.url,
    checksum: { algorithm: "SHA256", value: resolved.sha256 },
  };
}

/** sha512-<base64> (npm's integrity) as SPDX's hex checksum. */
function integrityChecksum(integrity: string | undefined): SbomPackage["checksum"] {
  const match = /^sha512-(.+)$/.exec(integrity ?? "");
  return match?.[1] ? { algorithm: "SHA512", value: Buffer.from(match[1], "base64").toString("hex") } : undefined;
}

interface LockEntry {
  version?: string;
  resolved?: string;
  integrity?: string;
  license?: string;
  dev?: boolean;
  link?: boolean;
}

/** The npm packages production installs (not dev-only), by package-lock.json. */
export async function npmPackages(root: string): Promise<SbomPackage[]> {
  const lock = JSON.parse(await readFile(join(root, "package-lock.json"), "utf8")) as { packages: Record<string, LockEntry> };
  return Object.entries(lock.packages)
    .filter(([path, entry]) => path.startsWith("node_modules/") && !entry.dev && !entry.link && entry.version)
    .map(([path, entry]) => {
      const name = path.slice(path.lastIndexOf("node_modules/") + "node_modules/".length);
      const checksum = integrityChecksum(entry.integrity);
      return {
        id: `npm-${name}-${entry.version}`,
        name,
        version: entry.version as string,
        purl: `pkg:npm/${name.replace("@", "%40")}@${entry.version}`,
        ...(entry.resolved ? { downloadLocation: entry.resolved } : {}),
        ...(entry.license ? { license: entry.license } : {}),
        ...(checksum ? { checksum } : {}),
      };
    })
    .filter((entry, index, all) => all.findIndex((other) => other.id === entry.id) === index);
}

function spdxPackage(entry: SbomPackage) {
  return {
    SPDXID: spdxId(entry.id),
    name: entry.name,
    versionInfo: entry.version,
    downloadLocation: entry.downloadLocation ?? "NOASSERTION",
    filesAnalyzed: false,
    licenseConcluded: "NOASSERTION",
    licenseDeclared: entry.license && /^[A-Za-z0-9.+-]+( (OR|AND) [A-Za-z0-9.+-]+)*$/.test(entry.license) ? entry.license : "NOASSERTION",
    copyrightText: "NOASSERTION",
    ...(entry.checksum ? { checksums: [{ algorithm: entry.checksum.algorithm, checksumValue: entry.checksum.value }] } : {}),
    externalRefs: [{ referenceCategory: "PACKAGE-MANAGER", referenceType: "purl", referenceLocator: entry.purl }],
  };
}

export function spdxDocument(inputs: SbomInputs): Buffer {
  const image: SbomPackage = {
    id: "image",
    name: inputs.imageName,
    version: inputs.ferryVersion,
    purl: `pkg:oci/ferry@${encodeURIComponent(inputs.indexDigest)}`,
  };
  const namespaceHash = createHash("sha256").update(inputs.indexDigest).digest("hex");
  const document = {
    spdxVersion: "SPDX-2.3",
    dataLicense: "CC0-1.0",
    SPDXID: "SPDXRef-DOCUMENT",
    name: `${inputs.imageName}@${inputs.indexDigest}`,
    documentNamespace: `https://ferry.dev/spdx/image/${namespaceHash}`,
    creationInfo: { created: inputs.created, creators: ["Tool: ferry-npm-run-image"] },
    packages: [image, ...inputs.packages].map(spdxPackage),
    relationships: [
      { spdxElementId: "SPDXRef-DOCUMENT", relationshipType: "DESCRIBES", relatedSpdxElement: spdxId(image.id) },
      ...inputs.packages.map((entry) => ({ spdxElementId: spdxId(image.id), relationshipType: "CONTAINS", relatedSpdxElement: spdxId(entry.id) })),
    ],
  };
  return Buffer.from(`${JSON.stringify(document, null, 2)}\n`);
}
