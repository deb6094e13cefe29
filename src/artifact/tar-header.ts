// Deterministic tar headers: USTAR with uid/gid 0, empty owner names and zero mtime, falling back to a PAX
// record for paths USTAR cannot hold. Pure functions, so the same entries always give the same bytes.

export const BLOCK = 512;

export type EntryKind = "file" | "directory";

function writeString(block: Buffer, offset: number, length: number, value: string | Buffer): void {
  const bytes = typeof value === "string" ? Buffer.from(value, "utf8") : value;
  if (bytes.length > length) throw new Error(`tar field overflow: ${bytes.length} > ${length}`);
  bytes.copy(block, offset);
}

function writeOctal(block: Buffer, offset: number, length: number, value: number): void {
  // length-1 octal digits, zero padded, then NUL, as Go's archive/tar writes them.
  const digits = value.toString(8).padStart(length - 1, "0");
  if (digits.length > length - 1) throw new Error(`tar numeric field overflow: ${value}`);
  writeString(block, offset, length, `${digits}\0`);
}

function checksum(block: Buffer): number {
  let sum = 0;
  for (let index = 0; index < BLOCK; index++) sum += index >= 148 && index < 156 ? 0x20 : (block[index] ?? 0);
  return sum;
}

function rawHeader(name: Buffer, prefix: Buffer, mode: number, size: number, typeflag: string): Buffer {
  const block = Buffer.alloc(BLOCK);
  writeString(block, 0, 100, name);
  writeOctal(block, 100, 8, mode);
  writeOctal(block, 108, 8, 0); // uid
  writeOctal(block, 116, 8, 0); // gid
  writeOctal(block, 124, 12, size);
  writeOctal(block, 136, 12, 0); // mtime
  writeString(block, 156, 1, typeflag);
  writeString(block, 257, 6, "ustar\0");
  writeString(block, 263, 2, "00");
  writeString(block, 345, 155, prefix);
  const sum = checksum(block).toString(8).padStart(6, "0");
  writeString(block, 148, 8, `${sum}\0 `);
  return block;
}

/** Splits a path into USTAR prefix and name at a slash, or undefined if it cannot fit. */
function splitUstar(path: Buffer): { prefix: Buffer; name: Buffer } | undefined {
  if (path.length <= 100) return { prefix: Buffer.alloc(0), name: path };
  for (let index = path.length - 1; index > 0; index--) {
    if (path[index] !== 0x2f) continue;
    const prefix = path.subarray(0, index);
    const name = path.subarray(index + 1);
    if (prefix.length <= 155 && name.length <= 100 && name.length > 0) return { prefix, name };
  }
  return undefined;
}

function paxRecord(key: string, value: string): Buffer {
  // "<length> <key>=<value>\n" where length counts the whole record, including its own digits.
  const body = ` ${key}=${value}\n`;
  let length = Buffer.byteLength(body) + 1;
  while (String(length).length + Buffer.byteLength(body) !== length) length = String(length).length + Buffer.byteLength(body);
  return Buffer.from(`${length}${body}`, "utf8");
}

function padding(size: number): Buffer {
  const remainder = size % BLOCK;
  return Buffer.alloc(remainder === 0 ? 0 : BLOCK - remainder);
}

/** Header block(s) for one entry; file content and its padding follow, written by the caller. */
export function entryHeader(path: string, kind: EntryKind, mode: number, size: number): Buffer {
  const typeflag = kind === "directory" ? "5" : "0";
  const entrySize = kind === "directory" ? 0 : size;
  const encoded = Buffer.from(path, "utf8");
  const split = splitUstar(encoded);
  if (split) return rawHeader(split.name, split.prefix, mode, entrySize, typeflag);
  const record = paxRecord("path", path);
  const paxName = Buffer.from(`PaxHeaders/${path.slice(-80)}`.slice(0, 100), "utf8").subarray(0, 100);
  return Buffer.concat([
    rawHeader(paxName, Buffer.alloc(0), 0o644, record.length, "x"),
    record,
    padding(record.length),
    rawHeader(encoded.subarray(0, 100), Buffer.alloc(0), mode, entrySize, typeflag),
  ]);
}

export function contentPadding(size: number): Buffer {
  return padding(size);
}

/** Two zero blocks end an archive. */
export const END_OF_ARCHIVE = Buffer.alloc(BLOCK * 2);
