// Signing interop with the real cosign v3 on both registries: zot (referrers API) and distribution (tag fallback).
import assert from "node:assert/strict";
import { mkdtemp, readFile, rm, stat } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, before, describe, test } from "node:test";
import { RegistryClient } from "../../src/registry/client.ts";
import { signDigestWithKey } from "../../src/signing/bundle.ts";
import { decryptPrivateKey } from "../../src/signing/keys.ts";
import { attachBundle } from "../../src/signing/store.ts";
import { skipUnlessBuilt } from "../harness/binaries.ts";
import { ferry, ferryOk } from "../harness/ferry.ts";
import { type Registry, type RegistryKind, startRegistry } from "../harness/registry.ts";
import { runTool } from "../harness/tools.ts";

const CORPORA = join(import.meta.dirname, "..", "..", "..", "shared", "corpora");
const PODINFO = join(CORPORA, "podinfo", "kustomize");
const PASSWORD = { COSIGN_PASSWORD: "ferry-test" };
/** cosign v3 without network: no signing config from TUF, no Rekor upload, plain HTTP to the test registry. */
const COSIGN_OFFLINE_SIGN = ["--use-signing-config=false", "--tlog-upload=false", "--allow-http-registry", "--allow-insecure-registry", "-y"];
const COSIGN_OFFLINE_VERIFY = ["--insecure-ignore-tlog=true", "--allow-http-registry", "--allow-insecure-registry"];

for (const kind of ["zot", "distribution"] as const satisfies readonly RegistryKind[]) {
  describe(`signing on ${kind}`, { skip: skipUnlessBuilt(kind === "zot" ? "zot" : "registry", "cosign") }, () => {
    let registry: Registry;
    let dir: string;
    let artifacts = 0;
    const ferryKey = () => join(dir, "ferry.key");
    const ferryPub = () => join(dir, "ferry.pub");

    /** Pushes a distinct unsigned artifact and returns its URL and digest. */
    async function pushArtifact(path = PODINFO) {
      const name = `signed/app${artifacts++}`;
      const url = `oci://${registry.host}/${name}:v1`;
      const pushed = await ferryOk(["push", "artifact", url, `--path=${path}`, `--source=s${artifacts}`, "--revision=r", "--insecure-registry"]);
      return { url, name, digest: pushed.stdout.trim(), ref: `${registry.host}/${name}@${pushed.stdout.trim()}` };
    }
    const verify = (url: string, ...keys: string[]) =>
      ferry(["verify", "artifact", url, ...keys.map((key) => `--key=${key}`), "--insecure-registry", "-o", "json"]);

    before(async () => {
      registry = await startRegistry({ kind });
      dir = await mkdtemp(join(tmpdir(), `ferry-signing-${kind}-`));
      await ferryOk(["keygen", "--output-key-prefix=ferry"], { cwd: dir, env: PASSWORD });
      await runTool("cosign", ["generate-key-pair", "--output-key-prefix=cosign"], { cwd: dir, env: PASSWORD });
    });
    after(async () => {
      await registry?.stop();
      await rm(dir, { recursive: true, force: true });
    });

    test("ferry keygen writes a pair cosign uses, and reads cosign's pair", async () => {
      assert.equal((await stat(ferryKey())).mode & 0o777, 0o600);
      const derived = (await runTool("cosign", ["public-key", `--key=${ferryKey()}`], { env: PASSWORD })).stdout.toString();
      assert.equal(derived.trim(), (await readFile(ferryPub(), "utf8")).trim());
      const cosignKey = await decryptPrivateKey(await readFile(join(dir, "cosign.key"), "utf8"), PASSWORD.COSIGN_PASSWORD);
      assert.equal(cosignKey.asymmetricKeyType, "ec");
      const refused = await ferry(["keygen", "--output-key-prefix=ferry"], { cwd: dir, env: PASSWORD });
      assert.equal(refused.status, 2);
      assert.match(refused.stderr, /ferry\.key already exists; pass --force/);
    });

    for (const format of ["bundle", "legacy"] as const) {
      test(`ferry signs (${format}) and cosign verify --key accepts it`, async () => {
        const artifact = await pushArtifact();
        await ferryOk(["sign", artifact.ref, `--key=${ferryKey()}`, `--signature-format=${format}`, "--insecure-registry"], { env: PASSWORD });
        const verified = await runTool("cosign", ["verify", `--key=${ferryPub()}`, ...COSIGN_OFFLINE_VERIFY, artifact.ref]);
        assert.match(verified.stdout.toString(), new RegExp(artifact.digest.slice("sha256:".length)));
        const ours = JSON.parse((await verify(artifact.url, ferryPub())).stdout);
        assert.equal(ours.format, format);
        assert.equal(ours.digest, artifact.digest);
      });

      test(`cosign signs (${format}) with its own key and ferry verifies it`, async () => {
        const artifact = await pushArtifact();
        const formatFlag = format === "legacy" ? ["--new-bundle-format=false"] : [];
        await runTool("cosign", ["sign", `--key=${join(dir, "cosign.key")}`, ...COSIGN_OFFLINE_SIGN, ...formatFlag, artifact.ref], { env: PASSWORD });
        const result = await verify(artifact.url, join(dir, "cosign.pub"));
        assert.equal(result.status, 0, result.stderr);
        const verified = JSON.parse(result.stdout);
        assert.equal(verified.verified, true);
        assert.equal(verified.format, format);
        assert.match(verified.key, /^SHA256:[0-9a-f]{64}$/);
      });
    }

    test("push --sign --signature-format both writes what cosign and ferry verify, and any of several keys may match", async () => {
      const url = `oci://${registry.host}/signed/both:v1`;
      const pushed = await ferryOk(
        ["push", "artifact", url, `--path=${PODINFO}`, "--source=s", "--revision=r", "--insecure-registry", "--sign", `--key=${ferryKey()}`, "--signature-format=both"],
        { env: PASSWORD },
      );
      const digest = pushed.stdout.trim();
      await runTool("cosign", ["verify", `--key=${ferryPub()}`, ...COSIGN_OFFLINE_VERIFY, `${registry.host}/signed/both@${digest}`]);
      const client = new RegistryClient({ insecure: true });
      try {
        const tags = await client.listTags(registry.host, "signed/both");
        assert.ok(tags.includes(`${digest.replace(":", "-")}.sig`), `no legacy signature tag in ${tags.join(", ")}`);
        const referrers = await client.referrers(registry.host, "signed/both", digest);
        assert.equal(referrers.length, 1);
      } finally {
        await client.close();
      }
      const result = await verify(url, join(dir, "cosign.pub"), ferryPub());
      assert.equal(result.status, 0, result.stderr);
    });

    test("pull with --key verifies before it extracts: unsigned content never reaches the disk", async () => {
      const unsigned = await pushArtifact();
      const refusedDir = join(dir, `pull-unsigned-${kind}`);
      const refused = await ferry(["pull", "artifact", unsigned.url, `--output=${refusedDir}`, `--key=${ferryPub()}`, "--insecure-registry"]);
      assert.equal(refused.status, 1);
      assert.match(refused.stderr, /no signature found/);
      await assert.rejects(stat(refusedDir), /ENOENT/);

      const signed = await pushArtifact();
      await ferryOk(["sign", signed.ref, `--key=env://FERRY_TEST_KEY`, "--insecure-registry"], {
        env: { ...PASSWORD, FERRY_TEST_KEY: await readFile(ferryKey(), "utf8") },
      });
      const acceptedDir = join(dir, `pull-signed-${kind}`);
      const accepted = await ferryOk(["pull", "artifact", signed.url, `--output=${acceptedDir}`, `--key=${ferryPub()}`, "--insecure-registry"]);
      assert.match(accepted.stderr, /signature verified: signed by key SHA256:/);
      assert.match(accepted.stderr, new RegExp(`digest .*${signed.digest}`));
      assert.ok((await stat(join(acceptedDir, "deployment.yaml"))).isFile());
    });

    test("verification failures exit 1 and name the reason", async () => {
      const unsigned = await pushArtifact();
      const none = await verify(unsigned.url, ferryPub());
      assert.equal(none.status, 1);
      assert.match(none.stderr, /no signature found for .*@sha256:/);

      const signed = await pushArtifact();
      await ferryOk(["sign", signed.ref, `--key=${ferryKey()}`, "--insecure-registry"], { env: PASSWORD });
      const wrongKey = await verify(signed.url, join(dir, "cosign.pub"));
      assert.equal(wrongKey.status, 1);
      assert.match(wrongKey.stderr, /does not verify with the given key/);

      // A valid signature of one artifact, attached to another: bound to the wrong digest.
      const victim = await pushArtifact(join(CORPORA, "podinfo", "deploy"));
      const client = new RegistryClient({ insecure: true });
      try {
        const key = await decryptPrivateKey(await readFile(ferryKey(), "utf8"), PASSWORD.COSIGN_PASSWORD);
        const subject = await client.resolve({ registry: registry.host, repository: victim.name, tag: "v1" });
        const foreignBundle = await signDigestWithKey(signed.digest, key);
        await attachBundle(client, { registry: registry.host, repository: victim.name }, subject, foreignBundle);
      } finally {
        await client.close();
      }
      const moved = await verify(victim.url, ferryPub());
      assert.equal(moved.status, 1);
      assert.match(moved.stderr, new RegExp(`signature is for ${signed.digest}, not ${victim.digest}`));

      const badPassword = await ferry(["sign", signed.ref, `--key=${ferryKey()}`, "--insecure-registry"], { env: { COSIGN_PASSWORD: "nope" } });
      assert.equal(badPassword.status, 1);
      assert.match(badPassword.stderr, /wrong password for .*ferry\.key/);
    });
  });
}
