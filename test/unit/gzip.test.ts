// The parallel gzip must be plain gzip to every reader, and its bytes must not depend on scheduling or parallelism.
import assert from "node:assert/strict";
import { execFileSync } from "node:child_process";
import { createHash } from "node:crypto";
import { describe, test } from "node:test";
import { gunzipSync, gzipSync } from "node:zlib";
import { GZIP_BLOCK_BYTES, ParallelGzip } from "../../src/artifact/gzip.ts";

/** Manifest-like text with some incompressible bytes mixed in, reproducible from a seed. */
function sample(size: number, seed = 1): Buffer {
  const text = Buffer.from("apiVersion: apps/v1\nkind: Deployment\nmetadata:\n  name: podinfo\n  labels: {app: podinfo}\n");
  const bytes = Buffer.alloc(size);
  let state = seed;
  for (let offset = 0; offset < size; offset++) {
    state = (state * 1103515245 + 12345) % 2 ** 31;
    bytes[offset] = offset % 4096 < 64 ? state & 0xff : (text[offset % text.length] ?? 0);
  }
  return bytes;
}

async function gzip(input: Buffer, parallel: number, piece = 100_000): Promise<Buffer> {
  const output: Buffer[] = [];
  const compressor = new ParallelGzip((chunk) => output.push(chunk), parallel);
  for (let offset = 0; offset < input.length; offset += piece) await compressor.push(input.subarray(offset, offset + piece));
  await compressor.finish();
  return Buffer.concat(output);
}

describe("parallel gzip", () => {
  const sizes = [0, 1, GZIP_BLOCK_BYTES - 1, GZIP_BLOCK_BYTES, GZIP_BLOCK_BYTES + 1, Math.floor(3.5 * GZIP_BLOCK_BYTES)];

  test("decompresses to its input at every size around the block boundary", async () => {
    for (const size of sizes) {
      const input = sample(size);
      assert.ok(gunzipSync(await gzip(input, 3)).equals(input), `size ${size}`);
    }
  });

  test("gives the same bytes whatever the parallelism and the way the input is split", async () => {
    const input = sample(Math.floor(3.5 * GZIP_BLOCK_BYTES), 7);
    const digests = new Set<string>();
    for (const [parallel, piece] of [[1, 1 << 20], [2, 100_000], [4, 4096], [3, 777_777]] as const) {
      digests.add(createHash("sha256").update(await gzip(input, parallel, piece)).digest("hex"));
    }
    assert.equal(digests.size, 1);
  });

  test("one block compresses exactly as zlib's gzip, with a portable header", async () => {
    const input = sample(GZIP_BLOCK_BYTES - 1, 3);
    const expected = gzipSync(input);
    expected[9] = 0xff; // zlib writes the OS it was built on; Ferry writes "unknown"
    assert.ok((await gzip(input, 2)).equals(expected));
  });

  test("the system's gzip accepts a multi-block stream and checks its CRC and length", async () => {
    const input = sample(3 * GZIP_BLOCK_BYTES + 12_345, 5);
    const decompressed = execFileSync("gzip", ["-dc"], { input: await gzip(input, 2), maxBuffer: 64 * 1024 * 1024 });
    assert.ok(decompressed.equals(input));
  });
});
