// Tar archives written by hand, field by field, as an attacker would: any name, type, link target, declared size
// (octal or GNU base-256), PAX records and GNU long names, with nothing checked.
import { constants, gunzipSync } from "node:zlib";

export const BLOCK = 512;

export interface RawEntry {
  readonly path: string;
  /** The typeflag byte: "0" file, "5" directory, "1" hard link, "2" symlink, "x" PAX, "L" GNU long name, ... */
  readonly type: string;
  readonly linkpath?: string;
  readonly content?: Buffer;
  /** The size the header states, when it is not the content's length (a lie, or a size too large to exist). */
  readonly declaredSize?: bigint;
  readonly mode?: number;
  /** PAX records for this entry, written as an "x" entry before it. */
  readonly pax?: Readonly<Record<string, string>>;
  /** Write the name as a GNU "L" entry before the header, as GNU tar does for long names. */
  readonly gnuLongName?: boolean;
}

function octal(value: bigint, length: number): Buffer {
  const field = Buffer.alloc(length);
  const digits = value.toString(8);
  if (digits.length <= length - 1) {
    field.write(digits.padStart(length - 1, "0"), 0, "latin1");
    return field;
  }
  // GNU base-256: the high bit of the first byte set, the value big-endian in the rest.
  let rest = value;
  for (let index = length - 1; index > 0; index--) {
    field[index] = Number(rest & 0xffn);
    rest >>= 8n;
  }
  field[0] = 0x80;
  return field;
}

export function checksum(header: Buffer): number {
  let sum = 0;
  for (let index = 0; index < BLOCK; index++) sum += index >= 148 && index < 156 ? 0x20 : (header[index] ?? 0);
  return sum;
}

export function writeChecksum(header: Buffer): void {
  header.fill(0, 148, 156);
  header.write(`${checksum(header).toString(8).padStart(6, "0")}\0 `, 148, "latin1");
}

function header(name: Buffer, type: string, size: bigint, options: { linkpath?: string; mode?: number; prefix?: Buffer }): Buffer {
  const block = Buffer.alloc(BLOCK);
  name.copy(block, 0, 0, 100);
  octal(BigInt(options.mode ?? 0o644), 8).copy(block, 100);
  octal(0n, 8).copy(block, 108);
  octal(0n, 8).copy(block, 116);
  octal(size, 12).copy(block, 124);
  octal(0n, 12).copy(block, 136);
  block.write(type.slice(0, 1), 156, "latin1");
  Buffer.from(options.linkpath ?? "", "utf8").copy(block, 157, 0, 100);
  block.write("ustar\0" + "00", 257, "latin1");
  options.prefix?.copy(block, 345, 0, 155);
  writeChecksum(block);
  return block;
}

function padded(content: Buffer): Buffer {
  return Buffer.concat([content, Buffer.alloc((BLOCK - (content.length % BLOCK)) % BLOCK)]);
}

function paxRecords(records: Readonly<Record<string, string>>): Buffer {
  return Buffer.concat(Object.entries(records).map(([key, value]) => {
    const body = ` ${key}=${value}\n`;
    let length = Buffer.byteLength(body) + 1;
    while (String(length).length + Buffer.byteLength(body) !== length) length = String(length).length + Buffer.byteLength(body);
    return Buffer.from(`${length}${body}`, "utf8");
  }));
}

/** The name split into USTAR's prefix and name fields when it is longer than 100 bytes and has a slash to split at. */
function splitName(path: Buffer): { name: Buffer; prefix?: Buffer } {
  if (path.length <= 100) return { name: path };
  const slash = path.lastIndexOf(0x2f, path.length - 2);
  if (slash <= 0 || slash > 155 || path.length - slash - 1 > 100) return { name: path };
  return { prefix: path.subarray(0, slash), name: path.subarray(slash + 1) };
}

export function entryBytes(entry: RawEntry): Buffer {
  const content = entry.content ?? Buffer.alloc(0);
  const parts: Buffer[] = [];
  if (entry.pax) {
    const records = paxRecords(entry.pax);
    parts.push(header(Buffer.from("PaxHeader"), "x", BigInt(records.length), {}), padded(records));
  }
  const path = Buffer.from(entry.path, "utf8");
  if (entry.gnuLongName) {
    const long = Buffer.concat([path, Buffer.alloc(1)]);
    parts.push(header(Buffer.from("././@LongLink"), "L", BigInt(long.length), {}), padded(long));
  }
  const { name, prefix } = splitName(path);
  const options = {
    ...(entry.linkpath !== undefined ? { linkpath: entry.linkpath } : {}),
    ...(entry.mode !== undefined ? { mode: entry.mode } : {}),
    ...(prefix ? { prefix } : {}),
  };
  parts.push(header(name, entry.type, entry.declaredSize ?? BigInt(content.length), options), padded(content));
  return Buffer.concat(parts);
}

export const END_OF_ARCHIVE = Buffer.alloc(BLOCK * 2);

export function tarOf(entries: readonly RawEntry[]): Buffer {
  return Buffer.concat([...entries.map(entryBytes), END_OF_ARCHIVE]);
}

export function isGzip(bytes: Buffer): boolean {
  return bytes[0] === 0x1f && bytes[1] === 0x8b;
}

/** The tar inside a (possibly gzipped, possibly truncated) archive: as much of it as can be decompressed. */
export function tarInside(archive: Buffer): Buffer {
  return isGzip(archive) ? gunzipSync(archive, { finishFlush: constants.Z_SYNC_FLUSH }) : archive;
}

/** Recomputes the checksum of every block that looks like a header, so that mutated headers still get parsed. */
export function fixChecksums(tar: Buffer): Buffer {
  const fixed = Buffer.from(tar);
  for (let offset = 0; offset + BLOCK <= fixed.length; offset += BLOCK) {
    if (fixed.toString("latin1", offset + 257, offset + 262) === "ustar") writeChecksum(fixed.subarray(offset, offset + BLOCK));
  }
  return fixed;
}
