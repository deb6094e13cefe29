// Where `npm run image` keeps what it downloads and builds: ~/.cache/ferry-image (or FERRY_IMAGE_CACHE), outside
// the repository. Entries are named by their content digest and written atomically, so an interrupted download is
// never mistaken for a finished one and a second build reuses everything it can.
import { createHash, randomBytes } from "node:crypto";
import { mkdir, readFile, rename, writeFile } from "node:fs/promises";
import { homedir } from "node:os";
import { dirname, join } from "node:path";

export function cacheDir(): string {
  return process.env.FERRY_IMAGE_CACHE ?? join(homedir(), ".cache", "ferry-image");
}

export class DownloadError extends Error {
  constructor(message: string, options?: ErrorOptions) {
    super(message, options);
    this.name = "DownloadError";
  }
}

export async function writeAtomically(path: string, bytes: Buffer | string): Promise<void> {
  await mkdir(dirname(path), { recursive: true });
  const partial = `${path}.${randomBytes(4).toString("hex")}.partial`;
  await writeFile(partial, bytes);
  await rename(partial, path);
}

export async function readIfPresent(path: string): Promise<Buffer | undefined> {
  return readFile(path).catch((error: NodeJS.ErrnoException) => {
    if (error.code === "ENOENT") return undefined;
    throw error;
  });
}

export async function download(url: string): Promise<Buffer> {
  let response: Response;
  try {
    response = await fetch(url, { signal: AbortSignal.timeout(10 * 60_000) });
  } catch (error) {
    throw new DownloadError(`cannot download ${url}: ${(error as Error).message}`, { cause: error });
  }
  if (!response.ok) throw new DownloadError(`cannot download ${url}: HTTP ${response.status} ${response.statusText}`);
  return Buffer.from(await response.arrayBuffer());
}

/** Where content with this sha256 (hex) is kept. */
export function blobPath(sha256: string): string {
  return join(cacheDir(), "sha256", sha256);
}

/** The bytes of `url`, which must have this sha256 (hex) and size: from the cache, else downloaded and checked. */
export async function fetchVerified(url: string, expected: { sha256: string; size: number }, log: (line: string) => void): Promise<Buffer> {
  const path = blobPath(expected.sha256);
  const cached = await readIfPresent(path);
  if (cached && createHash("sha256").update(cached).digest("hex") === expected.sha256) return cached;
  log(`downloading ${url} (${(expected.size / 1024 / 1024).toFixed(1)} MiB)`);
  const bytes = await download(url);
  const actual = createHash("sha256").update(bytes).digest("hex");
  if (actual !== expected.sha256 || bytes.length !== expected.size) {
    throw new DownloadError(`${url} does not match its signed index: sha256 ${actual} (${bytes.length} bytes), expected ${expected.sha256} (${expected.size} bytes)`);
  }
  await writeAtomically(path, bytes);
  return bytes;
}
