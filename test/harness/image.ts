// Builds Ferry's controller image as `npm run image` does (cli/image/build.ts in its own process) and reads what
// it wrote: the OCI layout's index, each platform's manifest and config, and files inside the layers.
import { spawn } from "node:child_process";
import { readFile } from "node:fs/promises";
import { join } from "node:path";
import { gunzipSync } from "node:zlib";
import { Parser } from "tar";

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

/** The named files (paths without a leading slash) found in the platform's layers, later layers winning. */
export async function filesInLayers(layout: string, platform: LayoutPlatform, paths: readonly string[]): Promise<Map<string, Buffer>> {
  const found = new Map<string, Buffer>();
  for (const layer of platform.layers) {
    const parser = new Parser({
      onReadEntry: (entry) => {
        if (!paths.includes(entry.path)) return entry.resume();
        const chunks: Buffer[] = [];
        entry.on("data", (chunk: Buffer) => chunks.push(chunk));
        entry.on("end", () => found.set(entry.path, Buffer.concat(chunks)));
      },
    });
    await new Promise<void>((resolve, reject) => {
      parser.on("end", resolve);
      parser.on("error", reject);
      void readFile(blobFile(layout, layer)).then((bytes) => parser.end(gunzipSync(bytes)), reject);
    });
  }
  return found;
}

/** The ELF machine of an executable: 62 is x86-64, 183 is AArch64. */
export function elfMachine(binary: Buffer): number {
  if (binary.subarray(0, 4).toString("latin1") !== "\x7fELF") throw new Error("not an ELF executable");
  return binary.readUInt16LE(18);
}
