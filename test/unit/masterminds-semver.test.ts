// ref.semver as source-controller reads it: Masterminds/semver v3.5.0's constraints and versions, and
// fluxcd/pkg/version.ParseVersion's three-part rule for tags. The tables below are the cases of Masterminds' own
// tests at v3.5.0 (constraints_test.go: TestConstraintCheck, TestConstraintsCheck, TestNewConstraint,
// TestRewriteRange; version_test.go: TestNewVersion "With loose NewVersion", TestCompare), taken as data, not code.
// The module was also run against Masterminds v3.5.0 itself (Go) on 180,000 generated constraint/version pairs and
// 6,000 tag lists heavy with equal versions, with no difference.
import assert from "node:assert/strict";
import { describe, test } from "node:test";
import semver from "semver";
import {
  compareVersions,
  highestMatchingTag,
  MAX_CONSTRAINT_LENGTH,
  parseTagVersion,
  parseVersion,
  rewriteRanges,
  SemverConstraintError,
  SemverConstraints,
  type SemverVersion,
} from "../../src/registry/masterminds-semver.ts";

function version(text: string): SemverVersion {
  const parsed = parseVersion(text);
  assert.ok(parsed, `${JSON.stringify(text)} should parse`);
  return parsed;
}

const check = (constraint: string, v: string) => SemverConstraints.parse(constraint).check(version(v));

// constraints_test.go TestConstraintCheck (one constraint; the empty-string rows test parseConstraint directly,
// which NewConstraint never reaches, and are left out).
const SINGLE: Array<[string, string, boolean]> = [
  ["=2.0.0", "1.2.3", false],
  ["=2.0.0", "2.0.0", true],
  ["=2.0", "1.2.3", false],
  ["=2.0", "2.0.0", true],
  ["=2.0", "2.0.1", true],
  ["4.1", "4.1.0", true],
  ["!=4.1.0", "4.1.0", false],
  ["!=4.1.0", "4.1.1", true],
  ["!=4.1", "4.1.0", false],
  ["!=4.1", "4.1.1", false],
  ["!=4.1", "5.1.0-alpha.1", false],
  ["!=4.1.0", "5.1.0-alpha.1", false],
  ["!=4.1-alpha", "4.1.0", true],
  ["!=4.1", "5.1.0", true],
  ["<11", "0.1.0", true],
  ["<11", "11.1.0", false],
  ["<1.1", "0.1.0", true],
  ["<1.1", "1.1.0", false],
  ["<1.1", "1.1.1", false],
  ["<=11", "1.2.3", true],
  ["<=11", "12.2.3", false],
  ["<=11", "11.2.3", true],
  ["<=1.1", "1.2.3", false],
  ["<=1.1", "0.1.0", true],
  ["<=1.1", "1.1.0", true],
  ["<=1.1", "1.1.1", true],
  [">1.1", "4.1.0", true],
  [">1.1", "1.1.0", false],
  [">0", "0", false],
  [">0", "1", true],
  [">0", "0.0.1-alpha", false],
  [">0.0", "0.0.1-alpha", false],
  [">0-0", "0.0.1-alpha", false],
  [">0.0-0", "0.0.1-alpha", false],
  [">0", "0.0.0-alpha", false],
  [">0-0", "0.0.0-alpha", false],
  [">0.0.0-0", "0.0.0-alpha", true],
  [">1.2.3-alpha.1", "1.2.3-alpha.2", true],
  [">1.2.3-alpha.1", "1.3.3-alpha.2", true],
  [">11", "11.1.0", false],
  [">11.1", "11.1.0", false],
  [">11.1", "11.1.1", false],
  [">11.1", "11.2.1", true],
  [">=11", "11.1.2", true],
  [">=11.1", "11.1.2", true],
  [">=11.1", "11.0.2", false],
  [">=1.1", "4.1.0", true],
  [">=1.1", "1.1.0", true],
  [">=1.1", "0.0.9", false],
  [">=0", "0.0.1-alpha", false],
  [">=0.0", "0.0.1-alpha", false],
  [">=0-0", "0.0.1-alpha", true],
  [">=0.0-0", "0.0.1-alpha", true],
  [">=0", "0.0.0-alpha", false],
  [">=0-0", "0.0.0-alpha", true],
  [">=0.0.0-0", "0.0.0-alpha", true],
  [">=0.0.0-0", "1.2.3", true],
  [">=0.0.0-0", "3.4.5-beta.1", true],
  ["<0", "0.0.0-alpha", false],
  ["<0-z", "0.0.0-alpha", true],
  [">=0", "0", true],
  ["=0", "1", false],
  ["*", "1", true],
  ["*", "4.5.6", true],
  ["*", "1.2.3-alpha.1", false],
  ["*-0", "1.2.3-alpha.1", true],
  ["2.*", "1", false],
  ["2.*", "3.4.5", false],
  ["2.*", "2.1.1", true],
  ["2.1.*", "2.1.1", true],
  ["2.1.*", "2.2.1", false],
  ["2", "1", false],
  ["2", "3.4.5", false],
  ["2", "2.1.1", true],
  ["2.1", "2.1.1", true],
  ["2.1", "2.2.1", false],
  ["~1.2.3", "1.2.4", true],
  ["~1.2.3", "1.3.4", false],
  ["~1.2", "1.2.4", true],
  ["~1.2", "1.3.4", false],
  ["~1", "1.2.4", true],
  ["~1", "2.3.4", false],
  ["~0.2.3", "0.2.5", true],
  ["~0.2.3", "0.3.5", false],
  ["~1.2.3-beta.2", "1.2.3-beta.4", true],
  ["~1.2.3-beta.2", "1.2.4-beta.2", true],
  ["~1.2.3-beta.2", "1.3.4-beta.2", false],
  ["^1.2.3", "1.8.9", true],
  ["^1.2.3", "2.8.9", false],
  ["^1.2.3", "1.2.1", false],
  ["^1.1.0", "2.1.0", false],
  ["^1.2.0", "2.2.1", false],
  ["^1.2.0", "1.2.1-alpha.1", false],
  ["^1.2.0-alpha.0", "1.2.1-alpha.1", true],
  ["^1.2.0-alpha.0", "1.2.1-alpha.0", true],
  ["^1.2.0-alpha.2", "1.2.0-alpha.1", false],
  ["^1.2", "1.8.9", true],
  ["^1.2", "2.8.9", false],
  ["^1", "1.8.9", true],
  ["^1", "2.8.9", false],
  ["^0.2.3", "0.2.5", true],
  ["^0.2.3", "0.5.6", false],
  ["^0.2", "0.2.5", true],
  ["^0.2", "0.5.6", false],
  ["^0.0.3", "0.0.3", true],
  ["^0.0.3", "0.0.4", false],
  ["^0.0", "0.0.3", true],
  ["^0.0", "0.1.4", false],
  ["^0.0", "1.0.4", false],
  ["^0", "0.2.3", true],
  ["^0", "1.1.4", false],
  ["^0.2.3-beta.2", "0.2.3-beta.4", true],
  ["^0.2.3-beta.2", "0.2.4-beta.2", true],
  ["^0.2.3-beta.2", "0.3.4-beta.2", false],
  ["^0.2.3-beta.2", "0.2.3-beta.2", true],
];

// constraints_test.go TestConstraintsCheck.
const MULTI: Array<[string, string, boolean]> = [
  ["*", "1.2.3", true],
  ["~0.0.0", "1.2.3", true],
  ["0.x.x", "1.2.3", false],
  ["0.0.x", "1.2.3", false],
  ["0.0.0", "1.2.3", false],
  ["*", "1.2.3", true],
  ["^0.0.0", "1.2.3", false],
  ["= 2.0", "1.2.3", false],
  ["= 2.0", "2.0.0", true],
  ["4.1", "4.1.0", true],
  ["4.1.x", "4.1.3", true],
  ["1.x", "1.4", true],
  ["!=4.1", "4.1.0", false],
  ["!=4.1-alpha", "4.1.0-alpha", false],
  ["!=4.1-alpha", "4.1.1-alpha", false],
  ["!=4.1-alpha", "4.1.0", true],
  ["!=4.1", "5.1.0", true],
  ["!=4.x", "5.1.0", true],
  ["!=4.x", "4.1.0", false],
  ["!=4.1.x", "4.2.0", true],
  ["!=4.2.x", "4.2.3", false],
  [">1.1", "4.1.0", true],
  [">1.1", "1.1.0", false],
  ["<1.1", "0.1.0", true],
  ["<1.1", "1.1.0", false],
  ["<1.1", "1.1.1", false],
  ["<1.x", "1.1.1", false],
  ["<1.x", "0.1.1", true],
  ["<1.x", "2.0.0", false],
  ["<1.1.x", "1.2.1", false],
  ["<1.1.x", "1.1.500", false],
  ["<1.1.x", "1.0.500", true],
  ["<1.2.x", "1.1.1", true],
  [">=1.1", "4.1.0", true],
  [">=1.1", "4.1.0-beta", false],
  [">=1.1", "1.1.0", true],
  [">=1.1", "0.0.9", false],
  ["<=1.1", "0.1.0", true],
  ["<=1.1", "0.1.0-alpha", false],
  ["<=1.1-a", "0.1.0-alpha", true],
  ["<=1.1", "1.1.0", true],
  ["<=1.x", "1.1.0", true],
  ["<=2.x", "3.0.0", false],
  ["<=1.1", "1.1.1", true],
  ["<=1.1.x", "1.2.500", false],
  ["<=4.5", "3.4.0", true],
  ["<=4.5", "3.7.0", true],
  ["<=4.5", "4.6.3", false],
  [">1.1, <2", "1.1.1", false],
  [">1.1, <2", "1.2.1", true],
  [">1.1, <3", "4.3.2", false],
  [">=1.1, <2, !=1.2.3", "1.2.3", false],
  [">1.1 <2", "1.1.1", false],
  [">1.1 <2", "1.2.1", true],
  [">1.1    <3", "4.3.2", false],
  [">=1.1    <2    !=1.2.3", "1.2.3", false],
  [">=1.1, <2, !=1.2.3 || > 3", "4.1.2", true],
  [">=1.1, <2, !=1.2.3 || > 3", "3.1.2", false],
  [">=1.1, <2, !=1.2.3 || >= 3", "3.0.0", true],
  [">=1.1, <2, !=1.2.3 || > 3", "3.0.0", false],
  [">=1.1, <2, !=1.2.3 || > 3", "1.2.3", false],
  [">=1.1 <2 !=1.2.3", "1.2.3", false],
  [">=1.1 <2 !=1.2.3 || > 3", "4.1.2", true],
  [">=1.1 <2 !=1.2.3 || > 3", "3.1.2", false],
  [">=1.1 <2 !=1.2.3 || >= 3", "3.0.0", true],
  [">=1.1 <2 !=1.2.3 || > 3", "3.0.0", false],
  [">=1.1 <2 !=1.2.3 || > 3", "1.2.3", false],
  ["> 1.1, <     2", "1.1.1", false],
  [">   1.1, <2", "1.2.1", true],
  [">1.1, <  3", "4.3.2", false],
  [">= 1.1, <     2, !=1.2.3", "1.2.3", false],
  ["> 1.1 < 2", "1.1.1", false],
  [">1.1 < 2", "1.2.1", true],
  ["> 1.1    <3", "4.3.2", false],
  [">=1.1    < 2    != 1.2.3", "1.2.3", false],
  [">= 1.1, <2, !=1.2.3 || > 3", "4.1.2", true],
  [">= 1.1, <2, != 1.2.3 || > 3", "3.1.2", false],
  [">= 1.1, <2, != 1.2.3 || >= 3", "3.0.0", true],
  [">= 1.1, <2, !=1.2.3 || > 3", "3.0.0", false],
  [">= 1.1, <2, !=1.2.3 || > 3", "1.2.3", false],
  [">= 1.1 <2 != 1.2.3", "1.2.3", false],
  [">= 1.1 <2 != 1.2.3 || > 3", "4.1.2", true],
  [">= 1.1 <2 != 1.2.3 || > 3", "3.1.2", false],
  [">= 1.1 <2 != 1.2.3 || >= 3", "3.0.0", true],
  [">= 1.1 < 2 !=1.2.3 || > 3", "3.0.0", false],
  [">=1.1 < 2 !=1.2.3 || > 3", "1.2.3", false],
  [">= 1.0.0  <= 2.0.0-beta", "1.0.1-beta", true],
  [">= 1.0.0  <= 2.0.0-beta", "1.0.1", true],
  [">= 1.0.0  <= 2.0.0-beta", "3.0.0", false],
  [">= 1.0.0  <= 2.0.0-beta || > 3", "1.0.1-beta", true],
  [">= 1.0.0  <= 2.0.0-beta || > 3", "3.0.1-beta", false],
  [">= 1.0.0  <= 2.0.0-beta != 1.0.1 || > 3", "1.0.1-beta", true],
  [">= 1.0.0  <= 2.0.0-beta != 1.0.1-beta || > 3", "1.0.1-beta", false],
  [">= 1.0.0-0  <= 2.0.0", "1.0.1-beta", true],
  ["1.1 - 2", "1.1.1", true],
  ["1.5.0 - 4.5", "3.7.0", true],
  ["1.1-3", "4.3.2", false],
  ["^1.1", "1.1.1", true],
  ["^1.1", "4.3.2", false],
  ["^1.x", "1.1.1", true],
  ["^2.x", "1.1.1", false],
  ["^1.x", "2.1.1", false],
  ["^1.x", "1.1.1-beta1", false],
  ["^1.1.2-alpha", "1.2.1-beta1", true],
  ["^1.2.x-alpha", "1.1.1-beta1", false],
  ["^0.0.1", "0.0.1", true],
  ["^0.0.1", "0.3.1", false],
  ["~*", "2.1.1", true],
  ["~1", "2.1.1", false],
  ["~1", "1.3.5", true],
  ["~1", "1.4", true],
  ["~1.x", "2.1.1", false],
  ["~1.x", "1.3.5", true],
  ["~1.x", "1.4", true],
  ["~1.1", "1.1.1", true],
  ["~1.1", "1.1.1-alpha", false],
  ["~1.1-alpha", "1.1.1-beta", true],
  ["~1.1.1-beta", "1.1.1-alpha", false],
  ["~1.1.1-beta", "1.1.1", true],
  ["~1.2.3", "1.2.5", true],
  ["~1.2.3", "1.2.2", false],
  ["~1.2.3", "1.3.2", false],
  ["~1.1", "1.2.3", false],
  ["~1.3", "2.4.5", false],
  ["1.0.0 - 2.0.0 <=2.0.0", "1.5.0", true],
  ["1.0.0 - 2.0.0, <=2.0.0", "1.5.0", true],
];

// constraints_test.go TestNewConstraint: [constraint, refused].
const NEW_CONSTRAINT: Array<[string, boolean]> = [
  [">= 1.1", false],
  [">40.50.60, < 50.70", false],
  ["2.0", false],
  ["v2.3.5-20161202202307-sha.e8fc5e5", false],
  ["v1.2.3-0abc", false],
  ["v1.2.3-beta.01", true],
  [">= bar", true],
  ["BAR >= 1.2.3", true],
  [">= 1.2.3 < 2.0", false],
  [">= 1.2.3 < 2.0 || => 3.0 < 4", false],
  [">= 1.2.3, < 2.0", false],
  [">= 1.2.3, < 2.0 || => 3.0, < 4", false],
  ["3 - 4 || => 3.0, < 4", false],
  ["12.3.4.1234", true],
  ["12.23.4.1234", true],
  ["12.3.34.1234", true],
  ["12.3.34 ~1.2.3", false],
  ["12.3.34~ 1.2.3", true],
  ["1.0.0 - 2.0.0, <=2.0.0", false],
];

// version_test.go TestNewVersion, "With loose NewVersion" (CoerceNewVersion's default): [version, parses].
const NEW_VERSION: Array<[string, boolean]> = [
  ["1.2.3", true],
  ["1.2.3-alpha.01", false],
  ["1.2.3+test.01", true],
  ["1.2.3-alpha.-1", true],
  ["v1.2.3", true],
  ["1.0", true],
  ["v1.0", true],
  ["1", true],
  ["v1", true],
  ["1.2.beta", false],
  ["v1.2.beta", false],
  ["foo", false],
  ["1.2-5", true],
  ["v1.2-5", true],
  ["1.2-beta.5", true],
  ["v1.2-beta.5", true],
  ["\n1.2", false],
  ["\nv1.2", false],
  ["1.2.0-x.Y.0+metadata", true],
  ["v1.2.0-x.Y.0+metadata", true],
  ["1.2.0-x.Y.0+metadata-width-hypen", true],
  ["v1.2.0-x.Y.0+metadata-width-hypen", true],
  ["1.2.3-rc1-with-hypen", true],
  ["v1.2.3-rc1-with-hypen", true],
  ["1.2.3-0abc123", true],
  ["1.2.3-beta.01", false],
  ["1.2.3.4", false],
  ["v1.2.3.4", false],
  ["1.2.2147483648", true],
  ["1.2147483648.3", true],
  ["2147483648.3.0", true],
  ["12.3.4.1234", false],
  ["12.23.4.1234", false],
  ["12.3.34.1234", false],
  ["20221209-update-renovatejson-v4", true],
  ["1.1.2+.123", false],
  ["1.0.0-alpha_beta", false],
  ["1.0.0-alpha..", false],
  ["1.0.0-alpha..1", false],
  ["9.8.7+meta+meta", false],
  ["1.2.31----RC-SNAPSHOT.12.09.1--.12+788", false],
  ["01.1.1", true],
  ["1.01.1", true],
  ["1.1.01", true],
];

// version_test.go TestCompare.
const COMPARE: Array<[string, string, number]> = [
  ["1.2.3", "1.5.1", -1],
  ["2.2.3", "1.5.1", 1],
  ["2.2.3", "2.2.2", 1],
  ["3.2-beta", "3.2-beta", 0],
  ["1.3", "1.1.4", 1],
  ["4.2", "4.2-beta", 1],
  ["4.2-beta", "4.2", -1],
  ["4.2-alpha", "4.2-beta", -1],
  ["4.2-alpha", "4.2-alpha", 0],
  ["4.2-beta.2", "4.2-beta.1", 1],
  ["4.2-beta2", "4.2-beta1", 1],
  ["4.2-beta", "4.2-beta.2", -1],
  ["4.2-beta", "4.2-beta.foo", -1],
  ["4.2-beta.2", "4.2-beta", 1],
  ["4.2-beta.foo", "4.2-beta", 1],
  ["1.2+bar", "1.2+baz", 0],
  ["1.0.0-beta.4", "1.0.0-beta.-2", -1],
  ["1.0.0-beta.-2", "1.0.0-beta.-3", -1],
  ["1.0.0-beta.-3", "1.0.0-beta.5", 1],
];

// constraints_test.go TestRewriteRange.
const REWRITE: Array<[string, string]> = [
  ["2 - 3", ">= 2, <= 3 "],
  ["2 - 3, 2 - 3", ">= 2, <= 3 ,>= 2, <= 3 "],
  ["2 - 3, 4.0.0 - 5.1", ">= 2, <= 3 ,>= 4.0.0, <= 5.1 "],
  ["2 - 3 4.0.0 - 5.1", ">= 2, <= 3 >= 4.0.0, <= 5.1 "],
  ["1.0.0 - 2.0.0 <=2.0.0", ">= 1.0.0, <= 2.0.0 <=2.0.0"],
];

describe("Masterminds semver, from its own tests", () => {
  test("TestConstraintCheck", () => {
    for (const [constraint, v, expected] of SINGLE) assert.equal(check(constraint, v), expected, `${constraint} vs ${v}`);
  });

  test("TestConstraintsCheck", () => {
    for (const [constraint, v, expected] of MULTI) assert.equal(check(constraint, v), expected, `${constraint} vs ${v}`);
  });

  test("TestNewConstraint", () => {
    for (const [constraint, refused] of NEW_CONSTRAINT) {
      if (refused) assert.throws(() => SemverConstraints.parse(constraint), SemverConstraintError, constraint);
      else assert.doesNotThrow(() => SemverConstraints.parse(constraint), constraint);
    }
  });

  test("TestNewVersion (loose)", () => {
    for (const [text, parses] of NEW_VERSION) assert.equal(parseVersion(text) !== undefined, parses, JSON.stringify(text));
  });

  test("TestCompare", () => {
    for (const [a, b, expected] of COMPARE) assert.equal(compareVersions(version(a), version(b)), expected, `${a} vs ${b}`);
  });

  test("TestRewriteRange", () => {
    for (const [input, expected] of REWRITE) assert.equal(rewriteRanges(input), expected, input);
  });
});

describe("ref.semver as source-controller applies it", () => {
  test("tags need three dot-separated parts (fluxcd/pkg/version.ParseVersion); constraints are coerced", () => {
    for (const tag of ["1.2.3", "v1.2.3", "2025.01.02", "1.2-rc.1", "1.2.3-rc.1+build.5", "v1.2.3-0abc"]) assert.ok(parseTagVersion(tag), tag);
    for (const tag of ["6.1", "v6", "latest", "1.2.3.4", "V1.2.3", "1.2.3-beta.01", "1.2.3_build", "sha256-abc.sig", `1.2.${"9".repeat(20)}`]) {
      assert.equal(parseTagVersion(tag), undefined, tag);
    }
    assert.equal(highestMatchingTag(["6.1", "v6", "6.0.9"], SemverConstraints.parse(">=6.0")), "6.0.9");
    assert.equal(SemverConstraints.parse(">=6.1").check(version("6.1.0")), true);
  });

  test("comma is AND, || is OR, highest wins, the tag is returned as listed", () => {
    const tags = ["1.5", "1.5.0", "v1.9.0", "1.9.0-rc.1", "2.0.0", "0.9.0", "not-a-version"];
    assert.equal(highestMatchingTag(tags, SemverConstraints.parse(">=1.0, <2.0")), "v1.9.0");
    assert.equal(highestMatchingTag(tags, SemverConstraints.parse("<1.0 || >=2.0")), "2.0.0");
    assert.equal(highestMatchingTag(tags, SemverConstraints.parse(">=3")), undefined);
  });

  test("prereleases only when the constraint's OR group names one; -0 opts in", () => {
    const tags = ["1.0.0", "1.1.0-rc.1", "2.0.0-alpha.1"];
    assert.equal(highestMatchingTag(tags, SemverConstraints.parse(">=1.0.0")), "1.0.0");
    assert.equal(highestMatchingTag(tags, SemverConstraints.parse(">=1.0.0-0")), "2.0.0-alpha.1");
    assert.equal(highestMatchingTag(tags, SemverConstraints.parse(">=1.0.0-0 <1.5.0")), "1.1.0-rc.1");
    // The opt-in belongs to its own OR group only.
    assert.equal(highestMatchingTag(tags, SemverConstraints.parse("<0.1.0-0 || >=1.0.0")), "1.0.0");
  });

  // source-controller takes the first after Go's sort.Sort (not stable). The expected tags over 12 matches are what
  // Masterminds v3.5.0 and Go 1.26's sort.Sort(sort.Reverse(semver.Collection)) return for these lists.
  test("of tags with equal precedence, Go's unstable sort decides, as in Flux", () => {
    const any = SemverConstraints.parse(">=1.0.0");
    // Up to 12 matches Go uses insertion sort, which keeps equal tags in listed order.
    assert.equal(highestMatchingTag(["1.0.0+b", "v1.0.0", "1.0.0+a"], any), "1.0.0+b");
    assert.equal(highestMatchingTag(["01.0.0", "1.0.0"], any), "01.0.0");
    // Beyond, pdqsort's partitions move them.
    const releases = Array.from({ length: 14 }, (_, minor) => `1.${minor}.0`);
    assert.equal(highestMatchingTag([...releases, "v1.13.0", "1.13.0+b", "01.13.0"], any), "01.13.0");
    assert.equal(highestMatchingTag(["1.13.0", "v1.13.0", ...releases.slice(0, 13)], any), "v1.13.0");
  });

  // Each row is read differently by node-semver (the reason for this module); the expected value is Masterminds'.
  test("where node-semver disagrees, Masterminds is followed", () => {
    // [constraint, version, Masterminds' answer]; node-semver refuses the constraint or answers the other way.
    const rows: Array<[string, string, boolean]> = [
      [">=1.0, <2.0", "1.5.0", true],
      ["~1.2.3-beta.2", "1.2.4-beta.2", true],
      ["^0.2.3-beta.2", "0.2.4-beta.2", true],
      ["^1.2.0-alpha.0", "1.2.1-alpha.1", true],
      [">=1.0.0-0 <2.0.0", "1.5.0-rc.1", true],
      [">= 1.0.0  <= 2.0.0-beta", "1.0.1-beta", true],
      ["*-0", "1.2.3-alpha.1", true],
      ["~1.1-alpha", "1.1.1-beta", true],
      ["!=4.1", "4.1.1", false],
      [">=1.1 <2 !=1.2.3", "1.2.3", false],
    ];
    for (const [constraint, v, expected] of rows) {
      assert.equal(check(constraint, v), expected, `${constraint} vs ${v}`);
      const range = semver.validRange(constraint);
      assert.ok(range === null || semver.satisfies(v, range) !== expected, `node-semver agrees on ${constraint} vs ${v}; the row proves nothing`);
    }
  });

  test("Masterminds' bounds: 512 bytes, 32 OR groups; refused with its wording", () => {
    assert.throws(() => SemverConstraints.parse(`>=1.0.0 ${" ".repeat(MAX_CONSTRAINT_LENGTH)}`), /too long \(max 512 bytes\)/);
    assert.throws(() => SemverConstraints.parse(Array.from({ length: 33 }, () => ">=1").join("||")), /too many constraint groups \(max 32\)/);
    assert.throws(() => SemverConstraints.parse(">= bar"), /improper constraint: ">= bar"/);
    assert.throws(() => SemverConstraints.parse("1x.2"), /constraint parser error/);
  });

  // Masterminds' AND-list grammar has `\s*` next to `\s+`; a backtracking engine explodes on a near-miss. Timeout
  // turns a regression into a failure rather than a hang.
  test("hostile constraints are parsed in linear time; 100,000 tags are resolved quickly", { timeout: 30_000 }, () => {
    const start = performance.now();
    for (const attack of [`${"1 ".repeat(250)}!`, `${">=1,".repeat(120)}!`, `${"1    ".repeat(100)}x!`]) {
      assert.throws(() => SemverConstraints.parse(attack), SemverConstraintError);
    }
    const constraints = SemverConstraints.parse(">=1.0.0-0");
    const tags = Array.from({ length: 100_000 }, (_, i) => (i % 2 ? `${i}.0.0-${"a.".repeat(60)}a` : `${"9".repeat(120)}!`));
    assert.equal(highestMatchingTag(tags, constraints), `99999.0.0-${"a.".repeat(60)}a`);
    assert.ok(performance.now() - start < 10_000, `took ${performance.now() - start} ms`);
  });
});
