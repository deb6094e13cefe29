// crds/ is generated from the zod schemas; a stale copy would let the apiserver enforce rules the code no longer has.
import assert from "node:assert/strict";
import { readdir, readFile } from "node:fs/promises";
import { join } from "node:path";
import { test } from "node:test";
import yaml from "js-yaml";
import { renderCrds } from "../../src/api/crd.ts";

const CRDS_DIR = join(import.meta.dirname, "..", "..", "crds");

type Schema = Record<string, unknown>;
type Crd = { spec: { versions: Array<{ schema: { openAPIV3Schema: Schema } }> } };

test("crds/ matches the zod schemas (run `npm run crds` after changing src/api)", async () => {
  const rendered = renderCrds();
  const committed = (await readdir(CRDS_DIR)).filter((file) => file.endsWith(".yaml"));
  assert.deepEqual(committed.sort(), [...rendered.keys()].sort(), "crds/ has missing or extra files");
  for (const [file, text] of rendered) {
    assert.equal(await readFile(join(CRDS_DIR, file), "utf8"), text, `crds/${file} is stale: run npm run crds`);
  }
});

test("the schemas are structural: no $schema, no additionalProperties: false, every property typed", () => {
  const visit = (schema: Schema, path: string) => {
    assert.ok(!("$schema" in schema), `${path} has $schema`);
    assert.notEqual(schema.additionalProperties, false, `${path} has additionalProperties: false`);
    for (const [name, child] of Object.entries((schema.properties ?? {}) as Record<string, Schema>)) {
      assert.equal(typeof child.type, "string", `${path}.${name} has no type`);
      visit(child, `${path}.${name}`);
    }
    if (schema.items) visit(schema.items as Schema, `${path}[]`);
  };
  for (const [file, text] of renderCrds()) {
    const crd = yaml.load(text) as Crd;
    for (const version of crd.spec.versions) visit(version.schema.openAPIV3Schema, file);
  }
});
