// The pure part of `npm run bench:controllers`: medians, percentiles, Ferry/Flux ratios, goals and the one table.
import { median } from "../measure.ts";

export { median };

/** Nearest-rank percentile (p in 0..100) of the samples; NaN when there are none. */
export function percentile(values: readonly number[], p: number): number {
  if (values.length === 0) return Number.NaN;
  const sorted = [...values].sort((a, b) => a - b);
  const rank = Math.min(sorted.length, Math.max(1, Math.ceil((p / 100) * sorted.length)));
  return sorted[rank - 1] ?? Number.NaN;
}

/** Ferry/Flux; undefined when either side is missing or Flux's is 0 and Ferry's is not. */
export function ratio(ferry: number | undefined, flux: number | undefined): number | undefined {
  if (ferry === undefined || flux === undefined || Number.isNaN(ferry) || Number.isNaN(flux)) return undefined;
  if (flux === 0) return ferry === 0 ? 1 : undefined;
  return ferry / flux;
}

/** What a row is held to, as the issue states it. */
export type Goal
  = | { readonly kind: "ratio-at-most"; readonly value: number }
    | { readonly kind: "ferry-exactly"; readonly value: number }
    | { readonly kind: "ferry-below"; readonly value: number };

export function goalText(goal: Goal | undefined): string {
  if (!goal) return "";
  if (goal.kind === "ratio-at-most") return `<= ${goal.value}x Flux`;
  if (goal.kind === "ferry-exactly") return `exactly ${goal.value}`;
  return `< ${goal.value}`;
}

/** "met", "MISSED", or "" when the goal cannot be judged (no goal, or the needed number is missing). */
export function goalVerdict(goal: Goal | undefined, ferry: number | undefined, flux: number | undefined): string {
  if (!goal || ferry === undefined || Number.isNaN(ferry)) return "";
  if (goal.kind === "ferry-exactly") return ferry === goal.value ? "met" : "MISSED";
  if (goal.kind === "ferry-below") return ferry < goal.value ? "met" : "MISSED";
  const r = ratio(ferry, flux);
  if (r === undefined) return "";
  return r <= goal.value ? "met" : "MISSED";
}

export interface Row {
  readonly label: string;
  /** Per-run samples; the table shows their median (or the statistic `summary` names). */
  readonly ferry: readonly number[];
  /** undefined: Flux was not measured, and `fluxMissing` says why. */
  readonly flux?: readonly number[];
  readonly fluxMissing?: string;
  readonly digits?: number;
  readonly goal?: Goal;
}

function cell(value: number | undefined, digits: number): string {
  if (value === undefined || Number.isNaN(value)) return "n/a";
  return value.toFixed(digits);
}

/** Fixed-width rows: the first column left-aligned, the rest right-aligned. */
export function layout(rows: readonly (readonly string[])[]): string {
  const widths = rows[0]?.map((_, column) => Math.max(...rows.map((row) => row[column]?.length ?? 0))) ?? [];
  return rows
    .map((row) => row.map((text, column) => (column === 0 ? text.padEnd(widths[column] ?? 0) : text.padStart(widths[column] ?? 0))).join("  ").trimEnd())
    .join("\n");
}

/** The one table: row, Ferry, Flux, ratio (Ferry/Flux), goal, verdict. Medians of the samples. */
export function formatTable(rows: readonly Row[]): string {
  const lines: string[][] = [["row", "Ferry", "Flux", "ratio", "goal", ""]];
  for (const row of rows) {
    const digits = row.digits ?? 1;
    const ferry = row.ferry.length > 0 ? median(row.ferry) : undefined;
    const flux = row.flux && row.flux.length > 0 ? median(row.flux) : undefined;
    const r = ratio(ferry, flux);
    lines.push([
      row.label,
      cell(ferry, digits),
      row.flux ? cell(flux, digits) : (row.fluxMissing ?? "n/a"),
      r === undefined ? "-" : `${r.toFixed(2)}x`,
      goalText(row.goal),
      goalVerdict(row.goal, ferry, flux),
    ]);
  }
  return layout(lines);
}
