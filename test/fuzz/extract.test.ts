// Fuzzing safe extraction with archives written field by field and with real archives mutated byte by byte. Whatever
// the archive, extraction must finish, write nothing outside its destination, create no links, fail only with an
// UnsafeArchiveError that leaves the destination as it was, and decide the same way in memory and streamed.
import assert from "node:assert/strict";
import { lstatSync, mkdirSync, readdirSync, readFileSync, writeFileSync } from "node:fs";
import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join, relative } from "node:path";
import { Readable } from "node:stream";
import { after, before, describe, test } from "node:test";
import { gzipSync } from "node:zlib";
import fc from "fast-check";
import { UnsafeArchiveError } from "../../src/artifact/errors.ts";
import { type ExtractLimits, extractArchive, extractArchiveBuffer } from "../../src/artifact/extract.ts";
import { corpus, fuzz } from "./fuzz.ts";
import { BLOCK, END_OF_ARCHIVE, entryBytes, fixChecksums, type RawEntry, tarInside } from "./tar.ts";

// Small limits, so that size and count refusals are reached by small archives.
const LIMITS: ExtractLimits = { maxBytes: 64 * 1024, maxEntries: 64 };
const EXISTING = "existing.yaml";
const EXISTING_CONTENT = "kept\n";
const OUTSIDE_CONTENT = "outside\n";

const SEEDS = corpus("extract");

// ---- archives written field by field -------------------------------------------------------------------------------

const segment = fc.oneof(
  { arbitrary: fc.constantFrom("a", "b", "dir", "x.yaml", "existing.yaml", "outside"), weight: 8 },
  { arbitrary: fc.constantFrom("..", ".", "", "é", "a\\b", "C:", "\u0000", " ", "..."), weight: 2 },
  { arbitrary: fc.string({ minLength: 1, maxLength: 12 }), weight: 1 },
  { arbitrary: fc.integer({ min: 90, max: 300 }).map((length) => "n".repeat(length)), weight: 1 },
);
const path = fc.tuple(fc.constantFrom("", "", "", "/", "./", "../"), fc.array(segment, { minLength: 1, maxLength: 4 }), fc.constantFrom("", "", "/"))
  .map(([lead, segments, trail]) => lead + segments.join("/") + trail);
const linkTarget = fc.oneof(
  fc.constantFrom("..", "../outside/secret", "/etc/passwd", "a", "a/b", "dir/../..", "../../outside", "existing.yaml", ""),
  path,
);
const TYPES = ["0", "0", "0", "0", "5", "5", "\0", "1", "2", "3", "4", "6", "7", "x", "g", "L", "K", "S", "V", "D", "Z"];
const declaredSize = fc.oneof(
  { arbitrary: fc.constant(undefined), weight: 10 },
  { arbitrary: fc.constantFrom(0n, 1n, 511n, 513n, 0o77777777777n, 1n << 53n, (1n << 63n) - 1n, 1n << 80n), weight: 1 },
  { arbitrary: fc.bigInt({ min: 0n, max: 1n << 20n }), weight: 1 },
);
const paxRecords = fc.dictionary(
  fc.constantFrom("path", "linkpath", "size", "mtime", "uid", "SCHILY.xattr.user.x", "GNU.sparse.size", "comment"),
  fc.oneof(path, fc.constantFrom("0", "1", "-1", "99999999999999999999", "1e3", "NaN", "")),
  { maxKeys: 3 },
);
const rawEntry: fc.Arbitrary<RawEntry> = fc.record({
  path,
  type: fc.constantFrom(...TYPES),
  linkpath: linkTarget,
  // A link target on an entry that is not a link: node-tar refuses those, so they are rare here.
  strayLinkpath: fc.oneof({ arbitrary: fc.constant(false), weight: 4 }, { arbitrary: fc.constant(true), weight: 1 }),
  content: fc.oneof(fc.constant(Buffer.from("kind: ConfigMap\n")), fc.uint8Array({ maxLength: 1200 }).map((bytes) => Buffer.from(bytes))),
  declaredSize,
  mode: fc.constantFrom(0o644, 0o755, 0o4777, 0o000, 0o7777777),
  pax: fc.option(paxRecords, { nil: undefined, freq: 6 }),
  gnuLongName: fc.boolean(),
}, { requiredKeys: ["path", "type", "linkpath", "strayLinkpath"] })
  .map(({ linkpath, strayLinkpath, ...entry }) => (entry.type === "1" || entry.type === "2" || strayLinkpath ? { ...entry, linkpath } : entry));

/** How the archive ends: properly, without its end blocks, cut short, or followed by garbage. */
const ending = fc.oneof(
  fc.constant((tar: Buffer) => Buffer.concat([tar, END_OF_ARCHIVE])),
  fc.constant((tar: Buffer) => tar),
  fc.nat().map((cut) => (tar: Buffer) => tar.subarray(0, tar.length === 0 ? 0 : cut % tar.length)),
  fc.uint8Array({ minLength: 1, maxLength: 700 }).map((garbage) => (tar: Buffer) => Buffer.concat([tar, END_OF_ARCHIVE, garbage])),
);
const compression = fc.oneof(
  { arbitrary: fc.constant("gzip"), weight: 8 },
  { arbitrary: fc.constant("none"), weight: 3 },
  { arbitrary: fc.constantFrom("gzip-twice", "two-gzip-members", "gzip-truncated"), weight: 1 },
);

function compressed(tar: Buffer, how: string): Buffer {
  switch (how) {
    case "none":
      return tar;
    case "gzip-twice":
      return gzipSync(gzipSync(tar));
    case "two-gzip-members":
      return Buffer.concat([gzipSync(tar.subarray(0, Math.floor(tar.length / 2))), gzipSync(tar.subarray(Math.floor(tar.length / 2)))]);
    case "gzip-truncated": {
      const whole = gzipSync(tar);
      return whole.subarray(0, Math.max(2, whole.length - 9));
    }
    default:
      return gzipSync(tar);
  }
}

const writtenArchive = fc.tuple(fc.array(rawEntry, { minLength: 1, maxLength: 6 }), ending, compression)
  .map(([entries, end, how]) => compressed(end(Buffer.concat(entries.map(entryBytes))), how));

// ---- real archives, mutated ----------------------------------------------------------------------------------------

/** Bytes that change a header's meaning: path separators, dots, type flags, octal digits, NULs, high bits. */
const INTERESTING_BYTES = [0x2f, 0x2e, 0x00, 0xff, 0x80, 0x30, 0x31, 0x32, 0x35, 0x37, 0x78, 0x4c, 0x20, 0x5c];
const byteEdit = fc.record({
  offset: fc.nat(),
  /** Most edits land in a header block, where they matter; the rest anywhere. */
  inHeader: fc.boolean(),
  value: fc.oneof(fc.constantFrom(...INTERESTING_BYTES), fc.integer({ min: 0, max: 255 })),
});

function headerOffsets(tar: Buffer): number[] {
  const offsets: number[] = [];
  for (let offset = 0; offset + BLOCK <= tar.length; offset += BLOCK) {
    if (tar.toString("latin1", offset + 257, offset + 262) === "ustar" || tar[offset + 156] === 0x30) offsets.push(offset);
  }
  return offsets;
}

function mutateTar(tar: Buffer, edits: ReadonlyArray<{ offset: number; inHeader: boolean; value: number }>): Buffer {
  const mutated = Buffer.from(tar);
  const headers = headerOffsets(tar);
  for (const { offset, inHeader, value } of edits) {
    const header = headers[offset % Math.max(1, headers.length)];
    const at = inHeader && header !== undefined ? header + (offset % BLOCK) : offset % Math.max(1, mutated.length);
    if (at < mutated.length) mutated[at] = value;
  }
  return mutated;
}

const mutatedArchive = fc.tuple(
  fc.constantFrom(...SEEDS.map((seed) => tarInside(seed.bytes))),
  fc.array(byteEdit, { minLength: 1, maxLength: 8 }),
  // Mostly with checksums fixed, so that a mutated header is parsed rather than refused for its checksum.
  fc.oneof({ arbitrary: fc.constant(true), weight: 3 }, { arbitrary: fc.constant(false), weight: 1 }),
  compression,
).map(([tar, edits, fixSums, how]) => compressed(fixSums ? fixChecksums(mutateTar(tar, edits)) : mutateTar(tar, edits), how));

/** Gzip itself mutated: its header, flags, trailer and deflate stream. */
const gzippedSeeds = SEEDS.map((seed) => gzipSync(tarInside(seed.bytes)));
const mutatedGzip = fc.tuple(fc.constantFrom(...gzippedSeeds), fc.array(byteEdit, { minLength: 1, maxLength: 4 }))
  .map(([gzip, edits]) => {
    const mutated = Buffer.from(gzip);
    for (const { offset, value } of edits) mutated[offset % mutated.length] = value;
    return mutated;
  });

// ---- the property --------------------------------------------------------------------------------------------------

type Outcome = { readonly refused: string } | { readonly tree: ReadonlyMap<string, string> };

/** Every path under `root` with its kind and, for files, content; links and other kinds are named as such. */
function treeOf(root: string): Map<string, string> {
  const tree = new Map<string, string>();
  for (const name of readdirSync(root, { recursive: true }) as string[]) {
    const full = join(root, name);
    const stat = lstatSync(full);
    const kind = stat.isFile() ? `file:${readFileSync(full).toString("base64")}` : stat.isDirectory() ? "directory" : "OTHER";
    tree.set(relative(root, full), kind);
  }
  return new Map([...tree].sort(([a], [b]) => (a < b ? -1 : 1)));
}

function prepared(root: string, name: string): string {
  const destination = join(root, name);
  mkdirSync(destination);
  writeFileSync(join(destination, EXISTING), EXISTING_CONTENT);
  return destination;
}

function chunksOf(bytes: Buffer, sizes: readonly number[]): Buffer[] {
  const chunks: Buffer[] = [];
  let offset = 0;
  for (let index = 0; offset < bytes.length; index++) {
    const size = 1 + ((sizes[index % Math.max(1, sizes.length)] ?? bytes.length) % 4096);
    chunks.push(bytes.subarray(offset, offset + size));
    offset += size;
  }
  return chunks;
}

async function outcomeOf(extraction: () => Promise<unknown>, destination: string, way: string): Promise<Outcome> {
  try {
    await extraction();
  } catch (error) {
    if (!(error instanceof UnsafeArchiveError)) throw new Error(`${way}: not an UnsafeArchiveError: ${String(error)}`, { cause: error });
    assert.deepEqual(treeOf(destination), new Map([[EXISTING, `file:${Buffer.from(EXISTING_CONTENT).toString("base64")}`]]), `${way}: a refused archive left something behind`);
    return { refused: error.message };
  }
  const tree = treeOf(destination);
  for (const [entry, kind] of tree) assert.notEqual(kind, "OTHER", `${way}: ${entry} is neither a file nor a directory`);
  return { tree };
}

describe("fuzzed archives", () => {
  let scratch: string;
  let cases = 0;
  before(async () => {
    scratch = await mkdtemp(join(tmpdir(), "ferry-fuzz-extract-"));
  });
  after(async () => {
    await rm(scratch, { recursive: true, force: true });
  });

  async function check([archive, chunkSizes]: readonly [Buffer, readonly number[]]): Promise<void> {
    const root = join(scratch, `case-${cases++}`);
    mkdirSync(join(root, "outside"), { recursive: true });
    writeFileSync(join(root, "outside", "secret"), OUTSIDE_CONTENT);
    try {
      const inMemory = prepared(root, "in-memory");
      const streamed = prepared(root, "streamed");
      const fromMemory = await outcomeOf(() => extractArchiveBuffer(archive, inMemory, LIMITS), inMemory, "in memory");
      const fromStream = await outcomeOf(() => extractArchive(Readable.from(chunksOf(archive, chunkSizes)), streamed, LIMITS), streamed, "streamed");
      assert.deepEqual(readdirSync(root).sort(), ["in-memory", "outside", "streamed"], "something was written beside the destination");
      assert.deepEqual(treeOf(join(root, "outside")), new Map([["secret", `file:${Buffer.from(OUTSIDE_CONTENT).toString("base64")}`]]));
      assert.equal("refused" in fromMemory, "refused" in fromStream, `in memory ${JSON.stringify(fromMemory)}, streamed ${JSON.stringify(fromStream)}`);
      if ("tree" in fromMemory && "tree" in fromStream) assert.deepEqual(fromStream.tree, fromMemory.tree);
    } finally {
      await rm(root, { recursive: true, force: true });
    }
  }

  const chunking = fc.array(fc.nat(), { maxLength: 8 });
  const examples = SEEDS.map((seed) => [seed.bytes, []] as const);

  test("archives written field by field", async (context) => {
    await fuzz(context, fc.tuple(writtenArchive, chunking), { runs: 1000, examples }, check);
  });

  test("real archives mutated byte by byte", async (context) => {
    const mutated = fc.oneof({ arbitrary: mutatedArchive, weight: 6 }, { arbitrary: mutatedGzip, weight: 1 });
    await fuzz(context, fc.tuple(mutated, chunking), { runs: 1000 }, check);
  });
});
