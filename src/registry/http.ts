// The registry's HTTP edge: TLS and proxies, the Basic and Bearer-token auth flows (tokens cached per scope),
// and retries with backoff on 429/5xx and connection failures for requests whose body can be replayed.
import { readFileSync } from "node:fs";
import type { Readable } from "node:stream";
import { setImmediate as nextTurn, setTimeout as sleep } from "node:timers/promises";
import { Agent, type Dispatcher, EnvHttpProxyAgent, ProxyAgent, type RequestOptions, type ResponseData } from "./undici.ts";
import { keepHttpParserOnBaselineTier } from "./parser-tiering.ts";
import { ANSWER_LIMITS, printableExcerpt, readBounded, readPrefix } from "./bounded.ts";
import { parseChallenges } from "./challenge.ts";
import type { CredentialSource, Credentials } from "./credentials.ts";
import {
  AccessDeniedError,
  AuthenticationError,
  RegistryConfigError,
  RegistryResponseError,
  TransportError,
} from "./errors.ts";
import { apiHost } from "./reference.ts";
import {
  DEFAULT_RETRY_POLICY,
  isRetryableError,
  isRetryableStatus,
  parseRetryAfter,
  type RetryPolicy,
  retryDelay,
} from "./retry.ts";

export interface TransportOptions {
  /** Plain HTTP instead of TLS; only when the user marks the registry insecure. */
  readonly insecure?: boolean;
  readonly caFile?: string;
  readonly certFile?: string;
  readonly keyFile?: string;
  /** PEM material given directly (the controller reads it from Secrets); files and bytes may be combined. */
  readonly ca?: Buffer;
  readonly cert?: Buffer;
  readonly key?: Buffer;
  /** An explicit proxy, taking precedence over HTTP(S)_PROXY. */
  readonly proxy?: { readonly url: string; readonly username?: string; readonly password?: string };
  /** Inactivity timeout for headers and body, per request. */
  readonly timeoutMs?: number;
  /** Ends every request this client sends, retries and token requests included: a reconcile's deadline. */
  readonly signal?: AbortSignal;
  readonly retry?: RetryPolicy;
  readonly userAgent?: string;
  readonly credentials?: CredentialSource;
  /** Called before each retry, e.g. to tell the user why a transfer pauses. */
  readonly onRetry?: (event: { attempt: number; delayMs: number; reason: string }) => void;
}

/** A body that can be sent again on retry: bytes, or a function that opens a fresh stream. */
export type RequestBody = Buffer | string | (() => Readable);

export interface RegistryRequest {
  readonly method: "GET" | "HEAD" | "PUT" | "POST" | "PATCH" | "DELETE";
  /** A path such as /v2/<repo>/manifests/<ref>, or an absolute URL (upload Location headers). */
  readonly url: string;
  /** Token scopes, e.g. repository:team/app:pull,push. */
  readonly scopes: readonly string[];
  readonly headers?: Readonly<Record<string, string>>;
  readonly body?: RequestBody;
  readonly signal?: AbortSignal;
  /** Return a 401 that carries no challenge instead of raising: Harbor before 2.8 answers the referrers API so. */
  readonly bareUnauthorizedIsAnswer?: boolean;
}

export type RegistryResponse = ResponseData;

interface CachedToken {
  readonly header: string;
  readonly expiresAt: number;
}

function readPem(path: string, what: string): Buffer {
  try {
    return readFileSync(path);
  } catch (error) {
    throw new RegistryConfigError(`cannot read ${what} ${path}: ${(error as Error).message}`, { cause: error });
  }
}

function createDispatcher(options: TransportOptions): Dispatcher {
  keepHttpParserOnBaselineTier();
  const extraCas = [
    ...(options.caFile ? [readPem(options.caFile, "CA file")] : []),
    ...(options.ca ? [options.ca] : []),
  ];
  const cert = options.cert ?? (options.certFile ? readPem(options.certFile, "client certificate") : undefined);
  const key = options.key ?? (options.keyFile ? readPem(options.keyFile, "client key") : undefined);
  const tls = {
    // A private CA is added to the system roots, not put in their place, so public registries keep working.
    // node:tls is loaded here, not at start-up: plain-HTTP registries never need it, and TLS connections load it anyway.
    ...(extraCas.length > 0 ? { ca: [...process.getBuiltinModule("node:tls").rootCertificates, ...extraCas] } : {}),
    ...(cert ? { cert } : {}),
    ...(key ? { key } : {}),
  };
  // HTTP/1.1 only: the CLI bundle leaves node:http2 out of undici (see cli/bundle.ts), so it must never be offered.
  const timeouts = { headersTimeout: options.timeoutMs ?? 60_000, bodyTimeout: options.timeoutMs ?? 60_000, allowH2: false };
  if (options.proxy) {
    const { url, username, password } = options.proxy;
    return new ProxyAgent({
      ...timeouts,
      uri: url,
      requestTls: tls,
      ...(username !== undefined ? { token: basicHeader(username, password ?? "") } : {}),
    });
  }
  // Lower case wins, as curl reads them; an empty value counts as unset.
  const fromEnv = (name: string) => process.env[name.toLowerCase()] || process.env[name.toUpperCase()] || undefined;
  const httpProxy = fromEnv("http_proxy");
  const httpsProxy = fromEnv("https_proxy");
  if (httpProxy || httpsProxy) {
    return new EnvHttpProxyAgent({
      ...timeouts,
      connect: tls,
      requestTls: tls,
      ...(httpProxy ? { httpProxy } : {}),
      ...(httpsProxy ? { httpsProxy } : {}),
      noProxy: fromEnv("no_proxy") ?? "",
    });
  }
  return new Agent({ ...timeouts, connect: tls });
}

/** Tokens one registry connection keeps (one per repository and actions): enough for every source on a registry. */
const MAX_CACHED_TOKENS = 1024;

const REDIRECTS = new Set([301, 302, 303, 307, 308]);
const MAX_REDIRECTS = 5;

/** A URL for messages: without its query, where signed storage URLs carry their credentials. */
function shown(url: URL): string {
  return `${url.origin}${url.pathname}`;
}

export function basicHeader(username: string, password: string): string {
  return `Basic ${Buffer.from(`${username}:${password}`).toString("base64")}`;
}

/** The registry's error codes and messages, when `text` is its error document. */
function registryErrors(text: string): string | undefined {
  try {
    const errors = (JSON.parse(text) as { errors?: Array<{ code?: string; message?: string }> }).errors ?? [];
    return errors.map((error) => [error.code, error.message].filter(Boolean).join(": ")).join("; ") || undefined;
  } catch {
    return undefined; // not a registry error document
  }
}

/**
 * A short summary of an error answer for a message. Only the start of the body is read: the rest could be endless,
 * and its words reach terminals and logs, so only a printable excerpt of them is kept.
 */
async function errorDetail(response: RegistryResponse): Promise<string> {
  // Reading a body that was already drained throws inside undici, out of reach of any catch (nodejs/undici#5614).
  if (response.body.bodyUsed) return "";
  const read = await readPrefix(response, ANSWER_LIMITS.errorBody).catch(() => undefined);
  if (!read) return "";
  const text = read.bytes.toString("utf8");
  const excerpt = printableExcerpt((read.complete ? registryErrors(text) : undefined) ?? text);
  return read.complete || excerpt.endsWith("…") ? excerpt : `${excerpt}…`;
}

function tokenDocument(bytes: Buffer, origin: string): { token?: string; access_token?: string; expires_in?: number } {
  try {
    return JSON.parse(bytes.toString("utf8"));
  } catch (error) {
    throw new AuthenticationError(`token service ${origin} answered with something other than JSON`, { cause: error });
  }
}

/** What the views of one registry connection share: its connection pool, tokens and what it learned of the auth scheme. */
interface Session {
  readonly dispatcher: Dispatcher;
  /** Token requests by realm, service and scopes; concurrent requests for the same scopes share one fetch. */
  readonly tokens: Map<string, Promise<CachedToken>>;
  credentials: Promise<Credentials | undefined> | undefined;
  /** The registry's Bearer challenge, once seen: later scopes get tokens without a 401 round trip first. */
  bearer: { realm: string; service?: string } | undefined;
  basic: boolean;
}

export class RegistryHttp {
  readonly registry: string;
  readonly baseUrl: string;
  readonly #session: Session;
  readonly #options: TransportOptions;
  /** Views made by withSignal share the session and leave closing it to the connection they were made from. */
  readonly #view: boolean;

  constructor(registry: string, options: TransportOptions = {}, session?: Session) {
    this.registry = registry;
    this.baseUrl = `${options.insecure ? "http" : "https"}://${apiHost({ registry })}`;
    this.#options = options;
    this.#view = session !== undefined;
    this.#session = session
      ?? { dispatcher: createDispatcher(options), tokens: new Map(), credentials: undefined, bearer: undefined, basic: false };
  }

  /**
   * The same connection pool, tokens and credentials, with every request also ended by `signal` (a reconcile's
   * deadline): one connection shared by many reconciles, each bounded by its own deadline. Closing a view does nothing.
   */
  withSignal(signal: AbortSignal | undefined): RegistryHttp {
    const own = this.#options.signal;
    const combined = own && signal ? AbortSignal.any([own, signal]) : (signal ?? own);
    return new RegistryHttp(this.registry, { ...this.#options, ...(combined ? { signal: combined } : {}) }, this.#session);
  }

  async close(): Promise<void> {
    if (!this.#view) await this.#session.dispatcher.close();
  }

  /**
   * undici hands a finished connection back to its pool one event-loop turn after the response ends. A request
   * sent within that turn (the next one in a sequence: manifest, then layer) found no free connection and opened a
   * second one, which against a remote registry is a second TLS handshake. Waiting one turn lets the first be reused.
   */
  async #dispatch(options: RequestOptions): Promise<RegistryResponse> {
    await nextTurn();
    // undici closes the connection after every HEAD (nodejs/undici#258: some servers send a body with it), so each
    // tag resolve, the one request of an unchanged reconcile, paid a new TCP and TLS handshake. Registries answer
    // HEAD as HTTP says; the connection is kept (undici still closes it unless the answer allows keep-alive).
    return this.#session.dispatcher.request(options.method === "HEAD" ? { ...options, reset: false } : options);
  }

  #credentialsFor(): Promise<Credentials | undefined> {
    this.#session.credentials ??= this.#options.credentials?.(this.registry) ?? Promise.resolve(undefined);
    return this.#session.credentials;
  }

  async #authorization(scopes: readonly string[], signal?: AbortSignal): Promise<string | undefined> {
    const credentials = await this.#credentialsFor();
    if (credentials?.kind === "token") return `Bearer ${credentials.token}`;
    if (this.#session.bearer) return this.#token(this.#session.bearer, scopes, credentials, signal);
    if (this.#session.basic && credentials?.kind === "basic") return basicHeader(credentials.username, credentials.password);
    return undefined;
  }

  async #token(
    challenge: { realm: string; service?: string },
    scopes: readonly string[],
    credentials: Credentials | undefined,
    signal?: AbortSignal,
  ): Promise<string> {
    const key = `${challenge.realm}|${challenge.service ?? ""}|${[...scopes].sort().join(" ")}`;
    const pending = this.#session.tokens.get(key);
    if (pending) {
      const cached = await pending.catch(() => undefined);
      if (cached && cached.expiresAt > Date.now()) return cached.header;
    }
    const fetching = this.#fetchToken(challenge, scopes, credentials, signal);
    const tokens = this.#session.tokens;
    tokens.delete(key);
    tokens.set(key, fetching);
    // A client shared by many reconciles holds a token per repository: the oldest go first past the bound.
    for (const oldest of tokens.keys()) {
      if (tokens.size <= MAX_CACHED_TOKENS) break;
      tokens.delete(oldest);
    }
    fetching.catch(() => {
      if (this.#session.tokens.get(key) === fetching) this.#session.tokens.delete(key);
    });
    return (await fetching).header;
  }

  async #fetchToken(
    challenge: { realm: string; service?: string },
    scopes: readonly string[],
    credentials: Credentials | undefined,
    signal?: AbortSignal,
  ): Promise<CachedToken> {
    const url = new URL(challenge.realm);
    const headers: Record<string, string> = { "user-agent": this.#options.userAgent ?? "ferry" };
    let method: "GET" | "POST" = "GET";
    let body: string | undefined;
    if (credentials?.kind === "identity-token") {
      method = "POST";
      headers["content-type"] = "application/x-www-form-urlencoded";
      const form = new URLSearchParams({ grant_type: "refresh_token", refresh_token: credentials.token, client_id: "ferry" });
      if (challenge.service) form.set("service", challenge.service);
      form.set("scope", scopes.join(" "));
      body = form.toString();
    } else {
      if (challenge.service) url.searchParams.set("service", challenge.service);
      for (const scope of scopes) url.searchParams.append("scope", scope);
      if (credentials?.kind === "basic") headers.authorization = basicHeader(credentials.username, credentials.password);
    }
    let response: RegistryResponse;
    try {
      response = await this.#dispatch({
        origin: url.origin,
        path: `${url.pathname}${url.search}`,
        method,
        headers,
        ...(body !== undefined ? { body } : {}),
        ...(signal ? { signal } : {}),
      });
    } catch (error) {
      throw new TransportError(`cannot reach token service ${url.origin}: ${(error as Error).message}`, { cause: error });
    }
    if (response.statusCode === 401 || response.statusCode === 403) {
      const detail = await errorDetail(response);
      throw new AuthenticationError(
        `token service ${url.origin} rejected the credentials for ${this.registry} (HTTP ${response.statusCode})${detail ? `: ${detail}` : ""}`,
      );
    }
    if (response.statusCode !== 200) {
      const detail = await errorDetail(response);
      throw new RegistryResponseError(`token service ${url.origin} answered HTTP ${response.statusCode}: ${detail}`, response.statusCode);
    }
    const document = tokenDocument(await readBounded(response, ANSWER_LIMITS.token, `token answer from ${url.origin}`), url.origin);
    const token = document.token ?? document.access_token;
    if (!token) throw new AuthenticationError(`token service ${url.origin} returned no token`);
    // Renew a little early (the spec's default lifetime is 60 s), and never keep a token longer than it lives.
    const lifetime = Math.max(0, document.expires_in ?? 60) * 900;
    return { header: `Bearer ${token}`, expiresAt: Date.now() + lifetime };
  }

  /** Learns the auth scheme from a 401; returns whether a retry with new authorization makes sense. */
  async #handleUnauthorized(response: RegistryResponse, scopes: readonly string[], hadAuthorization: boolean): Promise<boolean> {
    const header = response.headers["www-authenticate"];
    const challenges = parseChallenges(Array.isArray(header) ? header.join(", ") : (header ?? ""));
    const credentials = await this.#credentialsFor();
    const bearer = challenges.find((challenge) => challenge.scheme === "bearer");
    if (bearer?.params.realm) {
      this.#session.bearer = { realm: bearer.params.realm, ...(bearer.params.service ? { service: bearer.params.service } : {}) };
      // A 401 despite a token means it expired early, was revoked or lacks a scope: drop it and fetch a new one.
      // The caller allows two such rounds per request, so a token that is refused again ends in an error.
      if (hadAuthorization) {
        const suffix = `|${[...scopes].sort().join(" ")}`;
        for (const key of [...this.#session.tokens.keys()]) if (key.endsWith(suffix)) this.#session.tokens.delete(key);
      }
      return true;
    }
    if (challenges.some((challenge) => challenge.scheme === "basic") && credentials?.kind === "basic") {
      const first = !this.#session.basic;
      this.#session.basic = true;
      return first || !hadAuthorization;
    }
    return false;
  }

  async #unauthorized(response: RegistryResponse): Promise<never> {
    const detail = await errorDetail(response);
    const credentials = await this.#credentialsFor();
    const hint = credentials
      ? "the credentials were rejected (wrong, expired or lacking access)"
      : "authentication is required: pass --creds or log in with docker login";
    throw new AuthenticationError(`${this.registry}: ${hint}${detail ? ` (${detail})` : ""}`);
  }

  #withClientSignal(request: RegistryRequest): RegistryRequest {
    const own = this.#options.signal;
    if (!own) return request;
    return { ...request, signal: request.signal ? AbortSignal.any([own, request.signal]) : own };
  }

  /**
   * Sends a request with authentication and retries. Returns the response for any final status except 401/403,
   * which become typed errors; the caller must consume or dump the body.
   */
  async send(input: RegistryRequest): Promise<RegistryResponse> {
    const request = this.#withClientSignal(input);
    let url = new URL(request.url, this.baseUrl);
    const registryOrigin = new URL(this.baseUrl).origin;
    const policy = this.#options.retry ?? DEFAULT_RETRY_POLICY;
    let authRetries = 0;
    let redirects = 0;
    // An upload Location from a registry behind a TLS-terminating proxy can say http://; the blob would go in clear.
    if (!this.#keepsTls(url)) {
      throw new TransportError(`refusing ${request.method} ${shown(url)}: ${this.registry} is served over HTTPS, this URL is not`);
    }
    for (let attempt = 1; ; attempt++) {
      // Credentials go to the registry only, never to the storage a blob download is redirected to.
      const atRegistry = url.origin === registryOrigin;
      const authorization = atRegistry ? await this.#authorization(request.scopes, request.signal) : undefined;
      const headers: Record<string, string> = { "user-agent": this.#options.userAgent ?? "ferry", ...request.headers };
      if (authorization) headers.authorization = authorization;
      const body = typeof request.body === "function" ? request.body() : request.body;
      let response: RegistryResponse;
      try {
        response = await this.#dispatch({
          origin: url.origin,
          path: `${url.pathname}${url.search}`,
          method: request.method,
          headers,
          ...(body !== undefined ? { body } : {}),
          ...(request.signal ? { signal: request.signal } : {}),
        });
      } catch (error) {
        if (request.signal?.aborted) throw new TransportError(`${request.method} ${shown(url)} aborted`, { cause: error });
        const delay = isRetryableError(error) ? retryDelay(attempt, undefined, policy) : undefined;
        if (delay === undefined) {
          throw new TransportError(`${request.method} ${shown(url)} failed: ${(error as Error).message}`, { cause: error });
        }
        this.#options.onRetry?.({ attempt, delayMs: delay, reason: (error as Error).message });
        await sleep(delay, undefined, request.signal ? { signal: request.signal } : {});
        continue;
      }

      if (REDIRECTS.has(response.statusCode) && (request.method === "GET" || request.method === "HEAD")) {
        url = await this.#redirectTarget(response, url, ++redirects);
        attempt--;
        continue;
      }
      if (!atRegistry && response.statusCode >= 400) {
        // Blob storage (S3, a CDN) speaks its own error format; a 403 there is usually an expired signed URL.
        // A busy or failing storage is asked again through the registry, which signs a fresh URL.
        await response.body.dump();
        const delay = isRetryableStatus(response.statusCode) ? retryDelay(attempt, undefined, policy) : undefined;
        if (delay === undefined) {
          const what = `${request.method} ${shown(url)} (${redirects > 0 ? "redirected from" : "outside"} ${this.registry})`;
          throw new RegistryResponseError(`${what}: HTTP ${response.statusCode}`, response.statusCode);
        }
        this.#options.onRetry?.({ attempt, delayMs: delay, reason: `blob storage answered HTTP ${response.statusCode}` });
        await sleep(delay, undefined, request.signal ? { signal: request.signal } : {});
        url = new URL(request.url, this.baseUrl);
        redirects = 0;
        continue;
      }
      if (response.statusCode === 401) {
        if (request.bareUnauthorizedIsAnswer && !response.headers["www-authenticate"]) return response;
        if (authRetries < 2 && (await this.#handleUnauthorized(response, request.scopes, authorization !== undefined))) {
          await response.body.dump();
          authRetries++;
          attempt--;
          continue;
        }
        return this.#unauthorized(response);
      }
      if (response.statusCode === 403) {
        const detail = await errorDetail(response);
        throw new AccessDeniedError(`${this.registry}: access denied to ${url.pathname}${detail ? ` (${detail})` : ""}`);
      }
      if (isRetryableStatus(response.statusCode)) {
        const retryAfterHeader = response.headers["retry-after"];
        const retryAfter = parseRetryAfter(Array.isArray(retryAfterHeader) ? retryAfterHeader[0] : retryAfterHeader);
        const delay = retryDelay(attempt, retryAfter, policy);
        if (delay !== undefined) {
          await response.body.dump();
          this.#options.onRetry?.({ attempt, delayMs: delay, reason: `HTTP ${response.statusCode}` });
          await sleep(delay, undefined, request.signal ? { signal: request.signal } : {});
          continue;
        }
      }
      return response;
    }
  }

  /** HTTPS always; plain HTTP only when the registry itself is plain HTTP (--insecure-registry). */
  #keepsTls(url: URL): boolean {
    return url.protocol === "https:" || (url.protocol === "http:" && this.#options.insecure === true);
  }

  /**
   * Where a redirect leads. Registries send blob downloads to their storage (S3, GCS, a CDN) this way. A redirect
   * may not leave TLS: from an HTTPS registry only to HTTPS, from a plain-HTTP (--insecure-registry) one anywhere.
   */
  async #redirectTarget(response: RegistryResponse, from: URL, hops: number): Promise<URL> {
    await response.body.dump();
    const location = response.headers.location;
    if (typeof location !== "string" || location === "") {
      throw new RegistryResponseError(`${shown(from)} answered HTTP ${response.statusCode} without a Location`, response.statusCode);
    }
    if (hops > MAX_REDIRECTS) throw new TransportError(`${shown(from)}: more than ${MAX_REDIRECTS} redirects`);
    const target = new URL(location, from);
    if (!this.#keepsTls(target)) {
      throw new TransportError(`${this.registry} redirected ${shown(from)} to ${target.protocol}//${target.host}, which is not HTTPS`);
    }
    return target;
  }

  /** Raises a typed error for an unexpected status, quoting the registry's error document. */
  async fail(response: RegistryResponse, what: string): Promise<never> {
    const detail = await errorDetail(response);
    throw new RegistryResponseError(`${what}: HTTP ${response.statusCode}${detail ? ` (${detail})` : ""}`, response.statusCode);
  }
}
