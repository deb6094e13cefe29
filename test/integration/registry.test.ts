// Proves the registries are real: content written by one client reads back byte-identical through another,
// the referrers API behaves as each registry really does, and auth and TLS are enforced.
import assert from "node:assert/strict";
import { createHash, randomBytes } from "node:crypto";
import { mkdtemp, readFile, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, before, describe, test } from "node:test";
import { skipUnlessBuilt } from "../harness/binaries.ts";
import { probe } from "../harness/http.ts";
import { type Registry, type RegistryKind, startRegistry } from "../harness/registry.ts";
import { runTool } from "../harness/tools.ts";

const EMPTY_CONFIG = { mediaType: "application/vnd.oci.empty.v1+json", digest: "", size: 2 };
const EMPTY_JSON = Buffer.from("{}");

function sha256(bytes: Buffer): string {
  return `sha256:${createHash("sha256").update(bytes).digest("hex")}`;
}

/** oras flags that reach a test registry: plain HTTP, or TLS verified with the registry's own CA. */
function orasTransport(registry: Registry): string[] {
  return registry.tls ? [`--ca-file=${registry.caFile}`] : ["--plain-http"];
}

function orasCredentials(registry: Registry): string[] {
  const creds = registry.credentials;
  return creds ? [`--username=${creds.username}`, `--password=${creds.password}`] : [];
}

/** crane reads trust from SSL_CERT_FILE and credentials from a docker config; plain HTTP is automatic on loopback. */
async function craneEnv(registry: Registry, dir: string): Promise<NodeJS.ProcessEnv> {
  const env: NodeJS.ProcessEnv = { DOCKER_CONFIG: dir };
  const creds = registry.credentials;
  const auths = creds
    ? { [registry.host]: { auth: Buffer.from(`${creds.username}:${creds.password}`).toString("base64") } }
    : {};
  await writeFile(join(dir, "config.json"), JSON.stringify({ auths }));
  if (registry.caFile) env.SSL_CERT_FILE = registry.caFile;
  return env;
}

async function pushBlobAndManifest(registry: Registry, dir: string, repository: string) {
  const blob = randomBytes(64 * 1024);
  const blobFile = join(dir, "layer.bin");
  await writeFile(blobFile, blob);
  const reference = `${registry.host}/${repository}`;
  const common = [...orasTransport(registry), ...orasCredentials(registry)];
  await runTool("oras", ["blob", "push", ...common, `${reference}@${sha256(blob)}`, blobFile]);
  const configFile = join(dir, "config.json");
  await writeFile(configFile, EMPTY_JSON);
  await runTool("oras", ["blob", "push", ...common, `${reference}@${sha256(EMPTY_JSON)}`, configFile]);
  // Key order and spacing are ours: a registry that re-serialises the manifest would change its digest.
  const manifest = Buffer.from(
    JSON.stringify({
      schemaVersion: 2,
      mediaType: "application/vnd.oci.image.manifest.v1+json",
      artifactType: "application/vnd.ferry.smoke.v1",
      config: { ...EMPTY_CONFIG, digest: sha256(EMPTY_JSON) },
      layers: [
        { mediaType: "application/vnd.ferry.smoke.layer.v1", digest: sha256(blob), size: blob.length },
      ],
      annotations: { "org.opencontainers.image.source": "https://ferry.dev/smoke" },
    }),
  );
  const manifestFile = join(dir, "manifest.json");
  await writeFile(manifestFile, manifest);
  await runTool("oras", [
    "manifest",
    "push",
    ...common,
    "--media-type=application/vnd.oci.image.manifest.v1+json",
    `${reference}:v1`,
    manifestFile,
  ]);
  return { blob, manifest, reference };
}

for (const kind of ["zot", "distribution"] as const satisfies readonly RegistryKind[]) {
  const registryBinary = kind === "zot" ? "zot" : "registry";

  describe(`${kind} registry`, { skip: skipUnlessBuilt(registryBinary, "oras", "crane") }, () => {
    let dir: string;
    before(async () => {
      dir = await mkdtemp(join(tmpdir(), `ferry-smoke-${kind}-`));
    });
    after(async () => {
      await rm(dir, { recursive: true, force: true });
    });

    describe("plain HTTP", () => {
      let registry: Registry;
      before(async () => {
        const started = Date.now();
        registry = await startRegistry({ kind });
        console.log(`${kind} ready in ${Date.now() - started} ms`);
      });
      after(async () => {
        await registry?.stop();
      });

      test("a blob and a manifest pushed with oras read back byte-identical through crane", async () => {
        const { blob, manifest, reference } = await pushBlobAndManifest(registry, dir, "smoke/roundtrip");
        const env = await craneEnv(registry, dir);
        const manifestBack = (await runTool("crane", ["manifest", `${reference}:v1`], { env })).stdout;
        assert.ok(manifestBack.equals(manifest), "manifest bytes differ");
        assert.equal(
          (await runTool("crane", ["digest", `${reference}:v1`], { env })).stdout.toString().trim(),
          sha256(manifest),
        );
        const blobBack = (await runTool("crane", ["blob", `${reference}@${sha256(blob)}`], { env })).stdout;
        assert.ok(blobBack.equals(blob), "blob bytes differ");

        const response = await probe(`${registry.url}/v2/smoke/roundtrip/manifests/v1`, {
          headers: { accept: "application/vnd.oci.image.manifest.v1+json" },
        });
        assert.equal(response.status, 200);
        assert.equal(response.headers["docker-content-digest"], sha256(manifest));
      });

      test(
        kind === "zot" ? "the referrers API lists a manifest's referrers" : "the referrers API answers 404",
        async () => {
          const { manifest, reference } = await pushBlobAndManifest(registry, dir, "smoke/referrers");
          const signature = join(dir, "signature.json");
          await writeFile(signature, JSON.stringify({ signed: sha256(manifest) }));
          const attached = await runTool(
            "oras",
            [
              "attach",
              ...orasTransport(registry),
              "--artifact-type=application/vnd.ferry.smoke.signature.v1",
              "--format=json",
              `${reference}@${sha256(manifest)}`,
              "signature.json:application/json",
            ],
            { cwd: dir },
          );
          const referrerDigest: string = JSON.parse(attached.stdout.toString()).digest;
          assert.match(referrerDigest, /^sha256:[0-9a-f]{64}$/);

          const response = await probe(`${registry.url}/v2/smoke/referrers/referrers/${sha256(manifest)}`);
          if (kind === "zot") {
            assert.equal(response.status, 200);
            const index = JSON.parse(response.body.toString());
            assert.equal(index.mediaType, "application/vnd.oci.image.index.v1+json");
            assert.deepEqual(
              index.manifests.map((descriptor: { digest: string }) => descriptor.digest),
              [referrerDigest],
            );
          } else {
            assert.equal(response.status, 404);
            // Without the API, oras falls back to the referrers tag schema: an index tagged sha256-<hex>.
            const tag = sha256(manifest).replace(":", "-");
            const fallback = await probe(`${registry.url}/v2/smoke/referrers/manifests/${tag}`, {
              headers: { accept: "application/vnd.oci.image.index.v1+json" },
            });
            assert.equal(fallback.status, 200);
            const index = JSON.parse(fallback.body.toString());
            assert.deepEqual(
              index.manifests.map((descriptor: { digest: string }) => descriptor.digest),
              [referrerDigest],
            );
          }
        },
      );
    });

    describe("htpasswd auth", () => {
      let registry: Registry;
      before(async () => {
        registry = await startRegistry({ kind, auth: "htpasswd" });
      });
      after(async () => {
        await registry?.stop();
      });

      test("rejects anonymous and wrong-password requests and accepts the right password", async () => {
        const creds = registry.credentials;
        assert.ok(creds);
        assert.equal((await probe(`${registry.url}/v2/`)).status, 401);
        const wrong = { username: creds.username, password: `${creds.password}x` };
        assert.equal((await probe(`${registry.url}/v2/`, { basicAuth: wrong })).status, 401);
        assert.equal((await probe(`${registry.url}/v2/`, { basicAuth: creds })).status, 200);

        const configFile = join(dir, "config.json");
        await writeFile(configFile, EMPTY_JSON);
        await assert.rejects(
          runTool("oras", [
            "blob",
            "push",
            "--plain-http",
            `--username=${wrong.username}`,
            `--password=${wrong.password}`,
            `${registry.host}/smoke/auth@${sha256(EMPTY_JSON)}`,
            configFile,
          ]),
          /401|unauthorized/i,
        );
        const { manifest, reference } = await pushBlobAndManifest(registry, dir, "smoke/auth");
        const env = await craneEnv(registry, dir);
        assert.ok((await runTool("crane", ["manifest", `${reference}:v1`], { env })).stdout.equals(manifest));
      });
    });

    describe("TLS", () => {
      let registry: Registry;
      before(async () => {
        registry = await startRegistry({ kind, tls: true });
      });
      after(async () => {
        await registry?.stop();
      });

      test("serves HTTPS verified by the generated CA and refuses clients that do not trust it", async () => {
        assert.ok(registry.caFile);
        assert.match(registry.url, /^https:\/\//);
        const ca = await readFile(registry.caFile);
        assert.equal((await probe(`${registry.url}/v2/`, { ca })).status, 200);
        await assert.rejects(probe(`${registry.url}/v2/`), /self-signed|unable to verify|certificate/);

        const { blob, manifest, reference } = await pushBlobAndManifest(registry, dir, "smoke/tls");
        const env = await craneEnv(registry, dir);
        assert.ok((await runTool("crane", ["manifest", `${reference}:v1`], { env })).stdout.equals(manifest));
        assert.ok(
          (await runTool("crane", ["blob", `${reference}@${sha256(blob)}`], { env })).stdout.equals(blob),
        );
      });
    });
  });
}
