// Fuzzing bounded YAML loading with generated YAML (anchors, aliases, merge keys, tags, flow and block styles, several
// documents) and with real manifests mutated token by token. Whatever the text, loading ends with documents or a
// YamlInputError, and what it accepts is cheap to consume: stringifying and dumping it, as Ferry's consumers do, stays
// proportional to the input (the budget is 10 nodes and 10 characters per input byte).
import assert from "node:assert/strict";
import { describe, test } from "node:test";
import fc from "fast-check";
import yaml from "js-yaml";
import { loadYamlDocument, loadYamlDocuments, YamlInputError } from "../../src/kustomize/yaml-load.ts";
import { corpusText, fuzz } from "./fuzz.ts";

const SEEDS = corpusText("yaml-load");

// ---- generated YAML ------------------------------------------------------------------------------------------------

const anchorName = fc.constantFrom("a", "b", "c");
const scalar = fc.oneof(
  fc.constantFrom("x", "lol", "100m", "true", "null", "~", "0x1F", "1e3", ".nan", "2001-12-14", "'quoted'", "\"dq\\t\"", "\"\\u0000\"", "''", "-", "? x", "<<"),
  fc.stringMatching(/^[a-z0-9 ._-]{1,8}$/),
  fc.constantFrom("|\n  block\n  text\n", ">-\n  folded\n", "|+\n\n"),
);
const TAGS = ["!!str", "!!int", "!!float", "!!bool", "!!null", "!!binary", "!!set", "!!omap", "!!pairs", "!!map", "!!seq", "!!timestamp", "!custom", "!<tag:yaml.org,2002:str>"];
const decoration = fc.record({
  anchor: fc.option(anchorName.map((name) => `&${name} `), { nil: "", freq: 3 }),
  tag: fc.option(fc.constantFrom(...TAGS).map((tag) => `${tag} `), { nil: "", freq: 5 }),
});

/** A node in flow style (one line), so nesting needs no indentation bookkeeping. */
const flowNode: fc.Memo<string> = fc.memo((depth) => {
  const leaf = fc.oneof({ arbitrary: scalar.filter((text) => !text.includes("\n")), weight: 3 }, { arbitrary: anchorName.map((name) => `*${name}`), weight: 2 });
  if (depth <= 1) return leaf;
  const child = flowNode(depth - 1);
  return fc.oneof(
    leaf,
    fc.tuple(decoration, fc.array(child, { maxLength: 4 })).map(([{ anchor, tag }, items]) => `${anchor}${tag}[${items.join(", ")}]`),
    fc.tuple(decoration, fc.array(fc.tuple(fc.oneof(scalar.filter((text) => !text.includes("\n")), fc.constant("<<")), child), { maxLength: 4 }))
      .map(([{ anchor, tag }, pairs]) => `${anchor}${tag}{${pairs.map(([key, value]) => `${key}: ${value}`).join(", ")}}`),
  );
});

/** A block mapping of flow values, block sequences and merge keys: the shape of real manifests. */
const blockDocument = fc.array(
  fc.tuple(fc.oneof(fc.stringMatching(/^[a-z]{1,6}$/), fc.constant("<<"), fc.constant("? [complex]")), decoration, fc.oneof(
    flowNode(4),
    fc.array(flowNode(3), { minLength: 1, maxLength: 3 }).map((items) => `\n${items.map((item) => `  - ${item}`).join("\n")}`),
    scalar,
  )),
  { minLength: 1, maxLength: 8 },
).map((entries) => entries.map(([key, { anchor, tag }, value]) => `${key}: ${anchor}${tag}${value}`).join("\n"));

/** Levels of lists, each naming the last level several times: billion laughs of random size and shape. */
const laughs = fc.tuple(fc.integer({ min: 1, max: 12 }), fc.integer({ min: 1, max: 12 }), fc.constantFrom("flow", "block", "merge"))
  .map(([levels, width, style]) => {
    const lines = ["l0: &l0 [\"lol\", \"lol\"]"];
    for (let level = 1; level < levels; level++) {
      const copies = Array.from({ length: width }, () => `*l${level - 1}`);
      if (style === "flow") lines.push(`l${level}: &l${level} [${copies.join(", ")}]`);
      else if (style === "block") lines.push(`l${level}: &l${level}\n${copies.map((copy) => `  - ${copy}`).join("\n")}`);
      else lines.push(`l${level}: &l${level} {<<: [${Array.from({ length: width }, () => `{k${level}: *l${level - 1}}`).join(", ")}], x${level}: *l${level - 1}}`);
    }
    return lines.join("\n");
  });

const documents = fc.array(fc.oneof(blockDocument, flowNode(5), laughs), { minLength: 1, maxLength: 3 })
  .chain((parts) => fc.tuple(fc.constant(parts), fc.array(fc.constantFrom("---\n", "--- \n", "...\n---\n", "%YAML 1.2\n---\n", "--- !!map\n"), { minLength: parts.length, maxLength: parts.length })))
  .map(([parts, markers]) => parts.map((part, index) => `${markers[index] ?? "---\n"}${part}\n`).join(""));

// ---- real manifests, mutated ---------------------------------------------------------------------------------------

const TOKENS = [
  "&a ", "*a", "&b ", "*b", "<<: *a\n", "<<: [*a, *b]", "!!binary ", "!!set ", "!!omap ", "!custom ", "? ", "- ", ": ", "{", "}", "[", "]",
  "\"", "'", "|", ">", "|-\n", "\t", "\uFEFF", "\u0000", "\n", "\n  ", "---\n", "...\n", "%TAG ! tag:x,2000:\n", "#", ",", "@", "`", "\\",
];
const tokenEdit = fc.record({ at: fc.nat(), kind: fc.constantFrom("insert", "delete", "duplicate-line"), token: fc.constantFrom(...TOKENS) });

function mutate(text: string, edits: ReadonlyArray<{ at: number; kind: string; token: string }>): string {
  let result = text;
  for (const { at, kind, token } of edits) {
    const position = at % (result.length + 1);
    if (kind === "insert") result = result.slice(0, position) + token + result.slice(position);
    else if (kind === "delete") result = result.slice(0, position) + result.slice(position + 1 + (at % 7));
    else {
      const start = result.lastIndexOf("\n", position - 1) + 1;
      const end = result.indexOf("\n", position);
      const line = result.slice(start, end === -1 ? result.length : end + 1);
      result = result.slice(0, start) + line + line + result.slice(start);
    }
  }
  return result;
}

const mutatedSeed = fc.tuple(fc.constantFrom(...SEEDS), fc.array(tokenEdit, { minLength: 1, maxLength: 6 }))
  .map(([seed, edits]) => mutate(seed, edits));
const noise = fc.array(fc.constantFrom(...TOKENS, "a", "b", "1", " "), { maxLength: 40 }).map((pieces) => pieces.join(""));

// ---- the property --------------------------------------------------------------------------------------------------

/** The budget yaml-load.ts states, and a generous factor from nodes and characters to a consumer's output. */
function consumerBound(text: string): number {
  const budget = 10 * Buffer.byteLength(text) + 10_000;
  return 64 * budget;
}

function loadedOrRefused(load: () => unknown): unknown[] | undefined {
  try {
    const loaded = load();
    return Array.isArray(loaded) ? loaded : [loaded];
  } catch (error) {
    if (error instanceof YamlInputError) return undefined;
    throw new Error(`not a YamlInputError: ${String(error)}`, { cause: error });
  }
}

function assertCheapToConsume(documents: readonly unknown[], text: string): void {
  const bound = consumerBound(text);
  // JSON.stringify throws on a cycle, which an accepted document must not have.
  const json = JSON.stringify(documents, (_key, value: unknown) => (typeof value === "bigint" ? String(value) : value)) ?? "";
  assert.ok(json.length <= bound, `${text.length} bytes of YAML stringify to ${json.length} characters`);
  for (const document of documents) {
    const dumped = yaml.dump(document, { noRefs: true, lineWidth: -1, skipInvalid: true });
    assert.ok(dumped.length <= bound, `${text.length} bytes of YAML dump to ${dumped.length} characters`);
  }
}

describe("fuzzed YAML", () => {
  const input = fc.oneof(
    { arbitrary: documents, weight: 3 },
    { arbitrary: mutatedSeed, weight: 3 },
    { arbitrary: laughs, weight: 1 },
    { arbitrary: noise, weight: 1 },
    { arbitrary: fc.string({ maxLength: 60 }), weight: 1 },
  );

  test("any text: documents that are cheap to consume, or a YamlInputError", async (context) => {
    const examples = SEEDS.map((seed): [string, boolean] => [seed, true]);
    await fuzz(context, fc.tuple(input, fc.boolean()), { runs: 24_000, examples, caseTimeoutMs: 3000 },
      ([text, core]) => {
        const options = { origin: "fuzz.yaml", ...(core ? { schema: yaml.CORE_SCHEMA } : {}) };
        const all = loadedOrRefused(() => loadYamlDocuments(text, options));
        if (all) assertCheapToConsume(all, text);
        const one = loadedOrRefused(() => loadYamlDocument(text, { ...options, maxBytes: 4096 }));
        if (one) assertCheapToConsume(one, text);
      });
  });
});
