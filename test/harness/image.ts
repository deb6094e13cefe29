// Builds Ferry's controller image as `npm run image` does (cli/image/build.ts in its own process) and reads what
// it wrote: the OCI layout's index, each platform's manifest and config, and files inside the layers.
import { spawn } from "node:child_process";
import { readFile } from "node:fs/promises";
import { join } from "node:path";
import { gunzipSync } from "node:zlib";
import { Parser, type ReadEntry } from "tar";

const BUILD = join(import.meta.dirname, "..", "..", "cli", "image", "build.ts");

export interface ImageBuildResult {
  readonly digest: string;
  readonly stderr: string;
  readonly seconds: number;
}

/** Runs the image build; rejects with its stderr when it fails. Progress is echoed to the test's stderr. */
export function buildImage(args: readonly string[], env: NodeJS.ProcessEnv = {}): Promise<ImageBuildResult> {
  const started = Date.now();
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, [BUILD, ...args], { env: { ...process.env, ...env }, stdio: ["ignore", "pipe", "pipe"] });
    let stdout = "";
    let stderr = "";
    child.stdout.on("data", (chunk: Buffer) => (stdout += chunk));
    child.stderr.on("data", (chunk: Buffer) => {
      stderr += chunk;
      process.stderr.write(chunk);
    });
    child.on("error", reject);
    child.on("close", (code) => {
      if (code === 0) resolve({ digest: stdout.trim(), stderr, seconds: (Date.now() - started) / 1000 });
      else reject(new Error(`npm run image ${args.join(" ")} exited ${code}:\n${stderr}`));
    });
  });
}

export interface LayoutPlatform {
  readonly architecture: string;
  readonly manifestDigest: string;
  readonly config: { architecture: string; config: { User: string; Entrypoint: string[]; Cmd: string[]; Env: string[] } };
  readonly layers: readonly string[];
}

const blobFile = (layout: string, digest: string) => join(layout, "blobs", "sha256", digest.replace(/^sha256:/, ""));
const readJson = async <T>(layout: string, digest: string): Promise<T> => JSON.parse(await readFile(blobFile(layout, digest), "utf8")) as T;

/** The platforms of the image index that the layout's index.json names with `tag`. */
export async function layoutPlatforms(layout: string, tag: string): Promise<LayoutPlatform[]> {
  type Entry = { digest: string; annotations?: Record<string, string>; platform?: { architecture: string } };
  const top = JSON.parse(await readFile(join(layout, "index.json"), "utf8")) as { manifests: Entry[] };
  const image = top.manifests.find((entry) => entry.annotations?.["org.opencontainers.image.ref.name"] === tag);
  if (!image) throw new Error(`${layout}/index.json names no image ${tag}`);
  const index = await readJson<{ manifests: Entry[] }>(layout, image.digest);
  return Promise.all(index.manifests.map(async (entry) => {
    const manifest = await readJson<{ config: { digest: string }; layers: { digest: string }[] }>(layout, entry.digest);
    return {
      architecture: entry.platform?.architecture ?? "",
      manifestDigest: entry.digest,
      config: await readJson<LayoutPlatform["config"]>(layout, manifest.config.digest),
      layers: manifest.layers.map((layer) => layer.digest),
    };
  }));
}

export interface LayerEntryInfo {
  readonly type: string;
  readonly linkpath?: string;
}

/** Every path of the platform's filesystem (directories without their trailing slash), later layers winning. */
export async function entriesInLayers(layout: string, platform: LayoutPlatform): Promise<Map<string, LayerEntryInfo>> {
  const found = new Map<string, LayerEntryInfo>();
  await readLayers(layout, platform, (entry) => {
    found.set(entry.path.replace(/\/$/, ""), { type: entry.type, ...(entry.linkpath ? { linkpath: entry.linkpath } : {}) });
    entry.resume();
  });
  return found;
}

async function readLayers(layout: string, platform: LayoutPlatform, onReadEntry: (entry: ReadEntry) => void): Promise<void> {
  for (const layer of platform.layers) {
    const parser = new Parser({ onReadEntry });
    await new Promise<void>((resolve, reject) => {
      parser.on("end", resolve);
      parser.on("error", reject);
      void readFile(blobFile(layout, layer)).then((bytes) => parser.end(gunzipSync(bytes)), reject);
    });
  }
}

/** The named files (paths without a leading slash) found in the platform's layers, later layers winning. */
export async function filesInLayers(layout: string, platform: LayoutPlatform, paths: readonly string[]): Promise<Map<string, Buffer>> {
  const found = new Map<string, Buffer>();
  await readLayers(layout, platform, (entry) => {
    if (!paths.includes(entry.path)) return entry.resume();
    const chunks: Buffer[] = [];
    entry.on("data", (chunk: Buffer) => chunks.push(chunk));
    entry.on("end", () => found.set(entry.path, Buffer.concat(chunks)));
  });
  return found;
}

/** The ELF machine of an executable: 62 is x86-64, 183 is AArch64. */
export function elfMachine(binary: Buffer): number {
  if (binary.subarray(0, 4).toString("latin1") !== "\x7fELF") throw new Error("not an ELF executable");
  return binary.readUInt16LE(18);
}

/**
 * What the dynamic loader needs to start an ELF64 little-endian executable: its interpreter (PT_INTERP) and the
 * libraries it names (DT_NEEDED). Static executables have neither.
 */
export function elfDependencies(binary: Buffer): { interpreter?: string; needed: string[] } {
  const phoff = Number(binary.readBigUInt64LE(32));
  const phentsize = binary.readUInt16LE(54);
  const headers = Array.from({ length: binary.readUInt16LE(56) }, (_, index) => {
    const at = phoff + index * phentsize;
    const word = (offset: number) => Number(binary.readBigUInt64LE(at + offset));
    return { type: binary.readUInt32LE(at), offset: word(8), vaddr: word(16), size: word(32) };
  });
  const cString = (at: number) => binary.subarray(at, binary.indexOf(0, at)).toString("latin1");
  const fileOffset = (vaddr: number) => {
    const segment = headers.find((header) => header.type === 1 && vaddr >= header.vaddr && vaddr < header.vaddr + header.size);
    if (!segment) throw new Error(`address ${vaddr} is in no loaded segment`);
    return vaddr - segment.vaddr + segment.offset;
  };
  const interp = headers.find((header) => header.type === 3);
  const dynamic = headers.find((header) => header.type === 2);
  const entries: [bigint, number][] = [];
  for (let at = dynamic?.offset ?? 0; dynamic && at < dynamic.offset + dynamic.size; at += 16) {
    entries.push([binary.readBigUInt64LE(at), Number(binary.readBigUInt64LE(at + 8))]);
  }
  const strtab = entries.find(([tag]) => tag === 5n)?.[1];
  const names = entries.filter(([tag]) => tag === 1n);
  const needed = strtab === undefined ? [] : names.map(([, offset]) => cString(fileOffset(strtab) + offset));
  return { ...(interp ? { interpreter: cString(interp.offset) } : {}), needed };
}
