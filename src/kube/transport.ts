// How Ferry's Kubernetes requests travel: client-node's generated APIs with this transport in place of its default
// one (node-fetch without a timeout or a size limit). A tenant's kubeConfig can name any server, so every request is
// bounded in time (its own timeout and the reconcile's deadline, src/deadline.ts) and in the bytes it will read.
import { request as httpRequest, type IncomingMessage } from "node:http";
import { request as httpsRequest } from "node:https";
import {
  type PromiseHttpLibrary,
  type RequestContext,
  ResponseContext,
  wrapHttpLibrary,
} from "@kubernetes/client-node";
import { kubeRequestSignal } from "../deadline.ts";
import { type Disposition, FerryError } from "../errors.ts";

/** The most a Kubernetes answer may hold; a list of every object of a kind in a large cluster stays far below it. */
export const MAX_KUBE_RESPONSE_BYTES = 128 * 1024 * 1024;

/** A Kubernetes API server sent more than MAX_KUBE_RESPONSE_BYTES: nothing of it is used. */
export class KubeResponseTooLargeError extends FerryError {
  readonly code = "KUBE_RESPONSE_TOO_LARGE";
  readonly disposition: Disposition = "retry";
}

function readBounded(response: IncomingMessage, limit: number, what: string): Promise<Buffer> {
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = [];
    let size = 0;
    response.on("data", (chunk: Buffer) => {
      size += chunk.length;
      if (size > limit) {
        response.destroy(new KubeResponseTooLargeError(`${what}: the answer exceeds ${limit / 1024 / 1024} MiB`));
        return;
      }
      chunks.push(chunk);
    });
    response.on("end", () => resolve(Buffer.concat(chunks)));
    response.on("error", reject);
    response.on("aborted", () => reject(new Error(`${what}: the connection closed before the answer was complete`)));
  });
}

function bodyBytes(body: ReturnType<RequestContext["getBody"]>): Buffer | undefined {
  if (body === undefined) return undefined;
  return Buffer.from(typeof body === "string" ? body : body.toString());
}

function headersOf(response: IncomingMessage): Record<string, string> {
  return Object.fromEntries(Object.entries(response.headers).map(([name, value]) => [name, Array.isArray(value) ? value.join(", ") : (value ?? "")]));
}

function send(context: RequestContext, limit: number): Promise<ResponseContext> {
  const url = new URL(context.getUrl());
  const what = `${context.getHttpMethod()} ${url.origin}${url.pathname}`;
  const signals = [kubeRequestSignal(), context.getSignal()].filter((signal): signal is AbortSignal => signal !== undefined);
  const body = bodyBytes(context.getBody());
  const request = url.protocol === "http:" ? httpRequest : httpsRequest;
  return new Promise((resolve, reject) => {
    const outgoing = request(url, {
      method: context.getHttpMethod(),
      // A known length, never chunked: the apiserver answered some chunked PATCH bodies on reused connections with 400.
      headers: { ...context.getHeaders(), ...(body ? { "Content-Length": String(body.length) } : {}) },
      agent: context.getAgent(),
      signal: AbortSignal.any(signals),
    }, (response) => {
      readBounded(response, limit, what).then((bytes) => {
        resolve(new ResponseContext(response.statusCode ?? 0, headersOf(response), {
          text: async () => bytes.toString("utf8"),
          binary: async () => bytes,
        }));
      }, reject);
    });
    outgoing.on("error", reject);
    outgoing.end(body);
  });
}

/** client-node's HttpLibrary with a deadline and a response size limit on every request. */
export function boundedTransport(limit = MAX_KUBE_RESPONSE_BYTES) {
  const library: PromiseHttpLibrary = { send: (context) => send(context, limit) };
  return wrapHttpLibrary(library);
}
