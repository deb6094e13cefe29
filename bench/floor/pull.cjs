// The least a Node.js process can do for `pull artifact` (bench:artifacts measures it next to Ferry and flux):
// node:http, one manifest and one layer request, the layer's digest, gunzipSync and a plain USTAR walk writing
// every file. No reference parsing, auth, retries, limits or path checks: a lower bound, not a client.
"use strict";
const { createHash } = require("node:crypto");
const { mkdirSync, writeFileSync } = require("node:fs");
const { dirname, join } = require("node:path");
const { gunzipSync } = require("node:zlib");
const { send, close } = require("./http.cjs");

async function pull(host, repository, tag, output) {
  const accept = { accept: "application/vnd.oci.image.manifest.v1+json" };
  const manifest = JSON.parse((await send(host, "GET", `/v2/${repository}/manifests/${tag}`, accept)).body.toString());
  const layer = manifest.layers[0];
  const blob = (await send(host, "GET", `/v2/${repository}/blobs/${layer.digest}`)).body;
  if (`sha256:${createHash("sha256").update(blob).digest("hex")}` !== layer.digest) throw new Error("layer digest mismatch");
  const tar = gunzipSync(blob);
  for (let offset = 0; offset + 512 <= tar.length && tar[offset] !== 0;) {
    const field = (start, length) => tar.toString("utf8", offset + start, offset + start + length).replace(/\0.*$/s, "");
    const prefix = field(345, 155);
    const name = prefix ? `${prefix}/${field(0, 100)}` : field(0, 100);
    const size = parseInt(field(124, 12), 8);
    const target = join(output, name);
    if (field(156, 1) === "5") {
      mkdirSync(target, { recursive: true });
    } else {
      mkdirSync(dirname(target), { recursive: true });
      writeFileSync(target, tar.subarray(offset + 512, offset + 512 + size));
    }
    offset += 512 + Math.ceil(size / 512) * 512;
  }
}

const [host, repository, tag, output] = process.argv.slice(2);
pull(host, repository, tag, output).finally(close);
