// `npm run image` for real: Debian packages, the Node binary from npm and Go cross-compiles for linux/amd64 and
// linux/arm64, pushed to zot (referrers API) and to distribution (referrers tag fallback), then read back with crane,
// oras and cosign from the test bed. A second build from the same inputs gives the same digest.
import assert from "node:assert/strict";
import { mkdtemp, readFile, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join, posix } from "node:path";
import { after, before, describe, test } from "node:test";
import { skipUnlessBuilt } from "../harness/binaries.ts";
import { ferryOk } from "../harness/ferry.ts";
import {
  buildImage, elfDependencies, elfMachine, entriesInLayers, filesInLayers, type ImageBuildResult, type LayerEntryInfo, layoutPlatforms,
} from "../harness/image.ts";
import { type Registry, startRegistry } from "../harness/registry.ts";
import { runTool } from "../harness/tools.ts";

const PASSWORD = { COSIGN_PASSWORD: "ferry-image-test" };
const COSIGN_OFFLINE_VERIFY = ["--insecure-ignore-tlog=true", "--allow-http-registry", "--allow-insecure-registry"];
const ELF_MACHINE = { amd64: 62, arm64: 183 } as Record<string, number>;
const BINARIES = ["usr/local/bin/node", "usr/local/bin/kustomize", "opt/ferry/dist/ferry-sandbox"];
const MULTIARCH = { amd64: "x86_64-linux-gnu", arm64: "aarch64-linux-gnu" } as Record<string, string>;

/** Whether `path` (absolute) is a regular file in the image, following symlinks as the kernel would. */
function resolvesToFile(entries: ReadonlyMap<string, LayerEntryInfo>, path: string, hops = 0): boolean {
  const entry = entries.get(path.replace(/^\//, ""));
  if (entry?.type !== "SymbolicLink" || hops > 10) return entry?.type === "File";
  return resolvesToFile(entries, posix.resolve(posix.dirname(path), entry.linkpath ?? ""), hops + 1);
}

describe("npm run image", { skip: skipUnlessBuilt("zot", "registry", "crane", "oras", "cosign") }, () => {
  let zot: Registry;
  let distribution: Registry;
  let dir: string;
  let first: ImageBuildResult;
  const image = () => `${zot.host}/ferry/controller:v1`;

  before(async () => {
    [zot, distribution] = await Promise.all([startRegistry({ kind: "zot" }), startRegistry({ kind: "distribution" })]);
    dir = await mkdtemp(join(tmpdir(), "ferry-image-"));
    await ferryOk(["keygen", "--output-key-prefix=image"], { cwd: dir, env: PASSWORD });
    first = await buildImage(["--output", join(dir, "first"), "--push", image(), "--insecure-registry", "--sign-key", join(dir, "image.key")], PASSWORD);
    console.log(`# image build (both platforms, push and sign): ${first.seconds.toFixed(1)} s`);
  });
  after(async () => {
    await Promise.all([zot?.stop(), distribution?.stop()]);
    await rm(dir, { recursive: true, force: true });
  });

  test("the pushed index holds linux/amd64 and linux/arm64, each running the controller as 65532:65532", async () => {
    assert.equal((await runTool("crane", ["digest", image()])).stdout.toString().trim(), first.digest);
    const index = JSON.parse((await runTool("crane", ["manifest", image()])).stdout.toString()) as { manifests: { platform: { os: string; architecture: string } }[] };
    assert.deepEqual(index.manifests.map(({ platform }) => `${platform.os}/${platform.architecture}`), ["linux/amd64", "linux/arm64"]);
    for (const architecture of ["amd64", "arm64"]) {
      const config = JSON.parse((await runTool("crane", ["config", "--platform", `linux/${architecture}`, image()])).stdout.toString());
      assert.equal(config.architecture, architecture);
      assert.equal(config.config.User, "65532:65532");
      assert.deepEqual(config.config.Entrypoint, ["/usr/local/bin/node", "/opt/ferry/dist/ferry.mjs"]);
      assert.deepEqual(config.config.Cmd, ["controller"]);
    }
  });

  test("each platform carries Node, kustomize and ferry-sandbox built for its own architecture, and no shell", async () => {
    for (const platform of await layoutPlatforms(join(dir, "first"), "v1")) {
      const files = await filesInLayers(join(dir, "first"), platform, [...BINARIES, "bin/sh", "etc/passwd", "etc/ssl/certs/ca-certificates.crt"]);
      for (const path of BINARIES) {
        const binary = files.get(path);
        assert.ok(binary, `${path} missing from linux/${platform.architecture}`);
        assert.equal(elfMachine(binary), ELF_MACHINE[platform.architecture], `${path} on linux/${platform.architecture}`);
      }
      assert.equal(files.has("bin/sh"), false);
      assert.match(files.get("etc/passwd")?.toString() ?? "", /^nonroot:x:65532:65532:/m);
      assert.ok((files.get("etc/ssl/certs/ca-certificates.crt")?.toString().match(/BEGIN CERTIFICATE/g)?.length ?? 0) > 100);
    }
  });

  /** The SPDX documents referring to the index, as oras discovers them (unfiltered: zot 1.4 reports an artifact's
   * config media type as its artifactType, so --artifact-type would miss them). */
  async function sbomReferrers(registry: Registry, digest: string): Promise<string[]> {
    const reference = `${registry.host}/ferry/controller@${digest}`;
    const discovered = JSON.parse((await runTool("oras", ["discover", "--plain-http", "--format", "json", reference])).stdout.toString());
    const referrers = (discovered.referrers ?? discovered.manifests ?? []) as { digest: string }[];
    const manifests = await Promise.all(referrers.map(async ({ digest: referrer }) => ({
      referrer,
      manifest: JSON.parse((await runTool("oras", ["manifest", "fetch", "--plain-http", `${registry.host}/ferry/controller@${referrer}`])).stdout.toString()),
    })));
    return manifests.filter(({ manifest }) => manifest.artifactType === "application/spdx+json").map(({ manifest }) => manifest.layers[0].digest as string);
  }

  // Only linux/amd64 can be run here; for arm64 this is the check that its Node would load.
  test("on each platform Node's dynamic loader and every library it needs are in the image; the Go binaries are static", async () => {
    for (const platform of await layoutPlatforms(join(dir, "first"), "v1")) {
      const entries = await entriesInLayers(join(dir, "first"), platform);
      const binaries = await filesInLayers(join(dir, "first"), platform, BINARIES);
      const node = elfDependencies(binaries.get("usr/local/bin/node") ?? Buffer.alloc(0));
      assert.ok(node.interpreter && resolvesToFile(entries, node.interpreter), `linux/${platform.architecture}: loader ${node.interpreter} missing`);
      assert.ok(node.needed.includes("libstdc++.so.6"), node.needed.join(" "));
      const libraryDirs = [`/lib/${MULTIARCH[platform.architecture]}`, `/usr/lib/${MULTIARCH[platform.architecture]}`];
      for (const library of node.needed) {
        assert.ok(libraryDirs.some((directory) => resolvesToFile(entries, `${directory}/${library}`)), `linux/${platform.architecture}: ${library} missing`);
      }
      for (const path of BINARIES.slice(1)) assert.deepEqual(elfDependencies(binaries.get(path) ?? Buffer.alloc(0)), { needed: [] }, path);
    }
  });

  test("the SPDX SBOM is a referrer of the index and lists the Debian packages, Node, kustomize and the bundled npm packages", async () => {
    const documents = await sbomReferrers(zot, first.digest);
    assert.equal(documents.length, 1, `SPDX referrers: ${documents.join(", ")}`);
    const sbom = JSON.parse((await runTool("crane", ["blob", `${zot.host}/ferry/controller@${documents[0]}`])).stdout.toString());
    assert.equal(sbom.spdxVersion, "SPDX-2.3");
    const names = new Set((sbom.packages as { name: string }[]).map((entry) => entry.name));
    for (const name of ["libc6", "libstdc++6", "ca-certificates", "node", "sigs.k8s.io/kustomize/kustomize/v5", "tar", "@kubernetes/client-node"]) {
      assert.ok(names.has(name), `${name} missing from the SBOM`);
    }
    assert.equal(names.has("typescript"), false, "dev dependencies are not in the image");
  });

  test("cosign verify --key accepts the index's signature", async () => {
    const verified = await runTool("cosign", ["verify", `--key=${join(dir, "image.pub")}`, ...COSIGN_OFFLINE_VERIFY, image()]);
    assert.match(verified.stdout.toString(), new RegExp(first.digest.replace(":", ":")));
  });

  test("a second build from the same inputs gives the same digest, and pushes to a registry without the referrers API", async () => {
    const target = `${distribution.host}/ferry/controller:v1`;
    const second = await buildImage(["--output", join(dir, "second"), "--push", target, "--insecure-registry", "--sign-key", join(dir, "image.key")], PASSWORD);
    console.log(`# warm image build: ${second.seconds.toFixed(1)} s`);
    assert.equal(second.digest, first.digest);
    assert.deepEqual(await readFile(join(dir, "second", "index.json")), await readFile(join(dir, "first", "index.json")));
    assert.equal((await sbomReferrers(distribution, first.digest)).length, 1);
    await runTool("cosign", ["verify", `--key=${join(dir, "image.pub")}`, ...COSIGN_OFFLINE_VERIFY, target]);
  });
});
