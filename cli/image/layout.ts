// Writing a built image as an OCI image layout (oci-layout, index.json, blobs/sha256/…), which podman, skopeo, crane
// and oras read. index.json names the image index by the tag and also lists the SBOM referrer (OCI 1.1 lets a layout
// hold referrers there). The directory is written beside its destination and renamed into place, so a failed build
// never leaves half a layout.
import { randomBytes } from "node:crypto";
import { mkdir, rename, rm, writeFile } from "node:fs/promises";
import { dirname, join } from "node:path";
import { allBlobs, type BuiltImage } from "./built-image.ts";
import { descriptor } from "./oci-image.ts";
import { SPDX_MEDIA_TYPE } from "./sbom.ts";

export function layoutIndex(image: BuiltImage, tag: string): Buffer {
  return Buffer.from(JSON.stringify({
    schemaVersion: 2,
    mediaType: "application/vnd.oci.image.index.v1+json",
    manifests: [
      { ...descriptor(image.index), annotations: { "org.opencontainers.image.ref.name": tag } },
      { ...descriptor(image.sbom.manifest), artifactType: SPDX_MEDIA_TYPE },
    ],
  }));
}

export async function writeLayout(directory: string, image: BuiltImage, tag: string): Promise<void> {
  const staging = join(dirname(directory), `.${randomBytes(4).toString("hex")}.partial-layout`);
  try {
    await mkdir(join(staging, "blobs", "sha256"), { recursive: true });
    for (const blob of allBlobs(image)) await writeFile(join(staging, "blobs", "sha256", blob.digest.slice("sha256:".length)), blob.bytes);
    await writeFile(join(staging, "oci-layout"), JSON.stringify({ imageLayoutVersion: "1.0.0" }));
    await writeFile(join(staging, "index.json"), layoutIndex(image, tag));
    await rm(directory, { recursive: true, force: true });
    await rename(staging, directory);
  } finally {
    await rm(staging, { recursive: true, force: true });
  }
}
