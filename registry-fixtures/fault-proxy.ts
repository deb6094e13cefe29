// A fault-injecting HTTP proxy in front of a real registry: it forwards every request unchanged unless a fault
// matches, so tests see real registry behaviour plus exactly the failure they ask for (429, 5xx, resets,
// truncated or corrupted bodies, a lying Docker-Content-Digest, answers of any size streamed without end).
import { createServer, type IncomingMessage, request as forward, type ServerResponse } from "node:http";
import { type AddressInfo, connect, type Socket } from "node:net";

export type FaultAction
  = | { readonly kind: "status"; readonly status: number; readonly headers?: Readonly<Record<string, string>> }
    | { readonly kind: "reset" }
    | { readonly kind: "truncate-body" }
    | { readonly kind: "corrupt-body" }
    | { readonly kind: "wrong-digest-header" }
    /** The registry gets and handles the request; the client gets this status instead, as from a proxy timing out. */
    | { readonly kind: "forward-then-status"; readonly status: number }
    /** A made-up answer (a manifest no registry would store); HEAD gets its headers and Content-Length only. */
    | { readonly kind: "answer"; readonly status: number; readonly headers?: Readonly<Record<string, string>>; readonly body: Buffer }
    /**
     * `prefix`, then `filler` repeated up to `bytes` in all, generated as it is sent (never held), at the pace the
     * client reads. Without `bytes` it never ends; `hangUpAfter` still ends it, so a client that never stops reading
     * cannot fill the test machine's disk.
     */
    | {
      readonly kind: "stream";
      readonly status: number;
      readonly headers?: Readonly<Record<string, string>>;
      readonly prefix?: string;
      readonly filler: string;
      readonly bytes?: number;
      readonly hangUpAfter?: number;
    }
    /** Every tag-list request gets `pageSize` tags not seen before and a Link to a next page, for ever. */
    | { readonly kind: "endless-tag-pages"; readonly pageSize: number }
    /**
     * Headers and `prefix` at once, then one byte of `filler` every `everyMs` until the client hangs up: never idle
     * long enough for an inactivity timeout, never finished.
     */
    | { readonly kind: "trickle"; readonly status: number; readonly prefix: string; readonly filler: string; readonly everyMs: number };

export interface Fault {
  readonly method?: string;
  /** Matched against the request path (with query). */
  readonly path: RegExp;
  /** Only requests whose Content-Length is over this many bytes (as registries that cap chunk sizes). */
  readonly bodyOver?: number;
  /** How many matching requests get the fault; unlimited when absent. */
  times?: number;
  readonly action: FaultAction;
}

export interface ProxiedRequest {
  readonly method: string;
  readonly path: string;
  readonly status: number;
  readonly fault?: FaultAction["kind"];
  /** Body bytes sent so far, for made-up and streamed answers. */
  readonly sentBytes?: number;
}

export interface FaultProxy {
  readonly host: string;
  readonly faults: Fault[];
  readonly requests: ProxiedRequest[];
  stop(): Promise<void>;
}

function takeFault(faults: Fault[], request: IncomingMessage): Fault | undefined {
  const fault = faults.find(
    (candidate) => (!candidate.method || candidate.method === request.method) && candidate.path.test(request.url ?? "") && candidate.times !== 0
      && (candidate.bodyOver === undefined || Number(request.headers["content-length"] ?? 0) > candidate.bodyOver),
  );
  if (fault && fault.times !== undefined) fault.times--;
  return fault;
}

/** Writes `prefix` then `filler` repeated, honouring backpressure; stops at `limit` bytes, or hangs up at `hangUpAfter`. */
function streamFiller(
  outgoing: ServerResponse,
  action: { prefix?: string; filler: string; bytes?: number; hangUpAfter?: number },
  onSent: (bytes: number) => void,
): void {
  const block = Buffer.from(action.filler.repeat(Math.ceil(65_536 / Buffer.byteLength(action.filler))));
  const limit = action.bytes ?? Number.POSITIVE_INFINITY;
  const hangUpAfter = action.hangUpAfter ?? Number.POSITIVE_INFINITY;
  let sent = 0;
  const send = (piece: Buffer) => {
    sent += piece.length;
    onSent(sent);
    return outgoing.write(piece);
  };
  const pump = () => {
    while (!outgoing.destroyed) {
      if (sent >= hangUpAfter) {
        outgoing.destroy();
        return;
      }
      if (sent >= limit) {
        outgoing.end();
        return;
      }
      if (!send(block.subarray(0, Math.min(block.length, limit - sent)))) {
        outgoing.once("drain", pump);
        return;
      }
    }
  };
  outgoing.on("error", () => undefined);
  if (action.prefix) send(Buffer.from(action.prefix));
  pump();
}

/** One page of made-up tags, numbered on from `first`, with a Link that asks for the page after it. */
function tagPage(path: string, first: number, pageSize: number): { status: number; headers: Record<string, string>; body: Buffer } {
  const repository = /^\/v2\/(.+)\/tags\/list/.exec(path)?.[1] ?? "unknown";
  const tags = Array.from({ length: pageSize }, (_, index) => `v0.0.${first + index}`);
  const last = tags.at(-1) ?? "";
  return {
    status: 200,
    headers: { "content-type": "application/json", link: `</v2/${repository}/tags/list?n=${pageSize}&last=${last}>; rel="next"` },
    body: Buffer.from(JSON.stringify({ name: repository, tags })),
  };
}

/** Starts a proxy on 127.0.0.1 forwarding to `upstream` (host:port of a plain-HTTP registry). */
export async function startFaultProxy(upstream: string): Promise<FaultProxy> {
  const [upstreamHost, upstreamPort] = upstream.split(":");
  const faults: Fault[] = [];
  const requests: ProxiedRequest[] = [];
  const sockets = new Set<Socket>();
  let tagsServed = 0;

  const handle = (incoming: IncomingMessage, outgoing: ServerResponse) => {
    const fault = takeFault(faults, incoming);
    const record = (status: number) =>
      requests.push({ method: incoming.method ?? "GET", path: incoming.url ?? "", status, ...(fault ? { fault: fault.action.kind } : {}) });
    const action = fault?.action;
    if (action?.kind === "status") {
      incoming.resume();
      record(action.status);
      outgoing.writeHead(action.status, { "content-type": "application/json", ...action.headers });
      outgoing.end(JSON.stringify({ errors: [{ code: "INJECTED", message: `fault proxy answered ${action.status}` }] }));
      return;
    }
    if (action?.kind === "answer" || action?.kind === "stream" || action?.kind === "endless-tag-pages") {
      incoming.resume();
      const entry = { method: incoming.method ?? "GET", path: incoming.url ?? "", status: 0, fault: action.kind, sentBytes: 0 };
      requests.push(entry);
      const counted = (bytes: number) => {
        entry.sentBytes = bytes;
      };
      if (action.kind === "stream") {
        entry.status = action.status;
        outgoing.writeHead(action.status, { "content-type": "application/octet-stream", ...action.headers });
        if (incoming.method === "HEAD") outgoing.end();
        else streamFiller(outgoing, action, counted);
        return;
      }
      const made = action.kind === "answer"
        ? { status: action.status, headers: { "content-type": "application/json", ...action.headers }, body: action.body }
        : tagPage(incoming.url ?? "", tagsServed, action.pageSize);
      if (action.kind === "endless-tag-pages") tagsServed += action.pageSize;
      entry.status = made.status;
      outgoing.writeHead(made.status, { ...made.headers, "content-length": String(made.body.length) });
      counted(incoming.method === "HEAD" ? 0 : made.body.length);
      outgoing.end(incoming.method === "HEAD" ? undefined : made.body);
      return;
    }
    if (action?.kind === "trickle") {
      record(action.status);
      outgoing.writeHead(action.status, { "content-type": "application/json" });
      outgoing.write(action.prefix);
      const drip = setInterval(() => outgoing.write(action.filler.slice(0, 1)), action.everyMs);
      outgoing.on("close", () => clearInterval(drip));
      outgoing.on("error", () => clearInterval(drip));
      return;
    }
    if (action?.kind === "reset") {
      record(0);
      incoming.socket.destroy();
      return;
    }
    const upstreamRequest = forward(
      { host: upstreamHost, port: Number(upstreamPort), method: incoming.method, path: incoming.url, headers: incoming.headers },
      (response) => {
        const headers = { ...response.headers };
        if (action?.kind === "wrong-digest-header" && headers["docker-content-digest"]) {
          headers["docker-content-digest"] = `sha256:${"0".repeat(64)}`;
        }
        if (action?.kind === "forward-then-status") {
          response.resume();
          record(action.status);
          outgoing.writeHead(action.status, { "content-type": "text/plain" });
          outgoing.end("upstream timed out");
          return;
        }
        record(response.statusCode ?? 0);
        outgoing.writeHead(response.statusCode ?? 502, headers);
        if (action?.kind === "truncate-body" || action?.kind === "corrupt-body") {
          const chunks: Buffer[] = [];
          response.on("data", (chunk: Buffer) => chunks.push(chunk));
          response.on("end", () => {
            const body = Buffer.concat(chunks);
            if (action.kind === "corrupt-body") {
              if (body.length > 0) body[Math.floor(body.length / 2)] = (body[Math.floor(body.length / 2)] ?? 0) ^ 0xff;
              outgoing.end(body);
            } else {
              // Send half of what Content-Length promised, then hang up.
              outgoing.write(body.subarray(0, Math.floor(body.length / 2)), () => outgoing.socket?.destroy());
            }
          });
          return;
        }
        response.pipe(outgoing);
      },
    );
    upstreamRequest.on("error", () => outgoing.destroy());
    incoming.pipe(upstreamRequest);
  };

  const server = createServer(handle);
  // As a forward proxy (HTTP_PROXY), clients tunnel with CONNECT; the tunnel is recorded and passed through.
  server.on("connect", (request: IncomingMessage, client: Socket, head: Buffer) => {
    const [host, port] = (request.url ?? "").split(":");
    requests.push({ method: "CONNECT", path: request.url ?? "", status: 200 });
    const target = connect(Number(port), host ?? "127.0.0.1", () => {
      client.write("HTTP/1.1 200 Connection Established\r\n\r\n");
      target.write(head);
      target.pipe(client);
      client.pipe(target);
    });
    const close = () => {
      target.destroy();
      client.destroy();
    };
    target.on("error", close);
    client.on("error", close);
    sockets.add(target);
    target.on("close", () => sockets.delete(target));
  });
  server.on("connection", (socket) => {
    sockets.add(socket);
    socket.on("close", () => sockets.delete(socket));
  });
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  const { port } = server.address() as AddressInfo;
  return {
    host: `127.0.0.1:${port}`,
    faults,
    requests,
    stop: () =>
      new Promise<void>((resolve) => {
        for (const socket of sockets) socket.destroy();
        server.close(() => resolve());
      }),
  };
}
