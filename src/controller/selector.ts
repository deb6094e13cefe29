// Label selectors for --watch-label-selector: Kubernetes' string syntax as metav1.ParseToLabelSelector reads it
// (what Flux's controllers read theirs with), so Flux's shard labels keep working: `key`, `!key`, `key=value`,
// `key==value`, `key!=value`, `key in (a,b)`, `key notin (a,b)`, joined by commas (all must hold). Validated at
// start; the canonical form (requirements sorted by key, as labels.Selector.String() prints them) is what is sent to
// the apiserver and what names the shard's lease.
import { createHash } from "node:crypto";

export type SelectorOperator = "exists" | "!exists" | "=" | "!=" | "in" | "notin";

export interface SelectorRequirement {
  readonly key: string;
  readonly operator: SelectorOperator;
  readonly values: readonly string[];
}

export class LabelSelectorError extends Error {
  override name = "LabelSelectorError";
}

const NAME = /^[A-Za-z0-9]([-A-Za-z0-9_.]*[A-Za-z0-9])?$/;
const DNS_SUBDOMAIN = /^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$/;

function checkKey(key: string): void {
  const slash = key.indexOf("/");
  const [prefix, name] = slash === -1 ? [undefined, key] : [key.slice(0, slash), key.slice(slash + 1)];
  if (prefix !== undefined && (prefix.length === 0 || prefix.length > 253 || !DNS_SUBDOMAIN.test(prefix))) {
    throw new LabelSelectorError(`label key "${key}": the prefix must be a DNS subdomain (lowercase, at most 253 characters)`);
  }
  if (name.length === 0 || name.length > 63 || !NAME.test(name)) {
    throw new LabelSelectorError(`label key "${key}": the name must be at most 63 characters of letters, digits, '-', '_' and '.', starting and ending with a letter or digit`);
  }
}

function checkValue(value: string, key: string): void {
  if (value !== "" && (value.length > 63 || !NAME.test(value))) {
    throw new LabelSelectorError(`label value "${value}" of "${key}": at most 63 characters of letters, digits, '-', '_' and '.', starting and ending with a letter or digit`);
  }
}

/** Splits on commas outside parentheses. */
function splitRequirements(text: string): string[] {
  const parts: string[] = [];
  let depth = 0;
  let current = "";
  for (const char of text) {
    if (char === "(") depth += 1;
    if (char === ")") depth -= 1;
    if (depth < 0) throw new LabelSelectorError(`unbalanced ')' in "${text}"`);
    if (char === "," && depth === 0) {
      parts.push(current);
      current = "";
    } else current += char;
  }
  if (depth !== 0) throw new LabelSelectorError(`unbalanced '(' in "${text}"`);
  parts.push(current);
  return parts.map((part) => part.trim());
}

function parseRequirement(text: string): SelectorRequirement {
  if (text === "") throw new LabelSelectorError("empty requirement (a stray comma?)");
  let match = /^!\s*([^\s=!(),<>]+)$/.exec(text);
  if (match) return { key: match[1] as string, operator: "!exists", values: [] };
  match = /^([^\s=!(),<>]+)\s+(in|notin)\s*\(([^()]*)\)$/.exec(text);
  if (match) {
    const values = (match[3] as string).split(",").map((value) => value.trim());
    if (values.length === 1 && values[0] === "") throw new LabelSelectorError(`"${text}": '${match[2]}' needs at least one value`);
    return { key: match[1] as string, operator: match[2] as "in" | "notin", values: [...new Set(values)].sort() };
  }
  match = /^([^\s=!(),<>]+)\s*(==|=|!=)\s*([^\s=!(),<>]*)$/.exec(text);
  if (match) return { key: match[1] as string, operator: match[2] === "!=" ? "!=" : "=", values: [match[3] as string] };
  match = /^([^\s=!(),<>]+)$/.exec(text);
  if (match) return { key: match[1] as string, operator: "exists", values: [] };
  if (/[<>]/.test(text)) throw new LabelSelectorError(`"${text}": '<' and '>' are not supported in label selectors`);
  throw new LabelSelectorError(`"${text}" is not a label requirement (key, !key, key=value, key!=value, key in (a,b), key notin (a,b))`);
}

/** Parses and checks a selector; throws LabelSelectorError naming what is wrong. An empty string selects everything. */
export function parseLabelSelector(text: string): SelectorRequirement[] {
  if (text.trim() === "") return [];
  const requirements = splitRequirements(text.trim()).map(parseRequirement);
  for (const requirement of requirements) {
    checkKey(requirement.key);
    for (const value of requirement.values) checkValue(value, requirement.key);
  }
  return requirements.sort((a, b) => (a.key < b.key ? -1 : a.key > b.key ? 1 : 0));
}

/** The selector as labels.Selector.String() writes it: requirements sorted by key, no spaces but around in/notin. */
export function formatLabelSelector(requirements: readonly SelectorRequirement[]): string {
  return requirements.map(({ key, operator, values }) => {
    switch (operator) {
      case "exists": return key;
      case "!exists": return `!${key}`;
      case "=": return `${key}=${values[0] ?? ""}`;
      case "!=": return `${key}!=${values[0] ?? ""}`;
      default: return `${key} ${operator} (${values.join(",")})`;
    }
  }).join(",");
}

/** The selector in canonical form, or a LabelSelectorError. */
export function canonicalLabelSelector(text: string): string {
  return formatLabelSelector(parseLabelSelector(text));
}

/** Whether an object with these labels is selected (as the apiserver decides it). */
export function selectorMatches(
  requirements: readonly SelectorRequirement[],
  labels: Readonly<Record<string, string>> | undefined,
): boolean {
  return requirements.every(({ key, operator, values }) => {
    const value = labels?.[key];
    switch (operator) {
      case "exists": return value !== undefined;
      case "!exists": return value === undefined;
      case "=": return value === values[0];
      case "!=": return value !== values[0];
      case "in": return value !== undefined && values.includes(value);
      case "notin": return value === undefined || !values.includes(value);
    }
  });
}

/** The Lease an unsharded controller's replicas elect their leader on; a shard's adds its selector's hash. */
export const CONTROLLER_LEASE_NAME = "ferry-controller-leader";

/** The main controller's selector in a sharded install (Flux's): the objects no shard claims. */
export const UNSHARDED_SELECTOR = "!sharding.fluxcd.io/key";

/**
 * The lease a controller watching `selector` elects its leader on, as Flux's leaderelection.GenerateID names it:
 * `<base>-<first 8 hex of sha256(selector)>`. Replicas of one shard share a lease and shards never contend for
 * one; the selector is hashed in canonical form, so two spellings of one shard (`key==a` and `key=a`) still share
 * it. For the shard form Flux documents (`sharding.fluxcd.io/key=shard1`) the canonical form is the text as
 * written, so the names equal Flux's.
 *
 * Without a selector, and for the main controller of a sharded install (`!sharding.fluxcd.io/key`), it is the
 * base alone (here Ferry differs from Flux): an unsharded controller reconciles everything the main one does, so
 * they must never lead at once. Going from one controller to shards (install --shards) rolls the Deployment, and
 * with one lease the new main pod waits until the old one hands it over, as any rollout does, instead of both
 * reconciling every object until the old pod is gone.
 */
export function shardLeaseName(base: string, selector: string | undefined): string {
  const canonical = selector === undefined ? "" : canonicalLabelSelector(selector);
  if (canonical === "" || canonical === UNSHARDED_SELECTOR) return base;
  return `${base}-${createHash("sha256").update(canonical).digest("hex").slice(0, 8)}`;
}
