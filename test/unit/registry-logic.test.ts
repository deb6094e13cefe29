// Pure registry logic: retry timing, auth challenges, credential sources and the artifact's JSON shapes.
import assert from "node:assert/strict";
import { mkdtemp, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { describe, test } from "node:test";
import { fromGitHubActions } from "../../cli/git.ts";
import { artifactAnnotations, artifactManifest, configBlob } from "../../src/artifact/format.ts";
import { parseChallenges } from "../../src/registry/challenge.ts";
import { dockerConfigCredentials, parseCreds } from "../../src/registry/credentials.ts";
import { RegistryConfigError, TransportError } from "../../src/registry/errors.ts";
import { RegistryHttp } from "../../src/registry/http.ts";
import { DEFAULT_RETRY_POLICY, isRetryableError, parseRetryAfter, retryDelay } from "../../src/registry/retry.ts";

describe("retry policy", () => {
  test("Retry-After is read as seconds or an HTTP date", () => {
    assert.equal(parseRetryAfter("3"), 3000);
    const now = Date.parse("2026-01-01T00:00:00Z");
    assert.equal(parseRetryAfter("Thu, 01 Jan 2026 00:00:05 GMT", now), 5000);
    assert.equal(parseRetryAfter("soon"), undefined);
    assert.equal(parseRetryAfter(undefined), undefined);
  });

  test("backoff grows exponentially with jitter, caps, honours Retry-After and stops after the last attempt", () => {
    const low = () => 0;
    const high = () => 1;
    assert.equal(retryDelay(1, undefined, DEFAULT_RETRY_POLICY, low), 250);
    assert.equal(retryDelay(1, undefined, DEFAULT_RETRY_POLICY, high), 500);
    assert.equal(retryDelay(3, undefined, DEFAULT_RETRY_POLICY, high), 2000);
    const capped = { ...DEFAULT_RETRY_POLICY, maxAttempts: 20 };
    assert.equal(retryDelay(15, undefined, capped, high), DEFAULT_RETRY_POLICY.maxDelayMs);
    assert.equal(retryDelay(1, 7000, DEFAULT_RETRY_POLICY), 7000);
    assert.equal(retryDelay(1, 3_600_000, DEFAULT_RETRY_POLICY), undefined, "an absurd Retry-After is not waited for");
    assert.equal(retryDelay(DEFAULT_RETRY_POLICY.maxAttempts, undefined), undefined);
  });

  test("connection resets are retryable, wherever they sit in the cause chain; other errors are not", () => {
    const reset = Object.assign(new Error("socket hang up"), { code: "ECONNRESET" });
    assert.equal(isRetryableError(reset), true);
    assert.equal(isRetryableError(new Error("fetch failed", { cause: reset })), true);
    assert.equal(isRetryableError(Object.assign(new Error("bad cert"), { code: "DEPTH_ZERO_SELF_SIGNED_CERT" })), false);
  });
});

describe("WWW-Authenticate challenges", () => {
  test("parses Bearer parameters, quoted commas and several challenges", () => {
    assert.deepEqual(
      parseChallenges("Bearer realm=\"https://auth.example.com/token\",service=\"registry.example.com\",scope=\"repository:a/b:pull,push\""),
      [{ scheme: "bearer", params: { realm: "https://auth.example.com/token", service: "registry.example.com", scope: "repository:a/b:pull,push" } }],
    );
    assert.deepEqual(parseChallenges("Basic realm=\"zot\", Bearer realm=\"https://t/token\""), [
      { scheme: "basic", params: { realm: "zot" } },
      { scheme: "bearer", params: { realm: "https://t/token" } },
    ]);
    assert.deepEqual(parseChallenges("Basic realm=\"a \\\"quoted\\\" realm\""), [{ scheme: "basic", params: { realm: "a \"quoted\" realm" } }]);
  });
});

describe("credentials", () => {
  test("--creds is user:password or a bare token", () => {
    assert.deepEqual(parseCreds("ci:s3cr:et"), { kind: "basic", username: "ci", password: "s3cr:et" });
    assert.deepEqual(parseCreds("eyJhbGciOi"), { kind: "token", token: "eyJhbGciOi" });
    assert.throws(() => parseCreds(":nouser"), RegistryConfigError);
    assert.throws(() => parseCreds(""), /--creds is empty/);
  });

  test("a docker config is read by host, with https:// keys and identity tokens", async () => {
    const dir = await mkdtemp(join(tmpdir(), "ferry-dockercfg-"));
    try {
      const path = join(dir, "config.json");
      await writeFile(
        path,
        JSON.stringify({
          auths: {
            "https://registry.example.com": { auth: Buffer.from("alice:pw").toString("base64") },
            "ghcr.io": { username: "bob", password: "pat" },
            "id.example.com": { identitytoken: "refresh-me" },
            "https://index.docker.io/v1/": { auth: Buffer.from("hub:pw").toString("base64") },
          },
        }),
      );
      assert.deepEqual(await dockerConfigCredentials("registry.example.com", path), { kind: "basic", username: "alice", password: "pw" });
      assert.deepEqual(await dockerConfigCredentials("ghcr.io", path), { kind: "basic", username: "bob", password: "pat" });
      assert.deepEqual(await dockerConfigCredentials("id.example.com", path), { kind: "identity-token", token: "refresh-me" });
      assert.deepEqual(await dockerConfigCredentials("docker.io", path), { kind: "basic", username: "hub", password: "pw" });
      assert.equal(await dockerConfigCredentials("other.example.com", path), undefined);
      assert.equal(await dockerConfigCredentials("x", join(dir, "missing.json")), undefined);
      await writeFile(path, "{not json");
      await assert.rejects(dockerConfigCredentials("x", path), /cannot read Docker config/);
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  });
});

test("Docker Hub credentials are asked of a credential helper under the name docker login stores them by", async () => {
  const dir = await mkdtemp(join(tmpdir(), "ferry-helper-"));
  const path = process.env.PATH;
  try {
    // A helper that knows only Docker Hub's v1 index URL, as Docker Desktop's store does after `docker login`.
    await writeFile(
      join(dir, "docker-credential-hubonly"),
      "#!/bin/sh\nread server\nif [ \"$server\" = \"https://index.docker.io/v1/\" ]; then echo '{\"Username\":\"hub\",\"Secret\":\"s3cret\"}'; "
      + "else echo \"credentials not found in native keychain\"; exit 1; fi\n",
      { mode: 0o755 },
    );
    await writeFile(join(dir, "config.json"), JSON.stringify({ credsStore: "hubonly" }));
    process.env.PATH = `${dir}:${path}`;
    assert.deepEqual(await dockerConfigCredentials("docker.io", join(dir, "config.json")), { kind: "basic", username: "hub", password: "s3cret" });
    assert.equal(await dockerConfigCredentials("ghcr.io", join(dir, "config.json")), undefined);
  } finally {
    process.env.PATH = path;
    await rm(dir, { recursive: true, force: true });
  }
});

test("a plain-HTTP URL from an HTTPS registry (an upload Location behind a TLS proxy) is refused before anything is sent", async () => {
  const http = new RegistryHttp("registry.example.com");
  try {
    await assert.rejects(
      http.send({ method: "PUT", url: "http://registry.example.com/v2/app/blobs/uploads/1?_state=secret", scopes: [] }),
      (error: unknown) => error instanceof TransportError
        && error.message === "refusing PUT http://registry.example.com/v2/app/blobs/uploads/1: registry.example.com is served over HTTPS, this URL is not",
    );
  } finally {
    await http.close();
  }
});

describe("artifact JSON", () => {
  test("the config blob matches the bytes Flux writes before 2.9 (233 bytes for a zero created time)", () => {
    const blob = configBlob({ digest: "sha256:x", size: 1, diffId: `sha256:${"1".repeat(64)}` }, "0001-01-01T00:00:00Z");
    assert.equal(blob.length, 233);
    assert.equal(
      blob.toString(),
      `{"architecture":"","created":"0001-01-01T00:00:00Z","history":[{"created":"0001-01-01T00:00:00Z"}],"os":"","rootfs":{"type":"layers","diff_ids":["sha256:${"1".repeat(64)}"]},"config":{}}`,
    );
  });

  test("annotations are sorted, always carry the standard keys, and user keys may override them", () => {
    const annotations = artifactAnnotations({ source: "s", revision: "r", created: "2026-01-01T00:00:00Z", annotations: { zeta: "1", "org.opencontainers.image.created": "custom" } });
    assert.deepEqual(Object.keys(annotations), [
      "org.opencontainers.image.created",
      "org.opencontainers.image.revision",
      "org.opencontainers.image.source",
      "zeta",
    ]);
    assert.equal(annotations["org.opencontainers.image.created"], "custom");
    const built = artifactManifest({ digest: "sha256:l", size: 3, diffId: "sha256:d" }, { source: "s", revision: "r", created: "2026-01-01T00:00:00Z", annotations: { "org.opencontainers.image.created": "custom" } });
    assert.equal(JSON.parse(built.config.toString()).created, "custom", "config.created follows the annotation, as Flux 2.9 does");
  });
});

describe("source and revision detection", () => {
  test("GitHub Actions variables give the repository URL and <ref>@sha1:<sha>", () => {
    assert.deepEqual(
      fromGitHubActions({ GITHUB_ACTIONS: "true", GITHUB_SERVER_URL: "https://github.com", GITHUB_REPOSITORY: "acme/app", GITHUB_REF_NAME: "main", GITHUB_SHA: "abc123" }),
      { source: "https://github.com/acme/app", revision: "main@sha1:abc123" },
    );
    assert.deepEqual(fromGitHubActions({ GITHUB_REPOSITORY: "acme/app", GITHUB_SHA: "abc" }), {});
  });
});
