// Which files an artifact leaves out: gitignore-syntax patterns from --ignore-paths (replacing Flux's defaults)
// plus a `.sourceignore` file at the root.
import { readdir, readFile, rm } from "node:fs/promises";
import { join, relative, sep } from "node:path";
import ignore, { type Ignore } from "ignore";

/** Flux's default exclusions for `flux push artifact`: VCS metadata and common binary formats. */
export const DEFAULT_IGNORE_PATTERNS: readonly string[] = [
  ".git/",
  ".gitignore",
  ".gitmodules",
  ".gitattributes",
  "*.jpg",
  "*.jpeg",
  "*.gif",
  "*.png",
  "*.wmv",
  "*.flv",
  "*.tar.gz",
  "*.zip",
];

export const SOURCEIGNORE_FILE = ".sourceignore";

export interface IgnoreRules {
  /** `relativePath` uses `/` separators; directories are matched with `isDirectory`. */
  ignores(relativePath: string, isDirectory: boolean): boolean;
}

export async function loadIgnoreRules(root: string, ignorePaths?: readonly string[]): Promise<IgnoreRules> {
  const matcher: Ignore = ignore({ allowRelativePaths: true });
  // Patterns may arrive one per flag or comma-separated, as flux's StringSlice flags accept them.
  const patterns = ignorePaths === undefined ? DEFAULT_IGNORE_PATTERNS : ignorePaths.flatMap((value) => value.split(","));
  matcher.add(patterns.map((pattern) => pattern.trim()).filter((pattern) => pattern !== ""));
  try {
    matcher.add(await readFile(join(root, SOURCEIGNORE_FILE), "utf8"));
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code !== "ENOENT" && (error as NodeJS.ErrnoException).code !== "ENOTDIR") throw error;
  }
  return {
    ignores: (relativePath, isDirectory) => matcher.ignores(isDirectory ? `${relativePath}/` : relativePath),
  };
}

/**
 * Removes from an extracted tree what `patterns` (gitignore syntax, as OCIRepository spec.ignore) and the tree's own
 * .sourceignore exclude. Returns the removed paths.
 */
export async function removeIgnored(root: string, patterns: string): Promise<string[]> {
  const matcher: Ignore = ignore({ allowRelativePaths: true }).add(patterns);
  try {
    matcher.add(await readFile(join(root, SOURCEIGNORE_FILE), "utf8"));
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code !== "ENOENT") throw error;
  }
  const removed: string[] = [];
  const walk = async (directory: string) => {
    for (const entry of await readdir(directory, { withFileTypes: true })) {
      const full = join(directory, entry.name);
      const path = relative(root, full).split(sep).join("/");
      if (matcher.ignores(entry.isDirectory() ? `${path}/` : path)) {
        await rm(full, { recursive: true, force: true });
        removed.push(path);
      } else if (entry.isDirectory()) {
        await walk(full);
      }
    }
  };
  await walk(root);
  return removed;
}
