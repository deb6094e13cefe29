// A tenant's YAML must not hold the controller's event loop: alias bombs ("billion laughs") are refused by counting
// what they expand to, before anything walks or stringifies them. Timings are printed as diagnostics, not asserted:
// the budget's refusal message is the proof that the counter, not a timeout or a crash, stopped the file.
import assert from "node:assert/strict";
import { mkdtemp, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, before, describe, test, type TestContext } from "node:test";
import { KustomizationInputError, prepareKustomization } from "../../src/kustomize/generate.ts";
import { substituteManifests, SubstitutionError } from "../../src/kustomize/substitute.ts";
import { loadYamlDocument, loadYamlDocuments, YamlInputError } from "../../src/kustomize/yaml-load.ts";

// Each bomb finishes in milliseconds when refused; the timeout only turns a regression into a failure instead of a hang.
const BOMB = { timeout: 30_000 };
const BUDGET_REFUSAL = /expands YAML aliases beyond \d+ (nodes|characters of text)/;

/** The classic: each level lists the previous one `width` times, so `levels` levels expand to width^levels strings. */
function billionLaughs(levels = 9, width = 9): string {
  let text = `l0: &l0 [${Array.from({ length: width }, () => "\"lol\"").join(", ")}]\n`;
  for (let level = 1; level < levels; level++) {
    text += `l${level}: &l${level} [${Array.from({ length: width }, () => `*l${level - 1}`).join(", ")}]\n`;
  }
  return text;
}

/** One level only, but wide: a list of n items repeated n times. */
function wideBomb(n = 3000): string {
  return `items: &items [${Array.from({ length: n }, (_, i) => i).join(",")}]\ncopies: [${Array.from({ length: n }, () => "*items").join(",")}]\n`;
}

function timed<T>(t: TestContext, what: string, run: () => T): T {
  const start = performance.now();
  try {
    return run();
  } finally {
    t.diagnostic(`${what}: ${(performance.now() - start).toFixed(1)} ms`);
  }
}

function refusedByBudget(error: unknown, type: new (...args: never[]) => Error, origin: string): boolean {
  assert.ok(error instanceof type, `expected a ${type.name}, got ${String(error)}`);
  assert.match(error.message, BUDGET_REFUSAL);
  assert.ok(error.message.startsWith(origin), error.message);
  return true;
}

describe("bounded YAML loading", () => {
  test("the classic nine-level billion laughs is refused by the expansion budget", BOMB, (t) => {
    const text = billionLaughs();
    t.diagnostic(`${text.length} bytes`);
    assert.throws(() => timed(t, "refused in", () => loadYamlDocuments(text, { origin: "laughs.yaml" })),
      (error: unknown) => refusedByBudget(error, YamlInputError, "laughs.yaml"));
  });

  test("a wide one-level bomb is refused", BOMB, (t) => {
    const text = wideBomb();
    assert.throws(() => timed(t, "refused in", () => loadYamlDocument(text, { origin: "wide.yaml" })),
      (error: unknown) => refusedByBudget(error, YamlInputError, "wide.yaml"));
  });

  test("a long chain of aliases, each wrapping the last, is refused without overflowing the stack", BOMB, (t) => {
    const text = Array.from({ length: 20_000 }, (_, i) => (i === 0 ? "c0: &c0 [x]" : `c${i}: &c${i} [*c${i - 1}]`)).join("\n");
    assert.throws(() => timed(t, "refused in", () => loadYamlDocuments(text, { origin: "chain.yaml" })),
      (error: unknown) => refusedByBudget(error, YamlInputError, "chain.yaml"));
  });

  test("one long string repeated through aliases is refused by its characters", BOMB, () => {
    const text = `s: &s "${"x".repeat(100_000)}"\ncopies: [${Array.from({ length: 1000 }, () => "*s").join(",")}]\n`;
    assert.throws(() => loadYamlDocuments(text, { origin: "strings.yaml" }), /strings\.yaml expands YAML aliases beyond \d+ characters of text/);
  });

  test("an alias inside the node it names expands forever and is refused", BOMB, () => {
    assert.throws(() => loadYamlDocument("a: &a [*a]\n", { origin: "loop.yaml" }), BUDGET_REFUSAL);
  });

  test("honest anchors and aliases load, as shared objects", () => {
    const text = "defaults: &defaults {cpu: 100m, memory: 64Mi}\nweb: {resources: *defaults}\nworker:\n  <<: *defaults\n  cpu: 200m\n";
    const document = loadYamlDocument(text, { origin: "ok.yaml" }) as Record<string, Record<string, unknown>>;
    assert.deepEqual(document.web?.resources, { cpu: "100m", memory: "64Mi" });
    assert.deepEqual(document.worker, { cpu: "200m", memory: "64Mi" });
    assert.deepEqual(loadYamlDocuments("a: 1\n---\n---\nb: 2\n", { origin: "multi.yaml" }), [{ a: 1 }, null, { b: 2 }]);
  });

  test("text over the byte limit is refused before parsing", () => {
    assert.throws(() => loadYamlDocuments("a: é\n", { origin: "big.yaml", maxBytes: 5 }), (error: unknown) =>
      error instanceof YamlInputError && error.disposition === "stall" && /^big\.yaml is over the 5-byte limit/.test(error.message));
    assert.doesNotThrow(() => loadYamlDocuments("a: é\n", { origin: "big.yaml", maxBytes: 6 }));
  });

  test("invalid YAML is summarised without quoting the document", () => {
    assert.throws(() => loadYamlDocuments("password: s3cr3t\n  bad: [indent\n", { origin: "secret.yaml" }), (error: unknown) => {
      assert.ok(error instanceof YamlInputError);
      assert.match(error.message, /^secret\.yaml is not valid YAML: .+\(line \d+, column \d+\)$/);
      assert.doesNotMatch(error.message, /s3cr3t/);
      return true;
    });
  });
});

describe("where tenant YAML is loaded", () => {
  let scratch = "";
  before(async () => {
    scratch = await mkdtemp(join(tmpdir(), "ferry-yaml-load-"));
  });
  after(async () => {
    await rm(scratch, { recursive: true, force: true });
  });

  test("a kustomization.yaml alias bomb stalls prepareKustomization", BOMB, async (t) => {
    const root = await mkdtemp(join(scratch, "kustomization-"));
    const text = `apiVersion: kustomize.config.k8s.io/v1beta1\nkind: Kustomization\n${billionLaughs()}resources: []\n`;
    await writeFile(join(root, "kustomization.yaml"), text);
    const start = performance.now();
    await assert.rejects(prepareKustomization(root, root, { namePrefix: "x-" }),
      (error: unknown) => refusedByBudget(error, KustomizationInputError, "kustomization.yaml"));
    t.diagnostic(`refused in ${(performance.now() - start).toFixed(1)} ms`);
  });

  test("a manifest alias bomb stalls the generated kustomization", BOMB, async () => {
    const root = await mkdtemp(join(scratch, "generated-"));
    await writeFile(join(root, "bomb.yaml"), `apiVersion: v1\nkind: ConfigMap\nmetadata: {name: cm}\ndata:\n  ${wideBomb().replaceAll("\n", "\n  ")}`);
    await assert.rejects(prepareKustomization(root, root, {}), (error: unknown) => refusedByBudget(error, KustomizationInputError, "bomb.yaml"));
  });

  test("a substituted value carrying its own alias bomb is refused after substitution", BOMB, (t) => {
    // Flow YAML fits on one line, so a variable can bring anchors and aliases; newlines are stripped from values anyway.
    const bomb = `{${billionLaughs().trim().split("\n").join(", ")}}`;
    const text = "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: cm\ndata:\n  value: ${bomb}\n";
    assert.throws(() => timed(t, "refused in", () => substituteManifests(text, { bomb })),
      (error: unknown) => refusedByBudget(error, SubstitutionError, "ConfigMap/cm after substitution"));
  });
});
