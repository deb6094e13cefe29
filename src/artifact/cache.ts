// The controller's artifact cache: extracted artifacts keyed by object and manifest digest, published atomically,
// so the Kustomization reconciler reads a complete tree or none.
import { mkdir, readdir, rename, rm, stat } from "node:fs/promises";
import { join } from "node:path";

export class ArtifactCache {
  readonly root: string;

  constructor(root: string) {
    this.root = root;
  }

  objectDir(kind: string, namespace: string, name: string): string {
    return join(this.root, kind.toLowerCase(), namespace, name);
  }

  /** Relative path of an artifact, as status.artifact.path carries it. */
  relativePath(kind: string, namespace: string, name: string, digest: string): string {
    return join(kind.toLowerCase(), namespace, name, digest.replace(":", "-"));
  }

  async has(relativePath: string): Promise<boolean> {
    return stat(join(this.root, relativePath)).then((info) => info.isDirectory(), () => false);
  }

  /** A fresh staging directory beside the final location, on the same filesystem so publishing is a rename. */
  async stage(kind: string, namespace: string, name: string): Promise<string> {
    const dir = join(this.objectDir(kind, namespace, name), `.staging-${process.pid}-${Date.now()}`);
    await mkdir(dir, { recursive: true });
    return dir;
  }

  async publish(staging: string, relativePath: string): Promise<void> {
    const target = join(this.root, relativePath);
    await rm(target, { recursive: true, force: true });
    await rename(staging, target);
  }

  /**
   * Removes the object's artifacts except `keep` and the newest one before it, and any staging left by a crash.
   * The previous artifact stays because a Kustomization may be copying it for a build right now; removing it
   * under that copy would make the build silently miss files, and the prune after it delete their objects.
   */
  async prune(kind: string, namespace: string, name: string, keep?: string): Promise<void> {
    const dir = this.objectDir(kind, namespace, name);
    const entries = await readdir(dir).catch(() => [] as string[]);
    const artifacts = await Promise.all(entries
      .filter((entry) => !entry.startsWith(".staging-") && !(keep && join(dir, entry) === join(this.root, keep)))
      .map(async (entry) => ({ entry, modified: (await stat(join(dir, entry)).catch(() => undefined))?.mtimeMs ?? 0 })));
    const previous = artifacts.sort((a, b) => b.modified - a.modified)[0]?.entry;
    for (const entry of entries) {
      if ((keep && join(dir, entry) === join(this.root, keep)) || entry === previous) continue;
      await rm(join(dir, entry), { recursive: true, force: true });
    }
  }

  async remove(kind: string, namespace: string, name: string): Promise<void> {
    await rm(this.objectDir(kind, namespace, name), { recursive: true, force: true });
  }

  async size(relativePath: string): Promise<number> {
    let total = 0;
    for (const entry of await readdir(join(this.root, relativePath), { recursive: true, withFileTypes: true })) {
      if (entry.isFile()) total += (await stat(join(entry.parentPath, entry.name))).size;
    }
    return total;
  }
}
