// Registry clients shared across reconciles: one per registry host, credentials and transport settings, so the
// reconciles of many OCIRepositories on one registry reuse its connection pool, the Bearer challenge it learned and
// its tokens, instead of paying a 401, a token request and a TLS handshake each time. The key holds a hash of the
// credentials and TLS material, never the material itself, and one tenant's credentials are never used for another's
// objects: different material is a different key. The cache is bounded (least recently used first out), and a client
// is closed once it is evicted and no reconcile still uses it.
import { createHash } from "node:crypto";
import { type ClientOptions, RegistryClient } from "./client.ts";

/** How many clients are kept by default: each holds an idle connection pool and a token cache. */
export const DEFAULT_MAX_CLIENTS = 128;

/** A piece of what decides a client's behaviour: settings as strings, credentials and PEM material as bytes. */
export type KeyPart = string | Buffer | number | boolean | undefined;

/**
 * The cache key for `registry` and everything else that decides what a client sends and trusts. Only a digest of the
 * parts is kept, so a key can be logged and compared without ever holding a password, token or private key.
 */
export function clientKey(registry: string, parts: readonly KeyPart[]): string {
  const hash = createHash("sha256");
  for (const part of parts) {
    // Each part is tagged with its type and length, so ["ab", "c"] and ["a", "bc"] never hash alike.
    const bytes = part === undefined ? Buffer.alloc(0) : Buffer.isBuffer(part) ? part : Buffer.from(String(part), "utf8");
    const tag = part === undefined ? "u" : Buffer.isBuffer(part) ? "b" : typeof part === "string" ? "s" : typeof part === "number" ? "n" : "t";
    hash.update(`${tag}${bytes.length}:`).update(bytes);
  }
  return `${registry}#${hash.digest("hex").slice(0, 32)}`;
}

interface Entry {
  readonly client: RegistryClient;
  /** Reconciles using the client right now: an evicted client is closed only when they are done. */
  leases: number;
  /** The objects whose last reconcile used this key. */
  readonly owners: Set<string>;
  evicted: boolean;
  closed: boolean;
}

export interface Lease {
  /** The shared client, bounded by the lease's signal. */
  readonly client: RegistryClient;
  /** Whether the client existed before this lease (its connections and tokens are reused). */
  readonly reused: boolean;
  /** Done with the client: call once, whatever the outcome. */
  release(): void;
}

export interface RegistryClientCacheOptions {
  readonly maxClients?: number;
  /** Makes a client; tests count them. */
  readonly create?: (options: ClientOptions) => RegistryClient;
}

export class RegistryClientCache {
  /** In least recently used order: the first is evicted first. */
  readonly #entries = new Map<string, Entry>();
  /** Which key each object's last reconcile used, so a changed Secret retires the client made for the old one. */
  readonly #owners = new Map<string, string>();
  readonly #maxClients: number;
  readonly #create: (options: ClientOptions) => RegistryClient;
  readonly #closing = new Set<Promise<void>>();

  constructor(options: RegistryClientCacheOptions = {}) {
    this.#maxClients = Math.max(1, options.maxClients ?? DEFAULT_MAX_CLIENTS);
    this.#create = options.create ?? ((clientOptions) => new RegistryClient(clientOptions));
  }

  get size(): number {
    return this.#entries.size;
  }

  has(key: string): boolean {
    return this.#entries.has(key);
  }

  /**
   * The client for `key` (made from `options()` if there is none), for one reconcile of `owner` (namespace/name),
   * its requests ended by `signal`. `options` must not carry a signal of its own: the client outlives the reconcile.
   */
  acquire(owner: string, key: string, options: () => ClientOptions, signal?: AbortSignal): Lease {
    let entry = this.#entries.get(key);
    const reused = entry !== undefined;
    if (entry) {
      this.#entries.delete(key);
      this.#entries.set(key, entry);
    } else {
      entry = { client: this.#create(options()), leases: 0, owners: new Set(), evicted: false, closed: false };
      this.#entries.set(key, entry);
    }
    const previous = this.#owners.get(owner);
    if (previous !== key) {
      if (previous !== undefined) this.#disown(owner, previous);
      this.#owners.set(owner, key);
      entry.owners.add(owner);
    }
    entry.leases += 1;
    this.#trim(key);
    const held = entry;
    let released = false;
    return {
      client: held.client.withSignal(signal),
      reused,
      release: () => {
        if (released) return;
        released = true;
        held.leases -= 1;
        if (held.evicted && held.leases === 0) this.#close(held);
      },
    };
  }

  /** The object is gone: its client goes too, unless another object uses it. */
  forget(owner: string): void {
    const key = this.#owners.get(owner);
    if (key !== undefined) this.#disown(owner, key);
  }

  /** Closes every client (waiting for none of the reconciles using them). */
  async close(): Promise<void> {
    for (const [key, entry] of this.#entries) this.#evict(key, entry, true);
    await Promise.all(this.#closing);
  }

  #disown(owner: string, key: string): void {
    if (this.#owners.get(owner) === key) this.#owners.delete(owner);
    const entry = this.#entries.get(key);
    if (!entry) return;
    entry.owners.delete(owner);
    // Nobody reconciles with these credentials any more (the Secret changed, or the object was deleted): drop them.
    if (entry.owners.size === 0) this.#evict(key, entry);
  }

  /** Evicts least recently used clients over the bound; never `keep`, the one just handed out. */
  #trim(keep: string): void {
    for (const [key, entry] of this.#entries) {
      if (this.#entries.size <= this.#maxClients) break;
      if (key !== keep) this.#evict(key, entry);
    }
  }

  #evict(key: string, entry: Entry, now = false): void {
    if (this.#entries.get(key) === entry) this.#entries.delete(key);
    for (const owner of entry.owners) if (this.#owners.get(owner) === key) this.#owners.delete(owner);
    entry.owners.clear();
    if (entry.evicted) return;
    entry.evicted = true;
    if (entry.leases === 0 || now) this.#close(entry);
  }

  #close(entry: Entry): void {
    if (entry.closed) return;
    entry.closed = true;
    const closing = entry.client.close().catch(() => undefined).finally(() => this.#closing.delete(closing));
    this.#closing.add(closing);
  }
}
