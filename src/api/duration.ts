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

/** Milliseconds as Go prints a duration, the way Flux's messages show them: 250ms, 4.5s, 5m0s, 1h0m0s. */
export function formatDuration(ms: number): string {
  if (ms < 1000) return `${Math.round(ms)}ms`;
  const totalSeconds = ms / 1000;
  if (totalSeconds < 60) return `${Number(totalSeconds.toFixed(3))}s`;
  const hours = Math.floor(totalSeconds / 3600);
  const minutes = Math.floor((totalSeconds % 3600) / 60);
  const seconds = Number((totalSeconds % 60).toFixed(3));
  return hours > 0 ? `${hours}h${minutes}m${seconds}s` : `${minutes}m${seconds}s`;
}
