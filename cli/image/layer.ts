// A layer blob: the deterministic tar, gzipped with Ferry's reproducible gzip (fixed header: no time, no name, OS
// byte 255; fixed block boundaries, so the bytes do not depend on the number of cores), and the two digests the
// image needs: the blob's (in the manifest) and the uncompressed tar's (the config's diff_id).
import { createHash } from "node:crypto";
import { ParallelGzip } from "../../src/artifact/gzip.ts";
import { type LayerEntry, layerTar } from "./tar.ts";

export const LAYER_MEDIA_TYPE = "application/vnd.oci.image.layer.v1.tar+gzip";

export interface Layer {
  readonly blob: Buffer;
  readonly digest: string;
  readonly diffId: string;
  /** Uncompressed size, for people reading the build's report. */
  readonly tarSize: number;
}

export function sha256(bytes: Buffer): string {
  return `sha256:${createHash("sha256").update(bytes).digest("hex")}`;
}

export async function gzipDeterministic(input: Buffer): Promise<Buffer> {
  const chunks: Buffer[] = [];
  const gzip = new ParallelGzip((chunk) => chunks.push(chunk));
  await gzip.push(input);
  await gzip.finish();
  return Buffer.concat(chunks);
}

export async function buildLayer(entries: readonly LayerEntry[], mtime: number): Promise<Layer> {
  const tar = layerTar(entries, mtime);
  const blob = await gzipDeterministic(tar);
  return { blob, digest: sha256(blob), diffId: sha256(tar), tarSize: tar.length };
}
