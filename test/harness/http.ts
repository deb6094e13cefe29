// A small HTTP(S) client for the harness's readiness probes and smoke checks, with per-call CA and auth.
import { request as httpRequest } from "node:http";
import { request as httpsRequest } from "node:https";

export interface ProbeResponse {
  readonly status: number;
  readonly headers: Readonly<Record<string, string | string[] | undefined>>;
  readonly body: Buffer;
}

export interface ProbeOptions {
  readonly method?: string;
  readonly ca?: string | Buffer;
  readonly bearerToken?: string;
  readonly basicAuth?: { readonly username: string; readonly password: string };
  readonly headers?: Readonly<Record<string, string>>;
  readonly body?: Buffer | string;
  readonly timeoutMs?: number;
}

export function probe(url: string, options: ProbeOptions = {}): Promise<ProbeResponse> {
  const target = new URL(url);
  const headers: Record<string, string> = { ...options.headers };
  if (options.bearerToken) headers.authorization = `Bearer ${options.bearerToken}`;
  if (options.basicAuth) {
    const { username, password } = options.basicAuth;
    headers.authorization = `Basic ${Buffer.from(`${username}:${password}`).toString("base64")}`;
  }
  const request = target.protocol === "https:" ? httpsRequest : httpRequest;
  return new Promise((resolve, reject) => {
    const req = request(
      target,
      { method: options.method ?? "GET", headers, ca: options.ca, timeout: options.timeoutMs ?? 5_000 },
      (res) => {
        const chunks: Buffer[] = [];
        res.on("data", (chunk: Buffer) => chunks.push(chunk));
        res.on("end", () =>
          resolve({ status: res.statusCode ?? 0, headers: res.headers, body: Buffer.concat(chunks) }),
        );
        res.on("error", reject);
      },
    );
    req.on("timeout", () => req.destroy(new Error(`request to ${url} timed out`)));
    req.on("error", reject);
    req.end(options.body);
  });
}
