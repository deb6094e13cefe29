// SOPS' file formats, read into ordered documents plus metadata and written back as plaintext: YAML (one or more
// documents, `sops` key in each), JSON, dotenv (`sops_`-prefixed flattened metadata) and binary (a JSON envelope
// with the content under `data`). INI is refused by name: its parser's rules (sections, quoting, the implicit
// DEFAULT section) decide the MAC, and guessing them would turn good files into false tamper reports.
import yaml from "js-yaml";
import { loadYamlDocuments } from "../kustomize/yaml-load.ts";
import { DecryptionError, UnsupportedDecryptionError } from "./errors.ts";
import { SopsMapping, type SopsValue } from "./sops-tree.ts";
import { floatNumber, SopsNumber } from "./sops-value.ts";

export type SopsFormat = "yaml" | "json" | "dotenv" | "ini" | "binary";

export interface EncryptedFile {
  readonly documents: SopsMapping[];
  /** The raw `sops` mapping, for readMetadata. */
  readonly metadata: unknown;
}

/** sops' FormatForPath, with Flux's addition that `.dockerconfigjson` is JSON. */
export function formatForPath(path: string): SopsFormat {
  if (/\.ya?ml$/.test(path)) return "yaml";
  if (path.endsWith(".json") || path.endsWith(".dockerconfigjson")) return "json";
  if (path.endsWith(".env")) return "dotenv";
  if (path.endsWith(".ini")) return "ini";
  return "binary";
}

/** The bytes that mark a file of each format as SOPS-encrypted (Flux's marker bytes). */
export const MARKERS: Readonly<Record<SopsFormat, string>> = {
  binary: "\"mac\": \"ENC[",
  json: "\"mac\": \"ENC[",
  dotenv: "sops_mac=ENC[",
  ini: "[sops]",
  yaml: "mac: ENC[",
};

/** The format whose marker `data` carries, as Flux detects an encrypted Secret value; undefined when none. */
export function detectFormat(data: string): SopsFormat | undefined {
  for (const format of ["yaml", "json", "dotenv", "ini"] as const) if (data.includes(MARKERS[format])) return format;
  return undefined;
}

// YAML 1.2 core scalars, with numbers kept as SopsNumber: their canonical text is what sops hashes, and JavaScript's
// doubles would round large integers. No timestamps: yaml.v3 hands sops those as strings too.
/** js-yaml's built-in scalar types, which its typings do not declare. */
const BUILTIN = (yaml as unknown as { types: Record<"int" | "float" | "null" | "bool", yaml.Type> }).types;

const intType = new yaml.Type("tag:yaml.org,2002:int", {
  kind: "scalar",
  resolve: (data: string) => BUILTIN.int.resolve(data),
  construct: (data: string) => new SopsNumber("int", canonicalInt(data)),
  instanceOf: SopsNumber,
  predicate: (value: object) => (value as SopsNumber).kind === "int",
  represent: (value: object) => (value as SopsNumber).canonical,
});
const floatType = new yaml.Type("tag:yaml.org,2002:float", {
  kind: "scalar",
  resolve: (data: string) => BUILTIN.float.resolve(data),
  construct: (data: string) => floatNumber(data) ?? new SopsNumber("float", data),
  instanceOf: SopsNumber,
  predicate: (value: object) => (value as SopsNumber).kind === "float",
  represent: (value: object) => yamlFloat((value as SopsNumber).canonical),
});
export const SOPS_SCHEMA = yaml.FAILSAFE_SCHEMA.extend({ implicit: [BUILTIN.null, BUILTIN.bool, intType, floatType] });

function canonicalInt(data: string): string {
  const sign = data.startsWith("-") ? "-" : "";
  const digits = data.replace(/^[-+]/, "");
  const value = /^0[box]/.test(digits) ? BigInt(digits) : BigInt(digits.replace(/^0+(?=\d)/, ""));
  return (sign ? -value : value).toString();
}

function yamlFloat(canonical: string): string {
  return ({ "+Inf": ".inf", "-Inf": "-.inf", NaN: ".nan" } as Record<string, string>)[canonical] ?? (canonical.includes(".") ? canonical : `${canonical}.0`);
}

/** Keys JavaScript objects reorder (array indexes); with more than one key their document order is lost. */
const INDEX_KEY = /^(0|[1-9]\d{0,9})$/;

function toTree(value: unknown, where: string): SopsValue {
  if (Array.isArray(value)) return value.map((item) => toTree(item, where));
  if (value instanceof SopsNumber || value === null || typeof value !== "object") return value as SopsValue;
  const keys = Object.keys(value);
  if (keys.length > 1 && keys.some((key) => INDEX_KEY.test(key))) {
    const numeric = keys.find((key) => INDEX_KEY.test(key));
    throw new UnsupportedDecryptionError(`${where}: a mapping has a numeric key ('${numeric}') whose position Ferry cannot keep, so the SOPS MAC cannot be checked`);
  }
  return new SopsMapping(keys.map((key) => [key, toTree((value as Record<string, unknown>)[key], where)]));
}

function loadStructured(text: string, where: string, maxBytes: number): EncryptedFile {
  const loaded = loadYamlDocuments(text, { origin: where, maxBytes, schema: SOPS_SCHEMA })
    .filter((document) => document !== null && document !== undefined);
  if (loaded.length === 0) throw new DecryptionError(`${where} is empty`);
  let metadata: unknown;
  const documents = loaded.map((document, index) => {
    if (typeof document !== "object" || Array.isArray(document)) throw new DecryptionError(`${where}: document ${index + 1} is not a mapping`);
    const { sops, ...rest } = document as Record<string, unknown>;
    // sops reads the metadata of the first document; the others carry copies.
    if (index === 0) metadata = sops;
    return toTree(rest, where) as SopsMapping;
  });
  if (metadata === undefined) throw new DecryptionError(`${where} has no sops metadata`);
  return { documents, metadata };
}

const MAX_FLAT_LIST = 1024;

/** sops' flattened metadata keys (`age__list_0__map_enc`) back into nested lists and mappings. */
function unflatten(entries: ReadonlyArray<[string, string]>, where: string): Record<string, unknown> {
  // No prototype: a hostile key such as `__proto__` must stay a plain entry.
  const root = Object.create(null) as Record<string, unknown>;
  for (const [flat, value] of entries) {
    const tokens = flat.split(/(__list_\d+|__map_)/).filter(Boolean);
    let node: Record<string, unknown> | unknown[] = root;
    let key: string | number = tokens.shift() ?? "";
    for (const token of tokens) {
      if (token === "__map_") continue;
      const list = /^__list_(\d+)$/.exec(token);
      if (list && Number(list[1]) >= MAX_FLAT_LIST) throw new DecryptionError(`${where}: sops metadata list index ${list[1]} is too large`);
      const next: Record<string, unknown> | unknown[] = list ? [] : (Object.create(null) as Record<string, unknown>);
      const existing = (node as Record<string | number, unknown>)[key];
      const child = (existing ?? next) as Record<string, unknown> | unknown[];
      (node as Record<string | number, unknown>)[key] = child;
      node = child;
      key = list ? Number(list[1]) : token;
    }
    (node as Record<string | number, unknown>)[key] = value;
  }
  return root;
}

function loadDotenv(text: string, where: string): EncryptedFile {
  const values: Array<[string, SopsValue]> = [];
  const metadata: Array<[string, string]> = [];
  for (const [index, line] of text.split("\n").entries()) {
    // Comments were encrypted as comments; sops' MAC leaves them out, and so does the plaintext Ferry writes.
    if (line === "" || line.startsWith("#")) continue;
    const at = line.indexOf("=");
    if (at < 0) throw new DecryptionError(`${where}: line ${index + 1} is not KEY=VALUE`);
    const key = line.slice(0, at);
    const value = line.slice(at + 1).replaceAll("\\n", "\n");
    if (key.startsWith("sops_")) metadata.push([key.slice("sops_".length), value]);
    else values.push([key, value]);
  }
  if (metadata.length === 0) throw new DecryptionError(`${where} has no sops metadata`);
  return { documents: [new SopsMapping(values)], metadata: unflatten(metadata, where) };
}

/** Reads an encrypted file of `format`; `maxBytes` bounds what the YAML reader accepts. */
export function loadEncrypted(text: string, format: SopsFormat, where: string, maxBytes: number): EncryptedFile {
  switch (format) {
    case "yaml":
    case "json":
    case "binary":
      return loadStructured(text, where, maxBytes);
    case "dotenv":
      return loadDotenv(text, where);
    case "ini":
      throw new UnsupportedDecryptionError(`${where}: SOPS-encrypted INI files are not supported by Ferry (YAML, JSON, dotenv and binary are)`);
  }
}

function toPlain(value: SopsValue): unknown {
  if (value instanceof SopsMapping) return Object.fromEntries(value.entries.map(([key, child]) => [key, toPlain(child)]));
  if (Array.isArray(value)) return value.map(toPlain);
  if (value instanceof Uint8Array) return Buffer.from(value).toString("utf8");
  return value;
}

function jsonText(value: SopsValue, where: string): string {
  if (value instanceof SopsMapping) return `{${value.entries.map(([key, child]) => `${JSON.stringify(key)}:${jsonText(child, where)}`).join(",")}}`;
  if (Array.isArray(value)) return `[${value.map((item) => jsonText(item, where)).join(",")}]`;
  if (value instanceof SopsNumber) {
    if (!/^-?\d/.test(value.canonical)) throw new DecryptionError(`${where}: ${value.canonical} cannot be written as JSON`);
    return value.canonical;
  }
  return JSON.stringify(toPlain(value));
}

function scalarText(value: SopsValue): string {
  if (value instanceof SopsNumber) return value.canonical;
  if (value instanceof Uint8Array) return Buffer.from(value).toString("utf8");
  return String(value ?? "");
}

function emitDotenv(documents: readonly SopsMapping[], where: string): string {
  return (documents[0]?.entries ?? []).map(([key, value]) => {
    if (value instanceof SopsMapping || Array.isArray(value)) throw new DecryptionError(`${where}: '${key}' is not a plain value and cannot be written as dotenv`);
    return `${key}=${scalarText(value).replaceAll("\n", "\\n")}\n`;
  }).join("");
}

function emitBinary(documents: readonly SopsMapping[], where: string): Buffer {
  const data = documents.length === 1 ? documents[0]?.get("data") : undefined;
  if (typeof data === "string") return Buffer.from(data, "utf8");
  if (data instanceof Uint8Array) return Buffer.from(data);
  throw new DecryptionError(`${where}: the decrypted content has no 'data' string to write as a binary file`);
}

/** The plaintext of decrypted documents in `format`. */
export function emitPlain(documents: readonly SopsMapping[], format: SopsFormat, where: string): Buffer {
  switch (format) {
    case "yaml":
      return Buffer.from(documents.map((document) => yaml.dump(toPlain(document), { schema: SOPS_SCHEMA, lineWidth: -1, noRefs: true })).join("---\n"));
    case "json":
      if (documents.length !== 1) throw new DecryptionError(`${where}: ${documents.length} documents cannot be written as one JSON file`);
      return Buffer.from(`${jsonText(documents[0] as SopsMapping, where)}\n`);
    case "dotenv":
      return Buffer.from(emitDotenv(documents, where));
    case "binary":
      return emitBinary(documents, where);
    case "ini":
      throw new UnsupportedDecryptionError(`${where}: SOPS-encrypted INI files are not supported by Ferry`);
  }
}
