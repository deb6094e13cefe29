// Where registry credentials come from: --creds, the FERRY_CREDS variable, or a Docker config file with its
// credential helpers (credsStore / credHelpers), in that order.
import { readFile } from "node:fs/promises";
import { homedir } from "node:os";
import { join } from "node:path";
import { RegistryConfigError } from "./errors.ts";
import { DOCKER_HUB } from "./reference.ts";

export type Credentials
  = | { readonly kind: "basic"; readonly username: string; readonly password: string }
  /** A registry token sent as-is (flux's `--creds <token>` without a colon). */
    | { readonly kind: "token"; readonly token: string }
  /** An OAuth2 refresh token from `docker login` against some registries (docker config `identitytoken`). */
    | { readonly kind: "identity-token"; readonly token: string };

export type CredentialSource = (registry: string) => Promise<Credentials | undefined>;

/** Parses `user:password` (basic) or a bare token, as flux's --creds does. */
export function parseCreds(value: string, origin = "--creds"): Credentials {
  if (value === "") throw new RegistryConfigError(`${origin} is empty`);
  const colon = value.indexOf(":");
  if (colon === -1) return { kind: "token", token: value };
  const username = value.slice(0, colon);
  if (username === "") throw new RegistryConfigError(`${origin} must be <username>:<password> or a token`);
  return { kind: "basic", username, password: value.slice(colon + 1) };
}

export interface DockerConfig {
  auths?: Record<string, { auth?: string; username?: string; password?: string; identitytoken?: string }>;
  credsStore?: string;
  credHelpers?: Record<string, string>;
}

/** Keys a Docker config may use for one registry, most specific first. */
function configKeys(registry: string): string[] {
  const keys = [registry, `https://${registry}`, `http://${registry}`, `https://${registry}/v1/`, `https://${registry}/v2/`];
  if (registry === DOCKER_HUB) keys.push("https://index.docker.io/v1/", "index.docker.io", "registry-1.docker.io");
  return keys;
}

/** The server name credential helpers know a registry by: `docker login` stores Docker Hub under its v1 index URL. */
function helperServerName(registry: string): string {
  return registry === DOCKER_HUB ? "https://index.docker.io/v1/" : registry;
}

async function runCredentialHelper(helper: string, registry: string): Promise<Credentials | undefined> {
  const program = `docker-credential-${helper}`;
  // node:child_process is loaded only for a credential helper: ~2.5 ms of every registry command otherwise.
  const { execFile } = process.getBuiltinModule("node:child_process");
  const output = await new Promise<string>((resolve, reject) => {
    const child = execFile(program, ["get"], { timeout: 30_000 }, (error, stdout, stderr) => {
      if (!error) return resolve(stdout);
      // Helpers report a missing entry on stdout or stderr with this phrase; that is "no credentials", not a failure.
      if (/credentials not found/i.test(`${stdout}${stderr}`)) return resolve("");
      reject(new RegistryConfigError(`credential helper ${program} failed for ${registry}: ${stderr.trim() || error.message}`, { cause: error }));
    });
    child.stdin?.end(helperServerName(registry));
  });
  if (output.trim() === "") return undefined;
  let parsed: { Username?: string; Secret?: string };
  try {
    parsed = JSON.parse(output);
  } catch (error) {
    throw new RegistryConfigError(`credential helper ${program} returned invalid JSON for ${registry}`, { cause: error });
  }
  if (!parsed.Secret) return undefined;
  if (parsed.Username === "<token>") return { kind: "identity-token", token: parsed.Secret };
  return { kind: "basic", username: parsed.Username ?? "", password: parsed.Secret };
}

export function dockerConfigPath(env: NodeJS.ProcessEnv = process.env): string {
  return join(env.DOCKER_CONFIG ?? join(homedir(), ".docker"), "config.json");
}

/**
 * Credentials for `registry` from a parsed Docker config. Credential helpers run only when allowed (the CLI);
 * the controller reads dockerconfigjson Secrets, where helpers make no sense.
 */
export async function credentialsFromDockerConfig(
  config: DockerConfig,
  registry: string,
  origin: string,
  options: { allowHelpers: boolean } = { allowHelpers: true },
): Promise<Credentials | undefined> {
  const keys = configKeys(registry);
  const helper = options.allowHelpers ? keys.map((key) => config.credHelpers?.[key]).find(Boolean) : undefined;
  if (helper) return runCredentialHelper(helper, registry);
  for (const key of keys) {
    const entry = config.auths?.[key];
    if (!entry) continue;
    if (entry.identitytoken) return { kind: "identity-token", token: entry.identitytoken };
    if (entry.auth) {
      const decoded = Buffer.from(entry.auth, "base64").toString("utf8");
      const colon = decoded.indexOf(":");
      if (colon === -1) throw new RegistryConfigError(`${origin}: auths["${key}"].auth is not base64 of user:password`);
      return { kind: "basic", username: decoded.slice(0, colon), password: decoded.slice(colon + 1) };
    }
    if (entry.username !== undefined && entry.password !== undefined) {
      return { kind: "basic", username: entry.username, password: entry.password };
    }
  }
  if (options.allowHelpers && config.credsStore) return runCredentialHelper(config.credsStore, registry);
  return undefined;
}

export function parseDockerConfig(text: string, origin: string): DockerConfig {
  try {
    return JSON.parse(text) as DockerConfig;
  } catch (error) {
    throw new RegistryConfigError(`cannot read Docker config ${origin}: ${(error as Error).message}`, { cause: error });
  }
}

/** Reads credentials for `registry` from a Docker config file; a missing file means anonymous. */
export async function dockerConfigCredentials(registry: string, path: string = dockerConfigPath()): Promise<Credentials | undefined> {
  let text: string;
  try {
    text = await readFile(path, "utf8");
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === "ENOENT") return undefined;
    throw new RegistryConfigError(`cannot read Docker config ${path}: ${(error as Error).message}`, { cause: error });
  }
  return credentialsFromDockerConfig(parseDockerConfig(text, path), registry, `Docker config ${path}`);
}

/** The CLI's lookup order: an explicit --creds value, then FERRY_CREDS, then the Docker config. */
export function credentialChain(options: { creds?: string; env?: NodeJS.ProcessEnv } = {}): CredentialSource {
  const env = options.env ?? process.env;
  const explicit = options.creds !== undefined
    ? parseCreds(options.creds)
    : env.FERRY_CREDS
      ? parseCreds(env.FERRY_CREDS, "FERRY_CREDS")
      : undefined;
  return async (registry) => explicit ?? dockerConfigCredentials(registry, dockerConfigPath(env));
}
