// Printing results for people (text) or scripts (`-o json|yaml`), and status lines on stderr.
import { UsageError } from "./errors.ts";

export type OutputFormat = "text" | "json" | "yaml";

export function parseOutputFormat(value: string | undefined): OutputFormat {
  if (value === undefined || value === "") return "text";
  if (value === "json" || value === "yaml") return value;
  throw new UsageError(`--output must be json or yaml, not "${value}"`);
}

/** js-yaml is loaded only for `-o yaml`: most runs never print YAML and should not pay for parsing it. */
export async function printStructured(format: "json" | "yaml", value: unknown): Promise<void> {
  if (format === "json") {
    process.stdout.write(`${JSON.stringify(value, null, 2)}\n`);
    return;
  }
  const { default: yaml } = await import("js-yaml");
  process.stdout.write(yaml.dump(value, { lineWidth: -1, noRefs: true }));
}

/** Status for people goes to stderr, so stdout stays clean for scripts. */
export function status(symbol: "►" | "◎" | "✔" | "✗" | "⚠", message: string): void {
  process.stderr.write(`${symbol} ${message}\n`);
}

export function printTable(headers: readonly string[], rows: readonly (readonly string[])[]): void {
  const widths = headers.map((header, column) => Math.max(header.length, ...rows.map((row) => (row[column] ?? "").length)));
  const line = (cells: readonly string[]) => cells.map((cell, column) => cell.padEnd(widths[column] ?? 0)).join("   ").trimEnd();
  process.stdout.write(`${[line(headers), ...rows.map(line)].join("\n")}\n`);
}
