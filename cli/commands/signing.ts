// `ferry keygen`, `ferry sign`, `ferry verify artifact`, and the key handling `push artifact --sign` shares.
import { access, readFile, writeFile } from "node:fs/promises";
import { createInterface } from "node:readline";
import { RegistryClient } from "../../src/registry/client.ts";
import { formatReference, formatUrl, parseReference } from "../../src/registry/reference.ts";
import { KeyError } from "../../src/signing/errors.ts";
import { decryptPrivateKey, generateKeyPair, keyFingerprint, parsePublicKey } from "../../src/signing/keys.ts";
import { type SignatureFormatOption, signArtifact } from "../../src/signing/sign.ts";
import { loadTrustedRoot } from "../../src/signing/trusted-root.ts";
import { verifyArtifact } from "../../src/signing/verify.ts";
import { UsageError } from "../errors.ts";
import {
  clientOptions, parse, REGISTRY_OPTIONS, requireOne, SIGNING_OPTIONS, usesKeylessIdentity, VERIFY_OPTIONS, type VerifyFlagValues,
  wantsVerification,
} from "../flags.ts";
import { parseOutputFormat, printStructured, status } from "../output.ts";

/** Reads a key from a file path or `env://VARIABLE`, as cosign accepts key references. */
async function readKeyReference(reference: string): Promise<{ pem: string; origin: string }> {
  if (reference.startsWith("env://")) {
    const name = reference.slice("env://".length);
    const value = process.env[name];
    if (!value) throw new KeyError(`environment variable ${name} (from --key ${reference}) is empty or unset`);
    return { pem: value, origin: `key from $${name}` };
  }
  try {
    return { pem: await readFile(reference, "utf8"), origin: reference };
  } catch (error) {
    throw new KeyError(`cannot read key ${reference}: ${(error as Error).message}`, { cause: error });
  }
}

async function readHidden(prompt: string): Promise<string> {
  const rl = createInterface({ input: process.stdin, output: process.stderr, terminal: true });
  // Echo nothing while the password is typed.
  (rl as unknown as { _writeToOutput: (text: string) => void })._writeToOutput = (text: string) => {
    if (text.includes(prompt)) process.stderr.write(prompt);
  };
  try {
    return await new Promise<string>((resolve) => rl.question(prompt, resolve));
  } finally {
    rl.close();
    process.stderr.write("\n");
  }
}

/** COSIGN_PASSWORD when set (even empty), else a prompt on a terminal, else all of stdin: cosign's rules. */
export async function readPassword(options: { confirm?: boolean } = {}): Promise<string> {
  if (process.env.COSIGN_PASSWORD !== undefined) return process.env.COSIGN_PASSWORD;
  if (process.stdin.isTTY) {
    const password = await readHidden("Enter password for private key: ");
    if (options.confirm && (await readHidden("Enter password for private key again: ")) !== password) {
      throw new UsageError("passwords do not match");
    }
    return password;
  }
  const chunks: Buffer[] = [];
  for await (const chunk of process.stdin) chunks.push(chunk as Buffer);
  return Buffer.concat(chunks).toString("utf8").replace(/\r?\n$/, "");
}

export async function loadPrivateKey(reference: string) {
  const { pem, origin } = await readKeyReference(reference);
  return decryptPrivateKey(pem, await readPassword(), origin);
}

export interface SigningFlagValues {
  sign?: boolean;
  key?: string;
  keyless?: boolean;
  "identity-token"?: string;
  "fulcio-url"?: string;
  "rekor-url"?: string;
  "tlog-upload"?: boolean;
}

/** The key (decrypted now, so a wrong password fails before any upload) or the keyless settings. */
export async function signingFromFlags(values: SigningFlagValues) {
  if (!values.sign) return undefined;
  if (values.key && values.keyless) throw new UsageError("--key and --keyless are exclusive");
  if (values.keyless) {
    const token = values["identity-token"] ?? process.env.SIGSTORE_ID_TOKEN;
    return {
      keyless: {
        ...(token ? { identityToken: token } : {}),
        ...(values["fulcio-url"] ? { fulcioUrl: values["fulcio-url"] } : {}),
        ...(values["rekor-url"] ? { rekorUrl: values["rekor-url"] } : {}),
        ...(values["tlog-upload"] === false ? { tlogUpload: false } : {}),
      },
    };
  }
  if (!values.key) throw new UsageError("signing needs --key (a cosign private key file or env://VAR) or --keyless");
  return { privateKey: await loadPrivateKey(values.key) };
}

export function parseSignatureFormat(value: string | undefined): SignatureFormatOption {
  const format = value ?? "bundle";
  if (format !== "bundle" && format !== "legacy" && format !== "both") {
    throw new UsageError(`--signature-format must be bundle, legacy or both, not "${format}"`);
  }
  return format;
}

export async function keygenCommand(args: readonly string[]): Promise<void> {
  const { values } = parse(args, { "output-key-prefix": { type: "string" }, force: { type: "boolean" } });
  const prefix = values["output-key-prefix"] ?? "cosign";
  const files = [`${prefix}.key`, `${prefix}.pub`];
  if (!values.force) {
    for (const file of files) {
      const exists = await access(file).then(() => true, () => false);
      if (exists) throw new UsageError(`${file} already exists; pass --force to overwrite it`);
    }
  }
  const pair = await generateKeyPair(await readPassword({ confirm: true }));
  await writeFile(files[0] ?? "cosign.key", pair.privateKeyPem, { mode: 0o600 });
  await writeFile(files[1] ?? "cosign.pub", pair.publicKeyPem, { mode: 0o644 });
  status("✔", `private key written to ${files[0]}`);
  status("✔", `public key written to ${files[1]} (${keyFingerprint(parsePublicKey(pair.publicKeyPem))})`);
}

export async function signCommand(args: readonly string[]): Promise<void> {
  const { values, positionals } = parse(args, { ...REGISTRY_OPTIONS, ...SIGNING_OPTIONS });
  const reference = parseReference(requireOne(positionals, "artifact URL"), { requireScheme: false });
  const signing = await signingFromFlags({ ...values, sign: true });
  const format = parseSignatureFormat(values["signature-format"]);
  if (!reference.digest) status("⚠", `${formatReference(reference)} uses a tag; signing the digest it points to now`);
  const client = new RegistryClient(clientOptions(values));
  try {
    const result = await signArtifact(client, reference, { ...signing, format });
    status("✔", `signed ${formatReference({ ...reference, tag: undefined, digest: result.digest } as typeof reference)} (${format})`);
  } finally {
    await client.close();
  }
}

/** Flags that say what signature to require, shared by `verify artifact` and `pull artifact`. */
/** What to verify with, or undefined when no verification flag was given. */
export async function trustFromFlags(values: VerifyFlagValues): Promise<Parameters<typeof verifyArtifact>[2] | undefined> {
  if (!wantsVerification(values)) return undefined;
  const keyless = usesKeylessIdentity(values);
  if (values.key?.length && keyless) throw new UsageError("--key and the --certificate-* flags are exclusive");
  if (!keyless) {
    const publicKeys = await Promise.all(
      (values.key ?? []).map(async (key) => {
        const { pem, origin } = await readKeyReference(key);
        return parsePublicKey(pem, origin);
      }),
    );
    return { publicKeys };
  }
  return {
    keyless: {
      trustedRoot: await loadTrustedRoot(values["trusted-root"]),
      ignoreTlog: values["insecure-ignore-tlog"] ?? false,
      policy: {
        ...(values["certificate-identity"] !== undefined ? { identity: values["certificate-identity"] } : {}),
        ...(values["certificate-identity-regexp"] !== undefined ? { identityRegexp: values["certificate-identity-regexp"] } : {}),
        ...(values["certificate-oidc-issuer"] !== undefined ? { issuer: values["certificate-oidc-issuer"] } : {}),
        ...(values["certificate-oidc-issuer-regexp"] !== undefined ? { issuerRegexp: values["certificate-oidc-issuer-regexp"] } : {}),
      },
    },
  };
}

export async function verifyArtifactCommand(args: readonly string[]): Promise<boolean> {
  const { values, positionals } = parse(args, { ...REGISTRY_OPTIONS, ...VERIFY_OPTIONS, output: { type: "string", short: "o" } });
  const reference = parseReference(requireOne(positionals, "artifact URL"), { requireScheme: true });
  const format = parseOutputFormat(values.output);
  const trust = await trustFromFlags(values);
  if (!trust) {
    throw new UsageError("give --key (repeatable), or --certificate-identity[-regexp] and --certificate-oidc-issuer[-regexp] for keyless");
  }
  const client = new RegistryClient(clientOptions(values));
  try {
    const verified = await verifyArtifact(client, reference, trust);
    const signer = verified.keyFingerprint ? `key ${verified.keyFingerprint}` : `${verified.identity} (issuer ${verified.issuer})`;
    const url = formatUrl({ registry: reference.registry, repository: reference.repository, digest: verified.digest });
    if (format !== "text") {
      await printStructured(format, {
        url,
        digest: verified.digest,
        verified: true,
        format: verified.format,
        ...(verified.keyFingerprint ? { key: verified.keyFingerprint } : {}),
        ...(verified.identity ? { identity: verified.identity, issuer: verified.issuer } : {}),
        ...(verified.signedAt ? { signedAt: verified.signedAt } : {}),
      });
    } else {
      status("✔", `verified ${url}`);
      status("✔", `signed by ${signer} (${verified.format}${verified.signedAt ? `, at ${verified.signedAt}` : ""})`);
    }
    return true;
  } finally {
    await client.close();
  }
}
