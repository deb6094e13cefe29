// The OCI distribution client: manifests, blobs, tags and referrers, with every byte checked against its digest.
import { createHash } from "node:crypto";
import { createReadStream, createWriteStream } from "node:fs";
import { rename, rm } from "node:fs/promises";
import { Readable, Transform } from "node:stream";
import { pipeline } from "node:stream/promises";
import { ANSWER_LIMITS, formatBytes, formatLimit, readBounded } from "./bounded.ts";
import { IntegrityError, LimitExceededError, NotFoundError, RegistryResponseError, ResponseTooLargeError } from "./errors.ts";
import { type RegistryHttp as Http, RegistryHttp, type RegistryResponse, type TransportOptions } from "./http.ts";
import { type Descriptor, digestOf, type ImageIndex, isWellFormedDigest, MANIFEST_MEDIA_TYPES, OCI_INDEX, referrersTag } from "./oci.ts";
import { formatReference, type Reference } from "./reference.ts";

export const DEFAULT_MAX_MANIFEST_BYTES = ANSWER_LIMITS.manifest;
/**
 * Answers from a registry without the referrers API: 404 (the spec's), 400 and 405 (older registries, proxies), and
 * a 401 with no challenge (Harbor before 2.8).
 */
const NO_REFERRERS_API = new Set([400, 401, 404, 405]);
/** Blobs above this size are uploaded in chunks so a proxy's request-size limit cannot refuse them. */
export const DEFAULT_CHUNK_BYTES = 64 * 1024 * 1024;
/** The chunk size to fall back to when a registry refuses a chunk as too big: GHCR's limit is 4 MiB. */
const SMALL_CHUNK_BYTES = 4 * 1024 * 1024;
const MIN_CHUNK_BYTES = 16 * 1024;

export interface ClientOptions extends TransportOptions {
  readonly maxManifestBytes?: number;
  readonly chunkBytes?: number;
}

/** Blob content that can be read again from any offset, so failed requests can be retried. */
export interface BlobSource {
  readonly size: number;
  open(start?: number, end?: number): Readable;
}

export function blobFromBuffer(bytes: Buffer): BlobSource {
  return { size: bytes.length, open: (start = 0, end = bytes.length) => Readable.from([bytes.subarray(start, end)]) };
}

export function blobFromFile(path: string, size: number): BlobSource {
  return {
    size,
    open: (start = 0, end = size) => (end > start ? createReadStream(path, { start, end: end - 1 }) : Readable.from([])),
  };
}

export type ProgressCallback = (transferredBytes: number) => void;

export interface FetchedManifest {
  readonly bytes: Buffer;
  readonly descriptor: Descriptor;
}

function header(response: RegistryResponse, name: string): string | undefined {
  const value = response.headers[name];
  return Array.isArray(value) ? value[0] : value;
}

/** A blob the manifest says is bigger than the caller accepts is refused before it is requested. */
function refuseOverLimit(descriptor: Descriptor, maxBytes: number): void {
  if (descriptor.size > maxBytes) {
    throw new LimitExceededError(`blob ${descriptor.digest} is ${formatBytes(descriptor.size)}, over the ${formatLimit(maxBytes)} limit`);
  }
}

/** One page of a tag list: its tags, and the Link to the next page if the registry gave one. */
async function readTagPage(response: RegistryResponse, repository: string): Promise<{ tags: string[]; next: string | undefined }> {
  const bytes = await readBounded(response, ANSWER_LIMITS.tagPage, `tag list page of ${repository}`);
  let document: { tags?: unknown };
  try {
    document = JSON.parse(bytes.toString("utf8"));
  } catch (error) {
    throw new RegistryResponseError(`tag list of ${repository} is not JSON`, response.statusCode, { cause: error });
  }
  const tags = Array.isArray(document.tags) ? document.tags.filter((tag): tag is string => typeof tag === "string") : [];
  return { tags, next: header(response, "link")?.match(/<([^>]+)>\s*;\s*rel="?next"?/)?.[1] };
}

function repositoryScope(repository: string, push = false): string {
  return `repository:${repository}:${push ? "pull,push" : "pull"}`;
}

export class RegistryClient {
  readonly #options: ClientOptions;
  readonly #connections = new Map<string, Http>();
  /** For a view made by withSignal: the client whose connections it uses. */
  readonly #parent: RegistryClient | undefined;
  readonly #signal: AbortSignal | undefined;

  constructor(options: ClientOptions = {}, view?: { parent: RegistryClient; signal: AbortSignal | undefined }) {
    this.#options = options;
    this.#parent = view?.parent;
    this.#signal = view?.signal;
  }

  http(registry: string): Http {
    let http = this.#connections.get(registry);
    if (!http) {
      http = this.#parent ? this.#parent.http(registry).withSignal(this.#signal) : new RegistryHttp(registry, this.#options);
      this.#connections.set(registry, http);
    }
    return http;
  }

  /**
   * This client's connections, tokens and credentials, with every request also ended by `signal`: how reconciles
   * share one client, each bounded by its own deadline. Closing the view leaves the connections open.
   */
  withSignal(signal: AbortSignal | undefined): RegistryClient {
    return new RegistryClient(this.#options, { parent: this, signal });
  }

  async close(): Promise<void> {
    if (this.#parent) return;
    await Promise.all([...this.#connections.values()].map((http) => http.close()));
  }

  /** HEAD or GET of a manifest by tag or digest; a 404 becomes NotFoundError (body already drained). */
  async #manifestRequest(method: "HEAD" | "GET", reference: Reference, signal?: AbortSignal): Promise<RegistryResponse> {
    const response = await this.http(reference.registry).send({
      method,
      url: `/v2/${reference.repository}/manifests/${reference.digest ?? reference.tag ?? "latest"}`,
      scopes: [repositoryScope(reference.repository)],
      headers: { accept: MANIFEST_MEDIA_TYPES.join(", ") },
      ...(signal ? { signal } : {}),
    });
    if (response.statusCode === 404) {
      await response.body.dump();
      throw new NotFoundError(`manifest ${formatReference(reference)} not found`);
    }
    return response;
  }

  /** Resolves a tag or digest to the manifest's descriptor with one HEAD request (a GET if the registry is mute). */
  async resolve(reference: Reference, signal?: AbortSignal): Promise<Descriptor> {
    const response = await this.#manifestRequest("HEAD", reference, signal);
    if (response.statusCode !== 200) return this.http(reference.registry).fail(response, `resolving ${formatReference(reference)}`);
    await response.body.dump();
    const digest = header(response, "docker-content-digest");
    const mediaType = header(response, "content-type");
    const size = Number(header(response, "content-length"));
    if (!digest || !mediaType || Number.isNaN(size)) return (await this.fetchManifest(reference, signal)).descriptor;
    if (!isWellFormedDigest(digest)) {
      throw new IntegrityError(`registry answered a malformed or weak digest for ${formatReference(reference)}; only full sha256 and sha512 digests are accepted`);
    }
    if (reference.digest && digest !== reference.digest) {
      throw new IntegrityError(`registry answered digest ${digest} for ${formatReference(reference)}`);
    }
    return { mediaType: mediaType.split(";")[0]?.trim() ?? mediaType, digest, size };
  }

  /** Fetches a manifest and verifies it against the requested digest, or the registry's Docker-Content-Digest. */
  async fetchManifest(reference: Reference, signal?: AbortSignal): Promise<FetchedManifest> {
    const response = await this.#manifestRequest("GET", reference, signal);
    if (response.statusCode !== 200) {
      return this.http(reference.registry).fail(response, `fetching manifest ${formatReference(reference)}`);
    }
    const limit = this.#options.maxManifestBytes ?? DEFAULT_MAX_MANIFEST_BYTES;
    const bytes = await readBounded(response, limit, `manifest ${formatReference(reference)}`);
    const expected = reference.digest ?? header(response, "docker-content-digest");
    const digest = digestOf(bytes, expected ?? "sha256:");
    if (expected && digest !== expected) {
      const source = reference.digest ? "the requested digest" : "the registry's Docker-Content-Digest";
      throw new IntegrityError(`manifest ${formatReference(reference)} has digest ${digest}, not ${source} ${expected}`);
    }
    let mediaType = header(response, "content-type")?.split(";")[0]?.trim();
    try {
      mediaType = (JSON.parse(bytes.toString("utf8")) as { mediaType?: string }).mediaType ?? mediaType;
    } catch (error) {
      throw new IntegrityError(`manifest ${formatReference(reference)} is not valid JSON`, { cause: error });
    }
    return { bytes, descriptor: { mediaType: mediaType ?? "application/octet-stream", digest, size: bytes.length } };
  }

  /** Stores a manifest under a tag (or by digest) and returns its digest, checked against the registry's answer. */
  async pushManifest(reference: Reference, bytes: Buffer, mediaType: string, signal?: AbortSignal): Promise<string> {
    const http = this.http(reference.registry);
    const digest = digestOf(bytes, "sha256:");
    const target = reference.tag ?? reference.digest ?? digest;
    const response = await http.send({
      method: "PUT",
      url: `/v2/${reference.repository}/manifests/${target}`,
      scopes: [repositoryScope(reference.repository, true)],
      headers: { "content-type": mediaType },
      body: bytes,
      ...(signal ? { signal } : {}),
    });
    if (response.statusCode !== 201 && response.statusCode !== 200) {
      return http.fail(response, `pushing manifest ${formatReference(reference)}`);
    }
    await response.body.dump();
    const answered = header(response, "docker-content-digest");
    if (answered && answered !== digest) {
      throw new IntegrityError(`registry stored manifest ${formatReference(reference)} as ${answered}, expected ${digest}`);
    }
    return digest;
  }

  /** The size of a blob the repository already has, or undefined. */
  async blobSize(
    registry: string,
    repository: string,
    digest: string,
    options: { signal?: AbortSignal; forPush?: boolean } = {},
  ): Promise<number | undefined> {
    const http = this.http(registry);
    const { signal } = options;
    const response = await http.send({
      method: "HEAD",
      url: `/v2/${repository}/blobs/${digest}`,
      // Before an upload, ask for the push scope straight away: one token then serves the whole push.
      scopes: [repositoryScope(repository, options.forPush)],
      ...(signal ? { signal } : {}),
    });
    if (response.statusCode !== 200 && response.statusCode !== 404) return http.fail(response, `checking blob ${digest} in ${repository}`);
    await response.body.dump();
    if (response.statusCode === 404) return undefined;
    return Number(header(response, "content-length") ?? Number.NaN);
  }

  /**
   * Uploads a blob unless the repository has it: mounts from `mountFrom` when given, else uploads monolithically,
   * or in chunks above the chunk size.
   */
  async pushBlob(
    registry: string,
    repository: string,
    digest: string,
    source: BlobSource,
    options: { mountFrom?: string; onProgress?: ProgressCallback; signal?: AbortSignal } = {},
  ): Promise<"exists" | "mounted" | "uploaded"> {
    const signal = options.signal ? { signal: options.signal } : {};
    if ((await this.blobSize(registry, repository, digest, { ...signal, forPush: true })) !== undefined) {
      options.onProgress?.(source.size);
      return "exists";
    }
    const http = this.http(registry);
    const scopes = [repositoryScope(repository, true)];
    let startUrl = `/v2/${repository}/blobs/uploads/`;
    if (options.mountFrom && options.mountFrom !== repository) {
      startUrl += `?mount=${encodeURIComponent(digest)}&from=${encodeURIComponent(options.mountFrom)}`;
      scopes.push(repositoryScope(options.mountFrom));
    }
    const started = await http.send({ method: "POST", url: startUrl, scopes, ...signal, headers: { "content-length": "0" } });
    if (started.statusCode !== 201 && started.statusCode !== 202) return http.fail(started, `starting upload of ${digest} to ${repository}`);
    await started.body.dump();
    if (started.statusCode === 201) {
      options.onProgress?.(source.size);
      return "mounted";
    }
    let location = new URL(header(started, "location") ?? "", http.baseUrl);

    let chunkBytes = this.#options.chunkBytes ?? DEFAULT_CHUNK_BYTES;
    let offset = 0;
    // The finishing PUT carries no data after chunks: zot refuses a last piece there (BLOB_UPLOAD_INVALID).
    while (source.size > chunkBytes && offset < source.size) {
      const start = offset;
      const end = Math.min(source.size, start + chunkBytes);
      const patched = await http.send({
        method: "PATCH",
        url: location.href,
        scopes,
        headers: {
          "content-type": "application/octet-stream",
          "content-range": `${start}-${end - 1}`,
          "content-length": String(end - start),
        },
        body: () => source.open(start, end),
        ...signal,
      });
      // GHCR refuses chunks over 4 MiB with 416; proxies refuse big bodies with 413. Retry the chunk smaller.
      if ((patched.statusCode === 416 || patched.statusCode === 413) && chunkBytes > MIN_CHUNK_BYTES) {
        await patched.body.dump();
        chunkBytes = Math.max(MIN_CHUNK_BYTES, Math.min(SMALL_CHUNK_BYTES, Math.floor(chunkBytes / 2)));
        continue;
      }
      if (patched.statusCode !== 202 && patched.statusCode !== 204) return http.fail(patched, `uploading ${digest} bytes ${start}-${end - 1}`);
      await patched.body.dump();
      location = new URL(header(patched, "location") ?? location.href, http.baseUrl);
      offset = end;
      options.onProgress?.(offset);
    }
    location.searchParams.set("digest", digest);
    const remaining = source.size - offset;
    // A proxy can time out (or a connection drop) after the registry stored the blob; the retry on the same upload
    // session then finds it closed (404 BLOB_UPLOAD_UNKNOWN). Whether the blob is there decides, as ggcr does.
    const landed = async () => (await this.blobSize(registry, repository, digest, signal).catch(() => undefined)) === source.size;
    let finished: RegistryResponse | undefined;
    try {
      finished = await http.send({
        method: "PUT",
        url: location.href,
        scopes,
        headers: { "content-type": "application/octet-stream", "content-length": String(remaining) },
        body: () => source.open(offset, source.size),
        ...signal,
      });
    } catch (error) {
      if (!(await landed())) throw error;
    }
    if (finished && finished.statusCode !== 201) {
      const mayHaveLanded = finished.statusCode === 404 || finished.statusCode >= 500;
      if (!mayHaveLanded || !(await landed())) return http.fail(finished, `finishing upload of ${digest} to ${repository}`);
    }
    await finished?.body.dump();
    options.onProgress?.(source.size);
    return "uploaded";
  }

  async #openBlob(registry: string, repository: string, descriptor: Descriptor, signal?: AbortSignal) {
    if (!isWellFormedDigest(descriptor.digest)) {
      throw new IntegrityError(`blob digest in ${registry}/${repository} is malformed or weak; only full sha256 and sha512 digests are accepted`);
    }
    const http = this.http(registry);
    const response = await http.send({
      method: "GET",
      url: `/v2/${repository}/blobs/${descriptor.digest}`,
      scopes: [repositoryScope(repository)],
      ...(signal ? { signal } : {}),
    });
    if (response.statusCode === 404) {
      await response.body.dump();
      throw new NotFoundError(`blob ${descriptor.digest} not found in ${registry}/${repository}`);
    }
    if (response.statusCode !== 200) return http.fail(response, `fetching blob ${descriptor.digest}`);
    return response;
  }

  /**
   * Reads a blob into memory (a signature, or a layer small enough to hold), verifying size and digest with the
   * same checks and messages as fetchBlobToFile.
   */
  async fetchBlobBytes(
    registry: string,
    repository: string,
    descriptor: Descriptor,
    options: { maxBytes: number; onProgress?: ProgressCallback; signal?: AbortSignal },
  ): Promise<Buffer> {
    if (!Number.isSafeInteger(descriptor.size) || descriptor.size < 0) {
      throw new IntegrityError(`blob ${descriptor.digest} has an invalid size in its manifest: ${descriptor.size}`);
    }
    refuseOverLimit(descriptor, options.maxBytes);
    const response = await this.#openBlob(registry, repository, descriptor, options.signal);
    const bytes = Buffer.allocUnsafe(descriptor.size);
    let received = 0;
    try {
      for await (const chunk of response.body as AsyncIterable<Buffer>) {
        if (received + chunk.length > descriptor.size) {
          response.body.destroy();
          throw new IntegrityError(`blob ${descriptor.digest} is longer than the ${descriptor.size} bytes the manifest says`);
        }
        chunk.copy(bytes, received);
        received += chunk.length;
        options.onProgress?.(received);
      }
    } catch (error) {
      if (error instanceof IntegrityError) throw error;
      throw new IntegrityError(`download of blob ${descriptor.digest} failed: ${(error as Error).message}`, { cause: error });
    }
    if (received !== descriptor.size) {
      throw new IntegrityError(`blob ${descriptor.digest} was truncated: ${received} of ${descriptor.size} bytes`);
    }
    const digest = digestOf(bytes, descriptor.digest);
    if (digest !== descriptor.digest) throw new IntegrityError(`blob ${descriptor.digest} has digest ${digest}`);
    return bytes;
  }

  /**
   * Streams a blob to `destination`, verifying size and digest; the file appears only once verified, and
   * nothing is left behind on failure.
   */
  async fetchBlobToFile(
    registry: string,
    repository: string,
    descriptor: Descriptor,
    destination: string,
    options: { maxBytes?: number; onProgress?: ProgressCallback; signal?: AbortSignal } = {},
  ): Promise<void> {
    if (options.maxBytes !== undefined) refuseOverLimit(descriptor, options.maxBytes);
    const response = await this.#openBlob(registry, repository, descriptor, options.signal);
    const algorithm = descriptor.digest.split(":")[0] ?? "sha256";
    const hash = createHash(algorithm);
    let received = 0;
    const verify = new Transform({
      transform(chunk: Buffer, _encoding, callback) {
        received += chunk.length;
        if (received > descriptor.size) {
          callback(new IntegrityError(`blob ${descriptor.digest} is longer than the ${descriptor.size} bytes the manifest says`));
          return;
        }
        hash.update(chunk);
        options.onProgress?.(received);
        callback(null, chunk);
      },
    });
    const partial = `${destination}.partial`;
    try {
      await pipeline(response.body, verify, createWriteStream(partial, { mode: 0o600 }));
      if (received !== descriptor.size) {
        throw new IntegrityError(`blob ${descriptor.digest} was truncated: ${received} of ${descriptor.size} bytes`);
      }
      const digest = `${algorithm}:${hash.digest("hex")}`;
      if (digest !== descriptor.digest) throw new IntegrityError(`blob ${descriptor.digest} has digest ${digest}`);
      await rename(partial, destination);
    } catch (error) {
      await rm(partial, { force: true });
      if (error instanceof IntegrityError) throw error;
      throw new IntegrityError(`download of blob ${descriptor.digest} failed: ${(error as Error).message}`, { cause: error });
    }
  }

  /**
   * All tags of a repository, following Link pagination. A registry that pages on without end is refused past
   * ANSWER_LIMITS.tags tags or ANSWER_LIMITS.tagPages pages, rather than followed until memory runs out.
   */
  async listTags(registry: string, repository: string, options: { pageSize?: number; signal?: AbortSignal } = {}): Promise<string[]> {
    const http = this.http(registry);
    const { signal } = options;
    let tags: string[] = [];
    const pageSize = options.pageSize ?? 1000;
    let url: string | undefined = `/v2/${repository}/tags/list?n=${pageSize}`;
    let previousLast: string | undefined;
    for (let pages = 0; url; pages++) {
      if (pages === ANSWER_LIMITS.tagPages) {
        throw new ResponseTooLargeError(`tag list of ${repository} runs over ${ANSWER_LIMITS.tagPages} pages`, ANSWER_LIMITS.tagPages);
      }
      const response = await http.send({ method: "GET", url, scopes: [repositoryScope(repository)], ...(signal ? { signal } : {}) });
      if (response.statusCode === 404) {
        await response.body.dump();
        throw new NotFoundError(`repository ${registry}/${repository} not found`);
      }
      if (response.statusCode !== 200) return http.fail(response, `listing tags of ${repository}`);
      const page = await readTagPage(response, repository);
      if (tags.length + page.tags.length > ANSWER_LIMITS.tags) {
        throw new ResponseTooLargeError(`tag list of ${repository} has more than ${ANSWER_LIMITS.tags} tags`, ANSWER_LIMITS.tags);
      }
      tags = tags.concat(page.tags);
      url = page.next;
      // Some registries (zot 1.x) cut the page at n without a Link header; the spec's `last` parameter continues it.
      const lastTag = page.tags.at(-1);
      if (!url && page.tags.length === pageSize && lastTag !== undefined && lastTag !== previousLast) {
        url = `/v2/${repository}/tags/list?n=${pageSize}&last=${encodeURIComponent(lastTag)}`;
      }
      previousLast = lastTag;
    }
    return tags;
  }

  /**
   * Manifests whose subject is `digest`: the referrers API where the registry has it, else the referrers tag
   * schema (`sha256-<hex>` index), filtered by artifact type either way.
   */
  async referrers(
    registry: string,
    repository: string,
    digest: string,
    options: { artifactType?: string; signal?: AbortSignal } = {},
  ): Promise<Descriptor[]> {
    const http = this.http(registry);
    const query = options.artifactType ? `?artifactType=${encodeURIComponent(options.artifactType)}` : "";
    const response = await http.send({
      method: "GET",
      url: `/v2/${repository}/referrers/${digest}${query}`,
      scopes: [repositoryScope(repository)],
      headers: { accept: OCI_INDEX },
      bareUnauthorizedIsAnswer: true,
      ...(options.signal ? { signal: options.signal } : {}),
    });
    let index: ImageIndex | undefined;
    if (response.statusCode === 200) {
      index = JSON.parse((await readBounded(response, ANSWER_LIMITS.manifest, `referrers index of ${digest}`)).toString());
    } else if (NO_REFERRERS_API.has(response.statusCode)) {
      await response.body.dump();
      try {
        const fetched = await this.fetchManifest({ registry, repository, tag: referrersTag(digest) }, options.signal);
        // Some registries (GitLab) resolve an unknown sha256-<hex> tag to the manifest of that digest itself.
        if (fetched.descriptor.mediaType !== OCI_INDEX || fetched.descriptor.digest === digest) return [];
        index = JSON.parse(fetched.bytes.toString());
      } catch (error) {
        if (error instanceof NotFoundError) return [];
        throw error;
      }
    } else {
      return http.fail(response, `listing referrers of ${digest}`);
    }
    const manifests = index?.manifests ?? [];
    return options.artifactType ? manifests.filter((descriptor) => descriptor.artifactType === options.artifactType) : [...manifests];
  }
}
