// CEL for Kustomizations, with the semantics of Flux's fluxcd/pkg/runtime/cel: health check expressions
// (spec.healthCheckExprs) evaluated on a live object, and dependency readiness expressions
// (spec.dependsOn[].readyExpr) evaluated over the Kustomization (`self`) and its dependency (`dep`). Pure: parsing
// and evaluation only. Parsing is bounded here (expression length, AST size and depth); evaluation cost is not
// bounded by the CEL library, so the reconciler runs evaluations in a worker (evaluate-in-worker.ts).
import { Environment } from "@marcbachmann/cel-js";
import { type Disposition, FerryError } from "../errors.ts";
import type { HealthResult } from "../health/kstatus.ts";

/** An expression the spec names cannot be used: only an edit of the spec fixes it (Flux: InvalidCELExpression). */
export class CelExpressionError extends FerryError {
  readonly code = "CEL_INVALID_EXPRESSION";
  readonly disposition: Disposition = "stall";
}

/**
 * Parse-time bounds: far above any hand-written expression (Flux's library of health checks has none over 60 nodes),
 * and low enough that the parser and the evaluator's recursion stay small.
 */
const LIMITS = { maxAstNodes: 2_000, maxDepth: 48, maxListElements: 256, maxMapEntries: 256, maxCallArguments: 16 };

// Health expressions are parsed, not type-checked, as Flux does: objects do not all have the five standard top-level
// fields, so each top-level field of the object is a variable of dynamic type.
const healthEnvironment = new Environment({ unlistedVariablesAreDyn: true, enableOptionalTypes: true, limits: LIMITS });

// readyExpr is compiled against two map variables and must be boolean, as Flux's WithCompile/WithStructVariables/
// WithOutputType(BoolType) requires.
const readyEnvironment = new Environment({ enableOptionalTypes: true, limits: LIMITS })
  .registerVariable("self", "map")
  .registerVariable("dep", "map");

export interface HealthCheckExpressions {
  readonly apiVersion: string;
  readonly kind?: string | undefined;
  readonly current: string;
  readonly inProgress?: string | undefined;
  readonly failed?: string | undefined;
}

type Program = (context: Record<string, unknown>) => unknown;

function parseWith(environment: Environment, expression: string): Program {
  try {
    return environment.parse(expression) as Program;
  } catch (error) {
    throw new CelExpressionError(`failed to parse the CEL expression '${expression}': ${firstLine(error)}`);
  }
}

function firstLine(error: unknown): string {
  return ((error as Error).message ?? String(error)).split("\n")[0] ?? "";
}

/** "<group>/<kind>", or "<group>/" for an entry without kind (it covers the whole group). */
export function groupKindKey(apiVersion: string, kind: string | undefined): string {
  const group = apiVersion.includes("/") ? (apiVersion.split("/")[0] ?? "") : "";
  return `${group}/${kind ?? ""}`;
}

/** One healthCheckExprs entry, parsed. */
interface StatusEvaluator {
  readonly current: Program;
  readonly inProgress?: Program;
  readonly failed?: Program;
}

function statusEvaluator(check: HealthCheckExpressions): StatusEvaluator {
  const parse = (field: string, expression: string) => {
    try {
      return parseWith(healthEnvironment, expression);
    } catch (error) {
      throw new CelExpressionError(`failed to parse the expression ${field}: ${(error as Error).message}`);
    }
  };
  if (!check.current) throw new CelExpressionError("expression Current not specified");
  return {
    current: parse("Current", check.current),
    ...(check.inProgress ? { inProgress: parse("InProgress", check.inProgress) } : {}),
    ...(check.failed ? { failed: parse("Failed", check.failed) } : {}),
  };
}

/**
 * The status readers of spec.healthCheckExprs, by group and kind (Flux's NewStatusReader): two entries for one
 * GroupKind, or an expression that does not parse, make the whole list invalid, naming the entry.
 */
export class HealthExpressions {
  readonly #evaluators: ReadonlyMap<string, StatusEvaluator>;

  private constructor(evaluators: ReadonlyMap<string, StatusEvaluator>) {
    this.#evaluators = evaluators;
  }

  static compile(checks: readonly HealthCheckExpressions[]): HealthExpressions {
    const evaluators = new Map<string, StatusEvaluator>();
    checks.forEach((check, index) => {
      const key = groupKindKey(check.apiVersion, check.kind || undefined);
      if (evaluators.has(key)) {
        throw new CelExpressionError(`duplicate custom health check for GroupKind ${displayGroupKind(key)} at healthCheckExprs[${index}]`);
      }
      try {
        evaluators.set(key, statusEvaluator(check));
      } catch (error) {
        throw new CelExpressionError(`failed to create custom status evaluator for healthCheckExprs[${index}]: ${(error as Error).message}`);
      }
    });
    return new HealthExpressions(evaluators);
  }

  get size(): number {
    return this.#evaluators.size;
  }

  /** Whether objects of this apiVersion and kind are judged by expressions rather than kstatus. */
  covers(apiVersion: string, kind: string): boolean {
    return this.#evaluatorFor(apiVersion, kind) !== undefined;
  }

  /** An entry naming the kind wins over a group-only entry, as in Flux. */
  #evaluatorFor(apiVersion: string, kind: string): StatusEvaluator | undefined {
    return this.#evaluators.get(groupKindKey(apiVersion, kind)) ?? this.#evaluators.get(groupKindKey(apiVersion, undefined));
  }

  /**
   * The health of a live object (RFC 0009, as Flux's StatusEvaluator): an integer status.observedGeneration that
   * differs from metadata.generation is InProgress; then inProgress, failed and current are evaluated in that order and
   * the first that is true decides; none true is InProgress. An expression that fails (a field that does not exist, a
   * result that is not a bool) makes the object Unknown, with the error, so the wait goes on until the timeout.
   */
  evaluate(object: unknown): HealthResult {
    if (object === undefined || object === null) return { status: "NotFound", message: "Resource not found" };
    const live = object as { apiVersion?: unknown; kind?: unknown };
    const evaluator = this.#evaluatorFor(String(live.apiVersion ?? ""), String(live.kind ?? ""));
    if (!evaluator) return { status: "Unknown", message: `no health check expression covers ${String(live.kind)}` };
    const context = toCelValue(object) as Record<string, unknown>;
    if (generationOutdated(context)) return { status: "InProgress", message: "" };
    const order: Array<[Program | undefined, HealthResult["status"], string]> = [
      [evaluator.inProgress, "InProgress", "inProgress"],
      [evaluator.failed, "Failed", "failed"],
      [evaluator.current, "Current", "current"],
    ];
    for (const [program, status, field] of order) {
      if (!program) continue;
      try {
        if (booleanResult(program(context), field)) return { status, message: `healthCheckExprs ${field} is true` };
      } catch (error) {
        return { status: "Unknown", message: `healthCheckExprs ${field}: ${firstLine(error)}` };
      }
    }
    return { status: "InProgress", message: "" };
  }
}

function displayGroupKind(key: string): string {
  const [group, kind] = key.split("/");
  return kind ? (group ? `${kind}.${group}` : kind) : `${group || "core"} (any kind)`;
}

function booleanResult(value: unknown, field: string): boolean {
  if (typeof value !== "boolean") throw new Error(`failed to evaluate CEL expression as boolean: the ${field} expression gave ${typeof value}`);
  return value;
}

/** Flux skips this check when either field is not an integer (some CRDs type observedGeneration as a string). */
function generationOutdated(object: Record<string, unknown>): boolean {
  const observed = (object.status as Record<string, unknown> | undefined)?.observedGeneration;
  const generation = (object.metadata as Record<string, unknown> | undefined)?.generation;
  return typeof observed === "bigint" && typeof generation === "bigint" && observed !== generation;
}

/** Checks a readyExpr at once: a bad one stalls the Kustomization (Flux: InvalidCELExpression). */
export function compileReadyExpression(expression: string): Program {
  const program = parseWith(readyEnvironment, expression);
  const checked = readyEnvironment.check(expression);
  if (!checked.valid) throw new CelExpressionError(`failed to parse the CEL expression '${expression}': ${firstLine(checked.error)}`);
  if (checked.type !== "bool") throw new CelExpressionError(`CEL expression output type mismatch: expected bool, got ${checked.type}`);
  return program;
}

/** Evaluates a readyExpr over the dependent Kustomization (`self`) and its dependency (`dep`). */
export function evaluateReadyExpression(expression: string, self: unknown, dep: unknown): boolean {
  const program = compileReadyExpression(expression);
  return booleanResult(program({ self: toCelValue(self), dep: toCelValue(dep) }), "readyExpr");
}

/**
 * JSON as CEL sees a Kubernetes object decoded by apimachinery: integers are int (int64), other numbers double. A
 * JSON number is a JS double, so integral values become BigInts, which the CEL library takes as int.
 */
export function toCelValue(value: unknown): unknown {
  if (typeof value === "number") return Number.isSafeInteger(value) ? BigInt(value) : value;
  if (Array.isArray(value)) return value.map(toCelValue);
  if (value !== null && typeof value === "object") {
    return Object.fromEntries(Object.entries(value).map(([key, item]) => [key, toCelValue(item)]));
  }
  return value;
}
