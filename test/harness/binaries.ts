// Finds the test bed's binaries and decides what a test does when one is missing: skip locally, fail in CI.
import { existsSync } from "node:fs";
import { join } from "node:path";
import { binDir, isBuilt, shareDir } from "../testbed/paths.ts";
import { PEERS } from "../testbed/peers.ts";

export const IN_CI = process.env.CI === "true" || process.env.CI === "1";

function peerOf(binary: string) {
  const peer = PEERS.find((candidate) => binary in candidate.binaries);
  if (!peer) throw new Error(`${binary} is not a test-bed binary; see test/testbed/peers.ts`);
  return peer;
}

/** Names of the given binaries whose peer is not built at its current pins. */
export function missingBinaries(...binaries: string[]): string[] {
  return binaries.filter((binary) => !isBuilt(peerOf(binary)));
}

export function binary(name: string): string {
  if (missingBinaries(name).length > 0) {
    throw new Error(`test-bed binary ${name} is not built; run: npm run testbed:build`);
  }
  return join(binDir(), name);
}

export function sharedFile(relativePath: string): string {
  const path = join(shareDir(), relativePath);
  if (!existsSync(path))
    throw new Error(`test-bed file ${relativePath} is missing; run: npm run testbed:build`);
  return path;
}

/**
 * For `describe(name, { skip: skipUnlessBuilt(...) })`: a reason to skip when a peer is missing on a developer's
 * machine. In CI a missing peer is a failure, never a skip.
 */
export function skipUnlessBuilt(...binaries: string[]): string | false {
  const missing = missingBinaries(...binaries);
  if (missing.length === 0) return false;
  const message = `test-bed binaries not built: ${missing.join(", ")} (run: npm run testbed:build)`;
  if (IN_CI) throw new Error(`${message}; CI may not skip tests for a missing peer`);
  return message;
}
