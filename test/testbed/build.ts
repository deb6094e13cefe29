// Builds every test-bed peer from its pinned Go module into the cache (see paths.ts), skipping what is built.
// Usage: node test/testbed/build.ts [--only name,name] [--quiet]
import { spawn } from "node:child_process";
import { existsSync } from "node:fs";
import { chmod, cp, mkdir, mkdtemp, readdir, readFile, rename, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { basename, dirname, join } from "node:path";
import { parseArgs } from "node:util";
import { binDir, isBuilt, MODULES_DIR, peerPinHash, shareDir, stampPath, testbedDir } from "./paths.ts";
import { type CopiedModulePeer, type Generated, isCopiedModulePeer, type ModulePeer, PEERS, type Peer } from "./peers.ts";

const MINIMUM_GO = [1, 26];

function log(message: string): void {
  process.stderr.write(`[testbed] ${message}\n`);
}

function goEnv(extra: Readonly<Record<string, string>> = {}): NodeJS.ProcessEnv {
  return { ...process.env, GOTOOLCHAIN: "local", CGO_ENABLED: "0", GOFLAGS: "-buildvcs=false", ...extra };
}

async function run(
  command: string,
  args: readonly string[],
  cwd: string,
  env: NodeJS.ProcessEnv,
): Promise<string> {
  return new Promise((resolve, reject) => {
    const child = spawn(command, args, { cwd, env, stdio: ["ignore", "pipe", "pipe"] });
    let stdout = "";
    let stderr = "";
    child.stdout.on("data", (chunk: Buffer) => {
      stdout += chunk;
    });
    child.stderr.on("data", (chunk: Buffer) => {
      stderr += chunk;
    });
    child.on("error", (error) =>
      reject(new Error(`cannot run ${command}: ${error.message}`, { cause: error })),
    );
    child.on("close", (code) => {
      if (code === 0) resolve(stdout);
      else
        reject(new Error(`${command} ${args.join(" ")} failed (exit ${code}) in ${cwd}:\n${stderr.trim()}`));
    });
  });
}

async function checkGo(): Promise<void> {
  const version = await run("go", ["env", "GOVERSION"], tmpdir(), goEnv()).catch((error: Error) => {
    throw new Error(`the test bed is built with Go ${MINIMUM_GO.join(".")} or newer: ${error.message}`);
  });
  const [major = 0, minor = 0] = version.trim().replace(/^go/, "").split(".").map(Number);
  if (major < (MINIMUM_GO[0] ?? 0) || (major === MINIMUM_GO[0] && minor < (MINIMUM_GO[1] ?? 0))) {
    throw new Error(`the test bed needs Go ${MINIMUM_GO.join(".")} or newer, found ${version.trim()}`);
  }
}

function buildFlags(peer: { tags?: readonly string[]; ldflags?: readonly string[] }): string[] {
  const flags = [
    "build",
    "-mod=readonly",
    "-trimpath",
    "-ldflags",
    ["-s", "-w", ...(peer.ldflags ?? [])].join(" "),
  ];
  if (peer.tags?.length) flags.push("-tags", peer.tags.join(","));
  return flags;
}

async function goBuild(flags: string[], pkg: string, name: string, cwd: string, env: NodeJS.ProcessEnv) {
  // Build beside the final path and rename, so an interrupted build never leaves a half-written binary.
  const partial = join(binDir(), `.${name}.partial`);
  await run("go", [...flags, "-o", partial, pkg], cwd, env);
  await rename(partial, join(binDir(), name));
}

async function buildModulePeer(peer: ModulePeer): Promise<void> {
  const cwd = join(MODULES_DIR, peer.module);
  const env = goEnv(peer.env);
  for (const [name, pkg] of Object.entries(peer.binaries)) {
    await goBuild(buildFlags(peer), pkg, name, cwd, env);
  }
  for (const [modulePath, files] of Object.entries(peer.share ?? {})) {
    const dir = await moduleDir(modulePath, cwd, env);
    for (const [dest, source] of Object.entries(files)) {
      const target = join(shareDir(), dest);
      await mkdir(dirname(target), { recursive: true });
      await cp(join(dir, source), target);
      await chmod(target, 0o644);
    }
  }
  for (const generated of peer.generate ?? []) await generate(generated, cwd, env);
}

async function moduleDir(modulePath: string, cwd: string, env: NodeJS.ProcessEnv): Promise<string> {
  const info = JSON.parse(await run("go", ["list", "-mod=readonly", "-m", "-json", modulePath], cwd, env));
  if (!info.Dir) throw new Error(`module ${modulePath} is not in the build list of ${cwd}`);
  return info.Dir;
}

async function generate(generated: Generated, cwd: string, env: NodeJS.ProcessEnv): Promise<void> {
  const target = join(shareDir(), generated.dest);
  await mkdir(dirname(target), { recursive: true });
  // Written beside the target and renamed, so a failed run never leaves a partial directory.
  const out = await mkdtemp(join(dirname(target), `.${basename(target)}.partial-`));
  try {
    await chmod(out, 0o755);
    const args: string[] = [];
    for (const arg of generated.args) {
      let expanded = arg.replaceAll("{out}", out);
      for (const [placeholder, modulePath] of arg.matchAll(/\{module:([^}]+)\}/g)) {
        expanded = expanded.replace(placeholder, await moduleDir(modulePath ?? "", cwd, env));
      }
      args.push(expanded);
    }
    await run(join(binDir(), generated.binary), args, cwd, env);
    if ((await readdir(out)).length === 0) throw new Error(`${generated.binary} ${args.join(" ")} wrote nothing`);
    await rm(target, { recursive: true, force: true });
    await rename(out, target);
  } finally {
    await rm(out, { recursive: true, force: true });
  }
}

async function buildCopiedModulePeer(peer: CopiedModulePeer): Promise<void> {
  const { path, version, sum } = peer.copyOf;
  const env = goEnv();
  const info = JSON.parse(await run("go", ["mod", "download", "-json", `${path}@${version}`], tmpdir(), env));
  if (info.Error) throw new Error(`cannot download ${path}@${version}: ${info.Error}`);
  if (info.Sum !== sum) throw new Error(`${path}@${version} has checksum ${info.Sum}, pinned ${sum}`);
  const copy = await mkdtemp(join(tmpdir(), `ferry-testbed-${peer.module}-`));
  try {
    await cp(info.Dir, copy, { recursive: true });
    await run("chmod", ["-R", "u+w", copy], copy, env);
    for (const [file, content] of Object.entries(peer.placeholders)) {
      await mkdir(dirname(join(copy, file)), { recursive: true });
      await writeFile(join(copy, file), content);
    }
    for (const [name, pkg] of Object.entries(peer.binaries)) {
      await goBuild(buildFlags(peer), pkg, name, copy, env);
    }
  } finally {
    await rm(copy, { recursive: true, force: true });
  }
}

function describe(peer: Peer): string {
  return `${peer.module} (${Object.keys(peer.binaries).join(", ")})`;
}

/**
 * A peer with the same pin hash already built in another test-bed directory (the directory is named by the hash of
 * all pins, so adding one peer names a new one): copying its binaries and shared files takes seconds where
 * building kube-apiserver and friends again takes many minutes.
 */
async function reusePeer(peer: Peer): Promise<boolean> {
  const cacheRoot = dirname(testbedDir());
  const hash = peerPinHash(peer);
  for (const sibling of await readdir(cacheRoot).catch(() => [])) {
    const dir = join(cacheRoot, sibling);
    if (dir === testbedDir()) continue;
    const stamp = await readFile(join(dir, "stamps", peer.module), "utf8").catch(() => "");
    if (stamp.trim() !== hash) continue;
    const binaries = Object.keys(peer.binaries).map((name) => join(dir, "bin", name));
    if (!binaries.every((binary) => existsSync(binary))) continue;
    const shared = isCopiedModulePeer(peer)
      ? []
      : [
          ...Object.values(peer.share ?? {}).flatMap((files) => Object.keys(files)),
          ...(peer.generate ?? []).map((generated) => generated.dest),
        ];
    if (!shared.every((dest) => existsSync(join(dir, "share", dest)))) continue;
    for (const name of Object.keys(peer.binaries)) await cp(join(dir, "bin", name), join(binDir(), name), { preserveTimestamps: true });
    for (const dest of shared) {
      await mkdir(dirname(join(shareDir(), dest)), { recursive: true });
      await cp(join(dir, "share", dest), join(shareDir(), dest), { recursive: true });
    }
    log(`  reused ${peer.module} from ${dir}`);
    return true;
  }
  return false;
}

async function buildPeer(peer: Peer): Promise<number> {
  const started = Date.now();
  const heartbeat = setInterval(() => {
    log(`  still building ${peer.module}: ${Math.round((Date.now() - started) / 1000)}s`);
  }, 30_000);
  try {
    await rm(stampPath(peer), { force: true });
    if (await reusePeer(peer)) {
      // Copied as built: the stamp below records the same pin hash.
    } else if (isCopiedModulePeer(peer)) await buildCopiedModulePeer(peer);
    else await buildModulePeer(peer);
    await mkdir(dirname(stampPath(peer)), { recursive: true });
    await writeFile(stampPath(peer), `${peerPinHash(peer)}\n`);
    return Date.now() - started;
  } finally {
    clearInterval(heartbeat);
  }
}

export async function buildTestbed(
  options: { only?: readonly string[]; quiet?: boolean } = {},
): Promise<void> {
  const selected = PEERS.filter((peer) => !options.only || options.only.includes(peer.module));
  const unknown = options.only?.filter((name) => !PEERS.some((peer) => peer.module === name)) ?? [];
  if (unknown.length > 0) {
    throw new Error(
      `unknown test-bed peer ${unknown.join(", ")}; known: ${PEERS.map((p) => p.module).join(", ")}`,
    );
  }
  const missing = selected.filter((peer) => !isBuilt(peer));
  if (missing.length === 0) {
    if (!options.quiet) log(`all ${selected.length} peers are built in ${binDir()}`);
    return;
  }
  await checkGo();
  await mkdir(binDir(), { recursive: true });
  log(`building ${missing.length} of ${selected.length} peers into ${testbedDir()}`);
  const started = Date.now();
  for (const [index, peer] of missing.entries()) {
    log(`[${index + 1}/${missing.length}] ${describe(peer)}`);
    const took = await buildPeer(peer);
    log(`[${index + 1}/${missing.length}] ${peer.module} built in ${(took / 1000).toFixed(1)}s`);
  }
  log(`test bed built in ${((Date.now() - started) / 1000).toFixed(1)}s`);
}

if (import.meta.main) {
  const { values } = parseArgs({ options: { only: { type: "string" }, quiet: { type: "boolean" } } });
  buildTestbed({ only: values.only?.split(","), quiet: values.quiet ?? false }).catch((error: Error) => {
    log(`build failed: ${error.message}`);
    process.exitCode = 1;
  });
}
