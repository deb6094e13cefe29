// Fuzzing post-build substitution: any template and any variables either expand or fail with a SubstitutionError
// (in YAML, also a YamlInputError), within a bounded time; and templates built from the operators Ferry shares with
// bash expand to exactly what bash prints for them, bash being the semantics Flux's envsubst copies.
import assert from "node:assert/strict";
import { execFileSync } from "node:child_process";
import { describe, test } from "node:test";
import fc from "fast-check";
import { substitute, substituteManifests, SubstitutionError } from "../../src/kustomize/substitute.ts";
import { YamlInputError } from "../../src/kustomize/yaml-load.ts";
import { corpus, fuzz } from "./fuzz.ts";

const NAMES = ["fz_a", "fz_b", "fz_c"] as const;
type Variables = Partial<Record<(typeof NAMES)[number], string>>;

interface Case {
  readonly template: string;
  readonly variables: Variables;
}

/** Saved cases: JSON files of {template, variables}; those named bash-* are also compared with bash. */
const SAVED = corpus("substitute").map((seed) => ({ name: seed.name, ...(JSON.parse(seed.bytes.toString("utf8")) as Case) }));
const SEEDS: Case[] = SAVED;
const BASH_SEEDS: Case[] = SAVED.filter((seed) => seed.name.startsWith("bash-"));

function variablesFrom(value: fc.Arbitrary<string>): fc.Arbitrary<Variables> {
  // Each variable unset, empty or set: unset and empty differ for strict mode and for the default operators.
  return fc.record(Object.fromEntries(NAMES.map((name) => [name, fc.option(fc.oneof(fc.constant(""), value), { nil: undefined })])), { requiredKeys: [] })
    .map((record) => Object.fromEntries(Object.entries(record).filter(([, value]) => value !== undefined)) as Variables);
}

// ---- templates bash reads the same way -----------------------------------------------------------------------------
// Inside bash's double quotes only `$`, backquote, `"` and `\` are special, so literal text avoids them; `$$` is
// bash's process id and unbraced `$x` is expanded by bash but not by Ferry, so `$` appears only as `${`. Replacement
// patterns are literal in Ferry and globs in bash, and `&` in a replacement is the match in bash 5.2: both are left
// out there. The default forms without a colon treat an empty value as unset in Ferry (documented) and `=` assigns
// in bash, so only `:-` is compared.

const name = fc.constantFrom(...NAMES);
const plainText = fc.stringMatching(/^[a-zA-Z0-9 ._:,@=+%#{}/-]{0,6}$/).filter((text) => !text.includes("${"));
const literalPattern = fc.stringMatching(/^[abxé.-]{0,3}$/);
const GLOB_PIECES = ["a", "b", "x", "é", ".", "/", "*", "*", "?", "\\*", "\\?", "[ab]", "[!a]", "[^b]", "[a-c]", "[]a]"];
const glob = fc.array(fc.constantFrom(...GLOB_PIECES), { maxLength: 5 }).map((pieces) => pieces.join(""));
const offset = fc.oneof(fc.integer({ min: 0, max: 8 }).map(String), fc.integer({ min: 1, max: 8 }).map((n) => ` -${n}`));
const length = fc.integer({ min: -8, max: 8 }).map(String);

const expansion: fc.Memo<string> = fc.memo((depth) => {
  const nested = depth > 1
    ? fc.oneof({ arbitrary: plainTextFor(), weight: 3 }, { arbitrary: expansion(depth - 1), weight: 1 })
    : plainTextFor();
  const nestedValue = depth > 1 ? fc.oneof(literalPattern, name.map((inner) => `\${${inner}}`)) : literalPattern;
  return fc.oneof(
    name.map((variable) => `\${${variable}}`),
    name.map((variable) => `\${#${variable}}`),
    fc.tuple(name, fc.constantFrom("^", "^^", ",", ",,")).map(([variable, operator]) => `\${${variable}${operator}}`),
    fc.tuple(name, offset, fc.option(length, { nil: undefined }))
      .map(([variable, from, count]) => `\${${variable}:${from}${count === undefined ? "" : `:${count}`}}`),
    fc.tuple(name, fc.constantFrom("#", "##", "%", "%%"), fc.oneof(glob, name.map((inner) => `\${${inner}}`)))
      .map(([variable, operator, pattern]) => `\${${variable}${operator}${pattern}}`),
    fc.tuple(name, nested).map(([variable, fallback]) => `\${${variable}:-${fallback}}`),
    fc.tuple(name, fc.constantFrom("/", "//", "/#", "/%"), literalPattern, fc.option(nestedValue, { nil: undefined }))
      // An empty pattern before a replacement reads as another operator: `${v//r}` is `//` with the pattern r (a glob in
      // bash, literal in Ferry), and in `${v///r}` bash reads the pattern "/" where Flux and Ferry read an empty one.
      .filter(([, operator, pattern, replacement]) => !((operator === "/" || operator === "//") && pattern === "" && replacement !== undefined))
      .map(([variable, operator, pattern, replacement]) => `\${${variable}${operator}${pattern}${replacement === undefined ? "" : `/${replacement}`}}`),
  );
});

function plainTextFor(): fc.Arbitrary<string> {
  // A `}` would end the enclosing argument in both; inside an argument, literal text leaves braces out.
  return fc.stringMatching(/^[a-zA-Z0-9 ._:,@=+%#/-]{0,4}$/);
}

const bashTemplate = fc.array(fc.oneof(plainText, expansion(2)), { minLength: 1, maxLength: 4 }).map((parts) => parts.join(""))
  .filter((template) => !/\$(?!\{)/.test(template));
const bashValue = fc.stringMatching(/^[a-zA-Z0-9 ._:/*?[\]é-]{0,10}$/);
const bashCase: fc.Arbitrary<Case> = fc.record({ template: bashTemplate, variables: variablesFrom(bashValue) });

function singleQuoted(text: string): string {
  return `'${text.replaceAll("'", "'\\''")}'`;
}

/** What bash prints for each case (undefined where bash fails), one bash process for the lot, a subshell per case. */
function bashExpansions(cases: readonly Case[]): Array<string | undefined> {
  const script = cases.map(({ template, variables }) => {
    const assignments = Object.entries(variables).map(([variable, value]) => `${variable}=${singleQuoted(value)}; `).join("");
    return `( ${assignments}eval ${singleQuoted(`printf %s "${template}"`)} ) 2>/dev/null; printf '\\0%d\\0' $?`;
  }).join("\n");
  const output = execFileSync("bash", ["-s"], { input: script, env: { PATH: process.env.PATH, LC_ALL: "C.UTF-8" }, maxBuffer: 64 * 1024 * 1024 });
  const fields = output.toString("utf8").split("\0");
  return cases.map((_, index) => (fields[index * 2 + 1] === "0" ? fields[index * 2] : undefined));
}

/**
 * Where Ferry follows Flux's envsubst rather than bash, as documented in substitute.ts: a negative offset past the
 * start clamps to the start (bash expands to nothing), and an unset variable is an empty one (bash leaves
 * `${unset/#/x}` empty).
 */
function deviatesByDesign({ template, variables }: Case): boolean {
  const value = (variable: string) => (variables as Record<string, string | undefined>)[variable];
  for (const [, variable = "", offset] of template.matchAll(/\$\{(fz_[a-z]): -(\d+)/g)) {
    if ((value(variable) ?? "").length < Number(offset)) return true;
  }
  return [...template.matchAll(/\$\{(fz_[a-z])\/[#%]\//g)].some(([, variable = ""]) => value(variable) === undefined);
}

/**
 * A value used as a glob whose brackets bash reads differently: backwards ranges (refused by Ferry, documented in
 * glob.ts) and unclosed brackets ending in a dangling range such as `a[x-` (nothing matches in bash, the `[` is literal
 * in Ferry; reported). The glob corners themselves are compared with bash in test/unit/substitute-globs.test.ts.
 */
function bracketValueAsPattern({ template, variables }: Case): boolean {
  return [...template.matchAll(/\$\{fz_[a-z](?:##?|%%?)\$\{(fz_[a-z])\}/g)]
    .some(([, variable = ""]) => /[[\]]/.test((variables as Record<string, string | undefined>)[variable] ?? ""));
}

function ferryExpansion({ template, variables }: Case): string | SubstitutionError {
  try {
    return substitute(template, variables as Record<string, string>, { strict: false });
  } catch (error) {
    if (error instanceof SubstitutionError) return error;
    throw error;
  }
}

function describeCase({ template, variables }: Case): string {
  return `${JSON.stringify(template)} with ${JSON.stringify(variables)}`;
}

// ---- any template at all -------------------------------------------------------------------------------------------

const ANY_PIECES = [
  "${", "}", "$", "$$", "{", ":", "-", "=", "+", "?", "#", "%", "/", "\\", "^", ",", "[", "]", "!", "*", "\n", " ", "'", "\"",
  "fz_a", "fz_b", "1x", "é", "😀", "${fz_a", "${fz_b:", "${#", "${fz_c/", "${fz_a:-${fz_b", "}}", "0", "-1", " -3", "999999999999",
];
const anyTemplate = fc.oneof(
  fc.array(fc.constantFrom(...ANY_PIECES), { maxLength: 24 }).map((pieces) => pieces.join("")),
  fc.string({ maxLength: 40 }),
  bashTemplate,
);
const anyValue = fc.oneof(fc.string({ maxLength: 12 }), fc.constantFrom("*", "[", "\\", "\n", "${fz_a}", "$$", "é😀"));
const anyVariables = fc.oneof(
  { arbitrary: variablesFrom(anyValue), weight: 6 },
  { arbitrary: fc.dictionary(fc.string({ maxLength: 6 }), anyValue, { maxKeys: 3 }), weight: 1 },
);

/** Long values and star-heavy patterns: what a tenant would write to hold the controller's event loop. */
const heavyCase = fc.record({
  value: fc.tuple(fc.constantFrom("a", "ab", "é", "*"), fc.integer({ min: 1000, max: 20_000 })).map(([unit, count]) => unit.repeat(count)),
  template: fc.tuple(fc.constantFrom("#", "##", "%", "%%", "//", "/"), fc.array(fc.constantFrom("*", "a", "?", "[ab]", "b"), { minLength: 1, maxLength: 12 }), fc.nat(40))
    .map(([operator, pattern, repeats]) => `\${fz_a${operator}${pattern.join("")}${operator.startsWith("/") ? `/${"${fz_a}".repeat(repeats)}` : ""}}`),
}).map(({ value, template }) => ({ template: template.repeat(3), variables: { fz_a: value } }));

function manifestWith(template: string): string {
  return `apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: fuzz\ndata:\n  value: "${template.replaceAll("\\", "\\\\").replaceAll("\"", "\\\"").replaceAll("\n", "\\n")}"\n  plain: ${template.replaceAll("\n", " ")}\n`;
}

describe("fuzzed substitution", () => {
  test("any template and variables: a string or a SubstitutionError; in YAML also a YamlInputError", async (context) => {
    type Example = [string, Record<string, string>, boolean];
    const examples = SEEDS.map(({ template, variables }): Example => [template, variables as Record<string, string>, true]);
    await fuzz(context, fc.tuple(anyTemplate, anyVariables, fc.boolean()), { runs: 60_000, examples, caseTimeoutMs: 2000 },
      ([template, variables, strict]) => {
        try {
          assert.equal(typeof substitute(template, variables, { strict }), "string");
        } catch (error) {
          if (!(error instanceof SubstitutionError)) throw new Error(`substitute threw ${String(error)}`, { cause: error });
        }
        try {
          substituteManifests(manifestWith(template), variables, { strict });
        } catch (error) {
          if (!(error instanceof SubstitutionError) && !(error instanceof YamlInputError)) {
            throw new Error(`substituteManifests threw ${String(error)}`, { cause: error });
          }
        }
      });
  });

  test("long values and star-heavy patterns finish within the budget or are refused", async (context) => {
    await fuzz(context, heavyCase, { runs: 300, caseTimeoutMs: 2000 }, ({ template, variables }) => {
      try {
        substitute(template, variables, { strict: false });
      } catch (error) {
        if (!(error instanceof SubstitutionError)) throw error;
      }
    });
  });

  test("templates of the operators bash shares expand as bash expands them", async (context) => {
    const runs = Number(process.env.FERRY_FUZZ_SECONDS ?? 0) > 0 ? 20_000 : 5000;
    const sample = [...BASH_SEEDS, ...fc.sample(bashCase, { numRuns: runs, ...seedParameter() })];
    const started = performance.now();
    const expected = bashExpansions(sample);
    let compared = 0;
    let byDesign = 0;
    let bracketPatterns = 0;
    const mismatches: string[] = [];
    sample.forEach((one, index) => {
      const ours = ferryExpansion(one);
      const theirs = expected[index];
      if (theirs === undefined) return; // bash refused it (a negative length past the offset, say): nothing to compare
      if (deviatesByDesign(one)) {
        byDesign++;
        return;
      }
      if (bracketValueAsPattern(one)) {
        bracketPatterns++;
        return;
      }
      compared++;
      if (ours !== theirs) mismatches.push(`${describeCase(one)}: bash ${JSON.stringify(theirs)}, Ferry ${ours instanceof Error ? ours.message : JSON.stringify(ours)}`);
    });
    context.diagnostic(`${sample.length} templates, ${compared} compared with bash (not ${byDesign} where Ferry follows Flux instead, nor ${bracketPatterns} values with brackets used as globs) in ${Math.round(performance.now() - started)} ms`);
    assert.deepEqual(mismatches.slice(0, 10), []);
    assert.ok(compared > sample.length / 2, `bash failed on ${sample.length - compared} of ${sample.length} templates`);
  });
});

function seedParameter(): { seed?: number } {
  return process.env.FERRY_FUZZ_SEED ? { seed: Number(process.env.FERRY_FUZZ_SEED) } : {};
}
