// `npm run image`: builds Ferry's controller image without Docker and without any image registry, from Debian
// packages, the Node binary on npm, Go modules and this checkout, as an OCI layout; optionally pushes it (with an
// SBOM referrer) and signs it. Progress goes to stderr; the index digest to stdout.
import { join, resolve } from "node:path";
import { parseArgs } from "node:util";
import { RegistryClient } from "../../src/registry/client.ts";
import { formatReference, parseReference, type Reference } from "../../src/registry/reference.ts";
import { FERRY_VERSION } from "../../src/version.ts";
import { loadPrivateKey, parseSignatureFormat } from "../commands/signing.ts";
import { clientOptions } from "../flags.ts";
import { detectSourceRevision } from "../git.ts";
import { type Arch, buildImage } from "./assemble.ts";
import { writeLayout } from "./layout.ts";
import { pushImage } from "./publish.ts";

const ROOT = join(import.meta.dirname, "..", "..");
const DEFAULT_SOURCE = "https://github.com/ferry-cd/ferry";

const HELP = `Usage: npm run image -- [flags]

Builds Ferry's controller image for linux/amd64 and linux/arm64 as an OCI image layout, with no Docker engine and
no image registry: Debian bookworm's runtime libraries and CA certificates (InRelease checked with gpgv against the
Debian archive keyring, every .deb against the signed index), the Node binary from the npm package node-linux-<arch>
at the version of the node dev dependency (integrity checked), ferry-sandbox and kustomize (the test bed's pin)
cross-compiled with Go, and Ferry's bundle from dist/ (run npm run build first; npm run image does).
The image runs as 65532:65532 with no shell; its entrypoint is node /opt/ferry/dist/ferry.mjs and its default
command "controller". The same inputs give the same digest (set SOURCE_DATE_EPOCH to stamp a time; default 0).
Downloads are cached in ~/.cache/ferry-image (FERRY_IMAGE_CACHE).

Flags:
  --output DIR            where the OCI layout goes (default tmp/image in the checkout); replaced as a whole
  --platform LIST         linux/amd64,linux/arm64 (default both); repeatable
  --tag TAG               the layout's ref name (default: --push's tag, else v<version>)
  --push REGISTRY/REPO:TAG
                          push the image, then its SPDX SBOM as a referrer of the index
  --sign-key KEY          sign the index digest after pushing (cosign key file or env://VAR; COSIGN_PASSWORD)
  --signature-format F    bundle, legacy or both (default both: cosign v2 and v3 verify it)
  --insecure-registry     plain HTTP to the registry; --creds, --ca-file, --cert-file, --key-file as ferry push
  --source URL, --revision SHA
                          org.opencontainers.image.source/revision (default: the git checkout or GitHub Actions)
  -h, --help

Examples:
  npm run image
  podman pull oci:tmp/image:v${FERRY_VERSION}
  COSIGN_PASSWORD=… npm run image -- --push registry.example.com/ferry:v${FERRY_VERSION} --sign-key cosign.key
  cosign verify --key cosign.pub registry.example.com/ferry:v${FERRY_VERSION}
`;

const OPTIONS = {
  output: { type: "string" },
  platform: { type: "string", multiple: true },
  tag: { type: "string" },
  push: { type: "string" },
  "sign-key": { type: "string" },
  "signature-format": { type: "string" },
  "insecure-registry": { type: "boolean" },
  creds: { type: "string" },
  "ca-file": { type: "string" },
  "cert-file": { type: "string" },
  "key-file": { type: "string" },
  source: { type: "string" },
  revision: { type: "string" },
  help: { type: "boolean", short: "h" },
} as const;

class ImageUsageError extends Error {
  constructor(message: string) {
    super(message);
    this.name = "ImageUsageError";
  }
}

function parsePlatforms(values: readonly string[] | undefined): Arch[] {
  const names = (values ?? ["linux/amd64,linux/arm64"]).flatMap((value) => value.split(",")).map((value) => value.trim());
  return [...new Set(names)].map((name) => {
    const arch = name.replace(/^linux\//, "");
    if (arch !== "amd64" && arch !== "arm64") throw new ImageUsageError(`--platform must be linux/amd64 or linux/arm64, not "${name}"`);
    return arch;
  });
}

function epoch(): number {
  const value = process.env.SOURCE_DATE_EPOCH;
  if (value === undefined || value === "") return 0;
  if (!/^\d+$/.test(value)) throw new ImageUsageError(`SOURCE_DATE_EPOCH must be whole seconds since 1970, not "${value}"`);
  return Number(value);
}

const started = Date.now();
function log(line: string): void {
  process.stderr.write(`[${((Date.now() - started) / 1000).toFixed(1).padStart(6)}s] ${line}\n`);
}

/** The plain commit for org.opencontainers.image.revision (labels take a commit, not Ferry's ref@sha1: form). */
async function sourceAndRevision(values: { source?: string; revision?: string }) {
  const detected = await detectSourceRevision(ROOT);
  const commit = detected.revision?.replace(/^.*sha1:/, "");
  const revision = values.revision ?? commit;
  return { source: values.source ?? detected.source ?? DEFAULT_SOURCE, ...(revision ? { revision } : {}) };
}

async function main(args: string[]): Promise<void> {
  const { values } = parseArgs({ args, options: OPTIONS, strict: true, allowPositionals: false });
  if (values.help) {
    process.stdout.write(HELP);
    return;
  }
  const arches = parsePlatforms(values.platform);
  const pushTo: Reference | undefined = values.push ? parseReference(values.push, { requireScheme: false }) : undefined;
  if (values["sign-key"] && !pushTo) throw new ImageUsageError("--sign-key signs in a registry: give --push too");
  const format = parseSignatureFormat(values["signature-format"] ?? "both");
  // The key is decrypted before the long build, so a wrong password fails at once.
  const privateKey = values["sign-key"] ? await loadPrivateKey(values["sign-key"]) : undefined;
  const tag = values.tag ?? pushTo?.tag ?? `v${FERRY_VERSION}`;
  const output = resolve(values.output ?? join(ROOT, "tmp", "image"));

  const provenance = await sourceAndRevision(values);
  const { image, report } = await buildImage({ root: ROOT, arches, epoch: epoch(), ferryVersion: FERRY_VERSION, ...provenance, log });
  await writeLayout(output, image, tag);
  for (const platform of image.platforms) {
    const size = platform.layers.reduce((total, { layer }) => total + layer.blob.length, 0);
    log(`linux/${platform.platform.architecture}: ${platform.manifest.digest}, ${(size / 1024 / 1024).toFixed(1)} MiB compressed`);
  }
  log(`node ${report.nodeVersion}, kustomize ${report.kustomizeVersion}, Debian ${(report.debian[arches[0] ?? "amd64"] ?? []).map((p) => `${p.name} ${p.version}`).join(", ")}`);
  log(`OCI layout ${output} (ref ${tag}), index ${image.index.digest}`);

  if (pushTo) {
    const client = new RegistryClient(clientOptions(values));
    try {
      const signing = privateKey ? { signing: { privateKey, format } } : {};
      const pushed = await pushImage(client, { ...pushTo, tag: pushTo.tag ?? tag }, image, { log, ...signing });
      log(`pushed ${formatReference({ ...pushTo, tag: pushTo.tag ?? tag })}@${pushed.digest}, SBOM ${pushed.sbom}${pushed.signed ? `, signed (${format})` : ""}`);
    } finally {
      await client.close();
    }
  }
  process.stdout.write(`${image.index.digest}\n`);
}

try {
  await main(process.argv.slice(2));
} catch (error) {
  process.stderr.write(`npm run image: ${(error as Error).message}\n`);
  process.exitCode = error instanceof ImageUsageError || (error as Error).name === "UsageError" || (error as { code?: string }).code?.startsWith("ERR_PARSE_ARGS") ? 2 : 1;
}
