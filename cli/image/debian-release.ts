// A Debian suite's InRelease, verified with gpgv against the Debian archive keyring before anything in it is
// believed: its SHA256 list is what every Packages index (and through them every .deb) is checked against.
import { execFile } from "node:child_process";
import { existsSync } from "node:fs";
import { mkdtemp, readFile, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { download } from "./cache.ts";
import { type IndexFile, parseStanzas, releaseFiles } from "./debian-control.ts";

export const DEBIAN_KEYRING = "/usr/share/keyrings/debian-archive-keyring.gpg";

export interface Suite {
  /** Archive root, e.g. http://deb.debian.org/debian. */
  readonly mirror: string;
  readonly name: string;
}

export interface Release {
  readonly suite: Suite;
  readonly files: ReadonlyMap<string, IndexFile>;
}

export class ReleaseVerificationError extends Error {
  constructor(message: string, options?: ErrorOptions) {
    super(message, options);
    this.name = "ReleaseVerificationError";
  }
}

function gpgv(keyring: string, signed: string, output: string): Promise<void> {
  return new Promise((resolve, reject) => {
    execFile("gpgv", ["--keyring", keyring, "--output", output, signed], (error, _stdout, stderr) => {
      if (!error) resolve();
      else if ((error as NodeJS.ErrnoException).code === "ENOENT") {
        reject(new ReleaseVerificationError("gpgv is not installed, so Debian's InRelease signatures cannot be checked (apt-get install gpgv)"));
      } else reject(new ReleaseVerificationError(`gpgv refused ${signed}:\n${stderr.trim()}`));
    });
  });
}

/** The signed text of an InRelease file, or an error when its signature does not verify with `keyring`. */
export async function verifiedText(inRelease: Buffer, keyring: string, what: string): Promise<string> {
  if (!existsSync(keyring)) throw new ReleaseVerificationError(`Debian archive keyring ${keyring} is missing (apt-get install debian-archive-keyring)`);
  const dir = await mkdtemp(join(tmpdir(), "ferry-image-release-"));
  try {
    await writeFile(join(dir, "InRelease"), inRelease);
    await gpgv(keyring, join(dir, "InRelease"), join(dir, "Release")).catch((error: Error) => {
      throw new ReleaseVerificationError(`${what}: ${error.message}`, { cause: error });
    });
    return await readFile(join(dir, "Release"), "utf8");
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
}

/** Debian's Valid-Until ("Sat, 11 Jul 2026 10:19:01 UTC"): a mirror replaying an old, signed release is refused. */
function checkValidUntil(validUntil: string | undefined, what: string, now: Date): void {
  if (validUntil === undefined) return;
  const until = new Date(validUntil);
  if (Number.isNaN(until.getTime())) throw new ReleaseVerificationError(`${what}: unreadable Valid-Until "${validUntil}"`);
  if (until < now) throw new ReleaseVerificationError(`${what} expired at ${validUntil}: the mirror serves a stale release`);
}

export async function fetchRelease(suite: Suite, keyring = DEBIAN_KEYRING, now = new Date()): Promise<Release> {
  const url = `${suite.mirror}/dists/${suite.name}/InRelease`;
  const text = await verifiedText(await download(url), keyring, url);
  const [header] = parseStanzas(text);
  if (!header || header.get("Suite") === undefined) throw new ReleaseVerificationError(`${url} has no release header`);
  if (header.get("Codename") !== suite.name) {
    throw new ReleaseVerificationError(`${url} is signed for codename ${header.get("Codename")}, not ${suite.name}`);
  }
  checkValidUntil(header.get("Valid-Until"), url, now);
  return { suite, files: releaseFiles(header) };
}
