// The SOPS decryptor against files the real sops binary encrypts at test time with keys the real age-keygen makes:
// every format Ferry reads, the encryption rules, and every way a hostile or broken file must fail (tampering, a
// wrong key, unsupported backends, size and alias bombs), with no plaintext in any message.
import assert from "node:assert/strict";
import { execFile } from "node:child_process";
import { mkdir, mkdtemp, readFile, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, before, describe, test } from "node:test";
import { promisify } from "node:util";
import yaml from "js-yaml";
import { AgeIdentities } from "../../src/decryption/age-keys.ts";
import { decryptBuiltObjects } from "../../src/decryption/built-objects.ts";
import { DecryptionError, DecryptionKeyError, UnsupportedDecryptionError } from "../../src/decryption/errors.ts";
import { decryptKustomizationFiles } from "../../src/decryption/kustomization-files.ts";
import { type SopsFormat } from "../../src/decryption/sops-formats.ts";
import { decryptSops } from "../../src/decryption/sops.ts";
import { YamlInputError } from "../../src/kustomize/yaml-load.ts";
import { binary, skipUnlessBuilt } from "../harness/binaries.ts";

const exec = promisify(execFile);
const PASSWORD = "correct-horse-battery-staple";
const SECRET = `apiVersion: v1
kind: Secret
metadata:
  name: db
  labels: {tier: backend}
stringData:
  password: ${PASSWORD}
  port: 5432
  ratio: 0.25
  enabled: true
  hosts: [primary.example, 7]
  nested:
    deeper: {token: s3cr3t-token-value, empty: ""}
`;

describe("SOPS decryption (age)", { skip: skipUnlessBuilt("sops", "age-keygen") }, () => {
  let dir: string;
  let key: string;
  let recipient: string;
  let identities: AgeIdentities;
  let otherIdentities: AgeIdentities;

  async function keygen(name: string): Promise<{ key: string; recipient: string }> {
    const path = join(dir, name);
    await exec(binary("age-keygen"), ["-o", path]);
    const text = await readFile(path, "utf8");
    return { key: text, recipient: /public key: (age1\w+)/.exec(text)?.[1] ?? "" };
  }

  /** Encrypts `plain` (written as `name`) with the real sops; `args` are extra sops flags. */
  async function sops(name: string, plain: string | Buffer, args: readonly string[] = [], cwd = dir): Promise<Buffer> {
    const path = join(cwd, name);
    await writeFile(path, plain);
    const { stdout } = await exec(binary("sops"), ["encrypt", "--age", recipient, ...args, path], {
      cwd, encoding: "buffer", env: { PATH: process.env.PATH ?? "", HOME: dir }, maxBuffer: 64 * 1024 * 1024,
    });
    return stdout;
  }

  const decrypt = (data: Buffer, input: SopsFormat, output: SopsFormat = input, keys = identities) =>
    decryptSops(data, keys, { input, output, where: "test-file" });

  before(async () => {
    dir = await mkdtemp(join(tmpdir(), "ferry-sops-"));
    ({ key, recipient } = await keygen("key.txt"));
    identities = AgeIdentities.fromSecretData({ "age.agekey": Buffer.from(key) }, "ns/keys");
    otherIdentities = AgeIdentities.fromSecretData({ "other.agekey": Buffer.from((await keygen("other.txt")).key) }, "ns/other");
  });
  after(() => rm(dir, { recursive: true, force: true }));

  test("a Secret encrypted with encrypted_regex decrypts to the original values, nested and typed", async () => {
    const encrypted = await sops("secret.yaml", SECRET, ["--encrypted-regex", "^(data|stringData)$"]);
    assert.ok(!encrypted.toString().includes(PASSWORD));
    assert.match(encrypted.toString(), /name: db/); // metadata stays readable for kustomize
    const plain = await decrypt(encrypted, "yaml");
    assert.deepEqual(yaml.load(plain.toString()), yaml.load(SECRET));
  });

  test("fully encrypted YAML, JSON, dotenv and binary files decrypt, MAC verified", async () => {
    assert.deepEqual(yaml.load((await decrypt(await sops("full.yaml", SECRET), "yaml")).toString()), yaml.load(SECRET));
    const json = JSON.stringify({ user: "admin", password: PASSWORD, n: 12345678901234, f: 1e-7, list: [true, null] });
    assert.deepEqual(JSON.parse((await decrypt(await sops("c.json", json), "json")).toString()), JSON.parse(json));
    const env = `USER=admin\n# a comment\nPASSWORD=${PASSWORD}\nMULTI=a\\nb\n`;
    assert.equal((await decrypt(await sops("c.env", env), "dotenv")).toString(), `USER=admin\nPASSWORD=${PASSWORD}\nMULTI=a\\nb\n`);
    const bytes = Buffer.from([0, 1, 2, 255, 10, 13]);
    const binaryFile = await sops("blob", bytes, ["--input-type", "binary", "--output-type", "binary"]);
    assert.deepEqual(await decrypt(binaryFile, "binary"), bytes); // not UTF-8: kept byte for byte
  });

  test("multi-document YAML, unencrypted_suffix and mac_only_encrypted follow sops' rules", async () => {
    const documents = `${SECRET}---\nkind: Other\nvalue_unencrypted: visible\nhidden: ${PASSWORD}\n`;
    const multi = await sops("multi.yaml", documents);
    assert.match(multi.toString(), /value_unencrypted: visible/);
    assert.deepEqual(yaml.loadAll((await decrypt(multi, "yaml")).toString()), yaml.loadAll(documents));
    const config = join(dir, "mac-only");
    await mkdir(config, { recursive: true });
    await writeFile(join(config, ".sops.yaml"), `creation_rules:\n  - age: ${recipient}\n    encrypted_regex: ^stringData$\n    mac_only_encrypted: true\n`);
    await writeFile(join(config, "s.yaml"), SECRET);
    const { stdout } = await exec(binary("sops"), ["encrypt", "s.yaml"], { cwd: config, env: { PATH: process.env.PATH ?? "", HOME: dir } });
    assert.match(stdout, /mac_only_encrypted: true/);
    // Unencrypted values are outside the MAC here: a changed name still decrypts, as it does with sops.
    const renamed = Buffer.from(stdout.replace("name: db", "name: renamed"));
    assert.match((await decrypt(renamed, "yaml")).toString(), /name: renamed/);
  });

  test("a changed unencrypted value, encrypted value, or MAC is a named failure", async () => {
    const encrypted = (await sops("t.yaml", SECRET, ["--encrypted-regex", "^stringData$"])).toString();
    await assert.rejects(decrypt(Buffer.from(encrypted.replace("name: db", "name: evil")), "yaml"),
      (error: Error) => error instanceof DecryptionError && /MAC does not match/.test(error.message));
    // A ciphertext moved to another key fails GCM authentication: the path is the additional data.
    const password = /password: (ENC\[[^\]]+\])/.exec(encrypted)?.[1] ?? "";
    const token = /token: (ENC\[[^\]]+\])/.exec(encrypted)?.[1] ?? "";
    const swapped = encrypted.replace(password, "PW").replace(token, password).replace("PW", token);
    await assert.rejects(decrypt(Buffer.from(swapped), "yaml"), /value at 'stringData:password' failed authentication/);
    const mac = /mac: ENC\[AES256_GCM,data:(.)/.exec(encrypted)?.[1] ?? "A";
    const badMac = encrypted.replace(/mac: ENC\[AES256_GCM,data:./, `mac: ENC[AES256_GCM,data:${mac === "A" ? "B" : "A"}`);
    await assert.rejects(decrypt(Buffer.from(badMac), "yaml"), /SOPS MAC cannot be opened/);
    const badTime = encrypted.replace(/lastmodified: "([^"]+)"/, "lastmodified: \"2001-01-01T00:00:00Z\"");
    await assert.rejects(decrypt(Buffer.from(badTime), "yaml"), /SOPS MAC cannot be opened/);
    const noMac = encrypted.replace(/\n\s+mac: ENC\[[^\]]+\]/, "");
    await assert.rejects(decrypt(Buffer.from(noMac), "yaml"), /has no mac/);
  });

  test("a wrong key names the recipients and is retried, not stalled", async () => {
    const encrypted = await sops("w.yaml", SECRET);
    await assert.rejects(decrypt(encrypted, "yaml", "yaml", otherIdentities), (error: Error) =>
      error instanceof DecryptionKeyError && error.disposition === "retry" && error.message.includes(recipient) && !error.message.includes(PASSWORD));
  });

  test("the key Secret: *.agekey entries with comments and several keys; other backends refused by name", async () => {
    const both = AgeIdentities.fromSecretData({
      "a.agekey": Buffer.from((await keygen("x.txt")).key),
      "b.agekey": Buffer.from(`\n# team key\n${key}\n`),
      README: Buffer.from("ignored"),
    }, "ns/keys");
    assert.equal(both.size, 2);
    assert.match((await decrypt(await sops("k.yaml", SECRET), "yaml", "yaml", both)).toString(), /correct-horse/);
    for (const name of ["key.asc", "sops.vault-token", "sops.aws-kms", "sops.azure-kv", "sops.gcp-kms"]) {
      assert.throws(() => AgeIdentities.fromSecretData({ "a.agekey": Buffer.from(key), [name]: Buffer.from("x") }, "ns/keys"),
        (error: Error) => error instanceof UnsupportedDecryptionError && error.message.includes(name) && /age keys only/.test(error.message));
    }
    const secretLine = key.split("\n").find((line) => line.startsWith("AGE-SECRET-KEY-")) ?? "";
    const broken = `${secretLine.slice(0, -1)}${secretLine.endsWith("Q") ? "P" : "Q"}`;
    assert.throws(() => AgeIdentities.fromSecretData({ "a.agekey": Buffer.from(broken) }, "ns/keys"),
      (error: Error) => /line 1 of 'a.agekey' .* not a valid age identity/.test(error.message) && !error.message.includes(broken));
    assert.throws(() => AgeIdentities.fromSecretData({ "a.agekey": Buffer.from("-----BEGIN OPENSSH PRIVATE KEY-----\n") }, "ns/keys"), /PEM or SSH key/);
    assert.throws(() => AgeIdentities.fromSecretData({ "x.txt": Buffer.from(key) }, "ns/keys"), /no age identities/);
  });

  test("PGP/KMS-only files, key groups and INI are refused by name", async () => {
    const encrypted = (await sops("p.yaml", SECRET)).toString();
    const pgpOnly = encrypted.replace(/ {4}age:\n(?: {8}.*\n| {10}.*\n)+/, "    pgp:\n        - fp: ABCDEF\n          enc: x\n");
    await assert.rejects(decrypt(Buffer.from(pgpOnly), "yaml"),
      (error: Error) => error instanceof UnsupportedDecryptionError && /encrypted for pgp only/.test(error.message));
    const grouped = encrypted.replace("sops:\n", "sops:\n    key_groups:\n        - age: []\n");
    await assert.rejects(decrypt(Buffer.from(grouped), "yaml"), /key groups/);
    await assert.rejects(decrypt(Buffer.from("[sops]\nmac = ENC[x]\n"), "ini"), /INI files are not supported/);
  });

  test("hostile documents fail fast: over the size limit, alias bombs, malformed envelopes, garbage", async () => {
    const started = Date.now();
    await assert.rejects(decrypt(Buffer.alloc(6 * 1024 * 1024, "a"), "yaml"), /over the 5242880-byte limit/);
    const laughs = ["a: &a [x, x, x, x, x, x, x, x, x, x]"];
    for (let level = 1; level < 12; level++) laughs.push(`${String.fromCharCode(97 + level)}: &${String.fromCharCode(97 + level)} [${Array(10).fill(`*${String.fromCharCode(96 + level)}`).join(", ")}]`);
    await assert.rejects(decrypt(Buffer.from(`${laughs.join("\n")}\nsops: {mac: "ENC[x]"}\n`), "yaml"), YamlInputError);
    const encrypted = (await sops("m.yaml", SECRET)).toString();
    const malformed = encrypted.replace(/password: ENC\[AES256_GCM,data:[^,]+,/, "password: ENC[AES256_GCM,data:!!!,");
    await assert.rejects(decrypt(Buffer.from(malformed), "yaml"), /password' is not in SOPS' ENC|not base64/);
    await assert.rejects(decrypt(Buffer.from("just: text\n"), "yaml"), /has no sops metadata/);
    await assert.rejects(decrypt(Buffer.from("- a\n- b\n"), "yaml"), /not a mapping/);
    await assert.rejects(decrypt(Buffer.from("sops: 5\n"), "yaml"), /not a mapping/);
    await assert.rejects(decrypt(Buffer.from(`${"[".repeat(5000)}`), "json"), YamlInputError);
    const hugeList = `sops:\n  mac: x\n  lastmodified: x\n  age:\n${"    - {enc: x}\n".repeat(100)}`;
    await assert.rejects(decrypt(Buffer.from(hugeList), "yaml"), /more than 64 recipients/);
    assert.ok(Date.now() - started < 5_000, `hostile inputs took ${Date.now() - started} ms`);
  });

  test("a kustomization's encrypted resources, generator files and Secret values decrypt in the build copy", async () => {
    const root = join(dir, "tree");
    await mkdir(join(root, "app"), { recursive: true });
    await writeFile(join(root, "kustomization.yaml"), "resources: [app]\n");
    await writeFile(join(root, "app", "kustomization.yaml"), [
      "resources: [secret.yaml, plain.yaml]",
      "secretGenerator:",
      "  - name: gen",
      "    files: [config.json=conf.enc.json]",
      "    envs: [vars.env]",
      "",
    ].join("\n"));
    await writeFile(join(root, "app", "secret.yaml"), await sops("secret.yaml", SECRET, ["--encrypted-regex", "^stringData$"], join(root, "app")));
    await writeFile(join(root, "app", "plain.yaml"), "apiVersion: v1\nkind: ConfigMap\nmetadata: {name: plain}\n");
    const conf = await sops("conf.json", JSON.stringify({ password: PASSWORD }), [], join(root, "app"));
    await writeFile(join(root, "app", "conf.enc.json"), conf);
    await writeFile(join(root, "app", "vars.env"), await sops("vars.env", `TOKEN=${PASSWORD}\n`, [], join(root, "app")));
    // Encrypted for someone else and not referenced: must be left alone, or other environments' files would fail.
    await writeFile(join(root, "unused.yaml"), await sops("unused-src.yaml", SECRET, [], join(root, "app")));
    const revealed: string[] = [];
    await decryptKustomizationFiles(root, root, { identities, reveal: (value) => revealed.push(value) });
    assert.deepEqual(yaml.load(await readFile(join(root, "app", "secret.yaml"), "utf8")), yaml.load(SECRET));
    assert.deepEqual(JSON.parse(await readFile(join(root, "app", "conf.enc.json"), "utf8")), { password: PASSWORD });
    assert.equal(await readFile(join(root, "app", "vars.env"), "utf8"), `TOKEN=${PASSWORD}\n`);
    assert.match(await readFile(join(root, "unused.yaml"), "utf8"), /ENC\[/);
    assert.ok(revealed.includes(PASSWORD));

    const value = (await sops("value.yaml", `password: ${PASSWORD}\n`)).toString("base64");
    const [decrypted] = await decryptBuiltObjects([
      { apiVersion: "v1", kind: "Secret", metadata: { name: "s" }, data: { "config.yaml": value, plain: Buffer.from("x").toString("base64") } },
    ], { identities });
    const data = decrypted?.data as Record<string, string>;
    assert.equal(Buffer.from(data["config.yaml"] ?? "", "base64").toString(), `password: ${PASSWORD}\n`);
    assert.equal(data.plain, Buffer.from("x").toString("base64"));
    await assert.rejects(decryptBuiltObjects([
      { apiVersion: "v1", kind: "Secret", metadata: { name: "left" }, sops: { mac: "ENC[x]" } },
    ], { identities }), /Secret\/left is still SOPS-encrypted after the build/);
  });
});
