// `npm run sea`: builds dist/ferry, the CLI as one executable file (Node's single executable application) that
// needs neither npm nor Node. It is this machine's Node 24 (the pinned `node` dev dependency) with a blob injected
// by postject: the whole CLI bundled as one CommonJS script, and a V8 startup snapshot taken after that script
// has evaluated the command modules, so a command starts with its modules loaded instead of parsing them (the bulk
// of a short command's time with dist/ferry.mjs).
//
// What differs from the bundle (cli/bundle.ts):
//   - one CommonJS file with no chunks (a SEA's main cannot import() files), built from cli/sea/main.ts;
//   - built-ins a snapshot cannot hold load at first use (cli/sea/lazy-builtin.ts);
//   - the two worker scripts (kustomize output, CEL) are embedded and started with `eval: true`;
//   - the version is inlined (src/version.ts reads package.json beside the bundle);
//   - ferry-sandbox (Go) is not inside: it is found beside the executable, or FERRY_SANDBOX (controller only).
import { execFile } from "node:child_process";
import { createHash } from "node:crypto";
import { chmod, copyFile, mkdir, mkdtemp, readFile, rename, rm, writeFile } from "node:fs/promises";
import { builtinModules } from "node:module";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { promisify } from "node:util";
import { build, type Plugin } from "esbuild-wasm";
import { undiciWithoutHttp2 } from "../undici-without-http2.ts";

const exec = promisify(execFile);
const root = join(import.meta.dirname, "..", "..");
/** The base a bundled module sees as import.meta.url; the worker URLs src/ builds from it are matched below. */
const META_URL = "file:///ferry-sea/ferry.mjs";
/** The built-in modules Node 24 verifies in a user snapshot (lib/internal/v8/startup_snapshot.js); others are lazy. */
const SNAPSHOT_SAFE = new Set([
  "_stream_duplex", "_stream_passthrough", "_stream_readable", "_stream_transform", "_stream_wrap", "_stream_writable",
  "assert", "assert/strict", "async_hooks", "buffer", "console", "constants", "crypto", "diagnostics_channel", "dns", "events", "fs",
  "fs/promises", "net", "os", "path", "path/posix", "path/win32", "process", "punycode", "querystring", "stream",
  "stream/promises", "string_decoder", "sys", "timers", "timers/promises", "url", "util", "util/types", "v8", "zlib",
]);
const BUILTIN = /^(node:)?([a-z_0-9]+(\/[a-z_0-9]+)?)$/;
const NODE_MAJOR = 24;

export interface SeaBuild {
  /** The executable written. */
  readonly path: string;
  readonly sha256: string;
}

/** Builds the executable at `output` (default dist/ferry). */
export async function buildSea(
  output = join(root, "dist", "ferry"),
  options: { quiet?: boolean; snapshot?: boolean; codeCache?: boolean } = {},
): Promise<SeaBuild> {
  if (Number(process.versions.node.split(".")[0]) !== NODE_MAJOR) {
    throw new Error(`the executable is built from the running node, which must be Node ${NODE_MAJOR} (npx node cli/sea/build.ts)`);
  }
  const work = await mkdtemp(join(tmpdir(), "ferry-sea-"));
  try {
    const version = (JSON.parse(await readFile(join(root, "package.json"), "utf8")) as { version: string }).version;
    const workers = {
      [new URL("./kustomize-output-worker.mjs", META_URL).href]: "",
      [new URL("./output-worker.ts", META_URL).href]: await bundleWorker(join(root, "src", "kustomize", "output-worker.ts"), version),
      [new URL("./cel-worker.mjs", META_URL).href]: "",
      [new URL("./worker.ts", META_URL).href]: await bundleWorker(join(root, "src", "cel", "worker.ts"), version),
    };
    const bundled = join(work, "ferry.cjs");
    await bundle({
      entryPoints: [join(root, "cli", "sea", "main.ts")],
      outfile: bundled,
      plugins: [ferryMain, versionInlined(version), undiciWithoutHttp2("the ferry executable"), lazyBuiltins(workers)],
    });
    // The snapshot keeps the script's path, so the script sits at a path named by its content, not a temporary one:
    // the same sources make the same executable. (Left in place: a concurrent build may be reading it.)
    const script = await readFile(bundled);
    const scriptDirectory = join(tmpdir(), "ferry-sea", createHash("sha256").update(script).digest("hex").slice(0, 16));
    await mkdir(scriptDirectory, { recursive: true });
    const main = join(scriptDirectory, "ferry.cjs");
    await writeFile(main, script);
    const blob = join(work, "ferry.blob");
    // The command line (the config's path with it) is kept in the snapshot: the config sits beside the script.
    const config = join(scriptDirectory, "sea-config.json");
    await writeFile(config, JSON.stringify({
      main,
      output: "ferry.blob",
      disableExperimentalSEAWarning: true,
      useSnapshot: options.snapshot ?? true,
      useCodeCache: options.codeCache ?? false,
      // NODE_OPTIONS reaches the executable as it reaches node (the controller's heap budget re-run uses it).
      execArgvExtension: "env",
    }));
    // The snapshot is built in a process with a clean environment, so no variable of this one is captured.
    // Fixed seeds, so the snapshot's heap is the same on every build (V8 rehashes with a random seed on restore).
    const { stderr } = await exec(process.execPath, ["--hash-seed=1", "--random-seed=1", "--experimental-sea-config", config], {
      cwd: work,
      env: { PATH: process.env.PATH ?? "", ...(process.env.FERRY_SEA_WARM_UP ? { FERRY_SEA_WARM_UP: process.env.FERRY_SEA_WARM_UP } : {}) },
      maxBuffer: 16 * 1024 * 1024,
    });
    const unexpected = stderr.split("\n").filter((line) => line && !/ExperimentalWarning: Single executable|not yet fully verified|may still work|out-of-sync|issue tracker|--trace-warnings|Wrote single executable/.test(line));
    if (unexpected.length > 0 && !options.quiet) process.stderr.write(`${unexpected.join("\n")}\n`);
    const executable = join(work, "ferry");
    await copyFile(process.execPath, executable);
    await chmod(executable, 0o755);
    await exec(process.execPath, [
      join(root, "node_modules", "postject", "dist", "cli.js"),
      executable,
      "NODE_SEA_BLOB",
      blob,
      "--sentinel-fuse",
      "NODE_SEA_FUSE_fce680ab2cc467b6e072b8b5df1996b2",
    ]);
    await mkdir(join(output, ".."), { recursive: true });
    await copyFile(executable, `${output}.tmp`);
    await rename(`${output}.tmp`, output);
    const sha256 = createHash("sha256").update(await readFile(output)).digest("hex");
    return { path: output, sha256 };
  } finally {
    await rm(work, { recursive: true, force: true });
  }
}

function bundle(options: { entryPoints: string[]; outfile: string; plugins: Plugin[] }) {
  return build({
    ...options,
    bundle: true,
    format: "cjs",
    platform: "node",
    target: "node24",
    minifySyntax: true,
    minifyWhitespace: true,
    legalComments: "none",
    define: { "import.meta.url": JSON.stringify(META_URL) },
    // As cli/bundle.ts: the userland punycode, not Node's deprecated built-in.
    alias: { punycode: "punycode/" },
    logLevel: "error",
  });
}

/** A worker script as one CommonJS string, run with `new Worker(code, { eval: true })`. */
async function bundleWorker(entry: string, version: string): Promise<string> {
  const result = await build({
    entryPoints: [entry],
    write: false,
    bundle: true,
    format: "cjs",
    platform: "node",
    target: "node24",
    minifySyntax: true,
    minifyWhitespace: true,
    legalComments: "none",
    define: { "import.meta.url": JSON.stringify(META_URL) },
    alias: { punycode: "punycode/" },
    logLevel: "error",
    plugins: [versionInlined(version)],
  });
  return result.outputFiles[0]?.text ?? "";
}

/**
 * cli/ferry.ts runs its main at its top level (`process.exitCode = await main(…)`), which CommonJS cannot hold;
 * cli/sea/main.ts imports "ferry-sea:cli", which is ferry.ts with main exported instead, and runs it itself.
 * enableCompileCache goes too: the snapshot holds the compiled code.
 */
const ferryMain: Plugin = {
  name: "ferry-main",
  setup(builder) {
    builder.onResolve({ filter: /^ferry-sea:cli$/ }, () => ({ path: join(root, "cli", "ferry.ts"), namespace: "ferry-main" }));
    builder.onLoad({ filter: /.*/, namespace: "ferry-main" }, async (args) => {
      const source = await readFile(args.path, "utf8");
      const run = "process.exitCode = await main(process.argv.slice(2));";
      const cache = /^enableCompileCache\(\);$/m;
      if (!source.includes(run) || !cache.test(source)) {
        throw new Error(`cli/ferry.ts no longer ends with "${run}" or calls enableCompileCache(); update cli/sea/build.ts`);
      }
      return { contents: source.replace(run, "export { main };").replace(cache, ""), loader: "ts", resolveDir: join(root, "cli") };
    });
  },
};

/** src/version.ts reads package.json beside the bundle; the executable carries the version instead. */
function versionInlined(version: string): Plugin {
  return {
    name: "version-inlined",
    setup(builder) {
      builder.onLoad({ filter: /[\\/]src[\\/]version\.ts$/ }, () => ({
        contents: `export const FERRY_VERSION = ${JSON.stringify(version)};`,
        loader: "ts",
      }));
    },
  };
}

/**
 * Every built-in the snapshot cannot hold becomes a stand-in that loads it at first use (cli/sea/lazy-builtin.ts).
 * node:worker_threads also gets a Worker that starts the embedded worker scripts: in the executable there are no
 * files beside the script to load them from.
 */
function lazyBuiltins(workers: Record<string, string>): Plugin {
  const lazyModule = join(root, "cli", "sea", "lazy-builtin.ts");
  return {
    name: "lazy-builtins",
    setup(builder) {
      builder.onResolve({ filter: BUILTIN }, (args) => {
        const name = BUILTIN.exec(args.path)?.[2] ?? "";
        if (!builtinModules.includes(name) || SNAPSHOT_SAFE.has(name)) return undefined;
        if (args.importer === lazyModule) return undefined;
        return { path: `node:${name}`, namespace: "lazy-builtin" };
      });
      builder.onLoad({ filter: /.*/, namespace: "lazy-builtin" }, (args) => {
        const module = process.getBuiltinModule(args.path) as Record<string, unknown>;
        const keys = Object.getOwnPropertyNames(module);
        const primitives = Object.fromEntries(keys.map((key) => [key, module[key]]).filter(([, value]) => ["number", "string", "boolean"].includes(typeof value)));
        const lines = [
          `import { lazyBuiltin } from ${JSON.stringify(lazyModule)};`,
          `const builtin = lazyBuiltin(${JSON.stringify(args.path)}, ${JSON.stringify(keys)}, ${JSON.stringify(primitives)});`,
        ];
        if (args.path === "node:worker_threads") {
          const scripts = Object.fromEntries(Object.entries(workers).filter(([, code]) => code !== ""));
          lines.push(
            `const scripts = ${JSON.stringify(scripts)};`,
            "function Worker(file, options) {",
            "  const code = scripts[String(file)];",
            "  return code === undefined ? new builtin.Worker(file, options) : new builtin.Worker(code, { ...options, eval: true });",
            "}",
            "module.exports = new Proxy(builtin, { get: (target, key) => (key === 'Worker' ? Worker : target[key]) });",
          );
        } else {
          lines.push("module.exports = builtin;");
        }
        return { contents: lines.join("\n"), loader: "js", resolveDir: root };
      });
    },
  };
}

if (import.meta.main) {
  const started = Date.now();
  const { path, sha256 } = await buildSea(process.argv[2], {
    snapshot: process.env.FERRY_SEA_SNAPSHOT !== "0",
    codeCache: process.env.FERRY_SEA_CODE_CACHE === "1",
  });
  process.stderr.write(`built ${path} (sha256 ${sha256}) in ${((Date.now() - started) / 1000).toFixed(1)} s\n`);
}
