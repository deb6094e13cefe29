// ${var#p}, ${var##p}, ${var%p} and ${var%%p} must remove exactly what bash removes, in time linear in the value:
// a backtracking matcher let `${v##*a*a*a*a*b}` over a 200-character value hold the event loop for over a minute.
// Random cases run against bash itself (the semantics upstream) and against the former RegExp translation (the
// semantics Ferry shipped), from a fixed seed so a failure reproduces.
import assert from "node:assert/strict";
import { execFileSync } from "node:child_process";
import { describe, test } from "node:test";
import { substitute, SubstitutionError } from "../../src/kustomize/substitute.ts";

// Linear matching finishes these in milliseconds; the timeout turns a regression into a failure instead of a hang.
const ATTACK = { timeout: 30_000 };
const OPERATORS = ["#", "##", "%", "%%"] as const;

/** mulberry32: small, fast and seeded, so every run draws the same cases. */
function seededRandom(seed: number): () => number {
  let state = seed >>> 0;
  return () => {
    state = (state + 0x6d2b79f5) >>> 0;
    let t = state;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

function pick<T>(random: () => number, items: readonly T[]): T {
  return items[Math.floor(random() * items.length)] as T;
}

function draw(random: () => number, pieces: readonly string[], maxLength: number): string {
  return Array.from({ length: Math.floor(random() * (maxLength + 1)) }, () => pick(random, pieces)).join("");
}

function hasBash(): boolean {
  try {
    execFileSync("bash", ["-c", "true"]);
    return true;
  } catch {
    return false;
  }
}
const noBash = hasBash() ? false : "bash is not installed";

interface Case {
  readonly value: string;
  readonly pattern: string;
  readonly operator: (typeof OPERATORS)[number];
}

/** What bash prints for each case, in order; the value is single-quoted, the pattern left for bash to read as a glob. */
function bashResults(cases: readonly Case[]): string[] {
  const script = cases.map(({ value, pattern, operator }) => `v='${value}'; printf '%s\\n' "\${v${operator}${pattern}}"`).join("\n");
  // On standard input: the 20,000-character values would overflow an argument.
  const output = execFileSync("bash", ["-s"], { input: script, env: { ...process.env, LC_ALL: "C.UTF-8" }, maxBuffer: 64 * 1024 * 1024 });
  return output.toString("utf8").split("\n").slice(0, cases.length);
}

function ferryResult({ value, pattern, operator }: Case): string {
  return substitute(`\${v${operator}\${p}}`, { v: value, p: pattern });
}

describe("glob removal agrees with bash", () => {
  test("random globs and values", { skip: noBash }, () => {
    const random = seededRandom(12);
    // Pieces that bash and Ferry read alike: no `-` outside a range (it could form a backwards one), no `[.` or `[=`
    // (collating elements in bash), no `$`, quotes or braces (the shell would expand them).
    const globPieces = ["a", "b", "c", "é", "/", "*", "*", "?", "\\*", "\\?", "\\[", "[ab]", "[!a]", "[^b]", "[a-c]", "[]a]", "[!]b]", "[", "]"];
    const valuePieces = ["a", "b", "c", "é", "/", "*", "?", "[", "]"];
    const cases: Case[] = [];
    for (let i = 0; i < 400; i++) {
      const pattern = draw(random, globPieces, 6);
      const value = draw(random, valuePieces, 14);
      for (const operator of OPERATORS) cases.push({ value, pattern, operator });
    }
    const expected = bashResults(cases);
    cases.forEach((one, index) => assert.equal(ferryResult(one), expected[index], `\${v${one.operator}${one.pattern}} with v=${JSON.stringify(one.value)}`));
  });

  test("${v##*a*a*a*a*b} over 200 and 20,000 characters", { ...ATTACK, skip: noBash }, (t) => {
    const random = seededRandom(200);
    const cases: Case[] = [];
    const mixed = (length: number) => Array.from({ length }, () => pick(random, ["a", "a", "a", "b"])).join("");
    const valuesOf = (length: number) => ["a".repeat(length), mixed(length), `${"a".repeat(length - 3)}bxx`];
    // bash itself takes most of a second per case at 20,000 characters, so fewer cases there.
    const values = [...valuesOf(200), `b${"a".repeat(199)}`, ...valuesOf(20_000).slice(0, 2)];
    for (const value of values) for (const operator of OPERATORS) cases.push({ value, pattern: "*a*a*a*a*b", operator });
    const expected = bashResults(cases);
    cases.forEach((one, index) => {
      const start = performance.now();
      assert.equal(ferryResult(one), expected[index], `${one.operator} over ${one.value.length} characters`);
      t.diagnostic(`${one.operator} over ${one.value.length} characters: ${(performance.now() - start).toFixed(1)} ms`);
    });
  });
});

// The glob translation Ferry used before, kept here as the reference for its exact semantics on every corner that
// bash is not asked about (dashes, carets and backslashes inside brackets, unclosed brackets, backwards ranges).
function formerGlobToRegExp(pattern: string): RegExp {
  const escapeRegExp = (text: string) => text.replace(/[.*+?^${}()|[\]\\/]/g, "\\$&");
  const escapeClassMember = (char: string) => (/[\\\][^-]/.test(char) ? `\\${char}` : char);
  const chars = Array.from(pattern);
  const at = (index: number) => chars[index] ?? "";
  let source = "";
  for (let i = 0; i < chars.length; i++) {
    const char = at(i);
    if (char === "*") source += "[\\s\\S]*";
    else if (char === "?") source += "[\\s\\S]";
    else if (char === "\\" && i + 1 < chars.length) source += escapeRegExp(at(++i));
    else if (char === "[") {
      let j = i + 1;
      const negated = at(j) === "!" || at(j) === "^";
      if (negated) j++;
      const first = j;
      if (at(j) === "]") j++;
      while (j < chars.length && at(j) !== "]") j += at(j) === "\\" ? 2 : 1;
      if (j >= chars.length) {
        source += "\\[";
        continue;
      }
      let members = "";
      for (let k = first; k < j; k++) {
        const member = at(k);
        if (member === "\\" && k + 1 < j) members += escapeClassMember(at(++k));
        else if (member === "-" && k > first && k < j - 1) members += "-";
        else members += escapeClassMember(member);
      }
      source += `[${negated ? "^" : ""}${members}]`;
      i = j;
    } else source += escapeRegExp(char);
  }
  return new RegExp(`^${source}$`, "u");
}

function formerRemoval(value: string, pattern: string, operator: string): string {
  const regExp = formerGlobToRegExp(pattern);
  const fromStart = operator.startsWith("#");
  const chars = Array.from(value);
  for (let step = 0; step <= chars.length; step++) {
    const length = operator.length === 2 ? chars.length - step : step;
    const candidate = fromStart ? chars.slice(0, length) : chars.slice(chars.length - length);
    if (regExp.test(candidate.join(""))) return (fromStart ? chars.slice(length) : chars.slice(0, chars.length - length)).join("");
  }
  return value;
}

test("glob removal keeps the former semantics on every bracket corner", () => {
  const random = seededRandom(7);
  const pieces = ["a", "b", "-", "^", "!", "\\", "[", "]", "*", "?", "😀"];
  for (let i = 0; i < 5000; i++) {
    const one = { pattern: draw(random, pieces, 8), value: draw(random, pieces, 8), operator: pick(random, OPERATORS) };
    const described = `\${v${one.operator}${one.pattern}} with v=${JSON.stringify(one.value)}`;
    let expected: string | undefined;
    try {
      expected = formerRemoval(one.value, one.pattern, one.operator);
    } catch {
      // The former RegExp refused it (a backwards range); the matcher must refuse it too, as a bad substitution.
    }
    if (expected === undefined) {
      assert.throws(() => ferryResult(one), (error: unknown) => error instanceof SubstitutionError && /invalid pattern/.test(error.message), described);
    } else assert.equal(ferryResult(one), expected, described);
  }
});

describe("substitution limits", () => {
  test("a glob too costly for its input is refused, not run for minutes", ATTACK, () => {
    assert.throws(() => substitute("${v##*a*a*a*a*b}", { v: "a".repeat(2_000_000) }),
      (error: unknown) => error instanceof SubstitutionError && /substitution needs more than its \d+ steps for this input at "\$\{v##\*a\*a\*a\*a\*b\}"/.test(error.message));
  });

  test("reading a long value over and over is refused", ATTACK, () => {
    assert.throws(() => substitute("${#v} ".repeat(100), { v: "x".repeat(1_000_000) }), /needs more than its \d+ steps/);
  });

  test("output beyond the limit is refused before it is built", ATTACK, () => {
    assert.throws(() => substitute("${v//a/${v}}", { v: "a".repeat(10_000) }),
      (error: unknown) => error instanceof SubstitutionError && /substitution output would exceed \d+ characters at "\$\{v\/\/a\/\$\{v\}\}"/.test(error.message));
  });

  test("a backwards range is a bad substitution", () => {
    assert.throws(() => substitute("${v#[z-a]}", { v: "x" }), /bad substitution "\$\{v#\[z-a\]\}": invalid pattern \(a character range out of order\)/);
  });
});
