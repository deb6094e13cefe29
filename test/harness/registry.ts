// Real OCI registries on 127.0.0.1: zot (serves the referrers API) and the CNCF distribution registry (does not),
// optionally with htpasswd auth and TLS from a CA generated for the test.
import { randomBytes } from "node:crypto";
import { mkdir, mkdtemp, readFile, rm, writeFile } from "node:fs/promises";
import { request as httpsRequest } from "node:https";
import { tmpdir } from "node:os";
import { join } from "node:path";
import bcrypt from "bcryptjs";
import { startTokenService, type TokenService } from "../../registry-fixtures/token-service.ts";
import { binary } from "./binaries.ts";
import { type BlobStorage, startBlobStorage } from "./blob-storage.ts";
import { probe } from "./http.ts";
import { createServingCertificate, issueClientCertificate } from "./pki.ts";
import { freePort, type ManagedProcess, startProcess, waitUntil } from "./processes.ts";

export type RegistryKind = "zot" | "distribution";

export interface RegistryOptions {
  readonly kind: RegistryKind;
  /** htpasswd (Basic) on either registry; token (the Docker bearer-token flow) on distribution only. */
  readonly auth?: "htpasswd" | "token";
  readonly tls?: boolean;
  /**
   * With htpasswd on zot: a second user, `reader`, who may only pull (zot's access control), for tests of
   * credentials that must not be able to push.
   */
  readonly readOnlyUser?: boolean;
  /** Require client certificates (distribution only; implies TLS). */
  readonly mutualTls?: boolean;
  /** Answer blob GET and HEAD with a redirect to a separate storage server (distribution only), as S3-backed registries do. */
  readonly redirectBlobs?: boolean;
  readonly keepDir?: boolean;
}

export interface Registry {
  readonly kind: RegistryKind;
  /** host:port, as used in references: `${host}/repo:tag`. */
  readonly host: string;
  /** Base URL including scheme, e.g. http://127.0.0.1:5000. */
  readonly url: string;
  readonly tls: boolean;
  /** PEM CA bundle that verifies the registry's certificate, when TLS is on. */
  readonly caFile?: string;
  /** A client certificate the registry accepts, when mutual TLS is on. */
  readonly clientCertificate?: { readonly certFile: string; readonly keyFile: string };
  /** Present when auth is on. */
  readonly credentials?: { readonly username: string; readonly password: string };
  /** The pull-only user, when readOnlyUser is on. */
  readonly readerCredentials?: { readonly username: string; readonly password: string };
  /** The token service issuing bearer tokens, when auth is "token". */
  readonly tokenService?: TokenService;
  /** The storage blob downloads are redirected to, when redirectBlobs is on. */
  readonly blobStorage?: BlobStorage;
  /** Whether this registry implements the OCI 1.1 referrers API. */
  readonly referrersApi: boolean;
  readonly dir: string;
  stop(): Promise<void>;
}

interface Launch {
  readonly port: number;
  readonly dir: string;
  readonly htpasswd?: string;
  /** zot's accessControl: the admin may do everything, these users only read. */
  readonly readers?: { readonly admin: string; readonly users: readonly string[] };
  readonly token?: { realm: string; issuer: string; rootCertBundle: string };
  readonly cert?: { certFile: string; keyFile: string; caFile: string };
  readonly mutualTls?: boolean;
  readonly redirectTo?: string;
}

function launchZot(launch: Launch): ManagedProcess {
  return startProcess("zot", binary("zot"), ["serve", join(launch.dir, "zot.json")], {
    logFile: join(launch.dir, "zot.log"),
  });
}

function launchDistribution(launch: Launch): ManagedProcess {
  return startProcess("registry", binary("registry"), ["serve", join(launch.dir, "registry.json")], {
    logFile: join(launch.dir, "registry.log"),
    // distribution exports traces to localhost:4318 by default; nothing listens there.
    env: { OTEL_TRACES_EXPORTER: "none", OTEL_SDK_DISABLED: "true" },
  });
}

async function writeConfig(kind: RegistryKind, launch: Launch): Promise<void> {
  if (kind === "zot") {
    const config = {
      distSpecVersion: "1.0.1",
      storage: { rootDirectory: join(launch.dir, "storage"), gc: false, dedupe: false },
      http: {
        address: "127.0.0.1",
        port: String(launch.port),
        realm: "ferry-testbed",
        ...(launch.htpasswd ? { auth: { htpasswd: { path: launch.htpasswd }, failDelay: 0 } } : {}),
        ...(launch.readers
          ? {
              // zot v1.4's layout: repository globs directly under accessControl (v2 moved them under repositories).
              accessControl: {
                "**": { policies: [{ users: launch.readers.users, actions: ["read"] }], defaultPolicy: [] },
                adminPolicy: { users: [launch.readers.admin], actions: ["read", "create", "update", "delete"] },
              },
            }
          : {}),
        ...(launch.cert ? { tls: { cert: launch.cert.certFile, key: launch.cert.keyFile } } : {}),
      },
      log: { level: "error" },
    };
    await writeFile(join(launch.dir, "zot.json"), JSON.stringify(config, null, 2));
    return;
  }
  // distribution reads YAML; JSON is valid YAML.
  const config = {
    version: 0.1,
    log: { level: "warn", accesslog: { disabled: true } },
    storage: { filesystem: { rootdirectory: join(launch.dir, "storage") }, delete: { enabled: true } },
    ...(launch.redirectTo ? { middleware: { storage: [{ name: "redirect", options: { baseurl: launch.redirectTo } }] } } : {}),
    http: {
      addr: `127.0.0.1:${launch.port}`,
      secret: randomBytes(16).toString("hex"),
      ...(launch.cert
        ? {
            tls: {
              certificate: launch.cert.certFile,
              key: launch.cert.keyFile,
              ...(launch.mutualTls ? { clientcas: [launch.cert.caFile] } : {}),
            },
          }
        : {}),
    },
    ...(launch.htpasswd ? { auth: { htpasswd: { realm: "ferry-testbed", path: launch.htpasswd } } } : {}),
    ...(launch.token
      ? {
          auth: {
            token: {
              realm: launch.token.realm,
              service: TOKEN_SERVICE_NAME,
              issuer: launch.token.issuer,
              rootcertbundle: launch.token.rootCertBundle,
            },
          },
        }
      : {}),
  };
  await writeFile(join(launch.dir, "registry.json"), JSON.stringify(config, null, 2));
}

export const TOKEN_SERVICE_NAME = "ferry-testbed-registry";

export async function startRegistry(options: RegistryOptions): Promise<Registry> {
  if (options.auth === "token" && options.kind !== "distribution") {
    throw new Error("token auth is available on the distribution registry only");
  }
  const dir = await mkdtemp(join(tmpdir(), `ferry-${options.kind}-`));
  await mkdir(join(dir, "storage"));
  let process: ManagedProcess | undefined;
  let tokenService: TokenService | undefined;
  let blobStorage: BlobStorage | undefined;
  const stop = async () => {
    await process?.stop();
    await tokenService?.stop();
    await blobStorage?.stop();
    if (!options.keepDir) await rm(dir, { recursive: true, force: true });
  };
  try {
    let credentials: Registry["credentials"];
    let htpasswd: string | undefined;
    let readerCredentials: Registry["readerCredentials"];
    let token: Launch["token"];
    if (options.auth === "token") {
      credentials = { username: "ferry", password: randomBytes(12).toString("hex") };
      const signing = await createServingCertificate(await mkdtemp(join(dir, "token-")), "ferry-token-service");
      const issuer = "ferry-testbed-token-service";
      tokenService = await startTokenService({
        certFile: signing.caFile,
        keyFile: join(signing.caFile, "..", "ca.key"),
        issuer,
        users: { [credentials.username]: credentials.password },
      });
      token = { realm: tokenService.realm, issuer, rootCertBundle: signing.caFile };
    }
    if (options.auth === "htpasswd") {
      credentials = { username: "ferry", password: randomBytes(12).toString("hex") };
      htpasswd = join(dir, "htpasswd");
      // Both registries accept bcrypt only; cost 5 keeps per-request verification cheap.
      if (options.readOnlyUser && options.kind !== "zot") throw new Error("a read-only user is available on zot only");
      if (options.readOnlyUser) readerCredentials = { username: "reader", password: randomBytes(12).toString("hex") };
      const users = [credentials, ...(readerCredentials ? [readerCredentials] : [])];
      await writeFile(htpasswd, users.map((user) => `${user.username}:${bcrypt.hashSync(user.password, 5)}\n`).join(""));
    }
    if (options.mutualTls && options.kind !== "distribution") throw new Error("mutual TLS is available on the distribution registry only");
    const cert = options.tls || options.mutualTls ? await createServingCertificate(dir, `ferry-${options.kind}`) : undefined;
    const clientCertificate = options.mutualTls ? await issueClientCertificate(dir) : undefined;
    const ca = cert ? await readFile(cert.caFile) : undefined;

    if (options.redirectBlobs && options.kind !== "distribution") throw new Error("blob redirects are available on the distribution registry only");
    if (options.redirectBlobs) blobStorage = await startBlobStorage(join(dir, "storage"));

    const port = await freePort();
    const launch: Launch = {
      port,
      dir,
      ...(htpasswd ? { htpasswd } : {}),
      ...(readerCredentials && credentials ? { readers: { admin: credentials.username, users: [readerCredentials.username] } } : {}),
      ...(token ? { token } : {}),
      ...(cert ? { cert } : {}),
      ...(options.mutualTls ? { mutualTls: true } : {}),
      ...(blobStorage ? { redirectTo: blobStorage.url } : {}),
    };
    await writeConfig(options.kind, launch);
    process = options.kind === "zot" ? launchZot(launch) : launchDistribution(launch);

    const scheme = cert ? "https" : "http";
    const host = `127.0.0.1:${port}`;
    const url = `${scheme}://${host}`;
    // /v2/ answers 200, or 401 when auth is on: either means the registry is serving.
    await waitUntil(
      `${options.kind} at ${url}/v2/`,
      async () => {
        if (clientCertificate) {
          // Without a client certificate the handshake itself fails; a served /v2/ with one is what readiness means.
          const [certPem, keyPem] = [await readFile(clientCertificate.certFile), await readFile(clientCertificate.keyFile)];
          return new Promise<boolean>((done) => {
            httpsRequest(`${url}/v2/`, { ca, cert: certPem, key: keyPem }, (response) => {
              response.resume();
              done(response.statusCode === 200);
            }).on("error", () => done(false)).end();
          });
        }
        return [200, 401].includes((await probe(`${url}/v2/`, ca ? { ca } : {})).status);
      },
      { timeoutMs: 30_000, process },
    );
    return {
      kind: options.kind,
      host,
      url,
      tls: Boolean(cert),
      ...(cert ? { caFile: cert.caFile } : {}),
      ...(credentials ? { credentials } : {}),
      ...(readerCredentials ? { readerCredentials } : {}),
      ...(tokenService ? { tokenService } : {}),
      ...(clientCertificate ? { clientCertificate } : {}),
      ...(blobStorage ? { blobStorage } : {}),
      referrersApi: options.kind === "zot",
      dir,
      stop,
    };
  } catch (error) {
    await stop();
    throw error;
  }
}
