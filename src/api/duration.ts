// Go-style durations (30s, 5m, 1h30m, 250ms), as Flux's CRDs and CLI flags take them, and the bounds the controller
// puts on them before they become timers.

export const DURATION_PATTERN = /^([0-9]+(\.[0-9]+)?(ms|s|m|h))+$/;
/** Flux's pattern for OCIRepository's timeout, which takes no hours. */
export const DURATION_WITHOUT_HOURS_PATTERN = /^([0-9]+(\.[0-9]+)?(ms|s|m))+$/;

/** Node fires a timer at once (after 1 ms) when its delay exceeds 2^31-1 ms, about 24.8 days; longer waits are cut to this. */
export const MAX_TIMER_MS = 2 ** 31 - 1;

/**
 * The shortest interval and registry timeout the controller honours. Flux's CRDs accept `interval: 0s`; taken
 * literally it re-resolves against the registry in a loop, and a zero timeout either aborts every request at once or
 * (for the HTTP client) means none at all. One second keeps a mistaken spec from hammering a registry while staying
 * below any interval anyone means (Flux's docs recommend a minute or more).
 */
export const MIN_INTERVAL_MS = 1_000;

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

/** A delay a timer can keep: within [floorMs, MAX_TIMER_MS], and the floor for a delay that is not a number at all. */
export function timerMs(ms: number, floorMs = 1): number {
  if (Number.isNaN(ms)) return floorMs;
  return Math.min(Math.max(ms, floorMs), MAX_TIMER_MS);
}

/** A spec interval, retryInterval or timeout as a timer delay: at least MIN_INTERVAL_MS, at most MAX_TIMER_MS. */
export function specTimerMs(value: string): number {
  return timerMs(specDurationMs(value), MIN_INTERVAL_MS);
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
