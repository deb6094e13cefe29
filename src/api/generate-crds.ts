// `npm run crds`: writes crds/ from the zod schemas (src/api/crd.ts); a test fails when crds/ is stale.
import { writeFile } from "node:fs/promises";
import { join } from "node:path";
import { renderCrds } from "./crd.ts";

const directory = join(import.meta.dirname, "..", "..", "crds");
for (const [file, text] of renderCrds()) {
  await writeFile(join(directory, file), text);
  process.stderr.write(`wrote crds/${file}\n`);
}
