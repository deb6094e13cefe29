// What goes into each layer of one platform's image, from the least to the most often changing, so a registry and a
// node keep the lower layers across Ferry releases: the Debian runtime libraries with the base files, Node,
// kustomize, and Ferry (bundle and sandbox).
import type { Stanza } from "./debian-control.ts";
import { type NamedLayer } from "./oci-image.ts";
import { buildLayer } from "./layer.ts";
import { baseEntries, caBundle, keepPackagePath } from "./rootfs.ts";
import { type LayerEntry, LayerEntryError } from "./tar.ts";

export const NODE_PATH = "/usr/local/bin/node";
export const KUSTOMIZE_PATH = "/usr/local/bin/kustomize";
export const FERRY_HOME = "/opt/ferry";

export interface DebianPackageFiles {
  readonly stanza: Stanza;
  readonly entries: readonly LayerEntry[];
}

export interface PlatformParts {
  readonly debian: readonly DebianPackageFiles[];
  readonly node: { readonly binary: Buffer; readonly license: Buffer };
  readonly kustomize: Buffer;
  readonly sandbox: Buffer;
  /** Files of Ferry's bundle, relative to /opt/ferry (package.json, dist/*.mjs…). */
  readonly bundle: ReadonlyMap<string, Buffer>;
}

function sameEntry(a: LayerEntry, b: LayerEntry): boolean {
  if (a.type !== b.type) return false;
  if (a.type === "directory" && b.type === "directory") return true;
  if (a.type === "symlink" && b.type === "symlink") return a.target === b.target;
  return a.type === "file" && b.type === "file" && a.content.equals(b.content) && a.mode === b.mode;
}

/**
 * The packages' files merged as dpkg would install them (a directory shared by several packages once; two packages
 * shipping different content at one path is an error), without docs, and with only the CA bundle of ca-certificates.
 */
export function debianEntries(packages: readonly DebianPackageFiles[]): LayerEntry[] {
  const merged = new Map<string, LayerEntry>();
  const certificates: LayerEntry[] = [];
  for (const { stanza, entries } of packages) {
    const isCaCertificates = stanza.get("Package") === "ca-certificates";
    for (const entry of entries) {
      if (isCaCertificates) certificates.push(entry);
      if (!keepPackagePath(entry.path) || (isCaCertificates && !entry.path.endsWith("/copyright"))) continue;
      const existing = merged.get(entry.path);
      if (existing && !sameEntry(existing, entry)) throw new LayerEntryError(`${entry.path} differs between Debian packages (${stanza.get("Package")} and an earlier one)`);
      merged.set(entry.path, entry);
    }
  }
  return [...merged.values(), ...baseEntries(caBundle(certificates), packages.map(({ stanza }) => stanza))];
}

const executable = (path: string, content: Buffer): LayerEntry => ({ type: "file", path, mode: 0o755, content });
const readable = (path: string, content: Buffer): LayerEntry => ({ type: "file", path, mode: 0o644, content });

export function ferryEntries(bundle: ReadonlyMap<string, Buffer>, sandbox: Buffer): LayerEntry[] {
  return [
    ...[...bundle].map(([path, content]) => (path === "dist/ferry.mjs" ? executable : readable)(`${FERRY_HOME}/${path}`, content)),
    // The controller finds the sandbox beside dist/ferry.mjs (src/sandbox/sandbox.ts, defaultSandboxBinary).
    executable(`${FERRY_HOME}/dist/ferry-sandbox`, sandbox),
  ];
}

export async function platformLayers(parts: PlatformParts, mtime: number): Promise<NamedLayer[]> {
  const layers: [string, LayerEntry[]][] = [
    ["Debian bookworm runtime libraries, CA certificates, users 0/65532/65534", debianEntries(parts.debian)],
    ["Node.js", [executable(NODE_PATH, parts.node.binary), readable("/usr/local/share/doc/node/LICENSE", parts.node.license)]],
    ["kustomize", [executable(KUSTOMIZE_PATH, parts.kustomize)]],
    ["Ferry bundle and ferry-sandbox", ferryEntries(parts.bundle, parts.sandbox)],
  ];
  const built: NamedLayer[] = [];
  for (const [comment, entries] of layers) built.push({ comment, layer: await buildLayer(entries, mtime) });
  return built;
}
