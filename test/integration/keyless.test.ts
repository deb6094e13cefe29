// Keyless verification offline: a local CA stands in for Fulcio, its certificate is the trusted root, and the
// identity and issuer rules decide who may have signed.
import assert from "node:assert/strict";
import { createPrivateKey, sign, X509Certificate } from "node:crypto";
import { mkdtemp, readFile, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { setTimeout as sleep } from "node:timers/promises";
import { after, before, describe, test } from "node:test";
import { bundleToJSON } from "@sigstore/bundle";
import { DSSEBundleBuilder } from "@sigstore/sign";
import { type LocalFulcio, startLocalFulcio } from "../../registry-fixtures/fulcio.ts";
import { RegistryClient } from "../../src/registry/client.ts";
import { IN_TOTO_PAYLOAD_TYPE, signStatement } from "../../src/signing/bundle.ts";
import { attachBundle } from "../../src/signing/store.ts";
import { skipUnlessBuilt } from "../harness/binaries.ts";
import { ferry, ferryOk } from "../harness/ferry.ts";
import { type CertificateAuthority, createCertificateAuthority, issueFulcioStyleCertificate } from "../harness/pki.ts";
import { type Registry, startRegistry } from "../harness/registry.ts";
import { runTool } from "../harness/tools.ts";

const PODINFO = join(import.meta.dirname, "..", "..", "..", "shared", "corpora", "podinfo", "kustomize");
const WORKFLOW = "https://github.com/acme/app/.github/workflows/release.yml@refs/tags/v1.0.0";
const GITHUB_ISSUER = "https://token.actions.githubusercontent.com";

describe("keyless verification against a local trusted root", { skip: skipUnlessBuilt("zot", "cosign") }, () => {
  let registry: Registry;
  let client: RegistryClient;
  let dir: string;
  let fulcio: CertificateAuthority;
  let rootFile: string;
  let localFulcio: LocalFulcio;
  let artifacts = 0;

  /** Pushes an artifact and attaches a bundle signed by a fresh Fulcio-style certificate; returns its URL. */
  async function signedArtifact(identity: string, issuer: string, options: { days?: number; ca?: CertificateAuthority } = {}) {
    const index = artifacts++;
    const url = `oci://${registry.host}/keyless/app${index}:v1`;
    const digest = (await ferryOk(["push", "artifact", url, `--path=${PODINFO}`, `--source=s${index}`, "--revision=r", "--insecure-registry"])).stdout.trim();
    const leaf = await issueFulcioStyleCertificate(dir, options.ca ?? fulcio, { name: `leaf${index}`, identity, issuer, days: options.days ?? 1 });
    const key = createPrivateKey(await readFile(leaf.keyFile));
    const certificate = await readFile(leaf.certFile, "utf8");
    const builder = new DSSEBundleBuilder({
      signer: { sign: async (data) => ({ signature: sign("sha256", data, key), key: { $case: "x509Certificate", certificate } }) },
      witnesses: [],
    });
    const bundle = await builder.create({ data: signStatement(digest), type: IN_TOTO_PAYLOAD_TYPE });
    const subject = await client.resolve({ registry: registry.host, repository: `keyless/app${index}`, digest });
    await attachBundle(client, { registry: registry.host, repository: `keyless/app${index}` }, subject, Buffer.from(JSON.stringify(bundleToJSON(bundle))));
    return url;
  }

  const verify = (url: string, ...flags: string[]) =>
    ferry(["verify", "artifact", url, `--trusted-root=${rootFile}`, "--insecure-ignore-tlog", "--insecure-registry", "-o", "json", ...flags]);

  before(async () => {
    registry = await startRegistry({ kind: "zot" });
    client = new RegistryClient({ insecure: true });
    dir = await mkdtemp(join(tmpdir(), "ferry-keyless-"));
    fulcio = await createCertificateAuthority(dir, "local-fulcio");
    const der = new X509Certificate(await readFile(fulcio.certFile)).raw.toString("base64");
    rootFile = join(dir, "trusted_root.json");
    await writeFile(
      rootFile,
      JSON.stringify({
        mediaType: "application/vnd.dev.sigstore.trustedroot+json;version=0.1",
        tlogs: [],
        certificateAuthorities: [{ subject: { organization: "ferry-test", commonName: "local-fulcio" }, uri: "https://fulcio.invalid", certChain: { certificates: [{ rawBytes: der }] }, validFor: { start: "2020-01-01T00:00:00Z" } }],
        ctlogs: [],
        timestampAuthorities: [],
      }),
    );
    localFulcio = await startLocalFulcio({ dir, caCertFile: fulcio.certFile, caKeyFile: fulcio.keyFile });
  });
  after(async () => {
    await localFulcio?.stop();
    await client?.close();
    await registry?.stop();
    await rm(dir, { recursive: true, force: true });
  });

  test("the exact identity and issuer verify, and the output names them", async () => {
    const url = await signedArtifact(WORKFLOW, GITHUB_ISSUER);
    const result = await verify(url, `--certificate-identity=${WORKFLOW}`, `--certificate-oidc-issuer=${GITHUB_ISSUER}`);
    assert.equal(result.status, 0, result.stderr);
    const output = JSON.parse(result.stdout);
    assert.equal(output.identity, WORKFLOW);
    assert.equal(output.issuer, GITHUB_ISSUER);
  });

  test("identity regexps must match the whole identity: the unanchored-regex pitfall is closed", async () => {
    const evil = `https://evil.example/fork?${WORKFLOW}`;
    const forged = await signedArtifact(evil, GITHUB_ISSUER);
    const loose = "https://github\\.com/acme/app/\\.github/workflows/.*";
    const refused = await verify(forged, `--certificate-identity-regexp=${loose}`, `--certificate-oidc-issuer=${GITHUB_ISSUER}`);
    assert.equal(refused.status, 1, "an unanchored match let a foreign identity through");
    assert.match(refused.stderr, /signed by https:\/\/evil\.example\/fork\?https:\/\/github\.com.*which does not match/);

    const genuine = await signedArtifact(WORKFLOW, GITHUB_ISSUER);
    const accepted = await verify(genuine, `--certificate-identity-regexp=${loose}`, `--certificate-oidc-issuer-regexp=https://token\\.actions\\.githubusercontent\\.com`);
    assert.equal(accepted.status, 0, accepted.stderr);
  });

  test("a wrong issuer, an expired certificate, an untrusted CA and a missing policy each fail with the reason", async () => {
    const url = await signedArtifact(WORKFLOW, "https://accounts.google.com");
    const wrongIssuer = await verify(url, `--certificate-identity=${WORKFLOW}`, `--certificate-oidc-issuer=${GITHUB_ISSUER}`);
    assert.equal(wrongIssuer.status, 1);
    assert.match(wrongIssuer.stderr, /OIDC issuer https:\/\/accounts\.google\.com, which does not match https:\/\/token\.actions/);

    const expired = await signedArtifact(WORKFLOW, GITHUB_ISSUER, { days: 0 });
    await sleep(1100);
    const late = await verify(expired, `--certificate-identity=${WORKFLOW}`, `--certificate-oidc-issuer=${GITHUB_ISSUER}`);
    assert.equal(late.status, 1);
    assert.match(late.stderr, /signing certificate is not valid at .*expired or not yet valid/);

    const rogue = await createCertificateAuthority(dir, "rogue-ca");
    const untrusted = await signedArtifact(WORKFLOW, GITHUB_ISSUER, { ca: rogue });
    const notChained = await verify(untrusted, `--certificate-identity=${WORKFLOW}`, `--certificate-oidc-issuer=${GITHUB_ISSUER}`);
    assert.equal(notChained.status, 1);
    assert.match(notChained.stderr, /does not chain to a certificate authority of the trusted root/);

    const noIssuer = await verify(url, `--certificate-identity=${WORKFLOW}`);
    assert.equal(noIssuer.status, 1);
    assert.match(noIssuer.stderr, /needs --certificate-oidc-issuer/);
  });

  test("push --sign --keyless gets a certificate for the OIDC identity and verifies by that identity", async () => {
    const url = `oci://${registry.host}/keyless/signed-in-ci:v1`;
    const token = localFulcio.mintToken({ sub: WORKFLOW });
    const pushed = await ferryOk([
      "push", "artifact", url, `--path=${PODINFO}`, "--source=s", "--revision=r", "--insecure-registry",
      "--sign", "--keyless", `--fulcio-url=${localFulcio.url}`, "--tlog-upload=false",
    ], { env: { SIGSTORE_ID_TOKEN: token } });
    assert.match(pushed.stderr, /artifact signed \(bundle\)/);
    assert.deepEqual(localFulcio.issued, [WORKFLOW]);
    const result = await verify(url, `--certificate-identity=${WORKFLOW}`, `--certificate-oidc-issuer=${localFulcio.issuerUrl}`);
    assert.equal(result.status, 0, result.stderr);
    assert.deepEqual([JSON.parse(result.stdout).identity, JSON.parse(result.stdout).issuer], [WORKFLOW, localFulcio.issuerUrl]);
    // cosign reads the same bundle against the same trusted root.
    const digest = pushed.stdout.trim();
    const cosign = await runTool("cosign", [
      "verify", `--certificate-identity=${WORKFLOW}`, `--certificate-oidc-issuer=${localFulcio.issuerUrl}`, `--trusted-root=${rootFile}`,
      "--insecure-ignore-tlog=true", "--insecure-ignore-sct=true", "--allow-http-registry", "--allow-insecure-registry",
      `${registry.host}/keyless/signed-in-ci@${digest}`,
    ]);
    assert.match(cosign.stdout.toString(), new RegExp(digest));

    const emailUrl = `oci://${registry.host}/keyless/signed-by-person:v1`;
    await ferryOk(["push", "artifact", emailUrl, `--path=${PODINFO}`, "--source=s", "--revision=r", "--insecure-registry"]);
    await ferryOk(
      ["sign", `${registry.host}/keyless/signed-by-person:v1`, "--keyless", `--fulcio-url=${localFulcio.url}`, "--tlog-upload=false", "--insecure-registry",
        `--identity-token=${localFulcio.mintToken({ sub: "1234", email: "dev@acme.example" })}`],
    );
    const byEmail = await verify(emailUrl, "--certificate-identity=dev@acme.example", `--certificate-oidc-issuer=${localFulcio.issuerUrl}`);
    assert.equal(byEmail.status, 0, byEmail.stderr);

    const forged = await ferry(["sign", `${registry.host}/keyless/signed-by-person:v1`, "--keyless", `--fulcio-url=${localFulcio.url}`, "--tlog-upload=false", "--insecure-registry",
      "--identity-token=eyJhbGciOiJFUzI1NiJ9.eyJzdWIiOiJtYWxsb3J5In0.c2lnbmF0dXJl"]);
    assert.equal(forged.status, 1, "a token the issuer did not sign must not get a certificate");
  });

  test("without a transparency log entry, verification requires --insecure-ignore-tlog", async () => {
    const url = await signedArtifact(WORKFLOW, GITHUB_ISSUER);
    const result = await ferry(["verify", "artifact", url, `--trusted-root=${rootFile}`, "--insecure-registry", `--certificate-identity=${WORKFLOW}`, `--certificate-oidc-issuer=${GITHUB_ISSUER}`]);
    assert.equal(result.status, 1);
    assert.match(result.stderr, /failed verification against the trusted root/);
  });
});
