// The kustomization generator and the remote-base guard, checked against the real kustomize binary: what
// prepareKustomization writes must build to exactly the objects Flux would produce, and refuseRemoteBases must stop
// every reference that would make kustomize read outside the artifact or reach the network.
import assert from "node:assert/strict";
import { execFile } from "node:child_process";
import { mkdir, mkdtemp, readFile, readdir, rm, symlink, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { dirname, join } from "node:path";
import { after, before, describe, test } from "node:test";
import { promisify } from "node:util";
import yaml from "js-yaml";
import {
  KustomizationInputError,
  prepareKustomization,
  RemoteBaseError,
  refuseRemoteBases,
} from "../../src/kustomize/generate.ts";
import { binary, skipUnlessBuilt } from "../harness/binaries.ts";

const run = promisify(execFile);
const DIGEST = `sha256:${"0123456789abcdef".repeat(4)}`;

interface BuiltObject {
  kind: string;
  metadata: { name: string; namespace?: string; labels?: Record<string, string> };
  spec?: { replicas?: number; template?: { spec: { containers: Array<{ name: string; image: string }> } } };
}

let scratch = "";
let counter = 0;

/** A fresh artifact root holding `files` (relative path -> content). */
async function artifact(files: Record<string, string>): Promise<string> {
  const root = join(scratch, `artifact-${++counter}`);
  await mkdir(root, { recursive: true });
  for (const [path, content] of Object.entries(files)) {
    await mkdir(dirname(join(root, path)), { recursive: true });
    await writeFile(join(root, path), content);
  }
  return root;
}

async function kustomizeBuild(directory: string): Promise<BuiltObject[]> {
  // Flux builds with LoadRestrictionsNone (files anywhere in the artifact); refuseRemoteBases is what confines them.
  const args = ["build", "--load-restrictor", "LoadRestrictionsNone", directory];
  const { stdout } = await run(binary("kustomize"), args, { timeout: 60_000 });
  return yaml.loadAll(stdout).filter((document) => document !== null) as BuiltObject[];
}

async function kustomizationIn(directory: string, name = "kustomization.yaml"): Promise<Record<string, unknown>> {
  return yaml.load(await readFile(join(directory, name), "utf8")) as Record<string, unknown>;
}

function ids(objects: BuiltObject[]): string[] {
  return objects.map((object) => `${object.kind}/${object.metadata.namespace ?? ""}/${object.metadata.name}`).sort();
}

function configMap(name: string, labels: Record<string, string> = {}): string {
  return yaml.dump({ apiVersion: "v1", kind: "ConfigMap", metadata: { name, labels }, data: { key: name } });
}

function deployment(name: string, images: string[]): string {
  const containers = images.map((image, index) => ({ name: `c${index}`, image }));
  return yaml.dump({
    apiVersion: "apps/v1",
    kind: "Deployment",
    metadata: { name },
    spec: { selector: { matchLabels: { app: name } }, template: { metadata: { labels: { app: name } }, spec: { containers } } },
  });
}

function kustomization(fields: Record<string, unknown>): string {
  return yaml.dump({ apiVersion: "kustomize.config.k8s.io/v1beta1", kind: "Kustomization", ...fields });
}

const COMPONENT = {
  "components/extra/kustomization.yaml": yaml.dump({
    apiVersion: "kustomize.config.k8s.io/v1alpha1",
    kind: "Component",
    resources: ["extra.yaml"],
    labels: [{ pairs: { component: "extra" } }],
  }),
  "components/extra/extra.yaml": configMap("extra"),
};

before(async () => {
  scratch = await mkdtemp(join(tmpdir(), "ferry-generate-"));
});
after(async () => {
  await rm(scratch, { recursive: true, force: true });
});

describe("kustomization generation with the real kustomize", { skip: skipUnlessBuilt("kustomize") }, () => {
  test("a generated kustomization lists nested files and a nested kustomization directory exactly once", async () => {
    const root = await artifact({
      "apps/a.yaml": `${configMap("a")}---\n${configMap("a2")}`,
      "apps/b/c.yml": "apiVersion: v1\nkind: Secret\nmetadata:\n  name: c\n",
      "apps/b/d/e.yaml": configMap("e"),
      "apps/base/kustomization.yaml": kustomization({ resources: ["cm.yaml"], namePrefix: "base-" }),
      "apps/base/cm.yaml": configMap("cm"),
      "apps/notes.txt": "not a manifest",
    });
    const apps = join(root, "apps");
    await prepareKustomization(root, apps, {});

    const written = await kustomizationIn(apps);
    assert.deepEqual(written.resources, ["./a.yaml", "./b/c.yml", "./b/d/e.yaml", "./base"]);
    assert.deepEqual(ids(await kustomizeBuild(apps)), [
      "ConfigMap//a", "ConfigMap//a2", "ConfigMap//base-cm", "ConfigMap//e", "Secret//c",
    ]);
  });

  test("targetNamespace, namePrefix and nameSuffix apply to every object", async () => {
    const root = await artifact({ "a.yaml": configMap("a"), "web/deploy.yaml": deployment("web", ["nginx:1.0"]) });
    await prepareKustomization(root, root, { targetNamespace: "team", namePrefix: "pre-", nameSuffix: "-suf" });
    assert.deepEqual(ids(await kustomizeBuild(root)), ["ConfigMap/team/pre-a-suf", "Deployment/team/pre-web-suf"]);
  });

  test("a strategic merge patch and a JSON 6902 patch apply to the objects their targets select", async () => {
    const root = await artifact({
      "deploy.yaml": deployment("web", ["nginx:1.0"]),
      "cms.yaml": `${configMap("a", { tier: "front" })}---\n${configMap("b", { tier: "back" })}`,
    });
    await prepareKustomization(root, root, {
      patches: [
        {
          patch: "apiVersion: apps/v1\nkind: Deployment\nmetadata:\n  name: any\nspec:\n  replicas: 3\n",
          target: { kind: "Deployment", name: "web" },
        },
        {
          patch: "- op: add\n  path: /metadata/labels/patched\n  value: \"true\"\n",
          target: { version: "v1", kind: "ConfigMap", labelSelector: "tier=back" },
        },
      ],
    });
    const objects = await kustomizeBuild(root);
    const byName = new Map(objects.map((object) => [object.metadata.name, object]));
    assert.equal(byName.get("web")?.spec?.replicas, 3);
    assert.equal(byName.get("b")?.metadata.labels?.patched, "true");
    assert.equal(byName.get("a")?.metadata.labels?.patched, undefined);
  });

  test("images set newTag, and a digest replaces the tag rather than joining it", async () => {
    const root = await artifact({ "deploy.yaml": deployment("web", ["nginx:1.0", "redis:6", "busybox"]) });
    await prepareKustomization(root, root, {
      images: [
        { name: "nginx", newTag: "1.25" },
        { name: "redis", newTag: "7", digest: DIGEST },
        { name: "busybox", newName: "registry.local/busybox", newTag: "1.36" },
      ],
    });
    const [web] = await kustomizeBuild(root);
    assert.deepEqual(web?.spec?.template?.spec.containers.map((container) => container.image), [
      "nginx:1.25", `redis@${DIGEST}`, "registry.local/busybox:1.36",
    ]);
  });

  test("images merge into an existing kustomization by name, which keeps its file name and other fields", async () => {
    const original = kustomization({
      resources: ["deploy.yaml"],
      commonAnnotations: { built: "2024-01-01", enabled: "yes" },
      images: [
        { name: "nginx", newTag: "1.0" },
        { name: "busybox", newName: "registry.local/busybox", newTag: "1" },
      ],
    });
    const root = await artifact({ "kustomization.yml": original, "deploy.yaml": deployment("web", ["nginx", "busybox", "redis"]) });
    await prepareKustomization(root, root, { images: [{ name: "nginx", digest: DIGEST }, { name: "redis", newTag: "7" }] });

    assert.deepEqual((await readdir(root)).sort(), ["deploy.yaml", "kustomization.yml"]);
    const written = await kustomizationIn(root, "kustomization.yml");
    assert.deepEqual(written.images, [
      { name: "nginx", digest: DIGEST },
      { name: "busybox", newName: "registry.local/busybox", newTag: "1" },
      { name: "redis", newTag: "7" },
    ]);
    const [web] = await kustomizeBuild(root);
    assert.deepEqual(web?.spec?.template?.spec.containers.map((container) => container.image), [
      `nginx@${DIGEST}`, "registry.local/busybox:1", "redis:7",
    ]);
    // Strings that YAML 1.1 would read as a date or a boolean survive the rewrite as strings.
    assert.deepEqual((web?.metadata as { annotations?: unknown }).annotations, { built: "2024-01-01", enabled: "yes" });
  });

  test("an existing kustomization is left byte for byte when there is nothing to overlay", async () => {
    const original = "# hand written\nresources:\n  - a.yaml   # the only one\n";
    const root = await artifact({ "kustomization.yaml": original, "a.yaml": configMap("a") });
    await prepareKustomization(root, root, { patches: [], images: [], components: [] });
    assert.equal(await readFile(join(root, "kustomization.yaml"), "utf8"), original);
  });

  test("a component from a relative path inside the artifact is applied; others are refused", async () => {
    const root = await artifact({ ...COMPONENT, "apps/a.yaml": configMap("a") });
    const apps = join(root, "apps");
    await assert.rejects(
      prepareKustomization(root, apps, { components: ["../../outside"] }),
      (error: unknown) => error instanceof RemoteBaseError
        && /spec\.components\[0\] "\.\.\/\.\.\/outside" resolves outside the artifact/.test(error.message),
    );
    await assert.rejects(
      prepareKustomization(root, apps, { components: ["https://example.com/c.git"] }),
      /is a URL; remote bases are refused/,
    );
    await assert.rejects(prepareKustomization(root, apps, { components: [join(root, "components/extra")] }), /must be a path relative/);

    await prepareKustomization(root, apps, { components: ["../components/extra"] });
    const objects = await kustomizeBuild(apps);
    assert.deepEqual(ids(objects), ["ConfigMap//a", "ConfigMap//extra"]);
    assert.ok(objects.every((object) => object.metadata.labels?.component === "extra"));
  });

  test("ignoreMissingComponents leaves out spec components that do not exist, as Flux does; without it kustomize fails", async () => {
    const root = await artifact({ ...COMPONENT, "apps/a.yaml": configMap("a") });
    const apps = join(root, "apps");
    await prepareKustomization(root, apps, { components: ["../components/extra", "../components/absent"], ignoreMissingComponents: true });
    assert.deepEqual((await kustomizationIn(apps)).components, ["../components/extra"]);
    assert.deepEqual(ids(await kustomizeBuild(apps)), ["ConfigMap//a", "ConfigMap//extra"]);
    // Missing or not, a path leaving the artifact or a remote one is still refused.
    await assert.rejects(prepareKustomization(root, apps, { components: ["https://example.com/c.git"], ignoreMissingComponents: true }), /is a URL/);

    const strict = await artifact({ ...COMPONENT, "apps/a.yaml": configMap("a") });
    await prepareKustomization(strict, join(strict, "apps"), { components: ["../components/absent"] });
    await assert.rejects(kustomizeBuild(join(strict, "apps")), /absent/);
  });

  test("buildMetadata is written into the kustomization, replacing the file's own: originAnnotations name each object's file", async () => {
    const root = await artifact({ "kustomization.yaml": kustomization({ resources: ["a.yaml"], buildMetadata: ["managedByLabel"] }), "a.yaml": configMap("a") });
    await prepareKustomization(root, root, { buildMetadata: ["originAnnotations"] });
    assert.deepEqual((await kustomizationIn(root)).buildMetadata, ["originAnnotations"]);
    const [built] = await kustomizeBuild(root);
    assert.equal((built?.metadata as { annotations?: Record<string, string> }).annotations?.["config.kubernetes.io/origin"], "path: a.yaml\n");
  });

  test("an empty directory, and an empty kustomization, build to no objects instead of failing", async () => {
    const root = await artifact({ "docs/readme.md": "no manifests here" });
    await prepareKustomization(root, root, {});
    assert.equal((await kustomizationIn(root)).namespace, "_placeholder");
    assert.deepEqual(await kustomizeBuild(root), []);

    const empty = await artifact({ "kustomization.yaml": "apiVersion: kustomize.config.k8s.io/v1beta1\nkind: Kustomization\n" });
    await prepareKustomization(empty, empty, {});
    assert.deepEqual(await kustomizeBuild(empty), []);
  });

  test("YAML that is not Kubernetes objects fails the generation and names the file, as in Flux", async () => {
    const values = await artifact({ "a.yaml": configMap("a"), "config/values.yaml": "replicas: 3\n" });
    await assert.rejects(
      prepareKustomization(values, values, {}),
      (error: unknown) => error instanceof KustomizationInputError && /config\/values\.yaml is not a Kubernetes object/.test(error.message),
    );
    const nameless = await artifact({ "a.yaml": `${configMap("a")}---\napiVersion: v1\nkind: ConfigMap\n` });
    await assert.rejects(prepareKustomization(nameless, nameless, {}), /a\.yaml \(document 2\) has a ConfigMap without metadata\.name/);
    const broken = await artifact({ "broken.yaml": "kind: [unclosed\n" });
    await assert.rejects(prepareKustomization(broken, broken, {}), /broken\.yaml is not valid YAML/);
  });
});

describe("refusing remote bases", { skip: skipUnlessBuilt("kustomize") }, () => {
  const refused: Array<[string, RegExp]> = [
    ["https://github.com/x/y//base?ref=v1", /is a URL/],
    ["github.com/x/y/base", /is a GitHub repository/],
    ["git@github.com:x/y.git", /is an SSH Git address/],
    ["x/y//base", /is a go-getter address/],
    ["base?ref=v1", /\?ref= style query/],
    ["example.com/org/repo", /looks like a remote repository/],
    ["../../outside", /resolves outside the artifact/],
    ["/etc/kubernetes", /is an absolute path outside the artifact/],
  ];
  for (const [entry, reason] of refused) {
    test(`resources entry ${entry} is refused, naming the file and the entry`, async () => {
      const root = await artifact({
        "apps/kustomization.yaml": kustomization({ resources: ["a.yaml", entry] }),
        "apps/a.yaml": configMap("a"),
      });
      await assert.rejects(refuseRemoteBases(root, join(root, "apps")), (error: unknown) => {
        assert.ok(error instanceof RemoteBaseError, String(error));
        assert.equal(error.code, "REMOTE_BASE_REFUSED");
        assert.equal(error.disposition, "stall");
        assert.ok(error.message.startsWith(`apps/kustomization.yaml: resources[1] "${entry}" `), error.message);
        assert.match(error.message, reason);
        return true;
      });
    });
  }

  test("references deeper in the graph and in every kind of field are found", async () => {
    const files = {
      "apps/kustomization.yaml": kustomization({ resources: ["./base"] }),
      "apps/base/kustomization.yaml": kustomization({ resources: ["cm.yaml"], components: ["../../components/remote"] }),
      "apps/base/cm.yaml": configMap("cm"),
      "components/remote/kustomization.yaml": yaml.dump({
        apiVersion: "kustomize.config.k8s.io/v1alpha1", kind: "Component", resources: ["git@gitlab.com:team/repo.git"],
      }),
    };
    const root = await artifact(files);
    await assert.rejects(
      refuseRemoteBases(root, join(root, "apps")),
      /^RemoteBaseError: components\/remote\/kustomization\.yaml: resources\[0\] "git@gitlab\.com:team\/repo\.git" is an SSH Git address/,
    );

    const fields: Array<[Record<string, unknown>, RegExp]> = [
      [{ patches: [{ path: "../../secret.yaml" }] }, /patches\[0\]\.path "\.\.\/\.\.\/secret\.yaml" resolves outside/],
      [{ patchesStrategicMerge: ["../../smp.yaml"] }, /patchesStrategicMerge\[0\]/],
      [
        { patchesJson6902: [{ path: "https://example.com/p.yaml", target: { kind: "X", name: "y" } }] },
        /patchesJson6902\[0\]\.path .* is a URL/,
      ],
      [
        { configMapGenerator: [{ name: "g", files: ["passwd=/etc/passwd"] }] },
        /configMapGenerator\[0\]\.files\[0\] "\/etc\/passwd" is an absolute path/,
      ],
      [{ bases: ["github.com/x/y/base"] }, /bases\[0\]/],
      [
        { helmCharts: [{ name: "podinfo", repo: "https://stefanprodan.github.io/podinfo" }] },
        /helmCharts\[0\]\.repo .* remote chart repository/,
      ],
    ];
    for (const [spec, reason] of fields) {
      const other = await artifact({ "apps/kustomization.yaml": kustomization(spec) });
      await assert.rejects(refuseRemoteBases(other, join(other, "apps")), reason);
    }
  });

  test("a symlink leading out of the artifact is refused even though its own path is inside", async () => {
    const outside = await artifact({ "kustomization.yaml": kustomization({ resources: ["cm.yaml"] }), "cm.yaml": configMap("outside") });
    const root = await artifact({ "kustomization.yaml": kustomization({ resources: ["./linked"] }) });
    await symlink(outside, join(root, "linked"));
    await assert.rejects(refuseRemoteBases(root, root), /resources\[0\] "\.\/linked" resolves \(following symlinks\) outside the artifact/);
  });

  test("local bases, components, patches and inline patches are accepted and then build", async () => {
    const root = await artifact({
      ...COMPONENT,
      "apps/kustomization.yaml": kustomization({
        resources: ["./base", "../shared/cm.yaml", "example.com/local"],
        patches: [{ path: "patch.yaml", target: { kind: "ConfigMap", name: "base" } }],
        patchesStrategicMerge: ["apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: shared\ndata:\n  inline: \"yes\"\n"],
      }),
      "apps/patch.yaml": "- op: add\n  path: /data/patched\n  value: \"true\"\n",
      "apps/base/kustomization.yaml": kustomization({ resources: ["cm.yaml"] }),
      "apps/base/cm.yaml": configMap("base"),
      "apps/example.com/local/kustomization.yaml": kustomization({ resources: ["cm.yaml"] }),
      "apps/example.com/local/cm.yaml": configMap("dotted"),
      "shared/cm.yaml": configMap("shared"),
    });
    const apps = join(root, "apps");
    await prepareKustomization(root, apps, { components: ["../components/extra"] });
    await refuseRemoteBases(root, apps);
    const objects = await kustomizeBuild(apps);
    assert.deepEqual(ids(objects), ["ConfigMap//base", "ConfigMap//dotted", "ConfigMap//extra", "ConfigMap//shared"]);
    const data = new Map(objects.map((object) => [object.metadata.name, (object as { data?: Record<string, string> }).data]));
    assert.equal(data.get("base")?.patched, "true");
    assert.equal(data.get("shared")?.inline, "yes");
  });
});
