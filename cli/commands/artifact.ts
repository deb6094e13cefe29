// `ferry push|pull|tag|diff|build artifact` and `ferry list artifacts`.
import { createHash } from "node:crypto";
import { createReadStream } from "node:fs";
import { copyFile, mkdtemp, readdir, rm, stat } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join, resolve } from "node:path";
import { pullArtifact } from "../../src/artifact/pull.ts";
import { pushArtifact } from "../../src/artifact/push.ts";
import { buildTarball, collectEntries, stdinToFile } from "../../src/artifact/tarball.ts";
import { RegistryClient } from "../../src/registry/client.ts";
import { formatReference, formatUrl, parseReference, type Reference, withTag } from "../../src/registry/reference.ts";
import { UsageError } from "../errors.ts";
import {
  clientOptions,
  parse,
  REGISTRY_OPTIONS,
  type RegistryFlagValues,
  requireOne,
  SIGNING_OPTIONS,
  timeoutSignal,
  VERIFY_OPTIONS,
  wantsVerification,
} from "../flags.ts";
import { detectSourceRevision } from "../git.ts";
import { type OutputFormat, parseOutputFormat, printStructured, printTable, status } from "../output.ts";
import { createProgress } from "../progress.ts";

function parseUrl(value: string): Reference {
  return parseReference(value, { requireScheme: true });
}

function newClient(values: RegistryFlagValues): RegistryClient {
  return new RegistryClient(
    clientOptions(values, ({ attempt, delayMs, reason }) =>
      status("⚠", `${reason}; retrying in ${(delayMs / 1000).toFixed(1)}s (attempt ${attempt + 1})`),
    ),
  );
}

function parseAnnotations(values: readonly string[] | undefined): Record<string, string> {
  const annotations: Record<string, string> = {};
  for (const value of values ?? []) {
    const separator = value.indexOf("=");
    if (separator <= 0) throw new UsageError(`--annotations must be key=value, not "${value}"`);
    annotations[value.slice(0, separator)] = value.slice(separator + 1);
  }
  return annotations;
}

async function withClient<T>(values: RegistryFlagValues, run: (client: RegistryClient, signal: AbortSignal) => Promise<T>) {
  const client = newClient(values);
  try {
    return await run(client, timeoutSignal(values));
  } finally {
    await client.close();
  }
}

export async function pushArtifactCommand(args: readonly string[]): Promise<void> {
  const { values, positionals } = parse(args, {
    ...REGISTRY_OPTIONS,
    path: { type: "string", short: "f" },
    source: { type: "string" },
    revision: { type: "string" },
    annotations: { type: "string", short: "a", multiple: true },
    "ignore-paths": { type: "string", multiple: true },
    reproducible: { type: "boolean" },
    "resolve-symlinks": { type: "boolean" },
    output: { type: "string", short: "o" },
    sign: { type: "boolean" },
    ...SIGNING_OPTIONS,
  });
  const reference = parseUrl(requireOne(positionals, "artifact URL (oci://host/repo:tag)"));
  if (!values.sign && (values.key || values.keyless)) throw new UsageError("--key and --keyless need --sign");
  const signingModule = values.sign ? await import("./signing.ts") : undefined;
  const signatureFormat = signingModule?.parseSignatureFormat(values["signature-format"]);
  // Decrypt before pushing, so a wrong password fails before anything reaches the registry.
  const signing = await signingModule?.signingFromFlags(values);
  if (reference.digest) throw new UsageError("push needs a tag, not a digest: oci://host/repo:tag");
  if (!values.path) throw new UsageError("--path is required (a directory, a file, or - for stdin)");
  const format = parseOutputFormat(values.output);
  const detected = values.source && values.revision ? {} : await detectSourceRevision(process.cwd());
  const source = values.source ?? detected.source;
  const revision = values.revision ?? detected.revision;
  if (!source) throw new UsageError("--source is required outside a git checkout (e.g. the repository URL)");
  if (!revision) throw new UsageError("--revision is required outside a git checkout (e.g. main@sha1:<commit>)");

  const stdin = values.path === "-" ? await stdinToFile(process.stdin) : undefined;
  try {
    status("►", `pushing artifact to ${formatReference(reference)}`);
    const progress = createProgress("  layer");
    const result = await withClient(values, async (client, signal) => {
      const pushed = await pushArtifact(client, reference, {
        path: stdin?.path ?? values.path ?? "",
        source,
        revision,
        annotations: parseAnnotations(values.annotations),
        reproducible: values.reproducible ?? false,
        resolveSymlinks: values["resolve-symlinks"] ?? false,
        ...(values["ignore-paths"] ? { ignorePaths: values["ignore-paths"] } : {}),
        onProgress: ({ transferred, total }) => progress.update(transferred, total),
        signal,
        ...(signing
          ? {
              beforeTag: async (manifest) => {
                const { signArtifact } = await import("../../src/signing/sign.ts");
                const format = signatureFormat ? { format: signatureFormat } : {};
                await signArtifact(client, reference, { ...signing, subject: manifest, ...format });
                status("✔", `artifact signed (${signatureFormat})`);
              },
            }
          : {}),
      });
      return pushed;
    });
    progress.done();
    const pushed = formatReference({ ...reference, tag: undefined, digest: result.digest } as Reference);
    status("✔", `artifact successfully pushed to ${pushed}`);
    if (format === "text") process.stdout.write(`${result.digest}\n`);
    else {
      await printStructured(format, {
        url: formatUrl({ registry: reference.registry, repository: reference.repository, digest: result.digest }),
        repository: `${reference.registry}/${reference.repository}`,
        tag: result.reference.tag,
        digest: result.digest,
      });
    }
  } finally {
    await stdin?.dispose();
  }
}

export async function pullArtifactCommand(args: readonly string[]): Promise<void> {
  const { values, positionals } = parse(args, { ...REGISTRY_OPTIONS, ...VERIFY_OPTIONS, output: { type: "string", short: "o" } });
  const reference = parseUrl(requireOne(positionals, "artifact URL"));
  if (!values.output) throw new UsageError("--output is required: the directory to extract into");
  const output = resolve(values.output);
  // The signing code pulls in sigstore; a pull without verification flags does not pay for loading it.
  const trust = wantsVerification(values) ? await (await import("./signing.ts")).trustFromFlags(values) : undefined;
  status("►", `pulling artifact from ${formatReference(reference)}`);
  const progress = createProgress("  layer");
  const result = await withClient(values, async (client, signal) => {
    let pinned = reference;
    if (trust) {
      // Verify the digest the reference resolves to now, then pull exactly that digest: a tag moved in between
      // cannot slip unverified content in.
      const { verifyArtifact } = await import("../../src/signing/verify.ts");
      const subject = await client.resolve(reference, signal);
      const verified = await verifyArtifact(client, reference, { ...trust, subject });
      const signer = verified.keyFingerprint ? `key ${verified.keyFingerprint}` : `${verified.identity} (issuer ${verified.issuer})`;
      status("✔", `signature verified: signed by ${signer}`);
      pinned = { registry: reference.registry, repository: reference.repository, digest: verified.digest };
    }
    return pullArtifact(client, pinned, output, { onProgress: ({ transferred, total }) => progress.update(transferred, total), signal });
  });
  progress.done();
  if (result.source) status("✔", `source ${result.source}`);
  if (result.revision) status("✔", `revision ${result.revision}`);
  status("✔", `digest ${formatReference({ registry: reference.registry, repository: reference.repository, digest: result.digest })}`);
  status("✔", `extracted ${result.extracted.files} files to ${output}`);
  for (const link of result.extracted.skippedLinks) status("⚠", `skipped link ${link}`);
}

export async function tagArtifactCommand(args: readonly string[]): Promise<void> {
  const { values, positionals } = parse(args, { ...REGISTRY_OPTIONS, tag: { type: "string", short: "t", multiple: true } });
  const reference = parseUrl(requireOne(positionals, "artifact URL"));
  const tags = (values.tag ?? []).flatMap((tag) => tag.split(",")).filter(Boolean);
  if (tags.length === 0) throw new UsageError("--tag is required (repeat it for several tags)");
  for (const tag of tags) parseReference(`oci://${reference.registry}/${reference.repository}:${tag}`);
  await withClient(values, async (client, signal) => {
    const { bytes, descriptor } = await client.fetchManifest(reference, signal);
    for (const tag of tags) {
      await client.pushManifest(withTag(reference, tag), bytes, descriptor.mediaType, signal);
      status("✔", `artifact tagged as ${formatReference(withTag(reference, tag))}`);
    }
  });
}

interface ListedArtifact {
  url: string;
  tag: string;
  digest: string;
  source: string;
  revision: string;
}

/** Tags that hold signatures, attestations and referrer indexes, not artifacts. */
function isMetadataTag(tag: string): boolean {
  return /\.(sig|att|sbom)$/.test(tag) || /^sha256-[a-f0-9]{64}/.test(tag);
}

async function mapLimited<T, R>(items: readonly T[], limit: number, work: (item: T) => Promise<R>): Promise<R[]> {
  const results: R[] = new Array(items.length);
  let next = 0;
  const workers = Array.from({ length: Math.min(limit, items.length) }, async () => {
    while (next < items.length) {
      const index = next++;
      results[index] = await work(items[index] as T);
    }
  });
  await Promise.all(workers);
  return results;
}

/** --filter in Go's regexp syntax, as flux's; loaded only when a filter is given, like semver. */
async function compileFilter(pattern: string) {
  const { GoRegexp, GoRegexpError } = await import("../../src/go-regexp.ts");
  try {
    return GoRegexp.compile(pattern);
  } catch (error) {
    if (!(error instanceof GoRegexpError)) throw error;
    throw new UsageError(`--filter ${error.message}`);
  }
}

export async function listArtifactsCommand(args: readonly string[]): Promise<void> {
  const { values, positionals } = parse(args, {
    ...REGISTRY_OPTIONS,
    semver: { type: "string" },
    "filter-semver": { type: "string" },
    filter: { type: "string" },
    "filter-regex": { type: "string" },
    output: { type: "string", short: "o" },
  });
  const reference = parseUrl(requireOne(positionals, "repository URL (oci://host/repo)"));
  const format: OutputFormat = parseOutputFormat(values.output);
  const constraint = values.semver ?? values["filter-semver"];
  const pattern = values.filter ?? values["filter-regex"];
  // semver is loaded only for --semver, so that the other artifact commands start without it.
  const semver = constraint === undefined ? undefined : (await import("semver")).default;
  if (constraint !== undefined && semver?.validRange(constraint) === null) throw new UsageError(`--semver "${constraint}" is not a semver range`);
  const regex = pattern === undefined ? undefined : await compileFilter(pattern);

  const artifacts = await withClient(values, async (client, signal) => {
    let tags = (await client.listTags(reference.registry, reference.repository, { signal })).filter((tag) => !isMetadataTag(tag));
    if (regex) tags = tags.filter((tag) => regex.test(tag));
    if (constraint !== undefined && semver) {
      tags = tags.filter((tag) => {
        const version = semver.coerce(tag, { includePrerelease: true }) && semver.valid(tag.replace(/^v/, ""));
        return version !== null && version !== "" && semver.satisfies(version, constraint, { includePrerelease: true });
      });
      tags.sort((a, b) => semver.rcompare(a.replace(/^v/, ""), b.replace(/^v/, "")));
    } else {
      tags.sort((a, b) => (a < b ? 1 : a > b ? -1 : 0));
    }
    return mapLimited(tags, 8, async (tag): Promise<ListedArtifact> => {
      const { bytes, descriptor } = await client.fetchManifest(withTag(reference, tag), signal);
      const annotations = (JSON.parse(bytes.toString()) as { annotations?: Record<string, string> }).annotations ?? {};
      return {
        url: formatUrl(withTag(reference, tag)),
        tag,
        digest: descriptor.digest,
        source: annotations["org.opencontainers.image.source"] ?? "",
        revision: annotations["org.opencontainers.image.revision"] ?? "",
      };
    });
  });
  if (format !== "text") {
    await printStructured(format, artifacts);
    return;
  }
  printTable(
    ["ARTIFACT", "DIGEST", "SOURCE", "REVISION"],
    artifacts.map((artifact) => [formatReference(withTag(reference, artifact.tag)), artifact.digest, artifact.source, artifact.revision]),
  );
}

async function fileHashes(root: string, entries: readonly { path: string; kind: string; source?: string }[]) {
  const hashes = new Map<string, string>();
  for (const entry of entries) {
    if (entry.kind !== "file") continue;
    const hash = createHash("sha256");
    for await (const chunk of createReadStream(entry.source ?? join(root, entry.path))) hash.update(chunk as Buffer);
    hashes.set(entry.path, hash.digest("hex"));
  }
  return hashes;
}

export async function diffArtifactCommand(args: readonly string[]): Promise<boolean> {
  const { values, positionals } = parse(args, {
    ...REGISTRY_OPTIONS,
    path: { type: "string", short: "f" },
    "ignore-paths": { type: "string", multiple: true },
    "resolve-symlinks": { type: "boolean" },
    output: { type: "string", short: "o" },
  });
  const reference = parseUrl(requireOne(positionals, "artifact URL"));
  if (!values.path) throw new UsageError("--path is required: the local directory or file to compare");
  const format = parseOutputFormat(values.output);
  const buildOptions = {
    resolveSymlinks: values["resolve-symlinks"] ?? false,
    ...(values["ignore-paths"] ? { ignorePaths: values["ignore-paths"] } : {}),
  };
  const local = await fileHashes(values.path, await collectEntries(values.path, buildOptions));
  const scratch = await mkdtemp(join(tmpdir(), "ferry-diff-"));
  try {
    await withClient(values, (client, signal) => pullArtifact(client, reference, scratch, { signal }));
    const remoteEntries = (await readdir(scratch, { recursive: true, withFileTypes: true }))
      .filter((entry) => entry.isFile())
      .map((entry) => ({ path: join(entry.parentPath, entry.name).slice(scratch.length + 1).split("\\").join("/"), kind: "file" }));
    const remote = await fileHashes(scratch, remoteEntries);
    const changes: Array<{ path: string; change: "added" | "removed" | "modified" }> = [];
    for (const [path, hash] of local) {
      if (!remote.has(path)) changes.push({ path, change: "added" });
      else if (remote.get(path) !== hash) changes.push({ path, change: "modified" });
    }
    for (const path of remote.keys()) if (!local.has(path)) changes.push({ path, change: "removed" });
    changes.sort((a, b) => (a.path < b.path ? -1 : a.path > b.path ? 1 : 0));
    if (format !== "text") await printStructured(format, { url: formatUrl(reference), changes });
    else if (changes.length === 0) status("✔", "no changes detected");
    else {
      const symbol = { added: "+", removed: "-", modified: "~" } as const;
      for (const { path, change } of changes) process.stdout.write(`${symbol[change]} ${path}\n`);
      status("✗", `the remote artifact differs from ${values.path}: ${changes.length} file(s) (+ only local, - only remote, ~ modified)`);
    }
    return changes.length === 0;
  } finally {
    await rm(scratch, { recursive: true, force: true });
  }
}

export async function buildArtifactCommand(args: readonly string[]): Promise<void> {
  const { values } = parse(args, {
    path: { type: "string", short: "p" },
    output: { type: "string", short: "o" },
    "ignore-paths": { type: "string", multiple: true },
    "resolve-symlinks": { type: "boolean" },
  });
  if (!values.path) throw new UsageError("--path is required");
  const output = values.output ?? "artifact.tgz";
  const tarball = await buildTarball(values.path, {
    resolveSymlinks: values["resolve-symlinks"] ?? false,
    ...(values["ignore-paths"] ? { ignorePaths: values["ignore-paths"] } : {}),
  });
  try {
    await copyFile(tarball.path, output);
    const size = (await stat(output)).size;
    status("✔", `artifact built to ${output} (${size} bytes, ${tarball.digest})`);
  } finally {
    await tarball.dispose();
  }
}
