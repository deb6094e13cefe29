// The pure parts of `npm run image`: deterministic layers, the users and files the image is built with, its OCI
// documents, Debian version ordering, and the SBOM. Same inputs must give the same bytes, so same digests.
import assert from "node:assert/strict";
import { readFile } from "node:fs/promises";
import { join, relative } from "node:path";
import { describe, test } from "node:test";
import { gunzipSync } from "node:zlib";
import { Parser, type ReadEntry } from "tar";
import { IMAGE_RUN } from "../../cli/image/assemble.ts";
import { parseStanzas } from "../../cli/image/debian-control.ts";
import { compareDebianVersions } from "../../cli/image/debian-version.ts";
import { kustomizePin } from "../../cli/image/go-build.ts";
import { buildLayer, sha256 } from "../../cli/image/layer.ts";
import { nodeVersion } from "../../cli/image/node-binary.ts";
import { imageConfig, imageIndex, imageManifest, type NamedLayer, PLATFORMS, type RunSettings } from "../../cli/image/oci-image.ts";
import { debianEntries } from "../../cli/image/platform-layers.ts";
import { caBundle, GROUP, keepPackagePath, NONROOT, PASSWD } from "../../cli/image/rootfs.ts";
import { spdxDocument } from "../../cli/image/sbom.ts";
import { type LayerEntry, layerTar } from "../../cli/image/tar.ts";

interface ReadBack {
  path: string;
  type: string;
  mode: number;
  uid: number;
  gid: number;
  mtime: number;
  uname: string;
  linkpath: string;
  content: string;
}

async function readTar(tar: Buffer): Promise<ReadBack[]> {
  const entries: ReadBack[] = [];
  const parser = new Parser({
    onReadEntry: (entry: ReadEntry) => {
      const chunks: Buffer[] = [];
      entry.on("data", (chunk: Buffer) => chunks.push(chunk));
      entry.on("end", () => entries.push({
        path: entry.path,
        type: entry.type,
        mode: entry.mode ?? -1,
        uid: entry.uid ?? -1,
        gid: entry.gid ?? -1,
        mtime: (entry.mtime?.getTime() ?? -1) / 1000,
        uname: entry.uname ?? "",
        linkpath: entry.linkpath ?? "",
        content: Buffer.concat(chunks).toString(),
      }));
    },
  });
  await new Promise<void>((resolve, reject) => {
    parser.on("end", resolve);
    parser.on("error", reject);
    parser.end(tar);
  });
  return entries;
}

const file = (path: string, content: string, mode = 0o644): LayerEntry => ({ type: "file", path, mode, content: Buffer.from(content) });
const SAMPLE: LayerEntry[] = [
  file("usr/local/bin/node", "#!binary", 0o755),
  { type: "symlink", path: "lib64/ld-linux-x86-64.so.2", target: "/lib/x86_64-linux-gnu/ld-linux-x86-64.so.2" },
  { type: "directory", path: "var/cache/ferry", mode: 0o700, uid: NONROOT, gid: NONROOT },
  { type: "directory", path: "tmp", mode: 0o1777 },
  file(`opt/${"deep/".repeat(30)}file.txt`, "long path"),
];

describe("image layers", () => {
  test("the same entries in any order give the same tar, with every parent directory, sorted, at one time", async () => {
    const a = layerTar(SAMPLE, 1_700_000_000);
    const b = layerTar([...SAMPLE].reverse(), 1_700_000_000);
    assert.ok(a.equals(b));
    const entries = await readTar(a);
    const paths = entries.map((entry) => entry.path);
    assert.deepEqual(paths, [...paths].sort((x, y) => Buffer.compare(Buffer.from(x), Buffer.from(y))));
    assert.ok(paths.includes("usr/") && paths.includes("usr/local/") && paths.includes("usr/local/bin/"), paths.join(" "));
    assert.ok(entries.every((entry) => entry.mtime === 1_700_000_000 && entry.uname === ""));
  });

  test("owners, modes, symlinks and long paths read back as written", async () => {
    const entries = new Map((await readTar(layerTar(SAMPLE))).map((entry) => [entry.path, entry]));
    const cache = entries.get("var/cache/ferry/");
    assert.deepEqual([cache?.uid, cache?.gid, cache?.mode], [NONROOT, NONROOT, 0o700]);
    assert.equal(entries.get("tmp/")?.mode, 0o1777);
    assert.deepEqual([entries.get("usr/local/bin/node")?.mode, entries.get("usr/local/bin/node")?.uid], [0o755, 0]);
    assert.equal(entries.get("lib64/ld-linux-x86-64.so.2")?.linkpath, "/lib/x86_64-linux-gnu/ld-linux-x86-64.so.2");
    assert.equal(entries.get(`opt/${"deep/".repeat(30)}file.txt`)?.content, "long path");
  });

  test("a path twice, a path leaving the root, or a file used as a directory is refused by name", () => {
    assert.throws(() => layerTar([file("etc/passwd", "a"), file("/etc/passwd", "b")]), /"etc\/passwd" appears twice/);
    assert.throws(() => layerTar([file("../etc/passwd", "a")]), /leaves the root/);
    assert.throws(() => layerTar([file("etc", "a"), file("etc/passwd", "b")]), /"etc" is a file and a parent of "etc\/passwd"/);
  });

  test("the gzipped layer is the same bytes every time, and its diff_id is the digest of the tar inside", async () => {
    const first = await buildLayer(SAMPLE, 0);
    const second = await buildLayer([...SAMPLE].reverse(), 0);
    assert.equal(first.digest, second.digest);
    assert.equal(first.diffId, sha256(gunzipSync(first.blob)));
    // No time and no file name in the gzip header: bytes 4-7 (mtime) are zero and the flags byte is 0.
    assert.deepEqual([...first.blob.subarray(3, 8)], [0, 0, 0, 0, 0]);
  });
});

describe("image base files", () => {
  test("nonroot is 65532:65532 and no user has a login shell", () => {
    const users = PASSWD.trim().split("\n").map((line) => line.split(":"));
    assert.deepEqual(users.find((fields) => fields[0] === "nonroot")?.slice(2, 4), ["65532", "65532"]);
    assert.ok(users.every((fields) => fields[6] === "/sbin/nologin"), PASSWD);
    assert.match(GROUP, /^nonroot:x:65532:$/m);
  });

  test("the CA bundle joins the package's certificates in path order, each ending in a newline", () => {
    const bundle = caBundle([
      file("usr/share/ca-certificates/mozilla/B.crt", "B"),
      file("usr/share/ca-certificates/mozilla/A.crt", "A\n"),
      file("usr/sbin/update-ca-certificates", "script"),
    ]);
    assert.equal(bundle.toString(), "A\nB\n");
  });

  test("docs and manuals are left out, copyright notices stay", () => {
    assert.equal(keepPackagePath("usr/share/doc/libc6/copyright"), true);
    assert.equal(keepPackagePath("usr/share/doc/libc6/changelog.Debian.gz"), false);
    assert.equal(keepPackagePath("usr/share/man/man1/ldd.1.gz"), false);
    assert.equal(keepPackagePath("lib/x86_64-linux-gnu/libc.so.6"), true);
  });

  test("Debian packages merge as dpkg installs them; two packages with different content at one path are refused", () => {
    const stanza = (name: string) => new Map([["Package", name], ["Version", "1"]]);
    const ca = { stanza: stanza("ca-certificates"), entries: [file("usr/share/ca-certificates/mozilla/A.crt", "A\n"), file("usr/sbin/update-ca-certificates", "sh")] };
    const merged = debianEntries([
      { stanza: stanza("libc6"), entries: [{ type: "directory", path: "lib", mode: 0o755 }, file("lib/libc.so.6", "libc")] },
      { stanza: stanza("libgcc-s1"), entries: [{ type: "directory", path: "lib", mode: 0o755 }, file("lib/libgcc_s.so.1", "gcc")] },
      ca,
    ]);
    const paths = merged.map((entry) => entry.path);
    assert.ok(paths.includes("etc/ssl/certs/ca-certificates.crt") && paths.includes("var/lib/dpkg/status.d/libc6"));
    assert.ok(!paths.includes("usr/sbin/update-ca-certificates"), "ca-certificates contributes its bundle only");
    assert.throws(() => debianEntries([
      { stanza: stanza("a"), entries: [file("lib/x.so", "one")] },
      { stanza: stanza("b"), entries: [file("lib/x.so", "two")] },
      ca,
    ]), /lib\/x\.so differs between Debian packages/);
  });
});

describe("image documents", () => {
  const run: RunSettings = {
    user: "65532:65532",
    entrypoint: ["/usr/local/bin/node", "/opt/ferry/dist/ferry.mjs"],
    cmd: ["controller"],
    env: ["PATH=/usr/local/bin:/usr/bin:/bin"],
    workingDir: "/opt/ferry",
    labels: { "org.opencontainers.image.version": "1.2.3" },
  };
  const documents = async () => {
    const layers: NamedLayer[] = [{ comment: "sample", layer: await buildLayer(SAMPLE, 0) }];
    const built = (["amd64", "arm64"] as const).map((arch) => {
      const config = imageConfig(PLATFORMS[arch], layers, run, "1970-01-01T00:00:00Z");
      return { config, manifest: imageManifest(config, layers, {}), platform: PLATFORMS[arch] };
    });
    return { built, index: imageIndex(built, {}) };
  };

  test("the config runs the controller as 65532:65532, created at the epoch, with the layers' diff_ids", async () => {
    const { built } = await documents();
    const config = JSON.parse(built[1]?.config.bytes.toString() ?? "{}");
    assert.equal(config.config.User, "65532:65532");
    assert.deepEqual([config.config.Entrypoint, config.config.Cmd], [run.entrypoint, ["controller"]]);
    assert.deepEqual([config.architecture, config.variant, config.os, config.created], ["arm64", "v8", "linux", "1970-01-01T00:00:00Z"]);
    assert.equal(config.rootfs.diff_ids.length, 1);
  });

  test("the index names both platforms, and building it again gives the same digest", async () => {
    const first = await documents();
    const second = await documents();
    assert.equal(first.index.digest, second.index.digest);
    const { manifests } = JSON.parse(first.index.bytes.toString()) as { manifests: { platform: { architecture: string } }[] };
    const platforms = manifests.map((entry) => entry.platform.architecture);
    assert.deepEqual(platforms, ["amd64", "arm64"]);
  });
});

describe("Debian version order", () => {
  test("epochs, tildes, revisions and digit runs order as dpkg orders them", () => {
    const ascending = ["1.0~rc1", "1.0", "1.0-1", "1.0-1+b1", "1.0a", "1.2", "1.10", "2.36-9+deb12u13", "2.36-9+deb12u14", "1:0.1"];
    for (let index = 1; index < ascending.length; index++) {
      const [lower, higher] = [ascending[index - 1] as string, ascending[index] as string];
      assert.ok(compareDebianVersions(lower, higher) < 0, `${lower} < ${higher}`);
      assert.ok(compareDebianVersions(higher, lower) > 0, `${higher} > ${lower}`);
    }
    assert.equal(compareDebianVersions("20250419~deb12u2", "20250419~deb12u2"), 0);
    assert.ok(compareDebianVersions("20230311", "20250419~deb12u2") < 0);
  });

  test("control stanzas keep continuation lines", () => {
    const [stanza] = parseStanzas("Package: libc6\nDescription: GNU C Library\n shared libraries\n\nPackage: x\n");
    assert.equal(stanza?.get("Description"), "GNU C Library\n shared libraries");
  });
});

describe("image SBOM", () => {
  test("SPDX 2.3 that describes the image and contains every package, each with a unique id and a purl", () => {
    const document = JSON.parse(spdxDocument({
      imageName: "ferry",
      ferryVersion: "1.2.3",
      indexDigest: `sha256:${"a".repeat(64)}`,
      created: "1970-01-01T00:00:00Z",
      packages: [
        { id: "deb-amd64-libc6", name: "libc6", version: "2.36-9+deb12u14", purl: "pkg:deb/debian/libc6@2.36-9%2Bdeb12u14?arch=amd64" },
        { id: "npm-tar-7.5.23", name: "tar", version: "7.5.23", purl: "pkg:npm/tar@7.5.23", license: "BlueOak-1.0.0" },
      ],
    }).toString());
    assert.equal(document.spdxVersion, "SPDX-2.3");
    const ids = document.packages.map((entry: { SPDXID: string }) => entry.SPDXID);
    assert.equal(new Set(ids).size, ids.length);
    assert.ok(ids.every((id: string) => /^SPDXRef-[A-Za-z0-9.-]+$/.test(id)), ids.join(" "));
    const relationships = document.relationships as { relationshipType: string; relatedSpdxElement: string }[];
    const contained = relationships.filter((r) => r.relationshipType === "CONTAINS").map((r) => r.relatedSpdxElement);
    assert.deepEqual(contained, ids.slice(1));
  });
});

/** The final stage's instructions (continuation lines joined), and the ARGs before the first FROM. */
function dockerfileInstructions(text: string): { args: Map<string, string>; final: Map<string, string> } {
  const lines = text.replace(/\\\n\s*/g, " ").split("\n").filter((line) => line.trim() !== "" && !line.startsWith("#"));
  const args = new Map(lines.slice(0, lines.findIndex((line) => line.startsWith("FROM "))).filter((line) => line.startsWith("ARG "))
    .map((line) => line.slice(4).split("=") as [string, string]));
  const final = new Map(lines.slice(lines.findLastIndex((line) => line.startsWith("FROM "))).map((line) => {
    const space = line.indexOf(" ");
    return [line.slice(0, space), line.slice(space + 1).trim()] as [string, string];
  }));
  return { args, final };
}

describe("the Dockerfile", () => {
  test("runs the image as npm run image builds it: same Node, user, entrypoint, command, environment and kustomize module", async () => {
    const root = join(import.meta.dirname, "..", "..");
    const dockerfile = await readFile(join(root, "Dockerfile"), "utf8");
    const { args, final } = dockerfileInstructions(dockerfile);
    assert.equal(args.get("NODE_VERSION"), await nodeVersion(root));
    assert.equal(final.get("USER"), IMAGE_RUN.user);
    assert.equal(final.get("WORKDIR"), IMAGE_RUN.workingDir);
    assert.deepEqual(JSON.parse(final.get("ENTRYPOINT") ?? "null"), IMAGE_RUN.entrypoint);
    assert.deepEqual(JSON.parse(final.get("CMD") ?? "null"), IMAGE_RUN.cmd);
    assert.deepEqual(final.get("ENV")?.split(/\s+/), IMAGE_RUN.env);
    const { moduleDir } = await kustomizePin(root);
    assert.match(dockerfile, new RegExp(`^COPY ${relative(root, moduleDir)}/ kustomize/$`, "m"));
  });
});
