// Directory trees as maps of relative path -> content, for asserting that files survive a round trip intact.
import { readdir, readFile } from "node:fs/promises";
import { join, relative, sep } from "node:path";

export async function readTree(root: string, options: { ignore?: (path: string) => boolean } = {}): Promise<Map<string, Buffer>> {
  const tree = new Map<string, Buffer>();
  for (const entry of await readdir(root, { recursive: true, withFileTypes: true })) {
    if (!entry.isFile()) continue;
    const path = relative(root, join(entry.parentPath, entry.name)).split(sep).join("/");
    if (options.ignore?.(path)) continue;
    tree.set(path, await readFile(join(root, path)));
  }
  return new Map([...tree.entries()].sort(([a], [b]) => (a < b ? -1 : 1)));
}

/** Lists differences between two trees; empty when identical. */
export function treeDifferences(expected: Map<string, Buffer>, actual: Map<string, Buffer>): string[] {
  const differences: string[] = [];
  for (const [path, content] of expected) {
    const other = actual.get(path);
    if (!other) differences.push(`missing ${path}`);
    else if (!other.equals(content)) differences.push(`content differs: ${path}`);
  }
  for (const path of actual.keys()) if (!expected.has(path)) differences.push(`unexpected ${path}`);
  return differences;
}
