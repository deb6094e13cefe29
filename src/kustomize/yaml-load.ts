// Loading YAML that a tenant wrote, with bounds, so that one tenant's file cannot stall the controller's event loop.
// js-yaml itself parses in linear time (it caps nesting at 100 levels and merge keys at 10,000), and resolves an alias
// to the very object its anchor made; the blow-up of a "billion laughs" file comes later, when a consumer walks,
// copies or stringifies those shared objects. So the loaded documents are walked once here, counting every node each
// time it is reached, and refused as soon as that count outgrows the input; nothing is ever expanded to count it.
import yaml from "js-yaml";
import { type Disposition, FerryError } from "../errors.ts";
import { yamlErrorSummary } from "./yaml-error.ts";

/** The YAML is too big, invalid, or expands beyond its budget; only a change to the input can fix that. */
export class YamlInputError extends FerryError {
  readonly code = "YAML_INPUT";
  readonly disposition: Disposition = "stall";
}

/** The size of kustomize's largest accepted output: no single YAML text Ferry reads needs to be larger. */
export const DEFAULT_MAX_YAML_BYTES = 64 * 1024 * 1024;

// Plain YAML yields at most about one node and one character of text per input byte; ten times that leaves room for
// honest anchors (shared labels, repeated env blocks) while keeping whatever consumes the result linear in the input.
const EXPANSION_PER_BYTE = 10;
const EXPANSION_BASE = 10_000;

export interface YamlLoadOptions {
  /** Names the text in errors, such as a file path or "ConfigMap/cm after substitution"; never its content. */
  readonly origin: string;
  readonly maxBytes?: number;
  /** js-yaml's default schema unless given (the kustomization files are read with the YAML 1.2 core schema). */
  readonly schema?: yaml.Schema;
  /** Nodes and characters allowed per input byte once aliases are expanded (default 10). */
  readonly expansionPerByte?: number;
}

/** Every document in `text`, in order; empty documents are null. Throws YamlInputError. */
export function loadYamlDocuments(text: string, options: YamlLoadOptions): unknown[] {
  const bytes = checkSize(text, options);
  const documents = parsed(() => yaml.loadAll(text, undefined, loadOptions(options)), options.origin);
  checkExpansion(documents, bytes, options);
  return documents;
}

/** The one document in `text` (undefined when empty); more than one is an error, as with js-yaml's load. */
export function loadYamlDocument(text: string, options: YamlLoadOptions): unknown {
  const bytes = checkSize(text, options);
  const document = parsed(() => yaml.load(text, loadOptions(options)), options.origin);
  checkExpansion([document], bytes, options);
  return document;
}

function loadOptions(options: YamlLoadOptions): yaml.LoadOptions {
  return options.schema ? { schema: options.schema } : {};
}

function checkSize(text: string, options: YamlLoadOptions): number {
  const maxBytes = options.maxBytes ?? DEFAULT_MAX_YAML_BYTES;
  // Counting UTF-8 bytes costs a pass over the text; UTF-16 length bounds it from below, so huge texts stop early.
  const bytes = text.length > maxBytes ? text.length : Buffer.byteLength(text, "utf8");
  if (bytes > maxBytes) throw new YamlInputError(`${options.origin} is over the ${maxBytes}-byte limit for YAML`);
  return bytes;
}

function parsed<T>(load: () => T, origin: string): T {
  try {
    return load();
  } catch (error) {
    // The summary keeps js-yaml's reason and position but drops its quoted snippet, which can hold Secret values.
    throw new YamlInputError(`${origin} is not valid YAML: ${yamlErrorSummary(error)}`, { cause: error });
  }
}

/**
 * How large the documents are with every alias expanded, counted without expanding; throws past the budget. An alias
 * inside the node it refers to (`&a [*a]`) expands forever, so the budget catches it too.
 */
function checkExpansion(documents: readonly unknown[], inputBytes: number, options: YamlLoadOptions): void {
  const { origin } = options;
  const budget = (options.expansionPerByte ?? EXPANSION_PER_BYTE) * inputBytes + EXPANSION_BASE;
  let nodes = 0;
  let characters = 0;
  // An explicit stack, since alias chains can nest far deeper than the call stack allows.
  const stack: unknown[] = [...documents];
  while (stack.length > 0) {
    const value = stack.pop();
    if (++nodes > budget) throw new YamlInputError(`${origin} expands YAML aliases beyond ${budget} nodes`);
    if (typeof value === "string") characters += value.length;
    else if (ArrayBuffer.isView(value)) characters += value.byteLength; // !!binary
    else if (Array.isArray(value)) {
      // A loop rather than push(...value): spreading a list of a million items overflows the call stack.
      for (const item of value as unknown[]) stack.push(item);
    } else if (typeof value === "object" && value !== null && !(value instanceof Date)) {
      const mapping = value as Record<string, unknown>;
      for (const key of Object.keys(mapping)) {
        characters += key.length;
        stack.push(mapping[key]);
      }
    }
    if (characters > budget) throw new YamlInputError(`${origin} expands YAML aliases beyond ${budget} characters of text`);
  }
}
