// Go-style durations (30s, 5m, 1h30m, 250ms), as Flux's CRDs and CLI flags take them.

export const DURATION_PATTERN = /^([0-9]+(\.[0-9]+)?(ms|s|m|h))+$/;

const UNIT_MS: Record<string, number> = { ms: 1, s: 1000, m: 60_000, h: 3_600_000 };

/** Milliseconds in `value`, or undefined when it is not a duration. */
export function durationMs(value: string): number | undefined {
  if (!DURATION_PATTERN.test(value)) return undefined;
  return [...value.matchAll(/(\d+(?:\.\d+)?)(ms|s|m|h)/g)].reduce((total, part) => total + Number(part[1]) * (UNIT_MS[part[2] ?? "s"] ?? 1000), 0);
}

/** For spec fields the CRD schema has already validated: an unparseable value cannot reach here, so it reads 0. */
export function specDurationMs(value: string): number {
  return durationMs(value) ?? 0;
}
