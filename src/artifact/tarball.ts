// Builds an artifact's content layer: a deterministic tar+gzip of a directory or file, with ignore rules and
// symlinks either refused or resolved strictly inside the root. The same content always gives the same bytes.
import { createHash } from "node:crypto";
import { createReadStream, createWriteStream } from "node:fs";
import { lstat, mkdtemp, readdir, readFile, realpath, rm, stat, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { basename, dirname, join, relative, sep } from "node:path";
import { Transform, type Writable } from "node:stream";
import { pipeline } from "node:stream/promises";
import { constants, createGzip } from "node:zlib";
import { ArtifactInputError } from "./errors.ts";
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

async function walkDirectory(walk: Walk, directory: string, archivePath: string, ancestors: ReadonlySet<string>) {
  const names = (await readdir(directory)).sort(compareBytes);
  for (const name of names) {
    const fullPath = join(directory, name);
    const entryPath = archivePath === "." ? name : `${archivePath}/${name}`;
    let info = await lstat(fullPath);
    let contentPath = fullPath;
    if (info.isSymbolicLink()) {
      const shown = relative(walk.root, fullPath);
      if (!walk.resolveSymlinks) {
        throw new ArtifactInputError(`${shown} is a symlink; pass --resolve-symlinks to archive what it points to inside ${walk.root}`);
      }
      let target: string;
      try {
        target = await realpath(fullPath);
      } catch (error) {
        throw new ArtifactInputError(`symlink ${shown} is broken: ${(error as Error).message}`, { cause: error });
      }
      if (!isInside(walk.realRoot, target)) {
        throw new ArtifactInputError(`symlink ${shown} points to ${target}, outside ${walk.root}; it is never followed out of the root`);
      }
      info = await stat(target);
      contentPath = target;
    }
    const isDirectory = info.isDirectory();
    if (walk.rules.ignores(entryPath, isDirectory)) continue;
    if (isDirectory) {
      const real = await realpath(contentPath);
      if (ancestors.has(real)) throw new ArtifactInputError(`symlink cycle at ${relative(walk.root, fullPath)}`);
      walk.entries.push({ path: entryPath, kind: "directory", mode: normalisedMode("directory", info.mode), size: 0 });
      await walkDirectory(walk, contentPath, entryPath, new Set([...ancestors, real]));
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
    info = await stat(path);
  } catch (error) {
    throw new ArtifactInputError(`cannot read --path ${path}: ${(error as Error).message}`, { cause: error });
  }
  const root = info.isDirectory() ? path : dirname(path);
  const realRoot = await realpath(root);
  const entries: TarballEntry[] = [{ path: ".", kind: "directory", mode: 0o755, size: 0 }];
  if (info.isFile()) {
    const file = await realpath(path);
    entries.push({ path: basename(path), kind: "file", mode: normalisedMode("file", info.mode), size: info.size, source: file });
    return entries;
  }
  if (!info.isDirectory()) throw new ArtifactInputError(`--path ${path} is not a file or directory`);
  const rules = await loadIgnoreRules(root, options.ignorePaths);
  await walkDirectory(
    { root, realRoot, rules, resolveSymlinks: options.resolveSymlinks ?? false, entries },
    root,
    ".",
    new Set([realRoot]),
  );
  return entries;
}

/** Writes the tar stream of `entries` into `output`, reading each file once and checking it did not change. */
async function writeTar(entries: readonly TarballEntry[], output: Writable): Promise<void> {
  const write = (chunk: Buffer) =>
    new Promise<void>((resolve, reject) => {
      if (output.write(chunk)) resolve();
      else {
        output.once("drain", resolve);
        output.once("error", reject);
      }
    });
  for (const entry of entries) {
    await write(entryHeader(entry.path, entry.kind, entry.mode, entry.size));
    if (entry.kind !== "file" || !entry.source) continue;
    let written = 0;
    for await (const chunk of createReadStream(entry.source) as AsyncIterable<Buffer>) {
      written += chunk.length;
      if (written > entry.size) break;
      await write(chunk);
    }
    if (written !== entry.size) throw new ArtifactInputError(`${entry.path} changed size while it was being archived`);
    await write(contentPadding(entry.size));
  }
  await write(END_OF_ARCHIVE);
  output.end();
}

function hashingPassThrough(hash: ReturnType<typeof createHash>, counter?: { bytes: number }): Transform {
  return new Transform({
    transform(chunk: Buffer, _encoding, callback) {
      hash.update(chunk);
      if (counter) counter.bytes += chunk.length;
      callback(null, chunk);
    },
  });
}

/** Zlib stamps the OS it was built on into byte 9 of the gzip header; 255 ("unknown") keeps digests portable. */
function portableGzipHeader(): Transform {
  let seen = 0;
  return new Transform({
    transform(chunk: Buffer, _encoding, callback) {
      if (seen <= 9 && seen + chunk.length > 9) chunk[9 - seen] = 0xff;
      seen += chunk.length;
      callback(null, chunk);
    },
  });
}

/** Builds the tar+gzip layer for `path` into a temporary file. */
export async function buildTarball(path: string, options: BuildOptions = {}): Promise<BuiltTarball> {
  const entries = await collectEntries(path, options);
  const dir = await mkdtemp(join(tmpdir(), "ferry-artifact-"));
  const output = join(dir, "artifact.tgz");
  const dispose = () => rm(dir, { recursive: true, force: true });
  try {
    const tarHash = createHash("sha256");
    const gzipHash = createHash("sha256");
    const counter = { bytes: 0 };
    const tarStream = hashingPassThrough(tarHash);
    const finished = pipeline(
      tarStream,
      createGzip({ level: constants.Z_DEFAULT_COMPRESSION }),
      portableGzipHeader(),
      hashingPassThrough(gzipHash, counter),
      createWriteStream(output, { mode: 0o600 }),
    );
    await Promise.all([writeTar(entries, tarStream), finished]);
    return {
      path: output,
      digest: `sha256:${gzipHash.digest("hex")}`,
      size: counter.bytes,
      diffId: `sha256:${tarHash.digest("hex")}`,
      entries,
      dispose,
    };
  } catch (error) {
    await dispose();
    throw error;
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
