// Flag parsing shared by commands: node:util parseArgs in strict mode, with usage errors that exit 2, and the
// registry flags every artifact command takes (named as flux and oras name them).
import { parseArgs, type ParseArgsConfig } from "node:util";
import { durationMs } from "../src/api/duration.ts";
import type { ClientOptions } from "../src/registry/client.ts";
import { credentialChain } from "../src/registry/credentials.ts";
import { UsageError } from "./errors.ts";

export type OptionSpec = NonNullable<ParseArgsConfig["options"]>;

export const REGISTRY_OPTIONS = {
  creds: { type: "string" },
  "insecure-registry": { type: "boolean" },
  "ca-file": { type: "string" },
  "cert-file": { type: "string" },
  "key-file": { type: "string" },
  timeout: { type: "string" },
} as const satisfies OptionSpec;

/** Flags shared by `sign` and `push artifact --sign` (here, so push does not load the signing code to parse them). */
export const SIGNING_OPTIONS = {
  key: { type: "string" },
  keyless: { type: "boolean" },
  "identity-token": { type: "string" },
  "fulcio-url": { type: "string" },
  "rekor-url": { type: "string" },
  "tlog-upload": { type: "boolean" },
  "signature-format": { type: "string" },
} as const satisfies OptionSpec;

export const VERIFY_OPTIONS = {
  key: { type: "string", multiple: true },
  "certificate-identity": { type: "string" },
  "certificate-identity-regexp": { type: "string" },
  "certificate-oidc-issuer": { type: "string" },
  "certificate-oidc-issuer-regexp": { type: "string" },
  "trusted-root": { type: "string" },
  "insecure-ignore-tlog": { type: "boolean" },
} as const satisfies OptionSpec;

export interface VerifyFlagValues {
  key?: string[];
  "certificate-identity"?: string;
  "certificate-identity-regexp"?: string;
  "certificate-oidc-issuer"?: string;
  "certificate-oidc-issuer-regexp"?: string;
  "trusted-root"?: string;
  "insecure-ignore-tlog"?: boolean;
}

/** Whether any --certificate-* flag asks for keyless verification. */
export function usesKeylessIdentity(values: VerifyFlagValues): boolean {
  const identityFlags = ["certificate-identity", "certificate-identity-regexp", "certificate-oidc-issuer", "certificate-oidc-issuer-regexp"] as const;
  return identityFlags.some((flag) => values[flag] !== undefined);
}

/** Whether verification flags were given; commands load the signing code (and sigstore) only then. */
export function wantsVerification(values: VerifyFlagValues): boolean {
  return Boolean(values.key?.length) || usesKeylessIdentity(values);
}

export function parse<T extends OptionSpec>(args: readonly string[], options: T) {
  // cosign and flux users write boolean flags as --flag=false; parseArgs only knows --flag and --no-flag.
  const normalised = args.map((arg) => {
    const match = /^--([\w-]+)=(true|false)$/.exec(arg);
    if (!match?.[1] || options[match[1]]?.type !== "boolean") return arg;
    return match[2] === "true" ? `--${match[1]}` : `--no-${match[1]}`;
  });
  // Flags whose own name starts with "no-" (flux's --no-cross-namespace-refs) would read as negations.
  const literalNo = new Map<string, boolean>();
  const remaining = normalised.filter((arg) => {
    for (const [name, option] of Object.entries(options)) {
      if (!name.startsWith("no-") || option.type !== "boolean") continue;
      if (arg === `--${name}`) literalNo.set(name, true);
      else if (arg === `--no-${name}`) literalNo.set(name, false);
      else continue;
      return false;
    }
    return true;
  });
  try {
    const parsed = parseArgs({ args: remaining, options, allowPositionals: true, allowNegative: true, strict: true });
    Object.assign(parsed.values, Object.fromEntries(literalNo));
    return parsed;
  } catch (error) {
    throw new UsageError((error as Error).message);
  }
}

/** Go-style durations as flux takes them: 90s, 5m, 1h30m, 250ms. */
export function parseDuration(value: string, flag: string): number {
  const ms = durationMs(value);
  if (ms === undefined) throw new UsageError(`${flag} must be a duration such as 30s, 5m or 1h30m, not "${value}"`);
  return ms;
}

export interface RegistryFlagValues {
  creds?: string;
  "insecure-registry"?: boolean;
  "ca-file"?: string;
  "cert-file"?: string;
  "key-file"?: string;
  timeout?: string;
}

export function clientOptions(values: RegistryFlagValues, onRetry?: ClientOptions["onRetry"]): ClientOptions {
  if ((values["cert-file"] === undefined) !== (values["key-file"] === undefined)) {
    throw new UsageError("--cert-file and --key-file must be given together");
  }
  return {
    insecure: values["insecure-registry"] ?? false,
    credentials: credentialChain(values.creds !== undefined ? { creds: values.creds } : {}),
    userAgent: "ferry",
    ...(values["ca-file"] ? { caFile: values["ca-file"] } : {}),
    ...(values["cert-file"] ? { certFile: values["cert-file"] } : {}),
    ...(values["key-file"] ? { keyFile: values["key-file"] } : {}),
    ...(onRetry ? { onRetry } : {}),
  };
}

/** An AbortSignal for the whole command, from --timeout (default 5m, as flux). */
export function timeoutSignal(values: RegistryFlagValues): AbortSignal {
  return AbortSignal.timeout(parseDuration(values.timeout ?? "5m", "--timeout"));
}

export function requireOne(positionals: readonly string[], what: string): string {
  if (positionals.length !== 1 || !positionals[0]) {
    throw new UsageError(`expected exactly one ${what}, got ${positionals.length === 0 ? "none" : positionals.join(" ")}`);
  }
  return positionals[0];
}
