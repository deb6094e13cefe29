// Every registry answer that is read into memory is read here, each kind with a ceiling: a registry (or whatever
// answers in its place) could otherwise stream an endless error document, token or tag list into the process.
// Past its ceiling a body is not read on: it is destroyed, which closes the connection instead of draining it.
import { FerryError } from "../errors.ts";
import { ResponseTooLargeError, TransportError } from "./errors.ts";
import type { ResponseData } from "./undici.ts";

const KIB = 1024;
const MIB = 1024 * KIB;
const GIB = 1024 * MIB;
const UNITS: ReadonlyArray<readonly [string, number]> = [["GiB", GIB], ["MiB", MIB], ["KiB", KIB]];

export const ANSWER_LIMITS = {
  /** An error document is read for a message; any registry's list of errors fits in its first 64 KiB. */
  errorBody: 64 * KIB,
  /** A token answer carries one token: those of Docker Hub, GHCR and ECR are a few KiB. */
  token: MIB,
  /** The image spec's recommendation for the largest manifest a registry accepts. */
  manifest: 4 * MIB,
  /** One tag-list page: some 100,000 tags of a typical length. */
  tagPage: 4 * MIB,
  /** Tags over all pages, and the pages followed to collect them (Docker Hub pages by 100). */
  tags: 100_000,
  tagPages: 1_000,
} as const;

/** "10 GiB (10737418240 bytes)", or "512 bytes": readable, and exact for whoever compares it with a manifest. */
export function formatBytes(bytes: number): string {
  const unit = UNITS.find(([, size]) => bytes >= size);
  if (!unit) return `${bytes} bytes`;
  return `${(bytes / unit[1]).toFixed(1).replace(/\.0$/, "")} ${unit[0]} (${bytes} bytes)`;
}

/** A limit as written in a message: "4 MiB", or "1000-byte" when it is no whole number of a unit. */
export function formatLimit(bytes: number): string {
  const unit = UNITS.find(([, size]) => bytes >= size && bytes % size === 0);
  return unit ? `${bytes / unit[1]} ${unit[0]}` : `${bytes}-byte`;
}

/**
 * Text from a registry fit for a message or a log line: control and format characters (terminal escapes, line
 * breaks, bidi overrides) become spaces, and at most `max` characters are kept.
 */
export function printableExcerpt(text: string, max = 200): string {
  const printable = text.replace(/[\p{Cc}\p{Cf}\p{Zl}\p{Zp}\s]+/gu, " ").trim();
  const characters = [...printable];
  return characters.length > max ? `${characters.slice(0, max).join("")}…` : printable;
}

/** Closes a body's connection without reading on; undici reports that as an error, which nobody needs to hear. */
function abandon(response: ResponseData): void {
  response.body.on("error", () => undefined);
  response.body.destroy();
}

/** Up to `limit` bytes of a body, and whether that was all of it. A longer body is destroyed, not drained. */
export async function readPrefix(response: ResponseData, limit: number): Promise<{ bytes: Buffer; complete: boolean }> {
  const chunks: Buffer[] = [];
  let total = 0;
  for await (const chunk of response.body as AsyncIterable<Buffer>) {
    if (total + chunk.length > limit) {
      chunks.push(chunk.subarray(0, limit - total));
      abandon(response);
      return { bytes: Buffer.concat(chunks), complete: false };
    }
    chunks.push(chunk);
    total += chunk.length;
  }
  return { bytes: Buffer.concat(chunks), complete: true };
}

/** The whole body, or ResponseTooLargeError naming `what` and the limit once it passes `limit` bytes. */
export async function readBounded(response: ResponseData, limit: number, what: string): Promise<Buffer> {
  const declared = Number(response.headers["content-length"] ?? Number.NaN);
  if (declared > limit) {
    abandon(response);
    throw new ResponseTooLargeError(`${what} is ${formatBytes(declared)}, over the ${formatLimit(limit)} limit`, limit);
  }
  let read: { bytes: Buffer; complete: boolean };
  try {
    read = await readPrefix(response, limit);
  } catch (error) {
    if (error instanceof FerryError) throw error;
    throw new TransportError(`reading ${what} failed: ${(error as Error).message}`, { cause: error });
  }
  if (!read.complete) throw new ResponseTooLargeError(`${what} is over the ${formatLimit(limit)} limit; the rest was not read`, limit);
  return read.bytes;
}
