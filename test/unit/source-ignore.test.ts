// What the OCIRepository controller leaves out of an extracted artifact, as source-controller's Storage.Archive does
// with fluxcd/pkg/sourceignore: Go's filepath.Match per segment (table: Go's src/path/filepath/match_test.go
// matchTests), go-git's gitignore matcher with its quirks, every .sourceignore scoped to its directory, and Flux's
// default exclusions only when no pattern is given. The matcher was also compared with the Go code itself on 160,000
// generated cases (filepath.Match and sourceignore.NewMatcher/NewDefaultMatcher) with no difference.
import assert from "node:assert/strict";
import { mkdir, mkdtemp, readdir, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { dirname, join } from "node:path";
import { after, before, describe, test } from "node:test";
import { BadGlobPatternError, goGlobMatch } from "../../src/artifact/go-glob.ts";
import {
  applySourceIgnore,
  DEFAULT_SOURCE_IGNORE_LIMITS,
  readSourceIgnorePatterns,
  SourceIgnoreError,
  SourceIgnoreMatcher,
} from "../../src/artifact/ignore.ts";

// Go's matchTests: [pattern, name, matched or "bad" for ErrBadPattern].
const GO_MATCH: Array<[string, string, boolean | "bad"]> = [
  ["abc", "abc", true],
  ["*", "abc", true],
  ["*c", "abc", true],
  ["a*", "a", true],
  ["a*", "abc", true],
  ["a*", "ab/c", false],
  ["a*/b", "abc/b", true],
  ["a*/b", "a/c/b", false],
  ["a*b*c*d*e*/f", "axbxcxdxe/f", true],
  ["a*b*c*d*e*/f", "axbxcxdxexxx/f", true],
  ["a*b*c*d*e*/f", "axbxcxdxe/xxx/f", false],
  ["a*b*c*d*e*/f", "axbxcxdxexxx/fff", false],
  ["a*b?c*x", "abxbbxdbxebxczzx", true],
  ["a*b?c*x", "abxbbxdbxebxczzy", false],
  ["ab[c]", "abc", true],
  ["ab[b-d]", "abc", true],
  ["ab[e-g]", "abc", false],
  ["ab[^c]", "abc", false],
  ["ab[^b-d]", "abc", false],
  ["ab[^e-g]", "abc", true],
  ["a\\*b", "a*b", true],
  ["a\\*b", "ab", false],
  ["a?b", "a☺b", true],
  ["a[^a]b", "a☺b", true],
  ["a???b", "a☺b", false],
  ["a[^a][^a][^a]b", "a☺b", false],
  ["[a-ζ]*", "α", true],
  ["*[a-ζ]", "A", false],
  ["a?b", "a/b", false],
  ["a*b", "a/b", false],
  ["[\\]a]", "]", true],
  ["[\\-]", "-", true],
  ["[x\\-]", "x", true],
  ["[x\\-]", "-", true],
  ["[x\\-]", "z", false],
  ["[\\-x]", "x", true],
  ["[\\-x]", "-", true],
  ["[\\-x]", "a", false],
  ["[]a]", "]", "bad"],
  ["[-]", "-", "bad"],
  ["[x-]", "x", "bad"],
  ["[x-]", "-", "bad"],
  ["[x-]", "z", "bad"],
  ["[-x]", "x", "bad"],
  ["[-x]", "-", "bad"],
  ["[-x]", "a", "bad"],
  ["\\", "a", "bad"],
  ["[a-b-c]", "a", "bad"],
  ["[", "a", "bad"],
  ["[^", "a", "bad"],
  ["[^bc", "a", "bad"],
  ["a[", "a", "bad"],
  ["a[", "ab", "bad"],
  ["a[", "x", "bad"],
  ["a/b[", "x", "bad"],
  ["*x", "xxx", true],
];

function excludes(patterns: string, path: string, isDir = false): boolean {
  return new SourceIgnoreMatcher(readSourceIgnorePatterns(patterns, [])).excludes(path.split("/"), isDir);
}

async function tree(root: string, files: Record<string, string>): Promise<void> {
  for (const [path, content] of Object.entries(files)) {
    await mkdir(dirname(join(root, path)), { recursive: true });
    if (path.endsWith("/")) await mkdir(join(root, path), { recursive: true });
    else await writeFile(join(root, path), content);
  }
}

async function listing(root: string, prefix = ""): Promise<string[]> {
  const found: string[] = [];
  for (const entry of await readdir(join(root, prefix), { withFileTypes: true })) {
    const path = prefix ? `${prefix}/${entry.name}` : entry.name;
    if (entry.isDirectory()) {
      const inside = await listing(root, path);
      found.push(...(inside.length ? inside : [`${path}/`]));
    } else found.push(path);
  }
  return found.sort();
}

describe("Go's filepath.Match", () => {
  test("matchTests from Go's match_test.go", () => {
    for (const [pattern, name, expected] of GO_MATCH) {
      if (expected === "bad") assert.throws(() => goGlobMatch(pattern, name), BadGlobPatternError, `${pattern} ${name}`);
      else assert.equal(goGlobMatch(pattern, name), expected, `${pattern} vs ${name}`);
    }
  });
});

describe("sourceignore matcher", () => {
  test("with no pattern, Flux's defaults: VCS files, images and archives, CI configuration, .sops.yaml anywhere", () => {
    for (const path of [".git/config", ".gitignore", "logo.png", "deep/dir/a.tar.gz", ".github/workflows/ci.yml", ".travis.yml", "x/.sops.yaml", "x/y/.flux.yaml"]) {
      assert.equal(excludes("", path), true, path);
    }
    for (const path of ["app.yaml", "docs/guide.md", "a.tgz", ".sourceignore", "github/x"]) assert.equal(excludes("", path), false, path);
    // Comments and blank lines are no patterns: the defaults still apply.
    assert.equal(excludes("# nothing\n\n   \n", "logo.png"), true);
  });

  test("any pattern replaces the defaults except the VCS ones", () => {
    assert.equal(excludes("docs/", "logo.png"), false);
    assert.equal(excludes("docs/", ".github/workflows/ci.yml"), false);
    assert.equal(excludes("docs/", ".git/config"), true);
    assert.equal(excludes("!.gitignore", ".gitignore"), false, "a later pattern re-includes even a VCS file");
  });

  test("go-git's semantics: the last matching pattern wins, a file re-included inside an excluded directory is kept", () => {
    assert.equal(excludes("docs/\n!docs/keep.md", "docs/keep.md"), false);
    assert.equal(excludes("docs/\n!docs/keep.md", "docs/other.md"), true);
    assert.equal(excludes("docs/\n!docs/keep.md", "docs", true), true);
    assert.equal(excludes("!docs/keep.md\ndocs/", "docs/keep.md"), true);
    // A pattern with a slash is anchored, and also covers what lies below it; without one it matches a name anywhere.
    assert.equal(excludes("a/b", "a/b/c"), true);
    assert.equal(excludes("a/b", "x/a/b"), false);
    assert.equal(excludes("b", "x/a/b"), true);
    assert.equal(excludes("/b", "x/b"), false);
    assert.equal(excludes("**/b", "x/y/b"), true);
    assert.equal(excludes("a/**", "a/x/y"), true);
    // dirOnly: a file of that name is not a directory.
    assert.equal(excludes("build/", "build"), false);
    assert.equal(excludes("build/", "build", true), true);
    // Trailing spaces are trimmed; a CR before the newline is dropped.
    assert.equal(excludes("secret.yaml   \r\n", "secret.yaml"), true);
  });

  test("a malformed glob matches nothing", () => {
    assert.equal(excludes("[", "["), false);
    assert.equal(excludes("docs/[x-", "docs/a"), false);
  });
});

describe("applySourceIgnore on an extracted tree", () => {
  let dir: string;
  before(async () => {
    dir = await mkdtemp(join(tmpdir(), "ferry-sourceignore-"));
  });
  after(async () => {
    await rm(dir, { recursive: true, force: true });
  });

  test("without spec.ignore or .sourceignore, Flux's default exclusions; empty excluded directories go", async () => {
    const root = join(dir, "defaults");
    await tree(root, {
      "app.yaml": "a", ".github/workflows/ci.yml": "c", "img/logo.png": "p", "nested/.sops.yaml": "s", ".git/HEAD": "h", "empty/": "",
    });
    const removed = await applySourceIgnore(root, undefined);
    assert.deepEqual(await listing(root), ["app.yaml", "empty/", "img/", "nested/"]);
    assert.ok(removed.includes(".github") && removed.includes("img/logo.png"), removed.join(","));
  });

  test(".sourceignore files at every level apply below their own directory, with spec.ignore last", async () => {
    const root = join(dir, "nested");
    await tree(root, {
      ".sourceignore": "*.md\n",
      "README.md": "r",
      "app.yaml": "a",
      "logo.png": "kept: a pattern exists, so the defaults are off",
      "team/.sourceignore": "local.yaml\n!KEEP.md\n",
      "team/local.yaml": "l",
      "team/KEEP.md": "k",
      "team/deploy.yaml": "d",
      "other/local.yaml": "not under team/: kept",
      "docs/guide.md": "g",
      "docs/keep.txt": "t",
    });
    await applySourceIgnore(root, "docs/\n!docs/keep.txt\n");
    assert.deepEqual(await listing(root), [
      ".sourceignore", "app.yaml", "docs/keep.txt", "logo.png", "other/local.yaml", "team/.sourceignore", "team/KEEP.md", "team/deploy.yaml",
    ]);
  });

  test("spec.ignore of only comments leaves Flux's defaults on, as an empty pattern list does", async () => {
    const root = join(dir, "comments");
    await tree(root, { "app.yaml": "a", "logo.png": "p" });
    await applySourceIgnore(root, "# nothing to ignore\n");
    assert.deepEqual(await listing(root), ["app.yaml"]);
  });

  test("an aborted reconcile stops the walk", async () => {
    const root = join(dir, "aborted");
    await tree(root, Object.fromEntries(Array.from({ length: 300 }, (_, i) => [`f/${i}.yaml`, ""])));
    await assert.rejects(applySourceIgnore(root, "x\n".repeat(100), { signal: AbortSignal.abort() }), { name: "AbortError" });
  });

  test("hostile rules are bounded: .sourceignore bytes, patterns and evaluations each fail with SourceIgnoreError", async () => {
    const root = join(dir, "hostile");
    await tree(root, Object.fromEntries(Array.from({ length: 60 }, (_, i) => [`d${i}/.sourceignore`, `${"x*y*z*\n".repeat(60)}`])));
    const limits = (changed: Partial<typeof DEFAULT_SOURCE_IGNORE_LIMITS>) => ({ limits: { ...DEFAULT_SOURCE_IGNORE_LIMITS, ...changed } });
    await assert.rejects(applySourceIgnore(root, undefined, limits({ maxIgnoreFileBytes: 10_000 })), SourceIgnoreError);
    await assert.rejects(applySourceIgnore(root, undefined, limits({ maxPatterns: 1000 })), SourceIgnoreError);
    await assert.rejects(applySourceIgnore(root, "a\n".repeat(2000), limits({ maxPatterns: 100_000, maxEvaluations: 100_000 })), /pattern evaluations/);
    // Within the defaults the same tree is filtered, and quickly.
    const start = performance.now();
    await applySourceIgnore(root, undefined);
    assert.ok(performance.now() - start < 5000);
    // The worst the defaults allow (5,000 star patterns) is refused after its evaluation budget, never holding the
    // event loop for long: a timer due every 50 ms keeps firing.
    const worst = join(dir, "worst");
    await tree(worst, Object.fromEntries(Array.from({ length: 2000 }, (_, i) => [`f/file-${i}-abcdefghabcdefgh.yaml`, ""])));
    let longestGap = 0;
    let last = performance.now();
    const timer = setInterval(() => {
      longestGap = Math.max(longestGap, performance.now() - last);
      last = performance.now();
    }, 50);
    await assert.rejects(applySourceIgnore(worst, "a*b*c*d*e*f*g*h*q\n".repeat(5000)), /over 8000000 pattern evaluations/);
    clearInterval(timer);
    assert.ok(longestGap < 500, `the event loop was held for ${longestGap} ms`);
  });
});
