// A kubeconfig a tenant put in a Secret (a Kustomization's spec.kubeConfig), read without trusting it. client-node's
// own loader reads the files a kubeconfig names (token-file, client-key, certificate-authority) and runs its exec
// plugins and auth providers while it loads, so a tenant could have the controller's own ServiceAccount token sent to a
// server of their choosing. Here the text is parsed as plain data, checked against an allow-list of fields, and only
// the current context, its cluster and its user are handed to client-node, built from the allowed fields alone.
import { type Cluster, type Context, KubeConfig, type User } from "@kubernetes/client-node";
import yaml from "js-yaml";
import { FerryError } from "../errors.ts";

/** A Secret holds at most 1 MiB, so a larger kubeconfig cannot be one a tenant meant. */
export const MAX_TENANT_KUBECONFIG_BYTES = 1024 * 1024;

/** The tenant's kubeconfig is refused: only a change to the Secret can help. Messages never quote credentials. */
export class TenantKubeconfigError extends FerryError {
  readonly code = "TENANT_KUBECONFIG_INVALID";
  readonly disposition = "stall";
}

export interface TenantKubeconfigOptions {
  /** Accept clusters[].cluster.proxy-url. Off by default: a proxy is the operator's choice of network path, not a tenant's. */
  readonly allowProxyUrl?: boolean;
  /**
   * Accept `insecure-skip-tls-verify: true`. Off by default, as Flux's --insecure-kubeconfig-tls is: without
   * verification anyone on the path can take the tenant's credentials and feed the controller a cluster of their own.
   */
  readonly allowInsecureTls?: boolean;
}

type Mapping = Record<string, unknown>;

interface Entry {
  readonly name: string;
  readonly where: string;
  readonly body: Mapping;
}

const INLINE_ONLY = "only inline credentials (token, client-certificate-data, client-key-data, username/password) are accepted";
// The Impersonate-* headers are the controller's to send (spec.serviceAccountName); a tenant's would override them.
const IMPERSONATION = new Set(["as", "as-groups", "as-uid", "as-user-extra"]);
const FILE_REFERENCES = new Set(["client-certificate", "client-key", "certificate-authority"]);
// Inert data client-node never reads: ignoring it lets kubectl-written kubeconfigs through unchanged.
const IGNORED = ["extensions"];

const TOP_LEVEL_FIELDS = ["apiVersion", "kind", "clusters", "contexts", "users", "current-context"];
const CLUSTER_FIELDS = ["server", "certificate-authority-data", "tls-server-name", "insecure-skip-tls-verify"];
const USER_FIELDS = ["token", "client-certificate-data", "client-key-data", "username", "password"];
const CONTEXT_FIELDS = ["cluster", "user", "namespace"];
const PROXY_PROTOCOLS = new Set(["http:", "https:", "socks:", "socks4:", "socks4a:", "socks5:", "socks5h:"]);
const BASE64 = /^(?:[A-Za-z0-9+/]{4})*(?:[A-Za-z0-9+/]{2}==|[A-Za-z0-9+/]{3}=)?$/;

/** The client-node configuration of a tenant's kubeconfig text, or a TenantKubeconfigError saying what to change. */
export function loadTenantKubeconfig(text: string, options: TenantKubeconfigOptions = {}): KubeConfig {
  const document = parseDocument(text);
  refuseUnlisted(document, "kubeconfig", TOP_LEVEL_FIELDS, ["preferences", ...IGNORED]);
  expectValue(document, "apiVersion", "v1");
  expectValue(document, "kind", "Config");
  const clusters = new Map(namedEntries(document, "clusters", "cluster").map((entry) => [entry.name, clusterOf(entry, options)]));
  const users = new Map(namedEntries(document, "users", "user").map((entry) => [entry.name, userOf(entry)]));
  const contexts = new Map(namedEntries(document, "contexts", "context").map((entry) => [entry.name, contextOf(entry)]));
  const context = currentContext(document, contexts);
  const cluster = clusters.get(context.cluster);
  if (!cluster) throw new TenantKubeconfigError(`context ${quoted(context.name)} names cluster ${quoted(context.cluster)}, which the kubeconfig does not define`);
  const user = users.get(context.user);
  if (!user) throw new TenantKubeconfigError(`context ${quoted(context.name)} names user ${quoted(context.user)}, which the kubeconfig does not define`);
  const config = new KubeConfig();
  config.loadFromOptions({ clusters: [cluster], users: [user], contexts: [context], currentContext: context.name });
  return config;
}

function parseDocument(text: string): Mapping {
  const bytes = Buffer.byteLength(text, "utf8");
  if (bytes > MAX_TENANT_KUBECONFIG_BYTES) {
    throw new TenantKubeconfigError(`the kubeconfig is ${bytes} bytes; a tenant kubeconfig may hold at most ${MAX_TENANT_KUBECONFIG_BYTES}`);
  }
  let document: unknown;
  try {
    document = yaml.load(text, { schema: yaml.CORE_SCHEMA, listener: refuseAnchors });
  } catch (error) {
    if (error instanceof TenantKubeconfigError) throw error;
    // No cause: js-yaml's message and mark quote the document, and a logged cause would carry its credentials along.
    throw new TenantKubeconfigError(`not a valid kubeconfig: YAML error${lineOf(error)}`);
  }
  if (!isMapping(document)) throw new TenantKubeconfigError("not a valid kubeconfig: the document is not a mapping");
  return document;
}

/**
 * Kubeconfigs have no use for anchors, and aliases are how a small document becomes a huge one for whoever walks it
 * (billion laughs). An anchor is refused when its node closes, before any alias could refer to it, so no alias in
 * an accepted document ever resolves.
 */
function refuseAnchors(event: yaml.EventType, state: yaml.State): void {
  if (event === "close" && typeof (state as yaml.State & { anchor?: unknown }).anchor === "string") {
    throw new TenantKubeconfigError(`not a valid kubeconfig: YAML anchors and aliases are not allowed in a tenant kubeconfig (line ${state.line + 1})`);
  }
}

function lineOf(error: unknown): string {
  const line = (error as { mark?: { line?: unknown } }).mark?.line;
  return typeof line === "number" ? ` on line ${line + 1}` : "";
}

function isMapping(value: unknown): value is Mapping {
  return typeof value === "object" && value !== null && !Array.isArray(value);
}

function refuseUnlisted(mapping: Mapping, where: string, allowed: readonly string[], ignored: readonly string[] = IGNORED): void {
  for (const key of Object.keys(mapping)) {
    if (allowed.includes(key) || ignored.includes(key)) continue;
    throw new TenantKubeconfigError(`${where}.${keyName(key)} is not allowed in a tenant kubeconfig: ${whyRefused(key, allowed)}`);
  }
}

function whyRefused(key: string, allowed: readonly string[]): string {
  if (key === "exec") return `exec plugins would run commands in the controller; ${INLINE_ONLY}`;
  if (key === "auth-provider") return `auth providers would run commands and read files in the controller; ${INLINE_ONLY}`;
  if (key === "certificate-authority") return "a CA file would be read from the controller's disk; use certificate-authority-data";
  if (FILE_REFERENCES.has(key) || /file$/i.test(key)) return `it references files, which would be read from the controller's disk; ${INLINE_ONLY}`;
  if (IMPERSONATION.has(key)) return "impersonation is set by the controller (spec.serviceAccountName), not by the kubeconfig";
  if (key === "proxy-url") return "this controller does not let tenants choose a proxy";
  return `the fields accepted here are ${allowed.join(", ")}`;
}

function expectValue(document: Mapping, key: string, expected: string): void {
  const value = document[key];
  if (value !== undefined && value !== null && value !== expected) throw new TenantKubeconfigError(`kubeconfig.${key} must be ${expected}`);
}

/** The entries of clusters, users or contexts: each a distinct name and its body, checked for shape only. */
function namedEntries(document: Mapping, list: string, bodyKey: string): Entry[] {
  const value = document[list] ?? [];
  if (!Array.isArray(value)) throw new TenantKubeconfigError(`kubeconfig.${list} must be a list`);
  const seen = new Set<string>();
  return value.map((item: unknown, index) => {
    if (!isMapping(item)) throw new TenantKubeconfigError(`${list}[${index}] must be a mapping`);
    const name = item.name;
    if (typeof name !== "string" || name === "") throw new TenantKubeconfigError(`${list}[${index}].name must be a non-empty string`);
    const where = `${list}[${index}] (${quoted(name)})`;
    refuseUnlisted(item, where, ["name", bodyKey], []);
    if (seen.has(name)) throw new TenantKubeconfigError(`${where}: the name is used twice in ${list}`);
    seen.add(name);
    const body = item[bodyKey] ?? {};
    if (!isMapping(body)) throw new TenantKubeconfigError(`${where}.${bodyKey} must be a mapping`);
    return { name, where, body };
  });
}

function clusterOf({ name, where, body }: Entry, options: TenantKubeconfigOptions): Cluster {
  refuseUnlisted(body, where, options.allowProxyUrl ? [...CLUSTER_FIELDS, "proxy-url"] : CLUSTER_FIELDS);
  const skipTLSVerify = optionalBoolean(body, "insecure-skip-tls-verify", where) ?? false;
  const caData = optionalBase64(body, "certificate-authority-data", where);
  if (skipTLSVerify && !options.allowInsecureTls) {
    throw new TenantKubeconfigError(`${where}.insecure-skip-tls-verify is not allowed in a tenant kubeconfig: this controller verifies every cluster's certificate; use certificate-authority-data`);
  }
  if (skipTLSVerify && caData) throw new TenantKubeconfigError(`${where}: certificate-authority-data and insecure-skip-tls-verify contradict each other`);
  const tlsServerName = optionalString(body, "tls-server-name", where);
  const proxyUrl = options.allowProxyUrl ? proxyUrlOf(body, where) : undefined;
  return withoutUndefined({ name, server: serverOf(body, where), skipTLSVerify, caData, tlsServerName, proxyUrl });
}

/** Only https: plain HTTP would send the tenant's credentials in clear. Flux accepts http://; Ferry does not. */
function serverOf(body: Mapping, where: string): string {
  const value = optionalString(body, "server", where);
  if (value === undefined) throw new TenantKubeconfigError(`${where}.server is required`);
  const url = URL.parse(value);
  if (!url) throw new TenantKubeconfigError(`${where}.server is not a URL`);
  if (url.protocol !== "https:") throw new TenantKubeconfigError(`${where}.server must be an https:// URL: plain HTTP would send the credentials in clear`);
  if (url.hostname === "") throw new TenantKubeconfigError(`${where}.server has no host`);
  if (url.username || url.password) throw new TenantKubeconfigError(`${where}.server must not carry credentials; put them in the user`);
  if (url.search || url.hash) throw new TenantKubeconfigError(`${where}.server must not have a query or fragment`);
  // client-node appends API paths to the server as it is, so one trailing slash is dropped as its own loader does.
  return url.href.replace(/\/$/, "");
}

function proxyUrlOf(body: Mapping, where: string): string | undefined {
  const value = optionalString(body, "proxy-url", where);
  if (value === undefined) return undefined;
  const url = URL.parse(value);
  if (!url || !PROXY_PROTOCOLS.has(url.protocol) || url.hostname === "") {
    throw new TenantKubeconfigError(`${where}.proxy-url must be an http, https or socks URL with a host`);
  }
  return url.href;
}

function userOf({ name, where, body }: Entry): User {
  refuseUnlisted(body, where, USER_FIELDS);
  const token = optionalString(body, "token", where);
  // It travels as an HTTP header value: a line break or a space (a pasted token's newline) would break the request.
  if (token !== undefined && !/^[\x21-\x7e]+$/.test(token)) throw new TenantKubeconfigError(`${where}.token must be printable ASCII without spaces or line breaks`);
  const certData = optionalBase64(body, "client-certificate-data", where);
  const keyData = optionalBase64(body, "client-key-data", where);
  if ((certData === undefined) !== (keyData === undefined)) {
    throw new TenantKubeconfigError(`${where} needs both client-certificate-data and client-key-data, or neither`);
  }
  const username = optionalString(body, "username", where);
  const password = optionalString(body, "password", where);
  if ((username === undefined) !== (password === undefined)) throw new TenantKubeconfigError(`${where} needs both username and password, or neither`);
  // Basic authentication joins the two with a colon, so a colon in the username would move the boundary.
  if (username?.includes(":")) throw new TenantKubeconfigError(`${where}.username must not contain ':'`);
  if (token !== undefined && username !== undefined) throw new TenantKubeconfigError(`${where} has both a token and a username/password; keep one`);
  return withoutUndefined({ name, token, certData, keyData, username, password });
}

interface ParsedContext extends Omit<Context, "user"> {
  readonly user?: string;
}

function contextOf({ name, where, body }: Entry): ParsedContext {
  refuseUnlisted(body, where, CONTEXT_FIELDS);
  const cluster = optionalString(body, "cluster", where);
  if (cluster === undefined) throw new TenantKubeconfigError(`${where}.cluster is required`);
  return withoutUndefined({ name, cluster, user: optionalString(body, "user", where), namespace: optionalString(body, "namespace", where) });
}

function currentContext(document: Mapping, contexts: ReadonlyMap<string, ParsedContext>): Context {
  const name = optionalString(document, "current-context", "kubeconfig");
  if (name === undefined) throw new TenantKubeconfigError("kubeconfig.current-context is required: it says which cluster and user to use");
  const context = contexts.get(name);
  if (!context) throw new TenantKubeconfigError(`kubeconfig.current-context names context ${quoted(name)}, which the kubeconfig does not define`);
  if (context.user === undefined) throw new TenantKubeconfigError(`context ${quoted(name)} must name a user`);
  return { ...context, user: context.user };
}

/** A string field; absent, null and "" all mean unset, as they do for kubectl. */
function optionalString(body: Mapping, key: string, where: string): string | undefined {
  const value = body[key];
  if (value === undefined || value === null || value === "") return undefined;
  if (typeof value !== "string") throw new TenantKubeconfigError(`${where}.${key} must be a string`);
  return value;
}

function optionalBoolean(body: Mapping, key: string, where: string): boolean | undefined {
  const value = body[key];
  if (value === undefined || value === null) return undefined;
  if (typeof value !== "boolean") throw new TenantKubeconfigError(`${where}.${key} must be true or false`);
  return value;
}

/** Standard base64, line breaks allowed (as Go's decoder allows them); returned without them for client-node. */
function optionalBase64(body: Mapping, key: string, where: string): string | undefined {
  const value = optionalString(body, key, where);
  if (value === undefined) return undefined;
  const compact = value.replace(/[\r\n]/g, "");
  if (!BASE64.test(compact)) throw new TenantKubeconfigError(`${where}.${key} is not valid base64`);
  return compact;
}

function withoutUndefined<T extends object>(value: T): T {
  return Object.fromEntries(Object.entries(value).filter(([, field]) => field !== undefined)) as T;
}

/** A tenant-chosen name, safe to show: one line, bounded, never mistaken for the message around it. */
function quoted(name: string): string {
  const shown = name.length > 64 ? `${name.slice(0, 64)}…` : name;
  return `'${shown.replace(/[\p{C}']/gu, "?")}'`;
}

function keyName(key: string): string {
  return /^[A-Za-z0-9_.-]{1,64}$/.test(key) ? key : quoted(key);
}
