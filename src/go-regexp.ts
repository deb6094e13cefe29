// Regular expressions that users and tenants write (semverFilter, keyless identity and issuer patterns, `--filter`),
// matched in linear time. JavaScript's RegExp backtracks, so `(a+)+$` over a tag of thirty a's and a `!` takes
// minutes; re2js is RE2 in pure JavaScript, with the syntax of Go's regexp package, so a pattern means here exactly
// what it means to Flux and cosign. RE2 has no lookaround and no backreferences: such patterns are refused.
import { RE2JS, RE2JSException } from "re2js";
import { type Disposition, FerryError } from "./errors.ts";

/** The pattern is not valid in Go's RE2 syntax; `reason` is Go's own wording, such as "invalid escape sequence: `\1`". */
export class GoRegexpError extends FerryError {
  readonly code = "REGEXP_INVALID";
  readonly disposition: Disposition = "stall";
  readonly reason: string;

  constructor(pattern: string, reason: string, options?: ErrorOptions) {
    super(`${JSON.stringify(pattern)} is not a valid regular expression (Go's RE2 syntax): ${reason}${hint(reason)}`, options);
    this.reason = reason;
  }
}

function hint(reason: string): string {
  if (/Perl syntax: `\(\?[=!]|named capture: `\(\?<[=!]/.test(reason)) return " (RE2 has no lookahead or lookbehind)";
  if (/escape sequence: `\\[1-9]/.test(reason)) return " (RE2 has no backreferences)";
  return "";
}

export class GoRegexp {
  readonly #compiled: RE2JS;

  private constructor(compiled: RE2JS) {
    this.#compiled = compiled;
  }

  /** Throws GoRegexpError for a pattern Go's regexp.Compile would refuse. */
  static compile(pattern: string): GoRegexp {
    try {
      return new GoRegexp(RE2JS.compile(pattern));
    } catch (error) {
      if (!(error instanceof RE2JSException)) throw error;
      throw new GoRegexpError(pattern, error.message.replace(/^error parsing regexp: /, ""), { cause: error });
    }
  }

  /** Whether the pattern matches anywhere in `text`, like Go's MatchString and RegExp's test. */
  test(text: string): boolean {
    return this.#compiled.test(text);
  }

  /** Whether the pattern matches all of `text`, as if written `^(?:pattern)$`. */
  matchesWhole(text: string): boolean {
    return this.#compiled.testExact(text);
  }
}
