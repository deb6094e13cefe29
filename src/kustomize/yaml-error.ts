// How YAML errors are reported by the build: where and why, never what the document says.
/**
 * The parser's reason and position, without the quoted snippet js-yaml adds to its message: after substitution
 * that snippet can hold Secret values, and messages end up in conditions, events and logs.
 */
export function yamlErrorSummary(error: unknown): string {
  const { reason, mark } = error as { reason?: string; mark?: { line?: number; column?: number } };
  if (!reason) return "unparseable YAML";
  return mark?.line === undefined ? reason : `${reason} (line ${mark.line + 1}, column ${(mark.column ?? 0) + 1})`;
}
