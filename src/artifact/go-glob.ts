// Go's path/filepath.Match (on Linux), which the .sourceignore matcher of fluxcd/pkg/sourceignore applies to each
// path segment: `*` and `?` never match `/`, classes are `[abc]`, `[a-z]`, `[^a]`, and `\` escapes. A malformed
// pattern is an error, which that matcher treats as "no match" for the whole path. Written from Go's
// src/path/filepath/match.go; it works on code points where Go works on bytes, which gives the same answers for the
// UTF-8 names a directory listing yields. Cost: one pass per chunk, and a star retries its chunk at each position of
// one segment, so a pattern of length p against a name of length n costs at most O(p·n).

/** Go's filepath.ErrBadPattern. */
export class BadGlobPatternError extends Error {
  constructor() {
    super("syntax error in pattern");
  }
}

type Chars = readonly string[];

/** Splits off the leading stars and the chunk up to the next unbracketed star. */
function scanChunk(pattern: Chars): { star: boolean; chunk: Chars; rest: Chars } {
  let start = 0;
  while (start < pattern.length && pattern[start] === "*") start++;
  const star = start > 0;
  let inRange = false;
  for (let i = start; i < pattern.length; i++) {
    const char = pattern[i];
    if (char === "\\") {
      if (i + 1 < pattern.length) i++;
    } else if (char === "[") inRange = true;
    else if (char === "]") inRange = false;
    else if (char === "*" && !inRange) return { star, chunk: pattern.slice(start, i), rest: pattern.slice(i) };
  }
  return { star, chunk: pattern.slice(start), rest: [] };
}

/** One possibly escaped character of a class, and what follows it; a class must not end there. */
function classChar(chunk: Chars, at: number): { char: string; next: number } {
  let index = at;
  if (index >= chunk.length || chunk[index] === "-" || chunk[index] === "]") throw new BadGlobPatternError();
  if (chunk[index] === "\\") {
    index++;
    if (index >= chunk.length) throw new BadGlobPatternError();
  }
  const char = chunk[index] as string;
  if (index + 1 >= chunk.length) throw new BadGlobPatternError();
  return { char, next: index + 1 };
}

/** Matches a `[...]` class at chunk[at] against `char` (undefined once the match has already failed). */
function matchClass(chunk: Chars, at: number, char: string | undefined): { matched: boolean; next: number } {
  let index = at + 1;
  let negated = false;
  if (chunk[index] === "^") {
    negated = true;
    index++;
  }
  let matched = false;
  const point = char === undefined ? -1 : (char.codePointAt(0) as number);
  for (let ranges = 0; ; ranges++) {
    if (chunk[index] === "]" && ranges > 0) return { matched: matched !== negated, next: index + 1 };
    const low = classChar(chunk, index);
    let high = low;
    if (chunk[low.next] === "-") high = classChar(chunk, low.next + 1);
    index = high.next;
    matched ||= (low.char.codePointAt(0) as number) <= point && point <= (high.char.codePointAt(0) as number);
  }
}

/** Go's matchChunk: the rest of `name` after `chunk` matched its start, or undefined. Throws on a bad pattern. */
function matchChunk(chunk: Chars, name: Chars): Chars | undefined {
  let failed = false;
  let rest = name;
  let index = 0;
  while (index < chunk.length) {
    failed ||= rest.length === 0;
    const char = chunk[index];
    if (char === "[") {
      const current = failed ? undefined : rest[0];
      if (!failed) rest = rest.slice(1);
      const result = matchClass(chunk, index, current);
      failed ||= !result.matched;
      index = result.next;
    } else if (char === "?") {
      if (!failed) {
        failed = rest[0] === "/";
        rest = rest.slice(1);
      }
      index++;
    } else {
      if (char === "\\") {
        index++;
        if (index >= chunk.length) throw new BadGlobPatternError();
      }
      if (!failed) {
        failed = chunk[index] !== rest[0];
        rest = rest.slice(1);
      }
      index++;
    }
  }
  return failed ? undefined : rest;
}

/** Go's filepath.Match(pattern, name); throws BadGlobPatternError where Go returns ErrBadPattern. */
export function goGlobMatch(patternText: string, nameText: string): boolean {
  let pattern: Chars = Array.from(patternText);
  let name: Chars = Array.from(nameText);
  outer: while (pattern.length > 0) {
    const { star, chunk, rest } = scanChunk(pattern);
    pattern = rest;
    if (star && chunk.length === 0) return !name.includes("/");
    const matched = matchChunk(chunk, name);
    if (matched !== undefined && (matched.length === 0 || pattern.length > 0)) {
      name = matched;
      continue;
    }
    if (star) {
      for (let i = 0; i < name.length && name[i] !== "/"; i++) {
        const after = matchChunk(chunk, name.slice(i + 1));
        if (after === undefined) continue;
        if (pattern.length === 0 && after.length > 0) continue;
        name = after;
        continue outer;
      }
    }
    return false;
  }
  return name.length === 0;
}
