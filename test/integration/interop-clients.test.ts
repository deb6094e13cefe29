// Proves the interop clients are the pinned ones and do real work against the test bed's registries.
import assert from "node:assert/strict";
import { mkdir, mkdtemp, readdir, readFile, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, before, describe, test } from "node:test";
import { skipUnlessBuilt } from "../harness/binaries.ts";
import { type Registry, startRegistry } from "../harness/registry.ts";
import { runTool } from "../harness/tools.ts";

const CLIENTS = ["flux", "cosign", "kustomize", "oras", "crane"];

describe("interop clients", { skip: skipUnlessBuilt(...CLIENTS, "zot") }, () => {
  let dir: string;
  let registry: Registry;
  before(async () => {
    dir = await mkdtemp(join(tmpdir(), "ferry-interop-"));
    registry = await startRegistry({ kind: "zot" });
  });
  after(async () => {
    await registry?.stop();
    await rm(dir, { recursive: true, force: true });
  });

  test("each client reports its pinned version", async () => {
    const version = async (name: string, args: string[]) => (await runTool(name, args)).stdout.toString();
    assert.match(await version("flux", ["version", "--client"]), /flux: v2\.9\.5/);
    assert.match(await version("cosign", ["version"]), /v3\.1\.3/);
    assert.match(await version("kustomize", ["version"]), /v5\.8\.1/);
    assert.match(await version("oras", ["version"]), /Version:\s+1\.3\.3/);
    assert.match(await version("crane", ["version"]), /v0\.22\.1/);
  });

  test("flux pushes an artifact in its format and pulls back identical files", async () => {
    const source = join(dir, "manifests");
    await mkdir(join(source, "apps"), { recursive: true });
    const files = {
      "apps/configmap.yaml":
        "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: smoke\ndata:\n  color: blue\n",
      "kustomization.yaml":
        "apiVersion: kustomize.config.k8s.io/v1beta1\nkind: Kustomization\nresources:\n- apps/configmap.yaml\n",
    };
    for (const [path, content] of Object.entries(files)) await writeFile(join(source, path), content);

    const url = `oci://${registry.host}/smoke/manifests:v1`;
    await runTool("flux", [
      "push",
      "artifact",
      url,
      `--path=${source}`,
      "--source=https://ferry.dev/smoke",
      "--revision=main@sha1:0123456789abcdef0123456789abcdef01234567",
      "--insecure-registry",
    ]);
    const manifest = JSON.parse(
      (await runTool("crane", ["manifest", `${registry.host}/smoke/manifests:v1`])).stdout.toString(),
    );
    assert.equal(manifest.config.mediaType, "application/vnd.cncf.flux.config.v1+json");
    assert.equal(manifest.layers[0].mediaType, "application/vnd.cncf.flux.content.v1.tar+gzip");
    assert.equal(manifest.annotations["org.opencontainers.image.source"], "https://ferry.dev/smoke");

    const output = join(dir, "pulled");
    await mkdir(output);
    await runTool("flux", ["pull", "artifact", url, `--output=${output}`, "--insecure-registry"]);
    assert.deepEqual((await readdir(output, { recursive: true })).sort(), [
      "apps",
      "apps/configmap.yaml",
      "kustomization.yaml",
    ]);
    for (const [path, content] of Object.entries(files)) {
      assert.equal(await readFile(join(output, path), "utf8"), content);
    }

    const built = (await runTool("kustomize", ["build", output])).stdout.toString();
    assert.match(built, /kind: ConfigMap[\s\S]*name: smoke/);
  });
});
