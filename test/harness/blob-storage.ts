// The storage a registry redirects blob downloads to, as S3 or a CDN would serve them: a plain HTTP file server
// over the distribution registry's filesystem storage, which the registry's own "redirect" middleware points at.
// It records each request's Authorization header, so tests can check that registry credentials never reach it.
import { createReadStream } from "node:fs";
import { stat } from "node:fs/promises";
import { createServer } from "node:http";
import type { AddressInfo } from "node:net";
import { join, normalize } from "node:path";

export interface StorageRequest {
  readonly method: string;
  readonly path: string;
  readonly authorization?: string;
}

export interface BlobStorage {
  /** Base URL for the registry's redirect middleware. */
  readonly url: string;
  readonly requests: StorageRequest[];
  /** Answer the next `count` requests with this status instead of the file (e.g. 503, or 403 as for an expired URL). */
  failNext(status: number, count?: number): void;
  stop(): Promise<void>;
}

export async function startBlobStorage(root: string): Promise<BlobStorage> {
  const requests: StorageRequest[] = [];
  let failures: { status: number; count: number } | undefined;
  const server = createServer((request, response) => {
    const path = decodeURIComponent(new URL(request.url ?? "/", "http://storage").pathname);
    requests.push({ method: request.method ?? "GET", path, ...(request.headers.authorization ? { authorization: request.headers.authorization } : {}) });
    if (failures && failures.count > 0) {
      failures.count--;
      response.writeHead(failures.status).end();
      return;
    }
    const file = join(root, normalize(path));
    if (!file.startsWith(root)) {
      response.writeHead(400).end();
      return;
    }
    stat(file).then(
      (info) => {
        response.writeHead(200, { "content-length": String(info.size), "content-type": "application/octet-stream" });
        if (request.method === "HEAD") response.end();
        else createReadStream(file).pipe(response);
      },
      () => response.writeHead(404).end(),
    );
  });
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  const { port } = server.address() as AddressInfo;
  return {
    url: `http://127.0.0.1:${port}/`,
    requests,
    failNext: (status, count = 1) => {
      failures = { status, count };
    },
    stop: () => new Promise<void>((resolve) => {
      server.closeAllConnections();
      server.close(() => resolve());
    }),
  };
}
