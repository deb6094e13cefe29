// Rules a structural schema cannot state in its keywords (pattern, maxLength, enum...) are written once here: zod
// checks them in the controller, and the generated CRD states them in CEL (x-kubernetes-validations) for the
// apiserver, so both refuse the same specs.
import type { z } from "zod";

export interface CelValidation {
  readonly rule: string;
  readonly message: string;
}

export interface CelRule<T> extends CelValidation {
  /** The same rule in TypeScript, for the controller. */
  readonly holds: (value: T) => boolean;
}

export const CEL_VALIDATIONS = "x-kubernetes-validations";

/** `schema` with `rule` added to both its zod checks and its CRD's x-kubernetes-validations. */
export function withCelRule<S extends z.ZodType>(schema: S, { rule, message, holds }: CelRule<z.output<S>>): S {
  const earlier = (schema.meta()?.[CEL_VALIDATIONS] ?? []) as CelValidation[];
  return schema.refine(holds, { message }).meta({ [CEL_VALIDATIONS]: [...earlier, { rule, message }] });
}

/** A CEL string literal for `text` (single-quoted; backslashes and quotes escaped). */
export function celString(text: string): string {
  return `'${text.replaceAll("\\", "\\\\").replaceAll("'", "\\'")}'`;
}
