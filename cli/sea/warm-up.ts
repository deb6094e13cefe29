// Runs the artifact code paths once while the snapshot is built (cli/sea/main.ts), on a small tree in a temporary
// directory: V8 keeps the functions compiled then in the snapshot, so a push or pull does not compile its tar, gzip
// and extraction code at run time. Registry code cannot run here: it needs node:http, which a snapshot cannot hold.
import { mkdir, mkdtemp, readFile, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { extractArchiveBuffer } from "../../src/artifact/extract.ts";
import { artifactManifest, configBlob, type Layer, rfc3339Seconds } from "../../src/artifact/format.ts";
import { artifactMetadata } from "../../src/artifact/push.ts";
import { buildTarball } from "../../src/artifact/tarball.ts";

export async function warmUp(): Promise<void> {
  const work = await mkdtemp(join(tmpdir(), "ferry-sea-warm-up-"));
  try {
    const tree = join(work, "tree");
    await mkdir(join(tree, "apps"), { recursive: true });
    const manifest = "apiVersion: apps/v1\nkind: Deployment\nmetadata:\n  name: warm-up\nspec:\n  replicas: 1\n";
    for (let index = 0; index < 8; index++) await writeFile(join(tree, "apps", `deployment-${index}.yaml`), manifest.repeat(index + 1));
    await writeFile(join(tree, ".sourceignore"), "*.tmp\n");
    const tarball = await buildTarball(tree);
    try {
      const metadata = artifactMetadata({ source: "https://example.com/warm-up", revision: "main@sha1:0000000000000000000000000000000000000000" });
      const layer: Layer = { digest: tarball.digest, size: tarball.size, diffId: tarball.diffId };
      JSON.parse(configBlob(layer, rfc3339Seconds(new Date(0))).toString());
      artifactManifest(layer, metadata);
      await extractArchiveBuffer(await readFile(tarball.path), join(work, "out"));
    } finally {
      await tarball.dispose();
    }
  } finally {
    await rm(work, { recursive: true, force: true });
  }
}
