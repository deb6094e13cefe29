// Kustomization spec.ignore, as fluxcd/pkg/ssa applies DriftIgnoreRules: fields (JSON pointers) of the objects a rule's
// target selects are left out of drift detection, and when such a field did drift, the payload either leaves it out
// (another Apply field manager owns it, say an HPA's controller) or carries the live value (Ferry is the only Apply
// manager, so leaving it out would make the server drop it), so the apply never reverts it. Pure.
import { type Disposition, FerryError } from "../errors.ts";
import { GoRegexp } from "../go-regexp.ts";
import { groupOf } from "../inventory/inventory.ts";
import type { ManifestObject } from "../kustomize/build.ts";
import { dryRunMatches, type ManagedFieldsEntry } from "./policy.ts";

/** A rule that cannot be compiled: a target regex or selector Go would refuse. */
export class IgnoreRuleError extends FerryError {
  readonly code = "IGNORE_RULE_INVALID";
  readonly disposition: Disposition = "stall";
}

export interface IgnoreTarget {
  readonly group?: string | undefined;
  readonly version?: string | undefined;
  readonly kind?: string | undefined;
  readonly name?: string | undefined;
  readonly namespace?: string | undefined;
  readonly labelSelector?: string | undefined;
  readonly annotationSelector?: string | undefined;
}

export interface IgnoreRule {
  readonly paths: readonly string[];
  readonly target?: IgnoreTarget | undefined;
}

type Matcher = (object: ManifestObject) => boolean;

export interface CompiledIgnoreRule {
  readonly matches: Matcher;
  readonly paths: readonly string[];
}

// ---- selecting --------------------------------------------------------------------------------------------------

/** Flux's anchorRegex: a field's regex must match all of it; an empty one matches anything. */
function regexField(what: string, pattern: string | undefined, value: (object: ManifestObject) => string): Matcher | undefined {
  if (!pattern) return undefined;
  let compiled: GoRegexp;
  try {
    compiled = GoRegexp.compile(`^(?:${pattern})$`);
  } catch (error) {
    throw new IgnoreRuleError(`invalid ${what} regex: ${(error as Error).message}`);
  }
  return (object) => compiled.test(value(object));
}

type Requirement = (values: Readonly<Record<string, string>>) => boolean;

const SELECTOR_REQUIREMENT = /^\s*(!)?\s*([A-Za-z0-9][-A-Za-z0-9_./]*)\s*(?:(==|=|!=)\s*([-A-Za-z0-9_.]*)|\s+(in|notin)\s*\(([^)]*)\))?\s*$/;

/** One requirement of a label selector (apimachinery's labels.Parse): key, !key, =, ==, !=, in, notin. */
function requirement(text: string, what: string): Requirement {
  const match = SELECTOR_REQUIREMENT.exec(text);
  if (!match) throw new IgnoreRuleError(`invalid ${what}: cannot parse ${JSON.stringify(text.trim())}`);
  const [, not, key = "", operator, value = "", set, list = ""] = match;
  if (not && (operator || set)) throw new IgnoreRuleError(`invalid ${what}: ${JSON.stringify(text.trim())}`);
  if (not) return (values) => !Object.hasOwn(values, key);
  if (operator === "!=") return (values) => values[key] !== value;
  if (operator) return (values) => values[key] === value;
  if (set) {
    const members = new Set(list.split(",").map((member) => member.trim()));
    return set === "in" ? (values) => members.has(values[key] ?? "\u0000") && Object.hasOwn(values, key)
      : (values) => !Object.hasOwn(values, key) || !members.has(values[key] ?? "");
  }
  return (values) => Object.hasOwn(values, key);
}

/** Splits on the commas between requirements, not those inside an in (...) list. */
function requirements(selector: string): string[] {
  const parts: string[] = [];
  let depth = 0;
  let start = 0;
  for (let index = 0; index < selector.length; index++) {
    if (selector[index] === "(") depth++;
    else if (selector[index] === ")") depth--;
    else if (selector[index] === "," && depth === 0) {
      parts.push(selector.slice(start, index));
      start = index + 1;
    }
  }
  parts.push(selector.slice(start));
  return parts;
}

type Values = (object: ManifestObject) => Record<string, string> | undefined;

function selectorField(what: string, selector: string | undefined, values: Values): Matcher | undefined {
  if (!selector) return undefined;
  const all = requirements(selector).map((part) => requirement(part, what));
  return (object) => all.every((matches) => matches(values(object) ?? {}));
}

function compileTarget(target: IgnoreTarget | undefined): Matcher {
  if (!target) return () => true;
  const matchers = [
    regexField("group", target.group, (object) => groupOf(object.apiVersion)),
    regexField("version", target.version, (object) => object.apiVersion.split("/").at(-1) ?? ""),
    regexField("kind", target.kind, (object) => object.kind),
    regexField("name", target.name, (object) => object.metadata.name),
    regexField("namespace", target.namespace, (object) => object.metadata.namespace ?? ""),
    selectorField("label selector", target.labelSelector, (object) => object.metadata.labels),
    selectorField("annotation selector", target.annotationSelector, (object) => object.metadata.annotations),
  ].filter((matcher): matcher is Matcher => matcher !== undefined);
  return (object) => matchers.every((matches) => matches(object));
}

export function compileIgnoreRules(rules: readonly IgnoreRule[]): CompiledIgnoreRule[] {
  return rules.map((rule, index) => {
    try {
      return { matches: compileTarget(rule.target), paths: rule.paths };
    } catch (error) {
      throw new IgnoreRuleError(`spec.ignore[${index}]: failed to create ignore rule selector: ${(error as Error).message}`);
    }
  });
}

/** The ignored paths of `object` (selected as the dry-run result is, as in Flux). */
export function ignoredPaths(rules: readonly CompiledIgnoreRule[], object: ManifestObject): string[] {
  return rules.flatMap((rule) => (rule.matches(object) ? [...rule.paths] : []));
}

// ---- JSON pointers ----------------------------------------------------------------------------------------------

function segmentsOf(pointer: string): string[] {
  if (pointer === "") return [];
  return pointer.slice(1).split("/").map((segment) => segment.replaceAll("~1", "/").replaceAll("~0", "~"));
}

type Container = Record<string, unknown> | unknown[];

function child(container: unknown, segment: string): { found: boolean; value?: unknown } {
  if (Array.isArray(container)) {
    const index = /^(0|[1-9][0-9]*)$/.test(segment) ? Number(segment) : -1;
    return index >= 0 && index < container.length ? { found: true, value: container[index] } : { found: false };
  }
  if (container !== null && typeof container === "object" && Object.hasOwn(container, segment)) {
    return { found: true, value: (container as Record<string, unknown>)[segment] };
  }
  return { found: false };
}

/** The value at `pointer`; not found when any segment does not resolve (Flux treats that as absent). */
export function lookupPointer(document: unknown, pointer: string): { found: boolean; value?: unknown } {
  let current: { found: boolean; value?: unknown } = { found: true, value: document };
  for (const segment of segmentsOf(pointer)) {
    current = child(current.value, segment);
    if (!current.found) return current;
  }
  return current;
}

/** Removes `pointer` from `document` in place; a path that does not resolve is left alone. */
function removePointer(document: unknown, pointer: string): void {
  const segments = segmentsOf(pointer);
  const last = segments.pop();
  if (last === undefined) return;
  const parent = lookupPointer(document, segments.length ? `/${segments.map(escape).join("/")}` : "");
  if (!parent.found) return;
  const container = parent.value as Container;
  if (Array.isArray(container)) {
    const { found } = child(container, last);
    if (found) container.splice(Number(last), 1);
  } else if (container !== null && typeof container === "object") {
    Reflect.deleteProperty(container, last);
  }
}

/** Sets `pointer` in `document` in place, when its parent exists. */
function setPointer(document: unknown, pointer: string, value: unknown): void {
  const segments = segmentsOf(pointer);
  const last = segments.pop();
  if (last === undefined) return;
  const parent = lookupPointer(document, segments.length ? `/${segments.map(escape).join("/")}` : "");
  if (!parent.found || parent.value === null || typeof parent.value !== "object") return;
  if (Array.isArray(parent.value)) {
    if (child(parent.value, last).found) parent.value[Number(last)] = value;
  } else {
    (parent.value as Record<string, unknown>)[last] = value;
  }
}

function escape(segment: string): string {
  return segment.replaceAll("~", "~0").replaceAll("/", "~1");
}

/** Deep equality of JSON values, whatever the order of keys. */
function sameJson(a: unknown, b: unknown): boolean {
  if (a === b) return true;
  if (typeof a !== "object" || typeof b !== "object" || a === null || b === null) return false;
  if (Array.isArray(a) || Array.isArray(b)) {
    return Array.isArray(a) && Array.isArray(b) && a.length === b.length && a.every((item, index) => sameJson(item, b[index]));
  }
  const keys = Object.keys(a);
  return keys.length === Object.keys(b).length
    && keys.every((key) => Object.hasOwn(b, key) && sameJson((a as Record<string, unknown>)[key], (b as Record<string, unknown>)[key]));
}

// ---- field ownership --------------------------------------------------------------------------------------------

/** The fieldsV1 path of `pointer` in `live`: f:<field>, and k:{…} for the list item at an index, as Flux resolves it. */
function fieldsV1Segments(live: unknown, pointer: string, entries: readonly Record<string, unknown>[]): string[] | undefined {
  const segments: string[] = [];
  let node: unknown = live;
  for (const segment of segmentsOf(pointer)) {
    if (Array.isArray(node) && /^(0|[1-9][0-9]*)$/.test(segment)) {
      const item = node[Number(segment)];
      if (item === null || typeof item !== "object" || Array.isArray(item)) return undefined;
      const key = mergeKeyOf(item as Record<string, unknown>, segments, entries);
      if (!key) return undefined;
      segments.push(key);
      node = item;
    } else {
      segments.push(`f:${segment}`);
      node = child(node, segment).value;
    }
  }
  return segments.length > 0 ? segments : undefined;
}

function walk(fields: unknown, segments: readonly string[]): Record<string, unknown> | undefined {
  let current = fields;
  for (const segment of segments) {
    if (current === null || typeof current !== "object") return undefined;
    current = (current as Record<string, unknown>)[segment];
  }
  return current !== null && typeof current === "object" ? current as Record<string, unknown> : undefined;
}

function mergeKeyOf(
  item: Record<string, unknown>,
  parent: readonly string[],
  entries: readonly Record<string, unknown>[],
): string | undefined {
  for (const fields of entries) {
    for (const key of Object.keys(walk(fields, parent) ?? {})) {
      if (!key.startsWith("k:")) continue;
      let values: Record<string, unknown>;
      try {
        values = JSON.parse(key.slice(2)) as Record<string, unknown>;
      } catch {
        continue;
      }
      if (Object.entries(values).every(([name, value]) => sameJson(item[name], value))) return key;
    }
  }
  return undefined;
}

/** Whether an Apply manager other than `owner` owns `pointer` in `live` (Flux's isFieldOwnedByOtherApplyManager). */
function ownedByOtherApplier(live: unknown, pointer: string, owner: string): boolean {
  const managed = ((live as { metadata?: { managedFields?: ManagedFieldsEntry[] } }).metadata?.managedFields ?? [])
    .filter((entry) => entry.operation === "Apply" && !entry.subresource && entry.fieldsV1);
  const segments = fieldsV1Segments(live, pointer, managed.map((entry) => entry.fieldsV1 as Record<string, unknown>));
  if (!segments) return false;
  const [parent, leaf] = [segments.slice(0, -1), segments.at(-1) as string];
  return managed.some((entry) => entry.manager !== owner && walk(entry.fieldsV1, parent)?.[leaf] !== undefined);
}

// ---- planning ---------------------------------------------------------------------------------------------------

/** `live` and `dryRun` equal once the ignored paths are taken out of both (Flux's hasDriftedWithIgnore). */
export function matchesIgnoring(live: unknown, dryRun: unknown, paths: readonly string[]): boolean {
  // "" is the whole document (Flux's IgnorePathRoot): the object is never compared, so never reapplied.
  if (paths.includes("")) return true;
  const [liveCopy, dryRunCopy] = [structuredClone(live), structuredClone(dryRun)];
  for (const path of paths) {
    removePointer(liveCopy, path);
    removePointer(dryRunCopy, path);
  }
  return dryRunMatches(liveCopy, dryRunCopy);
}

/**
 * The object to apply when it drifted elsewhere: for each ignored path whose live and dry-run values differ, left out
 * when another Apply manager owns it, else set to the live value (left out when the live object has none).
 */
export function payloadIgnoring(
  object: ManifestObject,
  live: unknown,
  dryRun: unknown,
  paths: readonly string[],
  owner: string,
): ManifestObject {
  const payload = structuredClone(object);
  for (const path of paths) {
    const [current, desired] = [lookupPointer(live, path), lookupPointer(dryRun, path)];
    if (current.found === desired.found && sameJson(current.value, desired.value)) continue;
    if (!current.found || ownedByOtherApplier(live, path, owner)) removePointer(payload, path);
    else setPointer(payload, path, structuredClone(current.value));
  }
  return payload;
}
