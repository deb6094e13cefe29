// Post-build variable substitution, compatible with Flux's kustomize-controller (its fork of drone/envsubst): `${...}`
// expressions in the built manifests are replaced by values from spec.postBuild, document by document, before the
// documents are parsed again, so a substituted `replicas: ${n}` becomes a number exactly as it does under Flux.
//
// Expressions (only the braced form is expanded; `$var` is left alone; `$$` collapses to `$`, so `$${x}` yields `${x}`):
//   ${var}                       value
//   ${#var}                      length in characters
//   ${var^} ${var^^}             upper-case the first / every character
//   ${var,} ${var,,}             lower-case the first / every character
//   ${var:n} ${var:n:len}        substring; a negative n counts from the end, a negative len stops that far from the end
//   ${var#p} ${var##p}           remove the shortest / longest prefix matching the glob p
//   ${var%p} ${var%%p}           remove the shortest / longest suffix matching the glob p
//   ${var-d} ${var:-d}           d when var is unset or empty
//   ${var=d} ${var:=d}           the same (there is nothing to assign to)
//   ${var/p/r} ${var//p/r}       replace the first / every occurrence of the literal p by r (r may be omitted)
//   ${var/#p/r} ${var/%p/r}      replace the literal p at the start / end; an empty p prepends / appends r
// Globs support `*`, `?`, `[...]` (ranges, `!`/`^` negation) and `\` escapes; POSIX classes like [[:alpha:]] are not
// supported. Replacement patterns are literal, as in Flux; `\/` and `\\` there stand for `/` and `\`. Arguments may
// contain nested `${...}`; an argument ends at the first `}` that closes no nested expression.
//
// Deliberate choices where Flux's behaviour is an accident rather than a contract:
//   - Every default form treats an empty value like an unset one, because Flux's does (it cannot tell them apart
//     outside strict mode); `${var-d}`, which Flux cannot parse, follows the same rule.
//   - Defaults are evaluated only when used, so an unused default naming an unset variable is not a strict-mode error.
//   - Lengths and offsets count characters, not UTF-8 bytes; non-integer offsets are an error instead of a no-op.
//   - `${var+x}`, `${var?x}`, `${var:+x}` and `${var:?x}` are rejected instead of silently acting as defaults.
import { fluxTwin } from "../api/flux-annotations.ts";
import yaml from "js-yaml";
import { type Disposition, FerryError } from "../errors.ts";
import { type ManifestObject, parseManifests } from "./build.ts";
import { compileGlob, type Glob, GlobError, type Removal, removeGlobMatch } from "./glob.ts";
import { YamlInputError } from "./yaml-load.ts";

export class SubstitutionError extends FerryError {
  readonly code = "SUBSTITUTION_FAILED";
  readonly disposition: Disposition = "stall";
}

export interface SubstituteOptions {
  /** An undefined variable without a default is an error (Flux's StrictPostBuildSubstitutions, on by default). */
  strict?: boolean;
}

/** Label or annotation that exempts one object from substitution, like Flux's kustomize.toolkit.fluxcd.io/substitute. */
export const SUBSTITUTE_KEY = "kustomize.ferry.dev/substitute";
export const SUBSTITUTE_DISABLED = "disabled";

const VARIABLE_NAME = /^[_a-zA-Z][_a-zA-Z0-9]*$/;

type DefaultOperator = "-" | ":-" | "=" | ":=";
type Operator = "" | "length" | "^" | "^^" | "," | ",," | ":" | "#" | "##" | "%" | "%%" | DefaultOperator | "/" | "//" | "/#" | "/%";

interface Expansion {
  readonly expression: string;
  readonly name: string;
  readonly operator: Operator;
  readonly args: readonly Template[];
}

type Template = ReadonlyArray<string | Expansion>;

interface Cursor {
  readonly text: string;
  pos: number;
}

function excerpt(text: string, start: number): string {
  const close = text.indexOf("}", start);
  const newline = text.indexOf("\n", start);
  let end = close === -1 ? text.length : close + 1;
  if (newline !== -1 && newline < end) end = newline;
  const snippet = text.slice(start, end);
  return JSON.stringify(snippet.length > 80 ? `${snippet.slice(0, 80)}...` : snippet);
}

function badSubstitution(cursor: Cursor, start: number, reason: string): SubstitutionError {
  return new SubstitutionError(`bad substitution ${excerpt(cursor.text, start)}: ${reason}`);
}

/**
 * Literal text and expressions up to (not including) any character in `stop`. `unescapeSlash` turns `\/` and `\\` into
 * `/` and `\`, which replacement patterns need because `/` delimits them.
 */
function parseTemplate(cursor: Cursor, stop: string, unescapeSlash: boolean): Template {
  const parts: Array<string | Expansion> = [];
  let literal = "";
  const { text } = cursor;
  while (cursor.pos < text.length) {
    const char = text.charAt(cursor.pos);
    const next = text.charAt(cursor.pos + 1);
    if (stop.includes(char)) break;
    if (char === "$" && next === "$") {
      literal += "$";
      cursor.pos += 2;
    } else if (char === "$" && next === "{") {
      if (literal) parts.push(literal);
      literal = "";
      parts.push(parseExpansion(cursor));
    } else if (unescapeSlash && char === "\\" && (next === "/" || next === "\\")) {
      literal += next;
      cursor.pos += 2;
    } else {
      literal += char;
      cursor.pos += 1;
    }
  }
  if (literal) parts.push(literal);
  return parts;
}

/** Parses one `${...}` with the cursor on its `$`. */
function parseExpansion(cursor: Cursor): Expansion {
  const { text } = cursor;
  const start = cursor.pos;
  cursor.pos += 2;
  const peek = (offset = 0) => text.charAt(cursor.pos + offset);
  const close = (): void => {
    if (peek() === "}") {
      cursor.pos += 1;
      return;
    }
    throw badSubstitution(cursor, start, cursor.pos >= text.length ? "missing closing brace" : `unexpected "${peek()}"`);
  };
  const readName = (): string => {
    const name = /^[_a-zA-Z0-9]*/.exec(text.slice(cursor.pos))?.[0] ?? "";
    if (!name) throw badSubstitution(cursor, start, cursor.pos >= text.length ? "missing closing brace" : "missing variable name");
    if (!VARIABLE_NAME.test(name)) throw badSubstitution(cursor, start, `invalid variable name "${name}"`);
    cursor.pos += name.length;
    return name;
  };
  const done = (name: string, operator: Operator, args: Template[] = []): Expansion => {
    close();
    return { expression: text.slice(start, cursor.pos), name, operator, args };
  };

  if (peek() === "#") {
    cursor.pos += 1;
    return done(readName(), "length");
  }
  const name = readName();
  const char = peek();
  switch (char) {
    case "}":
      return done(name, "");
    case "^":
    case ",": {
      const doubled = peek(1) === char;
      cursor.pos += doubled ? 2 : 1;
      return done(name, (doubled ? char + char : char) as Operator);
    }
    case "#":
    case "%": {
      const doubled = peek(1) === char;
      cursor.pos += doubled ? 2 : 1;
      return done(name, (doubled ? char + char : char) as Operator, [parseTemplate(cursor, "}", false)]);
    }
    case "-":
    case "=":
      cursor.pos += 1;
      return done(name, char, [parseTemplate(cursor, "}", false)]);
    case ":": {
      const after = peek(1);
      if (after === "-" || after === "=") {
        cursor.pos += 2;
        return done(name, `:${after}`, [parseTemplate(cursor, "}", false)]);
      }
      if (after === "+" || after === "?") throw badSubstitution(cursor, start, `the ":${after}" operator is not supported`);
      cursor.pos += 1;
      const args = [parseTemplate(cursor, ":}", false)];
      if (peek() === ":") {
        cursor.pos += 1;
        args.push(parseTemplate(cursor, "}", false));
      }
      return done(name, ":", args);
    }
    case "/": {
      const variant = peek(1);
      const operator: Operator = variant === "/" || variant === "#" || variant === "%" ? `/${variant}` : "/";
      cursor.pos += operator.length;
      const args = [parseTemplate(cursor, "/}", true)];
      if (peek() === "/") {
        cursor.pos += 1;
        args.push(parseTemplate(cursor, "}", true));
      }
      return done(name, operator, args);
    }
    case "+":
    case "?":
      throw badSubstitution(cursor, start, `the "${char}" operator is not supported`);
    case "":
      throw badSubstitution(cursor, start, "missing closing brace");
    default:
      throw badSubstitution(cursor, start, `unexpected "${char}" after the variable name`);
  }
}

function removalFor(operator: "#" | "##" | "%" | "%%"): Removal {
  return { from: operator.startsWith("#") ? "start" : "end", longest: operator.length === 2 };
}

function removeMatch(value: string, pattern: string, removal: Removal, expression: string, budget: Budget): string {
  let glob: Glob;
  try {
    glob = compileGlob(pattern);
  } catch (error) {
    if (!(error instanceof GlobError)) throw error;
    // The pattern may have been expanded from a Secret's value (${v#${secret}}): only the template is quoted.
    throw new SubstitutionError(`bad substitution ${JSON.stringify(expression)}: invalid pattern (a character range out of order)`, { cause: error });
  }
  return removeGlobMatch(value, glob, removal, (steps) => budget.spendWork(steps, expression));
}

function parseInteger(text: string, what: string, expression: string): number {
  const trimmed = text.trim();
  if (!/^[+-]?\d+$/.test(trimmed)) {
    // The text may have been expanded from a Secret's value (${v:${secret}}): only the template is quoted.
    throw new SubstitutionError(`bad substitution ${JSON.stringify(expression)}: the ${what} is not an integer`);
  }
  return Number.parseInt(trimmed, 10);
}

function substring(value: string, args: readonly string[], expression: string): string {
  const chars = Array.from(value);
  let offset = parseInteger(args[0] ?? "", "offset", expression);
  if (offset < 0) offset = Math.max(0, chars.length + offset);
  if (args.length < 2) return chars.slice(offset).join("");
  const length = parseInteger(args[1] ?? "", "length", expression);
  const end = length < 0 ? chars.length + length : offset + length;
  return end < offset ? "" : chars.slice(offset, end).join("");
}

function replace(value: string, operator: Operator, pattern: string, replacement: string, budget: Budget, expression: string): string {
  switch (operator) {
    case "/#":
      return value.startsWith(pattern) ? replacement + value.slice(pattern.length) : value;
    case "/%":
      return value.endsWith(pattern) ? value.slice(0, value.length - pattern.length) + replacement : value;
    case "//": {
      if (!pattern) return value;
      const pieces = value.split(pattern);
      // Checked before joining: a long value full of matches times a long replacement is more than memory holds.
      budget.checkOutput(value.length + (pieces.length - 1) * (replacement.length - pattern.length), expression);
      return pieces.join(replacement);
    }
    default:
      return pattern ? value.replace(pattern, () => replacement) : value;
  }
}

// What one substitution call may spend, so that a tenant's values and patterns cannot hold the controller's event loop:
// reading a value costs its length and every glob step costs one (work, which grows with the input), and every
// character written counts towards the output, which may be no larger than a kustomize build may be.
const WORK_BASE = 10_000_000;
const WORK_PER_INPUT_CHARACTER = 10;
export const MAX_SUBSTITUTED_CHARACTERS = 64 * 1024 * 1024;

class Budget {
  readonly #workLimit: number;
  #work = 0;
  #output = 0;

  constructor(input: string) {
    this.#workLimit = WORK_BASE + WORK_PER_INPUT_CHARACTER * input.length;
  }

  spendWork(units: number, expression: string): void {
    this.#work += units;
    if (this.#work > this.#workLimit) {
      throw new SubstitutionError(`substitution needs more than its ${this.#workLimit} steps for this input at ${JSON.stringify(expression)}: values or patterns are too long`);
    }
  }

  checkOutput(characters: number, expression?: string): void {
    if (this.#output + characters > MAX_SUBSTITUTED_CHARACTERS) {
      const where = expression === undefined ? "" : ` at ${JSON.stringify(expression)}`;
      throw new SubstitutionError(`substitution output would exceed ${MAX_SUBSTITUTED_CHARACTERS} characters${where}`);
    }
  }

  spendOutput(characters: number, expression?: string): void {
    this.checkOutput(characters, expression);
    this.#output += characters;
  }
}

interface Context {
  readonly variables: Readonly<Record<string, string>>;
  readonly strict: boolean;
  readonly budget: Budget;
}

function lookup(context: Context, name: string): string | undefined {
  // Own properties only, so that names such as `constructor` are not "set" through the prototype.
  return Object.hasOwn(context.variables, name) ? context.variables[name]?.replaceAll("\n", "") : undefined;
}

function render(template: Template | undefined, context: Context): string {
  let output = "";
  for (const part of template ?? []) {
    const piece = typeof part === "string" ? part : evaluate(part, context);
    context.budget.spendOutput(piece.length, typeof part === "string" ? undefined : part.expression);
    output += piece;
  }
  return output;
}

function evaluate(expansion: Expansion, context: Context): string {
  const { name, operator, args, expression } = expansion;
  const value = lookup(context, name);
  context.budget.spendWork(value?.length ?? 0, expression);
  if (operator === "-" || operator === ":-" || operator === "=" || operator === ":=") {
    return value ? value : render(args[0], context);
  }
  if (value === undefined && context.strict) throw new SubstitutionError(`variable not set (strict mode): ${JSON.stringify(name)}`);
  const text = value ?? "";
  const first = text.codePointAt(0);
  const rest = first === undefined ? "" : text.slice(String.fromCodePoint(first).length);
  switch (operator) {
    case "":
      return text;
    case "length":
      return String(Array.from(text).length);
    case "^":
      return first === undefined ? "" : String.fromCodePoint(first).toUpperCase() + rest;
    case "^^":
      return text.toUpperCase();
    case ",":
      return first === undefined ? "" : String.fromCodePoint(first).toLowerCase() + rest;
    case ",,":
      return text.toLowerCase();
    case ":":
      return substring(text, args.map((arg) => render(arg, context)), expression);
    case "#":
    case "##":
    case "%":
    case "%%":
      return removeMatch(text, render(args[0], context), removalFor(operator), expression, context.budget);
    default:
      return replace(text, operator, render(args[0], context), render(args[1], context), context.budget, expression);
  }
}

function checkVariableNames(variables: Readonly<Record<string, string>>): void {
  for (const name of Object.keys(variables)) {
    if (!VARIABLE_NAME.test(name)) {
      throw new SubstitutionError(`variable name ${JSON.stringify(name)} is invalid, it must match ${VARIABLE_NAME.source}`);
    }
  }
}

function expand(text: string, context: Context): string {
  const cursor: Cursor = { text, pos: 0 };
  // Parse everything before evaluating, so a syntax error is reported even when an earlier variable is missing.
  const template = parseTemplate(cursor, "", false);
  return render(template, context);
}

/** Expands the `${...}` expressions in `text`. Throws SubstitutionError for bad syntax, bad names and (strict) unset variables. */
export function substitute(text: string, variables: Readonly<Record<string, string>>, options: SubstituteOptions = {}): string {
  checkVariableNames(variables);
  return expand(text, { variables, strict: options.strict ?? true, budget: new Budget(text) });
}

/** Splits at `---` document markers, keeping each marker with the document it starts so its line stays valid YAML. */
function splitDocuments(text: string): string[] {
  const documents: string[] = [];
  let current: string[] = [];
  for (const line of text.split("\n")) {
    if (/^---(?:[ \t\r]|$)/.test(line) && current.length > 0) {
      documents.push(current.join("\n"));
      current = [];
    }
    current.push(line);
  }
  documents.push(current.join("\n"));
  return documents;
}

function objectId(object: ManifestObject): string {
  const { namespace, name } = object.metadata;
  return namespace ? `${object.kind}/${namespace}/${name}` : `${object.kind}/${name}`;
}

/** Flux compares the value exactly, on a label or an annotation, under its own name too. */
function substitutionDisabled(object: ManifestObject): boolean {
  const { labels, annotations } = object.metadata;
  const keys = [SUBSTITUTE_KEY, fluxTwin(SUBSTITUTE_KEY) ?? SUBSTITUTE_KEY];
  return keys.some((key) => labels?.[key] === SUBSTITUTE_DISABLED || annotations?.[key] === SUBSTITUTE_DISABLED);
}

/**
 * The objects of one document, loaded with bounds: a substituted value can bring its own anchors and aliases (flow
 * YAML fits on one line), and the build output is a tenant's input anyway. Each must name its object, as in build.ts.
 */
function manifestsIn(text: string, origin: string): ManifestObject[] {
  return parseManifests(text, origin, (message) => new SubstitutionError(message));
}

/**
 * Splits multi-document YAML (kustomize build output, `---` separators), and per document: if its metadata.annotations or labels have
 * `kustomize.ferry.dev/substitute: disabled` (exact value) the document is kept as is; otherwise substitute on the document TEXT (so
 * `replicas: ${n}` becomes a number after re-parsing, like Flux), then parse with js-yaml. Errors name the object (Kind/namespace/name).
 *
 * Whether to substitute at all is the caller's decision: Flux skips it when no variable is defined, unless
 * substituteStrategy is Always.
 */
export function substituteManifests(
  yamlText: string,
  variables: Readonly<Record<string, string>>,
  options: SubstituteOptions = {},
): ManifestObject[] {
  checkVariableNames(variables);
  const context: Context = { variables, strict: options.strict ?? true, budget: new Budget(yamlText) };
  const objects: ManifestObject[] = [];
  splitDocuments(yamlText).forEach((document, index) => {
    // The document is parsed as built first: the opt-out label and the object's name must come from the unsubstituted text.
    const original = manifestsIn(document, `manifest document ${index + 1}`);
    const [object] = original;
    if (!object || !document.includes("$") || original.some(substitutionDisabled)) {
      objects.push(...original);
      return;
    }
    const id = objectId(object);
    let substituted: string;
    try {
      substituted = expand(document, context);
    } catch (error) {
      if (error instanceof SubstitutionError) throw new SubstitutionError(`${id}: ${error.message}`, { cause: error });
      throw error;
    }
    try {
      objects.push(...manifestsIn(substituted, `${id} after substitution`));
    } catch (error) {
      // The values made the object invalid; only changing them helps, so this stalls like any substitution error.
      if (error instanceof YamlInputError) throw new SubstitutionError(error.message, { cause: error });
      throw error;
    }
  });
  return objects;
}

/** substituteManifests for an object that is already parsed: it is rendered to YAML, as Flux does, then substituted. */
export function substituteObject(
  object: ManifestObject,
  variables: Readonly<Record<string, string>>,
  options: SubstituteOptions = {},
): ManifestObject[] {
  return substituteManifests(yaml.dump(object, { lineWidth: -1, noRefs: true }), variables, options);
}

/**
 * Variables from ConfigMap data / Secret data (base64-decoded, see decodeSecretData) and inline, Flux precedence: later
 * substituteFrom refs override earlier, inline overrides refs. Pure: takes already-fetched data. Newlines are removed.
 */
export function mergeVariables(
  fromRefs: ReadonlyArray<Readonly<Record<string, string>>>,
  inline: Readonly<Record<string, string>> = {},
): Record<string, string> {
  const merged = new Map<string, string>();
  for (const source of [...fromRefs, inline]) {
    for (const [name, value] of Object.entries(source)) merged.set(name, value.replaceAll("\n", ""));
  }
  // fromEntries defines own properties, so a `__proto__` variable stays a variable.
  return Object.fromEntries(merged);
}

/** A Secret's `data` with its base64 values decoded as UTF-8, ready for mergeVariables. */
export function decodeSecretData(data: Readonly<Record<string, string>>): Record<string, string> {
  return Object.fromEntries(Object.entries(data).map(([name, value]) => [name, Buffer.from(value, "base64").toString("utf8")]));
}
