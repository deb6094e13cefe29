// The least a Node.js process can do for `push artifact` (bench:artifacts measures it next to Ferry and flux):
// a sorted walk, USTAR headers for short paths, gzipSync, two blob uploads (POST then PUT) and the manifest,
// over node:http. No ignore rules, symlink checks, HEAD-before-upload, auth or retries: a lower bound.
"use strict";
const { createHash } = require("node:crypto");
const { readdirSync, readFileSync } = require("node:fs");
const { join } = require("node:path");
const { gzipSync } = require("node:zlib");
const { send, close } = require("./http.cjs");

function header(name, size, directory) {
  const block = Buffer.alloc(512);
  const octal = (value, length) => value.toString(8).padStart(length - 1, "0") + "\0";
  block.write(name, 0);
  block.write(octal(directory ? 0o755 : 0o644, 8), 100);
  block.write(octal(0, 8), 108);
  block.write(octal(0, 8), 116);
  block.write(octal(size, 12), 124);
  block.write(octal(0, 12), 136);
  block.write(directory ? "5" : "0", 156);
  block.write("ustar\0" + "00", 257);
  block.fill(0x20, 148, 156);
  let sum = 0;
  for (const byte of block) sum += byte;
  block.write(sum.toString(8).padStart(6, "0") + "\0 ", 148);
  return block;
}

function tarball(root) {
  const parts = [];
  const walk = (relative) => {
    for (const entry of readdirSync(join(root, relative), { withFileTypes: true }).sort((a, b) => (a.name < b.name ? -1 : 1))) {
      const path = relative ? `${relative}/${entry.name}` : entry.name;
      if (entry.isDirectory()) {
        parts.push(header(`${path}/`, 0, true));
        walk(path);
      } else {
        const content = readFileSync(join(root, path));
        parts.push(header(path, content.length, false), content, Buffer.alloc((512 - (content.length % 512)) % 512));
      }
    }
  };
  walk("");
  parts.push(Buffer.alloc(1024));
  return gzipSync(Buffer.concat(parts));
}

const digestOf = (bytes) => `sha256:${createHash("sha256").update(bytes).digest("hex")}`;

async function upload(host, repository, bytes) {
  const digest = digestOf(bytes);
  const location = (await send(host, "POST", `/v2/${repository}/blobs/uploads/`, { "content-length": "0" })).headers.location;
  const url = new URL(location, `http://${host}`);
  url.searchParams.set("digest", digest);
  await send(host, "PUT", `${url.pathname}${url.search}`, { "content-type": "application/octet-stream", "content-length": String(bytes.length) }, bytes);
  return { digest, size: bytes.length };
}

async function push(host, repository, tag, root, source, revision) {
  const config = Buffer.from("{}");
  const layer = tarball(root);
  const manifest = Buffer.from(JSON.stringify({
    schemaVersion: 2,
    mediaType: "application/vnd.oci.image.manifest.v1+json",
    config: { mediaType: "application/vnd.cncf.flux.config.v1+json", ...(await upload(host, repository, config)) },
    layers: [{ mediaType: "application/vnd.cncf.flux.content.v1.tar+gzip", ...(await upload(host, repository, layer)) }],
    annotations: { "org.opencontainers.image.source": source, "org.opencontainers.image.revision": revision },
  }));
  const type = { "content-type": "application/vnd.oci.image.manifest.v1+json", "content-length": String(manifest.length) };
  await send(host, "PUT", `/v2/${repository}/manifests/${tag}`, type, manifest);
  process.stdout.write(`${digestOf(manifest)}\n`);
}

const [host, repository, tag, root, source, revision] = process.argv.slice(2);
push(host, repository, tag, root, source, revision).finally(close);
