// Bundles the CLI into dist/ as plain JavaScript: one module graph with no type stripping and no package
// resolution at start-up, which is most of a short command's run time. Command modules stay separate chunks,
// loaded only when their command runs.
import { readdir, rm } from "node:fs/promises";
import { builtinModules } from "node:module";
import { join } from "node:path";
import { build, type Plugin } from "esbuild-wasm";
import { undiciWithoutHttp2 } from "./undici-without-http2.ts";

const root = join(import.meta.dirname, "..");
const outdir = join(root, "dist");

// An ESM import of a Node built-in builds an ESM facade of it, which reads every export, lazy getters included:
// `import { promisify } from "node:util"` loads util's TextDecoder and with it worker_threads, `import … from "fs"`
// (as tar writes it) loads fs/promises and readline (~3-8 ms per module, tens of ms per command). So each imported
// built-in becomes a small bundled module that requires it and re-exports its plain members; getters stay behind
// the default export and run only when used. This also avoids esbuild's CommonJS interop (__toESM), which copied
// every member of every built-in into a wrapper object in each module that imported it.
const IDENTIFIER = /^[A-Za-z_$][\w$]*$/;
const BUILTIN = new RegExp(`^(node:)?(${builtinModules.map((name) => name.replace(/[/]/g, "\\/")).join("|")})$`);

const builtinsAsModules: Plugin = {
  name: "builtins-as-modules",
  setup(builder) {
    builder.onResolve({ filter: BUILTIN }, (args) => {
      if (args.kind !== "import-statement") return undefined;
      return { path: args.path.startsWith("node:") ? args.path : `node:${args.path}`, namespace: "builtin" };
    });
    builder.onLoad({ filter: /.*/, namespace: "builtin" }, (args) => {
      const descriptors = Object.getOwnPropertyDescriptors(process.getBuiltinModule(args.path) as object);
      // Getters (fs.promises, crypto.webcrypto…) load more of Node when read, so they are reached only through
      // the default export, when used; a named import of one fails the build here, not a command at run time.
      const members = Object.entries(descriptors)
        .filter(([name, descriptor]) => descriptor.enumerable && "value" in descriptor && IDENTIFIER.test(name) && name !== "default")
        .map(([name]) => name);
      const lines = [
        `const builtin = require(${JSON.stringify(args.path)});`,
        "export default builtin;",
        ...members.map((name) => `export const ${name} = builtin.${name};`),
      ];
      return { contents: lines.join("\n"), loader: "js" };
    });
  },
};

// The bundle's chunks are named by content hash, so old ones are removed; the sandbox binary (built by
// build-sandbox.ts, which needs Go) stays, or every bundle would force a Go build before the controller can start,
// and so does the single executable (npm run sea, cli/sea/build.ts), which is built from sources, not from dist/.
for (const entry of await readdir(outdir).catch(() => [] as string[])) {
  if (entry !== "ferry-sandbox" && entry !== "ferry") await rm(join(outdir, entry), { recursive: true, force: true });
}
const result = await build({
  // The workers that read kustomize output (src/kustomize/output.ts) and evaluate CEL (src/cel/evaluate-in-worker.ts)
  // are files of their own that a Worker can load.
  entryPoints: {
    ferry: join(root, "cli", "ferry.ts"),
    "kustomize-output-worker": join(root, "src", "kustomize", "output-worker.ts"),
    "cel-worker": join(root, "src", "cel", "worker.ts"),
  },
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
  // tr46 (under the Kubernetes client's node-fetch) requires Node's deprecated punycode built-in, which prints a
  // DeprecationWarning on every Kubernetes command; the userland package of the same code takes its place.
  alias: { punycode: "punycode/" },
  plugins: [undiciWithoutHttp2("the ferry bundle"), builtinsAsModules],
});
const bytes = Object.values(result.metafile.outputs).reduce((total, output) => total + output.bytes, 0);
process.stderr.write(`bundled the CLI into ${outdir} (${Object.keys(result.metafile.outputs).length} files, ${(bytes / 1024).toFixed(0)} KiB)\n`);
