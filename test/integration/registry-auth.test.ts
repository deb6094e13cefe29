// Credentials and transport security against real registries: htpasswd, the Docker bearer-token flow,
// docker config files with credential helpers, and TLS with a generated CA.
import assert from "node:assert/strict";
import { chmod, mkdir, mkdtemp, readFile, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, before, describe, test } from "node:test";
import { skipUnlessBuilt } from "../harness/binaries.ts";
import { ferry } from "../harness/ferry.ts";
import { startFaultProxy } from "../../registry-fixtures/fault-proxy.ts";
import { RegistryClient } from "../../src/registry/client.ts";
import { type Registry, startRegistry, TOKEN_SERVICE_NAME } from "../harness/registry.ts";

const PODINFO = join(import.meta.dirname, "..", "..", "..", "shared", "corpora", "podinfo", "kustomize");

function pushArgs(registry: Registry, path: string, ...extra: string[]): string[] {
  return ["push", "artifact", `oci://${registry.host}/${path}`, `--path=${PODINFO}`, "--source=s", "--revision=r", ...extra];
}

/** A clean environment: no inherited docker config or FERRY_CREDS. */
function isolatedEnv(dir: string, extra: NodeJS.ProcessEnv = {}): NodeJS.ProcessEnv {
  return { DOCKER_CONFIG: join(dir, "no-docker-config"), FERRY_CREDS: "", ...extra };
}

describe("registry authentication", { skip: skipUnlessBuilt("zot", "registry") }, () => {
  let dir: string;
  before(async () => {
    dir = await mkdtemp(join(tmpdir(), "ferry-auth-"));
  });
  after(async () => {
    await rm(dir, { recursive: true, force: true });
  });

  describe("htpasswd (zot)", () => {
    let registry: Registry;
    before(async () => {
      registry = await startRegistry({ kind: "zot", auth: "htpasswd" });
    });
    after(async () => {
      await registry?.stop();
    });

    test("anonymous and wrong credentials fail with a clear error that never shows the password", async () => {
      const creds = registry.credentials;
      assert.ok(creds);
      const anonymous = await ferry(pushArgs(registry, "auth/app:v1", "--insecure-registry"), { env: isolatedEnv(dir) });
      assert.equal(anonymous.status, 1);
      assert.match(anonymous.stderr, /authentication is required: pass --creds or log in with docker login/);

      const wrong = await ferry(pushArgs(registry, "auth/app:v1", "--insecure-registry", `--creds=${creds.username}:not-${creds.password}`), {
        env: isolatedEnv(dir),
      });
      assert.equal(wrong.status, 1);
      assert.match(wrong.stderr, /credentials were rejected/);
      assert.ok(!wrong.stderr.includes(creds.password), "the password leaked into the output");
    });

    test("--creds, FERRY_CREDS and a docker config auths entry all authenticate", async () => {
      const creds = registry.credentials;
      assert.ok(creds);
      const flag = await ferry(pushArgs(registry, "auth/app:v1", "--insecure-registry", `--creds=${creds.username}:${creds.password}`), {
        env: isolatedEnv(dir),
      });
      assert.equal(flag.status, 0, flag.stderr);

      const output = join(dir, "pulled-env");
      const viaEnv = await ferry(["pull", "artifact", `oci://${registry.host}/auth/app:v1`, `--output=${output}`, "--insecure-registry"], {
        env: isolatedEnv(dir, { FERRY_CREDS: `${creds.username}:${creds.password}` }),
      });
      assert.equal(viaEnv.status, 0, viaEnv.stderr);

      const dockerConfig = join(dir, "docker-auths");
      await mkdir(dockerConfig);
      const auth = Buffer.from(`${creds.username}:${creds.password}`).toString("base64");
      await writeFile(join(dockerConfig, "config.json"), JSON.stringify({ auths: { [registry.host]: { auth } } }));
      const viaConfig = await ferry(["list", "artifacts", `oci://${registry.host}/auth/app`, "--insecure-registry", "-o", "json"], {
        env: { ...isolatedEnv(dir), DOCKER_CONFIG: dockerConfig },
      });
      assert.equal(viaConfig.status, 0, viaConfig.stderr);
      assert.deepEqual(JSON.parse(viaConfig.stdout).map((artifact: { tag: string }) => artifact.tag), ["v1"]);
    });

    test("a docker config credential helper is asked for the registry's credentials", async () => {
      const creds = registry.credentials;
      assert.ok(creds);
      const bin = join(dir, "helper-bin");
      await mkdir(bin, { recursive: true });
      const calls = join(dir, "helper-calls.log");
      const helper = join(bin, "docker-credential-ferrytest");
      await writeFile(
        helper,
        [
          "#!/bin/sh",
          `[ "$1" = get ] || exit 1`,
          "read -r host",
          `echo "$host" >> ${JSON.stringify(calls)}`,
          `printf '{"ServerURL":"%s","Username":"${creds.username}","Secret":"${creds.password}"}' "$host"`,
          "",
        ].join("\n"),
      );
      await chmod(helper, 0o755);
      const dockerConfig = join(dir, "docker-helper");
      await mkdir(dockerConfig);
      await writeFile(join(dockerConfig, "config.json"), JSON.stringify({ credHelpers: { [registry.host]: "ferrytest" } }));
      const result = await ferry(pushArgs(registry, "auth/helper:v1", "--insecure-registry"), {
        env: { ...isolatedEnv(dir), DOCKER_CONFIG: dockerConfig, PATH: `${bin}:${process.env.PATH}` },
      });
      assert.equal(result.status, 0, result.stderr);
      assert.deepEqual((await readFile(calls, "utf8")).trim().split("\n"), [registry.host]);
    });
  });

  describe("bearer tokens (distribution with a Docker token service)", () => {
    let registry: Registry;
    before(async () => {
      registry = await startRegistry({ kind: "distribution", auth: "token" });
    });
    after(async () => {
      await registry?.stop();
    });

    test("push and pull get scoped tokens from the realm and reuse them", async () => {
      const creds = registry.credentials;
      const tokens = registry.tokenService;
      assert.ok(creds && tokens);
      tokens.issued.length = 0;
      const pushed = await ferry(pushArgs(registry, "team/app:v1", "--insecure-registry", `--creds=${creds.username}:${creds.password}`), {
        env: isolatedEnv(dir),
      });
      assert.equal(pushed.status, 0, pushed.stderr);
      assert.ok(tokens.issued.every((request) => request.user === creds.username && request.granted));
      // One token per distinct scope set: the anonymous probe is not repeated for every blob and manifest request.
      // One token for the whole push: concurrent uploads share it instead of each fetching their own.
      assert.deepEqual(tokens.issued.map((request) => request.scopes), [["repository:team/app:pull,push"]]);

      const output = join(dir, "token-pulled");
      const pulled = await ferry(["pull", "artifact", `oci://${registry.host}/team/app:v1`, `--output=${output}`, "--insecure-registry", `--creds=${creds.username}:${creds.password}`], {
        env: isolatedEnv(dir),
      });
      assert.equal(pulled.status, 0, pulled.stderr);
      assert.deepEqual(tokens.issued.map((request) => request.scopes).slice(1), [["repository:team/app:pull"]]);
    });

    test("a token the registry stops accepting is replaced by a new one, once", async () => {
      const creds = registry.credentials;
      const tokens = registry.tokenService;
      assert.ok(creds && tokens);
      const proxy = await startFaultProxy(registry.host);
      const client = new RegistryClient({ insecure: true, credentials: async () => ({ kind: "basic", ...creds }) });
      try {
        const reference = { registry: proxy.host, repository: "team/app", tag: "v1" };
        await client.fetchManifest(reference);
        tokens.issued.length = 0;
        // As a registry answers a revoked or early-expired token: 401 with the same challenge.
        const challenge = `Bearer realm="${tokens.realm}",service="${TOKEN_SERVICE_NAME}",scope="repository:team/app:pull"`;
        proxy.faults.push({ method: "GET", path: /\/manifests\//, times: 1, action: { kind: "status", status: 401, headers: { "www-authenticate": challenge } } });
        await client.fetchManifest(reference);
        assert.deepEqual(tokens.issued.map((request) => request.scopes), [["repository:team/app:pull"]], "one new token was fetched");
        const manifestGets = proxy.requests.filter((request) => request.path.includes("/manifests/")).map((request) => request.status);
        assert.deepEqual(manifestGets.slice(-2), [401, 200]);

        // A registry that refuses every token ends in an error after two rounds, not a loop.
        proxy.faults.push({ method: "GET", path: /\/manifests\//, action: { kind: "status", status: 401, headers: { "www-authenticate": challenge } } });
        await assert.rejects(client.fetchManifest(reference), /credentials were rejected/);
        assert.ok(tokens.issued.length <= 3, `fetched ${tokens.issued.length} tokens`);
      } finally {
        await client.close();
        await proxy.stop();
      }
    });

    test("a wrong password is rejected by the token service with a clear error", async () => {
      const creds = registry.credentials;
      assert.ok(creds);
      const result = await ferry(pushArgs(registry, "team/app:v2", "--insecure-registry", `--creds=${creds.username}:wrong`), {
        env: isolatedEnv(dir),
      });
      assert.equal(result.status, 1);
      assert.match(result.stderr, /token service http:\/\/127\.0\.0\.1:\d+ rejected the credentials .*HTTP 401/);
    });

    test("expired tokens are reported as rejected credentials, not retried forever", async () => {
      const creds = registry.credentials;
      const tokens = registry.tokenService;
      assert.ok(creds && tokens);
      tokens.options.lifetimeSeconds = -600;
      try {
        const result = await ferry(pushArgs(registry, "team/app:v3", "--insecure-registry", `--creds=${creds.username}:${creds.password}`), {
          env: isolatedEnv(dir),
        });
        assert.equal(result.status, 1);
        assert.match(result.stderr, /credentials were rejected \(wrong, expired or lacking access\)/);
      } finally {
        tokens.options.lifetimeSeconds = 300;
      }
    });
  });

  describe("TLS (zot with a generated CA)", () => {
    let registry: Registry;
    before(async () => {
      registry = await startRegistry({ kind: "zot", tls: true });
    });
    after(async () => {
      await registry?.stop();
    });

    test("pushes and pulls over TLS with --ca-file and refuses an untrusted certificate", async () => {
      assert.ok(registry.caFile);
      const untrusted = await ferry(pushArgs(registry, "tls/app:v1"), { env: isolatedEnv(dir) });
      assert.equal(untrusted.status, 1);
      assert.match(untrusted.stderr, /certificate/i);

      const pushed = await ferry(pushArgs(registry, "tls/app:v1", `--ca-file=${registry.caFile}`), { env: isolatedEnv(dir) });
      assert.equal(pushed.status, 0, pushed.stderr);
      const output = join(dir, "tls-pulled");
      const pulled = await ferry(["pull", "artifact", `oci://${registry.host}/tls/app:v1`, `--output=${output}`, `--ca-file=${registry.caFile}`], {
        env: isolatedEnv(dir),
      });
      assert.equal(pulled.status, 0, pulled.stderr);

      const missingCa = await ferry(pushArgs(registry, "tls/app:v1", "--ca-file=/nonexistent/ca.pem"), { env: isolatedEnv(dir) });
      assert.equal(missingCa.status, 1);
      assert.match(missingCa.stderr, /cannot read CA file \/nonexistent\/ca\.pem/);
    });
  });
});
