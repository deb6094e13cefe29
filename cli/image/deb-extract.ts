// The files a .deb installs (its data.tar, in whatever compression), as layer entries: `dpkg-deb --fsys-tarfile`
// unpacks the archive and node-tar reads the stream. Nothing is written to disk, and no maintainer script runs.
import { spawn } from "node:child_process";
import { Parser, type ReadEntry } from "tar";
import { type LayerEntry, normalisePath } from "./tar.ts";

export class DebExtractError extends Error {
  constructor(message: string, options?: ErrorOptions) {
    super(message, options);
    this.name = "DebExtractError";
  }
}

function fsysTarfile(debPath: string, onData: (chunk: Buffer) => void): Promise<void> {
  return new Promise((resolve, reject) => {
    const child = spawn("dpkg-deb", ["--fsys-tarfile", debPath], { stdio: ["ignore", "pipe", "pipe"] });
    let stderr = "";
    child.stdout.on("data", onData);
    child.stderr.on("data", (chunk: Buffer) => (stderr += chunk.toString()));
    child.on("error", (error: NodeJS.ErrnoException) => {
      reject(error.code === "ENOENT" ? new DebExtractError("dpkg-deb is not installed (it unpacks the Debian packages; apt-get install dpkg)") : error);
    });
    child.on("close", (code) => (code === 0 ? resolve() : reject(new DebExtractError(`dpkg-deb --fsys-tarfile ${debPath} failed: ${stderr.trim()}`))));
  });
}

function toEntry(entry: ReadEntry, path: string, content: Buffer, files: ReadonlyMap<string, LayerEntry>): LayerEntry | undefined {
  switch (entry.type) {
    case "File":
    case "OldFile":
    case "ContiguousFile":
      return { type: "file", path, mode: entry.mode ?? 0o644, content };
    case "Directory":
      return { type: "directory", path, mode: entry.mode ?? 0o755 };
    case "SymbolicLink":
      return { type: "symlink", path, target: entry.linkpath ?? "" };
    case "Link": {
      // A hard link becomes a copy: layers stay independent of which entry carried the bytes.
      const target = files.get(normalisePath(entry.linkpath ?? ""));
      if (target?.type !== "file") throw new DebExtractError(`hard link ${path} points at ${entry.linkpath}, which is not a file before it`);
      return { ...target, path };
    }
    default:
      throw new DebExtractError(`unexpected ${entry.type} entry ${path} in a package`);
  }
}

/** Every entry of the package's data.tar (the root "./" left out), in archive order. */
export async function debEntries(debPath: string): Promise<LayerEntry[]> {
  const entries = new Map<string, LayerEntry>();
  const failures: Error[] = [];
  const parser = new Parser({
    strict: true,
    onReadEntry: (entry) => {
      const chunks: Buffer[] = [];
      entry.on("data", (chunk: Buffer) => chunks.push(chunk));
      entry.on("end", () => {
        if (/^\.?\/?$/.test(entry.path)) return;
        try {
          const path = normalisePath(entry.path);
          const converted = toEntry(entry, path, Buffer.concat(chunks), entries);
          if (converted) entries.set(path, converted);
        } catch (error) {
          failures.push(error as Error);
        }
      });
    },
  });
  const parsed = new Promise<void>((resolve, reject) => {
    parser.on("end", resolve);
    parser.on("error", reject);
  });
  await fsysTarfile(debPath, (chunk) => parser.write(chunk));
  parser.end();
  await parsed;
  if (failures[0]) throw failures[0];
  return [...entries.values()];
}
