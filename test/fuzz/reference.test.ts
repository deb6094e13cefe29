// Fuzzing parseReference against the grammar of github.com/distribution/reference (regexp.go), the one registries,
// docker, crane and oras implement: whatever Ferry accepts must be a reference there too, formatting it must give
// the same reference back, everything in Ferry's subset of the grammar must be accepted, and anything else is refused
// with an InvalidReferenceError, never another error.
import assert from "node:assert/strict";
import { describe, test } from "node:test";
import fc from "fast-check";
import { InvalidReferenceError } from "../../src/registry/errors.ts";
import { formatReference, formatUrl, parseReference, type Reference } from "../../src/registry/reference.ts";
import { corpusText, fuzz } from "./fuzz.ts";

// distribution/reference's regexp.go in JavaScript syntax (RE2's \w and [[:xdigit:]] are ASCII there too).
const ALPHANUMERIC = "[a-z0-9]+";
const SEPARATOR = "(?:[._]|__|[-]+)";
const DOMAIN_NAME_COMPONENT = "(?:[a-zA-Z0-9]|[a-zA-Z0-9][a-zA-Z0-9-]*[a-zA-Z0-9])";
const DOMAIN_NAME = `${DOMAIN_NAME_COMPONENT}(?:\\.${DOMAIN_NAME_COMPONENT})*`;
const IPV6_ADDRESS = "\\[(?:[a-fA-F0-9:]+)\\]";
const DOMAIN_AND_PORT = `(?:${DOMAIN_NAME}|${IPV6_ADDRESS})(?::[0-9]+)?`;
const PATH_COMPONENT = `${ALPHANUMERIC}(?:${SEPARATOR}${ALPHANUMERIC})*`;
const REMOTE_NAME = `${PATH_COMPONENT}(?:/${PATH_COMPONENT})*`;
const TAG = "[A-Za-z0-9_][A-Za-z0-9_.-]{0,127}";
const DIGEST = "[A-Za-z][A-Za-z0-9]*(?:[-_+.][A-Za-z][A-Za-z0-9]*)*[:][0-9a-fA-F]{32,}";
const REFERENCE = new RegExp(`^((?:${DOMAIN_AND_PORT}/)?${REMOTE_NAME})(?::(${TAG}))?(?:@(${DIGEST}))?$`);
/** distribution's NameTotalLengthMax, on the name with its domain. */
const NAME_TOTAL_LENGTH_MAX = 255;

// Ferry's subset: a registry it can tell from a path (a dot, a port or localhost), sha256 and sha512 digests, and
// ports a socket can use.
const lowerAlphanumeric = fc.stringMatching(/^[a-z0-9]{1,8}$/);
const separator = fc.constantFrom(".", "_", "__", "-", "--", "---");
const pathComponent = fc.tuple(lowerAlphanumeric, fc.array(fc.tuple(separator, lowerAlphanumeric), { maxLength: 3 }))
  .map(([first, rest]) => first + rest.map(([join, part]) => join + part).join(""));
const domainComponent = fc.stringMatching(/^[a-zA-Z0-9](?:[a-zA-Z0-9-]{0,8}[a-zA-Z0-9])?$/);
const hostName = fc.oneof(
  fc.array(domainComponent, { minLength: 2, maxLength: 4 }).map((parts) => parts.join(".")),
  fc.constant("localhost"),
  fc.tuple(fc.nat(255), fc.nat(255), fc.nat(255), fc.nat(255)).map((octets) => octets.join(".")),
  fc.stringMatching(/^[0-9a-fA-F:]{1,20}$/).map((address) => `[${address}]`),
);
const port = fc.integer({ min: 1, max: 65535 }).map((number) => `:${number}`);
const registry = fc.tuple(hostName, fc.option(port, { nil: "" }))
  .map(([host, maybePort]) => host + maybePort)
  // Without a port, a bracketed address alone is not a host Ferry recognises; and these are Docker Hub's aliases.
  .filter((host) => !["docker.io", "index.docker.io", "registry-1.docker.io"].includes(host));
const tag = fc.stringMatching(new RegExp(`^${TAG}$`));
const digest = fc.oneof(
  fc.stringMatching(/^[a-f0-9]{64}$/).map((hex) => `sha256:${hex}`),
  fc.stringMatching(/^[a-f0-9]{128}$/).map((hex) => `sha512:${hex}`),
);
const canonicalReference = fc.record({
  registry,
  path: fc.array(pathComponent, { minLength: 1, maxLength: 4 }).map((parts) => parts.join("/")),
  tag: fc.option(tag, { nil: undefined }),
  digest: fc.option(digest, { nil: undefined }),
}).map(({ registry: host, path, tag: maybeTag, digest: maybeDigest }) =>
  `${host}/${path}${maybeTag === undefined ? "" : `:${maybeTag}`}${maybeDigest === undefined ? "" : `@${maybeDigest}`}`)
  .filter((reference) => (REFERENCE.exec(reference)?.[1]?.length ?? Infinity) <= NAME_TOTAL_LENGTH_MAX);

/** References around the length limit, which random paths seldom reach. */
const longReference = fc.tuple(fc.option(registry, { nil: undefined }), fc.integer({ min: 240, max: 270 }), fc.integer({ min: 1, max: 60 }))
  .map(([host, length, componentLength]) => {
    const path = Array.from({ length }, (_, index) => ((index + 1) % (componentLength + 1) === 0 ? "/" : "a")).join("").replace(/\/+$/, "");
    return host === undefined ? path : `oci://${host}/${path}`;
  });

/** Characters that mean something in a reference, and some that never should. */
const NOISE = [..."/:@.-_[]%#?+ \t\n\\AZaz09", "\u0000", "é", "😀", "oci://", "sha256:", "localhost", "::"];
const edit = fc.record({ at: fc.nat(), kind: fc.constantFrom("insert", "delete", "replace"), text: fc.constantFrom(...NOISE) });

function mutate(text: string, edits: ReadonlyArray<{ at: number; kind: string; text: string }>): string {
  let result = text;
  for (const { at, kind, text: piece } of edits) {
    const position = result.length === 0 ? 0 : at % (result.length + 1);
    const removed = kind === "insert" ? 0 : 1;
    result = result.slice(0, position) + (kind === "delete" ? "" : piece) + result.slice(position + removed);
  }
  return result;
}

const anyInput = fc.oneof(
  longReference,
  fc.tuple(canonicalReference, fc.array(edit, { minLength: 1, maxLength: 4 })).map(([reference, edits]) => mutate(reference, edits)),
  fc.tuple(canonicalReference, fc.array(edit, { minLength: 1, maxLength: 4 })).map(([reference, edits]) => `oci://${mutate(reference, edits)}`),
  fc.tuple(fc.constantFrom(...corpusText("reference")), fc.array(edit, { maxLength: 4 })).map(([seed, edits]) => mutate(seed, edits)),
  fc.string({ maxLength: 80, unit: "grapheme-ascii" }),
  fc.string({ maxLength: 40, unit: "binary" }),
);

/** Parses, or returns the InvalidReferenceError; any other error fails the case. */
function parsed(input: string, requireScheme: boolean): Reference | InvalidReferenceError {
  try {
    return parseReference(input, { requireScheme });
  } catch (error) {
    if (error instanceof InvalidReferenceError) return error;
    throw new Error(`parseReference(${JSON.stringify(input)}) threw ${String(error)}, not an InvalidReferenceError`, { cause: error });
  }
}

function assertInGrammar(reference: Reference, input: string): void {
  const formatted = formatReference(reference);
  const match = REFERENCE.exec(formatted);
  assert.ok(match, `${JSON.stringify(input)} was accepted as ${JSON.stringify(formatted)}, which distribution's grammar refuses`);
  const name = match[1] ?? "";
  assert.ok(name.length <= NAME_TOTAL_LENGTH_MAX, `${JSON.stringify(input)} was accepted with a name of ${name.length} characters`);
}

describe("fuzzed references", () => {
  test("everything in Ferry's subset of the grammar is accepted and formats back to itself", async (context) => {
    await fuzz(context, canonicalReference, { runs: 20_000 }, (reference) => {
      const result = parsed(`oci://${reference}`, true);
      assert.ok(!(result instanceof InvalidReferenceError), `oci://${reference} was refused: ${String(result)}`);
      assert.equal(formatUrl(result), `oci://${reference}`);
    });
  });

  test("anything accepted is in the grammar and round-trips; anything else is an InvalidReferenceError", async (context) => {
    const examples = corpusText("reference").map((seed): [string, boolean] => [seed, false]);
    await fuzz(context, fc.tuple(anyInput, fc.boolean()), { runs: 60_000, examples },
      ([input, requireScheme]) => {
        const result = parsed(input, requireScheme);
        if (result instanceof InvalidReferenceError) return;
        assertInGrammar(result, input);
        assert.deepEqual(parsed(formatUrl(result), true), result, `${JSON.stringify(input)} does not round-trip`);
      });
  });
});
