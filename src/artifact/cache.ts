// The controller's artifact cache: extracted artifacts keyed by object, manifest digest and the options they were
// extracted with, published atomically and never changed afterwards, so the Kustomization reconciler reads a
// complete tree or none, and never one that is being replaced under it.
import { createHash, randomBytes } from "node:crypto";
import { mkdir, readdir, rename, rm, stat } from "node:fs/promises";
import { basename, dirname, join } from "node:path";

/** Where build copies live, beside the kinds' directories (a name no kind's directory has). */
const BUILDS_DIR = ".builds";

/** An entry name: the digest (algorithm-hex) and, when extraction options apply, a hash of them. */
const ENTRY_NAME = /^(sha256-[a-f0-9]{64}|sha384-[a-f0-9]{96}|sha512-[a-f0-9]{128})(-[a-f0-9]{16})?$/;

/** A hash of the options that change what is stored for one digest (ignore patterns, layer selection). */
export function extractionVariant(options: unknown): string {
  return createHash("sha256").update(JSON.stringify(options ?? null)).digest("hex").slice(0, 16);
}

export class ArtifactCache {
  readonly root: string;
  /** Entries a build is reading right now (relative path -> readers); pruning leaves them alone. */
  readonly #inUse = new Map<string, number>();
  /** Marks this process's staging directories; a pid would not do, since a container's process is pid 1 every time. */
  readonly #stagingPrefix = `.staging-${randomBytes(6).toString("hex")}-`;

  constructor(root: string) {
    this.root = root;
  }

  objectDir(kind: string, namespace: string, name: string): string {
    return join(this.root, kind.toLowerCase(), namespace, name);
  }

  /** Relative path of an artifact, as status.artifact.path carries it. */
  relativePath(kind: string, namespace: string, name: string, digest: string, variant?: string): string {
    return join(kind.toLowerCase(), namespace, name, `${digest.replace(":", "-")}${variant ? `-${variant}` : ""}`);
  }

  /**
   * The entry a source's status.artifact.path names, checked to be one of that source's own entries. Status is not
   * trusted as a path: anyone able to write it could otherwise point a Kustomization at another tenant's files.
   */
  entryOf(kind: string, namespace: string, name: string, artifactPath: string): string | undefined {
    const entry = basename(artifactPath);
    if (!ENTRY_NAME.test(entry) || dirname(artifactPath) !== join(kind.toLowerCase(), namespace, name)) return undefined;
    return join(kind.toLowerCase(), namespace, name, entry);
  }

  async has(relativePath: string): Promise<boolean> {
    return stat(join(this.root, relativePath)).then((info) => info.isDirectory(), () => false);
  }

  /**
   * This process's directory for build copies, inside the cache so that a crash's leftovers are found and removed
   * at the next start (collectGarbage) instead of filling the temporary directory.
   */
  async scratchDir(): Promise<string> {
    const dir = join(this.root, BUILDS_DIR, this.#stagingPrefix.slice(".staging-".length, -1));
    await mkdir(dir, { recursive: true });
    return dir;
  }

  /** A fresh staging directory beside the final location, on the same filesystem so publishing is a rename. */
  async stage(kind: string, namespace: string, name: string): Promise<string> {
    const dir = join(this.objectDir(kind, namespace, name), `${this.#stagingPrefix}${Date.now()}`);
    await mkdir(dir, { recursive: true });
    return dir;
  }

  /**
   * Moves a staged tree into place. An entry that already exists is kept as it is: its name fixes its content, and
   * replacing it would pull files from under a build that is copying it.
   */
  async publish(staging: string, relativePath: string): Promise<void> {
    if (await this.has(relativePath)) {
      await rm(staging, { recursive: true, force: true });
      return;
    }
    await rename(staging, join(this.root, relativePath));
  }

  /** Runs `read` with the entry marked in use, so that pruning does not remove it meanwhile. */
  async reading<T>(relativePath: string, read: (directory: string) => Promise<T>): Promise<T> {
    this.#inUse.set(relativePath, (this.#inUse.get(relativePath) ?? 0) + 1);
    try {
      return await read(join(this.root, relativePath));
    } finally {
      const readers = (this.#inUse.get(relativePath) ?? 1) - 1;
      if (readers === 0) this.#inUse.delete(relativePath);
      else this.#inUse.set(relativePath, readers);
    }
  }

  /**
   * Removes the object's artifacts except `keep`, the newest one before it and those being read, and any staging
   * left by a crash. The previous artifact stays because a Kustomization may start copying it before it sees the
   * new one.
   */
  async prune(kind: string, namespace: string, name: string, keep?: string): Promise<void> {
    const dir = this.objectDir(kind, namespace, name);
    const relative = (entry: string) => join(kind.toLowerCase(), namespace, name, entry);
    const entries = await readdir(dir).catch(() => [] as string[]);
    const artifacts = await Promise.all(entries
      .filter((entry) => !entry.startsWith(".staging-") && relative(entry) !== keep)
      .map(async (entry) => ({ entry, modified: (await stat(join(dir, entry)).catch(() => undefined))?.mtimeMs ?? 0 })));
    const previous = artifacts.sort((a, b) => b.modified - a.modified)[0]?.entry;
    for (const entry of entries) {
      if (relative(entry) === keep || entry === previous || this.#inUse.has(relative(entry))) continue;
      await rm(join(dir, entry), { recursive: true, force: true });
    }
  }

  async remove(kind: string, namespace: string, name: string): Promise<void> {
    await rm(this.objectDir(kind, namespace, name), { recursive: true, force: true });
  }

  /**
   * Removes staging left by an earlier process (never this one's), and the directories of objects that no longer
   * exist (`exists` says which do), so a cache volume does not fill up across restarts. Run once at start.
   */
  async collectGarbage(kind: string, exists: (namespace: string, name: string) => boolean): Promise<number> {
    const kindDir = join(this.root, kind.toLowerCase());
    let removed = await this.#removeOtherBuilds();
    for (const namespace of await readdir(kindDir).catch(() => [] as string[])) {
      for (const name of await readdir(join(kindDir, namespace)).catch(() => [] as string[])) {
        const dir = join(kindDir, namespace, name);
        const leftovers = exists(namespace, name)
          ? (await readdir(dir).catch(() => [] as string[]))
              .filter((entry) => entry.startsWith(".staging-") && !entry.startsWith(this.#stagingPrefix))
              .map((entry) => join(dir, entry))
          : [dir];
        for (const path of leftovers) await rm(path, { recursive: true, force: true });
        removed += leftovers.length;
      }
    }
    return removed;
  }

  /** Build copies of earlier processes: their builds ended with them. */
  async #removeOtherBuilds(): Promise<number> {
    const builds = join(this.root, BUILDS_DIR);
    const ours = this.#stagingPrefix.slice(".staging-".length, -1);
    const others = (await readdir(builds).catch(() => [] as string[])).filter((entry) => entry !== ours);
    for (const entry of others) await rm(join(builds, entry), { recursive: true, force: true });
    return others.length;
  }

  async size(relativePath: string): Promise<number> {
    let total = 0;
    for (const entry of await readdir(join(this.root, relativePath), { recursive: true, withFileTypes: true })) {
      if (entry.isFile()) total += (await stat(join(entry.parentPath, entry.name))).size;
    }
    return total;
  }
}
