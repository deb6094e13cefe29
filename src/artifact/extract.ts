// Safe extraction shared by the CLI and the controller: entries that would escape the root (`..`, absolute
// paths, links pointing out), devices, and archives over a size or file-count limit are refused, and a refused or
// failed archive leaves nothing behind.
import {
  createReadStream,
  createWriteStream,
  mkdirSync,
  readdirSync,
  readFileSync,
  renameSync,
  rmdirSync,
  rmSync,
  statSync,
  writeFileSync,
} from "node:fs";
import { mkdir, mkdtemp, rm } from "node:fs/promises";
import { dirname, join, posix } from "node:path";
import { pipeline as chain, Readable, Transform } from "node:stream";
import { pipeline } from "node:stream/promises";
import { createGunzip, gunzipSync } from "node:zlib";
import { Parser, type ReadEntry } from "tar";
import { UnsafeArchiveError } from "./errors.ts";

export interface ExtractLimits {
  /** Total bytes of file content, and of the decompressed stream (a gzip bomb trips this). */
  readonly maxBytes: number;
  readonly maxEntries: number;
}

/** Files up to this size are buffered and written in one call; larger ones are streamed. */
const SMALL_FILE_BYTES = 1024 * 1024;

/** Archives up to this size (compressed) expanding to at most IN_MEMORY_EXPANDED_BYTES are decompressed in one call. */
export const IN_MEMORY_BLOB_BYTES = 16 * 1024 * 1024;
/**
 * Holding the expanded tar costs about three times its size at the peak (a 100 MB tree took the CLI to 343 MB of
 * RSS where streaming needs 108 MB), and the controller may extract several layers at once. Manifest trees are far
 * smaller (kube-prometheus: 5.7 MB); bigger archives stream, which is as fast for them.
 */
export const IN_MEMORY_EXPANDED_BYTES = 16 * 1024 * 1024;

/** Zlib's default 16 KiB output chunks cost a thread-pool round trip each: ~350 for kube-prometheus. */
const GUNZIP_CHUNK_BYTES = 256 * 1024;

export const DEFAULT_EXTRACT_LIMITS: ExtractLimits = { maxBytes: 512 * 1024 * 1024, maxEntries: 50_000 };

export interface ExtractResult {
  readonly files: number;
  readonly directories: number;
  readonly bytes: number;
  /** Links inside the root are skipped, as Flux skips them; their paths are reported. */
  readonly skippedLinks: readonly string[];
}

/** Normalises an entry path, refusing absolute and escaping ones. Returns undefined for the root itself. */
export function safeEntryPath(path: string): string | undefined {
  if (path.includes("\0")) throw new UnsafeArchiveError(`archive entry ${JSON.stringify(path)} contains a NUL byte`);
  if (path.startsWith("/") || /^[A-Za-z]:/.test(path) || path.includes("\\")) {
    throw new UnsafeArchiveError(`archive entry ${JSON.stringify(path)} is an absolute or Windows path`);
  }
  const parts = path.split("/").filter((part) => part !== "" && part !== ".");
  if (parts.includes("..")) throw new UnsafeArchiveError(`archive entry ${JSON.stringify(path)} escapes the extraction root`);
  return parts.length === 0 ? undefined : parts.join("/");
}

/** A symlink's target is relative to the link's directory; a hard link's names a path from the archive root. */
function linkStaysInside(entryPath: string, linkTarget: string, hard: boolean): boolean {
  if (linkTarget.startsWith("/")) return false;
  const resolved = posix.normalize(hard ? linkTarget : posix.join(posix.dirname(entryPath), linkTarget));
  return resolved !== ".." && !resolved.startsWith("../");
}

/**
 * Filesystem refusals caused by the archive itself, named by entry rather than by the staging path: a file and a
 * directory of one name (or a file used as a directory), and names longer than the filesystem allows.
 */
function asEntryError(error: unknown, entryPath: string): Error {
  const code = (error as NodeJS.ErrnoException).code;
  const name = JSON.stringify(entryPath.length > 200 ? `${entryPath.slice(0, 200)}…` : entryPath);
  if (code === "ENAMETOOLONG") return new UnsafeArchiveError(`archive entry ${name} has a name too long for this filesystem`);
  if (code !== "EISDIR" && code !== "ENOTDIR" && code !== "EEXIST") return error as Error;
  return new UnsafeArchiveError(`archive entry ${name} conflicts with an earlier entry: a file and a directory of one name`);
}

function isGzip(chunk: Buffer): boolean {
  return chunk.length >= 2 && chunk[0] === 0x1f && chunk[1] === 0x8b;
}

/**
 * node-tar's parser decompresses gzip and zstd it finds in its input by itself, outside the size limit and the
 * error handling here. Decoded layer content must be a tar, so gzip (or zstd) inside it is refused.
 */
function refuseCompressedAgain(head: Buffer): void {
  const zstd = head.length >= 4 && head.readUInt32LE(0) === 0xfd2fb528;
  if (isGzip(head) || zstd) {
    throw new UnsafeArchiveError("archive content is compressed again (gzip or zstd inside the layer); a layer is a tar, gzipped at most once");
  }
}

/** The decoded tar exceeds its content by headers and padding; the decompressed size may pass maxBytes by this much. */
const TAR_OVERHEAD_BYTES = 1024 * 1024;

function expandedLimit(limits: ExtractLimits): number {
  return limits.maxBytes + TAR_OVERHEAD_BYTES;
}

function expandsTooFar(limit: number): UnsafeArchiveError {
  return new UnsafeArchiveError(`archive expands to more than ${limit} bytes`);
}

/** Counts decompressed bytes and fails the stream once it passes the limit. */
function byteLimit(limit: number): Transform {
  let total = 0;
  return new Transform({
    transform(chunk: Buffer, _encoding, callback) {
      total += chunk.length;
      if (total > limit) {
        callback(expandsTooFar(limit));
        return;
      }
      callback(null, chunk);
    },
  });
}

/**
 * Moves the staged tree into `destination`, replacing same-named entries. Synchronous: an artifact often has
 * every manifest at its top level, and two thread-pool round trips per entry added up to more than the writes.
 */
function publish(staging: string, destination: string): void {
  for (const name of readdirSync(staging)) {
    const target = join(destination, name);
    rmSync(target, { recursive: true, force: true });
    renameSync(join(staging, name), target);
  }
}

/** Removes `from` and its parents up to `upTo` while they are empty; something else may be using them now. */
export function removeEmptyDirectories(from: string, upTo: string): void {
  for (let directory = from; ; directory = dirname(directory)) {
    try {
      rmdirSync(directory);
    } catch {
      return;
    }
    if (directory === upTo || dirname(directory) === directory) return;
  }
}

/** Hands the decoded tar bytes to the parser; reports read errors through `fail`. */
type Feed = (parser: Parser, stop: FeedStop, fail: (error: Error) => void) => Promise<void>;

/** How a feed learns that extraction failed: `failed()` to check, `stopped` to stop waiting (e.g. for drain). */
interface FeedStop {
  readonly failed: () => boolean;
  readonly stopped: Promise<void>;
}

/**
 * Extracts a tar or tar+gzip stream into `destination` (created if missing). Content is staged in a hidden
 * directory inside `destination` and published only when the whole archive was read and accepted.
 */
export function extractArchive(
  input: Readable,
  destination: string,
  limits: ExtractLimits = DEFAULT_EXTRACT_LIMITS,
): Promise<ExtractResult> {
  return extractTar(streamFeed(input, limits), destination, limits);
}

async function extractTar(feed: Feed, destination: string, limits: ExtractLimits): Promise<ExtractResult> {
  // The first directory this call creates, if any: a refused archive removes it again, leaving no empty tree.
  const createdRoot = await mkdir(destination, { recursive: true });
  const staging = await mkdtemp(join(destination, ".ferry-extract-"));
  const result = { files: 0, directories: 0, bytes: 0, skippedLinks: [] as string[] };
  let published = false;
  try {
    const parser = new Parser({ strict: true, zstd: false, brotli: false });
    const writes: Promise<void>[] = [];
    const created = new Set<string>([staging]);
    const ensureDirectory = (path: string) => {
      if (created.has(path)) return;
      mkdirSync(path, { recursive: true, mode: 0o755 });
      created.add(path);
    };
    let failure: Error | undefined;
    // Entries being streamed to disk: a failure must end them, or their writes would wait for data that never comes.
    const streaming = new Set<ReadEntry>();
    let resolveStopped = () => {};
    const stopped = new Promise<void>((resolve) => {
      resolveStopped = resolve;
    });
    const stop = (error: Error) => {
      for (const entry of streaming) entry.destroy(error);
      // An aborted parser never drains: a feed waiting for it must stop waiting.
      resolveStopped();
    };
    const fail = (error: Error) => {
      failure ??= error;
      parser.abort(error);
      stop(failure);
    };
    const filesWritten = new Set<string>();

    parser.on("entry", (entry: ReadEntry) => {
      try {
        if (failure) {
          entry.resume();
          return;
        }
        if (result.files + result.directories + result.skippedLinks.length + 1 > limits.maxEntries) {
          throw new UnsafeArchiveError(`archive has more than ${limits.maxEntries} entries`);
        }
        const path = safeEntryPath(entry.path);
        switch (entry.type) {
          case "Directory": {
            if (path) {
              result.directories++;
              ensureDirectory(join(staging, path));
            }
            entry.resume();
            return;
          }
          case "File":
          case "OldFile":
          case "ContiguousFile": {
            if (!path) throw new UnsafeArchiveError("archive has a file entry for its root directory");
            // Later entries replace earlier ones in tar; with one of them still streaming to disk, the two writes
            // could interleave. Flux never writes a path twice, so a second entry is refused instead.
            if (filesWritten.has(path)) throw new UnsafeArchiveError(`archive has more than one entry for ${JSON.stringify(path)}`);
            filesWritten.add(path);
            result.files++;
            result.bytes += entry.size;
            if (result.bytes > limits.maxBytes) {
              throw new UnsafeArchiveError(`archive content is larger than ${limits.maxBytes} bytes`);
            }
            const target = join(staging, path);
            const mode = (entry.mode ?? 0o644) & 0o111 ? 0o755 : 0o644;
            ensureDirectory(dirname(target));
            if (entry.size > SMALL_FILE_BYTES) {
              streaming.add(entry);
              const written = pipeline(entry, createWriteStream(target, { mode }))
                .catch((error: Error) => fail(asEntryError(error, entry.path)));
              writes.push(written.finally(() => streaming.delete(entry)));
              return;
            }
            // Manifests are small: one synchronous write each is several times faster than a stream per file.
            const chunks: Buffer[] = [];
            entry.on("data", (chunk: Buffer) => chunks.push(chunk));
            entry.on("end", () => {
              try {
                writeFileSync(target, Buffer.concat(chunks), { mode });
              } catch (error) {
                fail(asEntryError(error, entry.path));
              }
            });
            return;
          }
          case "SymbolicLink":
          case "Link": {
            const target = entry.linkpath ?? "";
            if (!path || !linkStaysInside(path, target, entry.type === "Link")) {
              throw new UnsafeArchiveError(`archive entry ${JSON.stringify(entry.path)} links to ${JSON.stringify(target)}, outside the extraction root`);
            }
            result.skippedLinks.push(path);
            entry.resume();
            return;
          }
          case "CharacterDevice":
          case "BlockDevice":
          case "FIFO":
            throw new UnsafeArchiveError(`archive entry ${JSON.stringify(entry.path)} is a ${entry.type}; only files and directories are extracted`);
          default:
            entry.resume();
        }
      } catch (error) {
        entry.resume();
        fail(asEntryError(error, entry.path));
      }
    });

    const parsed = new Promise<void>((resolve, reject) => {
      const malformed = (error: Error) => {
        failure ??= error instanceof UnsafeArchiveError ? error : new UnsafeArchiveError(`archive is malformed: ${error.message}`, { cause: error });
        // The parser may abort by itself: the streamed writes and the feed must stop then too.
        stop(failure);
        reject(failure);
      };
      parser.on("error", malformed);
      parser.on("abort", malformed);
      parser.on("warn", (code: string, message: string | Error) => {
        fail(new UnsafeArchiveError(`archive is malformed (${code}): ${message instanceof Error ? message.message : message}`));
      });
      parser.on("end", () => resolve());
    });

    await Promise.all([feed(parser, { failed: () => failure !== undefined, stopped }, fail), parsed.catch(() => undefined)]);
    await Promise.all(writes);
    if (failure) throw failure;
    publish(staging, destination);
    published = true;
    return result;
  } finally {
    await rm(staging, { recursive: true, force: true });
    if (!published && createdRoot) removeEmptyDirectories(destination, createdRoot);
  }
}

/** Decodes a (possibly gzipped) stream with a bound on the decompressed size, feeding the parser with backpressure. */
function streamFeed(input: Readable, limits: ExtractLimits): Feed {
  return async (parser, { failed, stopped }, fail) => {
    const first: Buffer[] = [];
    const iterator = input[Symbol.asyncIterator]();
    // Enough bytes to recognise gzip, however the input is chunked.
    for (let bytes = 0; bytes < 2;) {
      const next = await iterator.next();
      if (next.done) break;
      first.push(next.value as Buffer);
      bytes += (next.value as Buffer).length;
    }
    const gzipped = isGzip(Buffer.concat(first));
    async function* replay() {
      yield* first;
      for (;;) {
        const next = await iterator.next();
        if (next.done) return;
        yield next.value as Buffer;
      }
    }
    const limit = byteLimit(expandedLimit(limits));
    // Errors anywhere in the chain destroy the last stream, so the loop below sees them.
    const ignore = () => undefined;
    const decoded = gzipped
      ? chain(Readable.from(replay()), createGunzip({ chunkSize: GUNZIP_CHUNK_BYTES }), limit, ignore)
      : chain(Readable.from(replay()), limit, ignore);
    let head: Buffer | undefined = Buffer.alloc(0);
    try {
      for await (const chunk of decoded as AsyncIterable<Buffer>) {
        if (failed()) break;
        let data = chunk;
        if (head !== undefined) {
          head = Buffer.concat([head, chunk]);
          if (head.length < 4) continue;
          refuseCompressedAgain(head);
          data = head;
          head = undefined;
        }
        if (!parser.write(data)) await Promise.race([new Promise((resolve) => parser.once("drain", resolve)), stopped]);
      }
      if (head !== undefined && head.length > 0) parser.write(head);
      parser.end();
    } catch (error) {
      const cause = error as Error;
      fail(cause instanceof UnsafeArchiveError ? cause : new UnsafeArchiveError(`archive cannot be read: ${cause.message}`, { cause }));
    } finally {
      // The input is ours to end: a refused archive must not keep its file or socket open.
      input.destroy();
    }
  };
}

/** Feeds an already decoded tar held in memory in one write. */
function bufferFeed(tar: Buffer, limits: ExtractLimits): Feed {
  return async (parser, _stop, fail) => {
    if (tar.length > expandedLimit(limits)) {
      fail(expandsTooFar(expandedLimit(limits)));
      return;
    }
    try {
      refuseCompressedAgain(tar.subarray(0, 4));
    } catch (error) {
      fail(error as Error);
      return;
    }
    parser.write(tar);
    parser.end();
  };
}

/**
 * Extracts a layer held in memory (already digest-verified). A typical manifest archive is decompressed in one
 * call and parsed from memory, which avoids dozens of thread-pool round trips.
 */
export function extractArchiveBuffer(
  bytes: Buffer,
  destination: string,
  limits: ExtractLimits = DEFAULT_EXTRACT_LIMITS,
): Promise<ExtractResult> {
  if (!isGzip(bytes)) return extractTar(bufferFeed(bytes, limits), destination, limits);
  const streamed = () => extractArchive(Readable.from([bytes]), destination, limits);
  const limit = expandedLimit(limits);
  const cap = Math.min(limit, IN_MEMORY_EXPANDED_BYTES);
  // The gzip trailer states the expanded size (modulo 4 GiB). An archive that says it is bigger than the cap streams
  // at once rather than being decompressed up to the cap first. It is only a hint: gunzipSync's own cap still holds,
  // and zlib checks the stated size against the real one when the stream ends.
  if (bytes.length >= 4 && bytes.readUInt32LE(bytes.length - 4) > cap) return streamed();
  let expanded: Buffer;
  try {
    expanded = gunzipSync(bytes, { maxOutputLength: cap });
  } catch (error) {
    const code = (error as NodeJS.ErrnoException).code;
    // Past the in-memory cap but perhaps within the limit: the stream decides.
    if (code === "ERR_BUFFER_TOO_LARGE" && cap < limit) return streamed();
    if (code === "ERR_BUFFER_TOO_LARGE") return Promise.reject(expandsTooFar(limit));
    // Corrupt or truncated gzip: the streaming path reports it the same way as any other unreadable archive.
    return streamed();
  }
  return extractTar(bufferFeed(expanded, limits), destination, limits);
}

/** Extracts a downloaded (already digest-verified) layer file: in memory when small, else streamed. */
export function extractArchiveFile(
  file: string,
  destination: string,
  limits: ExtractLimits = DEFAULT_EXTRACT_LIMITS,
): Promise<ExtractResult> {
  if (statSync(file).size > IN_MEMORY_BLOB_BYTES) return extractArchive(createReadStream(file), destination, limits);
  return extractArchiveBuffer(readFileSync(file), destination, limits);
}
