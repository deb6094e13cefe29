// Regular expressions from tenants (semverFilter, keyless identity and issuer patterns) are matched in linear time
// and read in Go's RE2 syntax, as Flux and cosign read them; what RE2 cannot do (lookaround, backreferences) is
// refused with a message naming the field.
import assert from "node:assert/strict";
import { describe, test } from "node:test";
import { GoRegexp, GoRegexpError } from "../../src/go-regexp.ts";
import { VerificationError } from "../../src/signing/errors.ts";
import { matchesPolicy } from "../../src/signing/keyless.ts";

// A backtracking engine takes minutes on these; the timeout turns a regression into a failure instead of a hang.
const ATTACK = { timeout: 30_000 };
const CATASTROPHIC = "(a+)+$";
const ISSUER = "https://token.actions.githubusercontent.com";

describe("GoRegexp", () => {
  test("a catastrophic semverFilter over a long tag list finishes", ATTACK, (t) => {
    const tags = Array.from({ length: 2000 }, (_, i) => `${"a".repeat(30 + (i % 40))}!`);
    const start = performance.now();
    const filter = GoRegexp.compile(CATASTROPHIC);
    assert.equal(tags.filter((tag) => filter.test(tag)).length, 0);
    t.diagnostic(`2000 tags in ${(performance.now() - start).toFixed(1)} ms`);
    assert.equal(filter.test("v1-aaa"), true);
  });

  test("test finds a match anywhere, as Go's MatchString does; matchesWhole needs all of the text", () => {
    const pattern = GoRegexp.compile("^v1\\.");
    assert.equal(pattern.test("v1.2.3"), true);
    assert.equal(pattern.test("v10.0.0"), false);
    assert.equal(GoRegexp.compile("prod").test("1.0.0-prod.1"), true);
    assert.equal(GoRegexp.compile("prod").matchesWhole("1.0.0-prod.1"), false);
    assert.equal(GoRegexp.compile("a|ab").matchesWhole("ab"), true);
  });

  test("Go's syntax is Go's: named groups with ?P, \\z, no multiline $ by default", () => {
    assert.equal(GoRegexp.compile("(?P<major>\\d+)\\.x\\z").test("v3.x"), true);
    assert.equal(GoRegexp.compile("a$").test("a\n"), false);
  });

  test("lookahead, lookbehind and backreferences are refused, with Go's reason and what RE2 lacks", () => {
    const cases: Array<[string, RegExp]> = [
      ["^(?=.*prod)v", /"\^\(\?=\.\*prod\)v" is not a valid regular expression \(Go's RE2 syntax\): invalid or unsupported Perl syntax: `\(\?=` \(RE2 has no lookahead or lookbehind\)/],
      ["(?!rc)", /no lookahead or lookbehind/],
      ["(?<=v)1", /no lookahead or lookbehind/],
      ["(a)\\1", /invalid escape sequence: `\\1` \(RE2 has no backreferences\)/],
      ["[", /missing closing \]/],
    ];
    for (const [pattern, message] of cases) {
      assert.throws(() => GoRegexp.compile(pattern), (error: unknown) => {
        assert.ok(error instanceof GoRegexpError, `${pattern}: ${String(error)}`);
        assert.equal(error.disposition, "stall");
        assert.match(error.message, message);
        return true;
      });
    }
  });
});

describe("keyless identity patterns", () => {
  test("a catastrophic identity regexp finishes and does not match", ATTACK, () => {
    assert.throws(() => matchesPolicy({ identityRegexp: CATASTROPHIC, issuer: ISSUER }, `${"a".repeat(40)}!`, ISSUER),
      (error: unknown) => error instanceof VerificationError && error.reason === "identity-mismatch");
  });

  test("patterns stay anchored: the whole identity must match", () => {
    const policy = { identityRegexp: "https://github.com/acme/.*", issuer: ISSUER };
    assert.doesNotThrow(() => matchesPolicy(policy, "https://github.com/acme/app/.github/workflows/release.yml@refs/heads/main", ISSUER));
    assert.throws(() => matchesPolicy(policy, "https://evil.example/?https://github.com/acme/x", ISSUER), /does not match/);
    assert.doesNotThrow(() => matchesPolicy({ identity: "me@example.com", issuerRegexp: "https://token\\.actions\\..*" }, "me@example.com", ISSUER));
  });

  test("a lookahead is refused as malformed, naming the flag", () => {
    for (const [policy, flag] of [
      [{ identityRegexp: "(?=.*acme).*", issuer: ISSUER }, "--certificate-identity-regexp"],
      [{ identity: "me@example.com", issuerRegexp: "(?!x).*" }, "--certificate-oidc-issuer-regexp"],
    ] as const) {
      assert.throws(() => matchesPolicy(policy, "me@example.com", ISSUER), (error: unknown) => {
        assert.ok(error instanceof VerificationError);
        assert.equal(error.reason, "malformed");
        assert.ok(error.message.startsWith(`${flag} "`), error.message);
        assert.match(error.message, /no lookahead or lookbehind/);
        return true;
      });
    }
  });
});
