import assert from "node:assert/strict";
import { describe, test } from "node:test";
import { InvalidReferenceError } from "../../src/registry/errors.ts";
import { apiHost, formatReference, formatUrl, parseReference } from "../../src/registry/reference.ts";

const DIGEST = `sha256:${"a".repeat(64)}`;

describe("parseReference", () => {
  test("parses host:port, nested repository, tag and digest", () => {
    assert.deepEqual(parseReference(`oci://127.0.0.1:5000/team/app/manifests:v1.2.3@${DIGEST}`), {
      registry: "127.0.0.1:5000",
      repository: "team/app/manifests",
      tag: "v1.2.3",
      digest: DIGEST,
    });
    assert.deepEqual(parseReference("oci://ghcr.io/org/repo"), {
      registry: "ghcr.io",
      repository: "org/repo",
    });
  });

  test("applies Docker Hub defaults", () => {
    assert.deepEqual(parseReference("nginx:1.27"), {
      registry: "docker.io",
      repository: "library/nginx",
      tag: "1.27",
    });
    assert.deepEqual(parseReference("oci://docker.io/stefanprodan/podinfo"), {
      registry: "docker.io",
      repository: "stefanprodan/podinfo",
    });
    assert.equal(parseReference("oci://index.docker.io/library/alpine").registry, "docker.io");
    assert.equal(apiHost(parseReference("alpine")), "registry-1.docker.io");
    assert.equal(parseReference("localhost/app:dev").registry, "localhost");
  });

  test("parses IPv6 hosts with and without ports", () => {
    assert.deepEqual(parseReference("oci://[::1]:5000/app:v1"), {
      registry: "[::1]:5000",
      repository: "app",
      tag: "v1",
    });
    assert.deepEqual(parseReference("oci://[fd00::1]/app"), { registry: "[fd00::1]", repository: "app" });
  });

  test("round-trips through formatReference and formatUrl", () => {
    const url = `oci://registry.example.com:8443/a/b:latest@${DIGEST}`;
    assert.equal(formatUrl(parseReference(url)), url);
    assert.equal(formatReference(parseReference("oci://[::1]:5000/app:v1")), "[::1]:5000/app:v1");
  });

  const malformed: Array<[string, RegExp]> = [
    ["127.0.0.1:5000/app", /oci:\/\/<domain>\/<org>\/<repo>/],
    ["oci://", /empty/],
    ["oci://ghcr.io/Org/app", /"Org" is invalid \(repository names must be lowercase\)/],
    ["oci://ghcr.io//app", /empty component/],
    ["oci://ghcr.io/app:", /tag "" must match/],
    ["oci://ghcr.io/app:-bad", /tag "-bad"/],
    ["oci://ghcr.io/app@sha256:abc", /digest "sha256:abc"/],
    ["oci://ghcr.io:99999/app", /port 99999 is out of range/],
    ["oci://bad_host.io:80/app", /registry host "bad_host.io:80"/],
    [`oci://ghcr.io/${"a".repeat(256)}`, /longer than 255/],
    ["https://ghcr.io/app", /oci:\/\/<domain>/],
  ];
  for (const [input, message] of malformed) {
    test(`rejects ${JSON.stringify(input.slice(0, 40))} naming what is wrong`, () => {
      assert.throws(
        () => parseReference(input, { requireScheme: true }),
        (error: unknown) =>
          error instanceof InvalidReferenceError
          && error.disposition === "stall"
          && error.message.includes(input)
          && message.test(error.message),
      );
    });
  }
});
