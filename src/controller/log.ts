// The controller's log: one JSON object a line on stderr, as Flux's controllers write them, filtered by
// --log-level. Secrets never reach it: callers log names and messages, not objects.

export const LOG_LEVELS = ["debug", "info", "error"] as const;
export type LogLevel = (typeof LOG_LEVELS)[number];

let threshold: number = LOG_LEVELS.indexOf("info");

export function isLogLevel(value: string): value is LogLevel {
  return (LOG_LEVELS as readonly string[]).includes(value);
}

export function setLogLevel(level: LogLevel): void {
  threshold = LOG_LEVELS.indexOf(level);
}

export function logAt(level: LogLevel, message: string, fields: Record<string, unknown> = {}): void {
  if (LOG_LEVELS.indexOf(level) < threshold) return;
  process.stderr.write(`${JSON.stringify({ level, ts: new Date().toISOString(), msg: message, ...fields })}\n`);
}

/**
 * How the controller's parts log: at info unless the caller says otherwise. What an operator must see even at
 * --log-level error (a watch or leader election failing, leadership lost, unconfined builds) is logged at error.
 */
export type Log = (message: string, fields?: Record<string, unknown>, level?: LogLevel) => void;

export const jsonLog: Log = (message, fields = {}, level = "info") => {
  logAt(level, message, fields);
};
