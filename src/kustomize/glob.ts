// Shell glob matching for post-build substitution's ${var#p}, ${var##p}, ${var%p} and ${var%%p}, in linear time.
// A glob compiled to a JavaScript RegExp backtracks: `*a*a*a*a*b` against a 200-character value ran for over a minute.
// Here the glob is an automaton whose states are positions in the pattern, run over the value once with every live
// state at a time (Thompson's construction), so removing a prefix or suffix costs at most value × pattern steps.
//
// The pattern language is unchanged: `*` (any text, `/` included, as in bash parameter expansion), `?` (one
// character), `[...]` with ranges and `!`/`^` negation, and `\` escapes; characters are Unicode code points. Inside
// brackets a `-` between two members makes a range, as the former RegExp translation read it; one at either end is
// literal, and a `[` with no closing `]` is a literal `[`.
import { type Disposition, FerryError } from "../errors.ts";

/** The glob cannot be used, such as a range written backwards ([z-a]). */
export class GlobError extends FerryError {
  readonly code = "GLOB_INVALID";
  readonly disposition: Disposition = "stall";
}

/** Pays for matching work, one unit per live automaton state per character; it throws to stop a match that costs too much. */
export type StepMeter = (steps: number) => void;

type Token
  = | { readonly kind: "star" }
    | { readonly kind: "any" }
    | { readonly kind: "literal"; readonly char: string }
    | { readonly kind: "class"; readonly negated: boolean; readonly ranges: ReadonlyArray<readonly [number, number]> };

export interface Glob {
  readonly tokens: readonly Token[];
}

const STAR: Token = { kind: "star" };
const ANY: Token = { kind: "any" };

export function compileGlob(pattern: string): Glob {
  const chars = Array.from(pattern);
  const tokens: Token[] = [];
  for (let i = 0; i < chars.length; i++) {
    const char = chars[i] ?? "";
    if (char === "*") {
      if (tokens.at(-1) !== STAR) tokens.push(STAR); // `**` is `*`; fewer states, same language
    } else if (char === "?") tokens.push(ANY);
    else if (char === "\\" && i + 1 < chars.length) tokens.push({ kind: "literal", char: chars[++i] ?? "" });
    else if (char === "[") {
      const bracket = parseBracket(chars, i);
      if (bracket) {
        tokens.push(bracket.token);
        i = bracket.end;
      } else tokens.push({ kind: "literal", char });
    } else tokens.push({ kind: "literal", char });
  }
  return { tokens };
}

interface ClassAtom {
  readonly codePoint: number;
  /** An unescaped `-` between two members, which joins its neighbours into a range. */
  readonly joins: boolean;
}

/** The bracket expression opening at `open`, and the index of its `]`; undefined when it never closes. */
function parseBracket(chars: readonly string[], open: number): { token: Token; end: number } | undefined {
  const at = (index: number) => chars[index] ?? "";
  let end = open + 1;
  const negated = at(end) === "!" || at(end) === "^";
  if (negated) end++;
  const first = end;
  if (at(end) === "]") end++; // a `]` right after `[` or `[!` is a member, not the end
  while (end < chars.length && at(end) !== "]") end += at(end) === "\\" ? 2 : 1;
  if (end >= chars.length) return undefined;
  const atoms: ClassAtom[] = [];
  for (let k = first; k < end; k++) {
    const escaped = at(k) === "\\" && k + 1 < end;
    const char = escaped ? at(++k) : at(k);
    atoms.push({ codePoint: char.codePointAt(0) ?? 0, joins: !escaped && char === "-" && k > first && k < end - 1 });
  }
  return { token: { kind: "class", negated, ranges: classRanges(atoms) }, end };
}

/** Members left to right: `A - B` is a range, anything else a single character (also a `-` that starts no range). */
function classRanges(atoms: readonly ClassAtom[]): Array<readonly [number, number]> {
  const ranges: Array<readonly [number, number]> = [];
  for (let i = 0; i < atoms.length; i++) {
    const low = atoms[i]?.codePoint ?? 0;
    const high = atoms[i + 2]?.codePoint;
    if (atoms[i + 1]?.joins && high !== undefined) {
      if (low > high) throw new GlobError(`range ${String.fromCodePoint(low)}-${String.fromCodePoint(high)} is out of order`);
      ranges.push([low, high]);
      i += 2;
    } else ranges.push([low, low]);
  }
  return ranges;
}

function matchesOne(token: Token, char: string): boolean {
  switch (token.kind) {
    case "any":
      return true;
    case "literal":
      return token.char === char;
    case "class": {
      const codePoint = char.codePointAt(0) ?? 0;
      return token.ranges.some(([low, high]) => codePoint >= low && codePoint <= high) !== token.negated;
    }
    default:
      return false;
  }
}

/** Live automaton states; each state joins at most once per position, so the pattern's length bounds the size. */
class StateSet {
  readonly states: Int32Array;
  size = 0;

  constructor(capacity: number) {
    this.states = new Int32Array(capacity);
  }
}

/**
 * The length of the shortest (or longest) prefix of `chars` that the whole glob matches, or -1. One pass: the set of
 * live states after each character tells whether the prefix read so far matches, so every length is tried at once.
 */
function matchingPrefixLength(tokens: readonly Token[], chars: readonly string[], longest: boolean, meter: StepMeter): number {
  const accepting = tokens.length;
  // addedAt[state] is the position at which the state last joined a set, so membership needs no clearing between steps.
  const addedAt = new Int32Array(accepting + 1).fill(-1);
  const enter = (set: StateSet, state: number, position: number) => {
    // Entering a `*` also enters what follows it, since it may match nothing.
    for (let next = state; addedAt[next] !== position; next++) {
      addedAt[next] = position;
      set.states[set.size++] = next;
      if (tokens[next] !== STAR) break;
    }
  };
  let live = new StateSet(accepting + 1);
  let following = new StateSet(accepting + 1);
  enter(live, 0, 0);
  let found = -1;
  for (let position = 0; live.size > 0; position++) {
    if (addedAt[accepting] === position) {
      found = position;
      if (!longest) break;
    }
    if (position === chars.length) break;
    meter(live.size);
    const char = chars[position] ?? "";
    following.size = 0;
    for (let i = 0; i < live.size; i++) {
      const state = live.states[i] ?? accepting;
      const token = tokens[state];
      if (token === STAR) enter(following, state, position + 1);
      else if (token && matchesOne(token, char)) enter(following, state + 1, position + 1);
    }
    [live, following] = [following, live];
  }
  return found;
}

export interface Removal {
  /** Remove from the start (`#`, `##`) or from the end (`%`, `%%`). */
  readonly from: "start" | "end";
  /** The longest match (`##`, `%%`) instead of the shortest. */
  readonly longest: boolean;
}

/** `value` without the shortest or longest prefix or suffix that the glob matches; unchanged when none does. */
export function removeGlobMatch(value: string, glob: Glob, removal: Removal, meter: StepMeter = () => {}): string {
  const chars = Array.from(value);
  if (removal.from === "start") {
    const length = matchingPrefixLength(glob.tokens, chars, removal.longest, meter);
    return length < 0 ? value : chars.slice(length).join("");
  }
  // A suffix of the value matches the glob exactly when, both read backwards, a prefix matches the reversed glob.
  const length = matchingPrefixLength(glob.tokens.toReversed(), chars.toReversed(), removal.longest, meter);
  return length < 0 ? value : chars.slice(0, chars.length - length).join("");
}
