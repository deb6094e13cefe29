// The content layer must be deterministic, honour ignore rules, and never follow a symlink out of the root.
import assert from "node:assert/strict";
import { execFile } from "node:child_process";
import { randomBytes } from "node:crypto";
import { appendFile, chmod, mkdir, mkdtemp, readFile, rm, symlink, truncate, utimes, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, before, describe, test } from "node:test";
import { promisify } from "node:util";
import { ArtifactInputError } from "../../src/artifact/errors.ts";
import { artifactManifest, REPRODUCIBLE_CREATED } from "../../src/artifact/format.ts";
import { GZIP_BLOCK_BYTES } from "../../src/artifact/gzip.ts";
import { buildTarball, collectEntries, writeTarball } from "../../src/artifact/tarball.ts";

const exec = promisify(execFile);

async function tree(root: string, files: Record<string, string>) {
  for (const [path, content] of Object.entries(files)) {
    await mkdir(join(root, path, ".."), { recursive: true });
    await writeFile(join(root, path), content);
  }
}

describe("artifact tarball", () => {
  let dir: string;
  before(async () => {
    dir = await mkdtemp(join(tmpdir(), "ferry-tarball-"));
  });
  after(async () => {
    await rm(dir, { recursive: true, force: true });
  });

  test("the same content gives the same bytes regardless of mtimes, modes from the umask, or creation order", async () => {
    const a = join(dir, "a");
    const b = join(dir, "b");
    await tree(a, { "z.yaml": "z: 1\n", "apps/one.yaml": "one: 1\n", "apps/two.yaml": "two: 2\n" });
    await tree(b, { "apps/two.yaml": "two: 2\n", "apps/one.yaml": "one: 1\n", "z.yaml": "z: 1\n" });
    await utimes(join(b, "z.yaml"), new Date("2001-02-03"), new Date("2001-02-03"));
    await chmod(join(b, "apps/one.yaml"), 0o600);
    const first = await buildTarball(a);
    const second = await buildTarball(b);
    try {
      assert.equal(first.digest, second.digest);
      assert.equal(first.diffId, second.diffId);
      const metadata = { source: "s", revision: "r", created: REPRODUCIBLE_CREATED };
      assert.equal(artifactManifest(first, metadata).digest, artifactManifest(second, metadata).digest);
    } finally {
      await first.dispose();
      await second.dispose();
    }
  });

  test("entries are ordered, owned by root, time-free and readable by GNU tar", async () => {
    const root = join(dir, "listing");
    await tree(root, { "b.yaml": "b\n", "a/c.yaml": "c\n", "run.sh": "#!/bin/sh\n" });
    await chmod(join(root, "run.sh"), 0o750);
    const built = await buildTarball(root);
    try {
      const { stdout } = await exec("tar", ["-tvzf", built.path, "--numeric-owner"]);
      const lines = stdout.trim().split("\n").map((line) => line.replace(/\s+/g, " "));
      // Directories carry no trailing slash, as in Flux's archives.
      assert.deepEqual(lines.map((line) => line.split(" ").at(-1)), [".", "a", "a/c.yaml", "b.yaml", "run.sh"]);
      for (const line of lines) assert.match(line, /^(drwxr-xr-x|-rw-r--r--|-rwxr-xr-x) 0\/0 .* 1970-01-01 00:00 /);
      assert.match(lines.find((line) => line.endsWith("run.sh")) ?? "", /^-rwxr-xr-x/);
    } finally {
      await built.dispose();
    }
  });

  test("long paths survive through USTAR prefix or PAX records", async () => {
    const root = join(dir, "long");
    const deep = `${"d".repeat(60)}/${"e".repeat(60)}/${"f".repeat(60)}/file.yaml`;
    const wide = `${"w".repeat(120)}.yaml`;
    await tree(root, { [deep]: "deep\n", [wide]: "wide\n" });
    const built = await buildTarball(root);
    try {
      const { stdout } = await exec("tar", ["-tzf", built.path]);
      assert.ok(stdout.split("\n").includes(deep), stdout);
      assert.ok(stdout.split("\n").includes(wide), stdout);
    } finally {
      await built.dispose();
    }
  });

  test("Flux's default ignore list applies unless --ignore-paths replaces it, and .sourceignore adds to it", async () => {
    const root = join(dir, "ignored");
    await tree(root, {
      ".git/config": "[core]\n",
      "logo.png": "png",
      "keep.yaml": "keep\n",
      "secrets/key.yaml": "secret\n",
      "drafts/x.yaml": "x\n",
      ".sourceignore": "drafts/\n",
    });
    const defaults = (await collectEntries(root)).map((entry) => entry.path);
    assert.deepEqual(defaults, [".", ".sourceignore", "keep.yaml", "secrets", "secrets/key.yaml"]);
    const replaced = (await collectEntries(root, { ignorePaths: ["secrets/", "*.png,.git/"] })).map((entry) => entry.path);
    assert.deepEqual(replaced, [".", ".sourceignore", "keep.yaml"]);
  });

  test("symlinks are refused by default and resolved only inside the root", async () => {
    const root = join(dir, "links");
    await tree(root, { "real/app.yaml": "app\n" });
    await symlink("real/app.yaml", join(root, "alias.yaml"));
    await assert.rejects(collectEntries(root), (error: unknown) =>
      error instanceof ArtifactInputError && /alias\.yaml is a symlink; pass --resolve-symlinks/.test(error.message));

    const resolved = await collectEntries(root, { resolveSymlinks: true });
    assert.deepEqual(resolved.map((entry) => [entry.path, entry.kind, entry.size]), [
      [".", "directory", 0],
      ["alias.yaml", "file", 4],
      ["real", "directory", 0],
      ["real/app.yaml", "file", 4],
    ]);

    await writeFile(join(dir, "outside.yaml"), "secret\n");
    await symlink(join(dir, "outside.yaml"), join(root, "escape.yaml"));
    await assert.rejects(collectEntries(root, { resolveSymlinks: true }), /escape\.yaml points to .*outside\.yaml, outside/);
  });

  test("a single file is archived under its base name", async () => {
    const file = join(dir, "single.yaml");
    await writeFile(file, "kind: ConfigMap\n");
    assert.deepEqual((await collectEntries(file)).map((entry) => entry.path), [".", "single.yaml"]);
  });

  test("content that spans several gzip blocks, split at odd offsets, comes back byte for byte through GNU tar", async () => {
    const root = join(dir, "blocks");
    const files: Record<string, Buffer> = {
      "a-big.bin": randomBytes(GZIP_BLOCK_BYTES * 2 + 777),
      "b-odd.bin": randomBytes(GZIP_BLOCK_BYTES - 100),
      "c-tiny.yaml": Buffer.from("kind: ConfigMap\n"),
      "d/e-exact.bin": randomBytes(GZIP_BLOCK_BYTES),
    };
    for (const [path, content] of Object.entries(files)) {
      await mkdir(join(root, path, ".."), { recursive: true });
      await writeFile(join(root, path), content);
    }
    const built = await buildTarball(root);
    const out = join(dir, "blocks-out");
    await mkdir(out);
    try {
      await exec("tar", ["-xzf", built.path, "-C", out]);
      for (const [path, content] of Object.entries(files)) assert.ok((await readFile(join(out, path))).equals(content), `${path} differs`);
    } finally {
      await built.dispose();
    }
  });

  test("a file that grows or shrinks between the walk and the read fails the build", async () => {
    const root = join(dir, "changing");
    await tree(root, { "grows.yaml": "a: 1\n", "shrinks.yaml": "b: 2\n" });
    const growing = await collectEntries(root);
    await appendFile(join(root, "grows.yaml"), "c: 3\n");
    await assert.rejects(writeTarball(growing), (error: Error) => error instanceof ArtifactInputError && /grows\.yaml changed size/.test(error.message));
    await writeFile(join(root, "grows.yaml"), "a: 1\n");
    const shrinking = await collectEntries(root);
    await truncate(join(root, "shrinks.yaml"), 2);
    await assert.rejects(writeTarball(shrinking), (error: Error) => error instanceof ArtifactInputError && /shrinks\.yaml changed size/.test(error.message));
  });

  test("a missing path is a clear error", async () => {
    await assert.rejects(collectEntries(join(dir, "nope")), /cannot read --path .*nope/);
  });
});
