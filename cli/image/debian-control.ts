// Debian control-file stanzas (Packages indexes, InRelease headers): `Field: value` lines, continuation lines
// starting with a space, stanzas separated by blank lines.

export type Stanza = ReadonlyMap<string, string>;

export function parseStanzas(text: string): Stanza[] {
  const stanzas: Stanza[] = [];
  for (const block of text.split(/\n\s*\n/)) {
    const fields = new Map<string, string>();
    let last: string | undefined;
    for (const line of block.split("\n")) {
      if (line === "") continue;
      if ((line.startsWith(" ") || line.startsWith("\t")) && last !== undefined) {
        fields.set(last, `${fields.get(last) ?? ""}\n${line}`);
        continue;
      }
      const colon = line.indexOf(":");
      if (colon <= 0) continue;
      last = line.slice(0, colon);
      fields.set(last, line.slice(colon + 1).trim());
    }
    if (fields.size > 0) stanzas.push(fields);
  }
  return stanzas;
}

export interface IndexFile {
  readonly sha256: string;
  readonly size: number;
  readonly path: string;
}

/** The SHA256 list of a Release file: the index files it vouches for. */
export function releaseFiles(release: Stanza): Map<string, IndexFile> {
  const files = new Map<string, IndexFile>();
  for (const line of (release.get("SHA256") ?? "").split("\n")) {
    const [sha256, size, path] = line.trim().split(/\s+/);
    if (sha256 && size && path) files.set(path, { sha256, size: Number(size), path });
  }
  return files;
}

/** A stanza as written back out, e.g. into /var/lib/dpkg/status.d for image scanners. */
export function formatStanza(stanza: Stanza, fields: readonly string[]): string {
  return fields.filter((field) => stanza.has(field)).map((field) => `${field}: ${stanza.get(field)}\n`).join("");
}
