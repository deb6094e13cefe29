// Mutation fuzzing of tenant kubeconfigs, from real ones kubectl wrote (test/fuzz/corpus/tenant-kubeconfig). The
// property tests in test/unit/tenant-kubeconfig.test.ts generate documents from a model; here lines and tokens of real
// files are inserted, deleted, duplicated and re-indented, which reaches YAML the model never writes (fields at the
// wrong level, merge keys, tags, anchors, duplicate entries). Whatever comes out: a TenantKubeconfigError or a config
// with only allowed fields, no file read while loading, and no credential quoted in an error.
import assert from "node:assert/strict";
import fs from "node:fs";
import { mkdtemp, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, before, describe, mock, test } from "node:test";
import fc from "fast-check";
import { loadTenantKubeconfig, TenantKubeconfigError } from "../../src/kube/tenant-kubeconfig.ts";
import { corpus, fuzz } from "./fuzz.ts";

const SEEDS = corpus("tenant-kubeconfig").map((seed) => ({ name: seed.name, text: seed.bytes.toString("utf8") }));
const SENTINEL_CONTENT = "ferry-fuzz-sentinel-file-content";

/** What each seed holds that an error must never show: tokens, passwords and key data. */
function credentialsIn(text: string): string[] {
  const found = new Set<string>(text.match(/ferry-fuzz-[a-z0-9-]+/g) ?? []);
  for (const [, keyData = ""] of text.matchAll(/"?client-key-data"?:\s*"?([A-Za-z0-9+/=]+)/g)) {
    // Any 24 characters of the key's base64 would show part of it.
    for (let start = 0; start + 24 <= keyData.length; start += 12) found.add(keyData.slice(start, start + 24));
  }
  return [...found].filter((secret) => secret !== SENTINEL_CONTENT);
}

const CLIENT_NODE_FIELDS: Record<string, ReadonlySet<string>> = {
  cluster: new Set(["name", "server", "skipTLSVerify", "caData", "tlsServerName"]),
  user: new Set(["name", "token", "certData", "keyData", "username", "password"]),
  context: new Set(["name", "cluster", "user", "namespace"]),
};

function hostileLines(sentinel: string): string[] {
  return [
    `token-file: ${sentinel}`, `tokenFile: ${sentinel}`, `client-key: ${sentinel}`, `client-certificate: ${sentinel}`,
    `certificate-authority: ${sentinel}`, `kubeconfig: ${sentinel}`, "exec: {command: /bin/sh, apiVersion: client.authentication.k8s.io/v1}",
    "auth-provider: {name: gcp, config: {cmd-path: /bin/sh}}", "as: system:admin", "as-groups: [system:masters]", "proxy-url: http://proxy.example",
    "insecure-skip-tls-verify: true", "server: http://plain.example", "server: https://user:pw@tenant.example", "server: https://tenant.example/?q#f",
    `<<: {token-file: ${sentinel}}`, "<<: *x", "&x ", "*x", "!!binary ", "!!set ", `extensions: [{name: x, extension: {token-file: ${sentinel}}}]`,
    "preferences: {}", "current-context: missing", "- name: dup", "__proto__: {token: injected}", "constructor: {prototype: {x: 1}}",
    `"token-file": "${sentinel}",`, "? [complex]\n: key", "---", "...",
  ];
}

/** Lines a kubeconfig may well hold, so that many mutants still load and the accepting paths are exercised too. */
const BENIGN_LINES = [
  "namespace: apps", "tls-server-name: api.tenant.internal", "insecure-skip-tls-verify: false", "extensions: []", "preferences: {}",
  "# a comment", "", "token: another-token", "username: tenant", "server: https://other.example:6443", "apiVersion: v1", "kind: Config",
];

const edit = fc.record({
  at: fc.nat(),
  kind: fc.oneof(
    { arbitrary: fc.constant("insert-line"), weight: 6 },
    { arbitrary: fc.constantFrom("delete-line", "duplicate-line", "swap-lines", "indent", "dedent"), weight: 3 },
    { arbitrary: fc.constantFrom("insert-token", "delete-char"), weight: 1 },
  ),
  pick: fc.nat(),
  // Mostly the indentation of the line it lands next to, so that most inserted lines are still YAML.
  indent: fc.oneof({ arbitrary: fc.constant(undefined), weight: 4 }, { arbitrary: fc.constantFrom("", "  ", "    ", "      ", "- ", "  - "), weight: 1 }),
});
type Edit = typeof edit extends fc.Arbitrary<infer T> ? T : never;

const TOKENS = [": ", "- ", "{", "}", "[", "]", "\"", "'", "#", "&x ", "*x", "!!str ", "|", ">", "\t", "\n", ",", "\\", "\u0000", "\uFEFF"];

function mutate(text: string, edits: readonly Edit[], sentinel: string): string {
  const hostile = hostileLines(sentinel);
  let lines = text.split("\n");
  for (const { at, kind, pick, indent } of edits) {
    const index = at % Math.max(1, lines.length);
    const line = lines[index] ?? "";
    switch (kind) {
      case "insert-line": {
        const neighbour = /^[ -]*/.exec(line)?.[0].replace(/-/g, " ") ?? "";
        const choice = Math.floor(pick / 2);
        const inserted = pick % 2 === 0 ? hostile[choice % hostile.length] : BENIGN_LINES[choice % BENIGN_LINES.length];
        lines.splice(index, 0, (indent ?? neighbour) + (inserted ?? ""));
        break;
      }
      case "delete-line":
        lines.splice(index, 1);
        break;
      case "duplicate-line":
        lines.splice(index, 0, line);
        break;
      case "swap-lines": {
        const other = pick % Math.max(1, lines.length);
        [lines[index], lines[other]] = [lines[other] ?? "", line];
        break;
      }
      case "indent":
        lines[index] = (indent ?? "  ") + line;
        break;
      case "dedent":
        lines[index] = line.replace(/^ {1,2}/, "");
        break;
      case "insert-token": {
        const column = pick % (line.length + 1);
        lines[index] = line.slice(0, column) + (TOKENS[pick % TOKENS.length] ?? "") + line.slice(column);
        break;
      }
      default: {
        const column = pick % Math.max(1, line.length);
        lines[index] = line.slice(0, column) + line.slice(column + 1);
      }
    }
    lines = lines.join("\n").split("\n");
  }
  return lines.join("\n");
}

/**
 * Spies on every way client-node reads files (it reads token-file, client-key and certificate-authority when a request
 * is prepared, not when the config loads). Installed once: node:test keeps every mock it ever made, restored or not,
 * and a spy per case grew the process to 2 GiB over a long run.
 */
function spyOnFileReads() {
  const spies = [
    mock.method(fs, "readFileSync"),
    mock.method(fs, "openSync"),
    mock.method(fs, "readFile"),
    mock.method(fs, "existsSync"),
    mock.method(fs.promises, "readFile"),
    mock.method(fs.promises, "open"),
  ];
  return {
    async readsDuring(action: () => Promise<void>): Promise<unknown[]> {
      for (const spy of spies) spy.mock.resetCalls();
      await action();
      return spies.flatMap((spy) => spy.mock.calls.map((call) => call.arguments[0]));
    },
    restore: () => {
      for (const spy of spies) spy.mock.restore();
    },
  };
}

describe("fuzzed tenant kubeconfigs", () => {
  let scratch: string;
  let sentinel: string;
  before(async () => {
    scratch = await mkdtemp(join(tmpdir(), "ferry-fuzz-kubeconfig-"));
    sentinel = join(scratch, "token");
    await writeFile(sentinel, SENTINEL_CONTENT);
  });
  after(() => rm(scratch, { recursive: true, force: true }));

  test("real kubeconfigs mutated: refused with a TenantKubeconfigError, or accepted with allowed fields; no file read, no credential quoted", async (context) => {
    const mutated = fc.tuple(fc.constantFrom(...SEEDS), fc.array(edit, { minLength: 1, maxLength: 5 }), fc.boolean(), fc.boolean());
    let accepted = 0;
    const fileReads = spyOnFileReads();
    context.after(() => fileReads.restore());
    const examples = SEEDS.map((seed): [typeof seed, Edit[], boolean, boolean] => [seed, [], false, false]);
    await fuzz(context, mutated, { runs: 40_000, examples },
      async ([seed, edits, allowProxyUrl, allowInsecureTls]) => {
        const text = mutate(seed.text, edits, sentinel);
        let outcome: ReturnType<typeof loadTenantKubeconfig> | TenantKubeconfigError | undefined;
        const reads = await fileReads.readsDuring(async () => {
          try {
            outcome = loadTenantKubeconfig(text, { allowProxyUrl, allowInsecureTls });
          } catch (error) {
            if (!(error instanceof TenantKubeconfigError)) throw new Error(`not a TenantKubeconfigError: ${String(error)}`, { cause: error });
            outcome = error;
            return;
          }
          await outcome.applyToHTTPSOptions({});
        });
        assert.deepEqual(reads, [], "a file was read while loading");
        if (outcome instanceof TenantKubeconfigError) {
          for (const secret of credentialsIn(seed.text)) assert.ok(!outcome.message.includes(secret), `the error quotes a credential: ${outcome.message}`);
          return;
        }
        assert.ok(outcome);
        accepted++;
        const config = outcome;
        assert.equal(config.getClusters().length, 1);
        assert.match(config.getCurrentCluster()?.server ?? "", /^https:\/\//);
        const everything = JSON.stringify([config.getClusters(), config.getUsers(), config.getContexts()]);
        assert.ok(!everything.includes(SENTINEL_CONTENT) && !everything.includes(sentinel), "a file's name or content reached the config");
        for (const [kind, entries] of [["cluster", config.getClusters()], ["user", config.getUsers()], ["context", config.getContexts()]] as const) {
          for (const entry of entries) {
            for (const key of Object.keys(entry)) {
              assert.ok(CLIENT_NODE_FIELDS[kind]?.has(key) || (allowProxyUrl && key === "proxyUrl"), `${kind} has ${key}`);
            }
          }
        }
      });
    context.diagnostic(`${accepted} mutated kubeconfigs were accepted`);
    assert.ok(accepted > 800, "the mutations rarely leave a kubeconfig that loads: the accepting paths go untested");
  });
});
