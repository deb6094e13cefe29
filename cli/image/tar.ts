// Deterministic image-layer tarballs: the same entries always give the same bytes. Entries are sorted, every parent
// directory is present, times are one fixed value, owners are numeric (no user or group names), and nothing of the
// machine that built the layer (its clock, umask or users) reaches the archive.

export interface FileEntry {
  readonly type: "file";
  readonly path: string;
  readonly mode: number;
  readonly content: Buffer;
  readonly uid?: number;
  readonly gid?: number;
}

export interface DirectoryEntry {
  readonly type: "directory";
  readonly path: string;
  readonly mode: number;
  readonly uid?: number;
  readonly gid?: number;
}

export interface SymlinkEntry {
  readonly type: "symlink";
  readonly path: string;
  readonly target: string;
}

export type LayerEntry = FileEntry | DirectoryEntry | SymlinkEntry;

export class LayerEntryError extends Error {
  constructor(message: string) {
    super(message);
    this.name = "LayerEntryError";
  }
}

const BLOCK = 512;
const TYPEFLAG = { file: "0", symlink: "2", directory: "5" } as const;

/** A path as layers name it: relative, `/`-separated, no `.`/`..` segments, no trailing slash. */
export function normalisePath(path: string): string {
  const segments = path.split("/").filter((segment) => segment !== "" && segment !== ".");
  if (segments.length === 0 || segments.includes("..")) throw new LayerEntryError(`layer path "${path}" is empty or leaves the root`);
  return segments.join("/");
}

function writeField(block: Buffer, offset: number, length: number, value: string): void {
  const bytes = Buffer.from(value, "utf8");
  if (bytes.length > length) throw new LayerEntryError(`tar field overflow: "${value}" is over ${length} bytes`);
  bytes.copy(block, offset);
}

function writeOctal(block: Buffer, offset: number, length: number, value: number): void {
  writeField(block, offset, length, `${value.toString(8).padStart(length - 1, "0")}\0`);
}

function paxRecord(key: string, value: string): string {
  // "<length> <key>=<value>\n", where length counts the whole record including its own digits.
  const body = ` ${key}=${value}\n`;
  let length = Buffer.byteLength(body) + 1;
  while (String(length).length + Buffer.byteLength(body) !== length) length = String(length).length + Buffer.byteLength(body);
  return `${length}${body}`;
}

function padded(bytes: Buffer): Buffer {
  const remainder = bytes.length % BLOCK;
  return remainder === 0 ? bytes : Buffer.concat([bytes, Buffer.alloc(BLOCK - remainder)]);
}

interface HeaderFields {
  readonly name: string;
  readonly mode: number;
  readonly uid: number;
  readonly gid: number;
  readonly size: number;
  readonly mtime: number;
  readonly typeflag: string;
  readonly linkname: string;
}

function ustarHeader(fields: HeaderFields): Buffer {
  const block = Buffer.alloc(BLOCK);
  writeField(block, 0, 100, fields.name);
  writeOctal(block, 100, 8, fields.mode);
  writeOctal(block, 108, 8, fields.uid);
  writeOctal(block, 116, 8, fields.gid);
  writeOctal(block, 124, 12, fields.size);
  writeOctal(block, 136, 12, fields.mtime);
  block.fill(0x20, 148, 156); // the checksum counts its own field as spaces
  writeField(block, 156, 1, fields.typeflag);
  writeField(block, 157, 100, fields.linkname);
  writeField(block, 257, 6, "ustar\0");
  writeField(block, 263, 2, "00");
  let sum = 0;
  for (const byte of block) sum += byte;
  writeField(block, 148, 8, `${sum.toString(8).padStart(6, "0")}\0 `);
  return block;
}

/** Header blocks for one entry; a PAX record carries a path or link target too long for USTAR's fields. */
function headerBlocks(fields: HeaderFields): Buffer {
  const tooLong = (value: string) => Buffer.byteLength(value) > 100;
  if (!tooLong(fields.name) && !tooLong(fields.linkname)) return ustarHeader(fields);
  const records = (tooLong(fields.name) ? paxRecord("path", fields.name) : "") + (tooLong(fields.linkname) ? paxRecord("linkpath", fields.linkname) : "");
  const pax = Buffer.from(records, "utf8");
  const short = (value: string) => Buffer.from(value, "utf8").subarray(0, 100).toString("utf8").replace(/\uFFFD$/, "");
  return Buffer.concat([
    ustarHeader({ ...fields, name: short(`PaxHeaders/${fields.name.slice(-80)}`), size: pax.length, typeflag: "x", linkname: "", mode: 0o644 }),
    padded(pax),
    ustarHeader({ ...fields, name: short(fields.name), linkname: short(fields.linkname) }),
  ]);
}

/** Adds the parent directories entries leave out (0755, root), refuses duplicates, and sorts by path. */
export function completeEntries(entries: readonly LayerEntry[]): LayerEntry[] {
  const byPath = new Map<string, LayerEntry>();
  for (const entry of entries) {
    const path = normalisePath(entry.path);
    if (byPath.has(path)) throw new LayerEntryError(`layer path "${path}" appears twice`);
    byPath.set(path, { ...entry, path });
  }
  for (const path of [...byPath.keys()]) {
    const segments = path.split("/");
    for (let depth = 1; depth < segments.length; depth++) {
      const parent = segments.slice(0, depth).join("/");
      const existing = byPath.get(parent);
      if (existing && existing.type !== "directory") throw new LayerEntryError(`layer path "${parent}" is a ${existing.type} and a parent of "${path}"`);
      if (!existing) byPath.set(parent, { type: "directory", path: parent, mode: 0o755 });
    }
  }
  // Byte order, as Go's sort and `LC_ALL=C sort` order paths; a parent sorts before its children.
  return [...byPath.values()].sort((a, b) => Buffer.compare(Buffer.from(a.path), Buffer.from(b.path)));
}

/** The layer's uncompressed tar. `mtime` (seconds) is the one time every entry carries. */
export function layerTar(entries: readonly LayerEntry[], mtime = 0): Buffer {
  const parts: Buffer[] = [];
  for (const entry of completeEntries(entries)) {
    const owner = entry.type === "symlink" ? { uid: 0, gid: 0 } : { uid: entry.uid ?? 0, gid: entry.gid ?? 0 };
    const content = entry.type === "file" ? entry.content : Buffer.alloc(0);
    parts.push(headerBlocks({
      name: entry.type === "directory" ? `${entry.path}/` : entry.path,
      mode: entry.type === "symlink" ? 0o777 : entry.mode & 0o7777,
      ...owner,
      size: content.length,
      mtime,
      typeflag: TYPEFLAG[entry.type],
      linkname: entry.type === "symlink" ? entry.target : "",
    }));
    if (content.length > 0) parts.push(padded(content));
  }
  parts.push(Buffer.alloc(BLOCK * 2));
  return Buffer.concat(parts);
}
