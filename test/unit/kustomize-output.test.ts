// Reading kustomize output in a worker: results and typed failures come back, hostile output is bounded, and the
// event loop that serves /healthz and renews the lease keeps turning while it is read.
import assert from "node:assert/strict";
import { monitorEventLoopDelay } from "node:perf_hooks";
import { describe, test } from "node:test";
import { BuildError } from "../../src/kustomize/build.ts";
import { OutputLimitError, readOutputInWorker } from "../../src/kustomize/output.ts";
import { SubstitutionError } from "../../src/kustomize/substitute.ts";

const rebuild = (name: string, message: string) => (name === "SubstitutionError" ? new SubstitutionError(message) : new BuildError(message));
const job = (text: string, variables: Record<string, string> = {}) => ({ text, origin: "kustomize build .", variables, strict: true });

/** The classic billion laughs: nine levels of ten aliases, a few hundred bytes expanding to 10^9 nodes. */
function aliasBomb(): string {
  const lines = ["a0: &a0 [lol]"];
  for (let level = 1; level <= 9; level++) {
    lines.push(`a${level}: &a${level} [${Array.from({ length: 10 }, () => `*a${level - 1}`).join(", ")}]`);
  }
  return `apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: bomb\ndata:\n${lines.map((line) => `  ${line}`).join("\n")}\n`;
}

describe("kustomize output in a worker", () => {
  test("documents come back as objects, with variables substituted", async () => {
    const text = "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: a\ndata:\n  replicas: ${n}\n---\napiVersion: v1\nkind: Namespace\nmetadata:\n  name: b\n";
    const objects = await readOutputInWorker(job(text, { n: "3" }), rebuild);
    assert.deepEqual(objects.map((object) => `${object.kind}/${object.metadata.name}`), ["ConfigMap/a", "Namespace/b"]);
    assert.equal((objects[0]?.data as Record<string, unknown>).replicas, 3);
  });

  test("without variables nothing is substituted, unless substituteStrategy is Always (then defaults apply)", async () => {
    const text = "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: a\ndata:\n  region: ${region:=eu-west-1}\n";
    const [plain] = await readOutputInWorker(job(text), rebuild);
    assert.equal((plain?.data as Record<string, unknown>).region, "${region:=eu-west-1}");
    const [always] = await readOutputInWorker({ ...job(text), always: true }, rebuild);
    assert.equal((always?.data as Record<string, unknown>).region, "eu-west-1");
  });

  test("failures keep their type across the thread", async () => {
    await assert.rejects(readOutputInWorker(job("apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: ${missing}\n", { other: "x" }), rebuild), SubstitutionError);
    await assert.rejects(readOutputInWorker(job("kind: [unclosed\n"), rebuild), BuildError);
  });

  test("an alias bomb is refused without blocking the event loop", async () => {
    const delay = monitorEventLoopDelay({ resolution: 10 });
    delay.enable();
    const refused = (error: Error) => error instanceof OutputLimitError || error instanceof BuildError;
    await assert.rejects(readOutputInWorker(job(aliasBomb()), rebuild), refused);
    delay.disable();
    const maxMs = delay.max / 1e6;
    assert.ok(maxMs < 1000, `the event loop stalled for ${maxMs.toFixed(0)} ms`);
  });

  test("the reconcile's deadline stops the worker", async () => {
    await assert.rejects(readOutputInWorker(job(aliasBomb()), rebuild, AbortSignal.abort()), /reconcile's timeout passed/);
  });
});
