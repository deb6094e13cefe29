// The bounded reader every registry answer goes through, and the sizes and excerpts its messages show.
import assert from "node:assert/strict";
import { Readable } from "node:stream";
import { describe, test } from "node:test";
import { formatBytes, formatLimit, printableExcerpt, readBounded, readPrefix } from "../../src/registry/bounded.ts";
import { LimitExceededError, ResponseTooLargeError, TransportError } from "../../src/registry/errors.ts";
import type { RegistryResponse } from "../../src/registry/http.ts";

/** An answer whose body yields `chunks`, counting how many were pulled from it. */
function answer(chunks: readonly Buffer[], headers: Record<string, string> = {}) {
  let pulled = 0;
  const body = Readable.from((function* () {
    for (const chunk of chunks) {
      pulled++;
      yield chunk;
    }
  })());
  return { response: { statusCode: 200, headers, body } as unknown as RegistryResponse, body, pulled: () => pulled };
}

describe("bounded reads", () => {
  test("a body within the limit is read whole", async () => {
    const { response } = answer([Buffer.from("abc"), Buffer.from("def")]);
    assert.deepEqual(await readPrefix(response, 6), { bytes: Buffer.from("abcdef"), complete: true });
  });

  test("past the limit the prefix is kept and the body destroyed, not read on", async () => {
    const { response, body, pulled } = answer(Array.from({ length: 1000 }, () => Buffer.alloc(1024, "x")));
    const read = await readPrefix(response, 2500);
    assert.equal(read.complete, false);
    assert.equal(read.bytes.length, 2500);
    assert.ok(body.destroyed);
    assert.ok(pulled() < 10, `${pulled()} chunks pulled`);
  });

  test("readBounded names the answer and the limit; a declared length over it is refused unread", async () => {
    const streamed = answer([Buffer.alloc(5 * 1024 * 1024)]);
    await assert.rejects(readBounded(streamed.response, 4 * 1024 * 1024, "tag list page of team/app"), (error: unknown) =>
      error instanceof ResponseTooLargeError && error instanceof LimitExceededError && error.limit === 4 * 1024 * 1024
      && error.message === "tag list page of team/app is over the 4 MiB limit; the rest was not read");
    const declared = answer([Buffer.alloc(10)], { "content-length": String(2 * 1024 ** 3) });
    await assert.rejects(readBounded(declared.response, 1024 * 1024, "token answer from https://auth.example"), {
      name: "ResponseTooLargeError",
      message: "token answer from https://auth.example is 2 GiB (2147483648 bytes), over the 1 MiB limit",
    });
    assert.equal(declared.pulled(), 0);
  });

  test("a connection lost while reading is a TransportError naming the answer", async () => {
    const body = new Readable({ read() {
      this.destroy(Object.assign(new Error("other side closed"), { code: "UND_ERR_SOCKET" }));
    } });
    const response = { statusCode: 200, headers: {}, body } as unknown as RegistryResponse;
    await assert.rejects(readBounded(response, 1024, "manifest r.example/app:v1"), (error: unknown) =>
      error instanceof TransportError && error.message === "reading manifest r.example/app:v1 failed: other side closed");
  });
});

describe("sizes and excerpts in messages", () => {
  test("sizes are readable and exact; limits are round where they can be", () => {
    assert.equal(formatBytes(512), "512 bytes");
    assert.equal(formatBytes(1105), "1.1 KiB (1105 bytes)");
    assert.equal(formatBytes(10 * 1024 ** 3), "10 GiB (10737418240 bytes)");
    assert.equal(formatLimit(512 * 1024 * 1024), "512 MiB");
    assert.equal(formatLimit(64 * 1024), "64 KiB");
    assert.equal(formatLimit(1000), "1000-byte");
  });

  test("a registry's text loses terminal escapes, line breaks and bidi overrides, and is cut short", () => {
    assert.equal(printableExcerpt("\u001b[2J\u001b[31mdenied\r\n\u0007 now\u202e"), "[2J [31mdenied now");
    const long = printableExcerpt("é".repeat(1000));
    assert.equal([...long].length, 201);
    assert.ok(long.endsWith("é…"));
  });
});
