// A small token service following the Docker registry token specification, so the bearer-token flow is tested
// against the real distribution registry: `GET /token?service=&scope=` with Basic credentials returns an ES256
// JWT (x5c-signed by a test CA the registry trusts) granting the requested actions.
import { randomBytes, sign } from "node:crypto";
import { readFileSync } from "node:fs";
import { createServer, type IncomingMessage, type ServerResponse } from "node:http";
import type { AddressInfo } from "node:net";

export interface TokenServiceOptions {
  /** PEM certificate and EC P-256 key that sign tokens; the registry's rootcertbundle must trust the certificate. */
  readonly certFile: string;
  readonly keyFile: string;
  readonly issuer: string;
  readonly users: Readonly<Record<string, string>>;
  /** Seconds until a token expires (negative issues already-expired tokens, for testing refresh). */
  lifetimeSeconds?: number;
  /** Whether anonymous callers get pull access. */
  readonly anonymousPull?: boolean;
}

export interface TokenService {
  readonly realm: string;
  /** Every token request seen, in order: who asked and for which scopes. */
  readonly issued: Array<{ readonly user: string | undefined; readonly scopes: readonly string[]; readonly granted: boolean }>;
  readonly options: TokenServiceOptions;
  stop(): Promise<void>;
}

function base64url(data: Buffer | string): string {
  return Buffer.from(data).toString("base64url");
}

function certificateDer(pem: string): string {
  const body = pem.match(/-----BEGIN CERTIFICATE-----([\s\S]+?)-----END CERTIFICATE-----/)?.[1];
  if (!body) throw new Error("token service certificate is not PEM");
  return body.replace(/\s+/g, "");
}

function basicUser(request: IncomingMessage): { user: string; password: string } | undefined {
  const header = request.headers.authorization;
  if (!header?.startsWith("Basic ")) return undefined;
  const decoded = Buffer.from(header.slice(6), "base64").toString("utf8");
  const colon = decoded.indexOf(":");
  return colon === -1 ? undefined : { user: decoded.slice(0, colon), password: decoded.slice(colon + 1) };
}

export async function startTokenService(options: TokenServiceOptions): Promise<TokenService> {
  const key = readFileSync(options.keyFile);
  const x5c = certificateDer(readFileSync(options.certFile, "utf8"));
  const issued: TokenService["issued"] = [];

  const handle = (request: IncomingMessage, response: ServerResponse) => {
    const url = new URL(request.url ?? "/", "http://token");
    const reply = (status: number, body: unknown) => {
      response.writeHead(status, { "content-type": "application/json" });
      response.end(JSON.stringify(body));
    };
    if (url.pathname !== "/token") return reply(404, { errors: [{ code: "NOT_FOUND" }] });
    const scopes = url.searchParams.getAll("scope").flatMap((scope) => scope.split(" ")).filter(Boolean);
    const credentials = basicUser(request);
    const known = credentials !== undefined && options.users[credentials.user] === credentials.password;
    if (credentials && !known) {
      issued.push({ user: credentials.user, scopes, granted: false });
      return reply(401, { errors: [{ code: "UNAUTHORIZED", message: "invalid username or password" }] });
    }
    issued.push({ user: credentials?.user, scopes, granted: true });
    const access = scopes.flatMap((scope) => {
      const [type, name, actions] = scope.split(":");
      if (!type || !name || actions === undefined) return [];
      const requested = actions.split(",").filter(Boolean);
      const allowed = known ? requested : options.anonymousPull ? requested.filter((action) => action === "pull") : [];
      return [{ type, name, actions: allowed }];
    });
    const now = Math.floor(Date.now() / 1000);
    const lifetime = options.lifetimeSeconds ?? 300;
    const header = { alg: "ES256", typ: "JWT", x5c: [x5c] };
    const claims = {
      iss: options.issuer,
      sub: credentials?.user ?? "",
      aud: url.searchParams.get("service") ?? "",
      exp: now + lifetime,
      nbf: now - 10,
      iat: now,
      jti: randomBytes(8).toString("hex"),
      access,
    };
    const signingInput = `${base64url(JSON.stringify(header))}.${base64url(JSON.stringify(claims))}`;
    const signature = sign("sha256", Buffer.from(signingInput), { key, dsaEncoding: "ieee-p1363" });
    const token = `${signingInput}.${base64url(signature)}`;
    return reply(200, { token, access_token: token, expires_in: lifetime, issued_at: new Date(now * 1000).toISOString() });
  };

  const server = createServer(handle);
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  const { port } = server.address() as AddressInfo;
  return {
    realm: `http://127.0.0.1:${port}/token`,
    issued,
    options,
    stop: () => new Promise<void>((resolve) => server.close(() => resolve())),
  };
}
