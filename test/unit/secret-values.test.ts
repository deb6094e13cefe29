// Masking what a reconcile must not report: values read from Secrets and the data of Secrets it built.
import assert from "node:assert/strict";
import { describe, test } from "node:test";
import { SecretValues } from "../../src/reconcilers/secret-values.ts";

describe("secret values in messages", () => {
  test("substituted values and a built Secret's data (encoded and decoded) are masked; short values are left alone", () => {
    const secrets = new SecretValues();
    secrets.add("s3cr3t-token-value");
    secrets.add("abc");
    secrets.addSecretObject({ apiVersion: "v1", kind: "Secret", data: { password: Buffer.from("hunter22").toString("base64") }, stringData: { key: "plain-key" } });
    const message = "metadata.labels: Invalid value: \"s3cr3t-token-value\": must be no more than 63 characters; "
      + `data: ${Buffer.from("hunter22").toString("base64")} (hunter22), plain-key, abc`;
    assert.equal(secrets.redact(message), "metadata.labels: Invalid value: \"[redacted]\": must be no more than 63 characters; data: [redacted] ([redacted]), [redacted], abc");
  });

  test("a value containing another is masked whole", () => {
    const secrets = new SecretValues();
    secrets.add("token");
    secrets.add("prefix-token-suffix");
    assert.equal(secrets.redact("got prefix-token-suffix and token"), "got [redacted] and [redacted]");
  });

  test("objects that are not core Secrets add nothing", () => {
    const secrets = new SecretValues();
    secrets.addSecretObject({ apiVersion: "v1", kind: "ConfigMap", data: { a: "visible-value" } });
    secrets.addSecretObject({ apiVersion: "example.com/v1", kind: "Secret", data: { a: "visible-value" } });
    assert.equal(secrets.redact("visible-value"), "visible-value");
  });
});

describe("secret values in the forms messages carry them", () => {
  test("a value with quotes or line breaks is masked as the apiserver quotes it and as substitution joins it", () => {
    const secrets = new SecretValues();
    secrets.add("p\"ssw0rd-with-quote");
    secrets.add("first-half-secret\nsecond-half-secret");
    const message = "Invalid value: \"p\\\"ssw0rd-with-quote\"; Invalid value: \"first-half-secretsecond-half-secret\"; "
      + "Invalid value: \"first-half-secret\\nsecond-half-secret\"; and alone: second-half-secret";
    const redacted = secrets.redact(message);
    for (const piece of ["ssw0rd", "first-half", "second-half"]) assert.ok(!redacted.includes(piece), `${piece} in ${redacted}`);
  });
});
