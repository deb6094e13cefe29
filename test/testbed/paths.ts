// Where the test bed's binaries live, derived from the pins so that a pin change never reuses stale binaries.
import { createHash } from "node:crypto";
import { existsSync, readdirSync, readFileSync } from "node:fs";
import { homedir } from "node:os";
import { join } from "node:path";
import { PEERS, type Peer } from "./peers.ts";

export const TESTBED_SOURCE_DIR = import.meta.dirname;
export const MODULES_DIR = join(TESTBED_SOURCE_DIR, "modules");

/** Hash of one peer's pins: its definition plus every file of its wrapper module. */
export function peerPinHash(peer: Peer): string {
  const hash = createHash("sha256").update(JSON.stringify(peer));
  const moduleDir = join(MODULES_DIR, peer.module);
  if (existsSync(moduleDir)) {
    for (const name of readdirSync(moduleDir).sort()) {
      hash.update(`\0${name}\0`).update(readFileSync(join(moduleDir, name)));
    }
  }
  return hash.digest("hex");
}

/** Hash of all pins together, naming the default cache directory. */
export function pinHash(): string {
  const hash = createHash("sha256");
  for (const peer of PEERS) hash.update(peerPinHash(peer));
  return hash.digest("hex").slice(0, 16);
}

/** `FERRY_TESTBED_DIR`, else `~/.cache/ferry-testbed/<pin-hash>`. */
export function testbedDir(): string {
  return process.env.FERRY_TESTBED_DIR ?? join(homedir(), ".cache", "ferry-testbed", pinHash());
}

export function binDir(): string {
  return join(testbedDir(), "bin");
}

export function shareDir(): string {
  return join(testbedDir(), "share");
}

export function stampPath(peer: Peer): string {
  return join(testbedDir(), "stamps", peer.module);
}

/** A peer is built when its stamp records its current pin hash and every binary is present. */
export function isBuilt(peer: Peer): boolean {
  const stamp = stampPath(peer);
  if (!existsSync(stamp) || readFileSync(stamp, "utf8").trim() !== peerPinHash(peer)) return false;
  return Object.keys(peer.binaries).every((name) => existsSync(join(binDir(), name)));
}
