// Bundles the CLI into dist/ as plain JavaScript: one module graph with no type stripping and no package
// resolution at start-up, which is most of a short command's run time. Command modules stay separate chunks,
// loaded only when their command runs.
import { rm } from "node:fs/promises";
import { join } from "node:path";
import { build } from "esbuild-wasm";

const root = join(import.meta.dirname, "..");
const outdir = join(root, "dist");

await rm(outdir, { recursive: true, force: true });
const result = await build({
  entryPoints: { ferry: join(root, "cli", "ferry.ts") },
  outdir,
  bundle: true,
  splitting: true,
  format: "esm",
  platform: "node",
  target: "node24",
  outExtension: { ".js": ".mjs" },
  minifySyntax: true,
  minifyWhitespace: true,
  legalComments: "linked",
  banner: {
    // Some bundled packages are CommonJS and call require(); give them one.
    js: "import { createRequire as __ferryCreateRequire } from 'node:module'; const require = __ferryCreateRequire(import.meta.url);",
  },
  logLevel: "warning",
  metafile: true,
});
const bytes = Object.values(result.metafile.outputs).reduce((total, output) => total + output.bytes, 0);
process.stderr.write(`bundled the CLI into ${outdir} (${Object.keys(result.metafile.outputs).length} files, ${(bytes / 1024).toFixed(0)} KiB)\n`);
