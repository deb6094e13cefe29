// Which files an artifact leaves out. Two consumers, two rule sets:
//  - `ferry push/build artifact`: gitignore-syntax patterns from --ignore-paths (replacing Flux's defaults) plus a
//    `.sourceignore` file at the root (loadIgnoreRules).
//  - the OCIRepository controller: what source-controller's Storage.Archive leaves out of an extracted layer
//    (applySourceIgnore): every .sourceignore in the tree, scoped to its directory, plus spec.ignore; with neither,
//    Flux's default exclusions. The matcher is fluxcd/pkg/sourceignore's (go-git's gitignore), whose answers differ
//    from git's and from the `ignore` package's: a re-included file inside an excluded directory is kept, `a/b`
//    also excludes everything under a/b, and patterns are matched from the last to the first.
import { readdir, readFile, rm, rmdir } from "node:fs/promises";
import { join } from "node:path";
import { setImmediate as yieldToEventLoop } from "node:timers/promises";
import ignore, { type Ignore } from "ignore";
import { type Disposition, FerryError } from "../errors.ts";
import { BadGlobPatternError, goGlobMatch } from "./go-glob.ts";

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

/** fluxcd/pkg/sourceignore's ExcludeVCS: always excluded by the controller, whatever else applies. */
export const FLUX_VCS_PATTERNS: readonly string[] = [".git/", ".gitignore", ".gitmodules", ".gitattributes"];

/** sourceignore's ExcludeExt, ExcludeCI and ExcludeExtra: excluded only when no pattern is given at all. */
export const FLUX_DEFAULT_PATTERNS: readonly string[] = [
  "*.jpg", "*.jpeg", "*.gif", "*.png", "*.wmv", "*.flv", "*.tar.gz", "*.zip",
  ".github/", ".circleci/", ".travis.yml", ".gitlab-ci.yml", "appveyor.yml", ".drone.yml", "cloudbuild.yaml",
  "codeship-services.yml", "codeship-steps.yml",
  "**/.goreleaser.yml", "**/.sops.yaml", "**/.flux.yaml",
];

/** The tree's ignore rules cost more to read or apply than the controller allows (hostile or broken artifact). */
export class SourceIgnoreError extends FerryError {
  readonly code = "SOURCE_IGNORE";
  // A new artifact (a new digest) may be fine: keep polling rather than stall.
  readonly disposition: Disposition = "retry";
}

/** What applying ignore rules to one extracted tree may cost; tenant artifacts choose both sides of the product. */
export interface SourceIgnoreLimits {
  /** Bytes of .sourceignore files read in total. */
  readonly maxIgnoreFileBytes: number;
  readonly maxPatterns: number;
  /** Pattern evaluations: one pattern tried against one path. */
  readonly maxEvaluations: number;
}

// Only patterns that apply to an entry's directory are evaluated. One costs up to about a microsecond with
// star-heavy patterns, so a tree costs at most some seconds of one worker's CPU, in slices of
// YIELD_EVERY_EVALUATIONS; a legitimate tree (100 patterns over the extraction limit of 50,000 entries) stays inside.
export const DEFAULT_SOURCE_IGNORE_LIMITS: SourceIgnoreLimits = {
  maxIgnoreFileBytes: 1024 * 1024,
  maxPatterns: 5_000,
  maxEvaluations: 8_000_000,
};

/** One gitignore line, scoped to the directory (`domain`, path segments from the root) of the file it came from. */
export interface SourceIgnorePattern {
  readonly domain: readonly string[];
  readonly segments: readonly string[];
  readonly inclusion: boolean;
  readonly dirOnly: boolean;
  /** Contains a `/`: matched segment by segment from the domain, not as a name anywhere below it. */
  readonly anchored: boolean;
}

/** sourceignore/gitignore's ParsePattern. */
export function parseSourceIgnorePattern(line: string, domain: readonly string[]): SourceIgnorePattern {
  let text = line;
  const inclusion = text.startsWith("!");
  if (inclusion) text = text.slice(1);
  if (!text.endsWith("\\ ")) text = text.replace(/ +$/, "");
  const dirOnly = text.endsWith("/");
  if (dirOnly) text = text.slice(0, -1);
  return { domain, segments: text.split("/"), inclusion, dirOnly, anchored: text.includes("/") };
}

/** bufio.Scanner's limit: reading stops at a line of 64 KiB or more (Go's ErrTooLong, which sourceignore ignores). */
const MAX_LINE_BYTES = 64 * 1024;

/** sourceignore's ReadPatterns: one pattern a line; `#` lines and blank lines are skipped; a CR before LF is dropped. */
export function readSourceIgnorePatterns(text: string, domain: readonly string[]): SourceIgnorePattern[] {
  const patterns: SourceIgnorePattern[] = [];
  const lines = text.split("\n");
  if (lines.at(-1) === "") lines.pop();
  for (const raw of lines) {
    if (Buffer.byteLength(raw) >= MAX_LINE_BYTES) break;
    const line = raw.endsWith("\r") ? raw.slice(0, -1) : raw;
    if (!line.startsWith("#") && line.trim() !== "") patterns.push(parseSourceIgnorePattern(line, domain));
  }
  return patterns;
}

/** filepath.Match; a malformed pattern matches nothing (and, as in sourceignore, ends the search). */
function globMatches(pattern: string, name: string): boolean | "bad" {
  try {
    return goGlobMatch(pattern, name);
  } catch (error) {
    if (error instanceof BadGlobPatternError) return "bad";
    throw error;
  }
}

/** sourceignore/gitignore's simpleNameMatch: any segment named like the pattern (a directory unless it is last). */
function nameMatches(pattern: SourceIgnorePattern, path: readonly string[], isDir: boolean): boolean {
  for (let i = 0; i < path.length; i++) {
    const matched = globMatches(pattern.segments[0] ?? "", path[i] as string);
    if (matched === "bad") return false;
    if (!matched) continue;
    return !(pattern.dirOnly && !isDir && i === path.length - 1);
  }
  return false;
}

/**
 * sourceignore/gitignore's globMatch, quirks included: `**` matches zero or more segments, a trailing `**` anything
 * below, and segments of the path beyond the pattern's are not looked at (so `a/b` matches a/b/c).
 */
function anchoredMatches(pattern: SourceIgnorePattern, fullPath: readonly string[], isDir: boolean): boolean {
  let path = fullPath;
  let matched = false;
  let traverse = false;
  for (let i = 0; i < pattern.segments.length; i++) {
    const segment = pattern.segments[i] as string;
    if (segment === "") {
      traverse = false;
      continue;
    }
    if (segment === "**") {
      if (i === pattern.segments.length - 1) break;
      traverse = true;
      continue;
    }
    if (segment.includes("**") || path.length === 0) return false;
    if (traverse) {
      traverse = false;
      while (path.length > 0) {
        const name = path[0] as string;
        path = path.slice(1);
        const result = globMatches(segment, name);
        if (result === "bad") return false;
        if (result) {
          matched = true;
          break;
        }
        if (path.length === 0) matched = false;
      }
    } else {
      if (globMatches(segment, path[0] as string) !== true) return false;
      matched = true;
      path = path.slice(1);
    }
  }
  return matched && !(pattern.dirOnly && !isDir && path.length === 0);
}

type MatchResult = "none" | "exclude" | "include";

/** sourceignore/gitignore's Pattern.Match: only paths strictly below the pattern's domain. */
function matchPattern(pattern: SourceIgnorePattern, path: readonly string[], isDir: boolean): MatchResult {
  const { domain } = pattern;
  if (path.length <= domain.length || domain.some((segment, i) => path[i] !== segment)) return "none";
  const below = path.slice(domain.length);
  const matched = pattern.anchored ? anchoredMatches(pattern, below, isDir) : nameMatches(pattern, below, isDir);
  if (!matched) return "none";
  return pattern.inclusion ? "include" : "exclude";
}

/**
 * storage.SourceIgnoreFilter: with no patterns, Flux's VCS and default exclusions; otherwise the VCS ones and the
 * patterns. The last pattern that matches decides. Every evaluation is counted against `maxEvaluations`.
 */
export class SourceIgnoreMatcher {
  readonly #patterns: readonly SourceIgnorePattern[];
  readonly #maxEvaluations: number;
  #evaluations = 0;
  /** The patterns that can match entries of the directory last asked about, in order; see #applicable. */
  #directory: { key: string; patterns: readonly SourceIgnorePattern[] } | undefined;

  /** Pattern evaluations so far. */
  get evaluations(): number {
    return this.#evaluations;
  }

  constructor(patterns: readonly SourceIgnorePattern[], maxEvaluations = DEFAULT_SOURCE_IGNORE_LIMITS.maxEvaluations) {
    const base = patterns.length > 0 ? FLUX_VCS_PATTERNS : [...FLUX_VCS_PATTERNS, ...FLUX_DEFAULT_PATTERNS];
    this.#patterns = [...base.map((line) => parseSourceIgnorePattern(line, [])), ...patterns];
    this.#maxEvaluations = maxEvaluations;
  }

  /** Whether `path` (segments from the root) is left out. */
  excludes(path: readonly string[], isDir: boolean): boolean {
    const patterns = this.#applicable(path.slice(0, -1));
    for (let i = patterns.length - 1; i >= 0; i--) {
      if (++this.#evaluations > this.#maxEvaluations) {
        throw new SourceIgnoreError(
          `applying the artifact's ignore rules took over ${this.#maxEvaluations} pattern evaluations; use fewer .sourceignore patterns or files`,
        );
      }
      const result = matchPattern(patterns[i] as SourceIgnorePattern, path, isDir);
      if (result !== "none") return result === "exclude";
    }
    return false;
  }

  /**
   * The patterns whose domain contains `directory` (the others cannot match its entries), kept for the next entry
   * of the same directory: a walk asks about one directory's entries in a row, so each is filtered once.
   */
  #applicable(directory: readonly string[]): readonly SourceIgnorePattern[] {
    const key = directory.join("\0");
    if (this.#directory?.key !== key) {
      const contains = (domain: readonly string[]) =>
        domain.length <= directory.length && domain.every((segment, i) => directory[i] === segment);
      const patterns = this.#patterns.filter((pattern) => contains(pattern.domain));
      this.#directory = { key, patterns };
    }
    return this.#directory.patterns;
  }
}

/** Running totals while .sourceignore files are read, checked against the limits. */
interface LoadBudget {
  readonly limits: SourceIgnoreLimits;
  bytes: number;
  patterns: number;
}

async function readIgnoreFile(directory: string, domain: readonly string[], budget: LoadBudget): Promise<SourceIgnorePattern[]> {
  let text: string;
  try {
    text = await readFile(join(directory, SOURCEIGNORE_FILE), "utf8");
  } catch (error) {
    // A missing file has no patterns; so has a directory of that name, which Go opens and fails to read.
    if (["ENOENT", "EISDIR"].includes((error as NodeJS.ErrnoException).code ?? "")) return [];
    throw error;
  }
  budget.bytes += Buffer.byteLength(text);
  if (budget.bytes > budget.limits.maxIgnoreFileBytes) {
    throw new SourceIgnoreError(`the artifact's .sourceignore files hold over ${budget.limits.maxIgnoreFileBytes} bytes`);
  }
  const patterns = readSourceIgnorePatterns(text, domain);
  budget.patterns += patterns.length;
  if (budget.patterns > budget.limits.maxPatterns) throw new SourceIgnoreError(`the artifact's ignore rules have over ${budget.limits.maxPatterns} patterns`);
  return patterns;
}

/**
 * sourceignore's LoadIgnorePatterns: the root's .sourceignore, then each subdirectory's (name order, depth first,
 * `.git` skipped), each scoped to its own directory.
 */
async function loadSourceIgnorePatterns(root: string, domain: readonly string[], budget: LoadBudget): Promise<SourceIgnorePattern[]> {
  const directory = join(root, ...domain);
  const patterns = await readIgnoreFile(directory, domain, budget);
  const entries = (await readdir(directory, { withFileTypes: true })).sort((a, b) => (a.name < b.name ? -1 : a.name > b.name ? 1 : 0));
  for (const entry of entries) {
    if (entry.isDirectory() && entry.name !== ".git") patterns.push(...(await loadSourceIgnorePatterns(root, [...domain, entry.name], budget)));
  }
  return patterns;
}

/** Pattern evaluations between yields to the event loop (some milliseconds), so a large tree never holds it long. */
const YIELD_EVERY_EVALUATIONS = 10_000;

/**
 * Removes from an extracted tree what source-controller's Storage.Archive leaves out of the artifact it stores for
 * an OCIRepository: files the matcher excludes, and excluded directories that end up empty. An excluded directory
 * keeps the files a later `!pattern` re-includes, as Flux's archive (which walks into excluded directories) does.
 * Returns the removed paths.
 */
export async function applySourceIgnore(
  root: string,
  specIgnore: string | undefined,
  options: { limits?: SourceIgnoreLimits; signal?: AbortSignal } = {},
): Promise<string[]> {
  const { limits = DEFAULT_SOURCE_IGNORE_LIMITS, signal } = options;
  const budget: LoadBudget = { limits, bytes: 0, patterns: 0 };
  const patterns = await loadSourceIgnorePatterns(root, [], budget);
  if (specIgnore !== undefined) patterns.push(...readSourceIgnorePatterns(specIgnore, []));
  if (patterns.length > limits.maxPatterns) throw new SourceIgnoreError(`the artifact's ignore rules have over ${limits.maxPatterns} patterns`);
  const matcher = new SourceIgnoreMatcher(patterns, limits.maxEvaluations);
  const removed: string[] = [];
  let yielded = 0;
  const walk = async (path: readonly string[]) => {
    for (const entry of await readdir(join(root, ...path), { withFileTypes: true })) {
      if (matcher.evaluations - yielded >= YIELD_EVERY_EVALUATIONS) {
        yielded = matcher.evaluations;
        await yieldToEventLoop();
        signal?.throwIfAborted();
      }
      const child = [...path, entry.name];
      const full = join(root, ...child);
      if (entry.isDirectory()) {
        await walk(child);
        if (matcher.excludes(child, true) && (await readdir(full)).length === 0) {
          await rmdir(full);
          removed.push(child.join("/"));
        }
      } else if (matcher.excludes(child, false)) {
        await rm(full, { force: true });
        removed.push(child.join("/"));
      }
    }
  };
  await walk([]);
  return removed;
}
