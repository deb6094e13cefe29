// Which files an artifact leaves out: gitignore-syntax patterns from --ignore-paths (replacing Flux's defaults)
// plus a `.sourceignore` file at the root.
import { readFile } from "node:fs/promises";
import { join } from "node:path";
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
