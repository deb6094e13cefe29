// One watch request, over node:https, that the caller can abort at any moment, before the answer's headers too.
// client-node's Watch cannot be: it computes a timeout and then overwrites the signal that carried it, and it hands
// out its AbortController only once the headers arrive, so a connection that hangs before them hangs for ever.
import { type IncomingMessage, request as httpRequest } from "node:http";
import { request as httpsRequest, type RequestOptions } from "node:https";
import { createInterface } from "node:readline";
import type { KubeConfig } from "@kubernetes/client-node";
import { type Disposition, FerryError } from "../errors.ts";
import type { ResourceType } from "./client.ts";

/** The apiserver refused the watch or broke it off; `statusCode` 410 (Gone) means the resourceVersion is too old. */
export class WatchFailedError extends FerryError {
  readonly code = "KUBE_WATCH_FAILED";
  readonly disposition: Disposition = "retry";
  readonly statusCode: number | undefined;
  /** The server's Retry-After (429 while its storage initialises after a restart, 503), in milliseconds. */
  readonly retryAfterMs: number | undefined;

  constructor(message: string, details: { statusCode?: number; retryAfterMs?: number } = {}, options?: ErrorOptions) {
    super(message, options);
    this.statusCode = details.statusCode;
    this.retryAfterMs = details.retryAfterMs;
  }
}

export interface WatchHandlers {
  /** The apiserver accepted the watch (200 with headers). */
  readonly onOpen: () => void;
  /** Every event line, bookmarks included; ERROR events are passed through as they are. */
  readonly onEvent: (type: string, object: unknown) => void;
}

function retryAfterMs(response: IncomingMessage, body: string): number | undefined {
  const header = Number(response.headers["retry-after"]);
  if (Number.isFinite(header) && header >= 0) return header * 1000;
  try {
    const seconds = (JSON.parse(body) as { details?: { retryAfterSeconds?: number } }).details?.retryAfterSeconds;
    return typeof seconds === "number" ? seconds * 1000 : undefined;
  } catch {
    return undefined;
  }
}

function statusMessage(body: string): string | undefined {
  try {
    return (JSON.parse(body) as { message?: string }).message;
  } catch {
    return undefined;
  }
}

/** The error for an answer other than 200, from its status and (the start of) its Status body. */
function refusal(response: IncomingMessage, what: string): Promise<WatchFailedError> {
  return new Promise((resolve) => {
    let body = "";
    response.setEncoding("utf8");
    response.on("data", (chunk: string) => {
      if (body.length < 4096) body += chunk;
    });
    const settle = () => {
      const statusCode = response.statusCode ?? 0;
      const retryAfter = retryAfterMs(response, body);
      resolve(new WatchFailedError(`${what}: ${statusCode} ${statusMessage(body) ?? response.statusMessage ?? ""}`.trim(), {
        statusCode,
        ...(retryAfter !== undefined ? { retryAfterMs: retryAfter } : {}),
      }));
    };
    response.on("end", settle);
    response.on("error", settle);
  });
}

async function requestOptions(config: KubeConfig): Promise<RequestOptions> {
  const options: RequestOptions & { headers?: Record<string, string> } = {};
  await config.applyToHTTPSOptions(options);
  return { ...options, method: "GET", headers: { ...options.headers, accept: "application/json" } };
}

/**
 * Watches `type` from `resourceVersion` until the server ends the watch (resolves), it fails (rejects with
 * WatchFailedError), or `signal` aborts (rejects with the signal's reason).
 */
export async function watchResource(
  config: KubeConfig,
  type: ResourceType,
  resourceVersion: string,
  signal: AbortSignal,
  handlers: WatchHandlers,
  namespace?: string,
  labelSelector?: string,
): Promise<void> {
  const server = config.getCurrentCluster()?.server;
  if (!server) throw new WatchFailedError("the kubeconfig has no current cluster");
  const scope = namespace === undefined ? "" : `/namespaces/${encodeURIComponent(namespace)}`;
  const url = new URL(`${server.replace(/\/$/, "")}/apis/${type.group}/${type.version}${scope}/${type.plural}`);
  url.search = new URLSearchParams({
    watch: "true", allowWatchBookmarks: "true", timeoutSeconds: "300", resourceVersion, ...(labelSelector ? { labelSelector } : {}),
  }).toString();
  const what = `watch ${type.plural}.${type.group}`;
  const options = await requestOptions(config);
  signal.throwIfAborted();
  const send = url.protocol === "http:" ? httpRequest : httpsRequest;
  let abort = () => {};
  return new Promise<void>((resolve, reject) => {
    let response: IncomingMessage | undefined;
    const fail = (error: Error) => reject(error instanceof WatchFailedError ? error : new WatchFailedError(`${what}: ${error.message}`, {}, { cause: error }));
    // Not the request's own `signal` option: on a keep-alive socket whose answer has already ended, aborting
    // through it destroys the pooled socket with an error nobody listens to, which crashes the process.
    abort = () => {
      if (!response) outgoing.destroy();
      else if (!response.complete) response.destroy();
      reject(signal.reason);
    };
    signal.addEventListener("abort", abort, { once: true });
    const outgoing = send(url, options, (answer) => {
      response = answer;
      if (answer.statusCode !== 200) {
        void refusal(answer, what).then(reject);
        return;
      }
      handlers.onOpen();
      const lines = createInterface({ input: answer, crlfDelay: Infinity });
      lines.on("line", (line) => {
        if (line.trim() === "" || signal.aborted) return;
        let event: { type?: string; object?: unknown };
        try {
          event = JSON.parse(line) as typeof event;
        } catch (error) {
          answer.destroy(new WatchFailedError(`${what}: the server sent a line that is not JSON`, {}, { cause: error }));
          return;
        }
        handlers.onEvent(event.type ?? "", event.object);
      });
      // readline re-emits its input's errors; unheard, they would crash the process.
      answer.on("error", fail);
      lines.on("error", fail);
      // A watch the server ends (timeoutSeconds) ends with the last chunk; a killed apiserver just drops the line.
      lines.on("close", () => (answer.complete ? resolve() : fail(new Error("the connection closed mid-stream"))));
    });
    outgoing.on("error", fail);
    outgoing.end();
  }).finally(() => signal.removeEventListener("abort", abort));
}
