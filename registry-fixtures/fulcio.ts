// A local certificate authority speaking Fulcio's v2 API (POST /api/v2/signingCert), so keyless signing runs
// end to end without the network: it checks the OIDC token's signature against its own issuer key and the proof
// of possession, then issues a short-lived code-signing certificate naming the token's identity and issuer, signed
// by a test CA with openssl (-force_pubkey, since only the public key is sent).
import { execFile } from "node:child_process";
import { createPublicKey, generateKeyPairSync, type KeyObject, sign, verify } from "node:crypto";
import { readFile, writeFile } from "node:fs/promises";
import { createServer, type IncomingMessage, type ServerResponse } from "node:http";
import type { AddressInfo } from "node:net";
import { join } from "node:path";
import { promisify } from "node:util";

const exec = promisify(execFile);

export interface LocalFulcio {
  readonly url: string;
  readonly issuerUrl: string;
  /** Mints an OIDC token as the local issuer would, for `sub` (a URI identity) or `email`. */
  mintToken(claims: { sub: string; email?: string }): string;
  readonly issued: string[];
  stop(): Promise<void>;
}

function base64url(data: Buffer | string): string {
  return Buffer.from(data).toString("base64url");
}

function decodeToken(token: string, issuerKey: KeyObject): Record<string, string> {
  const [header, payload, signature] = token.split(".");
  if (!header || !payload || !signature) throw new Error("malformed token");
  const valid = verify("sha256", Buffer.from(`${header}.${payload}`), { key: issuerKey, dsaEncoding: "ieee-p1363" }, Buffer.from(signature, "base64url"));
  if (!valid) throw new Error("token signature is invalid");
  return JSON.parse(Buffer.from(payload, "base64url").toString("utf8"));
}

async function readBody(request: IncomingMessage): Promise<string> {
  const chunks: Buffer[] = [];
  for await (const chunk of request) chunks.push(chunk as Buffer);
  return Buffer.concat(chunks).toString("utf8");
}

export async function startLocalFulcio(options: { dir: string; caCertFile: string; caKeyFile: string }): Promise<LocalFulcio> {
  const issuerKeys = generateKeyPairSync("ec", { namedCurve: "prime256v1" });
  const issued: string[] = [];
  let serial = 0;
  let issuerUrl = "";

  const handle = async (request: IncomingMessage, response: ServerResponse) => {
    const reply = (status: number, body: unknown) => {
      response.writeHead(status, { "content-type": "application/json" });
      response.end(JSON.stringify(body));
    };
    if (request.method !== "POST" || request.url !== "/api/v2/signingCert") return reply(404, { message: "not found" });
    try {
      const body = JSON.parse(await readBody(request));
      const claims = decodeToken(body.credentials?.oidcIdentityToken ?? "", issuerKeys.publicKey);
      const identity = claims.email ?? claims.sub ?? "";
      const publicKeyPem: string = body.publicKeyRequest?.publicKey?.content ?? "";
      const proof = Buffer.from(body.publicKeyRequest?.proofOfPossession ?? "", "base64");
      if (!verify("sha256", Buffer.from(identity), createPublicKey(publicKeyPem), proof)) {
        return reply(400, { message: "proof of possession does not verify" });
      }
      const name = `fulcio-${serial++}`;
      await writeFile(join(options.dir, `${name}.pub`), publicKeyPem);
      const san = claims.email ? `email:${claims.email}` : `URI:${claims.sub}`;
      await writeFile(
        join(options.dir, `${name}.ext`),
        [`subjectAltName=critical,${san}`, "extendedKeyUsage=codeSigning", "keyUsage=critical,digitalSignature", `1.3.6.1.4.1.57264.1.8=ASN1:UTF8String:${issuerUrl}`, ""].join("\n"),
      );
      // openssl needs a request to sign; its key is replaced by the requester's public key.
      await exec("openssl", ["req", "-new", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes", "-keyout", `${name}.throwaway.key`, "-out", `${name}.csr`, "-subj", "/O=sigstore.dev"], { cwd: options.dir });
      await exec(
        "openssl",
        ["x509", "-req", "-in", `${name}.csr`, "-force_pubkey", `${name}.pub`, "-CA", options.caCertFile, "-CAkey", options.caKeyFile, "-CAcreateserial", "-days", "1", "-extfile", `${name}.ext`, "-out", `${name}.crt`],
        { cwd: options.dir },
      );
      const leaf = await readFile(join(options.dir, `${name}.crt`), "utf8");
      const ca = await readFile(options.caCertFile, "utf8");
      issued.push(identity);
      return reply(201, { signedCertificateEmbeddedSct: { chain: { certificates: [leaf, ca] } } });
    } catch (error) {
      return reply(401, { message: (error as Error).message });
    }
  };

  const server = createServer((request, response) => void handle(request, response));
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  const { port } = server.address() as AddressInfo;
  const url = `http://127.0.0.1:${port}`;
  issuerUrl = `${url}/oidc`;
  return {
    url,
    issuerUrl,
    issued,
    mintToken(claims) {
      const now = Math.floor(Date.now() / 1000);
      const header = base64url(JSON.stringify({ alg: "ES256", typ: "JWT" }));
      const verified = claims.email ? { email_verified: true } : {};
      const payload = base64url(JSON.stringify({ iss: issuerUrl, aud: "sigstore", iat: now, exp: now + 600, ...verified, ...claims }));
      const signature = sign("sha256", Buffer.from(`${header}.${payload}`), { key: issuerKeys.privateKey, dsaEncoding: "ieee-p1363" });
      return `${header}.${payload}.${base64url(signature)}`;
    },
    stop: () => new Promise<void>((resolve) => server.close(() => resolve())),
  };
}
