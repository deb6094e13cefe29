// Builds an artifact's content layer: a deterministic tar+gzip of a directory or file, with ignore rules and
// symlinks either refused or resolved strictly inside the root. The same content always gives the same bytes.
import { createHash } from "node:crypto";
import { closeSync, createWriteStream, lstatSync, openSync, readdirSync, readSync, realpathSync, statSync, writeSync } from "node:fs";
import { mkdtemp, readFile, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { basename, dirname, join, relative, sep } from "node:path";
import { pipeline } from "node:stream/promises";
import { ArtifactInputError } from "./errors.ts";
import { GZIP_BLOCK_BYTES, ParallelGzip } from "./gzip.ts";
import { type IgnoreRules, loadIgnoreRules } from "./ignore.ts";
import { contentPadding, END_OF_ARCHIVE, type EntryKind, entryHeader } from "./tar-header.ts";

export interface TarballEntry {
  /** Path inside the archive, `/`-separated; `.` is the root directory. */
  readonly path: string;
  readonly kind: EntryKind;
  readonly mode: number;
  readonly size: number;
  /** Where the content is read from (regular files only). */
  readonly source?: string;
}

export interface BuildOptions {
  readonly ignorePaths?: readonly string[];
  readonly resolveSymlinks?: boolean;
}

export interface BuiltTarball {
  /** The .tgz file; the caller owns it (and `dir`) and removes them with `dispose()`. */
  readonly path: string;
  readonly digest: string;
  readonly size: number;
  readonly diffId: string;
  readonly entries: readonly TarballEntry[];
  dispose(): Promise<void>;
}

/** Modes are normalised so that the digest does not depend on the umask of the machine that pushes. */
function normalisedMode(kind: EntryKind, mode: number): number {
  if (kind === "directory") return 0o755;
  return mode & 0o111 ? 0o755 : 0o644;
}

function compareBytes(a: string, b: string): number {
  return Buffer.compare(Buffer.from(a, "utf8"), Buffer.from(b, "utf8"));
}

/** True when `candidate` is `root` or inside it. */
export function isInside(root: string, candidate: string): boolean {
  const path = relative(root, candidate);
  return path === "" || (!path.startsWith(`..${sep}`) && path !== ".." && !path.startsWith(sep));
}

interface Walk {
  readonly root: string;
  readonly realRoot: string;
  readonly rules: IgnoreRules;
  readonly resolveSymlinks: boolean;
  readonly entries: TarballEntry[];
}

// The walk and the file reads are synchronous: a CLI (or a reconcile) builds one archive at a time, and a
// synchronous stat or read of a small manifest costs microseconds where an asynchronous one waits a thread-pool
// round trip. On kube-prometheus (95 files) this took the build from ~150 ms to ~70 ms.
function walkDirectory(walk: Walk, directory: string, archivePath: string, ancestors: ReadonlySet<string>): void {
  const names = readdirSync(directory).sort(compareBytes);
  for (const name of names) {
    const fullPath = join(directory, name);
    const entryPath = archivePath === "." ? name : `${archivePath}/${name}`;
    let info = lstatSync(fullPath);
    let contentPath = fullPath;
    if (info.isSymbolicLink()) {
      const shown = relative(walk.root, fullPath);
      if (!walk.resolveSymlinks) {
        throw new ArtifactInputError(`${shown} is a symlink; pass --resolve-symlinks to archive what it points to inside ${walk.root}`);
      }
      let target: string;
      try {
        target = realpathSync(fullPath);
      } catch (error) {
        throw new ArtifactInputError(`symlink ${shown} is broken: ${(error as Error).message}`, { cause: error });
      }
      if (!isInside(walk.realRoot, target)) {
        throw new ArtifactInputError(`symlink ${shown} points to ${target}, outside ${walk.root}; it is never followed out of the root`);
      }
      info = statSync(target);
      contentPath = target;
    }
    const isDirectory = info.isDirectory();
    if (walk.rules.ignores(entryPath, isDirectory)) continue;
    if (isDirectory) {
      const real = realpathSync(contentPath);
      if (ancestors.has(real)) throw new ArtifactInputError(`symlink cycle at ${relative(walk.root, fullPath)}`);
      walk.entries.push({ path: entryPath, kind: "directory", mode: normalisedMode("directory", info.mode), size: 0 });
      walkDirectory(walk, contentPath, entryPath, new Set([...ancestors, real]));
    } else if (info.isFile()) {
      walk.entries.push({ path: entryPath, kind: "file", mode: normalisedMode("file", info.mode), size: info.size, source: contentPath });
    } else {
      throw new ArtifactInputError(`${relative(walk.root, fullPath)} is not a regular file or directory`);
    }
  }
}

/**
 * Lists what goes into the archive, in the order it is written: the root `.`, then a depth-first walk with
 * entries sorted by byte order at every level, as Flux's walk does.
 */
export async function collectEntries(path: string, options: BuildOptions = {}): Promise<TarballEntry[]> {
  let info;
  try {
    info = statSync(path);
  } catch (error) {
    throw new ArtifactInputError(`cannot read --path ${path}: ${(error as Error).message}`, { cause: error });
  }
  const root = info.isDirectory() ? path : dirname(path);
  const realRoot = realpathSync(root);
  const entries: TarballEntry[] = [{ path: ".", kind: "directory", mode: 0o755, size: 0 }];
  if (info.isFile()) {
    const file = realpathSync(path);
    entries.push({ path: basename(path), kind: "file", mode: normalisedMode("file", info.mode), size: info.size, source: file });
    return entries;
  }
  if (!info.isDirectory()) throw new ArtifactInputError(`--path ${path} is not a file or directory`);
  const rules = await loadIgnoreRules(root, options.ignorePaths);
  walkDirectory({ root, realRoot, rules, resolveSymlinks: options.resolveSymlinks ?? false, entries }, root, ".", new Set([realRoot]));
  return entries;
}

/**
 * Yields the tar stream of `entries` as GZIP_BLOCK_BYTES buffers (the last one shorter), with file content read
 * straight into them: the blocks go to gzip as they are, so every byte is copied once, by the read.
 */
function* tarBlocks(entries: readonly TarballEntry[]): Generator<Buffer> {
  let block = Buffer.allocUnsafe(GZIP_BLOCK_BYTES);
  let used = 0;
  function* nextBlockIfFull(): Generator<Buffer> {
    if (used < block.length) return;
    yield block;
    block = Buffer.allocUnsafe(GZIP_BLOCK_BYTES);
    used = 0;
  }
  function* put(bytes: Buffer): Generator<Buffer> {
    for (let offset = 0; offset < bytes.length;) {
      const copied = bytes.copy(block, used, offset);
      used += copied;
      offset += copied;
      yield* nextBlockIfFull();
    }
  }
  for (const entry of entries) {
    yield* put(entryHeader(entry.path, entry.kind, entry.mode, entry.size));
    if (entry.kind !== "file" || !entry.source) continue;
    const fd = openSync(entry.source, "r");
    try {
      let offset = 0;
      while (offset < entry.size) {
        const read = readSync(fd, block, used, Math.min(block.length - used, entry.size - offset), offset);
        if (read === 0) break;
        used += read;
        offset += read;
        yield* nextBlockIfFull();
      }
      // The header already carries the size from the walk; a file that shrank or grew since would corrupt the archive.
      if (offset !== entry.size || readSync(fd, Buffer.alloc(1), 0, 1, offset) !== 0) {
        throw new ArtifactInputError(`${entry.path} changed size while it was being archived`);
      }
    } finally {
      closeSync(fd);
    }
    yield* put(contentPadding(entry.size));
  }
  yield* put(END_OF_ARCHIVE);
  if (used > 0) yield block.subarray(0, used);
}

/** Builds the tar+gzip layer for `path` into a temporary file. */
export async function buildTarball(path: string, options: BuildOptions = {}): Promise<BuiltTarball> {
  return writeTarball(await collectEntries(path, options));
}

/** Writes the tar+gzip layer of entries listed by collectEntries into a temporary file. */
export async function writeTarball(entries: readonly TarballEntry[]): Promise<BuiltTarball> {
  const dir = await mkdtemp(join(tmpdir(), "ferry-artifact-"));
  const output = join(dir, "artifact.tgz");
  const dispose = () => rm(dir, { recursive: true, force: true });
  const fd = openSync(output, "w", 0o600);
  try {
    const tarHash = createHash("sha256");
    const gzipHash = createHash("sha256");
    let size = 0;
    const gzip = new ParallelGzip((chunk) => {
      gzipHash.update(chunk);
      writeSync(fd, chunk);
      size += chunk.length;
    });
    for (const block of tarBlocks(entries)) {
      tarHash.update(block);
      await gzip.push(block);
    }
    await gzip.finish();
    return { path: output, digest: `sha256:${gzipHash.digest("hex")}`, size, diffId: `sha256:${tarHash.digest("hex")}`, entries, dispose };
  } catch (error) {
    await dispose();
    throw error;
  } finally {
    closeSync(fd);
  }
}

/** Reads stdin (for `--path -`) into a file named `stdin.yaml` inside a fresh temporary directory. */
export async function stdinToFile(input: NodeJS.ReadableStream): Promise<{ path: string; dispose: () => Promise<void> }> {
  const dir = await mkdtemp(join(tmpdir(), "ferry-stdin-"));
  const path = join(dir, "stdin.yaml");
  await pipeline(input, createWriteStream(path, { mode: 0o644 }));
  // Flux trims trailing newlines from stdin before archiving; do the same so both produce the same file.
  const text = await readFile(path, "utf8");
  await writeFile(path, text.replace(/[\r\n]+$/, ""));
  return { path, dispose: () => rm(dir, { recursive: true, force: true }) };
}
