// Deterministic gzip that compresses on several thread-pool threads at once, as pigz does: the input is cut into
// fixed-size blocks, each raw-deflated with the 32 KiB before it as its dictionary and ended with a sync flush, so
// the concatenation is one valid deflate stream. Block boundaries depend only on the input, so the same bytes
// always give the same archive, whatever the scheduling. An input of one block compresses exactly as plain gzip.
import { availableParallelism } from "node:os";
import { promisify } from "node:util";
import { constants, crc32, deflateRaw, type ZlibOptions } from "node:zlib";

const deflateRawAsync = promisify<Buffer, ZlibOptions, Buffer>(deflateRaw);

export const GZIP_BLOCK_BYTES = 512 * 1024;
const DICTIONARY_BYTES = 32 * 1024;
const OUTPUT_CHUNK_BYTES = GZIP_BLOCK_BYTES + 64 * 1024;
const LEVEL = constants.Z_DEFAULT_COMPRESSION;
/** Magic, deflate, no flags, zero mtime, no extra flags, OS 255 ("unknown"): the header is the same on every machine. */
const HEADER = Buffer.from([0x1f, 0x8b, 0x08, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0xff]);

export class ParallelGzip {
  readonly #write: (chunk: Buffer) => void;
  readonly #parallel: number;
  /** Compressed blocks in input order; written out as soon as every block before them is done. */
  readonly #inFlight: Promise<Buffer>[] = [];
  #pending: Buffer[] = [];
  #pendingBytes = 0;
  #dictionary: Buffer | undefined;
  #crc = 0;
  #size = 0;

  // One block more than there are cores keeps every core busy while finished blocks are written out.
  /** `write` receives the gzip stream in order, synchronously from the promises this class returns. */
  constructor(write: (chunk: Buffer) => void, parallel = Math.min(4, availableParallelism() + 1)) {
    this.#write = write;
    this.#parallel = parallel;
    write(HEADER);
  }

  /** Takes `data` over: it may still be read after the promise resolves, so the caller must not change it. */
  async push(data: Buffer): Promise<void> {
    this.#crc = crc32(data, this.#crc);
    this.#size += data.length;
    this.#pending.push(data);
    this.#pendingBytes += data.length;
    while (this.#pendingBytes >= GZIP_BLOCK_BYTES) {
      // Whole blocks (as the tarball builder hands them) are compressed as they are, without a copy.
      const joined = this.#pending.length === 1 ? (this.#pending[0] as Buffer) : Buffer.concat(this.#pending, this.#pendingBytes);
      const block = joined.subarray(0, GZIP_BLOCK_BYTES);
      const rest = joined.subarray(GZIP_BLOCK_BYTES);
      this.#pending = rest.length > 0 ? [rest] : [];
      this.#pendingBytes = rest.length;
      await this.#compress(block, false);
    }
  }

  async finish(): Promise<void> {
    await this.#compress(Buffer.concat(this.#pending, this.#pendingBytes), true);
    this.#pending = [];
    while (this.#inFlight.length > 0) this.#write(await (this.#inFlight.shift() as Promise<Buffer>));
    const trailer = Buffer.alloc(8);
    trailer.writeUInt32LE(this.#crc >>> 0, 0);
    trailer.writeUInt32LE(this.#size % 2 ** 32, 4);
    this.#write(trailer);
  }

  /** Starts compressing `block`; waits (writing finished blocks out) while `parallel` blocks are in flight. */
  async #compress(block: Buffer, last: boolean): Promise<void> {
    const options: ZlibOptions = {
      level: LEVEL,
      chunkSize: OUTPUT_CHUNK_BYTES,
      ...(this.#dictionary ? { dictionary: this.#dictionary } : {}),
      ...(last ? {} : { finishFlush: constants.Z_SYNC_FLUSH }),
    };
    // A copy, so the dictionary does not keep a whole block of the caller's alive.
    this.#dictionary = Buffer.from(block.subarray(Math.max(0, block.length - DICTIONARY_BYTES)));
    const compressed = deflateRawAsync(block, options);
    compressed.catch(() => undefined); // awaited below, in order; this only keeps an early failure from being unhandled
    this.#inFlight.push(compressed);
    while (this.#inFlight.length >= this.#parallel) {
      this.#write(await (this.#inFlight.shift() as Promise<Buffer>));
    }
  }
}
