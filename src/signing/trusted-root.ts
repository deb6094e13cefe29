// Trusted roots for keyless verification: the public-good Sigstore root as shipped in @sigstore/tuf (a
// point-in-time copy, refreshed by updating the package), or a file for a private Sigstore or offline use.
import { readFile } from "node:fs/promises";
import seeds from "@sigstore/tuf/seeds.json" with { type: "json" };
import { KeyError } from "./errors.ts";

const PUBLIC_GOOD_REPOSITORY = "https://tuf-repo-cdn.sigstore.dev";

export function publicGoodTrustedRoot(): unknown {
  const encoded = (seeds as Record<string, { targets: Record<string, string> }>)[PUBLIC_GOOD_REPOSITORY]?.targets["trusted_root.json"];
  if (!encoded) throw new KeyError("the bundled public-good Sigstore trusted root is missing from @sigstore/tuf");
  return JSON.parse(Buffer.from(encoded, "base64").toString("utf8"));
}

export async function loadTrustedRoot(path: string | undefined): Promise<unknown> {
  if (path === undefined) return publicGoodTrustedRoot();
  try {
    return JSON.parse(await readFile(path, "utf8"));
  } catch (error) {
    throw new KeyError(`cannot read trusted root ${path}: ${(error as Error).message}`, { cause: error });
  }
}
