// Differential test of Ferry's Kustomization build (src/kustomize: generated kustomization, pinned kustomize, post-build
// substitution) against Flux's engine (flux-engine build: fluxcd/pkg/kustomize's generator, SecureBuild and
// SubstituteVariables, as kustomize-controller calls them), on the podinfo corpus. Both must give the same objects.
import assert from "node:assert/strict";
import { mkdtemp, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, before, describe, test } from "node:test";
import yaml from "js-yaml";
import { buildManifests } from "../../src/kustomize/build.ts";
import type { KustomizeOverlay } from "../../src/kustomize/generate.ts";
import { binary, skipUnlessBuilt } from "../harness/binaries.ts";
import { fluxBuild } from "../harness/flux-engine.ts";

const PODINFO = join(import.meta.dirname, "..", "..", "..", "shared", "corpora", "podinfo");

interface Case {
  readonly name: string;
  /** spec.path inside the podinfo directory (the artifact root). */
  readonly path: string;
  readonly overlay?: KustomizeOverlay;
  readonly variables?: Record<string, string>;
  readonly strict?: boolean;
  /** Text the built objects must contain, so a case cannot pass by both sides doing nothing. */
  readonly expect?: readonly string[];
}

const CASES: readonly Case[] = [
  { name: "podinfo/kustomize", path: "kustomize" },
  { name: "overlay dev", path: "deploy/overlays/dev" },
  { name: "overlay staging", path: "deploy/overlays/staging" },
  { name: "overlay production", path: "deploy/overlays/production" },
  { name: "a base on its own", path: "deploy/bases/database" },
  { name: "webapp, no kustomization.yaml (generated)", path: "deploy/webapp" },
  { name: "secure, no kustomization.yaml (generated)", path: "deploy/secure" },
  {
    name: "kustomize with targetNamespace, prefix, suffix, images and a patch",
    path: "kustomize",
    overlay: {
      targetNamespace: "apps",
      namePrefix: "pre-",
      nameSuffix: "-suf",
      images: [{ name: "ghcr.io/stefanprodan/podinfo", newName: "registry.example.com/podinfo", newTag: "9.9.9" }],
      patches: [{
        patch: "- op: replace\n  path: /spec/minReplicas\n  value: 5\n",
        target: { kind: "HorizontalPodAutoscaler", name: "podinfo" },
      }],
    },
    expect: ["\"namespace\":\"apps\"", "pre-podinfo-suf", "registry.example.com/podinfo:9.9.9", "\"minReplicas\":5"],
  },
  {
    name: "overlay production with targetNamespace over its own namespace",
    path: "deploy/overlays/production",
    overlay: { targetNamespace: "elsewhere" },
  },
  // The database and frontend scripts hold ${BACKUP_EXIT:-0}, ${FRONTEND...} and $EXIT_CODE: defaults, unset
  // variables (empty when not strict) and the unbraced form (left alone).
  {
    name: "overlay dev with substitution, not strict",
    path: "deploy/overlays/dev",
    variables: { FOO: "bar", BACKUP_EXIT: "3" },
    strict: false,
    expect: ["EXIT_CODE=3", "exit $EXIT_CODE"],
  },
  { name: "kustomize with substitution, strict", path: "kustomize", variables: { FOO: "bar" }, strict: true },
  {
    name: "substitution disabled on one object by Flux's annotation",
    path: "deploy/overlays/dev",
    overlay: {
      patches: [{
        patch: "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: backup-script\n  annotations:\n    kustomize.toolkit.fluxcd.io/substitute: disabled\n",
        target: { kind: "ConfigMap", name: "backup-script" },
      }],
    },
    variables: { BACKUP_EXIT: "3" },
    strict: false,
    expect: ["EXIT_CODE=${BACKUP_EXIT:-0}"],
  },
];

type Manifest = Record<string, unknown> & { apiVersion?: string; kind?: string; metadata?: { name?: string; namespace?: string } };

function keyOf(object: Manifest): string {
  return `${object.apiVersion}/${object.kind}/${object.metadata?.namespace ?? ""}/${object.metadata?.name}`;
}

function sorted(objects: readonly Manifest[]): Manifest[] {
  return [...objects].sort((a, b) => keyOf(a).localeCompare(keyOf(b)));
}

/** The Flux Kustomization the engine builds from: the same spec fields as Ferry's overlay and variables. */
function fluxKustomization(overlay: KustomizeOverlay | undefined, variables: Record<string, string> | undefined): object {
  const spec: Record<string, unknown> = { ...overlay };
  if (variables) spec.postBuild = { substitute: variables };
  return { apiVersion: "kustomize.toolkit.fluxcd.io/v1", kind: "Kustomization", metadata: { name: "podinfo", namespace: "flux-system" }, spec };
}

describe("Kustomization build: Ferry against Flux's engine on the podinfo corpus", { skip: skipUnlessBuilt("flux-engine", "kustomize") }, () => {
  let dir: string;
  const previousKustomize = process.env.FERRY_KUSTOMIZE;
  before(async () => {
    dir = await mkdtemp(join(tmpdir(), "ferry-flux-build-"));
    process.env.FERRY_KUSTOMIZE = binary("kustomize");
  });
  after(async () => {
    if (previousKustomize === undefined) delete process.env.FERRY_KUSTOMIZE;
    else process.env.FERRY_KUSTOMIZE = previousKustomize;
    await rm(dir, { recursive: true, force: true });
  });

  for (const [index, testCase] of CASES.entries()) {
    test(testCase.name, async () => {
      const file = join(dir, `kustomization-${index}.json`);
      await writeFile(file, JSON.stringify(fluxKustomization(testCase.overlay, testCase.variables)));
      const flux = yaml.loadAll(await fluxBuild({
        root: PODINFO,
        path: join(PODINFO, testCase.path),
        kustomization: file,
        strict: testCase.strict ?? false,
      })) as Manifest[];
      const ferry = await buildManifests(PODINFO, testCase.path, {
        ...(testCase.overlay ? { overlay: testCase.overlay } : {}),
        ...(testCase.variables ? { variables: testCase.variables } : {}),
        strictSubstitution: testCase.strict ?? false,
      });
      assert.ok(flux.length > 0);
      assert.deepEqual(sorted(ferry).map(keyOf), sorted(flux).map(keyOf), "the same objects");
      assert.deepEqual(sorted(ferry), sorted(flux));
      for (const text of testCase.expect ?? []) assert.ok(JSON.stringify(flux).includes(text), `the build lacks ${text}`);
    });
  }

  test("a variable that is not set fails both builds when strict", async () => {
    const file = join(dir, "strict.json");
    await writeFile(file, JSON.stringify(fluxKustomization(undefined, { FOO: "bar" })));
    await assert.rejects(
      fluxBuild({ root: PODINFO, path: join(PODINFO, "deploy/overlays/dev"), kustomization: file, strict: true }),
      /variable not set \(strict mode\)/,
    );
    await assert.rejects(buildManifests(PODINFO, "deploy/overlays/dev", { variables: { FOO: "bar" }, strictSubstitution: true }));
  });

  test("a path that does not exist fails both builds", async () => {
    await assert.rejects(fluxBuild({ root: PODINFO, path: join(PODINFO, "deploy/nowhere") }));
    await assert.rejects(buildManifests(PODINFO, "deploy/nowhere"));
  });
});
