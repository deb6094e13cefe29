// What `ferry diff kustomization` shows of a drifted object: the live object and the server-side dry-run result,
// stripped of what the server maintains on its own, as YAML, compared line by line. Pure.
import yaml from "js-yaml";
import { CHECKSUM_ANNOTATION } from "../src/apply/policy.ts";

const SERVER_METADATA = new Set(["managedFields", "resourceVersion", "generation", "uid", "creationTimestamp"]);
const MASK = "*****";
const LAST_APPLIED = "kubectl.kubernetes.io/last-applied-configuration";

type Json = null | boolean | number | string | Json[] | { [key: string]: Json };

/** Secret values must never reach a terminal or a CI log: equal values read the same, changed ones say so. */
function maskSecretData(live: Record<string, Json> | undefined, merged: Record<string, Json> | undefined) {
  for (const field of ["data", "stringData"]) {
    const before = live?.[field] as Record<string, Json> | undefined;
    const after = merged?.[field] as Record<string, Json> | undefined;
    for (const key of new Set([...Object.keys(before ?? {}), ...Object.keys(after ?? {})])) {
      const same = before?.[key] === after?.[key];
      if (before && key in before) before[key] = same ? MASK : `${MASK} (before)`;
      if (after && key in after) after[key] = same ? MASK : `${MASK} (after)`;
    }
  }
}

function stripped(object: unknown): Record<string, Json> | undefined {
  if (object === undefined || object === null) return undefined;
  const copy = structuredClone(object) as Record<string, Json> & { metadata?: Record<string, Json> };
  delete copy.status;
  if (copy.metadata) copy.metadata = Object.fromEntries(Object.entries(copy.metadata).filter(([key]) => !SERVER_METADATA.has(key)));
  // Ferry's own bookkeeping changes whenever anything else does; it is not a difference to show.
  const annotations = copy.metadata?.annotations as Record<string, Json> | undefined;
  if (annotations && CHECKSUM_ANNOTATION in annotations) {
    const rest = Object.fromEntries(Object.entries(annotations).filter(([key]) => key !== CHECKSUM_ANNOTATION));
    if (Object.keys(rest).length > 0) (copy.metadata as Record<string, Json>).annotations = rest;
    else delete (copy.metadata as Record<string, Json>).annotations;
  }
  return copy;
}

/** The live and merged objects as comparable YAML (sorted keys, server-maintained fields dropped, Secrets masked). */
export function comparableYaml(live: unknown, merged: unknown): { before: string; after: string } {
  const before = stripped(live);
  const after = stripped(merged);
  if (before?.kind === "Secret" || after?.kind === "Secret") {
    maskSecretData(before, after);
    // kubectl's client-side apply keeps the whole Secret, data included, in this annotation.
    for (const side of [before, after]) {
      const annotations = (side?.metadata as { annotations?: Record<string, Json> } | undefined)?.annotations;
      if (annotations?.[LAST_APPLIED] !== undefined) annotations[LAST_APPLIED] = MASK;
    }
  }
  const dump = (value: unknown) => (value === undefined ? "" : yaml.dump(value, { sortKeys: true, lineWidth: -1, noRefs: true }));
  return { before: dump(before), after: dump(after) };
}

export type DiffOp = { readonly kind: " " | "-" | "+"; readonly line: string };

// Past this many cells the quadratic table costs more than it is worth; the middle is shown as replaced instead.
const MAX_TABLE_CELLS = 25_000_000;

/** A longest-common-subsequence line diff; common head and tail are trimmed first, which keeps the table small. */
export function lineDiff(before: readonly string[], after: readonly string[]): DiffOp[] {
  let head = 0;
  while (head < before.length && head < after.length && before[head] === after[head]) head++;
  let tail = 0;
  const tailMatches = () => before[before.length - 1 - tail] === after[after.length - 1 - tail];
  while (tail < before.length - head && tail < after.length - head && tailMatches()) tail++;
  const a = before.slice(head, before.length - tail);
  const b = after.slice(head, after.length - tail);
  const middle: DiffOp[] = [];
  if (a.length * b.length > MAX_TABLE_CELLS) {
    middle.push(...a.map((line) => ({ kind: "-" as const, line })), ...b.map((line) => ({ kind: "+" as const, line })));
  } else {
    // lengths[i][j]: the LCS of a[i..] and b[j..], one flat array.
    const width = b.length + 1;
    const lengths = new Uint32Array((a.length + 1) * width);
    for (let i = a.length - 1; i >= 0; i--) {
      for (let j = b.length - 1; j >= 0; j--) {
        lengths[i * width + j] = a[i] === b[j]
          ? (lengths[(i + 1) * width + j + 1] ?? 0) + 1
          : Math.max(lengths[(i + 1) * width + j] ?? 0, lengths[i * width + j + 1] ?? 0);
      }
    }
    let i = 0;
    let j = 0;
    while (i < a.length || j < b.length) {
      if (i < a.length && j < b.length && a[i] === b[j]) {
        middle.push({ kind: " ", line: a[i++] as string });
        j++;
      } else if (i < a.length && (j === b.length || (lengths[(i + 1) * width + j] ?? 0) >= (lengths[i * width + j + 1] ?? 0))) {
        // On a tie the removal goes first, so a changed line reads "- old" then "+ new".
        middle.push({ kind: "-", line: a[i++] as string });
      } else {
        middle.push({ kind: "+", line: b[j++] as string });
      }
    }
  }
  const same = (line: string) => ({ kind: " " as const, line });
  return [...before.slice(0, head).map(same), ...middle, ...after.slice(after.length - tail).map(same)];
}

const indentOf = (line: string) => line.length - line.trimStart().length;

/** The keys enclosing line `index` (e.g. spec.template.spec), from the lines above it with less indentation. */
function enclosingPath(ops: readonly DiffOp[], index: number): string {
  const keys: string[] = [];
  let indent = indentOf(ops[index]?.line ?? "");
  for (let k = index - 1; k >= 0 && indent > 0; k--) {
    const op = ops[k] as DiffOp;
    if (op.kind === "+" && ops[index]?.kind !== "+") continue;
    if (op.kind === "-" && ops[index]?.kind === "+") continue;
    const lineIndent = indentOf(op.line);
    if (lineIndent >= indent || op.line.trim() === "") continue;
    const key = /^\s*(?:- )?([^:]+):/.exec(op.line)?.[1];
    if (key) keys.unshift(key.trim());
    indent = lineIndent;
  }
  return keys.join(".");
}

/**
 * A unified-style diff of two YAML texts: changed lines with `context` lines around them, each hunk headed by the
 * path of the keys that enclose it. Empty when the texts are equal.
 */
export function formatDiff(before: string, after: string, context = 2): string {
  const split = (text: string) => (text === "" ? [] : text.replace(/\n$/, "").split("\n"));
  const ops = lineDiff(split(before), split(after));
  const changed = ops.flatMap((op, index) => (op.kind === " " ? [] : [index]));
  if (changed.length === 0) return "";
  const hunks: Array<[number, number]> = [];
  for (const index of changed) {
    const start = Math.max(0, index - context);
    const end = Math.min(ops.length - 1, index + context);
    const last = hunks.at(-1);
    if (last && start <= last[1] + 1) last[1] = end;
    else hunks.push([start, end]);
  }
  const lines: string[] = [];
  for (const [start, end] of hunks) {
    const firstChange = changed.find((index) => index >= start) ?? start;
    const path = enclosingPath(ops, firstChange);
    lines.push(`@@ ${path || "(top level)"} @@`);
    for (let index = start; index <= end; index++) {
      const op = ops[index] as DiffOp;
      lines.push(`${op.kind} ${op.line}`);
    }
  }
  return `${lines.join("\n")}\n`;
}
