// Semantic versions and constraints as github.com/Masterminds/semver/v3 (v3.5.0, the version source-controller
// v1.9.1 pins) reads them, for OCIRepository's ref.semver. node-semver reads the same strings differently: a comma
// means AND here (">=1.0, <2.0"), prereleases are admitted per OR group when any constraint in that group has one
// (so "-0" opts in), "~1.2.3-beta.2" accepts 1.2.4-beta.2, "<=1.1" accepts 1.1.9, and versions may have leading
// zeros ("2025.01.02"). Written from Masterminds' constraints.go and version.go; the behaviour is pinned by a table
// derived from its constraints_test.go and version_test.go (test/unit/masterminds-semver.test.ts).
//
// Constraint strings are tenant input: Masterminds' regular expressions are evaluated with re2js (linear time, Go's
// RE2 semantics, so leftmost-first alternation and `\s` mean what they mean in Go); a JavaScript RegExp would
// backtrack exponentially on `\s*` next to `\s+` in its AND-list grammar. Versions, parsed once per tag of a
// listing of up to 100,000 tags, are read by a hand-written scanner equivalent to Masterminds' loose regular
// expression (every component there is delimited by a character the previous one cannot contain, so a single
// left-to-right pass finds the same split).
import { RE2JS } from "re2js";
import { type Disposition, FerryError } from "../errors.ts";
import { goSort } from "./go-sort.ts";

/** Masterminds' MaxConstraintLen and MaxConstraintGroups: longer constraints are refused before parsing. */
export const MAX_CONSTRAINT_LENGTH = 512;
export const MAX_CONSTRAINT_GROUPS = 32;
/** Masterminds' MaxVersionLen. */
export const MAX_VERSION_LENGTH = 256;

const UINT64_MAX = (1n << 64n) - 1n;

/** A constraint Masterminds' NewConstraint refuses; the spec must change. */
export class SemverConstraintError extends FerryError {
  readonly code = "SEMVER_CONSTRAINT_INVALID";
  readonly disposition: Disposition = "stall";
}

export interface SemverVersion {
  readonly major: bigint;
  readonly minor: bigint;
  readonly patch: bigint;
  readonly prerelease: string;
  readonly metadata: string;
  /** The text parsed, 'v' and all: what is returned as the tag. */
  readonly original: string;
}

const isDigit = (code: number) => code >= 48 && code <= 57;
const isIdentifierChar = (code: number) => isDigit(code) || (code >= 65 && code <= 90) || (code >= 97 && code <= 122) || code === 45;

/** strconv.ParseUint(s, 10, 64) for a string of ASCII digits: undefined when it overflows. */
function parseUint64(digits: string): bigint | undefined {
  const value = BigInt(digits);
  return value <= UINT64_MAX ? value : undefined;
}

/** Index just past a run of characters satisfying `accept`, starting at `from`. */
function scan(text: string, from: number, accept: (code: number) => boolean): number {
  let index = from;
  while (index < text.length && accept(text.charCodeAt(index))) index++;
  return index;
}

/** Index past dot-separated non-empty identifiers ([0-9A-Za-z-]+(\.[0-9A-Za-z-]+)*) at `from`, or -1 if none. */
function scanIdentifiers(text: string, from: number): number {
  let end = scan(text, from, isIdentifierChar);
  if (end === from) return -1;
  while (text[end] === "." && end + 1 < text.length && isIdentifierChar(text.charCodeAt(end + 1))) {
    end = scan(text, end + 1, isIdentifierChar);
  }
  return end;
}

/** Masterminds' validatePrerelease after the loose match: numeric identifiers may not have leading zeros. */
function validPrerelease(prerelease: string): boolean {
  return prerelease.split(".").every((part) => !(/^[0-9]+$/.test(part) && part.length > 1 && part.startsWith("0")));
}

/**
 * Masterminds' NewVersion with its default CoerceNewVersion: "v1", "1.2", "01.02.03", "1.2-beta.5" are versions;
 * "1.2.3.4", "1.2.beta", "1.2.3-beta.01" are not. Returns undefined for what NewVersion refuses.
 */
export function parseVersion(text: string): SemverVersion | undefined {
  if (text.length > MAX_VERSION_LENGTH || text === "") return undefined;
  let index = text.startsWith("v") ? 1 : 0;
  const segments: string[] = [];
  for (let segment = 0; segment < 3; segment++) {
    if (segment > 0 && text[index] !== ".") break;
    const start = segment > 0 ? index + 1 : index;
    const end = scan(text, start, isDigit);
    if (end === start) return undefined;
    segments.push(text.slice(start, end));
    index = end;
  }
  let prerelease = "";
  let metadata = "";
  if (text[index] === "-") {
    const end = scanIdentifiers(text, index + 1);
    if (end < 0) return undefined;
    prerelease = text.slice(index + 1, end);
    index = end;
  }
  if (text[index] === "+") {
    const end = scanIdentifiers(text, index + 1);
    if (end < 0) return undefined;
    metadata = text.slice(index + 1, end);
    index = end;
  }
  if (index !== text.length || !validPrerelease(prerelease)) return undefined;
  const [major, minor, patch] = [segments[0] ?? "0", segments[1] ?? "0", segments[2] ?? "0"].map((digits) => parseUint64(digits));
  if (major === undefined || minor === undefined || patch === undefined) return undefined;
  return { major, minor, patch, prerelease, metadata, original: text };
}

/**
 * How source-controller reads a tag (fluxcd/pkg/version.ParseVersion): three dot-separated parts, then NewVersion.
 * So "v1.2.3" and "2025.01.02" are versions but "6.1" and "v6" are not tags a semver ref selects, even though the
 * constraint ">=6.1" is read as ">=6.1.0". "1.2-rc.1" passes (its prerelease has the third dot).
 */
export function parseTagVersion(tag: string): SemverVersion | undefined {
  return tag.split(".").length >= 3 ? parseVersion(tag) : undefined;
}

function compareUint(a: bigint, b: bigint): number {
  return a < b ? -1 : a > b ? 1 : 0;
}

/** One prerelease identifier against another, as Masterminds' comparePrePart (numbers are those ParseUint reads). */
function comparePrereleasePart(a: string, b: string): number {
  if (a === b) return 0;
  if (a === "") return -1;
  if (b === "") return 1;
  const numberA = /^[0-9]+$/.test(a) ? parseUint64(a) : undefined;
  const numberB = /^[0-9]+$/.test(b) ? parseUint64(b) : undefined;
  if (numberA === undefined && numberB === undefined) return a > b ? 1 : -1;
  if (numberB === undefined) return -1; // a number sorts before a string
  if (numberA === undefined) return 1;
  return numberA > numberB ? 1 : -1;
}

function comparePrerelease(a: string, b: string): number {
  const partsA = a.split(".");
  const partsB = b.split(".");
  for (let i = 0; i < Math.max(partsA.length, partsB.length); i++) {
    const order = comparePrereleasePart(partsA[i] ?? "", partsB[i] ?? "");
    if (order !== 0) return order;
  }
  return 0;
}

/** Precedence: build metadata is ignored, a prerelease sorts before its release. */
export function compareVersions(a: SemverVersion, b: SemverVersion): number {
  const order = compareUint(a.major, b.major) || compareUint(a.minor, b.minor) || compareUint(a.patch, b.patch);
  if (order !== 0) return order;
  if (a.prerelease === b.prerelease) return 0;
  if (a.prerelease === "") return 1;
  if (b.prerelease === "") return -1;
  return comparePrerelease(a.prerelease, b.prerelease);
}

// Masterminds' grammar, verbatim: `|` inside the character classes is a literal, as it is in Go.
const OPERATORS = String.raw`=||!=|>|<|>=|=>|<=|=<|~|~>|\^`;
const CONSTRAINT_VERSION = String.raw`v?([0-9|x|X|\*]+)(\.[0-9|x|X|\*]+)?(\.[0-9|x|X|\*]+)?`
  + String.raw`(-([0-9A-Za-z\-]+(\.[0-9A-Za-z\-]+)*))?`
  + String.raw`(\+([0-9A-Za-z\-]+(\.[0-9A-Za-z\-]+)*))?`;
const CONSTRAINT = RE2JS.compile(String.raw`^\s*(${OPERATORS})\s*(${CONSTRAINT_VERSION})\s*$`);
const RANGE = RE2JS.compile(String.raw`\s*(${CONSTRAINT_VERSION})\s+-\s+(${CONSTRAINT_VERSION})\s*`);
const FIND = RE2JS.compile(String.raw`(${OPERATORS})\s*(${CONSTRAINT_VERSION})`);
const VALID_AND_GROUP = RE2JS.compile(
  String.raw`^(\s*(${OPERATORS})\s*(${CONSTRAINT_VERSION})\s*)((?:\s+|,\s*)(${OPERATORS})\s*(${CONSTRAINT_VERSION})\s*)*$`,
);

type Operator = "=" | "!=" | ">" | "<" | ">=" | "<=" | "~" | "^";
const OPERATOR_ALIASES: Record<string, Operator> = {
  "": "=", "=": "=", "!=": "!=", ">": ">", "<": "<", ">=": ">=", "=>": ">=", "<=": "<=", "=<": "<=", "~": "~", "~>": "~", "^": "^",
};

interface Constraint {
  readonly operator: Operator;
  readonly version: SemverVersion;
  /** A wildcard or missing part: "1.x" or "1" is minor-dirty, "1.2" patch-dirty; both are dirty. */
  readonly dirty: boolean;
  readonly minorDirty: boolean;
  readonly patchDirty: boolean;
}

const isWildcard = (part: string) => part === "x" || part === "X" || part === "*";

/** Masterminds' parseConstraint: one operator and version, with missing or wildcard parts marking it dirty. */
function parseConstraint(text: string): Constraint {
  const match = CONSTRAINT.exec(text) as Array<string | undefined> | null;
  if (!match) throw new SemverConstraintError(`improper constraint: ${JSON.stringify(text)}`);
  const operator = OPERATOR_ALIASES[match[1] ?? ""] ?? "=";
  const [major = "", minor = "", patch = "", prerelease = ""] = [match[3], match[4], match[5], match[6]];
  let source = match[2] ?? "";
  let minorDirty = false;
  let patchDirty = false;
  let dirty = false;
  if (isWildcard(major) || major === "") {
    source = `0.0.0${prerelease}`;
    dirty = true;
  } else if (isWildcard(minor.slice(1)) || minor === "") {
    source = `${major}.0.0${prerelease}`;
    dirty = minorDirty = true;
  } else if (isWildcard(patch.slice(1)) || patch === "") {
    source = `${major}${minor}.0${prerelease}`;
    dirty = patchDirty = true;
  }
  const version = parseVersion(source);
  if (!version) throw new SemverConstraintError(`constraint parser error: ${JSON.stringify(text.trim())}`);
  return { operator, version, dirty, minorDirty, patchDirty };
}

/** Masterminds' rewriteRange: "1 - 2" becomes ">= 1, <= 2 ", replacing the first occurrence of each match's text. */
export function rewriteRanges(text: string): string {
  let rewritten = text;
  for (const match of RANGE.matchAll(text)) {
    const replacement = `>= ${match[1] ?? ""}, <= ${match[11] ?? ""} `;
    rewritten = rewritten.replace(match[0], () => replacement);
  }
  return rewritten;
}

function checkConstraint(v: SemverVersion, c: Constraint): boolean {
  const { version: con } = c;
  switch (c.operator) {
    case "=":
      return c.dirty ? checkTilde(v, c) : compareVersions(v, con) === 0;
    case "!=":
      return checkNotEqual(v, c);
    case ">":
      return checkGreaterThan(v, c);
    case "<":
      return compareVersions(v, con) < 0;
    case ">=":
      return compareVersions(v, con) >= 0;
    case "<=":
      return checkLessThanEqual(v, c);
    case "~":
      return checkTilde(v, c);
    case "^":
      return checkCaret(v, c);
  }
}

function checkNotEqual(v: SemverVersion, c: Constraint): boolean {
  const { version: con } = c;
  if (c.dirty) {
    if (con.major !== v.major) return true;
    if (con.minor !== v.minor && !c.minorDirty) return true;
    if (c.minorDirty) return false;
    if (con.patch !== v.patch && !c.patchDirty) return true;
    if (c.patchDirty) {
      if (v.prerelease !== "" || con.prerelease !== "") return comparePrerelease(v.prerelease, con.prerelease) !== 0;
      return false;
    }
  }
  return compareVersions(v, con) !== 0;
}

function checkGreaterThan(v: SemverVersion, c: Constraint): boolean {
  const { version: con } = c;
  if (!c.dirty) return compareVersions(v, con) > 0;
  if (v.major !== con.major) return v.major > con.major;
  // ">11" needs 12 or higher; ">11.1" needs 11.2 or higher.
  if (c.minorDirty) return false;
  if (c.patchDirty) return v.minor > con.minor;
  return compareVersions(v, con) > 0;
}

function checkLessThanEqual(v: SemverVersion, c: Constraint): boolean {
  const { version: con } = c;
  if (!c.dirty) return compareVersions(v, con) <= 0;
  // "<=1.1" admits all of 1.1.x, "<=1" all of 1.x.
  if (v.major > con.major) return false;
  return !(v.major === con.major && v.minor > con.minor && !c.minorDirty);
}

function checkTilde(v: SemverVersion, c: Constraint): boolean {
  const { version: con } = c;
  if (compareVersions(v, con) < 0) return false;
  if (con.major === 0n && con.minor === 0n && con.patch === 0n && !c.minorDirty && !c.patchDirty) return true;
  if (v.major !== con.major) return false;
  return v.minor === con.minor || c.minorDirty;
}

function checkCaret(v: SemverVersion, c: Constraint): boolean {
  const { version: con } = c;
  if (compareVersions(v, con) < 0) return false;
  if (con.major > 0n || c.minorDirty) return v.major === con.major;
  if (v.major > 0n) return false;
  if (con.minor > 0n || c.patchDirty) return v.minor === con.minor;
  if (v.minor > 0n) return false;
  return v.patch === con.patch;
}

/** A parsed constraint: OR groups of AND-ed constraints. */
interface AndGroup {
  readonly constraints: readonly Constraint[];
  /** A prerelease anywhere in an AND group opts the whole group into prereleases; that is what "-0" is for. */
  readonly includesPrerelease: boolean;
}

export class SemverConstraints {
  readonly #groups: readonly AndGroup[];

  private constructor(groups: readonly AndGroup[]) {
    this.#groups = groups;
  }

  /** Masterminds' NewConstraint; throws SemverConstraintError with its wording where it refuses. */
  static parse(text: string): SemverConstraints {
    if (text.length > MAX_CONSTRAINT_LENGTH) throw new SemverConstraintError(`constraint string is too long (max ${MAX_CONSTRAINT_LENGTH} bytes)`);
    const ors = rewriteRanges(text).split("||");
    if (ors.length > MAX_CONSTRAINT_GROUPS) throw new SemverConstraintError(`too many constraint groups (max ${MAX_CONSTRAINT_GROUPS})`);
    const groups = ors.map((group) => {
      if (!VALID_AND_GROUP.test(group)) throw new SemverConstraintError(`improper constraint: ${JSON.stringify(group)}`);
      const constraints = [...FIND.matchAll(group)].map((match) => parseConstraint(match[0]));
      return { constraints, includesPrerelease: constraints.some((c) => c.version.prerelease !== "") };
    });
    return new SemverConstraints(groups);
  }

  /** Masterminds' Constraints.Check: some OR group all of whose constraints hold. */
  check(version: SemverVersion): boolean {
    return this.#groups.some(({ constraints, includesPrerelease }) => {
      if (version.prerelease !== "" && !includesPrerelease) return false;
      return constraints.every((constraint) => checkConstraint(version, constraint));
    });
  }
}

/**
 * source-controller's getTagBySemver after the tag filter: of the tags ParseVersion reads that satisfy the
 * constraint, the first after sort.Sort(sort.Reverse(semver.Collection)). Tags of equal precedence (differing in
 * build metadata, a 'v' or leading zeros) are ordered by Go's unstable sort exactly as Flux orders them.
 */
export function highestMatchingTag(tags: Iterable<string>, constraints: SemverConstraints): string | undefined {
  const matching: SemverVersion[] = [];
  for (const tag of tags) {
    const version = parseTagVersion(tag);
    if (version && constraints.check(version)) matching.push(version);
  }
  // sort.Reverse's Less(i, j) is the collection's Less(j, i).
  goSort(matching, (a, b) => compareVersions(b, a) < 0);
  return matching[0]?.original;
}
