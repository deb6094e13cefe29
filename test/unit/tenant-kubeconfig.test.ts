// A tenant's kubeConfig Secret decides where the controller connects and with which credentials. It must never make
// the controller read its own files (its ServiceAccount token above all) or run commands, and refusals must name
// the offending field without quoting credentials.
import assert from "node:assert/strict";
import { randomBytes } from "node:crypto";
import fs from "node:fs";
import { mkdtemp, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, before, describe, mock, test } from "node:test";
import fc from "fast-check";
import yaml from "js-yaml";
import type { KustomizationSpecType } from "../../src/api/kustomize.ts";
import { KubeClient } from "../../src/kube/client.ts";
import { MAX_TENANT_KUBECONFIG_BYTES, TenantKubeconfigError } from "../../src/kube/tenant-kubeconfig.ts";
import { KustomizationFailure, Targets } from "../../src/reconcilers/kustomization-inputs.ts";

const SENTINEL = `ferry-sentinel-${randomBytes(12).toString("hex")}`;
const SERVER = "https://tenant.example:6443";
const CA = Buffer.from("-----BEGIN CERTIFICATE-----\nMIIBtenantCA\n-----END CERTIFICATE-----\n").toString("base64");
const CERT = Buffer.from("-----BEGIN CERTIFICATE-----\nMIIBtenantClient\n-----END CERTIFICATE-----\n").toString("base64");
const KEY = Buffer.from("-----BEGIN EC PRIVATE KEY-----\nMHcCAQEEtenantKey\n-----END EC PRIVATE KEY-----\n").toString("base64");

let scratch: string;
let sentinelFile: string;

before(async () => {
  scratch = await mkdtemp(join(tmpdir(), "ferry-tenant-kubeconfig-"));
  sentinelFile = join(scratch, "token");
  await writeFile(sentinelFile, SENTINEL);
});
after(() => rm(scratch, { recursive: true, force: true }));

interface Parts {
  cluster?: Record<string, unknown>;
  user?: Record<string, unknown>;
  context?: Record<string, unknown>;
  top?: Record<string, unknown>;
}

function kubeconfig(parts: Parts = {}): string {
  return yaml.dump({
    apiVersion: "v1",
    kind: "Config",
    clusters: [{ name: "c", cluster: parts.cluster ?? { server: SERVER } }],
    users: [{ name: "u", user: parts.user ?? { token: "tenant-token" } }],
    contexts: [{ name: "x", context: parts.context ?? { cluster: "c", user: "u" } }],
    "current-context": "x",
    ...parts.top,
  });
}

/** Everything the client would send or use, as text, so a leaked secret shows up in one search. */
async function everythingOf(client: KubeClient): Promise<string> {
  const options: { headers?: Record<string, string>; ca?: Buffer; cert?: Buffer; key?: Buffer; auth?: string } = {};
  await client.config.applyToHTTPSOptions(options);
  return JSON.stringify({
    clusters: client.config.getClusters(),
    users: client.config.getUsers(),
    contexts: client.config.getContexts(),
    headers: options.headers,
    fetchHeaders: Object.fromEntries((await fetchHeadersOf(client)).entries()),
    ca: options.ca?.toString(),
    cert: options.cert?.toString(),
    key: options.key?.toString(),
    auth: options.auth,
  });
}

/** client-node builds its fetch headers with node-fetch's Headers, whose type is not the global one. */
async function fetchHeadersOf(client: KubeClient): Promise<Headers> {
  return (await client.config.applyToFetchOptions({})).headers as unknown as Headers;
}

function containsSentinel(text: string): boolean {
  return text.includes(SENTINEL) || text.includes(Buffer.from(SENTINEL).toString("base64"));
}

/** The paths of every file read while `action` runs, through any of the ways client-node reads files. */
async function fileReadsDuring(action: () => Promise<unknown>): Promise<unknown[]> {
  const spies = [
    mock.method(fs, "readFileSync"),
    mock.method(fs, "openSync"),
    mock.method(fs, "readFile"),
    mock.method(fs.promises, "readFile"),
    mock.method(fs.promises, "open"),
  ];
  try {
    await action().catch(() => undefined);
    return spies.flatMap((spy) => spy.mock.calls.map((call) => call.arguments[0]));
  } finally {
    for (const spy of spies) spy.mock.restore();
  }
}

function refusal(text: string, options?: Parameters<typeof KubeClient.fromUntrustedString>[1]): TenantKubeconfigError {
  try {
    KubeClient.fromUntrustedString(text, options);
  } catch (error) {
    assert.ok(error instanceof TenantKubeconfigError, `expected a TenantKubeconfigError, got ${String(error)}`);
    assert.equal(error.disposition, "stall");
    assert.equal(containsSentinel(error.message), false, error.message);
    return error;
  }
  assert.fail("the kubeconfig was accepted");
}

function assertRefused(text: string, message: RegExp, options?: Parameters<typeof KubeClient.fromUntrustedString>[1]): void {
  assert.match(refusal(text, options).message, message);
}

describe("file references", () => {
  test("a token-file naming a controller file is refused, and the file's bytes reach neither a config nor the error", async () => {
    const documents = [
      kubeconfig({ user: { "token-file": sentinelFile } }),
      kubeconfig({ user: { token: "tenant-token", "token-file": sentinelFile } }),
      // In a user the current context does not use, client-node would still have read it while loading.
      kubeconfig({ top: { users: [{ name: "u", user: { token: "t" } }, { name: "other", user: { "token-file": sentinelFile } }] } }),
    ];
    for (const text of documents) {
      let client: KubeClient | undefined;
      const reads = await fileReadsDuring(async () => {
        try {
          client = KubeClient.fromUntrustedString(text);
        } catch (error) {
          assert.ok(error instanceof TenantKubeconfigError, String(error));
          assert.match(error.message, /users\[\d\] \('(u|other)'\)\.token-file is not allowed in a tenant kubeconfig: .*only inline credentials \(token, client-certificate-data, client-key-data, username\/password\) are accepted/);
          assert.equal(containsSentinel(error.message), false);
        }
        if (client) assert.equal(containsSentinel(await everythingOf(client)), false, "the sentinel reached the client");
      });
      assert.deepEqual(reads, []);
      assert.equal(client, undefined, "a kubeconfig with token-file was accepted");
    }
  });

  test("each file, plugin and impersonation field is refused by name", () => {
    const userFields = [
      "token-file", "tokenFile", "client-certificate", "client-key", "password-file", "credentials-file", "keyfile",
      "as", "as-groups", "as-uid", "as-user-extra", "disable-compression", "unknown",
    ];
    for (const field of userFields) {
      assertRefused(kubeconfig({ user: { token: "t", [field]: sentinelFile } }), new RegExp(`^users\\[0\\] \\('u'\\)\\.${field} is not allowed in a tenant kubeconfig: `));
    }
    for (const field of ["certificate-authority", "ca-file", "proxy-url", "disable-compression", "insecure"]) {
      assertRefused(kubeconfig({ cluster: { server: SERVER, [field]: sentinelFile } }), new RegExp(`^clusters\\[0\\] \\('c'\\)\\.${field} is not allowed in a tenant kubeconfig: `));
    }
    assertRefused(kubeconfig({ context: { cluster: "c", user: "u", "namespace-file": sentinelFile } }), /^contexts\[0\] \('x'\)\.namespace-file is not allowed/);
    assertRefused(kubeconfig({ top: { "kubeconfig-file": sentinelFile } }), /^kubeconfig\.kubeconfig-file is not allowed/);
    assertRefused(kubeconfig({ top: { users: [{ name: "u", user: { token: "t" }, "token-file": sentinelFile }] } }), /^users\[0\] \('u'\)\.token-file is not allowed/);
    assertRefused(kubeconfig({ user: { token: "t", as: "system:admin" } }), /impersonation is set by the controller/);
    assertRefused(kubeconfig({ cluster: { server: SERVER, "certificate-authority": "/etc/ca.pem" } }), /a CA file would be read from the controller's disk; use certificate-authority-data/);
  });

  test("exec plugins and auth providers are refused, so nothing is run", () => {
    assertRefused(
      kubeconfig({ user: { exec: { apiVersion: "client.authentication.k8s.io/v1", command: "sh", args: ["-c", `cat ${sentinelFile}`] } } }),
      /^users\[0\] \('u'\)\.exec is not allowed in a tenant kubeconfig: exec plugins would run commands in the controller; only inline credentials/,
    );
    assertRefused(
      kubeconfig({ user: { "auth-provider": { name: "gcp", config: { "cmd-path": "/bin/sh", tokenFile: sentinelFile } } } }),
      /^users\[0\] \('u'\)\.auth-provider is not allowed in a tenant kubeconfig: auth providers would run commands/,
    );
  });

  test("a name or key the tenant wrote is shown bounded and on one line", () => {
    const message = refusal(kubeconfig({ top: { users: [{ name: `u\n${"x".repeat(500)}`, user: { [`weird\nkey${"y".repeat(200)}`]: 1 } }] } })).message;
    assert.doesNotMatch(message, /\n/);
    assert.ok(message.length < 400, message);
  });
});

describe("accepted kubeconfigs", () => {
  test("a token: the client has exactly that server, token and namespace", async () => {
    const client = KubeClient.fromUntrustedString(kubeconfig({
      cluster: { server: `${SERVER}/`, extensions: [{ name: "x", extension: { anything: true } }] },
      user: { token: "tenant-token" },
      context: { cluster: "c", user: "u", namespace: "apps" },
      top: { preferences: {}, extensions: [] },
    }));
    assert.deepEqual(client.config.getClusters(), [{ name: "c", server: SERVER, skipTLSVerify: false }]);
    assert.deepEqual(client.config.getUsers(), [{ name: "u", token: "tenant-token" }]);
    assert.deepEqual(client.config.getContexts(), [{ name: "x", cluster: "c", user: "u", namespace: "apps" }]);
    assert.equal(client.defaultNamespace(), "apps");
    assert.equal((await fetchHeadersOf(client)).get("authorization"), "Bearer tenant-token");
  });

  test("a client certificate with CA data and tls-server-name", async () => {
    const client = KubeClient.fromUntrustedString(kubeconfig({
      cluster: { server: SERVER, "certificate-authority-data": CA, "tls-server-name": "api.tenant.internal" },
      user: { "client-certificate-data": CERT, "client-key-data": `${KEY.slice(0, 20)}\n${KEY.slice(20)}` },
    }));
    assert.deepEqual(client.config.getCurrentCluster(), { name: "c", server: SERVER, skipTLSVerify: false, caData: CA, tlsServerName: "api.tenant.internal" });
    assert.deepEqual(client.config.getCurrentUser(), { name: "u", certData: CERT, keyData: KEY });
    const options: { ca?: Buffer; cert?: Buffer; key?: Buffer; servername?: string } = {};
    await client.config.applyToHTTPSOptions(options);
    assert.deepEqual(options.ca, Buffer.from(CA, "base64"));
    assert.deepEqual(options.cert, Buffer.from(CERT, "base64"));
    assert.deepEqual(options.key, Buffer.from(KEY, "base64"));
  });

  test("basic authentication", async () => {
    const client = KubeClient.fromUntrustedString(kubeconfig({ user: { username: "tenant", password: "pa:ss word" } }));
    assert.deepEqual(client.config.getCurrentUser(), { name: "u", username: "tenant", password: "pa:ss word" });
    assert.equal((await fetchHeadersOf(client)).get("authorization"), `Basic ${Buffer.from("tenant:pa:ss word").toString("base64")}`);
  });

  test("only the current context, its cluster and its user reach client-node", () => {
    const client = KubeClient.fromUntrustedString(yaml.dump({
      clusters: [{ name: "a", cluster: { server: "https://a.example" } }, { name: "b", cluster: { server: "https://b.example" } }],
      users: [{ name: "ua", user: { token: "ta" } }, { name: "ub", user: { token: "tb" } }],
      contexts: [{ name: "xa", context: { cluster: "a", user: "ua" } }, { name: "xb", context: { cluster: "b", user: "ub" } }],
      "current-context": "xb",
    }));
    assert.deepEqual(client.config.getClusters().map((cluster) => cluster.name), ["b"]);
    assert.deepEqual(client.config.getUsers().map((user) => user.name), ["ub"]);
    assert.deepEqual(client.config.getContexts().map((context) => context.name), ["xb"]);
  });

  test("a kubeconfig in JSON is read too", () => {
    const client = KubeClient.fromUntrustedString(JSON.stringify(yaml.load(kubeconfig())));
    assert.equal(client.config.getCurrentUser()?.token, "tenant-token");
  });
});

describe("cluster settings the controller must consent to", () => {
  test("insecure-skip-tls-verify: true is refused unless allowed; false is harmless", () => {
    assertRefused(kubeconfig({ cluster: { server: SERVER, "insecure-skip-tls-verify": true } }), /insecure-skip-tls-verify is not allowed in a tenant kubeconfig/);
    assert.ok(KubeClient.fromUntrustedString(kubeconfig({ cluster: { server: SERVER, "insecure-skip-tls-verify": false } })));
    const client = KubeClient.fromUntrustedString(kubeconfig({ cluster: { server: SERVER, "insecure-skip-tls-verify": true } }), { allowInsecureTls: true });
    assert.equal(client.config.getCurrentCluster()?.skipTLSVerify, true);
    assertRefused(
      kubeconfig({ cluster: { server: SERVER, "insecure-skip-tls-verify": true, "certificate-authority-data": CA } }),
      /contradict each other/,
      { allowInsecureTls: true },
    );
  });

  test("proxy-url is refused unless allowed, and must then be a proxy URL", () => {
    assertRefused(kubeconfig({ cluster: { server: SERVER, "proxy-url": "socks5://proxy.example:1080" } }), /proxy-url is not allowed in a tenant kubeconfig/);
    const client = KubeClient.fromUntrustedString(kubeconfig({ cluster: { server: SERVER, "proxy-url": "socks5://proxy.example:1080" } }), { allowProxyUrl: true });
    assert.equal(client.config.getCurrentCluster()?.proxyUrl, "socks5://proxy.example:1080");
    assertRefused(kubeconfig({ cluster: { server: SERVER, "proxy-url": "file:///etc/passwd" } }), /proxy-url must be an http, https or socks URL/, { allowProxyUrl: true });
  });

  test("server must be an https:// URL with a host and no credentials, query or fragment", () => {
    assertRefused(kubeconfig({ cluster: { server: "http://tenant.example" } }), /server must be an https:\/\/ URL/);
    assertRefused(kubeconfig({ cluster: { server: "tenant.example:6443" } }), /server must be an https:\/\/ URL|server is not a URL/);
    assertRefused(kubeconfig({ cluster: { server: "not a url" } }), /server is not a URL/);
    assertRefused(kubeconfig({ cluster: {} }), /clusters\[0\] \('c'\)\.server is required/);
    const withPassword = refusal(kubeconfig({ cluster: { server: "https://admin:hunter2@tenant.example" } })).message;
    assert.match(withPassword, /must not carry credentials/);
    assert.doesNotMatch(withPassword, /hunter2/);
    assertRefused(kubeconfig({ cluster: { server: `${SERVER}/?x=1` } }), /must not have a query or fragment/);
  });
});

describe("malformed or hostile documents", () => {
  test("anchors and aliases are refused, so an alias bomb is refused at once", () => {
    const levels = ["a: &a [\"lol\",\"lol\",\"lol\",\"lol\",\"lol\",\"lol\",\"lol\",\"lol\",\"lol\"]"];
    for (let level = 1; level < 12; level++) {
      const previous = String.fromCharCode(96 + level);
      levels.push(`${String.fromCharCode(97 + level)}: &${String.fromCharCode(97 + level)} [${Array(9).fill(`*${previous}`).join(",")}]`);
    }
    const bomb = `${kubeconfig()}${levels.join("\n")}\n`;
    const started = performance.now();
    assertRefused(bomb, /YAML anchors and aliases are not allowed in a tenant kubeconfig \(line \d+\)/);
    assert.ok(performance.now() - started < 250, "the alias bomb took too long to refuse");

    // A bomb inside an allowed field, where a walk of the data would meet it.
    const inField = `clusters:\n- name: c\n  cluster:\n    extensions: &e [${Array(9).fill("\"x\"").join(",")}]\n    server: ${SERVER}\n`;
    assertRefused(inField, /anchors and aliases are not allowed/);
    assertRefused(kubeconfig().replace("token: tenant-token", "token: &t tenant-token"), /anchors and aliases are not allowed/);
    assertRefused(`${kubeconfig()}more: *undefined\n`, /^not a valid kubeconfig: YAML error on line \d+$/);
  });

  test("a document over 1 MiB is refused before it is parsed", () => {
    const big = `${kubeconfig()}# ${"x".repeat(2 * 1024 * 1024)}\n`;
    const started = performance.now();
    assertRefused(big, new RegExp(`at most ${MAX_TENANT_KUBECONFIG_BYTES}`));
    assert.ok(performance.now() - started < 250, "refusing a big document took too long");
  });

  test("credentials must be well-formed (base64 data, a one-line token), and the error does not quote them", () => {
    for (const field of ["client-certificate-data", "client-key-data"]) {
      const text = kubeconfig({ user: { "client-certificate-data": CERT, "client-key-data": KEY, [field]: "secret-not-base64!!" } });
      const message = refusal(text).message;
      assert.match(message, new RegExp(`^users\\[0\\] \\('u'\\)\\.${field} is not valid base64$`));
      assert.doesNotMatch(message, /secret-not-base64/);
    }
    assertRefused(kubeconfig({ cluster: { server: SERVER, "certificate-authority-data": "abc" } }), /certificate-authority-data is not valid base64/);
    assertRefused(kubeconfig({ user: { "client-certificate-data": CERT } }), /needs both client-certificate-data and client-key-data/);
    const token = refusal(kubeconfig({ user: { token: "secret-token\n" } })).message;
    assert.match(token, /^users\[0\] \('u'\)\.token must be printable ASCII without spaces or line breaks$/);
    assert.doesNotMatch(token, /secret-token/);
    assertRefused(kubeconfig({ user: { username: "tenant" } }), /needs both username and password/);
    assertRefused(kubeconfig({ user: { token: "t", username: "tenant", password: "p" } }), /has both a token and a username\/password/);
  });

  test("the current context must exist and name a cluster and a user the kubeconfig defines", () => {
    assertRefused(kubeconfig({ top: { "current-context": undefined } }), /current-context is required/);
    assertRefused(kubeconfig({ top: { "current-context": "nowhere" } }), /current-context names context 'nowhere', which the kubeconfig does not define/);
    assertRefused(kubeconfig({ context: { cluster: "elsewhere", user: "u" } }), /names cluster 'elsewhere', which the kubeconfig does not define/);
    assertRefused(kubeconfig({ context: { cluster: "c", user: "nobody" } }), /names user 'nobody', which the kubeconfig does not define/);
    assertRefused(kubeconfig({ context: { cluster: "c" } }), /context 'x' must name a user/);
    assertRefused(kubeconfig({ top: { users: [{ name: "u", user: { token: "a" } }, { name: "u", user: { token: "b" } }] } }), /the name is used twice/);
  });

  test("YAML errors are reported by line only, never quoting the document", () => {
    const broken = "users:\n- name: u\n  user:\n    token: TOPSECRET\n  bad: [\n";
    const message = refusal(broken).message;
    assert.match(message, /^not a valid kubeconfig: YAML error on line \d+$/);
    assert.doesNotMatch(message, /TOPSECRET/);
    const start = "clusters:\n- name: c\n  cluster:\n    server: https://tenant.example\nusers:\n- name: u\n  user:\n";
    for (const text of [
      `${start}    token: !!binary VE9QU0VDUkVU\n`,
      `${start}    token: !<tag:yaml.org,2002:js/function> TOPSECRET\n`,
      `${start}    token: TOPSECRET\n    token: TOPSECRET\n`,
      `${start}    token: "TOPSECRET\n`,
      `${kubeconfig()}---\nsecond: TOPSECRET\n`,
    ]) {
      assert.doesNotMatch(refusal(text).message, /TOPSECRET|VE9QU0VDUkVU/);
    }
    assert.equal(refusal("").message, "not a valid kubeconfig: the document is not a mapping");
    assertRefused("[1, 2]", /not a mapping/);
    assertRefused(kubeconfig({ user: { token: 12345 } }), /users\[0\] \('u'\)\.token must be a string/);
    assertRefused(kubeconfig({ top: { kind: "Secret" } }), /kubeconfig\.kind must be Config/);
  });

  test("a refused kubeconfig stalls the Kustomization, with the Secret named in the message", async () => {
    const kube = { secretData: () => Promise.resolve({ value: Buffer.from(kubeconfig({ user: { "token-file": sentinelFile } })) }) } as unknown as KubeClient;
    const spec = { kubeConfig: { secretRef: { name: "remote" } } } as unknown as KustomizationSpecType;
    await assert.rejects(new Targets(kube).for("tenant", spec), (error: unknown) => {
      assert.ok(error instanceof KustomizationFailure);
      assert.equal(error.disposition, "stall");
      assert.match(error.message, /^kubeConfig Secret 'tenant\/remote': users\[0\] \('u'\)\.token-file is not allowed in a tenant kubeconfig/);
      return true;
    });
  });
});

describe("fuzzed kubeconfigs", () => {
  const CLIENT_NODE_FIELDS = {
    cluster: new Set(["name", "server", "skipTLSVerify", "caData", "tlsServerName"]),
    user: new Set(["name", "token", "certData", "keyData", "username", "password"]),
    context: new Set(["name", "cluster", "user", "namespace"]),
  };
  const FILE_ISH_KEYS = [
    "token-file", "tokenFile", "client-certificate", "client-key", "certificate-authority", "exec", "auth-provider",
    "as", "as-groups", "as-uid", "as-user-extra", "proxy-url", "kubeconfig-file", "credFile", "extensions", "__proto__",
  ];

  /**
   * Kubeconfigs close enough to valid that many are accepted, each with a chance of file-ish keys (in the entry, in
   * its body or at the top) naming the sentinel, of values of the wrong type, and of names that do not line up.
   */
  function documentArbitrary(paths: readonly string[]) {
    const fileKey = fc.oneof(fc.constantFrom(...FILE_ISH_KEYS), fc.string({ maxLength: 8 }).map((stem) => `${stem}-file`));
    const value = fc.oneof(
      fc.constantFrom(...paths),
      fc.constantFrom(SERVER, "http://tenant.example", CA, "tenant-token", "c", "u", "x", ""),
      fc.string({ maxLength: 12 }),
      fc.boolean(),
      fc.integer(),
      fc.constant(null),
      fc.dictionary(fileKey, fc.constantFrom(...paths), { maxKeys: 2 }),
    );
    // Each fault is rare, so that documents with none of them (accepted ones) are common too.
    const sometimes = <T>(arbitrary: fc.Arbitrary<T>, otherwise: T) =>
      fc.oneof({ arbitrary: fc.constant(otherwise), weight: 12 }, { arbitrary, weight: 1 });
    const extraKeys = sometimes(fc.dictionary(fileKey, value, { minKeys: 1, maxKeys: 2 }), {});
    const randomBody = (allowed: readonly string[]) =>
      fc.dictionary(fc.oneof(fc.constantFrom(...allowed), fileKey, fc.string({ maxLength: 6 })), value, { maxKeys: 4 });
    const bodies = {
      cluster: fc.record({
        server: sometimes(fc.constantFrom("http://tenant.example", "https://", "tenant.example", 443), SERVER),
        "certificate-authority-data": sometimes(fc.constantFrom("!!", "abc", 1), CA),
        "tls-server-name": fc.constant("api.tenant.internal"),
        "insecure-skip-tls-verify": sometimes(fc.constantFrom(true, "yes"), false),
      }, { requiredKeys: ["server"] }),
      user: fc.oneof(
        fc.record({ token: sometimes(fc.constantFrom("", "line\nbreak", 7), "tenant-token") }),
        fc.record({ "client-certificate-data": fc.constant(CERT), "client-key-data": sometimes(fc.constantFrom("%%", "", null), KEY) }),
        fc.record({ username: sometimes(fc.constantFrom("a:b", ""), "tenant"), password: fc.constant("pw") }, { requiredKeys: ["username"] }),
      ),
      context: fc.record({
        cluster: sometimes(fc.constantFrom("d", ""), "c"),
        user: sometimes(fc.constantFrom("v", ""), "u"),
        namespace: fc.constantFrom("apps", ""),
      }),
    };
    type BodyKey = keyof typeof bodies;
    const entries = (bodyKey: BodyKey, names: readonly string[], allowed: readonly string[]) => fc.uniqueArray(
      fc.record({
        name: fc.constantFrom(...names),
        body: fc.oneof({ arbitrary: bodies[bodyKey], weight: 12 }, { arbitrary: randomBody(allowed), weight: 1 }),
        extra: extraKeys,
        inBody: fc.boolean(),
      }).map(({ name, body, extra, inBody }) =>
        (inBody ? { name, [bodyKey]: { ...body, ...extra } } : { name, [bodyKey]: body, ...extra })),
      { minLength: 1, maxLength: 2, selector: (entry) => entry.name },
    );
    return fc.record({
      clusters: entries("cluster", ["c", "d"], ["server", "certificate-authority-data", "tls-server-name", "insecure-skip-tls-verify"]),
      users: entries("user", ["u", "v"], ["token", "client-certificate-data", "client-key-data", "username", "password"]),
      contexts: entries("context", ["x", "y"], ["cluster", "user", "namespace"]),
      current: sometimes(fc.constantFrom("y", "", undefined), "x"),
      extra: sometimes(fc.dictionary(fc.oneof(fileKey, fc.constantFrom("preferences", "apiVersion", "kind")), value, { minKeys: 1, maxKeys: 2 }), {}),
      asJson: fc.boolean(),
    }).map(({ clusters, users, contexts, current, extra, asJson }) => {
      const document = { apiVersion: "v1", kind: "Config", clusters, users, contexts, "current-context": current, ...extra };
      return asJson ? JSON.stringify(document) : yaml.dump(document, { skipInvalid: true });
    });
  }

  test("any kubeconfig-like document is either refused with a TenantKubeconfigError or accepted with allowed fields only, and no file is read", async () => {
    const paths = [sentinelFile, scratch, join(scratch, "missing"), "token", "../token"];
    let accepted = 0;
    await fc.assert(fc.asyncProperty(documentArbitrary(paths), async (text) => {
      let client: KubeClient | undefined;
      let seen = "";
      const reads = await fileReadsDuring(async () => {
        try {
          client = KubeClient.fromUntrustedString(text);
        } catch (error) {
          if (!(error instanceof TenantKubeconfigError)) throw new Error(`not a TenantKubeconfigError: ${String(error)}`, { cause: error });
          seen = error.message;
          return;
        }
        seen = await everythingOf(client);
      });
      assert.deepEqual(reads, []);
      assert.equal(containsSentinel(seen), false);
      if (!client) return;
      accepted++;
      assert.equal(client.config.getClusters().length, 1);
      for (const [kind, entries] of [
        ["cluster", client.config.getClusters()], ["user", client.config.getUsers()], ["context", client.config.getContexts()],
      ] as const) {
        for (const entry of entries) {
          for (const key of Object.keys(entry)) assert.ok(CLIENT_NODE_FIELDS[kind].has(key), `${kind} has ${key}`);
        }
      }
    }), { numRuns: 600 });
    assert.ok(accepted > 25, `only ${accepted} fuzzed documents were accepted: the generator rarely reaches the accepting paths`);
  });

  test("any text at all is either accepted or refused with a TenantKubeconfigError", () => {
    const yamlish = fc.stringMatching(/^[a-z:&*!\-[\]{}"' \n#|>%@`,?.0-9]{0,60}$/);
    fc.assert(fc.property(fc.oneof(fc.string({ maxLength: 80 }), yamlish, yamlish.map((noise) => kubeconfig() + noise)), (text) => {
      try {
        KubeClient.fromUntrustedString(text);
      } catch (error) {
        assert.ok(error instanceof TenantKubeconfigError, String(error));
      }
    }), { numRuns: 1000 });
  });
});
