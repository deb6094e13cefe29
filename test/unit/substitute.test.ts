// Post-build substitution must render manifests exactly as Flux's kustomize-controller would, or objects change on migration.
import assert from "node:assert/strict";
import { describe, test } from "node:test";
import {
  decodeSecretData,
  mergeVariables,
  substitute,
  substituteManifests,
  substituteObject,
  SubstitutionError,
} from "../../src/kustomize/substitute.ts";

const sub = (text: string, variables: Record<string, string> = {}, strict = true) => substitute(text, variables, { strict });

function rejects(run: () => unknown, message: RegExp) {
  assert.throws(run, (error: unknown) => {
    assert.ok(error instanceof SubstitutionError, `expected a SubstitutionError, got ${String(error)}`);
    assert.equal(error.code, "SUBSTITUTION_FAILED");
    assert.equal(error.disposition, "stall");
    assert.match(error.message, message);
    return true;
  });
}

describe("substitute operators", () => {
  const cases: Array<[string, Record<string, string>, string]> = [
    ["${v}", { v: "abc" }, "abc"],
    ["pre-${v}-post ${w}", { v: "a", w: "b" }, "pre-a-post b"],
    ["${#v}", { v: "abcdEFGH28ij" }, "12"],
    ["${#v}", { v: "héllo" }, "5"],
    ["${v^}", { v: "abcdEFGH28ij" }, "AbcdEFGH28ij"],
    ["${v^^}", { v: "abcdEFGH28ij" }, "ABCDEFGH28IJ"],
    ["${v,}", { v: "ABCDEFGH28IJ" }, "aBCDEFGH28IJ"],
    ["${v,,}", { v: "ABCDEFGH28IJ" }, "abcdefgh28ij"],
    ["${v^}", { v: "" }, ""],
    ["${p:11}", { p: "/home/bozo/ideas/thoughts.for.today" }, "ideas/thoughts.for.today"],
    ["${p:11:5}", { p: "/home/bozo/ideas/thoughts.for.today" }, "ideas"],
    ["${p:100}", { p: "abc" }, ""],
    ["${p:1:100}", { p: "abc" }, "bc"],
    ["${p: -2}", { p: "abcdef" }, "ef"],
    ["${p:1:-1}", { p: "abcdef" }, "bcde"],
    ["${p:4:-3}", { p: "abcdef" }, ""],
    ["${p:${o}:${l}}", { p: "abcdef", o: "2", l: "3" }, "cde"],
    ["${f#*.}", { f: "bash.string.txt" }, "string.txt"],
    ["${f##*.}", { f: "bash.string.txt" }, "txt"],
    ["${f%.*}", { f: "bash.string.txt" }, "bash.string"],
    ["${f%%.*}", { f: "bash.string.txt" }, "bash"],
    ["${f##*/}", { f: "/path/to/file" }, "file"],
    ["${f#*/}", { f: "/path/to/file" }, "path/to/file"],
    ["${f#v}", { f: "v1.2.3" }, "1.2.3"],
    ["${f#x}", { f: "v1.2.3" }, "v1.2.3"],
    ["${f%.?}", { f: "v1.2.3" }, "v1.2"],
    ["${f%%[0-9].*}", { f: "v1.2.3" }, "v"],
    ["${f#[!a-z]}", { f: "1abc" }, "abc"],
    ["${f#\\*}", { f: "*star" }, "star"],
    ["${f#${prefix}}", { f: "app-web", prefix: "app-" }, "web"],
    ["${s/abc/xyz}", { s: "abcABC123ABCabc" }, "xyzABC123ABCabc"],
    ["${s//abc/xyz}", { s: "abcABC123ABCabc" }, "xyzABC123ABCxyz"],
    ["${s/#abc/XYZ}", { s: "abcABC123ABCabc" }, "XYZABC123ABCabc"],
    ["${s/%abc/XYZ}", { s: "abcABC123ABCabc" }, "abcABC123ABCXYZ"],
    ["${s/#ABC/XYZ}", { s: "abcABC123ABCabc" }, "abcABC123ABCabc"],
    ["${s/#/prefix-}", { s: "value" }, "prefix-value"],
    ["${s/%/-suffix}", { s: "value" }, "value-suffix"],
    ["${s/./}", { s: "foo.bar" }, "foobar"],
    ["${s/.}", { s: "foo.bar" }, "foobar"],
    ["${s/*/x}", { s: "a*b" }, "axb"],
    ["${s/\\//-}", { s: "foo/bar" }, "foo-bar"],
    ["${s//\\//-}", { s: "foo/bar/baz" }, "foo-bar-baz"],
    ["${s//$/x}", { s: "a$b" }, "axb"],
  ];
  for (const [input, variables, output] of cases) {
    test(`${input} with ${JSON.stringify(variables)} is ${JSON.stringify(output)}`, () => assert.equal(sub(input, variables), output));
  }
});

describe("defaults", () => {
  test("every default form applies when the variable is unset, even in strict mode", () => {
    for (const operator of ["-", ":-", "=", ":="]) assert.equal(sub(`\${missing${operator}fallback}`), "fallback", operator);
  });

  test("a set variable wins over its default", () => {
    for (const operator of ["-", ":-", "=", ":="]) assert.equal(sub(`\${v${operator}fallback}`, { v: "set" }), "set", operator);
  });

  test("an empty variable takes the default in every form, as in Flux", () => {
    for (const operator of ["-", ":-", "=", ":="]) assert.equal(sub(`\${v${operator}fallback}`, { v: "" }), "fallback", operator);
  });

  test("defaults may nest expressions and text", () => {
    const variables = { other: "foo", up: "abc" };
    assert.equal(sub("${var=${other}}", variables), "foo");
    assert.equal(sub("foo: ${var=prefix-${other}-suffix}", variables), "foo: prefix-foo-suffix");
    assert.equal(sub("${a:-${b:-${up^^}}}", variables), "ABC");
    assert.equal(sub("${var:-}", variables), "");
  });

  test("an unused default is not evaluated, so its unset variables are no error", () => {
    assert.equal(sub("${v:-${missing}}", { v: "set" }), "set");
    rejects(() => sub("${v:-${missing}}", {}), /variable not set \(strict mode\): "missing"/);
  });

  test("a default ends at the first closing brace", () => {
    assert.equal(sub("${v:-{a}}", {}), "{a}");
  });
});

describe("escaping and plain text", () => {
  test("$${var} is the literal ${var}, and $$ is a single $", () => {
    assert.equal(sub("$${v}", { v: "x" }), "${v}");
    assert.equal(sub("something $${var=${other}}", { other: "foo" }), "something ${var=foo}");
    assert.equal(sub("some text ${v}$${var$${v}$v${v}", { v: "X" }), "some text X${var${v}$vX");
    assert.equal(sub("$$$${v}", { v: "x" }), "$${v}");
  });

  test("$var without braces, lone $ and braces are left untouched", () => {
    assert.equal(sub("echo $HOME $1 $ {x} } { cost: 5$", {}), "echo $HOME $1 $ {x} } { cost: 5$");
    assert.equal(sub("\\\\something ${v}", { v: "x" }), "\\\\something x");
  });
});

describe("strictness and errors", () => {
  test("strict mode (the default) names the unset variable", () => {
    rejects(() => substitute("a: ${missing}", {}), /^variable not set \(strict mode\): "missing"$/);
    for (const expression of ["${#m}", "${m^}", "${m,,}", "${m:1}", "${m#x}", "${m%%x}", "${m/a/b}", "${m//a/b}"]) {
      rejects(() => sub(expression), /variable not set \(strict mode\): "m"/);
    }
  });

  test("non-strict mode substitutes an empty string", () => {
    assert.equal(sub("a: '${missing}' ${#missing} ${missing^^}", {}, false), "a: '' 0 ");
  });

  test("unsupported operators are rejected, naming the expression", () => {
    rejects(() => sub("x ${v+alt}", { v: "a" }), /bad substitution "\$\{v\+alt\}": the "\+" operator is not supported/);
    rejects(() => sub("${v:?oops}", { v: "a" }), /bad substitution "\$\{v:\?oops\}": the ":\?" operator is not supported/);
    rejects(() => sub("${v:+alt}", { v: "a" }), /the ":\+" operator is not supported/);
    rejects(() => sub("${v?oops}", { v: "a" }), /the "\?" operator is not supported/);
  });

  test("malformed expressions are rejected", () => {
    rejects(() => sub("value: ${"), /bad substitution "\$\{": missing closing brace/);
    rejects(() => sub("value: ${v"), /bad substitution "\$\{v": missing closing brace/);
    rejects(() => sub("${v:-abc", { v: "a" }), /missing closing brace/);
    rejects(() => sub("${}"), /bad substitution "\$\{\}": missing variable name/);
    rejects(() => sub("${1abc}"), /invalid variable name "1abc"/);
    rejects(() => sub("${a.b}", { a: "x" }), /bad substitution "\$\{a\.b\}": unexpected "\." after the variable name/);
    rejects(() => sub("${v^x}", { v: "a" }), /unexpected "x"/);
    rejects(() => sub("${v:x}", { v: "abc" }), /bad substitution "\$\{v:x\}": the offset is not an integer/);
    // An offset expanded from a variable is not quoted: it may be a Secret's value.
    assert.throws(() => sub("${v:${pw}}", { v: "abc", pw: "hunter2-secret" }), (error: Error) => !error.message.includes("hunter2"));
  });

  test("a syntax error is reported even after an unset variable", () => {
    rejects(() => sub("${missing} ${v+x}"), /the "\+" operator is not supported/);
  });

  test("variables with invalid names are rejected", () => {
    rejects(() => sub("${ok}", { ok: "1", "bad-name": "2" }), /variable name "bad-name" is invalid/);
    rejects(() => sub("x", { "1st": "2" }), /variable name "1st" is invalid/);
  });

  test("names come from own properties only", () => {
    rejects(() => sub("${constructor}"), /variable not set \(strict mode\): "constructor"/);
  });
});

test("newlines are removed from every value", () => {
  assert.equal(sub("a: ${v}", { v: "line1\nline2\n" }), "a: line1line2");
  assert.equal(sub("${#v}", { v: "a\nb" }), "2");
});

describe("substituteManifests", () => {
  const deployment = `apiVersion: apps/v1
kind: Deployment
metadata:
  name: \${app}
  namespace: apps
spec:
  replicas: \${n}
  paused: \${paused}
  template:
    metadata:
      labels:
        version: "\${version}"
`;

  test("substitutes document text, so values take their YAML type when parsed again", () => {
    const [object] = substituteManifests(deployment, { app: "web", n: "3", paused: "false", version: "1" });
    assert.equal(object?.metadata.name, "web");
    const spec = object?.spec as { replicas: unknown; paused: unknown; template: { metadata: { labels: Record<string, unknown> } } };
    assert.equal(spec.replicas, 3);
    assert.equal(spec.paused, false);
    assert.equal(spec.template.metadata.labels.version, "1");
  });

  test("keeps a disabled document verbatim, even in strict mode with its variables unset", () => {
    const text = `---
apiVersion: v1
kind: ConfigMap
metadata:
  name: script
  annotations:
    kustomize.ferry.dev/substitute: disabled
data:
  run.sh: echo \${x} $$ $\${y}
---
apiVersion: v1
kind: ConfigMap
metadata:
  name: labelled
  labels:
    kustomize.ferry.dev/substitute: disabled
data:
  value: \${x}
---
apiVersion: v1
kind: ConfigMap
metadata:
  name: substituted
data:
  value: \${y}
`;
    const objects = substituteManifests(text, { y: "why" });
    assert.deepEqual(objects.map((object) => object.data), [
      { "run.sh": "echo ${x} $$ $${y}" },
      { value: "${x}" },
      { value: "why" },
    ]);
  });

  test("only the exact value disabled opts out", () => {
    const text = `apiVersion: v1
kind: ConfigMap
metadata:
  name: cm
  annotations:
    kustomize.ferry.dev/substitute: Disabled
data:
  value: \${x}
`;
    rejects(() => substituteManifests(text, {}), /ConfigMap\/cm: variable not set/);
  });

  test("errors name the object", () => {
    rejects(
      () => substituteManifests(deployment, { app: "web", n: "3", paused: "false" }),
      /^Deployment\/apps\/\$\{app\}: variable not set \(strict mode\): "version"$/,
    );
    const text = "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: cm\ndata:\n  value: ${v+x}\n";
    rejects(() => substituteManifests(text, {}), /^ConfigMap\/cm: bad substitution "\$\{v\+x\}"/);
  });

  test("a value that breaks the YAML stalls and names the object", () => {
    const text = "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: cm\ndata:\n  value: ${v}\n";
    rejects(() => substituteManifests(text, { v: "[unclosed" }), /ConfigMap\/cm after substitution is not valid YAML/);
  });

  test("non-strict mode substitutes empty strings", () => {
    const text = "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: cm\ndata:\n  value: a${x}b\n";
    const [object] = substituteManifests(text, {}, { strict: false });
    assert.deepEqual(object?.data, { value: "ab" });
  });

  test("handles several documents, empty ones and a document end marker", () => {
    const text = "# header\n---\napiVersion: v1\nkind: Namespace\nmetadata:\n  name: ${ns}\n...\n---\n---\n"
      + "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: cm\n  namespace: ${ns}\n";
    const objects = substituteManifests(text, { ns: "team" });
    assert.deepEqual(objects.map((object) => [object.kind, object.metadata.name, object.metadata.namespace]), [
      ["Namespace", "team", undefined],
      ["ConfigMap", "cm", "team"],
    ]);
  });

  test("substituteObject renders a parsed object and substitutes it", () => {
    const [object] = substituteObject(
      { apiVersion: "apps/v1", kind: "Deployment", metadata: { name: "web" }, spec: { replicas: "${n}" } },
      { n: "2" },
    );
    assert.deepEqual(object?.spec, { replicas: 2 });
  });
});

describe("mergeVariables", () => {
  test("later references override earlier ones and inline values override references", () => {
    const merged = mergeVariables([{ a: "cm1", b: "cm1", c: "cm1" }, { b: "secret", c: "secret" }], { c: "inline" });
    assert.deepEqual(merged, { a: "cm1", b: "secret", c: "inline" });
  });

  test("works without inline values, strips newlines and keeps unusual names as own properties", () => {
    const fromSecret = JSON.parse(String.raw`{"cert": "abc\ndef\n", "__proto__": "p"}`) as Record<string, string>;
    const merged = mergeVariables([fromSecret]);
    assert.equal(merged.cert, "abcdef");
    assert.ok(Object.hasOwn(merged, "__proto__"));
    assert.equal(substitute("${__proto__}", merged), "p");
  });

  test("Secret data is base64-decoded", () => {
    assert.deepEqual(decodeSecretData({ token: Buffer.from("s3cr3t\n").toString("base64") }), { token: "s3cr3t\n" });
    assert.deepEqual(mergeVariables([decodeSecretData({ token: Buffer.from("s3cr3t\n").toString("base64") })]), { token: "s3cr3t" });
  });
});
