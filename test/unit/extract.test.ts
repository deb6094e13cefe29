// Hostile archives must be refused with a clear reason, and a refused archive must leave nothing on disk.
import assert from "node:assert/strict";
import { randomBytes } from "node:crypto";
import { existsSync, readlinkSync } from "node:fs";
import { mkdir, mkdtemp, readdir, readFile, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { Readable } from "node:stream";
import { after, before, describe, test } from "node:test";
import { gzipSync } from "node:zlib";
import { UnsafeArchiveError } from "../../src/artifact/errors.ts";
import {
  type ExtractLimits,
  type ExtractResult,
  extractArchive,
  extractArchiveBuffer,
  extractArchiveFile,
  IN_MEMORY_BLOB_BYTES,
  IN_MEMORY_EXPANDED_BYTES,
} from "../../src/artifact/extract.ts";
import { BLOCK, contentPadding, END_OF_ARCHIVE, entryHeader } from "../../src/artifact/tar-header.ts";

/** A raw USTAR entry with any name, type and link target: the kind of archive an attacker writes by hand. */
function rawEntry(name: string, typeflag: string, options: { content?: Buffer; linkname?: string; size?: number } = {}): Buffer {
  const header = Buffer.alloc(BLOCK);
  const content = options.content ?? Buffer.alloc(0);
  const size = options.size ?? content.length;
  header.write(name, 0, 100, "utf8");
  header.write("0000644\0", 100);
  header.write("0000000\0", 108);
  header.write("0000000\0", 116);
  header.write(`${size.toString(8).padStart(11, "0")}\0`, 124);
  header.write("00000000000\0", 136);
  header.write(typeflag, 156);
  header.write(options.linkname ?? "", 157, 100, "utf8");
  header.write("ustar\0", 257);
  header.write("00", 263);
  let sum = 0;
  for (let index = 0; index < BLOCK; index++) sum += index >= 148 && index < 156 ? 0x20 : (header[index] ?? 0);
  header.write(`${sum.toString(8).padStart(6, "0")}\0 `, 148);
  const padding = Buffer.alloc((BLOCK - (content.length % BLOCK)) % BLOCK);
  return Buffer.concat([header, content, padding]);
}

function archive(...entries: Buffer[]): Buffer {
  return gzipSync(Buffer.concat([...entries, END_OF_ARCHIVE]));
}

const file = (name: string, text: string) => rawEntry(name, "0", { content: Buffer.from(text) });

type Extract = (bytes: Buffer, destination: string, limits?: ExtractLimits) => Promise<ExtractResult>;

// The CLI and controller extract small layers from memory and big ones as a stream: both must refuse the same things.
const WAYS: ReadonlyArray<readonly [string, Extract]> = [
  ["streamed", (bytes, destination, limits) => extractArchive(Readable.from([bytes]), destination, limits)],
  ["in memory", extractArchiveBuffer],
];

for (const [way, extract] of WAYS) describe(`safe extraction (${way})`, () => {
  let dir: string;
  let count = 0;
  before(async () => {
    dir = await mkdtemp(join(tmpdir(), "ferry-extract-"));
  });
  after(async () => {
    await rm(dir, { recursive: true, force: true });
  });

  async function refuses(bytes: Buffer, reason: RegExp, limits = { maxBytes: 1024 * 1024, maxEntries: 100 }) {
    const parent = join(dir, `case-${count++}`);
    const destination = join(parent, "out");
    await mkdir(destination, { recursive: true });
    await writeFile(join(destination, "existing.yaml"), "kept\n");
    await assert.rejects(extract(bytes, destination, limits), (error: unknown) => {
      assert.ok(error instanceof UnsafeArchiveError, `expected UnsafeArchiveError, got ${String(error)}`);
      assert.match(error.message, reason);
      return true;
    });
    // Nothing of the refused archive is left: not in the destination, not beside it.
    assert.deepEqual(await readdir(destination), ["existing.yaml"]);
    assert.equal(await readFile(join(destination, "existing.yaml"), "utf8"), "kept\n");
    assert.deepEqual(await readdir(parent), ["out"]);
  }

  test("extracts files and directories, replacing what was there", async () => {
    const destination = join(dir, "ok");
    await mkdir(join(destination, "apps"), { recursive: true });
    await writeFile(join(destination, "apps", "old.yaml"), "old\n");
    const result = await extract(archive(rawEntry(".", "5"), rawEntry("apps", "5"), file("apps/a.yaml", "a\n"), file("b.yaml", "b\n")), destination);
    assert.deepEqual(result, { files: 2, directories: 1, bytes: 4, skippedLinks: [] });
    assert.deepEqual((await readdir(destination, { recursive: true })).sort(), ["apps", "apps/a.yaml", "b.yaml"]);
    assert.equal(await readFile(join(destination, "apps", "a.yaml"), "utf8"), "a\n");
  });

  test("reads plain (uncompressed) tar too", async () => {
    const destination = join(dir, "plain");
    await extract(Buffer.concat([file("x.yaml", "x\n"), END_OF_ARCHIVE]), destination);
    assert.equal(await readFile(join(destination, "x.yaml"), "utf8"), "x\n");
  });

  test("refuses a path that climbs out of the root", async () => {
    await refuses(archive(file("ok.yaml", "ok\n"), file("../evil.yaml", "evil\n")), /"\.\.\/evil\.yaml" escapes the extraction root/);
    assert.equal(existsSync(join(dir, "evil.yaml")), false);
    await refuses(archive(file("a/../../evil.yaml", "evil\n")), /escapes the extraction root/);
  });

  test("refuses absolute paths", async () => {
    await refuses(archive(file("/tmp/ferry-evil.yaml", "evil\n")), /"\/tmp\/ferry-evil\.yaml" is an absolute/);
    assert.equal(existsSync("/tmp/ferry-evil.yaml"), false);
  });

  test("refuses links that point outside the root and skips those inside", async () => {
    await refuses(archive(rawEntry("passwd", "2", { linkname: "../../../etc/passwd" })), /links to "\.\.\/\.\.\/\.\.\/etc\/passwd", outside/);
    await refuses(archive(rawEntry("abs", "1", { linkname: "/etc/shadow" })), /links to "\/etc\/shadow", outside/);
    // A hard link names its target from the archive root, not from its own directory.
    await refuses(archive(rawEntry("sub/h", "1", { linkname: "sub/../../etc/passwd" })), /links to "sub\/\.\.\/\.\.\/etc\/passwd", outside/);
    const destination = join(dir, "links");
    const result = await extract(archive(file("a.yaml", "a\n"), rawEntry("alias.yaml", "2", { linkname: "a.yaml" })), destination);
    assert.deepEqual(result.skippedLinks, ["alias.yaml"]);
    assert.deepEqual(await readdir(destination), ["a.yaml"]);
  });

  test("refuses devices and FIFOs", async () => {
    await refuses(archive(rawEntry("null", "3")), /"null" is a CharacterDevice/);
    await refuses(archive(rawEntry("disk", "4")), /BlockDevice/);
    await refuses(archive(rawEntry("pipe", "6")), /FIFO/);
  });

  test("refuses archives over the size or entry limits, including a gzip bomb", async () => {
    const bomb = archive(rawEntry("zeros.bin", "0", { content: Buffer.alloc(8 * 1024 * 1024) }));
    assert.ok(bomb.length < 16 * 1024, "the bomb compresses well");
    await refuses(bomb, /larger than 1048576 bytes|expands to more than/);
    const many = archive(...Array.from({ length: 101 }, (_, index) => file(`f${index}.yaml`, "x\n")));
    await refuses(many, /more than 100 entries/);
  });

  test("a gzip trailer that understates the expanded size changes nothing: bombs are refused, the rest is read whole", async () => {
    const understated = (gzip: Buffer) => {
      const forged = Buffer.from(gzip);
      forged.writeUInt32LE(100, forged.length - 4);
      return forged;
    };
    await refuses(understated(archive(rawEntry("zeros.bin", "0", { content: Buffer.alloc(8 * 1024 * 1024) }))), /larger than 1048576 bytes|expands to more than/);
    // Within the limits but past the in-memory size: read as a stream, where zlib checks the stated length.
    const big = archive(rawEntry("big.bin", "0", { content: Buffer.alloc(IN_MEMORY_EXPANDED_BYTES + 4096, 7) }));
    await refuses(understated(big), /cannot be read|length/i, { maxBytes: 64 * 1024 * 1024, maxEntries: 10 });
  });

  test("an archive that expands past the in-memory size is extracted whole", async () => {
    const content = Buffer.alloc(IN_MEMORY_EXPANDED_BYTES + 4096, 7);
    content.write("the end", content.length - 7);
    const destination = join(dir, `big-${count++}`);
    const result = await extract(archive(file("small.yaml", "a: 1\n"), rawEntry("big.bin", "0", { content })), destination);
    assert.equal(result.files, 2);
    assert.ok((await readFile(join(destination, "big.bin"))).equals(content));
  });

  test("refuses a file and a directory of one name, whether the file is small or streamed to disk", async () => {
    const conflict = /archive entry "a(\/b)?" conflicts with an earlier entry/;
    const limits = { maxBytes: 32 * 1024 * 1024, maxEntries: 10 };
    await refuses(archive(rawEntry("a", "5"), file("a", "x\n")), conflict, limits);
    await refuses(archive(file("a", "x\n"), file("a/b", "y\n")), conflict, limits);
    // A big file fills the parser's buffer while its write fails: the failure must not leave the feed waiting.
    const big = randomBytes(8 * 1024 * 1024);
    await refuses(archive(rawEntry("a", "5"), rawEntry("a", "0", { content: big }), rawEntry("b", "0", { content: big })), conflict, limits);
  });

  test("refuses content compressed twice, which the tar parser would otherwise inflate on its own, unbounded", async () => {
    const inner = archive(rawEntry("zeros.bin", "0", { content: Buffer.alloc(8 * 1024 * 1024) }));
    await refuses(gzipSync(inner), /compressed again/);
    const zstdMagic = Buffer.from([0x28, 0xb5, 0x2f, 0xfd, 0, 0, 0, 0]);
    await refuses(gzipSync(zstdMagic), /compressed again/);
  });

  test("links count toward the entry limit, and a path may appear only once", async () => {
    const links = Array.from({ length: 11 }, (_, index) => rawEntry(`l${index}`, "2", { linkname: "target.yaml" }));
    await refuses(archive(file("target.yaml", "t\n"), ...links), /more than 10 entries/, { maxBytes: 1024 * 1024, maxEntries: 10 });
    await refuses(archive(file("a.yaml", "first\n"), file("b.yaml", "b\n"), file("a.yaml", "second\n")), /more than one entry for "a.yaml"/);
    // The same with the first copy big enough to be streamed to disk while the second would be written.
    const big = rawEntry("a.bin", "0", { content: randomBytes(3 * 1024 * 1024) });
    await refuses(archive(big, file("a.bin", "small\n")), /more than one entry for "a.bin"/, { maxBytes: 8 * 1024 * 1024, maxEntries: 10 });
  });

  test("a name too long for the filesystem is refused by entry name; a destination created for a refused archive is removed", async () => {
    const name = `${"n".repeat(300)}.yaml`;
    const long = Buffer.concat([entryHeader(name, "file", 0o644, 2), Buffer.from("x\n"), contentPadding(2), END_OF_ARCHIVE]);
    await refuses(gzipSync(long), /archive entry "n+…" has a name too long for this filesystem/);
    const fresh = join(dir, `fresh-${count++}`);
    await assert.rejects(extract(archive(rawEntry("../escape", "0")), join(fresh, "x", "y", "out")), UnsafeArchiveError);
    assert.equal(existsSync(fresh), false);
  });

  test("refuses truncated and corrupt archives", async () => {
    const whole = archive(file("a.yaml", "a".repeat(5000)), file("b.yaml", "b\n"));
    await refuses(whole.subarray(0, Math.floor(whole.length / 2)), /cannot be read|malformed|unexpected end/i);
    // Cut inside a file big enough to be streamed to disk: its write must end with the failure, not wait forever.
    const big = archive(rawEntry("big.bin", "0", { content: randomBytes(3 * 1024 * 1024) }));
    await refuses(big.subarray(0, Math.floor(big.length * 0.6)), /cannot be read|malformed|unexpected end/i, { maxBytes: 8 * 1024 * 1024, maxEntries: 10 });
    const corrupt = Buffer.concat([file("a.yaml", "a\n"), END_OF_ARCHIVE]);
    corrupt[150] = 0x39; // break the header checksum
    await refuses(gzipSync(corrupt), /malformed|checksum|invalid/i);
  });
});

test("a refused layer file that is extracted as a stream is closed again", async () => {
  const dir = await mkdtemp(join(tmpdir(), "ferry-extract-fd-"));
  try {
    // Over IN_MEMORY_BLOB_BYTES, so it is streamed from disk; random bytes are no tar.
    const layer = join(dir, "layer.tgz");
    await writeFile(layer, randomBytes(IN_MEMORY_BLOB_BYTES + 1024));
    for (let attempt = 0; attempt < 3; attempt++) {
      await assert.rejects(extractArchiveFile(layer, join(dir, "out")), UnsafeArchiveError);
    }
    const open = (await readdir("/proc/self/fd")).map((fd) => {
      try {
        return readlinkSync(join("/proc/self/fd", fd));
      } catch {
        return "";
      }
    });
    assert.deepEqual(open.filter((target) => target === layer), []);
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
});
